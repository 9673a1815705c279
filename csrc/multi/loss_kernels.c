/* Loss kernels for one ISA: each computes, over a block of rows, the gradient (overwritten) and
 * returns the block's weighted loss sum sum_r w_r * l_r in double; csrc/loss.c runs the blocks on
 * threads and adds the block sums in block order.
 * Shapes: x (logits), p (predictions), t (target), d (gradient) are (R, C) or (R, K); labels (R);
 * w (R) or NULL (every weight 1). `inv` = 1 / (sum of all N weights [* K]): the gradient's scale.
 */
#include "vectorize.h"

#include <math.h>

#include "isa.h"
#include "rowops.h"
#include "vmath.h"

#define DEFINE_XENT_KERNEL(T, SUF, LOG)                                                       \
    /* Softmax cross-entropy (kl = 0) or KL divergence (kl = 1) from logits, in one pass over   \
     * each group of rows: d = (softmax(x) * sum(t) - t) * w_r * inv. labels != NULL: t is      \
     * one-hot. log softmax is taken as x - max - log(sum exp(x - max)), in that order (as      \
     * PyTorch's log_softmax): 1e4 or 1e8-scaled logits then give finite, exact losses. */     \
    double PN_ISA_FN(pn_xent_rows_##SUF)(T * d, const T *x, const int64_t *labels,            \
                                         const T *t, const T *w, pn_size R, pn_size C,        \
                                         double inv, int kl) {                                \
        T m[PN_GROUP_MAX_ROWS], s[PN_GROUP_MAX_ROWS], logs[PN_GROUP_MAX_ROWS];                \
        pn_size G = pn_group_rows(C);                                                         \
        double total = 0;                                                                     \
        for (pn_size r0 = 0; r0 < R; r0 += G) {                                               \
            pn_size g = R - r0 < G ? R - r0 : G;                                              \
            pn_exp_shifted_rows_##SUF(d + r0 * C, m, s, x + r0 * C, g, C);                    \
            PN_SIMD                                                                           \
            for (pn_size r = 0; r < g; r++) logs[r] = LOG(s[r]);                              \
            for (pn_size q = 0; q < g; q++) {                                                 \
                pn_size r = r0 + q;                                                           \
                const T *xr = x + r * C;                                                      \
                T *dr = d + r * C;                                                            \
                double wr = w ? (double)w[r] : 1.0;                                           \
                T scale = (T)(wr * inv), mr = m[q], lr = logs[q];                             \
                double loss;                                                                  \
                if (labels) {                                                                 \
                    pn_size y = (pn_size)labels[r];                                           \
                    loss = -(double)((xr[y] - mr) - lr);                                      \
                    T k = scale / s[q];                                                       \
                    PN_SIMD                                                                   \
                    for (pn_size j = 0; j < C; j++) dr[j] *= k;                               \
                    dr[y] -= scale;                                                           \
                } else {                                                                      \
                    const T *tr = t + r * C;                                                  \
                    loss = 0;                                                                 \
                    for (pn_size j = 0; j < C; j++) { /* 0 * log 0 counts as 0 */             \
                        if (tr[j] != 0) {                                                     \
                            loss -= (double)tr[j] * (double)((xr[j] - mr) - lr);              \
                            if (kl) loss += (double)tr[j] * log((double)tr[j]);               \
                        }                                                                     \
                    }                                                                         \
                    T k = scale * pn_rowsum_##SUF(tr, C) / s[q];                              \
                    PN_SIMD                                                                   \
                    for (pn_size j = 0; j < C; j++) dr[j] = dr[j] * k - tr[j] * scale;        \
                }                                                                             \
                total += wr * loss;                                                           \
            }                                                                                 \
        }                                                                                     \
        return total;                                                                         \
    }

/* Elementwise losses: BODY(T, p, t, a, l, g) sets the loss l and the derivative g of one element;
 * a = (T)param is the loss's parameter (huber's delta; the other losses ignore it).
 * Unweighted or one column: flat blocks of 1024 elements, each summed in T with `omp simd`
 * lane partials (fixed by the block, not the thread count), then in double; weighted: by rows. */
