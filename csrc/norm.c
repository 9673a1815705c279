/* Normalization and dropout layers: BatchNorm and LayerNorm forward and backward, the
 * scale-and-shift of an inference-mode BatchNorm, and counter-based dropout.
 *
 * Every reduction runs in a fixed order that depends on the shape only: BatchNorm's column
 * statistics and every dgamma/dbeta sum go down the rows of a column, threads taking disjoint
 * column ranges; LayerNorm's row statistics go along one row, threads taking disjoint rows. The
 * results are therefore bitwise the same at any thread count. Sums are accumulated in double.
 */
#include "vectorize.h"

#include <math.h>
#include <stdint.h>

#include "parallel.h"
#include "pynn.h"

/* Column ranges are cut at multiples of this many columns (a cache line of floats). */
#define COL_ALIGN 16

/* ---- dropout: a keep/drop bit per element from a hash of (key, counter, index) -------------- */

/* SplitMix64's finalizer: a bijective mix of 64 bits (Steele, Lea & Flood 2014). */
static inline uint64_t mix64(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* Whether element i is kept: the top 53 bits of its hash, as a uniform number in [0, 1), are
 * at least the drop rate. The stream (key, counter) fixes the mask; no state, any thread
 * order. */
static inline int kept(uint64_t stream, pn_size i, uint64_t threshold) {
    return (mix64(stream + (uint64_t)i * 0x9e3779b97f4a7c15ULL) >> 11) >= threshold;
}

static inline uint64_t dropout_stream(uint64_t key, uint64_t counter) {
    return mix64(key ^ mix64(counter + 0x632be59bd9b4e019ULL));
}

static inline uint64_t dropout_threshold(double rate) {
    return (uint64_t)(rate * 9007199254740992.0); /* rate * 2^53 */
}

#define DEFINE_DROPOUT(T, SUF)                                                                \
    void pn_dropout_##SUF(T *y, const T *x, pn_size n, double rate, uint64_t key,             \
                          uint64_t counter) {                                                 \
        uint64_t stream = dropout_stream(key, counter), threshold = dropout_threshold(rate);  \
        T scale = (T)(1.0 / (1.0 - rate));                                                    \
        int nt = pn_threads_here((double)n * 4, PN_GRAIN);                                    \
        PN_PARALLEL_SLICES(nt, n, 64,                                                         \
            for (pn_size i = lo; i < hi; i++) y[i] = kept(stream, i, threshold) ? x[i] * scale \
                                                                                 : (T)0);     \
    }

DEFINE_DROPOUT(float, f32)
DEFINE_DROPOUT(double, f64)

pn_size pn_dropout_kept(pn_size n, double rate, uint64_t key, uint64_t counter) {
    uint64_t stream = dropout_stream(key, counter), threshold = dropout_threshold(rate);
    pn_size count = 0;
    for (pn_size i = 0; i < n; i++) count += kept(stream, i, threshold);
    return count;
}

/* ---- BatchNorm: statistics over the rows of each column ------------------------------------- */

