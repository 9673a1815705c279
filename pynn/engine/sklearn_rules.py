"""The training engine behind `pynn.sklearn`: scikit-learn's MLP semantics on pynn's kernels.

scikit-learn's MLPClassifier/MLPRegressor define the maths (what the loss is, how it is
scaled, how L2 and the learning-rate schedules act); a `pynn.Sequential` holds the numbers (one
flat parameter buffer, one flat gradient buffer) and runs each batch's forward and backward with
the fused kernels; the optimizer state lives in flat buffers of the same size and every update
is one or a few `pynn.ops.sgd_step` / `pynn.ops.adam_step` calls.

Where scikit-learn's definitions differ from pynn's kernels, this module converts:

- loss scale: scikit-learn's squared error is half the mean over outputs (pynn's mse: the mean),
  its multi-label log-loss sums over outputs (pynn's binary_cross_entropy: the mean); the
  gradient scikit-learn descends is ``(output - y) * w_i / sum(w)`` for every loss. `LossAdapter`
  rescales the value and the gradient in place (one pass over the batch's outputs).
- L2 (``alpha``) acts on weights only, not biases, scaled by the batch's weight sum: SGD gets it
  through sgd_step's ``weight_decay`` on the weight segments; Adam (whose weight_decay is
  decoupled, AdamW) gets ``alpha / sum(w) * W`` added to the weight gradients.
- Adam: scikit-learn puts epsilon outside the bias correction of the second moment
  (``lr·sqrt(1-β2^t)/(1-β1^t) · m / (sqrt(v) + ε)``); pynn's adam_step is PyTorch's form, which
  is the same update with ``ε / sqrt(1-β2^t)``, so that is what it is given.

Outputs are logits: the output function (softmax / logistic) is fused into the loss kernels, so
the loss is computed from logits (no clipping of probabilities is needed, unlike scikit-learn's
``clip(p, eps, 1 - eps)``; the two agree wherever the probabilities are not within eps of 0 or 1).
"""
from __future__ import annotations

import math

import numpy as np

from .. import ops

__all__ = ["AdamState", "LossAdapter", "SGDState", "TrainBuffers", "WeightNorm"]


class LossAdapter:
    """Loss value and d loss / d logits in scikit-learn's scaling, from pynn's fused kernels.

    Called as the model's loss kernel: ``adapter(logits, target, sample_weight=w, out=delta)``
    returns ``(value, delta)`` with ``delta = (f(logits) - y) * w_i / sum(w)`` (f = softmax,
    logistic or identity), written into `out`.
    """

    __slots__ = ("_kernel", "_scale_grad", "_scale_value", "n_outputs", "out_activation")

    def __init__(self, out_activation: str, n_outputs: int) -> None:
        self.out_activation = out_activation
        self.n_outputs = n_outputs
        if out_activation == "softmax":
            self._kernel = ops.softmax_cross_entropy
            self._scale_value = self._scale_grad = 1.0
        elif out_activation == "logistic":
            # scikit-learn: -sum over outputs of the per-output mean log-likelihood
            self._kernel = ops.binary_cross_entropy
            self._scale_value = self._scale_grad = float(n_outputs)
        elif out_activation == "identity":
            # scikit-learn: 0.5 * mean over outputs of the mean squared error; gradient p - y
            self._kernel = ops.mse
            self._scale_value = 0.5
            self._scale_grad = 0.5 * n_outputs
        else:
            raise ValueError(f"unknown output activation {out_activation!r}")

    def __call__(self, outputs: np.ndarray, target: np.ndarray, *,
                 sample_weight: np.ndarray | None = None,
                 out: np.ndarray | None = None) -> tuple:
        value, grad = self._kernel(outputs, target, sample_weight=sample_weight, out=out)
        if self._scale_grad != 1.0:
            np.multiply(grad, grad.dtype.type(self._scale_grad), out=grad)
        return value * self._scale_value, grad


class WeightNorm:
    """sum of W² over a model's weight matrices (not biases), for the L2 term of the loss.

    Computed with pynn's mse kernel against zeros (a fixed-order reduction, vectorised C):
    NumPy's dot goes to OpenBLAS, which splits long dots over its threads, so the reported loss
    would depend on the thread count; einsum is deterministic but twice as slow.
    """

    __slots__ = ("_views",)

    def __init__(self, model) -> None:
        longest = max(layer.in_features * layer.out_features for layer in model.layers)
        zeros = np.zeros(longest, dtype=model.dtype)
        scratch = np.empty(longest, dtype=model.dtype)
        self._views = [(layer.W.reshape(-1), zeros[:layer.W.size], scratch[:layer.W.size])
                       for layer in model.layers]

    def __call__(self) -> float:
        total = 0.0
        for w, zeros, scratch in self._views:
            mean_square, _ = ops.mse(w, zeros, out=scratch)
            total += mean_square * w.size
        return total


