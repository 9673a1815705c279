/* Activation kernels for one ISA (compiled once per ISA; PN_ISA_FN appends its suffix).
 * Serial over a contiguous range: csrc/activation.c splits the work over threads.
 * Shapes: x, y, dy, dx are (R, C) C-contiguous, R rows of C columns (softmax is row-wise; the
 * others see n = R*C elements). y == x and dx == dy (or dx == y) are allowed: every loop reads
 * element i before it writes element i, and `omp simd` keeps the compiler from assuming otherwise.
 */
#include "vectorize.h"

#include <string.h>

#include "isa.h"
#include "rowops.h"
#include "vmath.h"

#define DEFINE_ACTIVATION_KERNELS(T, SUF, EXP, SIGMOID, TANH)                                 \
    /* y = act(x) elementwise over n entries (act is not softmax) */                          \
    void PN_ISA_FN(pn_act_forward_##SUF)(T * y, const T *x, pn_size n, int act, T alpha) {    \
        switch (act) {                                                                        \
        case PN_ACT_IDENTITY:                                                                 \
            if (y != x) memcpy(y, x, (size_t)n * sizeof(T));                                  \
            break;                                                                            \
        case PN_ACT_RELU: /* x < 0 is false for NaN: NaN propagates, as in np.maximum */     \
            PN_SIMD                                                                      \
            for (pn_size i = 0; i < n; i++) y[i] = x[i] < 0 ? (T)0 : x[i];                    \
            break;                                                                            \
        case PN_ACT_LEAKY_RELU:                                                               \
            PN_SIMD                                                                      \
            for (pn_size i = 0; i < n; i++) y[i] = x[i] < 0 ? alpha * x[i] : x[i];            \
            break;                                                                            \
        case PN_ACT_SIGMOID:                                                                  \
            PN_SIMD                                                                      \
            for (pn_size i = 0; i < n; i++) y[i] = SIGMOID(x[i]);                             \
            break;                                                                            \
        case PN_ACT_TANH:                                                                     \
            PN_SIMD                                                                      \
            for (pn_size i = 0; i < n; i++) y[i] = TANH(x[i]);                                \
            break;                                                                            \
        case PN_ACT_STEP: /* the perceptron's: 1 where x > 0, else 0; NaN stays NaN */       \
            PN_SIMD                                                                      \
            for (pn_size i = 0; i < n; i++) y[i] = x[i] > 0 ? (T)1 : (x[i] == x[i] ? (T)0 : x[i]); \
            break;                                                                            \
        default:                                                                              \
            break;                                                                            \
        }                                                                                     \
    }                                                                                         \
    /* dx = dy * act'(x), written from y = act(x) (act is not softmax or step); overwrites dx */ \
    void PN_ISA_FN(pn_act_backward_##SUF)(T * dx, const T *y, const T *dy, pn_size n, int act, \
                                          T alpha) {                                          \
        switch (act) {                                                                        \
        case PN_ACT_IDENTITY:                                                                 \
            if (dx != dy) memcpy(dx, dy, (size_t)n * sizeof(T));                              \
            break;                                                                            \
        case PN_ACT_RELU: /* as torch's threshold_backward: 0 where y <= 0 */                \
            PN_SIMD                                                                      \
            for (pn_size i = 0; i < n; i++) dx[i] = y[i] > 0 ? dy[i] : (T)0;                  \
            break;                                                                            \
        case PN_ACT_LEAKY_RELU: /* sign(y) = sign(x) for alpha >= 0; slope alpha at 0 */     \
            PN_SIMD                                                                      \
            for (pn_size i = 0; i < n; i++) dx[i] = y[i] > 0 ? dy[i] : alpha * dy[i];         \
            break;                                                                            \
        case PN_ACT_SIGMOID:                                                                  \
            PN_SIMD                                                                      \
            for (pn_size i = 0; i < n; i++) dx[i] = dy[i] * (y[i] * (1 - y[i]));              \
            break;                                                                            \
        case PN_ACT_TANH:                                                                     \
            PN_SIMD                                                                      \
            for (pn_size i = 0; i < n; i++) dx[i] = dy[i] * (1 - y[i] * y[i]);                \
            break;                                                                            \
        default:                                                                              \
            break;                                                                            \
        }                                                                                     \
    }                                                                                         \
    /* y = softmax(x) row by row: exp(x - max) / sum, rows [0, R) of C columns, in groups */   \
    void PN_ISA_FN(pn_softmax_rows_##SUF)(T * y, const T *x, pn_size R, pn_size C) {          \
        T m[PN_GROUP_MAX_ROWS], s[PN_GROUP_MAX_ROWS];                                         \
        pn_size G = pn_group_rows(C);                                                         \
        for (pn_size r0 = 0; r0 < R; r0 += G) {                                               \
            pn_size g = R - r0 < G ? R - r0 : G;                                              \
            T *yg = y + r0 * C;                                                               \
            pn_exp_shifted_rows_##SUF(yg, m, s, x + r0 * C, g, C);                            \
            for (pn_size r = 0; r < g; r++) {                                                 \
                T inv = 1 / s[r], *yr = yg + r * C;                                           \
                PN_SIMD                                                                       \
                for (pn_size j = 0; j < C; j++) yr[j] *= inv;                                 \
            }                                                                                 \
        }                                                                                     \
    }                                                                                         \
    /* dx = y * (dy - rowsum(dy * y)): the softmax Jacobian-vector product, rows [0, R) */     \
    void PN_ISA_FN(pn_softmax_backward_rows_##SUF)(T * dx, const T *y, const T *dy, pn_size R, \
                                                   pn_size C) {                               \
        for (pn_size r = 0; r < R; r++) {                                                     \
            const T *yr = y + r * C, *dyr = dy + r * C;                                       \
            T *dxr = dx + r * C;                                                              \
            T dot = pn_rowdot_##SUF(dyr, yr, C);                                              \
            PN_SIMD                                                                      \
            for (pn_size j = 0; j < C; j++) dxr[j] = yr[j] * (dyr[j] - dot);                  \
        }                                                                                     \
    }                                                                                         \
    /* db[j] = sum_i dz[i, j] over rows [0, N) for columns [0, O) (rows ld apart): overwrites  \
     * db. Rows are added in fours ((r0 + r1) + (r2 + r3) in T), each four into a double        \
     * accumulator, in row order; blocks of 2048 columns (16 KB of accumulators; a block spans  \
     * whole 4 KB pages, which the prefetchers follow). */                                      \
    void PN_ISA_FN(pn_bias_grad_cols_##SUF)(T * db, const T *dz, pn_size N, pn_size O,        \
                                            pn_size ld) {                                     \
        double acc[2048];                                                                     \
        for (pn_size c0 = 0; c0 < O; c0 += 2048) {                                            \
            pn_size w = O - c0 < 2048 ? O - c0 : 2048;                                        \
            for (pn_size j = 0; j < w; j++) acc[j] = 0;                                       \
            pn_size i = 0;                                                                    \
            for (; i + 4 <= N; i += 4) { /* 4 rows a pass: (r0 + r1) + (r2 + r3), then acc */  \
                const T *r0 = dz + i * ld + c0, *r1 = r0 + ld, *r2 = r1 + ld, *r3 = r2 + ld;   \
                PN_SIMD                                                                       \
                for (pn_size j = 0; j < w; j++)                                               \
                    acc[j] += (double)((r0[j] + r1[j]) + (r2[j] + r3[j]));                    \
            }                                                                                 \
            for (; i < N; i++) {                                                              \
                const T *row = dz + i * ld + c0;                                              \
                PN_SIMD                                                                       \
                for (pn_size j = 0; j < w; j++) acc[j] += (double)row[j];                     \
            }                                                                                 \
            for (pn_size j = 0; j < w; j++) db[c0 + j] = (T)acc[j];                           \
        }                                                                                     \
    }

DEFINE_ACTIVATION_KERNELS(float, f32, pn_exp_f32, pn_sigmoid_f32, pn_tanh_f32)
DEFINE_ACTIVATION_KERNELS(double, f64, pn_exp_f64, pn_sigmoid_f64, pn_tanh_f64)
