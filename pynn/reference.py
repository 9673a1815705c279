"""The kernels of pynn.ops in plain NumPy: the oracle for tests and the baseline for benchmarks.

Written for clarity, in float64-safe ways; each function matches its pynn.ops twin's signature.
"""
from __future__ import annotations

import numpy as np

__all__: list[str] = []

# ---- gemm (issue 3) -----------------------------------------------------------------------------

def _act_forward(z: np.ndarray, activation: str, alpha: float) -> np.ndarray:
    if activation == "identity":
        return z
    if activation == "relu":
        return np.maximum(z, 0)
    if activation == "leaky_relu":
        return np.where(z >= 0, z, alpha * z)
    if activation == "sigmoid":
        e = np.exp(-np.abs(z))
        return np.where(z >= 0, 1 / (1 + e), e / (1 + e))
    if activation == "tanh":
        return np.tanh(z)
    if activation == "softmax":
        m = np.max(z, axis=1, keepdims=True)
        e = np.exp(z - np.where(np.isfinite(m), m, 0))
        with np.errstate(invalid="ignore"):
            p = e / e.sum(axis=1, keepdims=True)
        return np.where(np.isposinf(m), np.nan, p)  # a row with +inf has no defined softmax
    if activation == "step":
        return np.where(np.isnan(z), z, (z > 0).astype(z.dtype))
    raise ValueError(f"unknown activation {activation!r}")


def _act_backward(y: np.ndarray, dy: np.ndarray, activation: str, alpha: float) -> np.ndarray:
    if activation == "identity":
        return dy
    if activation == "relu":
        return np.where(y > 0, dy, 0).astype(dy.dtype)
    if activation == "leaky_relu":  # PyTorch's convention at the kink: alpha * dy at y == 0
        return np.where(y > 0, dy, alpha * dy).astype(dy.dtype)
    if activation == "sigmoid":
        return dy * (y * (1 - y))
    if activation == "tanh":
        return dy * (1 - y * y)
    if activation == "softmax":
        return y * (dy - np.sum(dy * y, axis=1, keepdims=True))
    raise ValueError(f"activation {activation!r} has no derivative")


def matmul(a: np.ndarray, b: np.ndarray, *, trans_a: bool = False, trans_b: bool = False,
           out: np.ndarray | None = None, accumulate: bool = False) -> np.ndarray:
    """``op(a) @ op(b)``, optionally added into ``out``."""
    c = (a.T if trans_a else a) @ (b.T if trans_b else b)
    if out is None:
        return c
    if accumulate:
        out += c
    else:
        out[...] = c
    return out


def linear(x: np.ndarray, w: np.ndarray, b: np.ndarray | None = None, *,
           activation: str = "identity", alpha: float = 0.01,
           out: np.ndarray | None = None) -> np.ndarray:
    """``act(x @ w + b)``."""
    z = x @ w
    if b is not None:
        z = z + b
    y = _act_forward(z, activation, alpha).astype(x.dtype, copy=False)
    if out is not None:
        out[...] = y
        return out
    return y


def linear_backward(x: np.ndarray, w: np.ndarray, y: np.ndarray, dy: np.ndarray, *,
                    activation: str = "identity", alpha: float = 0.01, need_dx: bool = True,
                    dx: np.ndarray | None = None, dw: np.ndarray | None = None,
                    db: np.ndarray | None = None, accumulate: bool = False):
    """``dz = dy * act'(y)``; returns ``(dz @ w.T or None, x.T @ dz, dz.sum(0))``, written into
    (or, with accumulate, added into) dx, dw, db when given."""
    dz = _act_backward(y, dy, activation, alpha)
    grads = [dz @ w.T if need_dx else None, x.T @ dz, dz.sum(axis=0)]
    for k, (buf, g) in enumerate(zip((dx, dw, db), grads)):
        if buf is not None and g is not None:
            if accumulate and k > 0:
                buf += g
            else:
                buf[...] = g
            grads[k] = buf
    return tuple(grads)

# ---- mini-batch data movement --------------------------------------------------------------------

__all__ += ["all_finite", "argmax_hits", "gather_rows"]


