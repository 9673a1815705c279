/* The GEMM driver for one element type: included by gemm.c with T (float/double) and SUF
 * (f32/f64) defined. Goto/BLIS structure: for each NC-wide column block of B, for each KC-deep
 * slice of K, pack B (KC x NC) once; for each MC-tall row block of A, pack A (MC x KC); then the
 * MR x NR micro-kernel sweeps the block, B micro-panel (L1) outer, A micro-panels (L2) inner.
 *
 * Letters: C (M,N) = op(A) (M,K) . op(B) (K,N).
 */
#define FN(name) PN_CAT(name, PN_CAT(_, SUF))
#define CFG PN_CAT(pn_gemm_cfg_, SUF)

typedef struct {
    const T *p;
    pn_size ld; /* row stride of the stored matrix */
    int trans;  /* 1: op(X) = stored^T */
} FN(operand);

/* The active ISA's micro-kernel table (isa.h's one dispatch rule), except that on an AVX-512
 * machine a product whose last B micro-panel would be at most half full takes AVX2's table,
 * whose tile is half as wide: always at N <= 16 floats / 8 doubles (an output layer of 10
 * classes fills 10/16 of it, not 10/32: 1.5-1.8x on the n x 128 x 10 products), and for wider
 * N when it pads N at least 1/16 less (AVX2's kernel runs ~6% below AVX-512's at equal width)
 * and K >= 32 (below, AVX-512's shorter loop won): scikit-learn's default 100 hidden units,
 * 112 columns instead of 128, the 200 x 784 x 100 forward and dW 0.90x the time (Zen 4). The
 * choice depends on the shape only, never on threads. */
static const CFG *FN(table_for)(pn_size n, pn_size k) {
    const CFG *cfg = PN_DISPATCH_PTR(CFG);
#if defined(PN_HAVE_AVX512) && defined(PN_HAVE_AVX2)
    const CFG *narrow = &PN_CAT(CFG, _avx2);
    if (cfg == &PN_CAT(CFG, _avx512)) {
        const pn_size pad_narrow = (n + narrow->nr - 1) / narrow->nr * narrow->nr;
        const pn_size pad_wide = (n + cfg->nr - 1) / cfg->nr * cfg->nr;
        if (n <= narrow->nr || (k >= 32 && 16 * pad_narrow < 15 * pad_wide)) return narrow;
    }
#endif
    return cfg;
}

/* ---- the naive oracle ------------------------------------------------------------------------- */

void FN(pn_gemm_naive)(T *c, const T *a, const T *b, pn_size m, pn_size n, pn_size k, int trans_a,
                       int trans_b, int accumulate) {
    pn_size lda = trans_a ? m : k, ldb = trans_b ? k : n;
    for (pn_size i = 0; i < m; i++)
        for (pn_size j = 0; j < n; j++) {
            T s = 0;
            for (pn_size p = 0; p < k; p++)
                s += (trans_a ? a[p * lda + i] : a[i * lda + p]) *
                     (trans_b ? b[j * ldb + p] : b[p * ldb + j]);
            c[i * n + j] = accumulate ? c[i * n + j] + s : s;
        }
}

/* A packed once for every K slice and MC block, shared by the threads of a split-N product
 * (each packs some of the blocks, instead of every thread packing all of A). Block b of slice s
 * lies at apre + (s * blocks + b) * region: each region has the packing's slack, so no thread's
 * vector spill reaches another thread's block. */
static pn_size FN(apre_region)(const CFG *cfg, pn_size m, pn_size k) {
    const pn_size ns = k_slices(k, cfg->kc), kc_max = (k + ns - 1) / ns;
    const pn_size mc_max = m < cfg->mc ? (m + cfg->mr - 1) / cfg->mr * cfg->mr : cfg->mc;
    return mc_max * kc_max + (pn_size)(PN_GEMM_PACK_SLACK / sizeof(T));
}

/* Whether a block of m rows and n columns reads A in place instead of packing it: with few B
 * micro-panels (A is re-read once per panel), unless A's rows are a multiple of 4 KiB apart
 * (they would share L1 sets) or A is a tall transposed one (see PN_GEMM_INPLACE_PANELS). */
