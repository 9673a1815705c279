/* Activations, forward and backward: threads and ISA dispatch around csrc/multi/activation_kernels.c.
 * Shapes: x, y, dy, dx are (R, C) C-contiguous; softmax is row-wise, the rest elementwise.
 * Safe inside an OpenMP parallel region (the GEMM epilogue): it then runs serially. */
#include "isa.h"
#include "flush.h"
#include "parallel.h"

#define DECLARE_KERNELS(T, SUF)                                                               \
    PN_DECLARE_ISA(void, pn_act_forward_##SUF, (T * y, const T *x, pn_size n, int act, T alpha)); \
    PN_DECLARE_ISA(void, pn_act_backward_##SUF,                                               \
                   (T * dx, const T *y, const T *dy, pn_size n, int act, T alpha));           \
    PN_DECLARE_ISA(void, pn_softmax_rows_##SUF, (T * y, const T *x, pn_size R, pn_size C));   \
    PN_DECLARE_ISA(void, pn_softmax_backward_rows_##SUF,                                      \
                   (T * dx, const T *y, const T *dy, pn_size R, pn_size C));                  \
    PN_DECLARE_ISA(void, pn_act_bias_backward_cols_##SUF,                                     \
                   (T * dz, T * db, const T *y, const T *dy, pn_size N, pn_size O, pn_size j0, \
                    pn_size j1, int act, T alpha, int accumulate));
DECLARE_KERNELS(float, f32)
DECLARE_KERNELS(double, f64)

/* Elements per thread worth threads in the fused dz/bias-gradient pass. */
#define PN_DZ_GRAIN 16384.0

/* Names by id: with the enum in pynn.h, the one definition of the activations. */
static const char *const act_names[PN_ACT_COUNT] = {
    [PN_ACT_IDENTITY] = "identity", [PN_ACT_RELU] = "relu",   [PN_ACT_LEAKY_RELU] = "leaky_relu",
    [PN_ACT_SIGMOID] = "sigmoid",   [PN_ACT_TANH] = "tanh",   [PN_ACT_SOFTMAX] = "softmax",
    [PN_ACT_STEP] = "step"};

const char *pn_act_name(int act) {
    return (act >= 0 && act < PN_ACT_COUNT) ? act_names[act] : "unknown";
}

int pn_act_has_backward(int act) { return act >= 0 && act < PN_ACT_COUNT && act != PN_ACT_STEP; }

/* The exp-based activations: they cost ~8 cheap elementwise operations, and their forward
 * runs with subnormal results flushed (flush.h: the exp of a very negative number is
 * subnormal). Backwards are not flushed: a forward output is never subnormal, and there
 * y (1 - y) dy must keep a subnormal y's product with a huge dy. */
static int act_exp_based(int act) {
    return act == PN_ACT_SIGMOID || act == PN_ACT_TANH || act == PN_ACT_SOFTMAX;
}
static double act_cost(int act) { return act_exp_based(act) ? 8.0 : 1.0; }
/* STMT, flushed for an exp-based activation. */
#define ACT_FLUSHED(act, STMT)                                                                \
    do {                                                                                      \
        if (act_exp_based(act))                                                               \
            PN_FLUSHED(STMT);                                                                 \
        else                                                                                  \
            STMT;                                                                             \
    } while (0)

#define DEFINE_ACTIVATION(T, SUF)                                                             \
    void pn_activation_forward_##SUF(T *y, const T *x, pn_size R, pn_size C, int act,         \
                                     T alpha) {                                               \
        if (act < 0 || act >= PN_ACT_COUNT || R <= 0 || C <= 0) return;                       \
        int nt = pn_threads_here((double)R * C * act_cost(act), PN_GRAIN);                    \
        if (act == PN_ACT_SOFTMAX) {                                                          \
            PN_PARALLEL_SLICES(nt, R, 1, PN_FLUSHED(                                          \
                PN_DISPATCH(pn_softmax_rows_##SUF)(y + lo * C, x + lo * C, hi - lo, C)));      \
        } else {                                                                              \
            PN_PARALLEL_SLICES(nt, R * C, 64, ACT_FLUSHED(act,                                \
                PN_DISPATCH(pn_act_forward_##SUF)(y + lo, x + lo, hi - lo, act, alpha)));      \
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
    void pn_activation_bias_backward_##SUF(T *dz, T *db, const T *y, const T *dy, pn_size N,  \
                                           pn_size O, int act, T alpha, int accumulate) {     \
        if (O <= 0) return;                                                                   \
        if (N <= 0) { /* an empty sum */                                                      \
            if (!accumulate)                                                                  \
                for (pn_size j = 0; j < O; j++) db[j] = 0;                                    \
            return;                                                                           \
        }                                                                                     \
        /* threads over slices of 64 columns (disjoint outputs; each column summed in the      \
         * kernel's one order whatever the split) */                                          \
        int nt = pn_threads_here((double)N * O * (act == PN_ACT_SOFTMAX ? 2.0 : 1.0),         \
                                 PN_DZ_GRAIN);                                                \
        PN_PARALLEL_SLICES(nt, O, 64,                                                         \
            PN_DISPATCH(pn_act_bias_backward_cols_##SUF)(dz, db, y, dy, N, O, lo, hi, act,    \
                                                         alpha, accumulate));                 \
    }                                                                                         \
    void pn_bias_grad_##SUF(T *db, const T *dz, pn_size N, pn_size O) {                       \
        pn_activation_bias_backward_##SUF(NULL, db, NULL, dz, N, O, PN_ACT_IDENTITY, 0, 0);   \
    }

DEFINE_ACTIVATION(float, f32)
DEFINE_ACTIVATION(double, f64)
