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
/* Activation ids: THE definition (the bridge builds pynn._core.ACTIVATIONS from these and
 * pn_act_name; no other place lists them). */
enum pn_act {
    PN_ACT_IDENTITY = 0, PN_ACT_RELU = 1, PN_ACT_LEAKY_RELU = 2, PN_ACT_SIGMOID = 3,
    PN_ACT_TANH = 4, PN_ACT_SOFTMAX = 5, PN_ACT_STEP = 6, PN_ACT_COUNT = 7
};
const char *pn_act_name(int act);         /* "relu", ...; "unknown" out of range */
int pn_act_has_backward(int act);         /* 0 for the forward-only ones (step) */

/* y = act(x) over a rows x cols matrix (softmax is row-wise; the others elementwise).
 * y == x (in place) is allowed. Safe to call inside an OpenMP parallel region (runs serially). */
void pn_activation_forward_f32(float *y, const float *x, pn_size rows, pn_size cols, int act,
                               float alpha);
void pn_activation_forward_f64(double *y, const double *x, pn_size rows, pn_size cols, int act,
                               double alpha);
/* dx = dy * act'(y), from the forward OUTPUT y (overwrites dx; dx == dy allowed). softmax:
 * dx = y * (dy - rowsum(dy * y)). step has no backward. At the kinks PyTorch's convention:
 * relu' = 0 and leaky_relu' = alpha where y == 0. */
void pn_activation_backward_f32(float *dx, const float *y, const float *dy, pn_size rows,
                                pn_size cols, int act, float alpha);
void pn_activation_backward_f64(double *dx, const double *y, const double *dy, pn_size rows,
                                pn_size cols, int act, double alpha);

/* The backward of act(z + b), fused: dz (N, O) = dy * act'(y) with the derivative above, and
 * db (O) = colsum(dz) while the rows are in cache. dz == NULL (act identity only): just the
 * column sums of dy. db is overwritten, or added into when accumulate (db + (T)colsum). The ONE
 * bias-gradient reduction (pn_bias_grad and pn_linear_backward both run it): rows in fours,
 * (r0 + r1) + (r2 + r3) in T, each four into a double accumulator, in row order, then the
 * leftover rows; bitwise the same at any thread count. dz must not overlap y or dy. */
void pn_activation_bias_backward_f32(float *dz, float *db, const float *y, const float *dy,
                                     pn_size N, pn_size O, int act, float alpha, int accumulate);
void pn_activation_bias_backward_f64(double *dz, double *db, const double *y, const double *dy,
                                     pn_size N, pn_size O, int act, double alpha, int accumulate);
/* db = column sums of dz (N, O) -> (O): the bias gradient, overwritten, in the order above. */
void pn_bias_grad_f32(float *db, const float *dz, pn_size N, pn_size O);
void pn_bias_grad_f64(double *db, const double *dz, pn_size N, pn_size O);

/* ---- loss.c ---------------------------------------------------------------------------------- */
/* Every loss returns the weighted mean loss sum_i w_i l_i / sum_i w_i (as double) and OVERWRITES
 * its gradient with d(loss)/d(input). w (N) may be NULL: every weight 1, the plain mean. The
 * caller checks sum w > 0. Gradient and inputs must not overlap. Shapes: logits/dlogits/target
 * (N, C), labels (N) in [0, C); pred/target/dpred (N, K), where each row's loss is the mean of
 * its K elements. Bitwise the same at any thread count. */
/* softmax cross-entropy: l_i = -log softmax(x_i)[label_i]; d = (softmax - onehot) w_i / sum w */
double pn_softmax_xent_labels_f32(float *dlogits, const float *logits, const int64_t *labels,
                                  const float *w, pn_size N, pn_size C);
double pn_softmax_xent_labels_f64(double *dlogits, const double *logits, const int64_t *labels,
                                  const double *w, pn_size N, pn_size C);
/* with probability targets: l_i = -sum_j t_ij log softmax(x_i)_j (0 log 0 = 0);
 * d = (softmax * sum_j t_ij - t) w_i / sum w */
double pn_softmax_xent_probs_f32(float *dlogits, const float *logits, const float *target,
                                 const float *w, pn_size N, pn_size C);
