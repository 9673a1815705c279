"""Array-level kernels: what the layers, tests and benchmarks call.

Every function takes NumPy arrays of float32 or float64, checks them in the Cython bridge,
releases the GIL and runs C. `pynn.reference` holds the same maths in plain NumPy.
"""
from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from . import _core

__all__: list[str] = []

# ---- gemm (issue 3): matrix multiply with fused bias and activation -----------------------------
# The Cython functions themselves (no Python wrapper: a batch-1 forward calls linear() per layer
# and every microsecond counts). Signatures and numpydoc docstrings live in pynn/_gemm.pxi.
from ._core import linear, linear_backward, matmul

__all__ += ["linear", "linear_backward", "matmul"]

# ---- mini-batch data movement (csrc/batch.c): the shuffled batch's rows, the NaN/inf scan ------
from ._core import all_finite, argmax_hits, gather_rows

__all__ += ["all_finite", "argmax_hits", "gather_rows"]

# ---- activations, losses, optimizer steps (issue 2: csrc/activation.c, loss.c, optim.c) -------

__all__ += [
    "ACTIVATIONS",
    "FORWARD_ONLY_ACTIVATIONS",
    "activation",
    "activation_backward",
    "adagrad_step",
    "adam_step",
    "bias_grad",
    "binary_cross_entropy",
    "hinge",
    "huber",
    "kl_divergence",
    "l2_penalty",
    "mae",
    "mse",
    "poisson",
    "rmsprop_step",
    "sgd_step",
    "softmax",
    "softmax_cross_entropy",
]

#: Activation names accepted by :func:`activation`, in the order of the C enum (csrc/pynn.h
#: `pn_act`), the one list of them: every other module takes it from here.
ACTIVATIONS: tuple[str, ...] = tuple(_core.ACTIVATIONS)
#: Those without a backward (the perceptron's step): :func:`activation_backward` refuses them.
FORWARD_ONLY_ACTIVATIONS: tuple[str, ...] = tuple(_core.FORWARD_ONLY_ACTIVATIONS)


def activation(name: str, x: ArrayLike, *, alpha: float = 0.01,
               out: np.ndarray | None = None) -> np.ndarray:
    """Apply an activation function.

    Parameters
    ----------
    name : str
        One of ``identity``, ``relu``, ``leaky_relu`` (``x`` if ``x >= 0`` else ``alpha * x``),
        ``sigmoid``, ``tanh``, ``softmax`` (row-wise, over the last axis) or ``step`` (the
        perceptron's: 1 where ``x > 0``, else 0; forward only).
    x : array_like of float32 or float64, at least 1-D, not empty
        Non-contiguous input is copied.
    alpha : float, default 0.01
        The negative slope of ``leaky_relu`` (must be >= 0); ignored by the others.
    out : ndarray, optional
        Receives the result: C-contiguous, writeable, of x's shape and dtype. It may be ``x``
        itself (in place) but must not otherwise overlap it.

    Returns
    -------
    ndarray
        ``act(x)``, of x's shape and dtype. NaN propagates; sigmoid, tanh and softmax saturate
        without overflow warnings for any finite or infinite input.
    """
    return _core.activation(name, x, alpha, out)


def activation_backward(name: str, y: ArrayLike, dy: ArrayLike, *, alpha: float = 0.01,
                        out: np.ndarray | None = None) -> np.ndarray:
    """Gradient through an activation, from its forward OUTPUT.

    Parameters
    ----------
    name : str
        As for :func:`activation`, except ``step`` (not differentiable: a ValueError).
    y : array_like
        The forward output ``act(x)``; every derivative here is a function of it (relu: 1 where
        y > 0; leaky_relu: 1 where y > 0, else alpha; sigmoid: y (1 - y); tanh: 1 - y**2;
        softmax: the row-wise Jacobian product ``y * (dy - sum(dy * y))``).
    dy : array_like
        Upstream gradient, y's shape and dtype.
    alpha : float, default 0.01
        leaky_relu's slope (>= 0).
    out : ndarray, optional
        Receives dx; may be ``y`` or ``dy`` itself (in place), must not otherwise overlap them.

    Returns
    -------
    ndarray
        ``dx = dy * act'(x)``.
    """
    return _core.activation_backward(name, y, dy, alpha, out)