def gather_rows(src: np.ndarray, idx: np.ndarray, out: np.ndarray) -> np.ndarray:
    """out[r] = src[idx[r]]."""
    out[...] = src[idx]
    return out


def argmax_hits(outputs: np.ndarray, target: np.ndarray) -> int:
    """Rows whose argmax is the target's class (labels, or the argmax of target rows)."""
    want = target if target.ndim == 1 else target.argmax(axis=1)
    return int((outputs.argmax(axis=1) == want).sum())


def all_finite(x: np.ndarray) -> bool:
    """No NaN and no infinity in x."""
    return bool(np.isfinite(x).all())


# ---- activations, losses, optimizer steps (issue 2) ---------------------------------------------
# Computed in the inputs' dtype (pass float64 copies for an accurate oracle). Written as a careful
# NumPy user would: stable formulas, no overflow warnings for extreme inputs.

__all__ += [
    "activation",
    "activation_backward",
    "adagrad_step",
    "adam_step",
    "bias_grad",
    "binary_cross_entropy",
    "hinge",
    "huber",
    "kl_divergence",
    "mae",
    "mse",
    "poisson",
    "rmsprop_step",
    "sgd_step",
    "softmax",
    "softmax_cross_entropy",
]


def _store(result: np.ndarray, out: np.ndarray | None) -> np.ndarray:
    if out is None:
        return result
    out[...] = result
    return out


def _sigmoid(x: np.ndarray) -> np.ndarray:
    e = np.exp(-np.abs(x))  # <= 1: never overflows
    return np.where(x >= 0, 1, e) / (1 + e)


def softmax(x: np.ndarray, *, out: np.ndarray | None = None) -> np.ndarray:
    """Row-wise (last axis) softmax with the row maximum subtracted first."""
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return _store(e / e.sum(axis=-1, keepdims=True), out)


def activation(name: str, x: np.ndarray, *, alpha: float = 0.01,
               out: np.ndarray | None = None) -> np.ndarray:
    x = np.asarray(x)
    one, zero = x.dtype.type(1), x.dtype.type(0)
    if name == "identity":
        y = x.copy()
    elif name == "relu":
        y = np.maximum(x, zero)
    elif name == "leaky_relu":
        y = np.where(x >= 0, x, x.dtype.type(alpha) * x)
    elif name == "sigmoid":
        y = _sigmoid(x).astype(x.dtype)
    elif name == "tanh":
        y = np.tanh(x)
    elif name == "softmax":
        y = softmax(x)
    elif name == "step":
        y = np.where(x > 0, one, np.where(np.isnan(x), x, zero))
    else:
        raise ValueError(f"unknown activation {name!r}")
    return _store(y, out)


def activation_backward(name: str, y: np.ndarray, dy: np.ndarray, *, alpha: float = 0.01,
                        out: np.ndarray | None = None) -> np.ndarray:
    y, dy = np.asarray(y), np.asarray(dy)
    if name == "identity":
        dx = dy.copy()
    elif name == "relu":  # PyTorch's convention at the kinks: 0 (relu), alpha (leaky) at y == 0
        dx = np.where(y > 0, dy, y.dtype.type(0))
    elif name == "leaky_relu":
        dx = np.where(y > 0, dy, y.dtype.type(alpha) * dy)
    elif name == "sigmoid":
        dx = dy * (y * (1 - y))
    elif name == "tanh":
        dx = dy * (1 - y * y)
    elif name == "softmax":
        dx = y * (dy - (dy * y).sum(axis=-1, keepdims=True))
    else:
        raise ValueError(f"no backward for activation {name!r}")
    return _store(dx, out)


def bias_grad(dz: np.ndarray, *, out: np.ndarray | None = None) -> np.ndarray:
    return _store(np.asarray(dz).sum(axis=0), out)


def _weights(sample_weight, n: int, dtype) -> np.ndarray:
    if sample_weight is None:
        return np.ones(n, dtype=dtype)
    return np.asarray(sample_weight, dtype=dtype)


def _row_scale(w: np.ndarray, ndim: int) -> np.ndarray:
    return w if ndim == 1 else w[:, None]


