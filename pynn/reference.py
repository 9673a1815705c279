"""The kernels of pynn.ops in plain NumPy: the oracle for tests and the baseline for benchmarks.

Written for clarity, in float64-safe ways; each function matches its pynn.ops twin's signature.
"""
from __future__ import annotations

import numpy as np

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
        m = np.where(np.isfinite(m), m, 0)
        e = np.exp(z - m)
        return e / e.sum(axis=1, keepdims=True)
    if activation == "step":
        return np.where(np.isnan(z), z, (z > 0).astype(z.dtype))
    raise ValueError(f"unknown activation {activation!r}")


def _act_backward(y: np.ndarray, dy: np.ndarray, activation: str, alpha: float) -> np.ndarray:
    if activation == "identity":
        return dy
    if activation == "relu":
        return np.where(y > 0, dy, 0).astype(dy.dtype)
    if activation == "leaky_relu":
        return np.where(y >= 0, dy, alpha * dy).astype(dy.dtype)
    if activation == "sigmoid":
        return dy * y * (1 - y)
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
