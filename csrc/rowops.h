/* Row reductions with a fixed summation order: 16 float (8 double) lane accumulators, one
 * 64-byte vector, then the lanes in order, then the tail. The order is set here, not by the ISA
 * or the thread count, so every path sums the same way; the lane form is what lets the compiler
 * vectorise a float reduction without -ffast-math. Include after "vectorize.h". */
#ifndef PYNN_ROWOPS_H
#define PYNN_ROWOPS_H

#include <math.h>

#include "pynn.h"

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

PN_DEFINE_ROWOPS(float, f32, 16)
PN_DEFINE_ROWOPS(double, f64, 8)

#endif /* PYNN_ROWOPS_H */
