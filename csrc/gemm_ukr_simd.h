/* SIMD micro-kernel and row kernel, written once over a vector abstraction and included by
 * gemm_kernel_avx2.c / gemm_kernel_avx512.c with, defined beforehand:
 *   T, SUF (f32/f64), ISA (avx2/avx512), VT (vector type), VL (lanes), MR (rows of the tile;
 *   NR = 2 * VL columns), MC, KC, NC (cache blocks), MASK_T and
 *   V_ZERO() V_SET1(x) V_LOAD(p) V_STORE(p, v) V_BCAST(p) V_FMA(a, b, c) (a*b + c, fused)
 *   V_ADD(a, b) V_RELU(v) (max(0, v), NaN kept) V_LEAKY(v, alpha_v) V_MASK(n) (first n lanes)
 *   V_LOADM(p, m) V_STOREM(p, m, v).
 * The semantics are those of gemm_kernel.h; every element of C gets the same instruction
 * sequence wherever it lies in a tile, so tile boundaries (thread counts) never change results.
 */
#define NR (2 * VL)
#define BPANEL(kc) PN_GEMM_BPANEL(kc, NR, T)
#define KFN(name) PN_CAT(PN_CAT(name, PN_CAT(_, SUF)), PN_CAT(_, ISA))

/* v + C (when load_c), + bias, then the register activation. */
static inline __attribute__((always_inline)) VT KFN(epi)(VT v, const T *cin, int load_c,
                                                         const T *bias, int act, VT alpha_v) {
    if (load_c) v = V_ADD(v, V_LOAD(cin));
    if (bias) v = V_ADD(v, V_LOAD(bias));
    if (act == PN_ACT_RELU) v = V_RELU(v);
    else if (act == PN_ACT_LEAKY_RELU) v = V_LEAKY(v, alpha_v);
    return v;
}

/* The write-back of an MR x NR accumulator tile: full tiles straight from registers; edge
 * tiles through the same vector epilogue on staged copies, writing only the valid part. */
static inline __attribute__((always_inline)) void KFN(store_tile)(
    VT *acc0, VT *acc1, T *PN_RESTRICT c, pn_size ldc, int mr, int nr, int load_c,
    const T *PN_RESTRICT bias, int act, T alpha) {
    VT alpha_v = V_SET1(alpha);
    if (mr == MR && nr == NR) {
#pragma GCC unroll 16
        for (int i = 0; i < MR; i++) {
            T *ci = c + i * ldc;
            V_STORE(ci, KFN(epi)(acc0[i], ci, load_c, bias, act, alpha_v));
            V_STORE(ci + VL, KFN(epi)(acc1[i], ci + VL, load_c, bias ? bias + VL : NULL, act,
                                      alpha_v));
        }
        return;
    }
    T tile[MR * NR] __attribute__((aligned(64)));
    T cin[MR * NR] __attribute__((aligned(64)));
    T bt[NR] __attribute__((aligned(64)));
    if (load_c)
        for (int i = 0; i < mr; i++)
            for (int j = 0; j < NR; j++) cin[i * NR + j] = j < nr ? c[i * ldc + j] : 0;
    if (bias)
        for (int j = 0; j < NR; j++) bt[j] = j < nr ? bias[j] : 0;
#pragma GCC unroll 16
    for (int i = 0; i < MR; i++) {
        if (i < mr) {
            V_STORE(tile + i * NR, KFN(epi)(acc0[i], cin + i * NR, load_c, bias ? bt : NULL, act,
                                            alpha_v));
            V_STORE(tile + i * NR + VL, KFN(epi)(acc1[i], cin + i * NR + VL, load_c,
                                                 bias ? bt + VL : NULL, act, alpha_v));
        }
    }
    for (int i = 0; i < mr; i++)
        for (int j = 0; j < nr; j++) c[i * ldc + j] = tile[i * NR + j];
}

static inline __attribute__((always_inline)) void KFN(prefetch_c)(T *c, pn_size ldc, int mr) {
#pragma GCC unroll 16
    for (int i = 0; i < MR; i++)
        if (i < mr) { /* the C tile is needed at the end: start fetching it now */
            __builtin_prefetch(c + i * ldc, 1, 3);
            __builtin_prefetch(c + i * ldc + NR - 1, 1, 3);
        }
}

