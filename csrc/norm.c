/* Normalization and dropout layers: threads and ISA dispatch around csrc/multi/norm_kernels.c.
 *
 * BatchNorm's column statistics and every dgamma/dbeta sum go down the rows of a column, threads
 * taking disjoint column ranges; LayerNorm's row statistics go along one row, threads taking
 * disjoint rows; dropout decides each element from a hash of its index. Nothing depends on how
 * the work is split, so the results are bitwise the same at any thread count.
 */
#include <math.h>
#include <stdint.h>

#include "hash.h"
#include "isa.h"
#include "parallel.h"

/* Column ranges are cut at multiples of this many columns (a cache line of floats). */
#define COL_ALIGN 16

#define DECLARE_NORM_KERNELS(T, SUF)                                                          \
    PN_DECLARE_ISA(void, pn_dropout_kernel_##SUF,                                             \
                   (T * y, const T *x, pn_size lo, pn_size hi, uint32_t s0, uint32_t s1,     \
                    uint32_t threshold, T scale));                                            \
    PN_DECLARE_ISA(void, pn_bn_forward_cols_##SUF,                                            \
                   (T * y, T *xhat, double *mean, double *var, double *invstd, const T *x,    \
                    const T *gamma, const T *beta, pn_size R, pn_size C, double eps,          \
                    pn_size lo, pn_size hi));                                                 \
    PN_DECLARE_ISA(void, pn_bn_backward_cols_##SUF,                                           \
                   (T * dx, T *dgamma, T *dbeta, const T *dy, const T *xhat, const T *gamma,  \
                    const double *invstd, pn_size R, pn_size C, double *sg, double *sb,       \
                    pn_size lo, pn_size hi));                                                 \
    PN_DECLARE_ISA(void, pn_ln_forward_rows_##SUF,                                            \
                   (T * y, T *xhat, double *invstd, const T *x, const T *gamma,               \
                    const T *beta, pn_size C, double eps, pn_size lo, pn_size hi));           \
    PN_DECLARE_ISA(void, pn_ln_backward_rows_##SUF,                                           \
                   (T * dx, const T *dy, const T *xhat, const T *gamma, const double *invstd, \
                    pn_size C, pn_size lo, pn_size hi));                                      \
    PN_DECLARE_ISA(void, pn_norm_param_grads_##SUF,                                           \
                   (T * dgamma, T *dbeta, const T *dy, const T *xhat, pn_size R, pn_size C,   \
                    double *sg, double *sb, pn_size lo, pn_size hi));
DECLARE_NORM_KERNELS(float, f32)
DECLARE_NORM_KERNELS(double, f64)

/* ---- dropout ------------------------------------------------------------------------------- */

static inline uint64_t dropout_stream(uint64_t key, uint64_t counter) {
    return pn_mix64(key ^ pn_mix64(counter + 0x632be59bd9b4e019ULL));
}

/* Kept when the element's 32 bits are >= rate * 2^32 (rate < 1: the threshold fits). */
static inline uint32_t dropout_threshold(double rate) {
    return (uint32_t)(rate * 4294967296.0);
}

