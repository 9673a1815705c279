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

static void KFN(ukr)(pn_size kc, const T *PN_RESTRICT ap, const T *PN_RESTRICT bp,
                     T *PN_RESTRICT c, pn_size ldc, int mr, int nr, int load_c,
                     const T *PN_RESTRICT bias, int act, T alpha) {
    VT acc0[MR], acc1[MR];
#pragma GCC unroll 16
    for (int i = 0; i < MR; i++) acc0[i] = acc1[i] = V_ZERO();
    for (pn_size p = 0; p < kc; p++) {
        VT b0 = V_LOAD(bp), b1 = V_LOAD(bp + VL);
#pragma GCC unroll 16
        for (int i = 0; i < MR; i++) {
            VT av = V_BCAST(ap + i);
            acc0[i] = V_FMA(av, b0, acc0[i]);
            acc1[i] = V_FMA(av, b1, acc1[i]);
        }
        ap += MR;
        bp += NR;
    }
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
    /* Edge tile: the same vector epilogue on staged copies; only the valid part is written. */
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

/* One row: 4 vectors of columns at a time (4 independent FMA chains per k step, 8 loads in
 * flight with the unroll by two), then single vectors, then a masked tail. */
static void KFN(rowk)(pn_size k, pn_size n, const T *PN_RESTRICT a, pn_size inca,
                      const T *PN_RESTRICT b, pn_size ldb, T *PN_RESTRICT c, int load_c,
                      const T *PN_RESTRICT bias, int act, T alpha) {
    VT alpha_v = V_SET1(alpha);
    pn_size j = 0;
    for (; j + 4 * VL <= n; j += 4 * VL) {
        VT s0 = V_ZERO(), s1 = V_ZERO(), s2 = V_ZERO(), s3 = V_ZERO();
        const T *bj = b + j;
        for (pn_size p = 0; p < k; p++) {
            VT av = V_SET1(a[p * inca]);
            const T *bpj = bj + p * ldb;
            s0 = V_FMA(av, V_LOAD(bpj), s0);
            s1 = V_FMA(av, V_LOAD(bpj + VL), s1);
            s2 = V_FMA(av, V_LOAD(bpj + 2 * VL), s2);
            s3 = V_FMA(av, V_LOAD(bpj + 3 * VL), s3);
        }
        V_STORE(c + j, KFN(epi)(s0, c + j, load_c, bias ? bias + j : NULL, act, alpha_v));
        V_STORE(c + j + VL, KFN(epi)(s1, c + j + VL, load_c, bias ? bias + j + VL : NULL, act,
                                     alpha_v));
        V_STORE(c + j + 2 * VL, KFN(epi)(s2, c + j + 2 * VL, load_c,
                                         bias ? bias + j + 2 * VL : NULL, act, alpha_v));
        V_STORE(c + j + 3 * VL, KFN(epi)(s3, c + j + 3 * VL, load_c,
                                         bias ? bias + j + 3 * VL : NULL, act, alpha_v));
    }
    for (; j + VL <= n; j += VL) {
        VT s0 = V_ZERO();
        for (pn_size p = 0; p < k; p++) s0 = V_FMA(V_SET1(a[p * inca]), V_LOAD(b + p * ldb + j), s0);
        V_STORE(c + j, KFN(epi)(s0, c + j, load_c, bias ? bias + j : NULL, act, alpha_v));
    }
    if (j < n) {
        MASK_T msk = V_MASK((int)(n - j));
        VT s0 = V_ZERO();
        for (pn_size p = 0; p < k; p++)
            s0 = V_FMA(V_SET1(a[p * inca]), V_LOADM(b + p * ldb + j, msk), s0);
        T cin[VL] __attribute__((aligned(64)));
        T bt[VL] __attribute__((aligned(64)));
        T out[VL] __attribute__((aligned(64)));
        for (int q = 0; q < VL; q++) {
            cin[q] = (load_c && j + q < n) ? c[j + q] : 0;
            bt[q] = (bias && j + q < n) ? bias[j + q] : 0;
        }
        V_STORE(out, KFN(epi)(s0, cin, load_c, bias ? bt : NULL, act, alpha_v));
        for (pn_size q = 0; j + q < n; q++) c[j + q] = out[q];
    }
}

const PN_CAT(pn_gemm_cfg_, SUF) PN_CAT(PN_CAT(pn_gemm_cfg_, SUF), PN_CAT(_, ISA)) = {
    MR, NR, MC, KC, NC, KFN(ukr), KFN(rowk)};

#undef NR
#undef KFN