static void KFN(ukr)(pn_size kc, const T *PN_RESTRICT ap, const T *PN_RESTRICT bp,
                     pn_size ldb, T *PN_RESTRICT c, pn_size ldc, int mr, int nr, int load_c,
                     const T *PN_RESTRICT bias, int act, T alpha) {
    VT acc0[MR], acc1[MR];
#pragma GCC unroll 16
    for (int i = 0; i < MR; i++) acc0[i] = acc1[i] = V_ZERO();
    KFN(prefetch_c)(c, ldc, mr);
#pragma GCC unroll 4
    for (pn_size p = 0; p < kc; p++) {
        VT b0 = V_LOAD(bp), b1 = V_LOAD(bp + VL);
#pragma GCC unroll 16
        for (int i = 0; i < MR; i++) {
            VT av = V_BCAST(ap + i);
            acc0[i] = V_FMA(av, b0, acc0[i]);
            acc1[i] = V_FMA(av, b1, acc1[i]);
        }
        ap += MR;
        bp += ldb;
    }
    KFN(store_tile)(acc0, acc1, c, ldc, mr, nr, load_c, bias, act, alpha);
}

/* The bottom edge of a block when it has at most 2 rows (every MLP batch of 32, 128 or 512 is
 * 2 mod 6): three B micro-panels at once (panel q at bp + q * BPANEL(kc), columns c + q * NR; the
 * third nr3 wide), 12 accumulators as in a full tile instead of three mostly empty tiles. The
 * arithmetic per element is the full kernel's. */
static void KFN(ukr_r2)(pn_size kc, const T *PN_RESTRICT ap, const T *PN_RESTRICT bp,
                        T *PN_RESTRICT c, pn_size ldc, int mr, int nr3, int load_c,
                        const T *PN_RESTRICT bias, int act, T alpha) {
    VT acc[3][2][MR]; /* [panel][half][row]; rows >= 2 stay zero and are never stored */
#pragma GCC unroll 16
    for (int i = 0; i < MR; i++)
        acc[0][0][i] = acc[0][1][i] = acc[1][0][i] = acc[1][1][i] = acc[2][0][i] =
            acc[2][1][i] = V_ZERO();
    const T *b0p = bp, *b1p = bp + BPANEL(kc), *b2p = bp + 2 * BPANEL(kc);
    const T *a1p = ap + (mr > 1 ? 1 : 0); /* a single row re-reads row 0 (results dropped) */
    for (pn_size p = 0; p < kc; p++) {
        VT x0 = V_BCAST(ap + p * MR), x1 = V_BCAST(a1p + p * MR);
        VT b00 = V_LOAD(b0p), b01 = V_LOAD(b0p + VL);
        VT b10 = V_LOAD(b1p), b11 = V_LOAD(b1p + VL);
        VT b20 = V_LOAD(b2p), b21 = V_LOAD(b2p + VL);
        acc[0][0][0] = V_FMA(x0, b00, acc[0][0][0]);
        acc[0][1][0] = V_FMA(x0, b01, acc[0][1][0]);
        acc[1][0][0] = V_FMA(x0, b10, acc[1][0][0]);
        acc[1][1][0] = V_FMA(x0, b11, acc[1][1][0]);
        acc[2][0][0] = V_FMA(x0, b20, acc[2][0][0]);
        acc[2][1][0] = V_FMA(x0, b21, acc[2][1][0]);
        acc[0][0][1] = V_FMA(x1, b00, acc[0][0][1]);
        acc[0][1][1] = V_FMA(x1, b01, acc[0][1][1]);
        acc[1][0][1] = V_FMA(x1, b10, acc[1][0][1]);
        acc[1][1][1] = V_FMA(x1, b11, acc[1][1][1]);
        acc[2][0][1] = V_FMA(x1, b20, acc[2][0][1]);
        acc[2][1][1] = V_FMA(x1, b21, acc[2][1][1]);
        b0p += NR;
        b1p += NR;
        b2p += NR;
    }
    for (int q = 0; q < 3; q++)
        KFN(store_tile)(acc[q][0], acc[q][1], c + q * NR, ldc, mr, q < 2 ? NR : nr3, load_c,
                        bias ? bias + q * NR : NULL, act, alpha);
}

/* The same with A read in place (element (i, p) at a[i * rsa + p * csa]): for products whose
 * B is a single micro-panel wide, where each element of A is used once and packing it would
 * cost as much as using it. Rows past mr re-read row mr - 1 (in bounds; results dropped). */