def softmax(x: ArrayLike, *, out: np.ndarray | None = None) -> np.ndarray:
    """Row-wise softmax over the last axis, ``exp(x - max) / sum(exp(x - max))``.

    Same arguments as :func:`activation` with ``name="softmax"``.
    """
    return _core.activation("softmax", x, 0.01, out)


def bias_grad(dz: ArrayLike, *, out: np.ndarray | None = None) -> np.ndarray:
    """Bias gradient: the column sums of ``dz`` (n, o), accumulated in double in row order.

    Parameters
    ----------
    dz : array_like of float32 or float64, shape (n, o)
    out : ndarray of shape (o,), optional

    Returns
    -------
    ndarray of shape (o,)
    """
    return _core.bias_grad(dz, out)


_LOSS_COMMON = """
    sample_weight : array_like of shape (n,), optional
        One non-negative weight per row (sum > 0): the loss is ``sum_i w_i l_i / sum_i w_i``
        and the gradient is scaled to match. Default: every weight 1 (the plain mean).
    out : ndarray, optional
        Receives the gradient (C-contiguous, writeable, the input's shape and dtype; must not
        overlap the inputs), so a training step allocates nothing.

    Returns
    -------
    loss : float
    grad : ndarray
        d(loss)/d(input), the input's shape and dtype.
"""


def _with_common(doc: str) -> str:
    return doc + _LOSS_COMMON


def softmax_cross_entropy(logits: ArrayLike, target: ArrayLike, *,
                          sample_weight: ArrayLike | None = None,
                          out: np.ndarray | None = None) -> tuple[float, np.ndarray]:
    return _core.softmax_cross_entropy(logits, target, sample_weight, out)


softmax_cross_entropy.__doc__ = _with_common("""Softmax cross-entropy from logits, with its gradient, in one pass over the logits.

    ``l_i = -log softmax(logits_i)[target_i]``, with log softmax computed as
    ``x - max - log(sum(exp(x - max)))`` (as torch's log_softmax), so logits of +-1e4 or
    1e8-scaled rows give finite, exact losses and no warnings. Same value as
    ``torch.nn.functional.cross_entropy``. Gradient ``(softmax - onehot) * w_i / sum(w)``.

    Parameters
    ----------
    logits : array_like of float32 or float64, shape (n, c)
    target : array_like
        Integer class labels of shape (n,) (any integer dtype, each in [0, c)), or a
        probability / one-hot matrix of shape (n, c) and the logits' dtype (then
        ``l_i = -sum_j t_ij log softmax_ij``, entries with t = 0 contributing 0).""")


def mse(pred: ArrayLike, target: ArrayLike, *, sample_weight: ArrayLike | None = None,
        out: np.ndarray | None = None) -> tuple[float, np.ndarray]:
    return _core.mse(pred, target, sample_weight, out)


mse.__doc__ = _with_common("""Mean squared error over all elements (as torch.nn.MSELoss), gradient ``2 (pred - target) / size``.

    Parameters
    ----------
    pred : array_like of float32 or float64, shape (n,) or (n, k)
    target : array_like, pred's shape and dtype""")


def binary_cross_entropy(logits: ArrayLike, target: ArrayLike, *,
                         sample_weight: ArrayLike | None = None,
                         out: np.ndarray | None = None) -> tuple[float, np.ndarray]:
    return _core.binary_cross_entropy(logits, target, sample_weight, out)


binary_cross_entropy.__doc__ = _with_common("""Sigmoid + binary cross-entropy from logits (as torch.nn.BCEWithLogitsLoss), mean over all elements.

    ``l = max(x, 0) - x t + log1p(exp(-|x|))``: stable for any |x|; gradient
    ``(sigmoid(x) - t) / size``.

    Parameters
    ----------
    logits : array_like of float32 or float64, shape (n,) or (n, k)
    target : array_like, the logits' shape and dtype, probabilities in [0, 1]""")


def hinge(scores: ArrayLike, target: ArrayLike, *, sample_weight: ArrayLike | None = None,
          out: np.ndarray | None = None) -> tuple[float, np.ndarray]:
    return _core.hinge(scores, target, sample_weight, out)