#define DEFINE_ELEMENTWISE_LOSS(NAME, T, SUF, BODY, SIMD_SUM)                                 \
    double PN_ISA_FN(pn_##NAME##_rows_##SUF)(T * d, const T *p, const T *t, const T *w,       \
                                             pn_size R, pn_size K, double inv,                \
                                             double param) {                                  \
        double total = 0;                                                                     \
        T tinv = (T)inv, a = (T)param;                                                        \
        (void)a;                                                                              \
        if (w == NULL) {                                                                      \
            pn_size n = R * K;                                                                \
            for (pn_size b = 0; b < n; b += 1024) {                                           \
                pn_size e = n - b < 1024 ? n : b + 1024;                                      \
                T s = 0;                                                                      \
                SIMD_SUM(s)                                                                   \
                for (pn_size i = b; i < e; i++) {                                             \
                    T l, g;                                                                   \
                    BODY(T, p[i], t[i], a, l, g);                                                \
                    s += l;                                                                   \
                    d[i] = g * tinv;                                                          \
                }                                                                             \
                total += (double)s;                                                           \
            }                                                                                 \
        } else if (K == 1) {                                                                  \
            for (pn_size b = 0; b < R; b += 1024) {                                           \
                pn_size e = R - b < 1024 ? R : b + 1024;                                      \
                T s = 0;                                                                      \
                SIMD_SUM(s)                                                                   \
                for (pn_size i = b; i < e; i++) {                                             \
                    T l, g;                                                                   \
                    BODY(T, p[i], t[i], a, l, g);                                                \
                    s += w[i] * l;                                                            \
                    d[i] = g * (w[i] * tinv);                                                 \
                }                                                                             \
                total += (double)s;                                                           \
            }                                                                                 \
        } else {                                                                              \
            for (pn_size r = 0; r < R; r++) {                                                 \
                const T *pr = p + r * K, *tr = t + r * K;                                     \
                T *dr = d + r * K;                                                            \
                T s = 0, sc = w[r] * tinv;                                                    \
                SIMD_SUM(s)                                                                   \
                for (pn_size j = 0; j < K; j++) {                                             \
                    T l, g;                                                                   \
                    BODY(T, pr[j], tr[j], a, l, g);                                              \
                    s += l;                                                                   \
                    dr[j] = g * sc;                                                           \
                }                                                                             \
                total += (double)w[r] * (double)s;                                            \
            }                                                                                 \
        }                                                                                     \
        return total;                                                                         \
    }

/* mean squared error: (p - t)^2, derivative 2 (p - t) */
#define MSE_BODY(T, pv, tv, a, l, g)                                                                \
    do {                                                                                      \
        T diff_ = (pv) - (tv);                                                   \
        l = diff_ * diff_;                                                                    \
        g = 2 * diff_;                                                                        \
    } while (0)
/* Keras' hinge: target 1 or else -1; max(0, 1 - t s), subgradient -t where the margin is > 0.
 * m < 0 is false for NaN, so a NaN score gives a NaN loss. */
#define HINGE_BODY(T, sv, tv, a, l, g)                                                              \
    do {                                                                                      \
        T sign_ = (tv) > 0 ? 1 : -1;                                             \
        T m_ = 1 - sign_ * (sv);                                                 \
        l = m_ < 0 ? 0 : m_;                                                                  \
        g = m_ > 0 ? -sign_ : 0;                                                              \
    } while (0)
/* binary cross-entropy from logits (as torch's BCEWithLogitsLoss): max(x, 0) - x t +
 * log1p(exp(-|x|)), derivative sigmoid(x) - t; no term overflows for any |x|. */
#define BCE_BODY_(T, xv, tv, l, g, EXP, LOG1P, FABS)                                             \
    do {                                                                                      \
        T e_ = EXP(-FABS(xv));                                                   \
        l = ((xv) > 0 ? (xv) : 0) - (xv) * (tv) + LOG1P(e_);                                  \
        g = ((xv) >= 0 ? 1 : e_) / (1 + e_) - (tv);                                           \
    } while (0)