double pn_softmax_xent_probs_f64(double *dlogits, const double *logits, const double *target,
                                 const double *w, pn_size N, pn_size C);
/* KL(target || softmax(logits)): l_i = sum_j t_ij (log t_ij - log softmax(x_i)_j), as torch's
 * kl_div(log_softmax(x), t, reduction="batchmean"); same gradient as the line above */
double pn_kl_div_f32(float *dlogits, const float *logits, const float *target, const float *w,
                     pn_size N, pn_size C);
double pn_kl_div_f64(double *dlogits, const double *logits, const double *target,
                     const double *w, pn_size N, pn_size C);
/* Elementwise losses: pred/target/dpred (N, K); `param` is the loss's parameter (huber's delta,
 * > 0), ignored by the others. */
#define PN_ELEMENTWISE_LOSS(NAME)                                                             \
    double pn_##NAME##_f32(float *dpred, const float *pred, const float *target, const float *w, \
                           pn_size N, pn_size K, double param);                               \
    double pn_##NAME##_f64(double *dpred, const double *pred, const double *target,           \
                           const double *w, pn_size N, pn_size K, double param);
/* mean squared error: (p - t)^2, d = 2 (p - t) w_i / (K sum w) */
PN_ELEMENTWISE_LOSS(mse)
/* sigmoid + binary cross-entropy from logits: max(x,0) - x t + log1p(exp(-|x|)),
 * d = (sigmoid(x) - t) w_i / (K sum w) */
PN_ELEMENTWISE_LOSS(bce)
/* hinge (Keras): target > 0 read as 1, else -1; max(0, 1 - t s), d = -t [1 - t s > 0] w_i/(K sum w) */
PN_ELEMENTWISE_LOSS(hinge)
/* mean absolute error: |p - t|, d = sign(p - t) w_i / (K sum w) (0 where p == t) */
PN_ELEMENTWISE_LOSS(mae)
/* Huber, delta = param: 0.5 e^2 where |e| <= delta, else delta (|e| - delta / 2), e = p - t;
 * d = clip(e, -delta, delta) w_i / (K sum w) */
PN_ELEMENTWISE_LOSS(huber)
/* Poisson NLL with a log link, x = log(rate): exp(x) - t x, d = (exp(x) - t) w_i / (K sum w) */
PN_ELEMENTWISE_LOSS(poisson)
#undef PN_ELEMENTWISE_LOSS

/* Loss kinds: THE definition (the bridge builds pynn._core.LOSS_KINDS from these and
 * pn_loss_name). pn_loss_* runs kind's kernel above: target is int64 labels (N) for
 * PN_LOSS_XENT_LABELS, else (N, K) of T; param is the loss's parameter (huber's delta). */
enum pn_loss_kind {
    PN_LOSS_XENT_LABELS = 0, PN_LOSS_XENT_PROBS = 1, PN_LOSS_KL = 2, PN_LOSS_MSE = 3,
    PN_LOSS_BCE = 4, PN_LOSS_HINGE = 5, PN_LOSS_MAE = 6, PN_LOSS_HUBER = 7, PN_LOSS_POISSON = 8,
    PN_LOSS_COUNT = 9
};
const char *pn_loss_name(int kind);       /* "xent_labels", ...; "unknown" out of range */
double pn_loss_f32(int kind, double param, float *grad, const float *out, const void *target,
                   const float *w, pn_size N, pn_size K);
double pn_loss_f64(int kind, double param, double *grad, const double *out, const void *target,
                   const double *w, pn_size N, pn_size K);

/* ---- optim.c --------------------------------------------------------------------------------- */
/* In-place steps over flat buffers of P entries (params, grads and state must not overlap).
 * SGD, classical momentum: v = mu v - lr (g + wd theta); theta += v (Nesterov: theta += mu v -
 * lr (g + wd theta), with the new v). velocity == NULL: theta -= lr (g + wd theta). */
void pn_sgd_step_f32(float *params, float *velocity, const float *grads, pn_size P, double lr,
                     double momentum, int nesterov, double weight_decay);
void pn_sgd_step_f64(double *params, double *velocity, const double *grads, pn_size P,
                     double lr, double momentum, int nesterov, double weight_decay);
