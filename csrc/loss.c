/* Losses with their gradients, fused: threads and ISA dispatch around csrc/multi/loss_kernels.c.
 *
 * Rows are cut in fixed blocks (their size depends on the shape only, never on the thread
 * count); threads take whole blocks; each block returns its loss sum and the block sums are added
 * in block order. The loss is therefore bitwise the same at any thread count.
 */
#include <float.h>
#include <math.h>
#include <stdlib.h>

#include "flush.h"
#include "isa.h"
#include "parallel.h"

#define DECLARE_ELEMENTWISE_KERNEL(NAME, T, SUF)                                              \
    PN_DECLARE_ISA(double, pn_##NAME##_rows_##SUF,                                            \
                   (T * d, const T *p, const T *t, const T *w, pn_size R, pn_size K,          \
                    double inv, double param));
#define DECLARE_LOSS_KERNELS(T, SUF)                                                          \
    PN_DECLARE_ISA(double, pn_xent_rows_##SUF,                                                \
                   (T * d, const T *x, const int64_t *labels, const T *t, const T *w,         \
                    pn_size R, pn_size C, double inv, int kl));                               \
    DECLARE_ELEMENTWISE_KERNEL(mse, T, SUF)                                                   \
    DECLARE_ELEMENTWISE_KERNEL(hinge, T, SUF)                                                 \
    DECLARE_ELEMENTWISE_KERNEL(bce, T, SUF)                                                   \
    DECLARE_ELEMENTWISE_KERNEL(mae, T, SUF)                                                   \
    DECLARE_ELEMENTWISE_KERNEL(huber, T, SUF)                                                 \
    DECLARE_ELEMENTWISE_KERNEL(poisson, T, SUF)
DECLARE_LOSS_KERNELS(float, f32)
DECLARE_LOSS_KERNELS(double, f64)

/* At most this many blocks: their sums live on the stack. */
#define MAX_BLOCKS 256
/* A block holds at least this many elements (so small inputs are one block). */
#define BLOCK_ELEMENTS 4096

static pn_size rows_per_block(pn_size N, pn_size C) {
    pn_size by_size = (BLOCK_ELEMENTS + C - 1) / C;
    pn_size by_count = (N + MAX_BLOCKS - 1) / MAX_BLOCKS;
    pn_size rows = by_size > by_count ? by_size : by_count;
    return rows < 1 ? 1 : rows;
}

/* Run CALL (using pn_size r0, rows) over every block of N rows; leaves the ordered sum of the
 * block results in `total`. */
#define RUN_BLOCKS(total, N, C, cost, flush, CALL)                                            \
    do {                                                                                      \
        double partial_[MAX_BLOCKS];                                                          \
        pn_size rpb_ = rows_per_block((N), (C));                                              \
        pn_size nb_ = ((N) + rpb_ - 1) / rpb_;                                                \
        int nt_ = pn_threads_here((double)(N) * (C) * (cost), PN_GRAIN);                      \
        if (nt_ > nb_) nt_ = (int)nb_;                                                        \
        const int flush_ = (flush);                                                           \
        PN_OMP(parallel for num_threads(nt_) schedule(static) if (nt_ > 1))                  \
        for (pn_size b_ = 0; b_ < nb_; b_++) {                                                \
            pn_size r0 = b_ * rpb_;                                                           \
            pn_size rows = (N) - r0 < rpb_ ? (N) - r0 : rpb_;                                 \
            if (flush_) /* exp-based: a very negative logit's exp is subnormal (flush.h) */    \
                PN_FLUSHED(partial_[b_] = (CALL));                                            \
            else                                                                              \
                partial_[b_] = (CALL);                                                        \
        }                                                                                     \
        total = 0;                                                                            \
        for (pn_size b_ = 0; b_ < nb_; b_++) total += partial_[b_];                           \
    } while (0)

