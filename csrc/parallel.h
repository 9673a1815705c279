/* How the dispatchers split work over OpenMP threads (internal to csrc/).
 *
 * Threads only ever get disjoint slices of the output; the slices are cut at multiples of `align`
 * elements (a multiple of every vector width), and no result depends on where a slice starts. */
#ifndef PYNN_PARALLEL_H
#define PYNN_PARALLEL_H

#include "isa.h"

/* Elementwise work units (~1 per cheap element) worth one extra thread; an OpenMP fork/join costs
 * a few microseconds, i.e. about this many cheap elements. */
#define PN_GRAIN 32768.0

/* Threads for `work` units: 1 inside any parallel region, even a one-thread one (the GEMM's
 * epilogue calls the activations from its own threads), or below the grain. */
static inline int pn_threads_here(double work, double grain) {
#ifdef PN_OPENMP
    if (omp_get_level() > 0) return 1;
#endif
    return pn_threads_for(work, grain);
}

/* Thread t of nt gets [*lo, *hi) of [0, total): equal slices rounded up to `align`. */
static inline void pn_split(pn_size total, pn_size align, int t, int nt, pn_size *lo,
                            pn_size *hi) {
    pn_size per = (total + nt - 1) / nt;
    per = (per + align - 1) / align * align;
    pn_size a = (pn_size)t * per, b = a + per;
    *lo = a < total ? a : total;
    *hi = b < total ? b : total;
}

#ifdef PN_OPENMP
#define PN_THREAD_ID() omp_get_thread_num()
#define PN_THREAD_COUNT() omp_get_num_threads()
#else
#define PN_THREAD_ID() 0
#define PN_THREAD_COUNT() 1
#endif

/* Run STMT (which uses pn_size lo, hi) over [0, total) on nt threads, slices aligned to ALIGN. */
#define PN_PARALLEL_SLICES(nt, total, align, STMT)                                            \
    do {                                                                                      \
        if ((nt) <= 1) {                                                                      \
            pn_size lo = 0, hi = (total);                                                     \
            if (hi > lo) { STMT; }                                                            \
        } else {                                                                              \
            PN_OMP(parallel num_threads(nt))                                                  \
            {                                                                                 \
                pn_size lo, hi;                                                               \
                pn_split((total), (align), PN_THREAD_ID(), PN_THREAD_COUNT(), &lo, &hi);      \
                if (hi > lo) { STMT; }                                                        \
            }                                                                                 \
        }                                                                                     \
    } while (0)

#endif /* PYNN_PARALLEL_H */