hinge.__doc__ = _with_common("""Hinge loss as Keras' ``hinge``: ``mean(max(0, 1 - t * s))`` over all elements.

    Parameters
    ----------
    scores : array_like of float32 or float64, shape (n,) or (n, k)
    target : array_like, the scores' shape and dtype, values -1 or 1 (0 is read as -1, so
        0/1 labels work); anything else is a ValueError. The gradient is the subgradient
        ``-t`` where the margin ``1 - t s`` is positive, else 0.""")


def mae(pred: ArrayLike, target: ArrayLike, *, sample_weight: ArrayLike | None = None,
        out: np.ndarray | None = None) -> tuple[float, np.ndarray]:
    return _core.mae(pred, target, sample_weight, out)


mae.__doc__ = _with_common("""Mean absolute error over all elements (as torch.nn.L1Loss), gradient ``sign(pred - target) / size``.

    The gradient is 0 where ``pred == target`` (torch's choice of subgradient).

    Parameters
    ----------
    pred : array_like of float32 or float64, shape (n,) or (n, k)
    target : array_like, pred's shape and dtype""")


def huber(pred: ArrayLike, target: ArrayLike, *, delta: float = 1.0,
          sample_weight: ArrayLike | None = None,
          out: np.ndarray | None = None) -> tuple[float, np.ndarray]:
    return _core.huber(pred, target, delta, sample_weight, out)


huber.__doc__ = _with_common("""Huber loss over all elements (as torch.nn.HuberLoss and Keras' ``huber``).

    With ``e = pred - target``: ``0.5 e^2`` where ``|e| <= delta``, else
    ``delta (|e| - delta / 2)``; gradient ``clip(e, -delta, delta) / size``. Quadratic near the
    target, linear (robust to outliers) beyond ``delta``.

    Parameters
    ----------
    pred : array_like of float32 or float64, shape (n,) or (n, k)
    target : array_like, pred's shape and dtype
    delta : float, default 1.0
        Where the loss turns from quadratic to linear (finite, > 0).""")


def poisson(log_rate: ArrayLike, target: ArrayLike, *, sample_weight: ArrayLike | None = None,
            out: np.ndarray | None = None) -> tuple[float, np.ndarray]:
    return _core.poisson(log_rate, target, sample_weight, out)


poisson.__doc__ = _with_common("""Poisson negative log-likelihood with a log link, mean over all elements.

    The input is the log of the predicted rate: ``l = exp(x) - t x`` (as
    ``torch.nn.PoissonNLLLoss(log_input=True, full=False)``, without the ``log(t!)`` term, which
    does not depend on the model); gradient ``(exp(x) - t) / size``. The predicted rate is
    ``exp(x)``.

    Parameters
    ----------
    log_rate : array_like of float32 or float64, shape (n,) or (n, k)
    target : array_like, the input's shape and dtype: counts or rates >= 0""")


def kl_divergence(logits: ArrayLike, target: ArrayLike, *,
                  sample_weight: ArrayLike | None = None,
                  out: np.ndarray | None = None) -> tuple[float, np.ndarray]:
    return _core.kl_divergence(logits, target, sample_weight, out)


kl_divergence.__doc__ = _with_common("""KL divergence ``KL(target || softmax(logits))`` per row, averaged over rows.

    Equals ``torch.nn.functional.kl_div(log_softmax(logits), target, reduction="batchmean")``:
    ``l_i = sum_j t_ij (log t_ij - log softmax_ij)`` with ``0 log 0 = 0``; gradient
    ``(softmax * sum_j t_ij - t) * w_i / sum(w)``.

    Parameters
    ----------
    logits : array_like of float32 or float64, shape (n, c)
    target : array_like, the logits' shape and dtype, probabilities (>= 0)""")


def sgd_step(params: np.ndarray, grads: ArrayLike, velocity: np.ndarray | None, *,
             lr: float, momentum: float = 0.0, nesterov: bool = False,
             weight_decay: float = 0.0) -> None:
    """One SGD step, in place, in one fused pass over flat buffers.

    Classical momentum as in the source material (the velocity holds the step itself)::

        g = grads + weight_decay * params
        velocity = momentum * velocity - lr * g
        params += velocity                      # Nesterov: params += momentum * velocity - lr * g

    PyTorch's SGD (dampening 0) keeps ``b = momentum * b + g`` and does ``params -= lr * b``:
    with a constant lr the two are the same trajectory, ``velocity == -lr * b``.

    Parameters
    ----------
    params : ndarray of float32 or float64
        Updated in place: C-contiguous, writeable, not empty.
    grads : array_like
        params' shape and dtype.
    velocity : ndarray or None
        params' shape and dtype, updated in place; None only when momentum == 0 (plain SGD).
    lr : float
        Learning rate, >= 0.
    momentum : float, default 0
        >= 0.
    nesterov : bool, default False
        Nesterov momentum (needs momentum > 0).
    weight_decay : float, default 0
        L2 penalty added to the gradient, >= 0.
    """
    _core.sgd_step(params, grads, velocity, lr, momentum, nesterov, weight_decay)