static int FN(a_in_place)(const CFG *cfg, FN(operand) A, pn_size m, pn_size n) {
    if (n <= cfg->nr) return 1; /* one micro-panel: A is used once */
    return n <= PN_GEMM_INPLACE_PANELS * cfg->nr && (A.ld * (pn_size)sizeof(T)) % 4096 != 0 &&
           (!A.trans || m <= 2 * cfg->mc);
}

/* Whether a B micro-panel's rows are two cache lines or more (the AVX-512 tiles), which decides
 * both reading B in place at rows 4 KiB apart and prefetching it (see PN_GEMM_FETCH_B_MIN). */
static inline int FN(two_line_rows)(const CFG *cfg) { return cfg->nr * sizeof(T) >= 128; }

/* Whether a block of m rows and n columns reads B's full micro-panels in place (straight from
 * B's rows, row stride B.ld) instead of packing B: a block of at most MC rows uses each B
 * micro-panel for few A micro-panels, and packing B (k x n) would cost about as much as using
 * it; A (m x k, the small operand) is packed instead. Not for a transposed B, nor a block
 * narrower than one micro-panel (there A is read in place), nor rows 4 KiB apart unless the
 * panel rows are two cache lines (the AVX-512 tiles: their 256 x 2 lines fit the L2 sets they
 * map to, the 784-1024-1024-10 epoch 0.97x / 0.94x at batch 128 / 32; AVX2's 320 one-line rows
 * share too few sets, 1.6-2.4x slower products). +8-22% on 32-row products, +5-10% on 128-row
 * ones (784-256 and 1000-1000). */
static int FN(b_in_place)(const CFG *cfg, FN(operand) B, pn_size m, pn_size n) {
    const int aliasing = (B.ld * (pn_size)sizeof(T)) % 4096 == 0 && !FN(two_line_rows)(cfg);
    return !B.trans && m <= cfg->mc && n >= (pn_size)cfg->nr && !aliasing;
}

/* Start fetching rows p0..p1 of a B micro-panel read in place (NR columns at b, row stride
 * ldb) into L2. */
static inline void FN(prefetch_panel)(const T *b, pn_size ldb, pn_size p0, pn_size p1, int nr) {
    for (pn_size p = p0; p < p1; p++) {
        __builtin_prefetch(b + p * ldb, 0, 2);
        __builtin_prefetch(b + p * ldb + nr - 1, 0, 2);
    }
}

/* C[i0:i1, j0:j1] with the packed kernel; apre: NULL, or op(A)'s rows i0..i1 prepacked as
 * above. Returns 0, or -1 if a buffer could not be allocated. */