def log_softmax(x: np.ndarray) -> np.ndarray:
    """x - max - log(sum(exp(x - max))), in that order (as torch's log_softmax)."""
    shifted = x - x.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def softmax_cross_entropy(logits: np.ndarray, target: np.ndarray, *, sample_weight=None,
                          out: np.ndarray | None = None) -> tuple[float, np.ndarray]:
    x = np.asarray(logits)
    n, _c = x.shape
    target = np.asarray(target)
    logp = log_softmax(x)
    if target.dtype.kind in "iu":
        t = np.zeros_like(x)
        t[np.arange(n), target] = 1
    else:
        t = target
    w = _weights(sample_weight, n, x.dtype)
    wsum = w.sum()
    # t = 0 entries contribute 0 even where logp = -inf (no 0 * inf)
    per_row = -(t * np.where(t != 0, logp, 0)).sum(axis=1)
    loss = float((w * per_row).sum() / wsum)
    grad = (np.exp(logp) * t.sum(axis=1, keepdims=True) - t) * (w / wsum)[:, None]
    return loss, _store(grad.astype(x.dtype), out)


def kl_divergence(logits: np.ndarray, target: np.ndarray, *, sample_weight=None,
                  out: np.ndarray | None = None) -> tuple[float, np.ndarray]:
    x, t = np.asarray(logits), np.asarray(target)
    logp = log_softmax(x)
    w = _weights(sample_weight, x.shape[0], x.dtype)
    wsum = w.sum()
    safe_t = np.where(t > 0, t, 1)
    per_row = (t * (np.log(safe_t) - np.where(t > 0, logp, 0))).sum(axis=1)
    loss = float((w * per_row).sum() / wsum)
    grad = (np.exp(logp) * t.sum(axis=1, keepdims=True) - t) * (w / wsum)[:, None]
    return loss, _store(grad.astype(x.dtype), out)


def _elementwise(loss: np.ndarray, grad: np.ndarray, sample_weight, out):
    n = loss.shape[0]
    k = 1 if loss.ndim == 1 else loss.shape[1]
    w = _weights(sample_weight, n, loss.dtype)
    wsum = w.sum()
    rows = loss if loss.ndim == 1 else loss.sum(axis=1)
    total = float((w * rows).sum() / (wsum * k))
    grad = grad * _row_scale(w / (wsum * k), loss.ndim)
    return total, _store(grad.astype(loss.dtype), out)


def mse(pred: np.ndarray, target: np.ndarray, *, sample_weight=None,
        out: np.ndarray | None = None) -> tuple[float, np.ndarray]:
    diff = np.asarray(pred) - np.asarray(target)
    return _elementwise(diff * diff, 2 * diff, sample_weight, out)


def binary_cross_entropy(logits: np.ndarray, target: np.ndarray, *, sample_weight=None,
                         out: np.ndarray | None = None) -> tuple[float, np.ndarray]:
    x, t = np.asarray(logits), np.asarray(target)
    loss = np.maximum(x, 0) - x * t + np.log1p(np.exp(-np.abs(x)))
    return _elementwise(loss, _sigmoid(x).astype(x.dtype) - t, sample_weight, out)


def hinge(scores: np.ndarray, target: np.ndarray, *, sample_weight=None,
          out: np.ndarray | None = None) -> tuple[float, np.ndarray]:
    s, t = np.asarray(scores), np.asarray(target)
    sign = np.where(t > 0, 1, -1).astype(s.dtype)
    margin = 1 - sign * s
    loss = np.maximum(margin, 0)
    grad = np.where(margin > 0, -sign, 0).astype(s.dtype)
    return _elementwise(loss, grad, sample_weight, out)


def mae(pred: np.ndarray, target: np.ndarray, *, sample_weight=None,
        out: np.ndarray | None = None) -> tuple[float, np.ndarray]:
    diff = np.asarray(pred) - np.asarray(target)
    return _elementwise(np.abs(diff), np.sign(diff), sample_weight, out)


def huber(pred: np.ndarray, target: np.ndarray, *, delta: float = 1.0, sample_weight=None,
          out: np.ndarray | None = None) -> tuple[float, np.ndarray]:
    diff = np.asarray(pred) - np.asarray(target)
    d = diff.dtype.type(delta)
    small = np.abs(diff) <= d
    loss = np.where(small, diff * diff / 2, d * (np.abs(diff) - d / 2))
    return _elementwise(loss.astype(diff.dtype), np.clip(diff, -d, d), sample_weight, out)