#define DEFINE_BATCHNORM(T, SUF)                                                              \
    /* Columns [lo, hi): mean, biased variance, xhat = (x - mean) * invstd, y = gamma xhat +   \
     * beta. mean and var (C) are returned for the running statistics. */                     \
    static void bn_forward_cols_##SUF(T *y, T *xhat, double *mean, double *var, double *invstd, \
                                      const T *x, const T *gamma, const T *beta, pn_size R,   \
                                      pn_size C, double eps, pn_size lo, pn_size hi) {        \
        for (pn_size j = lo; j < hi; j++) mean[j] = var[j] = 0;                               \
        for (pn_size r = 0; r < R; r++) {                                                     \
            const T *xr = x + r * C;                                                          \
            for (pn_size j = lo; j < hi; j++) mean[j] += (double)xr[j];                       \
        }                                                                                     \
        for (pn_size j = lo; j < hi; j++) mean[j] /= (double)R;                               \
        for (pn_size r = 0; r < R; r++) {                                                     \
            const T *xr = x + r * C;                                                          \
            for (pn_size j = lo; j < hi; j++) {                                               \
                double d = (double)xr[j] - mean[j];                                           \
                var[j] += d * d;                                                              \
            }                                                                                 \
        }                                                                                     \
        for (pn_size j = lo; j < hi; j++) {                                                   \
            var[j] /= (double)R;                                                              \
            invstd[j] = 1.0 / sqrt(var[j] + eps);                                             \
        }                                                                                     \
        for (pn_size r = 0; r < R; r++) {                                                     \
            const T *xr = x + r * C;                                                          \
            T *hr = xhat + r * C, *yr = y + r * C;                                            \
            for (pn_size j = lo; j < hi; j++) {                                               \
                T h = (T)(((double)xr[j] - mean[j]) * invstd[j]);                             \
                hr[j] = h;                                                                    \
                yr[j] = gamma[j] * h + beta[j];                                               \
            }                                                                                 \
        }                                                                                     \
    }                                                                                         \
    void pn_batchnorm_forward_##SUF(T *y, T *xhat, double *mean, double *var, double *invstd, \
                                    const T *x, const T *gamma, const T *beta, pn_size R,     \
                                    pn_size C, double eps) {                                  \
        int nt = pn_threads_here((double)R * C * 4, PN_GRAIN);                                \
        PN_PARALLEL_SLICES(nt, C, COL_ALIGN,                                                  \
            bn_forward_cols_##SUF(y, xhat, mean, var, invstd, x, gamma, beta, R, C, eps, lo,  \
                                  hi));                                                       \
    }                                                                                         \
    /* dbeta = sum dy, dgamma = sum dy xhat (per column), then                                \
     * dx = gamma invstd (dy - dbeta / R - xhat dgamma / R). */                               \
    static void bn_backward_cols_##SUF(T *dx, T *dgamma, T *dbeta, const T *dy, const T *xhat, \
                                       const T *gamma, const double *invstd, pn_size R,       \
                                       pn_size C, double *sg, double *sb, pn_size lo,         \
                                       pn_size hi) {                                          \
        for (pn_size j = lo; j < hi; j++) sg[j] = sb[j] = 0;                                  \
        for (pn_size r = 0; r < R; r++) {                                                     \
            const T *gr = dy + r * C, *hr = xhat + r * C;                                     \
            for (pn_size j = lo; j < hi; j++) {                                               \
                sb[j] += (double)gr[j];                                                       \
                sg[j] += (double)gr[j] * (double)hr[j];                                       \
            }                                                                                 \
        }                                                                                     \
        for (pn_size j = lo; j < hi; j++) {                                                   \
            dgamma[j] = (T)sg[j];                                                             \
            dbeta[j] = (T)sb[j];                                                              \
            sg[j] /= (double)R;                                                               \
            sb[j] /= (double)R;                                                               \
        }                                                                                     \
        if (!dx) return;                                                                      \
        for (pn_size r = 0; r < R; r++) {                                                     \
            const T *gr = dy + r * C, *hr = xhat + r * C;                                     \
            T *dr = dx + r * C;                                                               \
            for (pn_size j = lo; j < hi; j++)                                                 \
                dr[j] = (T)((double)gamma[j] * invstd[j] *                                    \
                            ((double)gr[j] - sb[j] - (double)hr[j] * sg[j]));                 \
        }                                                                                     \
    }                                                                                         \
    void pn_batchnorm_backward_##SUF(T *dx, T *dgamma, T *dbeta, const T *dy, const T *xhat,  \
                                     const T *gamma, const double *invstd, double *scratch,   \
                                     pn_size R, pn_size C) {                                  \
        int nt = pn_threads_here((double)R * C * 4, PN_GRAIN);                                \
        PN_PARALLEL_SLICES(nt, C, COL_ALIGN,                                                  \
            bn_backward_cols_##SUF(dx, dgamma, dbeta, dy, xhat, gamma, invstd, R, C, scratch, \
                                   scratch + C, lo, hi));                                     \
    }                                                                                         \
    /* y = x * scale + shift per column (inference-mode BatchNorm). */                        \
    void pn_scale_shift_##SUF(T *y, const T *x, const T *scale, const T *shift, pn_size R,    \
                              pn_size C) {                                                    \
        int nt = pn_threads_here((double)R * C, PN_GRAIN);                                    \
        PN_PARALLEL_SLICES(nt, R, 1,                                                          \
            for (pn_size r = lo; r < hi; r++) {                                               \
                const T *xr = x + r * C;                                                      \
                T *yr = y + r * C;                                                            \
                PN_SIMD                                                                       \
                for (pn_size j = 0; j < C; j++) yr[j] = xr[j] * scale[j] + shift[j];          \
            });                                                                               \
    }

DEFINE_BATCHNORM(float, f32)
DEFINE_BATCHNORM(double, f64)

/* ---- LayerNorm: statistics along each row ---------------------------------------------------- */