static int FN(gemm_block)(const CFG *cfg, T *c, pn_size ldc, FN(operand) A, FN(operand) B,
                          pn_size i0, pn_size i1, pn_size j0, pn_size j1, pn_size k,
                          int accumulate, const T *bias, int act, T alpha, const T *apre) {
    const int MR = cfg->mr, NR = cfg->nr;
    const pn_size ns = k_slices(k, cfg->kc);
    const pn_size kc_max = (k + ns - 1) / ns;
    const pn_size m = i1 - i0, n = j1 - j0;
    const pn_size mc_max = m < cfg->mc ? (m + MR - 1) / MR * MR : cfg->mc;
    const pn_size nc_max = n < cfg->nc ? (n + NR - 1) / NR * NR : cfg->nc;
    const pn_size blocks = (m + cfg->mc - 1) / cfg->mc;
    const pn_size region = apre ? FN(apre_region)(cfg, m, k) : 0;
    const int b_direct = FN(b_in_place)(cfg, B, m, n);
    const int in_place = !apre && !b_direct && FN(a_in_place)(cfg, A, m, n);
    /* B read in place and bigger than an L2: its panels prefetched ahead of the kernel */
    const int b_fetch = b_direct && FN(two_line_rows)(cfg) &&
                        (double)k * (double)n * sizeof(T) > PN_GEMM_FETCH_B_MIN;
    T *abuf = apre || in_place ? NULL
                               : (T *)pn_gemm_buffer(0, (size_t)(mc_max * kc_max) * sizeof(T) +
                                                            PN_GEMM_PACK_SLACK);
    T *bbuf = (T *)pn_gemm_buffer(
        1, (size_t)(nc_max / NR * PN_GEMM_BPANEL(kc_max, NR, T)) * sizeof(T) + PN_GEMM_PACK_SLACK);
    if ((!abuf && !apre && !in_place) || !bbuf) return -1;
    const int kact = kernel_act(act), tact = tile_act(act);

    for (pn_size jc = j0; jc < j1; jc += cfg->nc) {
        pn_size nc = j1 - jc < cfg->nc ? j1 - jc : cfg->nc;
        for (pn_size s = 0; s < ns; s++) {
            pn_size p0 = s * k / ns, kc = (s + 1) * k / ns - p0;
            int last = s == ns - 1, load_c = accumulate || s > 0;
            const pn_size bps = PN_GEMM_BPANEL(kc, NR, T); /* packed panels' stride */
            const pn_size full = b_direct ? nc / NR * NR : 0; /* panels read in place */
            if (full < nc)
                cfg->pack_b(bbuf + full / NR * bps,
                            B.trans ? B.p + (jc + full) * B.ld + p0 : B.p + p0 * B.ld + jc + full,
                            B.ld, B.trans, kc, nc - full);
            if (in_place) { /* A read where it is, once per micro-panel of B, MC rows at a
                             * time (the rows stay in L2 across the panels) */
                pn_size rsa = A.trans ? 1 : A.ld, csa = A.trans ? A.ld : 1;
                for (pn_size ic = i0; ic < i1; ic += cfg->mc) {
                    const pn_size iend = i1 - ic < cfg->mc ? i1 : ic + cfg->mc;
                    for (pn_size jr = 0; jr < nc; jr += NR) {
                        int nr = (int)(nc - jr < NR ? nc - jr : NR);
                        const T *bias_t = (last && bias) ? bias + jc + jr : NULL;
                        for (pn_size ir = ic; ir < iend; ir += MR) {
                            int mr = (int)(iend - ir < MR ? iend - ir : MR);
                            T *ct = c + ir * ldc + jc + jr;
                            cfg->ukr_sa(kc, A.p + ir * rsa + p0 * csa, rsa, csa,
                                        bbuf + jr / NR * bps, ct, ldc, mr, nr, load_c, bias_t,
                                        last ? kact : PN_ACT_IDENTITY, alpha);
                            if (last && tact >= 0)
                                for (int i = 0; i < mr; i++)
                                    FN(pn_activation_forward)(ct + i * ldc, ct + i * ldc, 1,
                                                              nr, tact, alpha);
                        }
                    }
                }
                continue;
            }
            if (full && b_fetch) /* the first in-place panel, while A is packed */
                FN(prefetch_panel)(B.p + p0 * B.ld + jc, B.ld, 0, kc, NR);
            for (pn_size ic = i0; ic < i1; ic += cfg->mc) {
                pn_size mc = i1 - ic < cfg->mc ? i1 - ic : cfg->mc;
                const T *ap;
                if (apre) {
                    ap = apre + (s * blocks + (ic - i0) / cfg->mc) * region;
                } else {
                    cfg->pack_a(abuf, A.trans ? A.p + p0 * A.ld + ic : A.p + ic * A.ld + p0,
                                A.ld, A.trans, mc, kc);
                    ap = abuf;
                }
                /* a bottom edge of 1-2 rows goes three B panels at a time (ukr_r2) */
                const pn_size medge = mc % MR;
                const pn_size mtiles =
                    cfg->ukr_r2 && !b_direct && medge > 0 && medge <= 2 ? mc - medge : mc;
                pn_size jr3 = 0;
                if (mtiles < mc) {
                    for (; jr3 + 2 * NR < nc; jr3 += 3 * NR) {
                        int nr3 = (int)(nc - jr3 - 2 * NR < NR ? nc - jr3 - 2 * NR : NR);
                        T *ct = c + (ic + mtiles) * ldc + jc + jr3;
                        cfg->ukr_r2(kc, ap + mtiles * kc, bbuf + jr3 / NR * bps, ct, ldc,
                                    (int)medge, nr3, load_c,
                                    (last && bias) ? bias + jc + jr3 : NULL,
                                    last ? kact : PN_ACT_IDENTITY, alpha);
                        if (last && tact >= 0)
                            for (int i = 0; i < (int)medge; i++)
                                FN(pn_activation_forward)(ct + i * ldc, ct + i * ldc, 1,
                                                          2 * NR + nr3, tact, alpha);
                    }
                }
                for (pn_size jr = 0; jr < nc; jr += NR) {
                    int nr = (int)(nc - jr < NR ? nc - jr : NR);
                    const T *bias_t = (last && bias) ? bias + jc + jr : NULL;
                    /* rows mtiles.. of panels below jr3 were done by ukr_r2 */
                    pn_size mend = jr < jr3 ? mtiles : mc;
                    const T *bp =
                        jr < full ? B.p + p0 * B.ld + jc + jr : bbuf + jr / NR * bps;
                    const pn_size ldb = jr < full ? B.ld : (pn_size)NR;
                    /* B read in place from beyond L2: the next panel's rows are fetched a share
                     * per tile, so the kernel does not meet them as misses (wide B: each row on
                     * its own page, where the hardware prefetcher stops) */
                    const T *bnext = b_fetch && jr + NR < full ? bp + NR : NULL;
                    const pn_size tiles = (mend + MR - 1) / MR;
                    for (pn_size ir = 0; ir < mend; ir += MR) {
                        int mr = (int)(mc - ir < MR ? mc - ir : MR);
                        T *ct = c + (ic + ir) * ldc + jc + jr;
                        if (bnext) {
                            const pn_size q = ir / MR;
                            FN(prefetch_panel)(bnext, B.ld, q * kc / tiles, (q + 1) * kc / tiles,
                                               NR);
                        }
                        cfg->ukr(kc, ap + ir * kc, bp, ldb, ct, ldc, mr, nr, load_c, bias_t,
                                 last ? kact : PN_ACT_IDENTITY, alpha);
                        if (last && tact >= 0)
                            for (int i = 0; i < mr; i++)
                                FN(pn_activation_forward)(ct + i * ldc, ct + i * ldc, 1, nr,
                                                          tact, alpha);
                    }
                }
            }
        }
    }
    return 0;
}