def poisson(log_rate: np.ndarray, target: np.ndarray, *, sample_weight=None,
            out: np.ndarray | None = None) -> tuple[float, np.ndarray]:
    x, t = np.asarray(log_rate), np.asarray(target)
    with np.errstate(over="ignore"):  # a huge log-rate is an infinite loss, as in the kernel
        rate = np.exp(x)
    return _elementwise(rate - t * x, rate - t, sample_weight, out)


def sgd_step(params: np.ndarray, grads: np.ndarray, velocity: np.ndarray | None, *,
             lr: float, momentum: float = 0.0, nesterov: bool = False,
             weight_decay: float = 0.0) -> None:
    """In place, with NumPy's in-place operators (what a careful NumPy user writes)."""
    dt = params.dtype.type
    g = grads + dt(weight_decay) * params if weight_decay else grads
    if velocity is None:
        params -= dt(lr) * g
        return
    velocity *= dt(momentum)
    velocity -= dt(lr) * g
    if nesterov:
        params += dt(momentum) * velocity - dt(lr) * g
    else:
        params += velocity


def l2_penalty(weights: np.ndarray, grads: np.ndarray | None = None, *,
               coef: float = 0.0) -> float:
    """sum(w^2) in float64; grads += coef * w (rounded to grads' dtype) when given."""
    w = np.asarray(weights)
    if grads is not None:
        grads += w.dtype.type(coef) * w
    w64 = w.astype(np.float64).ravel()
    return float(np.dot(w64, w64))


def adam_step(params: np.ndarray, grads: np.ndarray, m: np.ndarray, v: np.ndarray, *,
              step: int, lr: float = 1e-3, beta1: float = 0.9, beta2: float = 0.999,
              eps: float = 1e-8, weight_decay: float = 0.0) -> None:
    dt = params.dtype.type
    if weight_decay:
        params *= dt(1 - lr * weight_decay)
    m += dt(1 - beta1) * (grads - m)
    v *= dt(beta2)
    v += dt(1 - beta2) * grads * grads
    step_size = lr / (1 - beta1 ** step)
    denom = np.sqrt(v) / dt(np.sqrt(1 - beta2 ** step)) + dt(eps)
    params -= dt(step_size) * (m / denom)


def rmsprop_step(params: np.ndarray, grads: np.ndarray, v: np.ndarray,
                 gavg: np.ndarray | None = None, buf: np.ndarray | None = None, *,
                 lr: float = 1e-2, alpha: float = 0.99, eps: float = 1e-8,
                 weight_decay: float = 0.0, momentum: float = 0.0) -> None:
    dt = params.dtype.type
    g = grads + dt(weight_decay) * params
    v *= dt(alpha)
    v += dt(1 - alpha) * (g * g)
    if gavg is not None:
        gavg *= dt(alpha)
        gavg += dt(1 - alpha) * g
        denom = np.sqrt(v - gavg * gavg) + dt(eps)
    else:
        denom = np.sqrt(v) + dt(eps)
    if buf is not None:
        buf *= dt(momentum)
        buf += g / denom
        params -= dt(lr) * buf
    else:
        params -= dt(lr) * (g / denom)


def adagrad_step(params: np.ndarray, grads: np.ndarray, state_sum: np.ndarray, *, step: int,
                 lr: float = 1e-2, lr_decay: float = 0.0, eps: float = 1e-10,
                 weight_decay: float = 0.0) -> None:
    dt = params.dtype.type
    g = grads + dt(weight_decay) * params
    state_sum += g * g
    clr = lr / (1 + (step - 1) * lr_decay)
    params -= dt(clr) * (g / (np.sqrt(state_sum) + dt(eps)))


# ---- normalization and dropout layers (csrc/norm.c) ---------------------------------------------

__all__ += ["batchnorm_backward", "batchnorm_forward", "dropout", "layernorm_backward",
            "layernorm_forward", "scale_shift"]

_U64 = (1 << 64) - 1