static void KFN(ukr_sa)(pn_size kc, const T *PN_RESTRICT a, pn_size rsa, pn_size csa,
                        const T *PN_RESTRICT bp, T *PN_RESTRICT c, pn_size ldc, int mr, int nr,
                        int load_c, const T *PN_RESTRICT bias, int act, T alpha) {
    VT acc0[MR], acc1[MR];
    const T *ai[MR];
#pragma GCC unroll 16
    for (int i = 0; i < MR; i++) {
        acc0[i] = acc1[i] = V_ZERO();
        ai[i] = a + (i < mr ? i : mr - 1) * rsa;
    }
    KFN(prefetch_c)(c, ldc, mr);
    pn_size off = 0;
#pragma GCC unroll 2
    for (pn_size p = 0; p < kc; p++) {
        VT b0 = V_LOAD(bp), b1 = V_LOAD(bp + VL);
#pragma GCC unroll 16
        for (int i = 0; i < MR; i++) {
            VT av = V_BCAST(ai[i] + off);
            acc0[i] = V_FMA(av, b0, acc0[i]);
            acc1[i] = V_FMA(av, b1, acc1[i]);
        }
        off += csa;
        bp += NR;
    }
    KFN(store_tile)(acc0, acc1, c, ldc, mr, nr, load_c, bias, act, alpha);
}

/* One row: c (n) = [c +] a . B. B is streamed row by row (in memory order, 4 rows at a time)
 * into partial sums that stay in L1, CHUNK columns at a time; each element is still one FMA
 * chain over p = 0..k-1 in order. */
#define ROWK_CHUNK (1024 / (int)sizeof(T))
static void KFN(rowk)(pn_size k, pn_size n, const T *PN_RESTRICT a, pn_size inca,
                      const T *PN_RESTRICT b, pn_size ldb, T *PN_RESTRICT c, int load_c,
                      const T *PN_RESTRICT bias, int act, T alpha) {
    VT alpha_v = V_SET1(alpha);
    T acc[ROWK_CHUNK] __attribute__((aligned(64)));
    for (pn_size j0 = 0; j0 < n; j0 += ROWK_CHUNK) {
        int w = (int)(n - j0 < ROWK_CHUNK ? n - j0 : ROWK_CHUNK);
        int wv = w / VL * VL; /* full vectors; the rest is masked */
        MASK_T msk = V_MASK(w - wv);
        const T *bj = b + j0;
        for (int j = 0; j < ROWK_CHUNK; j += VL) V_STORE(acc + j, V_ZERO());
        pn_size p = 0;
        for (; p + 4 <= k; p += 4) {
            VT a0 = V_SET1(a[p * inca]), a1 = V_SET1(a[(p + 1) * inca]);
            VT a2 = V_SET1(a[(p + 2) * inca]), a3 = V_SET1(a[(p + 3) * inca]);
            const T *b0 = bj + p * ldb, *b1 = b0 + ldb, *b2 = b1 + ldb, *b3 = b2 + ldb;
            int j = 0;
            for (; j < wv; j += VL) {
                VT v = V_LOAD(acc + j);
                v = V_FMA(a0, V_LOAD(b0 + j), v);
                v = V_FMA(a1, V_LOAD(b1 + j), v);
                v = V_FMA(a2, V_LOAD(b2 + j), v);
                v = V_FMA(a3, V_LOAD(b3 + j), v);
                V_STORE(acc + j, v);
            }
            if (j < w) {
                VT v = V_LOAD(acc + j);
                v = V_FMA(a0, V_LOADM(b0 + j, msk), v);
                v = V_FMA(a1, V_LOADM(b1 + j, msk), v);
                v = V_FMA(a2, V_LOADM(b2 + j, msk), v);
                v = V_FMA(a3, V_LOADM(b3 + j, msk), v);
                V_STORE(acc + j, v);
            }
        }
        for (; p < k; p++) {
            VT a0 = V_SET1(a[p * inca]);
            const T *b0 = bj + p * ldb;
            int j = 0;
            for (; j < wv; j += VL) V_STORE(acc + j, V_FMA(a0, V_LOAD(b0 + j), V_LOAD(acc + j)));
            if (j < w) V_STORE(acc + j, V_FMA(a0, V_LOADM(b0 + j, msk), V_LOAD(acc + j)));
        }
        T *cj = c + j0;
        int j = 0;
        for (; j < wv; j += VL)
            V_STORE(cj + j, KFN(epi)(V_LOAD(acc + j), cj + j, load_c,
                                     bias ? bias + j0 + j : NULL, act, alpha_v));
        if (j < w) {
            T cin[VL] __attribute__((aligned(64)));
            T bt[VL] __attribute__((aligned(64)));
            T out[VL] __attribute__((aligned(64)));
            for (int q = 0; q < VL; q++) {
                cin[q] = (load_c && j + q < w) ? cj[j + q] : 0;
                bt[q] = (bias && j + q < w) ? bias[j0 + j + q] : 0;
            }
            V_STORE(out, KFN(epi)(V_LOAD(acc + j), cin, load_c, bias ? bt : NULL, act, alpha_v));
            for (int q = 0; j + q < w; q++) cj[j + q] = out[q];
        }
    }
}
#undef ROWK_CHUNK

