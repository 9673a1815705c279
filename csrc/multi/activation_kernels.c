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

/* Columns per pass of the fused dz/bias-gradient kernel: four rows of dz, y and dy stay in L1. */
#define ACT_BIAS_CHUNK 512

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
    /* THE derivative of every elementwise activation, written once from the forward OUTPUT  \
     * y = act(x) (as scikit-learn's DERIVATIVES): dz = dy * act'(x) over n entries,           \
     * overwriting dz (dz == dy allowed). Both activation_backward and the GEMM backward's      \
     * fused dz pass run this loop, so the two give the same bits. At the kinks PyTorch's       \
     * convention (threshold_backward, leaky_relu_backward test y > 0): relu' = 0 and          \
     * leaky_relu' = alpha at y == 0 (sign(y) = sign(x) for alpha >= 0). softmax, step: none. */ \
    static inline void act_grad_##SUF(T *dz, const T *y, const T *dy, pn_size n, int act,     \
                                      T alpha) {                                              \
        switch (act) {                                                                        \
        case PN_ACT_IDENTITY:                                                                 \
            if (dz != dy) memcpy(dz, dy, (size_t)n * sizeof(T));                              \
            break;                                                                            \
        case PN_ACT_RELU:                                                                     \
            PN_SIMD                                                                           \
            for (pn_size i = 0; i < n; i++) dz[i] = y[i] > 0 ? dy[i] : (T)0;                  \
            break;                                                                            \
        case PN_ACT_LEAKY_RELU:                                                               \
            PN_SIMD                                                                           \
            for (pn_size i = 0; i < n; i++) dz[i] = y[i] > 0 ? dy[i] : alpha * dy[i];         \
            break;                                                                            \
        case PN_ACT_SIGMOID:                                                                  \
            PN_SIMD                                                                           \
            for (pn_size i = 0; i < n; i++) dz[i] = dy[i] * (y[i] * (1 - y[i]));              \
            break;                                                                            \
        case PN_ACT_TANH:                                                                     \
            PN_SIMD                                                                           \
            for (pn_size i = 0; i < n; i++) dz[i] = dy[i] * (1 - y[i] * y[i]);                \
            break;                                                                            \
        default:                                                                              \
            break;                                                                            \
        }                                                                                     \
    }                                                                                         \
    /* softmax's row-wise Jacobian product, columns [j0, j1) of one row of C entries:          \
     * dz = y * (dy - rowsum(dy * y)); the row sum always over the whole row, in one order */  \
    static inline void softmax_grad_##SUF(T *dz, const T *y, const T *dy, pn_size C,          \
                                          pn_size j0, pn_size j1) {                           \
        T dot = pn_rowdot_##SUF(dy, y, C);                                                    \
        PN_SIMD                                                                               \
        for (pn_size j = j0; j < j1; j++) dz[j] = y[j] * (dy[j] - dot);                       \
    }                                                                                         \
    /* dx = dy * act'(x) from y over n entries (act elementwise, not softmax or step) */      \
    void PN_ISA_FN(pn_act_backward_##SUF)(T * dx, const T *y, const T *dy, pn_size n, int act, \
                                          T alpha) {                                          \
        act_grad_##SUF(dx, y, dy, n, act, alpha);                                             \
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
        for (pn_size r = 0; r < R; r++)                                                       \
            softmax_grad_##SUF(dx + r * C, y + r * C, dy + r * C, C, 0, C);                   \
    }                                                                                         \
    /* THE bias-gradient reduction, fused with the activation's derivative, for columns       \
     * [j0, j1) of (N, O) matrices: dz = dy * act'(y) (skipped when dz == NULL: then act is    \
     * identity and the column sums are dy's), and db[j] = sum_i dz[i, j], overwritten, or     \
     * added into db when accumulate (db[j] + (T)sum). The one summation order, used by         \
     * pn_bias_grad and the GEMM backward alike: rows in fours ((r0 + r1) + (r2 + r3) in T),    \
     * each four into a double accumulator, in row order, then the leftover rows one by one.   \
     * Column chunks of ACT_BIAS_CHUNK keep the four rows of dz in L1 between their two uses; \
     * every column is summed in the same order whatever the chunk or the thread split. */    \
    void PN_ISA_FN(pn_act_bias_backward_cols_##SUF)(T * dz, T * db, const T *y, const T *dy, \
                                                    pn_size N, pn_size O, pn_size j0,        \
                                                    pn_size j1, int act, T alpha,            \
                                                    int accumulate) {                        \
        double acc[ACT_BIAS_CHUNK];                                                           \
        const T *src = dz ? dz : dy; /* what is summed */                                    \
        for (pn_size c0 = j0; c0 < j1; c0 += ACT_BIAS_CHUNK) {                                \
            pn_size w = j1 - c0 < ACT_BIAS_CHUNK ? j1 - c0 : ACT_BIAS_CHUNK;                  \
            for (pn_size j = 0; j < w; j++) acc[j] = 0;                                       \
            pn_size i = 0;                                                                    \
            for (; i < N; i += 4) {                                                           \
                pn_size rows = N - i < 4 ? N - i : 4;                                         \
                if (dz)                                                                       \
                    for (pn_size q = i; q < i + rows; q++) {                                  \
                        if (act == PN_ACT_SOFTMAX)                                            \
                            softmax_grad_##SUF(dz + q * O, y + q * O, dy + q * O, O, c0,      \
                                               c0 + w);                                       \
                        else                                                                  \
                            act_grad_##SUF(dz + q * O + c0, y + q * O + c0, dy + q * O + c0,  \
                                           w, act, alpha);                                    \
                    }                                                                         \
                const T *r0 = src + i * O + c0;                                               \
                if (rows == 4) { /* (r0 + r1) + (r2 + r3), then acc */                        \
                    const T *r1 = r0 + O, *r2 = r1 + O, *r3 = r2 + O;                         \
                    PN_SIMD                                                                   \
                    for (pn_size j = 0; j < w; j++)                                           \
                        acc[j] += (double)((r0[j] + r1[j]) + (r2[j] + r3[j]));                \
                } else {                                                                      \
                    for (pn_size q = 0; q < rows; q++) {                                      \
                        const T *row = r0 + q * O;                                            \
                        PN_SIMD                                                               \
                        for (pn_size j = 0; j < w; j++) acc[j] += (double)row[j];             \
                    }                                                                         \
                }                                                                             \
            }                                                                                 \
            if (accumulate)                                                                   \
                for (pn_size j = 0; j < w; j++) db[c0 + j] += (T)acc[j];                      \
            else                                                                              \
                for (pn_size j = 0; j < w; j++) db[c0 + j] = (T)acc[j];                       \
        }                                                                                     \
    }

DEFINE_ACTIVATION_KERNELS(float, f32, pn_exp_f32, pn_sigmoid_f32, pn_tanh_f32)
DEFINE_ACTIVATION_KERNELS(double, f64, pn_exp_f64, pn_sigmoid_f64, pn_tanh_f64)
