"""The textbook NumPy MLP: the baseline every pynn training benchmark is measured against.

Written the way the "from scratch" course writes it — Affine, Relu and SoftmaxWithLoss layers,
each with forward() and backward(); a network that runs its layers forward, then backward in
reverse order; SGD with classical momentum (v <- momentum*v - lr*grad; param <- param + v) — in
float32. Plain, but not wasteful: the first layer skips the input gradient nobody uses, the
optimizer updates in place, and nothing is converted to float64 on the way.

This is the code a user of pynn would otherwise write, so it is the fair NumPy reference; it is
also the oracle tests/test_bench.py compares pynn's training step with.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def he_normal(sizes: Sequence[int], seed: int = 0, dtype=np.float32) -> list[np.ndarray]:
    """He-normal weights (std sqrt(2 / fan_in)) and zero biases: [W1, b1, W2, b2, ...].

    Every benchmarked system starts from exactly these arrays (W is fan_in x fan_out).
    """
    rng = np.random.default_rng(seed)
    params = []
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
        params.append((rng.standard_normal((fan_in, fan_out)) * np.sqrt(2.0 / fan_in))
                      .astype(dtype))
        params.append(np.zeros(fan_out, dtype=dtype))
    return params


class Affine:
    """out = x @ W + b. backward stores dW = x.T @ dout, db = sum(dout) and returns dout @ W.T."""

    def __init__(self, W: np.ndarray, b: np.ndarray, need_dx: bool = True):
        self.W, self.b = W, b
        self.dW, self.db = np.zeros_like(W), np.zeros_like(b)
        self.need_dx = need_dx  # the first layer's dx is the input's gradient: nobody needs it
        self.x: np.ndarray | None = None

    def forward(self, x: np.ndarray) -> np.ndarray:
        self.x = x
        out = x @ self.W
        out += self.b
        return out

    def backward(self, dout: np.ndarray) -> np.ndarray | None:
        np.matmul(self.x.T, dout, out=self.dW)
        np.sum(dout, axis=0, out=self.db)
        return dout @ self.W.T if self.need_dx else None


class Relu:
    """out = max(0, x); backward passes the gradient where the input was positive."""

    def __init__(self):
        self.mask: np.ndarray | None = None

    def forward(self, x: np.ndarray) -> np.ndarray:
        self.mask = x > 0
        return np.multiply(x, self.mask, out=x)  # x is the affine's fresh output: reuse it

    def backward(self, dout: np.ndarray) -> np.ndarray:
        return np.multiply(dout, self.mask, out=dout)


class SoftmaxWithLoss:
    """Softmax and mean cross-entropy with integer labels; backward gives (softmax - onehot) / n.

    Stable form: shifted = x - max(x); loss_i = log(sum(exp(shifted_i))) - shifted_i[t_i], so
    large logits neither overflow nor give log(0).
    """

    def __init__(self):
        self.y: np.ndarray | None = None
        self.t: np.ndarray | None = None

    def forward(self, x: np.ndarray, t: np.ndarray) -> float:
        shifted = x - x.max(axis=1, keepdims=True)
        exp = np.exp(shifted)
        total = exp.sum(axis=1, keepdims=True)
        rows = np.arange(x.shape[0])
        loss = float(np.mean(np.log(total[:, 0]) - shifted[rows, t]))
        exp /= total
        self.y, self.t = exp, t
        return loss

    def backward(self) -> np.ndarray:
        n = self.y.shape[0]
        dx = self.y  # consumed: the softmax output is not needed after this
        dx[np.arange(n), self.t] -= 1
        dx /= n
        return dx


class Momentum:
    """Classical momentum: v <- momentum * v - lr * grad; param <- param + v (in place)."""

    def __init__(self, lr: float = 0.05, momentum: float = 0.9):
        self.lr, self.momentum = lr, momentum
        self.v: list[np.ndarray] | None = None

    def update(self, params: list[np.ndarray], grads: list[np.ndarray]) -> None:
        if self.v is None:
            self.v = [np.zeros_like(p) for p in params]
        lr = params[0].dtype.type(self.lr)
        momentum = params[0].dtype.type(self.momentum)
        for p, g, v in zip(params, grads, self.v):
            v *= momentum
            v -= lr * g
            p += v


class NumpyMLP:
    """Affine -> Relu -> ... -> Affine -> SoftmaxWithLoss, with hidden ReLU layers.

    Parameters
    ----------
    params : list of arrays
        [W1, b1, W2, b2, ...] (e.g. from he_normal); used in place (they are trained).
    """

    def __init__(self, params: list[np.ndarray]):
        self.params = params
        self.layers: list = []
        n_affine = len(params) // 2
        for i in range(n_affine):
            self.layers.append(Affine(params[2 * i], params[2 * i + 1], need_dx=i > 0))
            if i < n_affine - 1:
                self.layers.append(Relu())
        self.last = SoftmaxWithLoss()
        self.affines = [layer for layer in self.layers if isinstance(layer, Affine)]

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Logits."""
        for layer in self.layers:
            x = layer.forward(x)
        return x

    def loss(self, x: np.ndarray, t: np.ndarray) -> float:
        return self.last.forward(self.predict(x), t)

    def gradient(self, x: np.ndarray, t: np.ndarray) -> float:
        """Forward, then backward; fills every Affine's dW/db. Returns the batch loss."""
        loss = self.loss(x, t)
        dout = self.last.backward()
        for layer in reversed(self.layers):
            dout = layer.backward(dout)
        return loss

    def grads(self) -> list[np.ndarray]:
        return [g for layer in self.affines for g in (layer.dW, layer.db)]

    def accuracy(self, x: np.ndarray, t: np.ndarray, batch_size: int = 10000) -> float:
        hits = 0
        for start in range(0, len(x), batch_size):
            hits += int(np.sum(self.predict(x[start:start + batch_size]).argmax(axis=1)
                               == t[start:start + batch_size]))
        return hits / len(x)


def train_epoch(net: NumpyMLP, optimizer: Momentum, x: np.ndarray, t: np.ndarray,
                batch_size: int, rng: np.random.Generator) -> float:
    """One epoch of shuffled mini-batch SGD; returns the mean batch loss."""
    order = rng.permutation(len(x))
    x, t = x[order], t[order]
    params = net.params
    grads = net.grads()
    total, batches = 0.0, 0
    for start in range(0, len(x), batch_size):
        total += net.gradient(x[start:start + batch_size], t[start:start + batch_size])
        optimizer.update(params, grads)
        batches += 1
    return total / batches