#define DEFINE_DROPOUT(T, SUF)                                                                \
    void pn_dropout_##SUF(T *y, const T *x, pn_size n, double rate, uint64_t key,             \
                          uint64_t counter) {                                                 \
        uint64_t stream = dropout_stream(key, counter);                                       \
        uint32_t s0 = (uint32_t)stream, s1 = (uint32_t)(stream >> 32);                        \
        uint32_t threshold = dropout_threshold(rate);                                         \
        T scale = (T)(1.0 / (1.0 - rate));                                                    \
        int nt = pn_threads_here((double)n * 2, PN_GRAIN);                                    \
        PN_PARALLEL_SLICES(nt, n, 64,                                                         \
            PN_DISPATCH(pn_dropout_kernel_##SUF)(y, x, lo, hi, s0, s1, threshold, scale));    \
    }

DEFINE_DROPOUT(float, f32)
DEFINE_DROPOUT(double, f64)

pn_size pn_dropout_kept(pn_size n, double rate, uint64_t key, uint64_t counter) {
    uint64_t stream = dropout_stream(key, counter);
    uint32_t s0 = (uint32_t)stream, s1 = (uint32_t)(stream >> 32);
    uint32_t threshold = dropout_threshold(rate);
    pn_size count = 0;
    for (pn_size i = 0; i < n; i++) count += pn_element_bits(s0, s1, (uint64_t)i) >= threshold;
    return count;
}

/* ---- BatchNorm and LayerNorm --------------------------------------------------------------- */

#define DEFINE_NORMS(T, SUF)                                                                  \
    void pn_batchnorm_forward_##SUF(T *y, T *xhat, double *mean, double *var, double *invstd, \
                                    const T *x, const T *gamma, const T *beta, pn_size R,     \
                                    pn_size C, double eps) {                                  \
        int nt = pn_threads_here((double)R * C * 4, PN_GRAIN);                                \
        PN_PARALLEL_SLICES(nt, C, COL_ALIGN,                                                  \
            PN_DISPATCH(pn_bn_forward_cols_##SUF)(y, xhat, mean, var, invstd, x, gamma, beta, \
                                                  R, C, eps, lo, hi));                        \
    }                                                                                         \
    void pn_batchnorm_backward_##SUF(T *dx, T *dgamma, T *dbeta, const T *dy, const T *xhat,  \
                                     const T *gamma, const double *invstd, double *scratch,   \
                                     pn_size R, pn_size C) {                                  \
        int nt = pn_threads_here((double)R * C * 4, PN_GRAIN);                                \
        PN_PARALLEL_SLICES(nt, C, COL_ALIGN,                                                  \
            PN_DISPATCH(pn_bn_backward_cols_##SUF)(dx, dgamma, dbeta, dy, xhat, gamma, invstd, \
                                                   R, C, scratch, scratch + C, lo, hi));      \
    }                                                                                         \
    void pn_scale_shift_##SUF(T *y, const T *x, const T *scale, const T *shift, pn_size R,    \
                              pn_size C) {                                                    \
        int nt = pn_threads_here((double)R * C, PN_GRAIN);                                    \
        PN_PARALLEL_SLICES(nt, R, 1,                                                          \
            for (pn_size r = lo; r < hi; r++) {                                               \
                const T *xr = x + r * C;                                                      \
                T *yr = y + r * C;                                                            \
                for (pn_size j = 0; j < C; j++) yr[j] = xr[j] * scale[j] + shift[j];          \
            });                                                                               \
    }                                                                                         \
    void pn_layernorm_forward_##SUF(T *y, T *xhat, double *invstd, const T *x,                \
                                    const T *gamma, const T *beta, pn_size R, pn_size C,      \
                                    double eps) {                                             \
        int nt = pn_threads_here((double)R * C * 4, PN_GRAIN);                                \
        PN_PARALLEL_SLICES(nt, R, 1,                                                          \
            PN_DISPATCH(pn_ln_forward_rows_##SUF)(y, xhat, invstd, x, gamma, beta, C, eps,    \
                                                  lo, hi));                                   \
    }                                                                                         \
    void pn_layernorm_backward_##SUF(T *dx, T *dgamma, T *dbeta, const T *dy, const T *xhat,  \
                                     const T *gamma, const double *invstd, double *scratch,   \
                                     pn_size R, pn_size C) {                                  \
        int nt = pn_threads_here((double)R * C * 4, PN_GRAIN);                                \
        PN_PARALLEL_SLICES(nt, C, COL_ALIGN,                                                  \
            PN_DISPATCH(pn_norm_param_grads_##SUF)(dgamma, dbeta, dy, xhat, R, C, scratch,    \
                                                 scratch + C, lo, hi));                       \
        if (!dx) return;                                                                      \
        PN_PARALLEL_SLICES(nt, R, 1,                                                          \
            PN_DISPATCH(pn_ln_backward_rows_##SUF)(dx, dy, xhat, gamma, invstd, C, lo, hi));  \
    }

DEFINE_NORMS(float, f32)
DEFINE_NORMS(double, f64)
