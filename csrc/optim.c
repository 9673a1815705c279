/* Optimizer steps over flat parameter buffers: threads and ISA dispatch around
 * csrc/multi/optim_kernels.c. Slices are disjoint and cut at multiples of 64 entries.
 *
 * Subnormals are flushed (flush.h): the momentum of a weight whose gradient is exactly 0 (a
 * pixel that is always 0, a dead unit) decays into the subnormal range and, in IEEE arithmetic,
 * sticks there (0.9 x 4 ulp rounds back to 4 ulp); every later step then paid a microcode
 * assist per such entry on Intel cores: the SGD step of a Fashion-MNIST MLP became 6.6x slower
 * within 4 epochs, the whole epoch 2x. */
#include <math.h>

#include "flush.h"
#include "isa.h"
#include "parallel.h"

#define DECLARE_OPTIM_KERNELS(T, SUF)                                                         \
    PN_DECLARE_ISA(void, pn_sgd_kernel_##SUF,                                                 \
                   (T * theta, T * v, const T *grad, pn_size P, T lr, T mu, int nesterov,     \
                    T wd));                                                                   \
    PN_DECLARE_ISA(void, pn_adam_kernel_##SUF,                                                \
                   (T * theta, T * m, T * v, const T *grad, pn_size P, T step_size, T decay,  \
                    T one_b1, T b2, T one_b2, T eps, T bc2_sqrt));                            \
    PN_DECLARE_ISA(void, pn_rmsprop_kernel_##SUF,                                             \
                   (T * theta, T * v, T * gavg, T * buf, const T *grad, pn_size P, T lr,      \
                    T alpha, T one_alpha, T eps, T wd, T mu));                                \
    PN_DECLARE_ISA(void, pn_adagrad_kernel_##SUF,                                             \
                   (T * theta, T * sum, const T *grad, pn_size P, T clr, T eps, T wd));
DECLARE_OPTIM_KERNELS(float, f32)
DECLARE_OPTIM_KERNELS(double, f64)
PN_DECLARE_ISA(double, pn_l2_kernel_f32, (float *grad, const float *w, pn_size P, float c));
PN_DECLARE_ISA(double, pn_l2_kernel_f64, (double *grad, const double *w, pn_size P, double c));

/* The L2 penalty's sum is cut in blocks of at least this many entries, at most PN_L2_BLOCKS of
 * them (sized by P alone), summed in block order: the same at any thread count. */
#define PN_L2_MIN_BLOCK 8192
#define PN_L2_BLOCKS 256

#define DEFINE_L2(T, SUF)                                                                     \
    double pn_l2_penalty_##SUF(T *grad, const T *w, pn_size P, double c) {                    \
        if (P <= 0) return 0.0;                                                               \
        pn_size block = (P + PN_L2_BLOCKS - 1) / PN_L2_BLOCKS;                                \
        block = block < PN_L2_MIN_BLOCK ? PN_L2_MIN_BLOCK : (block + 63) / 64 * 64;           \
        const pn_size nb = (P + block - 1) / block;                                           \
        double part[PN_L2_BLOCKS];                                                            \
        int nt = pn_threads_here((double)P * (grad ? 2.0 : 1.0), PN_GRAIN);                   \
        if (nt > nb) nt = (int)nb;                                                            \
        PN_OMP(parallel for num_threads(nt) schedule(static) if (nt > 1))                    \
        for (pn_size b = 0; b < nb; b++) {                                                    \
            pn_size lo = b * block, n = P - lo < block ? P - lo : block;                      \
            part[b] = PN_DISPATCH(pn_l2_kernel_##SUF)(grad ? grad + lo : NULL, w + lo, n,     \
                                                       (T)c);                                 \
        }                                                                                     \
        double total = 0;                                                                     \
        for (pn_size b = 0; b < nb; b++) total += part[b];                                    \
        return total;                                                                         \
    }

DEFINE_L2(float, f32)
DEFINE_L2(double, f64)

#define DEFINE_OPTIM(T, SUF)                                                                  \
    void pn_sgd_step_##SUF(T *params, T *velocity, const T *grads, pn_size P, double lr,      \
                           double momentum, int nesterov, double weight_decay) {              \
        int nt = pn_threads_here((double)P, PN_GRAIN);                                        \
        PN_PARALLEL_SLICES(nt, P, 64, PN_FLUSHED(                                             \
            PN_DISPATCH(pn_sgd_kernel_##SUF)(params + lo, velocity ? velocity + lo : NULL,    \
                                             grads + lo, hi - lo, (T)lr, (T)momentum,         \
                                             nesterov, (T)weight_decay)));                    \
    }                                                                                         \
    void pn_adam_step_##SUF(T *params, T *m, T *v, const T *grads, pn_size P, int64_t step,   \
                            double lr, double beta1, double beta2, double eps,                \
                            double weight_decay) {                                            \
        /* 1 - beta in double, then rounded (as PyTorch's Python scalars): 1 - (float)0.999  \
         * would be 4.7e-5 off in float32 */                                                  \
        double bc1 = 1.0 - pow(beta1, (double)step), bc2 = 1.0 - pow(beta2, (double)step);    \
        T step_size = (T)(lr / bc1), bc2_sqrt = (T)sqrt(bc2), decay = (T)(1.0 - lr * weight_decay); \
        int nt = pn_threads_here((double)P * 2, PN_GRAIN);                                    \
        PN_PARALLEL_SLICES(nt, P, 64, PN_FLUSHED(                                             \
            PN_DISPATCH(pn_adam_kernel_##SUF)(params + lo, m + lo, v + lo, grads + lo,        \
                                              hi - lo, step_size, decay, (T)(1.0 - beta1),    \
                                              (T)beta2, (T)(1.0 - beta2), (T)eps,             \
                                              bc2_sqrt)));                                    \
    }                                                                                         \
    void pn_rmsprop_step_##SUF(T *params, T *v, T *gavg, T *buf, const T *grads, pn_size P,   \
                               double lr, double alpha, double eps, double weight_decay,      \
                               double momentum) {                                             \
        int nt = pn_threads_here((double)P * 2, PN_GRAIN);                                    \
        PN_PARALLEL_SLICES(nt, P, 64, PN_FLUSHED(                                             \
            PN_DISPATCH(pn_rmsprop_kernel_##SUF)(params + lo, v + lo,                         \
                                                 gavg ? gavg + lo : NULL,                     \
                                                 buf ? buf + lo : NULL, grads + lo, hi - lo,  \
                                                 (T)lr, (T)alpha, (T)(1.0 - alpha), (T)eps,   \
                                                 (T)weight_decay, (T)momentum)));             \
    }                                                                                         \
    void pn_adagrad_step_##SUF(T *params, T *sum, const T *grads, pn_size P, int64_t step,    \
                               double lr, double lr_decay, double eps, double weight_decay) { \
        T clr = (T)(lr / (1.0 + (double)(step - 1) * lr_decay));                              \
        int nt = pn_threads_here((double)P * 2, PN_GRAIN);                                    \
        PN_PARALLEL_SLICES(nt, P, 64, PN_FLUSHED(                                             \
            PN_DISPATCH(pn_adagrad_kernel_##SUF)(params + lo, sum + lo, grads + lo, hi - lo,  \
                                                 clr, (T)eps, (T)weight_decay)));             \
    }

DEFINE_OPTIM(float, f32)
DEFINE_OPTIM(double, f64)
