/* Normalization and dropout kernels for one ISA (csrc/norm.c runs them on threads): BatchNorm's
 * work on a range of columns, LayerNorm's on a range of rows (and its parameter gradients on a
 * range of columns), dropout on a slice. Sums run down each column or along each row in a fixed
 * order, in double. */
#include "vectorize.h"

#include <math.h>
#include <stdint.h>

#include "hash.h"
#include "isa.h"

#define DEFINE_NORM_KERNELS(T, SUF)                                                           \
    /* y = x * scale where the element's bits are >= threshold, else 0 */                     \
    void PN_ISA_FN(pn_dropout_kernel_##SUF)(T *PN_RESTRICT y, const T *PN_RESTRICT x,         \
            pn_size lo, pn_size hi, uint32_t s0, uint32_t s1, uint32_t threshold, T scale) {  \
        PN_SIMD                                                                               \
        for (pn_size i = lo; i < hi; i++)                                                     \
            y[i] = pn_element_bits(s0, s1, (uint64_t)i) >= threshold ? x[i] * scale : (T)0;   \
    }                                                                                         \
    /* dgamma = sum over rows of dy xhat, dbeta = sum dy, columns [lo, hi) (both norms) */   \
    void PN_ISA_FN(pn_norm_param_grads_##SUF)(T *PN_RESTRICT dgamma, T *PN_RESTRICT dbeta,    \
            const T *PN_RESTRICT dy, const T *PN_RESTRICT xhat, pn_size R, pn_size C,         \
            double *PN_RESTRICT sg, double *PN_RESTRICT sb, pn_size lo, pn_size hi) {         \
        for (pn_size j = lo; j < hi; j++) sg[j] = sb[j] = 0;                                  \
        for (pn_size r = 0; r < R; r++) {                                                     \
            const T *gr = dy + r * C, *hr = xhat + r * C;                                     \
            PN_SIMD                                                                           \
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
    /* Columns [lo, hi): mean, biased variance, xhat = (x - mean) * invstd, y = gamma xhat +  \
     * beta. mean and var (C) are returned for the running statistics. */                     \
    void PN_ISA_FN(pn_bn_forward_cols_##SUF)(T *PN_RESTRICT y, T *PN_RESTRICT xhat,           \
            double *PN_RESTRICT mean, double *PN_RESTRICT var, double *PN_RESTRICT invstd,    \
            const T *PN_RESTRICT x, const T *PN_RESTRICT gamma, const T *PN_RESTRICT beta,    \
            pn_size R, pn_size C, double eps, pn_size lo, pn_size hi) {                       \
        /* one pass: sums of x and x^2 in double (exact enough for float and double data      \
         * whose mean is not ~1e6 standard deviations from 0), then var = E[x^2] - mean^2 */  \
        for (pn_size j = lo; j < hi; j++) mean[j] = var[j] = 0;                               \
        for (pn_size r = 0; r < R; r++) {                                                     \
            const T *xr = x + r * C;                                                          \
            PN_SIMD                                                                           \
            for (pn_size j = lo; j < hi; j++) {                                               \
                double v = (double)xr[j];                                                     \
                mean[j] += v;                                                                 \
                var[j] += v * v;                                                              \
            }                                                                                 \
        }                                                                                     \
        for (pn_size j = lo; j < hi; j++) {                                                   \
            mean[j] /= (double)R;                                                             \
            double v = var[j] / (double)R - mean[j] * mean[j];                                \
            var[j] = v > 0 ? v : 0;                                                           \
            invstd[j] = 1.0 / sqrt(var[j] + eps);                                             \
        }                                                                                     \
        for (pn_size r = 0; r < R; r++) {                                                     \
            const T *xr = x + r * C;                                                          \
            T *hr = xhat + r * C, *yr = y + r * C;                                            \
            PN_SIMD                                                                           \
            for (pn_size j = lo; j < hi; j++) {                                               \
                T h = (T)(((double)xr[j] - mean[j]) * invstd[j]);                             \
                hr[j] = h;                                                                    \
                yr[j] = gamma[j] * h + beta[j];                                               \
            }                                                                                 \
        }                                                                                     \
    }                                                                                         \
    /* dbeta = sum dy, dgamma = sum dy xhat (per column), then                                \
     * dx = gamma invstd (dy - dbeta / R - xhat dgamma / R). */                               \
    void PN_ISA_FN(pn_bn_backward_cols_##SUF)(T *PN_RESTRICT dx, T *PN_RESTRICT dgamma,       \
            T *PN_RESTRICT dbeta, const T *PN_RESTRICT dy, const T *PN_RESTRICT xhat,         \
            const T *PN_RESTRICT gamma, const double *PN_RESTRICT invstd, pn_size R,          \
            pn_size C, double *PN_RESTRICT sg, double *PN_RESTRICT sb, pn_size lo,            \
            pn_size hi) {                                                                     \
        PN_ISA_FN(pn_norm_param_grads_##SUF)(dgamma, dbeta, dy, xhat, R, C, sg, sb, lo, hi);  \
        for (pn_size j = lo; j < hi; j++) {                                                   \
            sg[j] /= (double)R;                                                               \
            sb[j] /= (double)R;                                                               \
        }                                                                                     \
        if (!dx) return;                                                                      \
        for (pn_size r = 0; r < R; r++) {                                                     \
            const T *gr = dy + r * C, *hr = xhat + r * C;                                     \
            T *dr = dx + r * C;                                                               \
            PN_SIMD                                                                           \
            for (pn_size j = lo; j < hi; j++)                                                 \
                dr[j] = (T)((double)gamma[j] * invstd[j] *                                    \
                            ((double)gr[j] - sb[j] - (double)hr[j] * sg[j]));                 \
        }                                                                                     \
    }                                                                                         \
    void PN_ISA_FN(pn_ln_forward_rows_##SUF)(T *PN_RESTRICT y, T *PN_RESTRICT xhat,           \
            double *PN_RESTRICT invstd, const T *PN_RESTRICT x, const T *PN_RESTRICT gamma,   \
            const T *PN_RESTRICT beta, pn_size C, double eps, pn_size lo, pn_size hi) {       \
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
    /* g = dy gamma; dx = invstd (g - mean(g) - xhat mean(g xhat)) per row. */                \
    void PN_ISA_FN(pn_ln_backward_rows_##SUF)(T *PN_RESTRICT dx, const T *PN_RESTRICT dy,     \
            const T *PN_RESTRICT xhat, const T *PN_RESTRICT gamma,                            \
            const double *PN_RESTRICT invstd, pn_size C, pn_size lo, pn_size hi) {            \
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
    }

DEFINE_NORM_KERNELS(float, f32)
DEFINE_NORM_KERNELS(double, f64)