#define DEFINE_LOSSES(T, SUF, T_MIN, T_MAX)                                                          \
    static double weight_sum_##SUF(const T *w, pn_size N) {                                   \
        if (!w) return (double)N;                                                             \
        double s = 0;                                                                         \
        for (pn_size i = 0; i < N; i++) s += (double)w[i];                                    \
        return s;                                                                             \
    }                                                                                         \
    /* The gradient's scale 1 / (sum of the weights * K). When it overflows T (weights whose  \
     * sum is subnormal or nearly so), the weights are first multiplied by a power of two      \
     * (exactly) into *scaled, which the caller frees and uses instead of w: a common factor   \
     * changes neither the loss nor the gradient. Without memory for that, w as it is. */      \
    static double weight_inv_##SUF(const T *w, pn_size N, double K, T **scaled) {             \
        double s = weight_sum_##SUF(w, N) * K, inv = 1.0 / s;                                 \
        *scaled = NULL;                                                                       \
        if (!w || !(s > 0) || inv <= (double)T_MAX) return inv;                               \
        T *ws = (T *)malloc((size_t)N * sizeof(T));                                           \
        if (!ws) return inv;                                                                  \
        int e;                                                                                \
        frexp(s, &e); /* s = f * 2^e, f in [0.5, 1): the scaled sum is in [0.5, 1) * K */      \
        for (pn_size i = 0; i < N; i++) ws[i] = (T)ldexp((double)w[i], -e);                   \
        *scaled = ws;                                                                         \
        return 1.0 / (weight_sum_##SUF(ws, N) * K);                                           \
    }                                                                                         \
    /* An exp-based loss flushes subnormal results, unless a sample weight is itself          \
     * subnormal: then w_i x (p - t) is too, and only IEEE arithmetic keeps the gradient. */  \
    static int may_flush_##SUF(const T *w, pn_size N) {                                       \
        if (!w) return 1;                                                                     \
        for (pn_size i = 0; i < N; i++)                                                       \
            if (w[i] != 0 && w[i] < T_MIN) return 0;                                          \
        return 1;                                                                             \
    }                                                                                         \
    static double xent_##SUF(T *d, const T *x, const int64_t *labels, const T *t,             \
                             const T *w, pn_size N, pn_size C, int kl) {                      \
        if (N <= 0 || C <= 0) return 0;                                                       \
        T *scaled;                                                                            \
        double inv = weight_inv_##SUF(w, N, 1.0, &scaled), total;                             \
        if (scaled) w = scaled;                                                               \
        RUN_BLOCKS(total, N, C, 10.0, may_flush_##SUF(w, N),                                  \
                   PN_DISPATCH(pn_xent_rows_##SUF)(d + r0 * C, x + r0 * C,                    \
                                                   labels ? labels + r0 : NULL,               \
                                                   t ? t + r0 * C : NULL, w ? w + r0 : NULL,  \
                                                   rows, C, inv, kl));                        \
        free(scaled);                                                                         \
        return total * inv;                                                                   \
    }                                                                                         \
    double pn_softmax_xent_labels_##SUF(T *dlogits, const T *logits, const int64_t *labels,   \
                                        const T *w, pn_size N, pn_size C) {                   \
        return xent_##SUF(dlogits, logits, labels, NULL, w, N, C, 0);                         \
    }                                                                                         \
    double pn_softmax_xent_probs_##SUF(T *dlogits, const T *logits, const T *target,          \
                                       const T *w, pn_size N, pn_size C) {                    \
        return xent_##SUF(dlogits, logits, NULL, target, w, N, C, 0);                         \
    }                                                                                         \
    double pn_kl_div_##SUF(T *dlogits, const T *logits, const T *target, const T *w,          \
                           pn_size N, pn_size C) {                                            \
        return xent_##SUF(dlogits, logits, NULL, target, w, N, C, 1);                         \
    }                                                                                         \
    DEFINE_ELEMENTWISE(mse, T, SUF, 2.0, 0)                                                   \
    DEFINE_ELEMENTWISE(hinge, T, SUF, 2.0, 0)                                                 \
    DEFINE_ELEMENTWISE(bce, T, SUF, 20.0, 1)                                                  \
    DEFINE_ELEMENTWISE(mae, T, SUF, 2.0, 0)                                                   \
    DEFINE_ELEMENTWISE(huber, T, SUF, 3.0, 0)                                                 \
    DEFINE_ELEMENTWISE(poisson, T, SUF, 15.0, 1)

#define DEFINE_ELEMENTWISE(NAME, T, SUF, cost, flush)                                         \
    double pn_##NAME##_##SUF(T *d, const T *p, const T *t, const T *w, pn_size N, pn_size K,  \
                             double param) {                                                  \
        if (N <= 0 || K <= 0) return 0;                                                       \
        T *scaled;                                                                            \
        double inv = weight_inv_##SUF(w, N, (double)K, &scaled), total;                       \
        if (scaled) w = scaled;                                                               \
        RUN_BLOCKS(total, N, K, cost, (flush) && may_flush_##SUF(w, N),                       \
                   PN_DISPATCH(pn_##NAME##_rows_##SUF)(d + r0 * K, p + r0 * K, t + r0 * K,    \
                                                       w ? w + r0 : NULL, rows, K, inv,       \
                                                       param));                               \
        free(scaled);                                                                         \
        return total * inv;                                                                   \
    }

DEFINE_LOSSES(float, f32, FLT_MIN, FLT_MAX)
DEFINE_LOSSES(double, f64, DBL_MIN, DBL_MAX)
