/* Include FIRST in a source whose loops must vectorise float selects (`a < b ? c : d`).
 *
 * GCC will not if-convert a float comparison under its default -ftrapping-math (the comparison
 * might trap on NaN), so every loop with a clamp, a relu or a NaN-propagating select stays
 * scalar. pynn never unmasks FP traps and the results are bit-for-bit the same, so these files
 * tell GCC that comparisons do not trap. It must precede every function in the file (GCC does not
 * inline across differing optimize settings), hence "first". Clang vectorises such loops already.
 */
#ifndef PYNN_VECTORIZE_H
#define PYNN_VECTORIZE_H
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("no-trapping-math")
#endif

/* `omp simd` on loops whose iterations are independent (also where y == x: each iteration reads
 * its element before writing it). Needs -fopenmp or -fopenmp-simd; otherwise plain loops. */
/* PN_SIMD_SUM(s): the same, with `s` summed in per-lane partials (an order fixed by the code and
 * the ISA, never by the thread count). */
#ifndef PN_SIMD
#if defined(_OPENMP)
#define PN_SIMD _Pragma("omp simd")
#define PN_SIMD_SUM_(x) _Pragma(#x)
#define PN_SIMD_SUM(var) PN_SIMD_SUM_(omp simd reduction(+ : var))
#else
#define PN_SIMD
#define PN_SIMD_SUM(var)
#endif
#endif

#endif /* PYNN_VECTORIZE_H */
