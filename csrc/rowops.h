/* Row reductions with a fixed summation order: 16 float (8 double) lane accumulators, one
 * 64-byte vector, then the lanes in order, then the tail. The order is set here, not by the ISA
 * or the thread count, so every path sums the same way; the lane form is what lets the compiler
 * vectorise a float reduction without -ffast-math. Include after "vectorize.h". */
#ifndef PYNN_ROWOPS_H
#define PYNN_ROWOPS_H

#include <math.h>

#include "pynn.h"
#include "vmath.h"

/* Rows per softmax group: a group's exp runs as one flat vectorised loop over its g*C entries
 * (no per-row vector tails: rows of 10 logits vectorise as well as rows of 1000). */
#define PN_GROUP_ELEMENTS 4096
#define PN_GROUP_MAX_ROWS 256
static inline pn_size pn_group_rows(pn_size C) {
    pn_size g = PN_GROUP_ELEMENTS / C;
    return g < 1 ? 1 : (g > PN_GROUP_MAX_ROWS ? PN_GROUP_MAX_ROWS : g);
}

#define PN_DEFINE_ROWOPS(T, SUF, LANES)                                                       \
    /* max over x[0..n); NaN entries are skipped (the caller's exp(x - max) propagates them) */ \
    static inline T pn_rowmax_##SUF(const T *x, pn_size n) {                                  \
        T acc[LANES];                                                                         \
        for (int k = 0; k < LANES; k++) acc[k] = -INFINITY;                                   \
        pn_size j = 0;                                                                        \
        for (; j + LANES <= n; j += LANES)                                                    \
            for (int k = 0; k < LANES; k++) acc[k] = x[j + k] > acc[k] ? x[j + k] : acc[k];   \
        T m = -INFINITY;                                                                      \
        for (int k = 0; k < LANES; k++) m = acc[k] > m ? acc[k] : m;                          \
        for (; j < n; j++) m = x[j] > m ? x[j] : m;                                           \
        return m;                                                                             \
    }                                                                                         \
    static inline T pn_rowsum_##SUF(const T *x, pn_size n) {                                  \
        T acc[LANES] = {0};                                                                   \
        pn_size j = 0;                                                                        \
        for (; j + LANES <= n; j += LANES)                                                    \
            for (int k = 0; k < LANES; k++) acc[k] += x[j + k];                               \
        T s = 0;                                                                              \
        for (int k = 0; k < LANES; k++) s += acc[k];                                          \
        for (; j < n; j++) s += x[j];                                                         \
        return s;                                                                             \
    }                                                                                         \
    static inline T pn_rowdot_##SUF(const T *x, const T *y, pn_size n) {                      \
        T acc[LANES] = {0};                                                                   \
        pn_size j = 0;                                                                        \
        for (; j + LANES <= n; j += LANES)                                                    \
            for (int k = 0; k < LANES; k++) acc[k] += x[j + k] * y[j + k];                    \
        T s = 0;                                                                              \
        for (int k = 0; k < LANES; k++) s += acc[k];                                          \
        for (; j < n; j++) s += x[j] * y[j];                                                  \
        return s;                                                                             \
    }

#define PN_DEFINE_SOFTMAX_GROUP(T, SUF, EXP)                                                  \
    /* rows [0, g) of x (g, C): e = exp(x - rowmax), m[r] = rowmax, s[r] = rowsum(e) */        \
    static inline void pn_exp_shifted_rows_##SUF(T *e, T *m, T *s, const T *x, pn_size g,     \
                                                 pn_size C) {                                 \
        for (pn_size r = 0; r < g; r++) {                                                     \
            const T *xr = x + r * C;                                                          \
            T *er = e + r * C;                                                                \
            T mr = pn_rowmax_##SUF(xr, C);                                                    \
            m[r] = mr;                                                                        \
            PN_SIMD                                                                           \
            for (pn_size j = 0; j < C; j++) er[j] = xr[j] - mr;                               \
        }                                                                                     \
        pn_size n = g * C;                                                                    \
        PN_SIMD                                                                               \
        for (pn_size i = 0; i < n; i++) e[i] = EXP(e[i]);                                     \
        for (pn_size r = 0; r < g; r++) s[r] = pn_rowsum_##SUF(e + r * C, C);                 \
    }

PN_DEFINE_ROWOPS(float, f32, 16)
PN_DEFINE_ROWOPS(double, f64, 8)
PN_DEFINE_SOFTMAX_GROUP(float, f32, pn_exp_f32)
PN_DEFINE_SOFTMAX_GROUP(double, f64, pn_exp_f64)

#endif /* PYNN_ROWOPS_H */
