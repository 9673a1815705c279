/* Mini-batch data movement: gathering the rows of a shuffled batch, and the NaN/inf scan of
 * inputs. Memory traffic only, no arithmetic: one source serves every ISA. */
#include <string.h>

#include "isa.h"
#include "parallel.h"

/* Rows whose cache lines are requested ahead of the row being copied. A shuffled batch's rows
 * lie anywhere in the data set (usually DRAM): copied one after another, each row would wait
 * out its own misses; requested a few rows ahead, the misses overlap. They are requested into
 * L2 (prefetcht1), whose miss queue is deeper than L1's: 128 rows of 3136 bytes in 41 us
 * instead of 62 us at 1 thread (Zen 4; 8 rows ahead into L1 as before: no faster). */
#define PN_GATHER_AHEAD 8
/* Bytes per thread worth a second thread (a fork/join costs about this much copying). */
#define PN_GATHER_GRAIN 131072.0
/* Elements scanned between early exits of the finiteness check. */
#define PN_FINITE_CHUNK 16384

static inline void prefetch_row(const char *row, pn_size bytes) { /* locality 2: into L2 */
    for (pn_size off = 0; off < bytes; off += 64) __builtin_prefetch(row + off, 0, 2);
}

static void gather_slice(char *dst, const char *src, const int64_t *idx, pn_size lo, pn_size hi,
                         pn_size row_bytes) {
    for (pn_size r = lo; r < hi && r < lo + PN_GATHER_AHEAD; r++)
        prefetch_row(src + idx[r] * row_bytes, row_bytes);
    for (pn_size r = lo; r < hi; r++) {
        if (r + PN_GATHER_AHEAD < hi)
            prefetch_row(src + idx[r + PN_GATHER_AHEAD] * row_bytes, row_bytes);
        memcpy(dst + r * row_bytes, src + idx[r] * row_bytes, (size_t)row_bytes);
    }
}

void pn_gather_rows(void *dst, const void *src, const int64_t *idx, pn_size n,
                    pn_size row_bytes) {
    int nt = pn_threads_here((double)n * (double)row_bytes, PN_GATHER_GRAIN);
    PN_PARALLEL_SLICES(nt, n, 1,
                       gather_slice((char *)dst, (const char *)src, idx, lo, hi, row_bytes));
}

/* Finite iff the exponent bits are not all ones: an integer test the compiler vectorises (a
 * float comparison would not be, under -ftrapping-math). */
#define DEFINE_ALL_FINITE(T, U, EXP_MASK, SUF)                                                \
    static int all_finite_slice_##SUF(const T *x, pn_size lo, pn_size hi) {                   \
        const U *u = (const U *)x;                                                            \
        for (pn_size c = lo; c < hi; c += PN_FINITE_CHUNK) {                                  \
            pn_size end = c + PN_FINITE_CHUNK < hi ? c + PN_FINITE_CHUNK : hi;                \
            U bad = 0;                                                                        \
            for (pn_size i = c; i < end; i++) bad |= (U)((u[i] & EXP_MASK) == EXP_MASK);      \
            if (bad) return 0;                                                                \
        }                                                                                     \
        return 1;                                                                             \
    }                                                                                         \
    int pn_all_finite_##SUF(const T *x, pn_size n) {                                          \
        int nt = pn_threads_here((double)n * sizeof(T), PN_GATHER_GRAIN * 4);                 \
        if (nt <= 1) return all_finite_slice_##SUF(x, 0, n);                                  \
        int ok = 1;                                                                           \
        PN_OMP(parallel num_threads(nt) reduction(& : ok))                                    \
        {                                                                                     \
            pn_size lo, hi;                                                                   \
            pn_split(n, PN_FINITE_CHUNK, PN_THREAD_ID(), PN_THREAD_COUNT(), &lo, &hi);        \
            if (hi > lo) ok = all_finite_slice_##SUF(x, lo, hi);                              \
        }                                                                                     \
        return ok;                                                                            \
    }

DEFINE_ALL_FINITE(float, uint32_t, 0x7f800000u, f32)
DEFINE_ALL_FINITE(double, uint64_t, 0x7ff0000000000000ull, f64)
