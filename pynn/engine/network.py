"""The network a training step runs: every layer's forward and backward over the buffers of one
batch size, and the forward of inference.

A run of Dense layers is bound once to its buffers as one C chain (`_core._Network`: one call
for the run's forward, one for its backward); the other layers call their fused kernels
(csrc/norm.c, csrc/activation.c). A model of Dense layers only is therefore one chain, as fast
as before the other layers existed. Layer i writes its output into ``acts[i]`` and receives the
gradient at that output in ``deltas[i]``; its backward writes the gradient at its input into
``deltas[i - 1]`` (not computed for the first layer).
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .. import _core, ops
from ..nn.layers import Activation, BatchNorm, Dense, Dropout, LayerNorm

__all__ = ["Network", "check_batch_rows", "inference_steps", "layer_state_arrays"]

_KEY_MASK = (1 << 64) - 1


def layer_state_arrays(layers: Sequence) -> list:
    """Every non-trained array of the layers (BatchNorm's running statistics), in order."""
    return [arr for layer in layers for arr in layer.state_arrays().values()]


def check_batch_rows(layers: Sequence, sizes: Sequence[int]) -> None:
    """BatchNorm cannot train on a batch of one row (its variance is 0): refuse up front."""
    for i, layer in enumerate(layers):
        if isinstance(layer, BatchNorm) and 1 in sizes:
            raise ValueError(f"layers[{i}] BatchNorm needs more than one row per training "
                             f"batch (the batch variance of one row is 0), but this fit has a "
                             f"batch of 1 row: use batch_size >= 2 and a sample count that "
                             f"does not leave 1 row in the last batch")


class _DenseRun:
    """Consecutive Dense layers as one C chain."""

    def __init__(self, run: Sequence, acts: list, deltas: list) -> None:
        self.chain = _core._Network([layer.W for layer in run], [layer.b for layer in run],
                                    [layer.dW for layer in run], [layer.db for layer in run],
                                    [layer.activation for layer in run],
                                    [layer.alpha for layer in run], acts, deltas)

    def forward(self, x: np.ndarray, counter: int, update_stats: bool) -> None:
        self.chain.forward(x)

    def backward(self, x: np.ndarray, dx: np.ndarray | None) -> None:
        self.chain.backward(x, dx)


class _ActivationStep:
    def __init__(self, layer: Activation, act: np.ndarray, delta: np.ndarray) -> None:
        self.layer, self.act, self.delta = layer, act, delta

    def forward(self, x, counter, update_stats):
        ops.activation(self.layer.activation, x, alpha=self.layer.alpha, out=self.act)

    def backward(self, x, dx):
        if dx is not None:
            ops.activation_backward(self.layer.activation, self.act, self.delta,
                                    alpha=self.layer.alpha, out=dx)


class _DropoutStep:
    def __init__(self, layer: Dropout, act: np.ndarray, delta: np.ndarray, key: int) -> None:
        self.rate, self.act, self.delta, self.key = layer.rate, act, delta, key
        self.counter = 0

    def forward(self, x, counter, update_stats):
        self.counter = counter  # the backward regenerates the same mask
        _core.dropout(x, self.rate, self.key, counter, out=self.act)

    def backward(self, x, dx):
        if dx is not None:
            _core.dropout(self.delta, self.rate, self.key, self.counter, out=dx)


class _BatchNormStep:
    def __init__(self, layer: BatchNorm, act: np.ndarray, delta: np.ndarray) -> None:
        self.layer, self.act, self.delta = layer, act, delta
        width = act.shape[1]
        self.xhat = np.empty_like(act)
        self.mean, self.var, self.invstd = (np.empty(width) for _ in range(3))

    def forward(self, x, counter, update_stats):
        layer = self.layer
        rows = x.shape[0]
        if rows < 2:
            raise ValueError("BatchNorm needs more than one row per training batch (the batch "
                             "variance of one row is 0)")
        _core.batchnorm_forward(x, layer.gamma, layer.beta, layer.eps, out=self.act,
                                xhat=self.xhat, mean=self.mean, var=self.var,
                                invstd=self.invstd)
        if update_stats:  # PyTorch's momentum, the unbiased batch variance
            m = layer.momentum
            layer.running_mean[...] = (1 - m) * layer.running_mean + m * self.mean
            layer.running_var[...] = (1 - m) * layer.running_var + \
                m * self.var * (rows / (rows - 1))
            layer.batches_tracked += 1

    def backward(self, x, dx):
        layer = self.layer
        _core.batchnorm_backward(self.delta, self.xhat, layer.gamma, self.invstd,
                                 layer.dgamma, layer.dbeta, dx)


class _LayerNormStep:
    def __init__(self, layer: LayerNorm, act: np.ndarray, delta: np.ndarray) -> None:
        self.layer, self.act, self.delta = layer, act, delta
        self.xhat = np.empty_like(act)
        self.invstd = np.empty(act.shape[0])

    def forward(self, x, counter, update_stats):
        layer = self.layer
        _core.layernorm_forward(x, layer.gamma, layer.beta, layer.eps, out=self.act,
                                xhat=self.xhat, invstd=self.invstd)

    def backward(self, x, dx):
        layer = self.layer
        _core.layernorm_backward(self.delta, self.xhat, layer.gamma, self.invstd,
                                 layer.dgamma, layer.dbeta, dx)


class Network:
    """A model's layers bound to the activation and delta buffers of one batch size.

    Parameters
    ----------
    layers : sequence of bound layers
    acts, deltas : lists of (rows, width) arrays, one per layer
    dropout_key : int
        Seeds the dropout masks (with each layer's position and the step counter).
    """

    def __init__(self, layers: Sequence, acts: list, deltas: list, dropout_key: int = 0) -> None:
        self.steps: list = []
        i, n = 0, len(layers)
        while i < n:
            layer = layers[i]
            if isinstance(layer, Dense):
                j = i
                while j < n and isinstance(layers[j], Dense):
                    j += 1
                step = _DenseRun(layers[i:j], acts[i:j], deltas[i:j])
            elif isinstance(layer, Activation):
                j, step = i + 1, _ActivationStep(layer, acts[i], deltas[i])
            elif isinstance(layer, Dropout):
                key = (int(dropout_key) * 0x9E3779B97F4A7C15 + i + 1) & _KEY_MASK
                j, step = i + 1, _DropoutStep(layer, acts[i], deltas[i], key)
            elif isinstance(layer, BatchNorm):
                j, step = i + 1, _BatchNormStep(layer, acts[i], deltas[i])
            elif isinstance(layer, LayerNorm):
                j, step = i + 1, _LayerNormStep(layer, acts[i], deltas[i])
            else:
                raise TypeError(f"layers[{i}]: no training step for {type(layer).__name__}")
            # (the step, the index of its input's buffer or -1 for x, where its dx goes)
            self.steps.append((step, i - 1, None if i == 0 else deltas[i - 1]))
            i = j
        self.acts = acts

    def forward(self, x: np.ndarray, counter: int = 0, update_stats: bool = True) -> None:
        """Training-mode forward of checked x: every layer's output into its acts buffer.
        `counter` numbers the step (dropout masks); `update_stats` moves BatchNorm's running
        statistics (not for gradcheck's probes)."""
        acts = self.acts
        for step, src, _ in self.steps:
            step.forward(x if src < 0 else acts[src], counter, update_stats)

    def backward(self, x: np.ndarray) -> None:
        """From deltas[-1], every layer's parameter gradients (overwritten) and the deltas of
        the layers before."""
        acts = self.acts
        for step, src, dx in reversed(self.steps):
            step.backward(x if src < 0 else acts[src], dx)

    @property
    def one_call(self) -> bool:
        """Whether the whole network is one C chain, whose step `train_step` runs in one call."""
        return len(self.steps) == 1 and isinstance(self.steps[0][0], _DenseRun)

    def train_step(self, X: np.ndarray, target: np.ndarray, idx: np.ndarray | None, start: int,
                   x_buf: np.ndarray | None, target_buf: np.ndarray | None,
                   kernel: tuple[int, float]) -> float:
        """A network that is `one_call`: gather rows `idx` of (X, target) into the buffers (or
        read rows start: in place when idx is None), forward, the loss kernel (kind, parameter)
        and, when the loss is finite, backward, in one C call; returns the loss."""
        return self.steps[0][0].chain.train_step(X, target, idx, start, x_buf, target_buf,
                                                 *kernel)


# ---- inference ----------------------------------------------------------------------------------

def _dense_step(layer: Dense):
    W, b, act, alpha = layer.W, layer.b, layer.activation, layer.alpha
    linear = ops.linear

    def run(a, out):
        return linear(a, W, b, activation=act, alpha=alpha, out=out)
    return run


def _activation_step(layer: Activation):
    def run(a, out):
        return ops.activation(layer.activation, a, alpha=layer.alpha, out=out)
    return run


def _identity_step(layer: Dropout):
    def run(a, out):
        return a  # no pass over the data: the next layer reads `a` (Inference copies a last one)
    return run


def _batchnorm_step(layer: BatchNorm):
    def run(a, out):  # (x - mean) / sqrt(var + eps) * gamma + beta as one scale and shift
        scale64 = layer.gamma / np.sqrt(layer.running_var.astype(np.float64) + layer.eps)
        shift64 = layer.beta - layer.running_mean * scale64
        return _core.scale_shift(a, scale64.astype(a.dtype), shift64.astype(a.dtype), out=out)
    return run


def _layernorm_step(layer: LayerNorm):
    def run(a, out):
        return _core.layernorm_forward(a, layer.gamma, layer.beta, layer.eps, out=out)[0]
    return run


_INFERENCE = {Dense: _dense_step, Activation: _activation_step, Dropout: _identity_step,
              BatchNorm: _batchnorm_step, LayerNorm: _layernorm_step}


def inference_steps(layers: Sequence) -> list:
    """One callable ``run(a, out)`` per layer: its inference-mode forward, written into `out` and
    returned (Dropout returns `a` itself)."""
    return [_INFERENCE[type(layer)](layer) for layer in layers]