def _mix64(z):
    """SplitMix64's finalizer on Python ints or uint64 arrays (wrapping arithmetic)."""
    if isinstance(z, int):
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _U64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _U64
        return z ^ (z >> 31)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def _mix32(x: np.ndarray) -> np.ndarray:
    """C. Wellons' lowbias32 on uint32 arrays."""
    x = x ^ (x >> np.uint32(16))
    x = x * np.uint32(0x7FEB352D)
    x = x ^ (x >> np.uint32(15))
    x = x * np.uint32(0x846CA68B)
    return x ^ (x >> np.uint32(16))


def dropout(x: np.ndarray, rate: float, key: int, counter: int) -> np.ndarray:
    """Element i kept when mix32(mix32(i + s0) ^ (s1 + (i >> 32))) >= rate * 2^32, where
    (s0, s1) are the halves of mix64(key ^ mix64(counter + c)); kept elements scaled by
    1 / (1 - rate)."""
    stream = _mix64(key ^ _mix64((counter + 0x632BE59BD9B4E019) & _U64))
    s0, s1 = np.uint32(stream & 0xFFFFFFFF), np.uint32(stream >> 32)
    index = np.arange(x.size, dtype=np.uint64)
    with np.errstate(over="ignore"):
        low = index.astype(np.uint32)  # i mod 2^32
        high = (index >> np.uint64(32)).astype(np.uint32)
        bits = _mix32(_mix32(low + s0) ^ (s1 + high))
    kept = bits >= np.uint32(int(rate * 2.0**32))
    scale = x.dtype.type(1.0 / (1.0 - rate))
    return np.where(kept.reshape(x.shape), x * scale, x.dtype.type(0))


def batchnorm_forward(x: np.ndarray, gamma: np.ndarray, beta: np.ndarray,
                      eps: float = 1e-5) -> tuple:
    """(y, xhat, mean, var, invstd): column statistics in float64, the biased variance."""
    x64 = x.astype(np.float64)
    mean = x64.mean(axis=0)
    var = ((x64 - mean) ** 2).mean(axis=0)
    invstd = 1.0 / np.sqrt(var + eps)
    xhat = ((x64 - mean) * invstd).astype(x.dtype)
    return gamma * xhat + beta, xhat, mean, var, invstd


def batchnorm_backward(dy: np.ndarray, xhat: np.ndarray, gamma: np.ndarray,
                       invstd: np.ndarray) -> tuple:
    """(dx, dgamma, dbeta) of the training-mode BatchNorm."""
    g, h = dy.astype(np.float64), xhat.astype(np.float64)
    dbeta, dgamma = g.sum(axis=0), (g * h).sum(axis=0)
    n = dy.shape[0]
    dx = gamma * invstd * (g - dbeta / n - h * dgamma / n)
    return dx.astype(dy.dtype), dgamma.astype(dy.dtype), dbeta.astype(dy.dtype)


def scale_shift(x: np.ndarray, scale: np.ndarray, shift: np.ndarray) -> np.ndarray:
    return x * scale + shift


def layernorm_forward(x: np.ndarray, gamma: np.ndarray, beta: np.ndarray,
                      eps: float = 1e-5) -> tuple:
    """(y, xhat, invstd): row statistics in float64, the biased variance."""
    x64 = x.astype(np.float64)
    mean = x64.mean(axis=1, keepdims=True)
    var = ((x64 - mean) ** 2).mean(axis=1, keepdims=True)
    invstd = 1.0 / np.sqrt(var + eps)
    xhat = ((x64 - mean) * invstd).astype(x.dtype)
    return gamma * xhat + beta, xhat, invstd[:, 0]


def layernorm_backward(dy: np.ndarray, xhat: np.ndarray, gamma: np.ndarray,
                       invstd: np.ndarray) -> tuple:
    """(dx, dgamma, dbeta) of LayerNorm."""
    g, h = dy.astype(np.float64), xhat.astype(np.float64)
    gg = g * gamma
    dx = invstd[:, None] * (gg - gg.mean(axis=1, keepdims=True)
                            - h * (gg * h).mean(axis=1, keepdims=True))
    return dx.astype(dy.dtype), (g * h).sum(axis=0).astype(dy.dtype), \
        g.sum(axis=0).astype(dy.dtype)