#define DEFINE_LAYERNORM(T, SUF)                                                              \
    static void ln_forward_rows_##SUF(T *y, T *xhat, double *invstd, const T *x,              \
                                      const T *gamma, const T *beta, pn_size C, double eps,   \
                                      pn_size lo, pn_size hi) {                               \
        for (pn_size r = lo; r < hi; r++) {                                                   \
            const T *xr = x + r * C;                                                          \
            T *hr = xhat + r * C, *yr = y + r * C;                                            \
            double mean = 0, var = 0;                                                         \
            for (pn_size j = 0; j < C; j++) mean += (double)xr[j];                            \
            mean /= (double)C;                                                                \
            for (pn_size j = 0; j < C; j++) {                                                 \
                double d = (double)xr[j] - mean;                                              \
                var += d * d;                                                                 \
            }                                                                                 \
            double is = 1.0 / sqrt(var / (double)C + eps);                                    \
            invstd[r] = is;                                                                   \
            for (pn_size j = 0; j < C; j++) {                                                 \
                T h = (T)(((double)xr[j] - mean) * is);                                       \
                hr[j] = h;                                                                    \
                yr[j] = gamma[j] * h + beta[j];                                               \
            }                                                                                 \
        }                                                                                     \
    }                                                                                         \
    void pn_layernorm_forward_##SUF(T *y, T *xhat, double *invstd, const T *x,                \
                                    const T *gamma, const T *beta, pn_size R, pn_size C,      \
                                    double eps) {                                             \
        int nt = pn_threads_here((double)R * C * 4, PN_GRAIN);                                \
        PN_PARALLEL_SLICES(nt, R, 1,                                                          \
            ln_forward_rows_##SUF(y, xhat, invstd, x, gamma, beta, C, eps, lo, hi));          \
    }                                                                                         \
    /* g = dy gamma; dx = invstd (g - mean(g) - xhat mean(g xhat)) per row. */                \
    static void ln_backward_rows_##SUF(T *dx, const T *dy, const T *xhat, const T *gamma,     \
                                       const double *invstd, pn_size C, pn_size lo,           \
                                       pn_size hi) {                                          \
        for (pn_size r = lo; r < hi; r++) {                                                   \
            const T *gr = dy + r * C, *hr = xhat + r * C;                                     \
            T *dr = dx + r * C;                                                               \
            double sg = 0, sgh = 0;                                                           \
            for (pn_size j = 0; j < C; j++) {                                                 \
                double g = (double)gr[j] * (double)gamma[j];                                  \
                sg += g;                                                                      \
                sgh += g * (double)hr[j];                                                     \
            }                                                                                 \
            sg /= (double)C;                                                                  \
            sgh /= (double)C;                                                                 \
            for (pn_size j = 0; j < C; j++)                                                   \
                dr[j] = (T)(invstd[r] * ((double)gr[j] * (double)gamma[j] - sg -              \
                                         (double)hr[j] * sgh));                               \
        }                                                                                     \
    }                                                                                         \
    /* dgamma = sum over rows of dy xhat, dbeta = sum dy: columns [lo, hi). */                \
    static void ln_param_grads_##SUF(T *dgamma, T *dbeta, const T *dy, const T *xhat,         \
                                     pn_size R, pn_size C, double *sg, double *sb, pn_size lo, \
                                     pn_size hi) {                                            \
        for (pn_size j = lo; j < hi; j++) sg[j] = sb[j] = 0;                                  \
        for (pn_size r = 0; r < R; r++) {                                                     \
            const T *gr = dy + r * C, *hr = xhat + r * C;                                     \
            for (pn_size j = lo; j < hi; j++) {                                               \
                sb[j] += (double)gr[j];                                                       \
                sg[j] += (double)gr[j] * (double)hr[j];                                       \
            }                                                                                 \
        }                                                                                     \
        for (pn_size j = lo; j < hi; j++) {                                                   \
            dgamma[j] = (T)sg[j];                                                             \
            dbeta[j] = (T)sb[j];                                                              \
        }                                                                                     \
    }                                                                                         \
    void pn_layernorm_backward_##SUF(T *dx, T *dgamma, T *dbeta, const T *dy, const T *xhat,  \
                                     const T *gamma, const double *invstd, double *scratch,   \
                                     pn_size R, pn_size C) {                                  \
        int nt = pn_threads_here((double)R * C * 4, PN_GRAIN);                                \
        PN_PARALLEL_SLICES(nt, C, COL_ALIGN,                                                  \
            ln_param_grads_##SUF(dgamma, dbeta, dy, xhat, R, C, scratch, scratch + C, lo, hi)); \
        if (!dx) return;                                                                      \
        PN_PARALLEL_SLICES(nt, R, 1,                                                          \
            ln_backward_rows_##SUF(dx, dy, xhat, gamma, invstd, C, lo, hi));                  \
    }

DEFINE_LAYERNORM(float, f32)
DEFINE_LAYERNORM(double, f64)