def _segments(model) -> tuple:
    """(weight slices, bias slices) of the model's flat buffers, as (start, stop) pairs."""
    weights, biases = [], []
    offset = 0
    for layer in model.layers:
        n_w = layer.in_features * layer.out_features
        weights.append((offset, offset + n_w))
        biases.append((offset + n_w, offset + n_w + layer.out_features))
        offset += n_w + layer.out_features
    return weights, biases


class SGDState:
    """scikit-learn's SGD (momentum, Nesterov, constant/invscaling/adaptive rate) over flat
    buffers: ``v = μ·v − lr·(g + c·W); θ += v`` (Nesterov: ``θ += μ·v − lr·(g + c·W)``) with
    ``c = alpha / sum(w)`` on weights and 0 on biases."""

    solver = "sgd"

    def __init__(self, model, learning_rate_init: float, momentum: float, nesterov: bool) -> None:
        self.learning_rate_init = float(learning_rate_init)
        self.learning_rate = float(learning_rate_init)
        self.momentum = float(momentum)
        self.nesterov = bool(nesterov) and self.momentum > 0
        n = model.params.size
        self.velocity = np.zeros(n, dtype=model.dtype) if self.momentum > 0 else None
        self.n_params, self.dtype = n, model.dtype
        self._bind(model)

    def _bind(self, model) -> None:
        params, grads, vel = model.params, model.grads, self.velocity
        w_seg, b_seg = _segments(model)

        def views(segs):
            return [(params[a:b], grads[a:b], None if vel is None else vel[a:b]) for a, b in segs]

        self._weights, self._biases = views(w_seg), views(b_seg)
        self._all = (params, grads, vel)

    def compatible(self, model) -> bool:
        return self.n_params == model.params.size and self.dtype == model.dtype

    def step(self, weight_decay: float) -> None:
        lr, mu, nesterov = self.learning_rate, self.momentum, self.nesterov
        step = ops.sgd_step
        if weight_decay == 0.0:
            p, g, v = self._all
            step(p, g, v, lr=lr, momentum=mu, nesterov=nesterov)
            return
        for p, g, v in self._weights:
            step(p, g, v, lr=lr, momentum=mu, nesterov=nesterov, weight_decay=weight_decay)
        for p, g, v in self._biases:
            step(p, g, v, lr=lr, momentum=mu, nesterov=nesterov)

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        for key in ("_weights", "_biases", "_all"):
            state.pop(key, None)
        return state


class AdamState:
    """scikit-learn's Adam over flat buffers (L2 added to the weight gradients first)."""

    solver = "adam"

    def __init__(self, model, learning_rate_init: float, beta_1: float, beta_2: float,
                 epsilon: float) -> None:
        self.learning_rate_init = float(learning_rate_init)
        self.learning_rate = float(learning_rate_init)
        self.beta_1, self.beta_2, self.epsilon = float(beta_1), float(beta_2), float(epsilon)
        n = model.params.size
        self.m = np.zeros(n, dtype=model.dtype)
        self.v = np.zeros(n, dtype=model.dtype)
        self.t = 0
        self.n_params, self.dtype = n, model.dtype
        self._bind(model)

    def _bind(self, model) -> None:
        params, grads = model.params, model.grads
        w_seg, _ = _segments(model)
        longest = max(b - a for a, b in w_seg)
        self._scratch = np.empty(longest, dtype=model.dtype)
        self._weights = [(params[a:b], grads[a:b], self._scratch[:b - a]) for a, b in w_seg]
        self._all = (params, grads)

    def compatible(self, model) -> bool:
        return self.n_params == model.params.size and self.dtype == model.dtype

    def step(self, weight_decay: float) -> None:
        if weight_decay != 0.0:
            c = self.dtype.type(weight_decay)
            for p, g, tmp in self._weights:
                np.multiply(p, c, out=tmp)
                np.add(g, tmp, out=g)
        self.t += 1
        b2 = self.beta_2
        # scikit-learn's epsilon sits outside the second-moment bias correction
        eps = self.epsilon / math.sqrt(1.0 - b2 ** self.t)
        params, grads = self._all
        ops.adam_step(params, grads, self.m, self.v, step=self.t, lr=self.learning_rate,
                      beta1=self.beta_1, beta2=b2, eps=eps)

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        for key in ("_weights", "_all", "_scratch"):
            state.pop(key, None)
        return state


class TrainBuffers:
    """What one batch of m rows writes into: gathered inputs/targets/weights, each layer's
    outputs and deltas. Allocated once per (batch size, target layout)."""

    __slots__ = ("acts", "deltas", "w", "x", "y")

    def __init__(self, model, m: int, target: np.ndarray, weighted: bool, gather: bool) -> None:
        dt = model.dtype
        self.x = np.empty((m, model.in_features), dt) if gather else None
        self.y = np.empty((m,) + target.shape[1:], target.dtype) if gather else None
        self.w = np.empty(m, dt) if (gather and weighted) else None
        self.acts = [np.empty((m, layer.out_features), dt) for layer in model.layers]
        self.deltas = [np.empty((m, layer.out_features), dt) for layer in model.layers]
