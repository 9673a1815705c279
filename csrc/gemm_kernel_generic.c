/* The portable micro-kernel and row kernel: plain C, builds anywhere (the compiler vectorises
 * what it can). Also the reference for the SIMD kernels' semantics (see gemm_kernel.h). */
#include "gemm_kernel.h"

#define GEN_MR 4
#define GEN_NR_F32 8
#define GEN_NR_F64 4

/* relu keeps NaN and the sign of zero exactly as the SIMD max(0, v) does. */
#define GEN_EPILOGUE(v, cin, load_c, bias, j, act, alpha)       \
    do {                                                        \
        if (load_c) v = v + (cin);                              \
        if (bias) v = v + (bias)[j];                            \
        if ((act) == PN_ACT_RELU) v = (v < 0) ? 0 : v;          \
        else if ((act) == PN_ACT_LEAKY_RELU) v = (v >= 0) ? v : (alpha) * v; \
    } while (0)

#define DEFINE_GENERIC(T, SUF, NR)                                                            \
    static void ukr_##SUF(pn_size kc, const T *PN_RESTRICT ap, const T *PN_RESTRICT bp,       \
                          pn_size ldb, T *PN_RESTRICT c, pn_size ldc, int mr, int nr, int load_c,          \
                          const T *PN_RESTRICT bias, int act, T alpha) {                      \
        T acc[GEN_MR][NR];                                                                    \
        for (int i = 0; i < GEN_MR; i++)                                                      \
            for (int j = 0; j < NR; j++) acc[i][j] = 0;                                       \
        for (pn_size p = 0; p < kc; p++) {                                                    \
            for (int i = 0; i < GEN_MR; i++)                                                  \
                for (int j = 0; j < NR; j++) acc[i][j] += ap[i] * bp[j];                      \
            ap += GEN_MR;                                                                     \
            bp += ldb;                                                                         \
        }                                                                                     \
        for (int i = 0; i < mr; i++)                                                          \
            for (int j = 0; j < nr; j++) {                                                    \
                T v = acc[i][j];                                                              \
                GEN_EPILOGUE(v, c[i * ldc + j], load_c, bias, j, act, alpha);                 \
                c[i * ldc + j] = v;                                                           \
            }                                                                                 \
    }                                                                                         \
    static void ukr_sa_##SUF(pn_size kc, const T *PN_RESTRICT a, pn_size rsa, pn_size csa,   \
                             const T *PN_RESTRICT bp, T *PN_RESTRICT c, pn_size ldc, int mr,  \
                             int nr, int load_c, const T *PN_RESTRICT bias, int act,          \
                             T alpha) {                                                       \
        T acc[GEN_MR][NR];                                                                    \
        for (int i = 0; i < GEN_MR; i++)                                                      \
            for (int j = 0; j < NR; j++) acc[i][j] = 0;                                       \
        for (pn_size p = 0; p < kc; p++) {                                                    \
            for (int i = 0; i < mr; i++)                                                      \
                for (int j = 0; j < NR; j++) acc[i][j] += a[i * rsa + p * csa] * bp[j];      \
            bp += NR;                                                                         \
        }                                                                                     \
        for (int i = 0; i < mr; i++)                                                          \
            for (int j = 0; j < nr; j++) {                                                    \
                T v = acc[i][j];                                                              \
                GEN_EPILOGUE(v, c[i * ldc + j], load_c, bias, j, act, alpha);                 \
                c[i * ldc + j] = v;                                                           \
            }                                                                                 \
    }                                                                                         \
    static void rowk_##SUF(pn_size k, pn_size n, const T *PN_RESTRICT a, pn_size inca,        \
                           const T *PN_RESTRICT b, pn_size ldb, T *PN_RESTRICT c, int load_c, \
                           const T *PN_RESTRICT bias, int act, T alpha) {                     \
        enum { W = 4 * NR };                                                                  \
        for (pn_size j0 = 0; j0 < n; j0 += W) {                                               \
            int w = (int)(n - j0 < W ? n - j0 : W);                                           \
            T acc[W];                                                                         \
            for (int j = 0; j < W; j++) acc[j] = 0;                                           \
            const T *bj = b + j0;                                                             \
            for (pn_size p = 0; p < k; p++) {                                                 \
                T av = a[p * inca];                                                           \
                if (w == W)                                                                   \
                    for (int j = 0; j < W; j++) acc[j] += av * bj[p * ldb + j];               \
                else                                                                          \
                    for (int j = 0; j < w; j++) acc[j] += av * bj[p * ldb + j];               \
            }                                                                                 \
            for (int j = 0; j < w; j++) {                                                     \
                T v = acc[j];                                                                 \
                GEN_EPILOGUE(v, c[j0 + j], load_c, bias, j0 + j, act, alpha);                 \
                c[j0 + j] = v;                                                                \
            }                                                                                 \
        }                                                                                     \
    }                                                                                         \
    static void pack_a_##SUF(T *PN_RESTRICT ap, const T *PN_RESTRICT a, pn_size lda, int trans, \
                             pn_size mc, pn_size kc) {                                        \
        for (pn_size ir = 0; ir < mc; ir += GEN_MR) {                                         \
            int rows = (int)(mc - ir < GEN_MR ? mc - ir : GEN_MR);                            \
            T *PN_RESTRICT dst = ap + ir * kc;                                                \
            for (pn_size p = 0; p < kc; p++)                                                  \
                for (int i = 0; i < GEN_MR; i++)                                              \
                    dst[p * GEN_MR + i] =                                                     \
                        i >= rows ? 0 : trans ? a[p * lda + ir + i] : a[(ir + i) * lda + p];  \
        }                                                                                     \
    }                                                                                         \
    static void pack_b_##SUF(T *PN_RESTRICT bp, const T *PN_RESTRICT b, pn_size ldb, int trans, \
                             pn_size kc, pn_size nc) {                                        \
        for (pn_size jr = 0; jr < nc; jr += NR) {                                             \
            int cols = (int)(nc - jr < NR ? nc - jr : NR);                                    \
            T *PN_RESTRICT dst = bp + jr / NR * PN_GEMM_BPANEL(kc, NR, T);                    \
            for (pn_size p = 0; p < kc; p++)                                                  \
                for (int j = 0; j < NR; j++)                                                  \
                    dst[p * NR + j] =                                                         \
                        j >= cols ? 0 : trans ? b[(jr + j) * ldb + p] : b[p * ldb + jr + j];  \
        }                                                                                     \
    }                                                                                         \
    const pn_gemm_cfg_##SUF pn_gemm_cfg_##SUF##_generic = {                                   \
        GEN_MR, NR, 128, 256, 2048, 1, ukr_##SUF, ukr_sa_##SUF, NULL, rowk_##SUF, pack_a_##SUF,   \
        pack_b_##SUF};

DEFINE_GENERIC(float, f32, GEN_NR_F32)
DEFINE_GENERIC(double, f64, GEN_NR_F64)
