/* A STREAM-style triad, a = b + s*c over double arrays: this machine's memory bandwidth, the
 * yardstick of the benchmarks' "% of bandwidth" figure (bench/bench_ops.py). Threads split the
 * arrays in equal contiguous slices, as the kernels do. */
#include "isa.h"
#include "parallel.h"

void pn_stream_triad_f64(double *a, const double *b, const double *c, double s, pn_size n,
                         int threads) {
    int nt = threads < 1 ? 1 : threads;
    PN_PARALLEL_SLICES(nt, n, 64, {
        for (pn_size i = lo; i < hi; i++) a[i] = b[i] + s * c[i];
    });
}
