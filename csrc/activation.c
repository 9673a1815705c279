/* Activations, forward and backward (first, scalar version: to be vectorised).
 * Shapes: x, y, dy, dx are (rows, cols) C-contiguous. */
#include <math.h>

#include "isa.h"

#define DEFINE_ACTIVATION(T, SUF, EXP, TANH)                                                  \
    void pn_activation_forward_##SUF(T *y, const T *x, pn_size rows, pn_size cols, int act,  \
                                     T alpha) {                                              \
        pn_size n = rows * cols;                                                             \
        switch (act) {                                                                       \
        case PN_ACT_IDENTITY:                                                                \
            if (y != x)                                                                      \
                for (pn_size i = 0; i < n; i++) y[i] = x[i];                                 \
            break;                                                                           \
        case PN_ACT_RELU:                                                                    \
            for (pn_size i = 0; i < n; i++) y[i] = x[i] > 0 ? x[i] : (x[i] != x[i] ? x[i] : 0); \
            break;                                                                           \
        case PN_ACT_LEAKY_RELU:                                                              \
            for (pn_size i = 0; i < n; i++) y[i] = x[i] >= 0 ? x[i] : alpha * x[i];          \
            break;                                                                           \
        case PN_ACT_SIGMOID:                                                                 \
            for (pn_size i = 0; i < n; i++) {                                                \
                T e = EXP(-fabs(x[i]));                                                      \
                y[i] = x[i] >= 0 ? 1 / (1 + e) : e / (1 + e);                                \
            }                                                                                \
            break;                                                                           \
        case PN_ACT_TANH:                                                                    \
            for (pn_size i = 0; i < n; i++) y[i] = TANH(x[i]);                               \
            break;                                                                           \
        case PN_ACT_STEP:                                                                    \
            for (pn_size i = 0; i < n; i++) y[i] = x[i] > 0 ? 1 : (x[i] != x[i] ? x[i] : 0); \
            break;                                                                           \
        case PN_ACT_SOFTMAX:                                                                 \
            for (pn_size r = 0; r < rows; r++) {                                             \
                const T *xr = x + r * cols;                                                  \
                T *yr = y + r * cols;                                                        \
                T m = -INFINITY;                                                             \
                for (pn_size j = 0; j < cols; j++) m = xr[j] > m ? xr[j] : m;                \
                if (m == -INFINITY) m = 0;                                                   \
                T s = 0;                                                                     \
                for (pn_size j = 0; j < cols; j++) s += (yr[j] = EXP(xr[j] - m));            \
                for (pn_size j = 0; j < cols; j++) yr[j] /= s;                               \
            }                                                                                \
            break;                                                                           \
        }                                                                                    \
    }                                                                                        \
    void pn_activation_backward_##SUF(T *dx, const T *y, const T *dy, pn_size rows,          \
                                      pn_size cols, int act, T alpha) {                      \
        pn_size n = rows * cols;                                                             \
        switch (act) {                                                                       \
        case PN_ACT_IDENTITY:                                                                \
            if (dx != dy)                                                                    \
                for (pn_size i = 0; i < n; i++) dx[i] = dy[i];                               \
            break;                                                                           \
        case PN_ACT_RELU:                                                                    \
            for (pn_size i = 0; i < n; i++) dx[i] = y[i] > 0 ? dy[i] : 0;                    \
            break;                                                                           \
        case PN_ACT_LEAKY_RELU:                                                              \
            for (pn_size i = 0; i < n; i++) dx[i] = y[i] >= 0 ? dy[i] : alpha * dy[i];       \
            break;                                                                           \
        case PN_ACT_SIGMOID:                                                                 \
            for (pn_size i = 0; i < n; i++) dx[i] = dy[i] * y[i] * (1 - y[i]);               \
            break;                                                                           \
        case PN_ACT_TANH:                                                                    \
            for (pn_size i = 0; i < n; i++) dx[i] = dy[i] * (1 - y[i] * y[i]);               \
            break;                                                                           \
        case PN_ACT_SOFTMAX:                                                                 \
            for (pn_size r = 0; r < rows; r++) {                                             \
                const T *yr = y + r * cols, *dyr = dy + r * cols;                            \
                T *dxr = dx + r * cols;                                                      \
                T dot = 0;                                                                   \
                for (pn_size j = 0; j < cols; j++) dot += dyr[j] * yr[j];                    \
                for (pn_size j = 0; j < cols; j++) dxr[j] = yr[j] * (dyr[j] - dot);          \
            }                                                                                \
            break;                                                                           \
        default:                                                                             \
            break;                                                                           \
        }                                                                                    \
    }

DEFINE_ACTIVATION(float, f32, expf, tanhf)
DEFINE_ACTIVATION(double, f64, exp, tanh)