/* Rows of C one by one with the unpacked row kernel (few rows, B not transposed). */
static void FN(gemm_rows)(const CFG *cfg, T *c, pn_size ldc, FN(operand) A, FN(operand) B,
                          pn_size i0, pn_size i1, pn_size j0, pn_size j1, pn_size k,
                          int accumulate, const T *bias, int act, T alpha) {
    const int kact = kernel_act(act), tact = tile_act(act);
    for (pn_size i = i0; i < i1; i++) {
        const T *ai = A.trans ? A.p + i : A.p + i * A.ld;
        T *ci = c + i * ldc + j0;
        cfg->rowk(k, j1 - j0, ai, A.trans ? A.ld : 1, B.p + j0, B.ld, ci, accumulate,
                  bias ? bias + j0 : NULL, kact, alpha);
        if (tact >= 0) FN(pn_activation_forward)(ci, ci, 1, j1 - j0, tact, alpha);
    }
}

/* ---- the whole product: threads over disjoint blocks of C ------------------------------------- */

typedef struct {
    const CFG *cfg;
    T *c;
    FN(operand) A, B;
    pn_size m, n, k;
    int accumulate;
    const T *bias;
    int act;
    T alpha;
    int rows_path, split_n;
    pn_size units; /* micro-tiles along the split side */
    T *apre;       /* NULL, or the shared packed A (every thread of the team packs its share) */
} FN(gemm_job);