/* An L2 penalty's pass over one weight buffer of P entries: grad += c w (grad NULL: skipped;
 * grad and w must not overlap); returns sum w^2 (in double, in an order fixed by P and the ISA,
 * never by the thread count). */
double pn_l2_penalty_f32(float *grad, const float *w, pn_size P, double c);
double pn_l2_penalty_f64(double *grad, const double *w, pn_size P, double c);
/* Adam with decoupled weight decay (AdamW) and PyTorch's bias correction; step >= 1. */
void pn_adam_step_f32(float *params, float *m, float *v, const float *grads, pn_size P,
                      int64_t step, double lr, double beta1, double beta2, double eps,
                      double weight_decay);
void pn_adam_step_f64(double *params, double *m, double *v, const double *grads, pn_size P,
                      int64_t step, double lr, double beta1, double beta2, double eps,
                      double weight_decay);

/* RMSprop as PyTorch's: g = grad + wd theta; v = alpha v + (1 - alpha) g^2; gavg (centered,
 * else NULL) = alpha gavg + (1 - alpha) g; denom = sqrt(v - gavg^2) + eps; buf (momentum > 0,
 * else NULL) = momentum buf + g / denom, theta -= lr buf; without buf theta -= lr g / denom. */
void pn_rmsprop_step_f32(float *params, float *v, float *gavg, float *buf, const float *grads,
                         pn_size P, double lr, double alpha, double eps, double weight_decay,
                         double momentum);
void pn_rmsprop_step_f64(double *params, double *v, double *gavg, double *buf,
                         const double *grads, pn_size P, double lr, double alpha, double eps,
                         double weight_decay, double momentum);
/* Adagrad as PyTorch's: g = grad + wd theta; sum += g^2;
 * theta -= lr / (1 + (step - 1) lr_decay) * g / (sqrt(sum) + eps); step >= 1. */
void pn_adagrad_step_f32(float *params, float *sum, const float *grads, pn_size P, int64_t step,
                         double lr, double lr_decay, double eps, double weight_decay);
void pn_adagrad_step_f64(double *params, double *sum, const double *grads, pn_size P,
                         int64_t step, double lr, double lr_decay, double eps,
                         double weight_decay);

/* ---- norm.c: normalization and dropout layers --------------------------------------------- */
/* Dropout: y = x / (1 - rate) where element i is kept, else 0; element i is kept when the hash
 * of (key, counter, i) is >= rate (53 bits): the same mask for the same (key, counter) at any
 * thread count, so the backward regenerates it (dx = dropout(dy) with the same stream). */
void pn_dropout_f32(float *y, const float *x, pn_size n, double rate, uint64_t key,
                    uint64_t counter);
void pn_dropout_f64(double *y, const double *x, pn_size n, double rate, uint64_t key,
                    uint64_t counter);
/* How many of n elements the mask keeps. */
pn_size pn_dropout_kept(pn_size n, double rate, uint64_t key, uint64_t counter);
/* BatchNorm, training: per column of x (R x C, R >= 1) mean, biased var (C doubles each),
 * invstd = 1 / sqrt(var + eps), xhat = (x - mean) invstd, y = gamma xhat + beta. */
void pn_batchnorm_forward_f32(float *y, float *xhat, double *mean, double *var, double *invstd,
                              const float *x, const float *gamma, const float *beta, pn_size R,
                              pn_size C, double eps);
void pn_batchnorm_forward_f64(double *y, double *xhat, double *mean, double *var,
                              double *invstd, const double *x, const double *gamma,
                              const double *beta, pn_size R, pn_size C, double eps);
/* dgamma = sum_r dy xhat, dbeta = sum_r dy (overwritten); dx (NULL: not computed) =
 * gamma invstd (dy - dbeta / R - xhat dgamma / R). scratch: 2 C doubles. */
void pn_batchnorm_backward_f32(float *dx, float *dgamma, float *dbeta, const float *dy,
                               const float *xhat, const float *gamma, const double *invstd,
                               double *scratch, pn_size R, pn_size C);
void pn_batchnorm_backward_f64(double *dx, double *dgamma, double *dbeta, const double *dy,
                               const double *xhat, const double *gamma, const double *invstd,
                               double *scratch, pn_size R, pn_size C);
