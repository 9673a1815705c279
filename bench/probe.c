/* Machine probes for the benchmarks: FMA peak (float32/float64) and STREAM-style triad bandwidth.
 *
 * Built on demand by bench/machine.py into a private shared library and called through ctypes;
 * it is not part of the pynn extension. Each ISA variant is compiled with a target attribute so
 * one file builds on any x86-64 compiler; Python only calls a variant the CPU and OS can run
 * (pynn._core.isa_supported() says which).
 *
 * Peak: every thread runs ACC independent FMA chains (ACC >= latency x pipes: Zen 4 has 4-cycle
 * FMAs on 2 pipes, so 8 chains saturate it; 12 leaves margin) for `iters` iterations.
 * Returns the wall seconds of the parallel region; FLOPs = threads * iters * ACC * lanes * 2.
 */
#include <stdint.h>
#include <string.h>

#ifdef _OPENMP
#include <omp.h>
static double now(void) { return omp_get_wtime(); }
#else
#include <time.h>
static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}
#endif

#define ACC 12

/* Keeps the compiler from deleting the chains: the result is written where it cannot see. */
volatile double probe_sink;

/* Twelve named accumulators (not an array: at -O2 GCC keeps an array on the stack and the chains
 * then run at store-forwarding speed). */
#define FMA_CHAINS(VEC, SET1, FMA, ADD, STORE_SUM)                                                 \
    do {                                                                                           \
        const VEC a = SET1(0.999999), b = SET1(1e-7);                                              \
        VEC c0 = SET1(0.50), c1 = SET1(0.51), c2 = SET1(0.52), c3 = SET1(0.53);                    \
        VEC c4 = SET1(0.54), c5 = SET1(0.55), c6 = SET1(0.56), c7 = SET1(0.57);                    \
        VEC c8 = SET1(0.58), c9 = SET1(0.59), c10 = SET1(0.60), c11 = SET1(0.61);                  \
        for (int64_t i = 0; i < iters; i++) {                                                      \
            c0 = FMA(c0, a, b); c1 = FMA(c1, a, b); c2 = FMA(c2, a, b); c3 = FMA(c3, a, b);        \
            c4 = FMA(c4, a, b); c5 = FMA(c5, a, b); c6 = FMA(c6, a, b); c7 = FMA(c7, a, b);        \
            c8 = FMA(c8, a, b); c9 = FMA(c9, a, b); c10 = FMA(c10, a, b); c11 = FMA(c11, a, b);    \
        }                                                                                          \
        VEC acc0 = ADD(ADD(ADD(c0, c1), ADD(c2, c3)), ADD(ADD(c4, c5), ADD(c6, c7)));              \
        acc0 = ADD(acc0, ADD(ADD(c8, c9), ADD(c10, c11)));                                         \
        STORE_SUM;                                                                                 \
    } while (0)

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>

__attribute__((target("avx2,fma"))) static double chains_avx2_f32(int64_t iters) {
    float out[8];
    FMA_CHAINS(__m256, _mm256_set1_ps, _mm256_fmadd_ps, _mm256_add_ps,
               _mm256_storeu_ps(out, acc0));
    return out[0];
}

__attribute__((target("avx2,fma"))) static double chains_avx2_f64(int64_t iters) {
    double out[4];
    FMA_CHAINS(__m256d, _mm256_set1_pd, _mm256_fmadd_pd, _mm256_add_pd,
               _mm256_storeu_pd(out, acc0));
    return out[0];
}

__attribute__((target("avx512f"))) static double chains_avx512_f32(int64_t iters) {
    float out[16];
    FMA_CHAINS(__m512, _mm512_set1_ps, _mm512_fmadd_ps, _mm512_add_ps,
               _mm512_storeu_ps(out, acc0));
    return out[0];
}

__attribute__((target("avx512f"))) static double chains_avx512_f64(int64_t iters) {
    double out[8];
    FMA_CHAINS(__m512d, _mm512_set1_pd, _mm512_fmadd_pd, _mm512_add_pd,
               _mm512_storeu_pd(out, acc0));
    return out[0];
}
#endif

/* Scalar chains: the peak of a CPU without a SIMD path (a lower bound elsewhere). */
#define SCALAR_F32(x) ((float)(x))
#define SCALAR_F64(x) ((double)(x))
#define MUL_ADD(c, a, b) ((c) * (a) + (b))
#define PLUS(x, y) ((x) + (y))

static double chains_generic_f32(int64_t iters) {
    float out;
    FMA_CHAINS(float, SCALAR_F32, MUL_ADD, PLUS, out = acc0);
    return out;
}

static double chains_generic_f64(int64_t iters) {
    double out;
    FMA_CHAINS(double, SCALAR_F64, MUL_ADD, PLUS, out = acc0);
    return out;
}

/* isa: 0 generic, 1 avx2, 2 avx512 (pynn's numbering); dtype: 0 float32, 1 float64.
 * Returns the lanes per vector (FLOPs = threads * iters * ACC * lanes * 2), 0 if unknown. */
int probe_fma_lanes(int isa, int dtype) {
    static const int lanes[3][2] = {{1, 1}, {8, 4}, {16, 8}};
    if (isa < 0 || isa > 2 || dtype < 0 || dtype > 1) return 0;
    return lanes[isa][dtype];
}

/* Wall seconds for `threads` threads each running `iters` iterations of ACC FMA chains. */
double probe_fma_seconds(int isa, int dtype, int64_t iters, int threads) {
    double (*fn)(int64_t) = dtype ? chains_generic_f64 : chains_generic_f32;
#if defined(__x86_64__) || defined(__i386__)
    if (isa == 1) fn = dtype ? chains_avx2_f64 : chains_avx2_f32;
    if (isa == 2) fn = dtype ? chains_avx512_f64 : chains_avx512_f32;
#endif
    double t0 = now(), total = 0;
#ifdef _OPENMP
#pragma omp parallel num_threads(threads) reduction(+ : total)
#endif
    total += fn(iters);
    double t1 = now();
    probe_sink = total;
    (void)threads;
    return t1 - t0;
}

/* STREAM triad a = b + s*c over n doubles, `reps` times; returns the best single pass, seconds.
 * Bytes moved per pass: 3 * 8 * n (STREAM's convention: write-allocate traffic not counted). */
double probe_triad_seconds(double *a, const double *b, const double *c, int64_t n, int reps,
                           int threads) {
    double best = 1e30;
#ifdef _OPENMP
#pragma omp parallel for num_threads(threads) schedule(static)
#endif
    for (int64_t i = 0; i < n; i++) a[i] = b[i] + 3.0 * c[i]; /* first touch, page-in */
    for (int r = 0; r < reps; r++) {
        double t0 = now();
#ifdef _OPENMP
#pragma omp parallel for num_threads(threads) schedule(static)
#endif
        for (int64_t i = 0; i < n; i++) a[i] = b[i] + 3.0 * c[i];
        double t = now() - t0;
        if (t < best) best = t;
    }
    probe_sink = a[n / 2];
    (void)threads;
    return best;
}

int probe_openmp(void) {
#ifdef _OPENMP
    return 1;
#else
    return 0;
#endif
}