/* Thread t of nth packs its share of the blocks of the shared packed A (see apre_region). */
static void FN(pack_a_share)(const FN(gemm_job) *job, int t, int nth) {
    const CFG *cfg = job->cfg;
    const FN(operand) A = job->A;
    const pn_size m = job->m, k = job->k, ns = k_slices(k, cfg->kc);
    const pn_size blocks = (m + cfg->mc - 1) / cfg->mc, region = FN(apre_region)(cfg, m, k);
    const pn_size units = ns * blocks, q0 = units * t / nth, q1 = units * (t + 1) / nth;
    for (pn_size q = q0; q < q1; q++) {
        pn_size s = q / blocks, ic = (q % blocks) * cfg->mc;
        pn_size p0 = s * k / ns, kc = (s + 1) * k / ns - p0;
        pn_size mc = m - ic < cfg->mc ? m - ic : cfg->mc;
        cfg->pack_a(job->apre + q * region, A.trans ? A.p + p0 * A.ld + ic : A.p + ic * A.ld + p0,
                    A.ld, A.trans, mc, kc);
    }
}

/* Thread t of nth: its share of the micro-tiles along the split side. */
static int FN(gemm_part)(const FN(gemm_job) *job, int t, int nth) {
    const int MR = job->cfg->mr, NR = job->cfg->nr;
    pn_size m = job->m, n = job->n;
    if (job->apre) { /* every thread of the team reaches this barrier */
        FN(pack_a_share)(job, t, nth);
        PN_OMP(barrier)
    }
    pn_size u0 = job->units * t / nth, u1 = job->units * (t + 1) / nth;
    pn_size i0 = 0, i1 = m, j0 = 0, j1 = n;
    if (job->split_n) {
        j0 = u0 * NR;
        j1 = u1 * NR < n ? u1 * NR : n;
    } else {
        i0 = u0 * MR;
        i1 = u1 * MR < m ? u1 * MR : m;
    }
    if (i0 >= i1 || j0 >= j1) return 0;
    if (job->rows_path)
        FN(gemm_rows)(job->cfg, job->c, n, job->A, job->B, i0, i1, j0, j1, job->k,
                      job->accumulate, job->bias, job->act, job->alpha);
    else if (FN(gemm_block)(job->cfg, job->c, n, job->A, job->B, i0, i1, j0, j1, job->k,
                            job->accumulate, job->bias, job->act, job->alpha, job->apre) != 0)
        return -1;
    if (job->act == PN_ACT_SOFTMAX)
        FN(pn_activation_forward)(job->c + i0 * n, job->c + i0 * n, i1 - i0, n, PN_ACT_SOFTMAX,
                                  job->alpha);
    return 0;
}

