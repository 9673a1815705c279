/* Matrix multiply with fused bias and activation: packing, blocking, threads and dispatch.
 * The micro-kernels are per ISA (gemm_kernel_*.c); the driver is written once in gemm_driver.h
 * and instantiated here for float and double. */
#include <stdlib.h>
#include <string.h>

#include <pthread.h>

#include "gemm_kernel.h"

/* Products with at most this many rows (and B not transposed) skip packing: the row kernel
 * streams B once per row, where packing would copy all of B for a handful of rows. */
#define PN_GEMM_ROWS_MAX 2
/* Flops per thread worth a fork/join of the OpenMP team (about 2-4 us of work). */
#define PN_GEMM_THREAD_GRAIN 1.5e5

/* ---- packing buffers: per thread, reused, grown when needed, freed at thread exit ------------- */

enum { PN_GEMM_NBUF = 4 }; /* 0: packed A, 1: packed B, 2: dz of the backward, 3: shared A */
/* The most bytes of A that the threads pack once between them (else each packs its own). */
#define PN_GEMM_SHARED_A_MAX ((size_t)4 << 20)
/* A block with at most this many B micro-panels reads A in place (the micro-kernel's strided
 * variant) instead of packing it: on the MLP's shapes (N of 128-256 per thread) the packing
 * cost more than the strided reads, 6-14% per product at 1 thread (AVX-512 Xeon; orders
 * alternated, min of 40). With 32 panels packing wins (up to 22%), as it does for transposed
 * A of more than two row blocks and for rows 4 KiB apart. */
#define PN_GEMM_INPLACE_PANELS 8

/* A B read in place (see b_in_place) of more bytes than this (an L2 cache) has its micro-panels
 * prefetched ahead of the AVX-512 kernels: 784-1000-1000-10 training epoch 0.95x the time (Zen
 * 4, 1 thread), the 1000 x 1000 forward from DRAM 0.82x. Not for a B that stays in L2 between
 * steps (the reference MLP's 784 x 256: 1-2% slower at batch 32), nor for the AVX2 tile, whose
 * panel rows are one cache line (Zen 4, PYNN_ISA=avx2: 128 x 1000 x 1000 1.01-1.02x the time,
 * 32 rows 1.04-1.07x, both builds at once). */
#define PN_GEMM_FETCH_B_MIN ((double)(1 << 20))

typedef struct {
    void *p[PN_GEMM_NBUF];
    size_t bytes[PN_GEMM_NBUF];
} pn_gemm_workspace;

static pthread_key_t ws_key;
static pthread_once_t ws_once = PTHREAD_ONCE_INIT;
static int ws_key_ok = 0;

static void ws_free(void *arg) {
    pn_gemm_workspace *ws = (pn_gemm_workspace *)arg;
    if (!ws) return;
    for (int i = 0; i < PN_GEMM_NBUF; i++) free(ws->p[i]);
    free(ws);
}

static void ws_key_init(void) {
    ws_key_ok = pthread_key_create(&ws_key, ws_free) == 0;
    if (ws_key_ok) atexit(pn_gemm_release_buffers); /* the main thread's, at exit */
}

void pn_gemm_release_buffers(void) {
    if (!ws_key_ok) return;
    pn_gemm_workspace *ws = (pn_gemm_workspace *)pthread_getspecific(ws_key);
    if (!ws) return;
    pthread_setspecific(ws_key, NULL);
    ws_free(ws);
}

/* The calling thread's buffer `which`, at least `bytes` long and 64-byte aligned; NULL if out of
 * memory. */
static void *pn_gemm_buffer(int which, size_t bytes) {
    pthread_once(&ws_once, ws_key_init);
    if (!ws_key_ok) return NULL;
    pn_gemm_workspace *ws = (pn_gemm_workspace *)pthread_getspecific(ws_key);
    if (!ws) {
        ws = (pn_gemm_workspace *)calloc(1, sizeof *ws);
        if (!ws || pthread_setspecific(ws_key, ws) != 0) {
            free(ws);
            return NULL;
        }
    }
    if (bytes > ws->bytes[which]) {
        size_t want = (bytes + bytes / 4 + 4095) & ~(size_t)4095; /* some room to grow */
        free(ws->p[which]);
        ws->p[which] = aligned_alloc(64, want);
        ws->bytes[which] = ws->p[which] ? want : 0;
    }
    return ws->p[which];
}

/* Activations the micro-kernel applies in registers; the others run on the stored tile. */
static inline int kernel_act(int act) {
    return (act == PN_ACT_RELU || act == PN_ACT_LEAKY_RELU) ? act : PN_ACT_IDENTITY;
}
static inline int tile_act(int act) {
    return (act == PN_ACT_SIGMOID || act == PN_ACT_TANH || act == PN_ACT_STEP) ? act : -1;
}

/* K is cut into equal slices no deeper than KC. The cut depends on K only (never on threads). */
static inline pn_size k_slices(pn_size k, pn_size kc_max) { return (k + kc_max - 1) / kc_max; }

#define T float
#define SUF f32
#include "gemm_driver.h"
#undef T
#undef SUF

#define T double
#define SUF f64
#include "gemm_driver.h"
#undef T
#undef SUF