def l2_penalty(weights: ArrayLike, grads: np.ndarray | None = None, *,
               coef: float = 0.0) -> float:
    """``sum(weights**2)``, and ``grads += coef * weights`` in the same pass (an L2 penalty's
    value and gradient: one read of the weights instead of three passes).

    The sum is accumulated in float64, in an order fixed by the size and the ISA: the same at any
    thread count.

    Parameters
    ----------
    weights : array_like of float32 or float64
    grads : ndarray or None
        weights' shape and dtype, C-contiguous, writeable, not overlapping weights; updated in
        place. None: only the sum.
    coef : float, default 0
        Finite.

    Returns
    -------
    float
    """
    return _core.l2_penalty(weights, grads, coef)


def adam_step(params: np.ndarray, grads: ArrayLike, m: np.ndarray, v: np.ndarray, *,
              step: int, lr: float = 1e-3, beta1: float = 0.9, beta2: float = 0.999,
              eps: float = 1e-8, weight_decay: float = 0.0) -> None:
    """One Adam step with decoupled weight decay (AdamW), in place, in one fused pass.

    As ``torch.optim.AdamW`` (``torch.optim.Adam`` when weight_decay is 0)::

        params *= 1 - lr * weight_decay
        m += (1 - beta1) * (grads - m);  v = beta2 * v + (1 - beta2) * grads**2
        params -= lr / (1 - beta1**step) * m / (sqrt(v) / sqrt(1 - beta2**step) + eps)

    Parameters
    ----------
    params : ndarray of float32 or float64
        Updated in place: C-contiguous, writeable, not empty.
    grads : array_like
        params' shape and dtype.
    m, v : ndarray
        First and second moment estimates (zeros before the first step), params' shape and
        dtype, updated in place.
    step : int
        1 for the first step (bias correction), then 2, 3, ...
    lr : float, default 1e-3
    beta1, beta2 : float, default 0.9, 0.999
        In [0, 1).
    eps : float, default 1e-8
    weight_decay : float, default 0
    """
    _core.adam_step(params, grads, m, v, step, lr, beta1, beta2, eps, weight_decay)


def rmsprop_step(params: np.ndarray, grads: ArrayLike, v: np.ndarray,
                 gavg: np.ndarray | None = None, buf: np.ndarray | None = None, *,
                 lr: float = 1e-2, alpha: float = 0.99, eps: float = 1e-8,
                 weight_decay: float = 0.0, momentum: float = 0.0) -> None:
    """One RMSprop step, in place, in one fused pass (``torch.optim.RMSprop``)::

        g = grads + weight_decay * params
        v = alpha * v + (1 - alpha) * g**2
        centered: gavg = alpha * gavg + (1 - alpha) * g;  denom = sqrt(v - gavg**2) + eps
        else:     denom = sqrt(v) + eps
        momentum > 0: buf = momentum * buf + g / denom;  params -= lr * buf
        else:         params -= lr * g / denom

    Parameters
    ----------
    params : ndarray of float32 or float64
        Updated in place: C-contiguous, writeable, not empty.
    grads : array_like
        params' shape and dtype.
    v : ndarray
        The running mean of squared gradients (zeros before the first step), params' shape and
        dtype, updated in place.
    gavg : ndarray or None
        The running mean of the gradients for the centered variant, else None.
    buf : ndarray or None
        The momentum buffer; None only when momentum == 0.
    lr : float, default 1e-2
    alpha : float, default 0.99
        Smoothing constant in [0, 1].
    eps : float, default 1e-8
        > 0.
    weight_decay : float, default 0
        L2 penalty added to the gradient, >= 0.
    momentum : float, default 0
        >= 0.
    """
    _core.rmsprop_step(params, grads, v, gavg, buf, lr, alpha, eps, weight_decay, momentum)