/* ---- packing (see gemm_kernel.h for the formats) --------------------------------------------
 * a points at op(A)(0, 0) of the block, b at op(B)(0, 0). An ISA file may define
 * PACK_A_N_FULL(dst, src, lda, kc), PACK_A_T_FULL(...) and PACK_B_T_FULL(...): vectorised
 * packing of a full micro-panel (MR rows / NR columns) that may write up to one vector past the
 * panel (the buffers have that slack; later panels overwrite it). */
static void KFN(pack_a)(T *PN_RESTRICT ap, const T *PN_RESTRICT a, pn_size lda, int trans,
                        pn_size mc, pn_size kc) {
    for (pn_size ir = 0; ir < mc; ir += MR) {
        int rows = (int)(mc - ir < MR ? mc - ir : MR);
        T *PN_RESTRICT dst = ap + ir * kc;
        if (!trans) {
            const T *src = a + ir * lda;
#ifdef PACK_A_N_FULL
            if (rows == MR) {
                PACK_A_N_FULL(dst, src, lda, kc);
                continue;
            }
#endif
            for (int i = 0; i < rows; i++)
                for (pn_size p = 0; p < kc; p++) dst[p * MR + i] = src[i * lda + p];
        } else {
            const T *src = a + ir;
#ifdef PACK_A_T_FULL
            if (rows == MR) {
                PACK_A_T_FULL(dst, src, lda, kc);
                continue;
            }
#endif
            for (pn_size p = 0; p < kc; p++)
                for (int i = 0; i < rows; i++) dst[p * MR + i] = src[p * lda + i];
        }
        for (pn_size p = 0; p < kc; p++)
            for (int i = rows; i < MR; i++) dst[p * MR + i] = 0;
    }
}

static void KFN(pack_b)(T *PN_RESTRICT bp, const T *PN_RESTRICT b, pn_size ldb, int trans,
                        pn_size kc, pn_size nc) {
    if (!trans) { /* full panels row by row: B is read in order, one stream */
        pn_size full = nc / NR * NR;
        for (pn_size p = 0; p < kc; p++) {
            const T *src = b + p * ldb;
            T *PN_RESTRICT dst = bp + p * NR;
            for (pn_size jr = 0; jr < full; jr += NR, dst += BPANEL(kc)) {
                V_STORE(dst, V_LOAD(src + jr));
                V_STORE(dst + VL, V_LOAD(src + jr + VL));
            }
        }
    }
    for (pn_size jr = trans ? 0 : nc / NR * NR; jr < nc; jr += NR) {
        int cols = (int)(nc - jr < NR ? nc - jr : NR);
        T *PN_RESTRICT dst = bp + jr / NR * BPANEL(kc);
        if (!trans) {
            const T *src = b + jr;
            {
                for (pn_size p = 0; p < kc; p++) {
                    for (int j = 0; j < cols; j++) dst[p * NR + j] = src[p * ldb + j];
                    for (int j = cols; j < NR; j++) dst[p * NR + j] = 0;
                }
            }
        } else {
            const T *src = b + jr * ldb;
#ifdef PACK_B_T_FULL
            if (cols == NR) {
                PACK_B_T_FULL(dst, src, ldb, kc);
                continue;
            }
#endif
            for (int j = 0; j < cols; j++)
                for (pn_size p = 0; p < kc; p++) dst[p * NR + j] = src[j * ldb + p];
            for (pn_size p = 0; p < kc; p++)
                for (int j = cols; j < NR; j++) dst[p * NR + j] = 0;
        }
    }
}

const PN_CAT(pn_gemm_cfg_, SUF) PN_CAT(PN_CAT(pn_gemm_cfg_, SUF), PN_CAT(_, ISA)) = {
    MR, NR, MC, KC, NC, VL, KFN(ukr), KFN(ukr_sa), KFN(ukr_r2), KFN(rowk), KFN(pack_a), KFN(pack_b)};

#undef NR
#undef BPANEL
#undef KFN
