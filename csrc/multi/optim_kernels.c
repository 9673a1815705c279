/* Optimizer steps for one ISA: one fused pass over a slice of the flat buffers (P entries).
 * csrc/optim.c splits the buffers over threads. Every entry is updated on its own, so results do
 * not depend on the split. */
#include "vectorize.h"

#include <math.h>

#include "isa.h"

#define DEFINE_OPTIM_KERNELS(T, SUF, SQRT)                                                    \
    /* SGD, classical momentum as in the source material (velocity holds -lr * the step):     \
     *   g = grad + wd * theta;  v = mu v - lr g;  theta += v  (Nesterov: theta += mu v - lr g). \
     * v == NULL: plain SGD, theta -= lr g. */                                               \
    void PN_ISA_FN(pn_sgd_kernel_##SUF)(T * theta, T * v, const T *grad, pn_size P, T lr,     \
                                        T mu, int nesterov, T wd) {                           \
        if (!v) {                                                                             \
            PN_SIMD                                                                           \
            for (pn_size i = 0; i < P; i++) theta[i] -= lr * (grad[i] + wd * theta[i]);       \
        } else if (!nesterov) {                                                               \
            PN_SIMD                                                                           \
            for (pn_size i = 0; i < P; i++) {                                                 \
                T vi = mu * v[i] - lr * (grad[i] + wd * theta[i]);                            \
                v[i] = vi;                                                                    \
                theta[i] += vi;                                                               \
            }                                                                                 \
        } else {                                                                              \
            PN_SIMD                                                                           \
            for (pn_size i = 0; i < P; i++) {                                                 \
                T step = lr * (grad[i] + wd * theta[i]);                                      \
                T vi = mu * v[i] - step;                                                      \
                v[i] = vi;                                                                    \
                theta[i] += mu * vi - step;                                                   \
            }                                                                                 \
        }                                                                                     \
    }                                                                                         \
    /* Adam with decoupled weight decay (AdamW), in PyTorch's order of operations:            \
     *   theta *= 1 - lr wd;  m += (1 - b1)(g - m);  v = b2 v + (1 - b2) g^2;                 \
     *   theta -= step_size * m / (sqrt(v) / bc2_sqrt + eps)                                  \
     * with step_size = lr / (1 - b1^t), bc2_sqrt = sqrt(1 - b2^t) computed by the caller. */ \
    void PN_ISA_FN(pn_adam_kernel_##SUF)(T * theta, T * m, T * v, const T *grad, pn_size P,   \
                                         T step_size, T decay, T one_b1, T b2, T one_b2,      \
                                         T eps, T bc2_sqrt) {                                 \
        PN_SIMD                                                                               \
        for (pn_size i = 0; i < P; i++) {                                                     \
            T g = grad[i];                                                                    \
            T mi = m[i] + one_b1 * (g - m[i]);                                                \
            T vi = b2 * v[i] + one_b2 * g * g;                                                \
            m[i] = mi;                                                                        \
            v[i] = vi;                                                                        \
            T denom = SQRT(vi) / bc2_sqrt + eps;                                              \
            theta[i] = theta[i] * decay - step_size * (mi / denom);                           \
        }                                                                                     \
    }                                                                                         \
    /* RMSprop in PyTorch's order (L2 weight decay added to the gradient):                   \
     *   g += wd theta;  v = alpha v + (1 - alpha) g^2;                                       \
     *   centered (gavg != NULL): gavg = alpha gavg + (1 - alpha) g, denom = sqrt(v - gavg^2) \
     *   + eps; else denom = sqrt(v) + eps;                                                   \
     *   momentum (buf != NULL): buf = mu buf + g / denom, theta -= lr buf;                   \
     *   else theta -= lr g / denom. */                                                       \
    void PN_ISA_FN(pn_rmsprop_kernel_##SUF)(T * theta, T * v, T * gavg, T * buf,              \
                                            const T *grad, pn_size P, T lr, T alpha,          \
                                            T one_alpha, T eps, T wd, T mu) {                 \
        PN_SIMD                                                                               \
        for (pn_size i = 0; i < P; i++) {                                                     \
            T g = grad[i] + wd * theta[i];                                                    \
            T vi = alpha * v[i] + one_alpha * (g * g);                                        \
            v[i] = vi;                                                                        \
            T centre = 0;                                                                     \
            if (gavg) {                                                                       \
                T ai = alpha * gavg[i] + one_alpha * g;                                       \
                gavg[i] = ai;                                                                 \
                centre = ai * ai;                                                             \
            }                                                                                 \
            T denom = SQRT(vi - centre) + eps;                                                \
            if (buf) {                                                                        \
                T bi = mu * buf[i] + g / denom;                                               \
                buf[i] = bi;                                                                  \
                theta[i] -= lr * bi;                                                          \
            } else {                                                                          \
                theta[i] -= lr * (g / denom);                                                 \
            }                                                                                 \
        }                                                                                     \
    }                                                                                         \
    /* Adagrad in PyTorch's order: g += wd theta; sum += g^2;                                 \
     * theta -= clr g / (sqrt(sum) + eps), clr = lr / (1 + (step - 1) lr_decay) from the      \
     * caller. */                                                                             \
    void PN_ISA_FN(pn_adagrad_kernel_##SUF)(T * theta, T * sum, const T *grad, pn_size P,     \
                                            T clr, T eps, T wd) {                             \
        PN_SIMD                                                                               \
        for (pn_size i = 0; i < P; i++) {                                                     \
            T g = grad[i] + wd * theta[i];                                                    \
            T si = sum[i] + g * g;                                                            \
            sum[i] = si;                                                                      \
            theta[i] -= clr * (g / (SQRT(si) + eps));                                         \
        }                                                                                     \
    }

/* The L2 penalty's two passes in one: grad += c w (grad NULL: skipped), and sum w^2 in double
 * (per-lane partials: an order fixed by the ISA, never by the threads). */
#define DEFINE_L2_KERNEL(T, SUF)                                                              \
    double PN_ISA_FN(pn_l2_kernel_##SUF)(T * grad, const T *w, pn_size P, T c) {              \
        double s = 0;                                                                         \
        if (grad) {                                                                           \
            PN_SIMD_SUM(s)                                                                    \
            for (pn_size i = 0; i < P; i++) {                                                 \
                T wi = w[i];                                                                  \
                grad[i] += c * wi;                                                            \
                s += (double)wi * (double)wi;                                                 \
            }                                                                                 \
        } else {                                                                              \
            PN_SIMD_SUM(s)                                                                    \
            for (pn_size i = 0; i < P; i++) s += (double)w[i] * (double)w[i];                 \
        }                                                                                     \
        return s;                                                                             \
    }

DEFINE_L2_KERNEL(float, f32)
DEFINE_L2_KERNEL(double, f64)
DEFINE_OPTIM_KERNELS(float, f32, sqrtf)
DEFINE_OPTIM_KERNELS(double, f64, sqrt)
