/* pynn's C API. Plain C11, no Python headers.
 *
 * Conventions (as in llm.c): outputs first, then saved buffers, then inputs, then weights, then
 * sizes. Gradients carry a `d` prefix. Every backward says whether it overwrites or accumulates.
 * Sizes are 64-bit (pn_size) everywhere: index arithmetic never overflows int32.
 * C assumes its arguments were validated by the Cython bridge (pynn/_core.pyx): shapes agree,
 * buffers are contiguous, aligned to their element type and do not alias unless said so.
 * Letters: N = rows (batch), I = in features, O = out features, C = classes, P = parameters.
 */
#ifndef PYNN_H
#define PYNN_H

#include <stddef.h>
#include <stdint.h>

typedef int64_t pn_size;

#ifdef __cplusplus
extern "C" {
#endif

/* ---- cpu.c: ISA dispatch and threads --------------------------------------------------------- */
enum pn_isa { PN_ISA_GENERIC = 0, PN_ISA_AVX2 = 1, PN_ISA_AVX512 = 2, PN_ISA_COUNT = 3 };

extern int pn_active_isa;                 /* read by every dispatcher; set by pn_set_isa */
int pn_isa_built(int isa);                /* 1 if this build contains the path */
int pn_isa_supported(int isa);            /* 1 if built and the CPU and OS can run it */
int pn_best_isa(void);
int pn_set_isa(int isa);                  /* 0 on success, -1 if not supported */
const char *pn_isa_name(int isa);

void pn_set_num_threads(int n);           /* n >= 1 */
int pn_get_num_threads(void);             /* min(pynn's setting, OpenMP's current limit) */
/* Threads worth starting for `work` units (~flops or bytes touched): 1 below the grain size. */
int pn_threads_for(double work, double grain);
int pn_openmp_enabled(void);
int pn_openmp_spec(void);                 /* _OPENMP date, e.g. 201511; 0 without OpenMP */
const char *pn_compiler(void);
const char *pn_openmp_version(void);

/* ---- activation.c ---------------------------------------------------------------------------- */
/* Activation codes, shared by activation.c and the GEMM epilogues. */
enum pn_act {
    PN_ACT_IDENTITY = 0, PN_ACT_RELU = 1, PN_ACT_LEAKY_RELU = 2, PN_ACT_SIGMOID = 3,
    PN_ACT_TANH = 4, PN_ACT_SOFTMAX = 5, PN_ACT_STEP = 6, PN_ACT_COUNT = 7
};

/* y = act(x) over a rows x cols matrix (softmax is row-wise; the others elementwise).
 * y == x (in place) is allowed. Safe to call inside an OpenMP parallel region (runs serially). */
void pn_activation_forward_f32(float *y, const float *x, pn_size rows, pn_size cols, int act,
                               float alpha);
void pn_activation_forward_f64(double *y, const double *x, pn_size rows, pn_size cols, int act,
                               double alpha);
/* dx = dy * act'(y), from the forward OUTPUT y (overwrites dx; dx == dy allowed). softmax:
 * dx = y * (dy - rowsum(dy * y)). step has no backward. */
void pn_activation_backward_f32(float *dx, const float *y, const float *dy, pn_size rows,
                                pn_size cols, int act, float alpha);
void pn_activation_backward_f64(double *dx, const double *y, const double *dy, pn_size rows,
                                pn_size cols, int act, double alpha);

/* ---- loss.c ---------------------------------------------------------------------------------- */

/* ---- optim.c --------------------------------------------------------------------------------- */

/* ---- gemm.c ---------------------------------------------------------------------------------- */
/* Letters: C (M,N) = op(A) (M,K) . op(B) (K,N); op(A) is A stored (M,K), or A^T with A stored
 * (K,M) when trans_a (likewise B). Row-major, contiguous. Threads split C into disjoint blocks and
 * never split K, so results are bitwise the same at any thread count.
 * accumulate = 0 overwrites C without reading it (garbage in C never leaks); 1 adds into C.
 * The functions returning int give 0, or -1 when a packing buffer could not be allocated. */
int pn_gemm_f32(float *c, const float *a, const float *b, pn_size m, pn_size n, pn_size k,
                 int trans_a, int trans_b, int accumulate);
int pn_gemm_f64(double *c, const double *a, const double *b, pn_size m, pn_size n, pn_size k,
                 int trans_a, int trans_b, int accumulate);
/* The naive triple loop (the oracle in C): same arguments, one thread, no blocking. */
void pn_gemm_naive_f32(float *c, const float *a, const float *b, pn_size m, pn_size n, pn_size k,
                       int trans_a, int trans_b, int accumulate);
void pn_gemm_naive_f64(double *c, const double *a, const double *b, pn_size m, pn_size n,
                       pn_size k, int trans_a, int trans_b, int accumulate);

/* y (N,O) = act(x (N,I) . w (I,O) + bias (O)); bias may be NULL. Bias and identity/relu/leaky_relu
 * are applied in registers in the tile write-back; the other activations on the stored tile (or,
 * softmax, on the finished row block) while it is in cache. Overwrites y. */
int pn_linear_forward_f32(float *y, const float *x, const float *w, const float *bias, pn_size n,
                           pn_size i, pn_size o, int act, float alpha);
int pn_linear_forward_f64(double *y, const double *x, const double *w, const double *bias,
                           pn_size n, pn_size i, pn_size o, int act, double alpha);

/* dz = dy * act'(y) (from the forward output y; softmax: its row-wise Jacobian product),
 * db (O) = colsum(dz) in the same pass, dw (I,O) = x^T . dz, dx (N,I) = dz . w^T.
 * dx is overwritten (skipped when NULL); dw and db are overwritten, or added into when
 * accumulate (db may be NULL). act must not be PN_ACT_STEP. */
int pn_linear_backward_f32(float *dx, float *dw, float *db, const float *x, const float *w,
                            const float *y, const float *dy, pn_size n, pn_size i, pn_size o,
                            int act, float alpha, int accumulate);
int pn_linear_backward_f64(double *dx, double *dw, double *db, const double *x, const double *w,
                            const double *y, const double *dy, pn_size n, pn_size i, pn_size o,
                            int act, double alpha, int accumulate);

/* Frees the calling thread's packing buffers (they are reused across calls and grown when
 * needed; each thread's are also freed when it exits). */
void pn_gemm_release_buffers(void);

#ifdef __cplusplus
}
#endif
#endif /* PYNN_H */
