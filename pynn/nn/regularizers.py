"""Penalties on the weights, added to the loss and to its gradient by the training engine."""
from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from .. import ops

__all__ = ["L2"]


class L2:
    """``½·alpha·Σ‖W‖²`` over the Dense weights (not the biases).

    Parameters
    ----------
    alpha : float
        Strength (>= 0).
    per_sample : bool, default True
        Divide the term by the batch's total sample weight, as scikit-learn's MLP ``alpha``
        does (loss = data loss + ½·alpha·‖W‖² / n_batch, gradient + alpha·W / n_batch).
    """

    def __init__(self, alpha: float, *, per_sample: bool = True) -> None:
        alpha = float(alpha)
        if not math.isfinite(alpha) or alpha < 0:
            raise ValueError(f"alpha must be a finite number >= 0, got {alpha}")
        self.alpha = alpha
        self.per_sample = bool(per_sample)
        self._views: list = []

    def bind(self, layers: Sequence, dtype: np.dtype) -> None:
        """Views of the layers' W and dW, with scratch space (no allocation per step)."""
        longest = max(layer.W.size for layer in layers)
        zeros = np.zeros(longest, dtype=dtype)
        scratch = np.empty(longest, dtype=dtype)
        self._views = [(layer.W.reshape(-1), layer.dW.reshape(-1), zeros[:layer.W.size],
                        scratch[:layer.W.size]) for layer in layers]

    def _coefficient(self, batch_weight: float) -> float:
        return self.alpha / batch_weight if self.per_sample else self.alpha

    def value(self, batch_weight: float) -> float:
        """The term added to the loss of a batch of this total sample weight."""
        if not self.alpha:
            return 0.0
        total = 0.0
        for w, _, zeros, scratch in self._views:
            # a fixed-order C reduction: NumPy's dot would split over OpenBLAS threads and the
            # reported loss would depend on the thread count
            mean_square, _ = ops.mse(w, zeros, out=scratch)
            total += mean_square * w.size
        return 0.5 * self._coefficient(batch_weight) * total

    def add_gradient(self, batch_weight: float) -> float:
        """dW += c·W for every layer (c = alpha, or alpha / batch_weight); returns `value`."""
        if not self.alpha:
            return 0.0
        value = self.value(batch_weight)
        for w, dw, _, scratch in self._views:
            c = w.dtype.type(self._coefficient(batch_weight))
            np.multiply(w, c, out=scratch)
            np.add(dw, scratch, out=dw)
        return value

    def __repr__(self) -> str:
        return f"L2(alpha={self.alpha!r}, per_sample={self.per_sample!r})"
