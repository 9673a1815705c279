/* The training step of a chain of Dense layers, in the manner of llm.c's train_gpt2.c: a
 * network object with named per-layer pointers into the model's flat buffers, and forward,
 * backward and a step (gather the batch, forward, the loss fused with its gradient, backward)
 * as C functions. The optimizer's update is the next call (csrc/optim.c): one pass over the
 * flat parameter buffer (fusing it per layer into the backward measured slower here; see
 * bench/results/fused-update-ab-2026-12-04.md).
 *
 *     gather(batch); forward(net, x); loss(out, target, delta); backward(net, x); [update]
 */
#include "pynn.h"

/* ---- the one loss table: a loss kind and its parameter to the fused kernel ------------------ */

/* Names by kind: with the enum in pynn.h, the one definition of the loss kinds. */
static const char *const loss_names[PN_LOSS_COUNT] = {
    [PN_LOSS_XENT_LABELS] = "xent_labels", [PN_LOSS_XENT_PROBS] = "xent_probs",
    [PN_LOSS_KL] = "kl",                   [PN_LOSS_MSE] = "mse",
    [PN_LOSS_BCE] = "bce",                 [PN_LOSS_HINGE] = "hinge",
    [PN_LOSS_MAE] = "mae",                 [PN_LOSS_HUBER] = "huber",
    [PN_LOSS_POISSON] = "poisson"};

const char *pn_loss_name(int kind) {
    return (kind >= 0 && kind < PN_LOSS_COUNT) ? loss_names[kind] : "unknown";
}

#define DEFINE_LOSS_TABLE(T, SUF)                                                             \
    double pn_loss_##SUF(int kind, double param, T *grad, const T *out, const void *target,   \
                         const T *w, pn_size N, pn_size K) {                                  \
        const T *t = (const T *)target;                                                       \
        switch (kind) {                                                                       \
        case PN_LOSS_XENT_LABELS:                                                             \
            return pn_softmax_xent_labels_##SUF(grad, out, (const int64_t *)target, w, N, K); \
        case PN_LOSS_XENT_PROBS: return pn_softmax_xent_probs_##SUF(grad, out, t, w, N, K);   \
        case PN_LOSS_KL: return pn_kl_div_##SUF(grad, out, t, w, N, K);                       \
        case PN_LOSS_MSE: return pn_mse_##SUF(grad, out, t, w, N, K, param);                  \
        case PN_LOSS_BCE: return pn_bce_##SUF(grad, out, t, w, N, K, param);                  \
        case PN_LOSS_HINGE: return pn_hinge_##SUF(grad, out, t, w, N, K, param);              \
        case PN_LOSS_MAE: return pn_mae_##SUF(grad, out, t, w, N, K, param);                  \
        case PN_LOSS_HUBER: return pn_huber_##SUF(grad, out, t, w, N, K, param);              \
        case PN_LOSS_POISSON: return pn_poisson_##SUF(grad, out, t, w, N, K, param);          \
        default: return 0.0 / 0.0; /* not a kind: checked by the caller; NaN if not */        \
        }                                                                                     \
    }

DEFINE_LOSS_TABLE(float, f32)
DEFINE_LOSS_TABLE(double, f64)

/* ---- forward and backward of the chain -------------------------------------------------------- */

#define DEFINE_NETWORK(T, SUF)                                                                \
    static int forward_##SUF(const pn_network *net, const T *x) {                             \
        for (int l = 0; l < net->n_layers; l++) {                                             \
            const pn_dense *L = &net->layers[l];                                              \
            if (pn_linear_forward_##SUF((T *)L->out, x, (const T *)L->w, (const T *)L->b,     \
                                        net->rows, L->fan_in, L->fan_out, L->act,             \
                                        (T)L->alpha))                                         \
                return -1;                                                                    \
            x = (const T *)L->out;                                                            \
        }                                                                                     \
        return 0;                                                                             \
    }                                                                                         \
    static int backward_##SUF(const pn_network *net, const T *x, T *dx) {                     \
        for (int l = net->n_layers - 1; l >= 0; l--) {                                        \
            const pn_dense *L = &net->layers[l];                                              \
            const pn_dense *prev = l > 0 ? &net->layers[l - 1] : NULL;                        \
            if (pn_linear_backward_##SUF(prev ? (T *)prev->delta : dx, (T *)L->dw,            \
                                         (T *)L->db, prev ? (const T *)prev->out : x,         \
                                         (const T *)L->w, (const T *)L->out,                  \
                                         (const T *)L->delta, net->rows, L->fan_in,           \
                                         L->fan_out, L->act, (T)L->alpha, 0))                 \
                return -1;                                                                    \
        }                                                                                     \
        return 0;                                                                             \
    }

DEFINE_NETWORK(float, f32)
DEFINE_NETWORK(double, f64)

int pn_network_forward(const pn_network *net, const void *x) {
    return net->f32 ? forward_f32(net, (const float *)x) : forward_f64(net, (const double *)x);
}

int pn_network_backward(const pn_network *net, const void *x, void *dx) {
    return net->f32 ? backward_f32(net, (const float *)x, (float *)dx)
                    : backward_f64(net, (const double *)x, (double *)dx);
}

/* ---- the step ----------------------------------------------------------------------------------- */

int pn_network_train_step(const pn_network *net, const pn_batch *batch, int loss_kind,
                          double loss_param, double *loss) {
    const pn_size rows = net->rows;
    const pn_size in = net->layers[0].fan_in;
    const size_t esize = net->f32 ? sizeof(float) : sizeof(double);
    /* the batch: its rows gathered from the training set, or a slice of it read in place */
    const void *x, *target;
    const pn_size x_row = in * (pn_size)esize;
    if (batch->idx) {
        pn_gather_rows(batch->x_buf, batch->x, batch->idx, rows, x_row);
        pn_gather_rows(batch->target_buf, batch->target, batch->idx, rows, batch->target_row);
        x = batch->x_buf;
        target = batch->target_buf;
    } else {
        x = (const char *)batch->x + batch->start * x_row;
        target = (const char *)batch->target + batch->start * batch->target_row;
    }
    if (pn_network_forward(net, x)) return -1;
    const pn_dense *top = &net->layers[net->n_layers - 1];
    double value = net->f32 ? pn_loss_f32(loss_kind, loss_param, (float *)top->delta,
                                          (const float *)top->out, target, NULL, rows,
                                          top->fan_out)
                            : pn_loss_f64(loss_kind, loss_param, (double *)top->delta,
                                          (const double *)top->out, target, NULL, rows,
                                          top->fan_out);
    *loss = value;
    if (value - value != 0) return 0; /* not finite: no backward, the caller stops */
    return pn_network_backward(net, x, NULL);
}