#define BCE_BODY_F32(T, xv, tv, a, l, g) BCE_BODY_(T, xv, tv, l, g, pn_exp_f32, pn_log1p_f32, fabsf)
#define BCE_BODY_F64(T, xv, tv, a, l, g) BCE_BODY_(T, xv, tv, l, g, pn_exp_f64, pn_log1p_f64, fabs)

/* mean absolute error (torch's L1Loss): |p - t|, derivative sign(p - t) (0 where p == t) */
#define MAE_BODY(T, pv, tv, a, l, g)                                                          \
    do {                                                                                      \
        T diff_ = (pv) - (tv);                                                                \
        l = diff_ < 0 ? -diff_ : diff_;                                                       \
        g = (T)((diff_ > 0) - (diff_ < 0));                                                   \
        if (diff_ != diff_) g = diff_; /* a NaN prediction gives a NaN gradient */            \
    } while (0)
/* Huber with threshold a = delta (torch's HuberLoss): 0.5 d^2 where |d| <= delta, else
 * delta (|d| - delta / 2); derivative d clipped to [-delta, delta]. */
#define HUBER_BODY(T, pv, tv, a, l, g)                                                        \
    do {                                                                                      \
        T diff_ = (pv) - (tv);                                                                \
        T abs_ = diff_ < 0 ? -diff_ : diff_;                                                  \
        l = abs_ <= a ? (T)0.5 * diff_ * diff_ : a * (abs_ - (T)0.5 * a);                     \
        g = diff_ > a ? a : (diff_ < -a ? -a : diff_);                                        \
    } while (0)
/* Poisson negative log-likelihood with a log link (torch's PoissonNLLLoss(log_input=True,
 * full=False)): the output x is log(rate); exp(x) - t x, derivative exp(x) - t. */
#define POISSON_BODY_(T, xv, tv, l, g, EXP)                                                   \
    do {                                                                                      \
        T rate_ = EXP(xv);                                                                    \
        l = rate_ - (tv) * (xv);                                                              \
        g = rate_ - (tv);                                                                     \
    } while (0)
#define POISSON_BODY_F32(T, xv, tv, a, l, g) POISSON_BODY_(T, xv, tv, l, g, pn_exp_f32)
#define POISSON_BODY_F64(T, xv, tv, a, l, g) POISSON_BODY_(T, xv, tv, l, g, pn_exp_f64)

DEFINE_XENT_KERNEL(float, f32, pn_log_f32)
DEFINE_XENT_KERNEL(double, f64, pn_log_f64)
DEFINE_ELEMENTWISE_LOSS(mse, float, f32, MSE_BODY, PN_SIMD_SUM)
DEFINE_ELEMENTWISE_LOSS(mse, double, f64, MSE_BODY, PN_SIMD_SUM)
DEFINE_ELEMENTWISE_LOSS(hinge, float, f32, HINGE_BODY, PN_SIMD_SUM)
DEFINE_ELEMENTWISE_LOSS(hinge, double, f64, HINGE_BODY, PN_SIMD_SUM)
DEFINE_ELEMENTWISE_LOSS(bce, float, f32, BCE_BODY_F32, PN_SIMD_SUM)
DEFINE_ELEMENTWISE_LOSS(bce, double, f64, BCE_BODY_F64, PN_SIMD_SUM)
DEFINE_ELEMENTWISE_LOSS(mae, float, f32, MAE_BODY, PN_SIMD_SUM)
DEFINE_ELEMENTWISE_LOSS(mae, double, f64, MAE_BODY, PN_SIMD_SUM)
DEFINE_ELEMENTWISE_LOSS(huber, float, f32, HUBER_BODY, PN_SIMD_SUM)
DEFINE_ELEMENTWISE_LOSS(huber, double, f64, HUBER_BODY, PN_SIMD_SUM)
DEFINE_ELEMENTWISE_LOSS(poisson, float, f32, POISSON_BODY_F32, PN_SIMD_SUM)
DEFINE_ELEMENTWISE_LOSS(poisson, double, f64, POISSON_BODY_F64, PN_SIMD_SUM)