def adagrad_step(params: np.ndarray, grads: ArrayLike, state_sum: np.ndarray, *, step: int,
                 lr: float = 1e-2, lr_decay: float = 0.0, eps: float = 1e-10,
                 weight_decay: float = 0.0) -> None:
    """One Adagrad step, in place, in one fused pass (``torch.optim.Adagrad``)::

        g = grads + weight_decay * params
        state_sum += g**2
        params -= lr / (1 + (step - 1) * lr_decay) * g / (sqrt(state_sum) + eps)

    Parameters
    ----------
    params : ndarray of float32 or float64
        Updated in place: C-contiguous, writeable, not empty.
    grads : array_like
        params' shape and dtype.
    state_sum : ndarray
        The sum of squared gradients (``initial_accumulator_value`` before the first step),
        params' shape and dtype, updated in place.
    step : int
        1 for the first step, then 2, 3, ...
    lr : float, default 1e-2
    lr_decay : float, default 0
        >= 0.
    eps : float, default 1e-10
        > 0.
    weight_decay : float, default 0
        L2 penalty added to the gradient, >= 0.
    """
    _core.adagrad_step(params, grads, state_sum, step, lr, lr_decay, eps, weight_decay)


# ---- normalization and dropout layers (csrc/norm.c) ---------------------------------------------
__all__ += ["batchnorm_backward", "batchnorm_forward", "dropout", "layernorm_backward",
            "layernorm_forward"]


def dropout(x: ArrayLike, rate: float, *, key: int, counter: int,
            out: np.ndarray | None = None) -> np.ndarray:
    """Inverted dropout: ``x / (1 - rate)`` where element i is kept, else 0.

    Element i is kept when a hash of (`key`, `counter`, i) is at least `rate` (53 bits): no
    state, the same mask at any thread count, and the backward is the same call on the
    gradient (the mask regenerated). `pynn.Dropout` keys it with the fit's seed and the layer's
    position and counts the steps. `key`, `counter`: ints in [0, 2**64); `rate` in [0, 1).
    """
    return _core.dropout(x, rate, key, counter, out)


def batchnorm_forward(x: ArrayLike, gamma: ArrayLike, beta: ArrayLike, *, eps: float = 1e-5,
                      out: np.ndarray | None = None) -> tuple:
    """Training-mode batch normalization of x (n, c) per column.

    Returns ``(y, xhat, mean, var, invstd)``: ``y = gamma * xhat + beta`` with
    ``xhat = (x - mean) * invstd``, ``invstd = 1 / sqrt(var + eps)``, the biased variance;
    mean, var and invstd are float64 (c,). Sums run down each column in a fixed order (bitwise
    the same at any thread count).
    """
    return _core.batchnorm_forward(x, gamma, beta, eps, out)


def batchnorm_backward(dy: ArrayLike, xhat: ArrayLike, gamma: ArrayLike,
                       invstd: ArrayLike) -> tuple:
    """``(dx, dgamma, dbeta)`` of `batchnorm_forward` from its xhat and invstd:
    ``dbeta = sum dy``, ``dgamma = sum dy * xhat`` (over rows),
    ``dx = gamma * invstd * (dy - dbeta / n - xhat * dgamma / n)``."""
    dy = np.asarray(dy)
    return _core.batchnorm_backward(dy, xhat, gamma, invstd, dx=np.empty(dy.shape, dy.dtype))


def layernorm_forward(x: ArrayLike, gamma: ArrayLike, beta: ArrayLike, *, eps: float = 1e-5,
                      out: np.ndarray | None = None) -> tuple:
    """Layer normalization of each row of x (n, c): ``(y, xhat, invstd)`` with invstd float64
    (n,), the biased variance."""
    return _core.layernorm_forward(x, gamma, beta, eps, out)


def layernorm_backward(dy: ArrayLike, xhat: ArrayLike, gamma: ArrayLike,
                       invstd: ArrayLike) -> tuple:
    """``(dx, dgamma, dbeta)`` of `layernorm_forward`: with ``g = dy * gamma``,
    ``dx = invstd * (g - mean(g) - xhat * mean(g * xhat))`` per row."""
    dy = np.asarray(dy)
    return _core.layernorm_backward(dy, xhat, gamma, invstd, dx=np.empty(dy.shape, dy.dtype))
