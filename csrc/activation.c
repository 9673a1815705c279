/* Activations, forward and backward: threads and ISA dispatch around csrc/multi/activation_kernels.c.
 * Shapes: x, y, dy, dx are (R, C) C-contiguous; softmax is row-wise, the rest elementwise.
 * Safe inside an OpenMP parallel region (the GEMM epilogue): it then runs serially. */
#include "isa.h"
#include "parallel.h"

#define DECLARE_KERNELS(T, SUF)                                                               \
    PN_DECLARE_ISA(void, pn_act_forward_##SUF, (T * y, const T *x, pn_size n, int act, T alpha)); \
    PN_DECLARE_ISA(void, pn_act_backward_##SUF,                                               \
                   (T * dx, const T *y, const T *dy, pn_size n, int act, T alpha));           \
    PN_DECLARE_ISA(void, pn_softmax_rows_##SUF, (T * y, const T *x, pn_size R, pn_size C));   \
    PN_DECLARE_ISA(void, pn_softmax_backward_rows_##SUF,                                      \
                   (T * dx, const T *y, const T *dy, pn_size R, pn_size C));                  \
    PN_DECLARE_ISA(void, pn_bias_grad_cols_##SUF,                                             \
                   (T * db, const T *dz, pn_size N, pn_size O, pn_size ld));
DECLARE_KERNELS(float, f32)
DECLARE_KERNELS(double, f64)

/* Work units per element: exp-based activations cost ~8 cheap ones. */
static double act_cost(int act) {
    return (act == PN_ACT_SIGMOID || act == PN_ACT_TANH || act == PN_ACT_SOFTMAX) ? 8.0 : 1.0;
}

#define DEFINE_ACTIVATION(T, SUF)                                                             \
    void pn_activation_forward_##SUF(T *y, const T *x, pn_size R, pn_size C, int act,         \
                                     T alpha) {                                               \
        if (act < 0 || act >= PN_ACT_COUNT || R <= 0 || C <= 0) return;                       \
        int nt = pn_threads_here((double)R * C * act_cost(act), PN_GRAIN);                    \
        if (act == PN_ACT_SOFTMAX) {                                                          \
            PN_PARALLEL_SLICES(nt, R, 1,                                                      \
                PN_DISPATCH(pn_softmax_rows_##SUF)(y + lo * C, x + lo * C, hi - lo, C));       \
        } else {                                                                              \
            PN_PARALLEL_SLICES(nt, R * C, 64,                                                 \
                PN_DISPATCH(pn_act_forward_##SUF)(y + lo, x + lo, hi - lo, act, alpha));       \
        }                                                                                     \
    }                                                                                         \
    void pn_activation_backward_##SUF(T *dx, const T *y, const T *dy, pn_size R, pn_size C,   \
                                      int act, T alpha) {                                     \
        if (act < 0 || act >= PN_ACT_COUNT || act == PN_ACT_STEP || R <= 0 || C <= 0) return; \
        int nt = pn_threads_here((double)R * C * (act == PN_ACT_SOFTMAX ? 2.0 : 1.0),         \
                                 PN_GRAIN);                                                   \
        if (act == PN_ACT_SOFTMAX) {                                                          \
            PN_PARALLEL_SLICES(nt, R, 1,                                                      \
                PN_DISPATCH(pn_softmax_backward_rows_##SUF)(dx + lo * C, y + lo * C,          \
                                                            dy + lo * C, hi - lo, C));        \
        } else {                                                                              \
            PN_PARALLEL_SLICES(nt, R * C, 64,                                                 \
                PN_DISPATCH(pn_act_backward_##SUF)(dx + lo, y + lo, dy + lo, hi - lo, act,    \
                                                   alpha));                                   \
        }                                                                                     \
    }                                                                                         \
    void pn_bias_grad_##SUF(T *db, const T *dz, pn_size N, pn_size O) {                       \
        if (O <= 0) return;                                                                   \
        /* threads over slices of 64 columns (disjoint outputs; each column summed in row      \
         * order whatever the split) */                                                      \
        int nt = O >= 128 ? pn_threads_here((double)N * O, PN_GRAIN) : 1;                     \
        PN_PARALLEL_SLICES(nt, O, 64,                                                         \
            PN_DISPATCH(pn_bias_grad_cols_##SUF)(db + lo, dz + lo, N, hi - lo, O));           \
    }

DEFINE_ACTIVATION(float, f32)
DEFINE_ACTIVATION(double, f64)
