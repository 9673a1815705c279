"""Penalties on the weights, added to the loss and to its gradient by the training engine."""
from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from .. import ops

__all__ = ["L2", "LayerPenalties"]


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
        """Flat views of the layers' W and dW."""
        self._views = [(layer.W.reshape(-1), layer.dW.reshape(-1)) for layer in layers]

    def _coefficient(self, batch_weight: float) -> float:
        return self.alpha / batch_weight if self.per_sample else self.alpha

    def value(self, batch_weight: float) -> float:
        """The term added to the loss of a batch of this total sample weight."""
        if not self.alpha:
            return 0.0
        # a fixed-order C reduction: NumPy's dot would split over OpenBLAS threads and the
        # reported loss would depend on the thread count
        total = sum(ops.l2_penalty(w) for w, _ in self._views)
        return 0.5 * self._coefficient(batch_weight) * total

    def add_gradient(self, batch_weight: float) -> float:
        """dW += c·W for every layer (c = alpha, or alpha / batch_weight); returns `value`.
        One pass per layer: the sum of squares and the gradient together."""
        if not self.alpha:
            return 0.0
        c = self._coefficient(batch_weight)
        total = sum(ops.l2_penalty(w, dw, coef=c) for w, dw in self._views)
        return 0.5 * c * total

    def __repr__(self) -> str:
        return f"L2(alpha={self.alpha!r}, per_sample={self.per_sample!r})"


class LayerPenalties:
    """The Dense layers' own ``l1·Σ|W| + l2·ΣW²`` (Keras' kernel regularizers), added to every
    batch's loss, with gradient ``l1·sign(W) + 2·l2·W``; sums in fixed-order C reductions."""

    def __init__(self, terms: list, dtype: np.dtype) -> None:
        longest = max(w.size for w, _, _, _ in terms)
        self._zeros = np.zeros(longest, dtype=dtype)
        self._scratch = np.empty(longest, dtype=dtype)
        self._terms = terms

    @classmethod
    def for_layers(cls, layers: Sequence, dtype: np.dtype) -> LayerPenalties | None:
        """The penalties of the layers with l1 or l2 set, or None when none has."""
        terms = [(layer.W.reshape(-1), layer.dW.reshape(-1), layer.l1, layer.l2)
                 for layer in layers if layer.l1 or layer.l2]
        return cls(terms, dtype) if terms else None

    def value(self) -> float:
        return self._pass(gradient=False)

    def add_gradient(self) -> float:
        """dW += l1·sign(W) + 2·l2·W for every penalised layer; returns `value`."""
        return self._pass(gradient=True)

    def _pass(self, gradient: bool) -> float:
        """The penalties' value, with `gradient` their gradients added to dW on the way."""
        total = 0.0
        for w, dw, l1, l2 in self._terms:
            if l1:
                zeros, scratch = self._zeros[:w.size], self._scratch[:w.size]
                total += l1 * ops.mae(w, zeros, out=scratch)[0] * w.size
                if gradient:
                    np.sign(w, out=scratch)
                    scratch *= scratch.dtype.type(l1)
                    dw += scratch
            if l2:
                total += l2 * ops.l2_penalty(w, dw if gradient else None, coef=2 * l2)
        return total
