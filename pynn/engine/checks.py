"""Checks at the engine's door: inputs, trainability, loss and model agreeing.

Run once per call of a public entry point (fit, evaluate, predict, gradcheck), never per batch.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .. import ops
from ..nn.layers import TRAINABLE_ACTIVATIONS
from ..nn.losses import Loss

__all__ = ["as_inputs", "check_loss_fits", "check_trainable", "class_sample_weights"]


#: Rows per chunk when a memory-mapped input is checked (and cast) piece by piece.
_SCAN_ROWS = 8192


def as_inputs(X: object, n_features: int, dtype: np.dtype, name: str = "X",
              allow_empty: bool = True) -> np.ndarray:
    """X as a C-contiguous, aligned (n, n_features) array of `dtype`, finite after the cast.

    A memory-mapped array (`np.memmap`, `np.load(..., mmap_mode="r")`) is never copied whole: it
    is checked chunk by chunk and returned as it is (in its own dtype when that differs; the
    engine then casts each batch as it reads it).
    """
    if isinstance(X, np.memmap) and X.ndim == 2 and X.shape[1] == n_features \
            and X.dtype.kind in "biuf" and X.flags.c_contiguous and X.flags.aligned:
        return _checked_map(X, dtype, name, allow_empty)
    if not (type(X) is np.ndarray and X.dtype is dtype and X.ndim == 2
            and X.shape[1] == n_features and X.flags.c_contiguous and X.flags.aligned):
        X = _convert(X, n_features, dtype, name)
    if X.shape[0] == 0 and not allow_empty:
        raise ValueError(f"{name} must contain at least one sample, got shape {X.shape}")
    if not ops.all_finite(X):
        raise ValueError(f"{name} contains NaN or inf (after conversion to {dtype.name})")
    return X


def _checked_map(X: np.memmap, dtype: np.dtype, name: str, allow_empty: bool) -> np.ndarray:
    if X.shape[0] == 0 and not allow_empty:
        raise ValueError(f"{name} must contain at least one sample, got shape {X.shape}")
    view = X.view(np.ndarray)  # the same mapped pages, without memmap's per-slice overhead
    for start in range(0, view.shape[0], _SCAN_ROWS):
        chunk = view[start:start + _SCAN_ROWS]
        if chunk.dtype != dtype:
            with np.errstate(over="ignore", invalid="ignore"):
                chunk = chunk.astype(dtype)
        if not ops.all_finite(chunk):
            raise ValueError(f"{name} contains NaN or inf (after conversion to {dtype.name}), "
                             f"in rows {start} to {start + len(chunk) - 1}")
    return view


def _convert(X: object, n_features: int, dtype: np.dtype, name: str) -> np.ndarray:
    try:
        arr = np.asarray(X)
    except Exception as exc:
        raise TypeError(f"{name} must be a 2-D array of numbers, got "
                        f"{type(X).__name__}") from exc
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"{name} must hold real numbers, got dtype {arr.dtype}")
    if arr.ndim != 2:
        hint = f" (for one sample use {name}.reshape(1, -1))" if arr.ndim == 1 else ""
        raise ValueError(f"{name} must be 2-D with shape (n_samples, {n_features}), "
                         f"got shape {arr.shape}{hint}")
    if arr.shape[1] != n_features:
        raise ValueError(f"{name} must have {n_features} features (columns) for this "
                         f"model, got shape {arr.shape}")
    with np.errstate(over="ignore", invalid="ignore"):  # overflow is reported just after
        arr = np.ascontiguousarray(arr, dtype=dtype)
    return arr if arr.flags.aligned else arr.copy()  # a copy is always aligned


def check_trainable(layers: Sequence) -> None:
    """Every layer's activation has a usable derivative."""
    for i, layer in enumerate(layers):
        if getattr(layer, "activation", "identity") not in TRAINABLE_ACTIVATIONS:
            raise ValueError(f"layers[{i}] uses activation {layer.activation!r}, which is "
                             f"forward-only (its derivative is zero almost everywhere, so "
                             f"gradient descent cannot train it); use sigmoid, tanh or relu "
                             f"to train, then predict with any activation")


def check_loss_fits(layers: Sequence, loss: Loss) -> None:
    """The loss can read the last layer's outputs."""
    last = getattr(layers[-1], "activation", "identity")
    if last != "identity" and last == loss.output_function:
        raise ValueError(f"the last layer's activation is {last!r}, but {loss.name} applies "
                         f"{last} itself (fused, from the raw outputs): use "
                         f"activation='identity' on the last layer; predict_proba gives the "
                         f"{last} probabilities")
    if loss.name in ("cross_entropy", "kl_divergence") and layers[-1].out_features < 2:
        raise ValueError(f"{loss.name} needs at least 2 outputs (one per class); for a "
                         f"single output use binary_cross_entropy")


def class_sample_weights(class_weight: object, labels: np.ndarray,
                         n_classes: int) -> np.ndarray:
    """Per-sample weights (float64) from Keras/scikit-learn style class weights.

    `class_weight` is ``{class index: weight}`` (classes left out weigh 1) or ``"balanced"``:
    ``n_samples / (n_present_classes * count(class))``, scikit-learn's formula.
    """
    if isinstance(class_weight, str):
        if class_weight != "balanced":
            raise ValueError(f"class_weight must be a dict or 'balanced', got {class_weight!r}")
        counts = np.bincount(labels, minlength=n_classes).astype(np.float64)
        present = np.count_nonzero(counts)
        per_class = np.ones(n_classes)
        np.divide(labels.size, present * counts, out=per_class, where=counts > 0)
        return per_class[labels]
    if not isinstance(class_weight, dict):
        raise TypeError(f"class_weight must be a dict {{class: weight}} or 'balanced', got "
                        f"{type(class_weight).__name__}")
    per_class = np.ones(n_classes)
    for key, value in class_weight.items():
        if isinstance(key, bool) or not isinstance(key, (int, np.integer)) \
                or not 0 <= key < n_classes:
            raise ValueError(f"class_weight keys must be class indices in [0, {n_classes}), "
                             f"got {key!r}")
        if isinstance(value, bool) or not isinstance(value, (int, float, np.integer,
                                                             np.floating)) \
                or not np.isfinite(value) or value < 0:
            raise ValueError(f"class_weight[{key!r}] must be a finite number >= 0, got "
                             f"{value!r}")
        per_class[int(key)] = float(value)
    weights = per_class[labels]
    if labels.size and not (weights > 0).any():
        raise ValueError("class_weight gives every sample a weight of 0")
    return weights