static int FN(gemm_driver)(T *c, FN(operand) A, FN(operand) B, pn_size m, pn_size n, pn_size k,
                           int accumulate, const T *bias, int act, T alpha) {
    if (m <= 0 || n <= 0) return 0;
    if (k <= 0) { /* an empty sum: C = [C +] 0, then the epilogue */
        for (pn_size i = 0; i < m; i++)
            for (pn_size j = 0; j < n; j++) {
                T v = accumulate ? c[i * n + j] : 0;
                c[i * n + j] = bias ? v + bias[j] : v;
            }
        if (act != PN_ACT_IDENTITY) FN(pn_activation_forward)(c, c, m, n, act, alpha);
        return 0;
    }
    const CFG *cfg = FN(table_for)(n, k);
    const int rows_path = m <= PN_GEMM_ROWS_MAX && !B.trans;
    const int MR = cfg->mr, NR = cfg->nr;
    /* Split C along its longer side: each thread then packs its share of one operand and all
     * of the other, the smaller (K x N when splitting M, M x K when splitting N). Unless that
     * side has too few micro-tiles to go round. softmax needs whole rows: split M. */
    pn_size tiles_m = (m + MR - 1) / MR, tiles_n = (n + NR - 1) / NR;
    int nt = pn_threads_for(2.0 * (double)m * (double)n * (double)k, PN_GEMM_THREAD_GRAIN);
    int split_n = n > m ? tiles_n >= nt || tiles_n >= tiles_m : tiles_m < nt && tiles_n > tiles_m;
    if (rows_path) split_n = 1;
    if (act == PN_ACT_SOFTMAX) split_n = 0;
    pn_size units = split_n ? tiles_n : tiles_m;
    if (nt > units) nt = (int)units;
    if (rows_path && act == PN_ACT_SOFTMAX) nt = 1;
    FN(gemm_job) job = {cfg, c, A, B, m, n, k, accumulate, bias, act, alpha, rows_path, split_n,
                        units, NULL};
    if (nt <= 1) return FN(gemm_part)(&job, 0, 1); /* no fork/join for one thread */
    /* Split N, each thread's columns too many to read A in place, and A in more than one
     * block: the threads pack A once between them. */
    const pn_size a_blocks = k_slices(k, cfg->kc) * ((m + cfg->mc - 1) / cfg->mc);
    const size_t a_bytes = (size_t)(a_blocks * FN(apre_region)(cfg, m, k)) * sizeof(T);
    const pn_size n_thread = (units + nt - 1) / nt * NR;
    if (split_n && !rows_path && !FN(a_in_place)(cfg, A, m, n_thread < n ? n_thread : n) &&
        a_blocks >= 2 && a_bytes <= PN_GEMM_SHARED_A_MAX) {
        job.apre = (T *)pn_gemm_buffer(3, a_bytes);
        if (!job.apre) return -1;
    }
    int failed = 0;
    PN_OMP(parallel num_threads(nt) reduction(| : failed))
    {
        int t = 0, nth = 1;
#ifdef PN_OPENMP
        t = omp_get_thread_num();
        nth = omp_get_num_threads();
#endif
        failed |= FN(gemm_part)(&job, t, nth) != 0;
    }
    return failed ? -1 : 0;
}

int FN(pn_gemm)(T *c, const T *a, const T *b, pn_size m, pn_size n, pn_size k, int trans_a,
                int trans_b, int accumulate) {
    FN(operand) A = {a, trans_a ? m : k, trans_a}, B = {b, trans_b ? k : n, trans_b};
    return FN(gemm_driver)(c, A, B, m, n, k, accumulate, NULL, PN_ACT_IDENTITY, 0);
}

int FN(pn_linear_forward)(T *y, const T *x, const T *w, const T *bias, pn_size n, pn_size i,
                          pn_size o, int act, T alpha) {
    FN(operand) X = {x, i, 0}, W = {w, o, 0};
    return FN(gemm_driver)(y, X, W, n, o, i, 0, bias, act, alpha);
}

/* ---- backward: one fused pass for dz and db, then two GEMMs ----------------------------------- */

int FN(pn_linear_backward)(T *dx, T *dw, T *db, const T *x, const T *w, const T *y, const T *dy,
                           pn_size n, pn_size i, pn_size o, int act, T alpha, int accumulate) {
    T *dz = NULL;
    if (act != PN_ACT_IDENTITY && n > 0 && o > 0) {
        dz = (T *)pn_gemm_buffer(2, (size_t)(n * o) * sizeof(T));
        if (!dz) return -1;
    }
    /* dz and db: the activation's one derivative and the one bias-gradient reduction */
    if (db)
        FN(pn_activation_bias_backward)(dz, db, y, dy, n, o, act, alpha, accumulate);
    else if (dz)
        FN(pn_activation_backward)(dz, y, dy, n, o, act, alpha);
    const T *g = dz ? dz : dy;
    FN(operand) Xt = {x, i, 1}, G = {g, o, 0}, Wt = {w, o, 1};
    if (FN(gemm_driver)(dw, Xt, G, i, o, n, accumulate, NULL, PN_ACT_IDENTITY, 0)) return -1;
    if (dx && FN(gemm_driver)(dx, G, Wt, n, i, o, 0, NULL, PN_ACT_IDENTITY, 0)) return -1;
    return 0;
}

#undef FN
#undef CFG