/* y = x * scale + shift per column (an inference-mode BatchNorm). */
void pn_scale_shift_f32(float *y, const float *x, const float *scale, const float *shift,
                        pn_size R, pn_size C);
void pn_scale_shift_f64(double *y, const double *x, const double *scale, const double *shift,
                        pn_size R, pn_size C);
/* LayerNorm: per row, xhat = (x - mean) invstd with the biased variance, y = gamma xhat + beta;
 * invstd: R doubles. Backward: dgamma, dbeta (column sums, overwritten), dx (NULL: skipped) =
 * invstd (g - mean(g) - xhat mean(g xhat)), g = dy gamma. scratch: 2 C doubles. */
void pn_layernorm_forward_f32(float *y, float *xhat, double *invstd, const float *x,
                              const float *gamma, const float *beta, pn_size R, pn_size C,
                              double eps);
void pn_layernorm_forward_f64(double *y, double *xhat, double *invstd, const double *x,
                              const double *gamma, const double *beta, pn_size R, pn_size C,
                              double eps);
void pn_layernorm_backward_f32(float *dx, float *dgamma, float *dbeta, const float *dy,
                               const float *xhat, const float *gamma, const double *invstd,
                               double *scratch, pn_size R, pn_size C);
void pn_layernorm_backward_f64(double *dx, double *dgamma, double *dbeta, const double *dy,
                               const double *xhat, const double *gamma, const double *invstd,
                               double *scratch, pn_size R, pn_size C);

/* ---- batch.c: mini-batch data movement ------------------------------------------------------- */
/* dst row r = src row idx[r] (rows of row_bytes bytes; every idx[r] a valid row, checked by the
 * caller); the next rows' cache lines are requested while one is copied. */
void pn_gather_rows(void *dst, const void *src, const int64_t *idx, pn_size n, pn_size row_bytes);
/* 1 if no element is NaN or +-inf. */
int pn_all_finite_f32(const float *x, pn_size n);
int pn_all_finite_f64(const double *x, pn_size n);

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

/* ---- network.c: a chain of Dense layers and its training step ------------------------------ */
/* One Dense layer of a bound network: named pointers into the model's buffers (T = float when
 * the network's f32, else double). */
typedef struct {
    void *w, *b;          /* (fan_in, fan_out), (fan_out): the parameters */
    void *dw, *db;        /* their gradients, overwritten by the backward */
    void *out, *delta;    /* (rows, fan_out): the output act(x w + b), d loss / d output */
    pn_size fan_in, fan_out;
    int act;              /* enum pn_act */
    double alpha;
} pn_dense;

typedef struct {
    int f32;              /* 1: float32, 0: float64 */
    int n_layers;
    pn_size rows;         /* the batch size the buffers hold */
    pn_dense *layers;     /* layer l reads layer l-1's out (layer 0: x) */
} pn_network;

/* Every layer's output into its `out`. x: (rows, layers[0].fan_in). */
int pn_network_forward(const pn_network *net, const void *x);
/* From the top layer's delta, every layer's dw, db (overwritten) and the deltas below; dx (rows,
 * fan_in of layer 0) gets the gradient at the input, or is skipped when NULL. x: the forward's. */
int pn_network_backward(const pn_network *net, const void *x, void *dx);

/* Where a step's batch comes from: rows idx[0..rows) of the training set gathered into x_buf and
 * target_buf, or (idx NULL) rows start..start+rows read in place. target rows are target_row
 * bytes (int64 labels or K elements). Every idx in range (checked by the caller). */
typedef struct {
    const void *x, *target;
    pn_size target_row;
    const int64_t *idx;
    pn_size start;
    void *x_buf, *target_buf;
} pn_batch;

/* One step without the update: gather, forward, loss (*loss, the batch mean; the top delta
 * gets its gradient), and when the loss is finite the backward. Unweighted rows. 0, or -1 when
 * a packing buffer could not be allocated. */
int pn_network_train_step(const pn_network *net, const pn_batch *batch, int loss_kind,
                          double loss_param, double *loss);

/* Frees the calling thread's packing buffers (they are reused across calls and grown when
 * needed; each thread's are also freed when it exits). */
void pn_gemm_release_buffers(void);

#ifdef __cplusplus
}
#endif
#endif /* PYNN_H */
