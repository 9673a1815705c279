"""Gradient check: backpropagation against central differences, in float64.

The numerical gradient of each parameter θ_i is ``(L(θ + h·e_i) − L(θ − h·e_i)) / 2h`` — slow
(two forward passes per parameter), but it is the independent check that the analytic
gradients (the same fused kernels and code path `fit` uses) are right.
"""
from __future__ import annotations

import numpy as np

from ..engine import Trainer, as_inputs, check_loss_fits, check_trainable
from ..nn import losses as _losses
from .sequential import Sequential

__all__ = ["analytic_gradient", "gradcheck", "numerical_gradient"]


def _float64_copy(model: Sequential) -> Sequential:
    config = dict(model.get_config(), dtype="float64", seed=0)
    copy = Sequential.from_config(config)
    copy.params[...] = model.params
    for mine, theirs in zip(copy.layers, model.layers):
        for name, arr in theirs.state_arrays().items():
            getattr(mine, name)[...] = arr
    return copy


def _prepare(model: Sequential, X, y, loss, sample_weight):
    """(float64 trainer, checked X, target, weight): the engine that `fit` uses, on a copy."""
    if not isinstance(model, Sequential):
        raise TypeError(f"model must be a pynn.Sequential, got {type(model).__name__}")
    if loss is not None:
        loss_obj = _losses.get(loss)
    elif model.loss is not None:
        loss_obj = model.loss
    else:
        raise ValueError("gradcheck needs a loss: pass loss=... or compile/fit the model first")
    check_loss_fits(model.layers, loss_obj)
    check_trainable(model.layers)
    model64 = _float64_copy(model)
    X = as_inputs(X, model64.in_features, model64.dtype, "X", allow_empty=False)
    target = loss_obj.prepare_target(y, X.shape[0], model64.out_features, model64.dtype, "y")
    weight = None if sample_weight is None else _losses.prepare_sample_weight(
        sample_weight, X.shape[0], model64.dtype)
    return Trainer(model64, loss_obj), X, target, weight


def analytic_gradient(model: Sequential, X, y, loss=None, *, sample_weight=None) -> np.ndarray:
    """The flat gradient of the loss over (X, y) by backpropagation, in float64 (a copy)."""
    return _analytic(*_prepare(model, X, y, loss, sample_weight))


def _analytic(trainer: Trainer, X, target, weight) -> np.ndarray:
    # training mode (batch statistics, step 0's dropout masks), the model's state untouched
    value = trainer.forward_backward(X, target, weight, update_stats=False)
    if not np.isfinite(value):
        raise FloatingPointError(f"the loss at these parameters is {value}")
    return trainer.grads.copy()


def numerical_gradient(model: Sequential, X, y, loss=None, *, h: float = 1e-5,
                       sample_weight=None, indices: np.ndarray | None = None) -> np.ndarray:
    """Central-difference gradient in float64 (all parameters, or only `indices`)."""
    return _numerical(*_prepare(model, X, y, loss, sample_weight), h, indices)


def _numerical(trainer: Trainer, X, target, weight, h, indices) -> np.ndarray:
    params = trainer.params
    idx = np.arange(params.size) if indices is None else indices
    grad = np.zeros(len(idx))
    for k, i in enumerate(idx):
        saved = params[i]
        params[i] = saved + h
        plus = trainer.loss_value(X, target, weight, training=True)
        params[i] = saved - h
        minus = trainer.loss_value(X, target, weight, training=True)
        params[i] = saved
        grad[k] = (plus - minus) / (2 * h)
    return grad


def gradcheck(model: Sequential, X, y, loss: str | _losses.Loss | None = None, *,
              h: float = 1e-5, sample_weight=None, max_params: int | None = None,
              seed: int = 0, details: bool = False) -> float | dict:
    """Relative error between backpropagation and central differences, in float64.

    ``‖g_backprop − g_numeric‖ / (‖g_backprop‖ + ‖g_numeric‖)`` over the checked parameters:
    below 1e-7 means the gradients agree to rounding; a wrong backward gives 1e-2 or more.
    The model is not changed (a float64 copy is checked).

    Parameters
    ----------
    model : Sequential
    X, y : arrays
        One batch of inputs and targets.
    loss : str or Loss, optional
        Defaults to the model's loss.
    h : float, default 1e-5
        Finite-difference step.
    sample_weight : array, optional
    max_params : int, optional
        Check only this many parameters, drawn at random (seeded by `seed`); default all.
    details : bool, default False
        Also return the largest elementwise error and both gradients.

    Returns
    -------
    float, or dict with ``relative_error``, ``max_abs_error``, ``analytic``, ``numeric``,
    ``indices`` when `details` is True.
    """
    if isinstance(h, (bool, np.bool_)) or not isinstance(h, (int, float, np.integer,
                                                              np.floating)):
        raise TypeError(f"h must be a number, got {type(h).__name__}")
    h = float(h)
    # below ~1e-10 the differences (theta + h) - (theta - h) lose every digit to rounding in
    # float64 and the check would blame backprop for it
    if not 1e-10 <= h < 1:
        raise ValueError(f"h must be in [1e-10, 1), got {h!r} (central differences in float64 "
                         f"need h well above the rounding of the parameters; 1e-5 is usual)")
    trainer, X, target, weight = _prepare(model, X, y, loss, sample_weight)
    indices = np.arange(trainer.params.size)
    if max_params is not None:
        if isinstance(max_params, bool) or not isinstance(max_params, (int, np.integer)) \
                or max_params < 1:
            raise ValueError(f"max_params must be a positive int, got {max_params!r}")
        if max_params < indices.size:
            rng = np.random.default_rng(seed)
            indices = np.sort(rng.choice(indices.size, size=max_params, replace=False))
    analytic = _analytic(trainer, X, target, weight)[indices]
    numeric = _numerical(trainer, X, target, weight, h, indices)
    diff = np.linalg.norm(analytic - numeric)
    scale = np.linalg.norm(analytic) + np.linalg.norm(numeric)
    error = 0.0 if scale == 0 else float(diff / scale)
    if not details:
        return error
    return {"relative_error": error, "max_abs_error": float(np.max(np.abs(analytic - numeric))),
            "analytic": analytic, "numeric": numeric, "indices": indices}
