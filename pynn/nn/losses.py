"""Losses, each fused with its output activation in one kernel pass over the outputs.

The last Dense layer outputs raw scores (logits); the loss applies its own output function:

========================  =================  =====================================  ==========
name                      output function    targets ``y``                          predict
========================  =================  =====================================  ==========
``cross_entropy``         softmax            int labels (n,) or one-hot/probs (n,c)  labels
``binary_cross_entropy``  sigmoid            {0,1} (or [0,1]) of shape (n,) or (n,k) 0/1
``mse``                   identity           real values (n,) or (n,k)               values
``mae``                   identity           real values (n,) or (n,k)               values
``huber``                 identity           real values (n,) or (n,k)               values
``poisson``               exp (log link)     counts or rates >= 0, (n,) or (n,k)     exp(out)
``hinge``                 identity           {-1, 1} (0 read as -1), (n,) or (n,k)   -1/1
``kl_divergence``         log-softmax        probabilities (n,c)                     labels
========================  =================  =====================================  ==========

Losses are usable by name (``loss="cross_entropy"``) or as instances (``pynn.CrossEntropy()``);
an instance is also a plain function: ``loss(outputs, y) -> float``.
"""
from __future__ import annotations

import numbers

import numpy as np

from .. import _core, ops

__all__ = [
    "LOSSES",
    "MAE",
    "MSE",
    "BinaryCrossEntropy",
    "CrossEntropy",
    "Hinge",
    "Huber",
    "KLDivergence",
    "Loss",
    "Poisson",
    "get",
]


def _as_array(y: object, name: str) -> np.ndarray:
    try:
        arr = np.asarray(y)
    except Exception as exc:  # ragged lists and the like
        raise TypeError(f"{name} must be array-like, got {type(y).__name__}") from exc
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"{name} must be a real numeric array, got dtype {arr.dtype}")
    return arr


def _check_finite(arr: np.ndarray, name: str) -> None:
    if arr.dtype.kind == "f" and not np.isfinite(arr).all():
        raise ValueError(f"{name} contains NaN or inf")


def _cast_finite(arr: np.ndarray, dtype: np.dtype, name: str) -> np.ndarray:
    """C-contiguous `arr` in `dtype`, refused if a finite value overflows there."""
    with np.errstate(over="ignore"):
        out = np.ascontiguousarray(arr, dtype=dtype)
    if not np.isfinite(out).all():
        raise ValueError(f"{name} overflows {np.dtype(dtype).name} (largest magnitude "
                         f"{np.finfo(dtype).max:.3g})")
    return out


def _as_columns(arr: np.ndarray, n: int, n_outputs: int, name: str) -> np.ndarray:
    """(n,) or (n, k) targets as (n, n_outputs); (n,) only for a single output."""
    if arr.ndim == 1:
        arr = arr.reshape(-1, 1)
    if arr.ndim != 2 or arr.shape[0] != n or arr.shape[1] != n_outputs:
        want = f"({n},) or ({n}, 1)" if n_outputs == 1 else f"({n}, {n_outputs})"
        raise ValueError(f"{name} must have shape {want} to match the model's {n_outputs} "
                         f"output(s) and {n} samples, got {arr.shape}")
    return arr


class Loss:
    """Base class. Subclasses name the fused kernel and how to read targets and outputs."""

    name = "loss"
    #: Output function the loss applies to the raw outputs (for predict_proba and checks).
    output_function = "identity"
    #: Whether accuracy is meaningful (classification).
    has_accuracy = True
    #: Whether predict_proba is meaningful.
    has_proba = True

    # -- the kernel ------------------------------------------------------------------------
    def _kernel(self, outputs, target, sample_weight, out):
        raise NotImplementedError

    def value_and_grad(self, outputs: np.ndarray, target: np.ndarray, *,
                       sample_weight: np.ndarray | None = None,
                       out: np.ndarray | None = None) -> tuple[float, np.ndarray]:
        """(loss, d loss / d outputs) for targets already in kernel form (`prepare_target`)."""
        return self._kernel(outputs, target, sample_weight, out)

    #: The fused C kernel `_kernel` runs (a name of pynn._core.LOSS_KINDS), None if none.
    kernel_kind: str | None = None
    #: That kernel's parameter (Huber's delta).
    kernel_param = 0.0

    def step_kernel(self, target: np.ndarray) -> tuple[int, float] | None:
        """(kind, parameter) of the C kernel that the engine's one-call training step may run
        instead of `value_and_grad`, for targets in kernel form; None when the loss is computed
        some other way (a subclass that overrides the kernel keeps its own)."""
        kind = self.kernel_kind
        if kind is None:
            return None
        cls = type(self)
        owner = next(c for c in cls.__mro__ if "kernel_kind" in c.__dict__)
        if cls.value_and_grad is not Loss.value_and_grad or \
                next(c for c in cls.__mro__ if "_kernel" in c.__dict__) is not owner:
            return None
        if kind == "xent_labels" and target.ndim == 2:
            kind = "xent_probs"
        return _core.LOSS_KINDS[kind], float(self.kernel_param)

    def __call__(self, outputs: np.ndarray, y: object, sample_weight: object = None) -> float:
        """The loss of raw outputs (logits) against targets y, as a float."""
        outputs = np.asarray(outputs)
        if outputs.dtype not in (np.float32, np.float64):
            outputs = outputs.astype(np.float64)
        if outputs.ndim == 1:
            outputs = outputs.reshape(-1, 1)
        target = self.prepare_target(y, outputs.shape[0], outputs.shape[1], outputs.dtype)
        weight = None if sample_weight is None else prepare_sample_weight(
            sample_weight, outputs.shape[0], outputs.dtype)
        return float(self._kernel(np.ascontiguousarray(outputs), target, weight, None)[0])

    # -- targets -----------------------------------------------------------------------------
    def prepare_target(self, y: object, n: int, n_outputs: int, dtype: np.dtype,
                       name: str = "y") -> np.ndarray:
        """Validate targets and return them C-contiguous in the form the kernel takes."""
        raise NotImplementedError

    # -- reading outputs ---------------------------------------------------------------------
    def proba(self, outputs: np.ndarray) -> np.ndarray:
        raise ValueError(f"predict_proba needs a probabilistic loss (cross_entropy, "
                         f"binary_cross_entropy, kl_divergence); this model uses {self.name}")

    def predict(self, outputs: np.ndarray) -> np.ndarray:
        """Labels (classification) or values (regression) from raw outputs."""
        raise NotImplementedError

    def output_values(self, outputs: np.ndarray) -> np.ndarray:
        """Raw outputs in the targets' units (poisson's rate exp(output)), shape kept: what the
        regression metrics compare with the targets."""
        return outputs

    def accuracy_buffers(self, n: int, n_outputs: int) -> tuple:
        """Scratch arrays for `batch_accuracy` (so a training step allocates nothing)."""
        return ()

    def class_labels(self, target: np.ndarray) -> np.ndarray | None:
        """One int64 class index per sample of kernel-form targets (for class weights), or None
        when the targets are not one class per sample (regression, multi-label)."""
        return None

    def batch_accuracy(self, outputs: np.ndarray, target: np.ndarray, buffers: tuple) -> float:
        """Fraction of correct predictions for kernel-form targets (no allocation)."""
        raise NotImplementedError

    # -- identity ----------------------------------------------------------------------------
    def get_config(self) -> dict:
        return {"name": self.name}

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other) and self.get_config() == other.get_config()

    def __hash__(self) -> int:
        return hash(self.name)


def prepare_sample_weight(sample_weight: object, n: int, dtype: np.dtype,
                          name: str = "sample_weight") -> np.ndarray:
    """Per-sample weights as a C-contiguous (n,) array of `dtype`: finite, >= 0, not all 0."""
    w = _as_array(sample_weight, name)
    if w.shape != (n,):
        raise ValueError(f"{name} must have shape ({n},), got {w.shape}")
    _check_finite(w, name)
    if (w < 0).any():
        raise ValueError(f"{name} must be >= 0")
    if n and not (w > 0).any():
        raise ValueError(f"{name} must not be all zero")
    w = _cast_finite(w, dtype, name)
    if n and not (w > 0).any():
        raise ValueError(f"{name} must not be all zero (after conversion to "
                         f"{np.dtype(dtype).name}: its values underflow)")
    return w


class _LabelsArgmax(Loss):
    """Shared by the softmax losses: predictions are the argmax of the logits."""

    output_function = "softmax"

    def proba(self, outputs: np.ndarray) -> np.ndarray:
        return ops.softmax(outputs)

    def predict(self, outputs: np.ndarray) -> np.ndarray:
        return outputs.argmax(axis=1)

    def batch_accuracy(self, outputs: np.ndarray, target: np.ndarray, buffers: tuple) -> float:
        return ops.argmax_hits(outputs, target) / len(outputs)

    def class_labels(self, target: np.ndarray) -> np.ndarray:
        return target if target.ndim == 1 else target.argmax(axis=1)


class CrossEntropy(_LabelsArgmax):
    """Softmax cross-entropy from logits (softmax fused): the multi-class classification loss.

    Targets: integer labels in [0, n_classes) of shape (n,), or one-hot / probability rows of
    shape (n, n_classes). The gradient at the logits is (softmax - onehot) / n.
    """

    name = "cross_entropy"

    kernel_kind = "xent_labels"

    def _kernel(self, outputs, target, sample_weight, out):
        return ops.softmax_cross_entropy(outputs, target, sample_weight=sample_weight, out=out)

    def prepare_target(self, y, n, n_outputs, dtype, name="y"):
        arr = _as_array(y, name)
        if arr.ndim == 2 and arr.shape[1] == n_outputs and not (n_outputs == 1 and
                                                                 arr.dtype.kind in "biu"):
            if arr.shape[0] != n:
                raise ValueError(f"{name} must have {n} rows (one per sample), got {arr.shape}")
            _check_finite(arr, name)
            if (arr < 0).any():
                raise ValueError(f"{name}: one-hot/probability targets must be >= 0")
            return np.ascontiguousarray(arr, dtype=dtype)
        if arr.ndim != 1:
            raise ValueError(f"{name} must be integer labels of shape ({n},) or one-hot rows of "
                             f"shape ({n}, {n_outputs}), got shape {arr.shape}")
        if arr.shape[0] != n:
            raise ValueError(f"{name} must have {n} labels (one per sample), got {arr.shape[0]}")
        if arr.dtype.kind == "f":
            _check_finite(arr, name)
            if (arr != np.round(arr)).any():
                raise ValueError(f"{name} must hold integer class labels, got non-integral "
                                 f"values")
        labels = np.ascontiguousarray(arr, dtype=np.int64)
        if n and (labels.min() < 0 or labels.max() >= n_outputs):
            raise ValueError(f"{name}: labels must be in [0, {n_outputs}) for a model with "
                             f"{n_outputs} outputs, got values in "
                             f"[{labels.min()}, {labels.max()}]")
        return labels


class KLDivergence(_LabelsArgmax):
    """KL(target ‖ softmax(logits)), averaged over the batch (PyTorch's "batchmean").

    Targets: probability rows of shape (n, n_classes) (integer labels are one-hot encoded).
    """

    name = "kl_divergence"

    kernel_kind = "kl"

    def _kernel(self, outputs, target, sample_weight, out):
        return ops.kl_divergence(outputs, target, sample_weight=sample_weight, out=out)

    def prepare_target(self, y, n, n_outputs, dtype, name="y"):
        labels_or_rows = CrossEntropy().prepare_target(y, n, n_outputs, dtype, name)
        if labels_or_rows.ndim == 1:
            rows = np.zeros((n, n_outputs), dtype=dtype)
            rows[np.arange(n), labels_or_rows] = 1
            return rows
        return labels_or_rows


class BinaryCrossEntropy(Loss):
    """Sigmoid binary cross-entropy from logits (sigmoid fused), averaged over all outputs.

    Targets in [0, 1] (usually {0, 1}), shape (n,) for one output or (n, k) for k independent
    binary outputs (multi-label).
    """

    name = "binary_cross_entropy"
    output_function = "sigmoid"

    kernel_kind = "bce"

    def _kernel(self, outputs, target, sample_weight, out):
        return ops.binary_cross_entropy(outputs, target, sample_weight=sample_weight, out=out)

    def prepare_target(self, y, n, n_outputs, dtype, name="y"):
        arr = _as_columns(_as_array(y, name), n, n_outputs, name)
        _check_finite(arr, name)
        if ((arr < 0) | (arr > 1)).any():
            raise ValueError(f"{name}: binary_cross_entropy targets must be in [0, 1]")
        return np.ascontiguousarray(arr, dtype=dtype)

    def proba(self, outputs: np.ndarray) -> np.ndarray:
        return ops.activation("sigmoid", outputs)

    def predict(self, outputs: np.ndarray) -> np.ndarray:
        labels = (outputs > 0).astype(np.int64)
        return labels[:, 0] if labels.shape[1] == 1 else labels

    def accuracy_buffers(self, n: int, n_outputs: int) -> tuple:
        return (np.empty((n, n_outputs), np.bool_), np.empty((n, n_outputs), np.bool_))

    #: Targets above this are the positive class (0/1 targets here, -1/1 for hinge).
    _positive_above = 0.5

    def class_labels(self, target: np.ndarray) -> np.ndarray | None:
        """Class 1 (positive) or 0 per sample, for a single output; None for several."""
        if target.shape[1] != 1:
            return None
        return (target[:, 0] > self._positive_above).astype(np.int64)

    def batch_accuracy(self, outputs, target, buffers):
        pred, true = buffers
        np.greater(outputs, 0, out=pred)
        np.greater(target, self._positive_above, out=true)
        np.equal(pred, true, out=pred)
        return np.count_nonzero(pred) / pred.size


class Hinge(BinaryCrossEntropy):
    """Keras' hinge loss mean(max(0, 1 - t·s)) for targets t in {-1, 1} (0 is read as -1)."""

    name = "hinge"
    output_function = "identity"
    has_proba = False
    _positive_above = 0.0

    kernel_kind = "hinge"

    def _kernel(self, outputs, target, sample_weight, out):
        return ops.hinge(outputs, target, sample_weight=sample_weight, out=out)

    def prepare_target(self, y, n, n_outputs, dtype, name="y"):
        arr = _as_columns(_as_array(y, name), n, n_outputs, name)
        _check_finite(arr, name)
        if not np.isin(arr, (-1, 0, 1)).all():
            raise ValueError(f"{name}: hinge targets must be -1 or 1 (0 is read as -1)")
        return np.ascontiguousarray(arr, dtype=dtype)

    def proba(self, outputs):
        return Loss.proba(self, outputs)

    def predict(self, outputs):
        labels = np.where(outputs > 0, 1, -1).astype(np.int64)
        return labels[:, 0] if labels.shape[1] == 1 else labels


class _Regression(Loss):
    """Shared by the regression losses: real targets (n,) or (n, k); predictions are the
    output values."""

    has_accuracy = False
    has_proba = False

    def prepare_target(self, y, n, n_outputs, dtype, name="y"):
        arr = _as_columns(_as_array(y, name), n, n_outputs, name)
        _check_finite(arr, name)
        return _cast_finite(arr, dtype, name)

    def predict(self, outputs: np.ndarray) -> np.ndarray:
        values = self.output_values(outputs)
        return values[:, 0].copy() if values.shape[1] == 1 else values

    def batch_accuracy(self, outputs, target, buffers):
        return float("nan")


class MSE(_Regression):
    """Mean squared error over all outputs (identity output): the regression loss.

    Targets: real values of shape (n,) for one output or (n, k).
    """

    name = "mse"

    kernel_kind = "mse"

    def _kernel(self, outputs, target, sample_weight, out):
        return ops.mse(outputs, target, sample_weight=sample_weight, out=out)


class MAE(_Regression):
    """Mean absolute error (L1) over all outputs: a regression loss robust to outliers, which
    fits the conditional median."""

    name = "mae"

    kernel_kind = "mae"

    def _kernel(self, outputs, target, sample_weight, out):
        return ops.mae(outputs, target, sample_weight=sample_weight, out=out)


class Huber(_Regression):
    """Huber loss over all outputs: squared error within ``delta`` of the target, absolute error
    (slope ``delta``) beyond it (PyTorch's HuberLoss, Keras' Huber).

    Parameters
    ----------
    delta : float, default 1.0
        Where the loss turns from quadratic to linear (finite, > 0), in the targets' units.
    """

    name = "huber"

    def __init__(self, delta: float = 1.0) -> None:
        if isinstance(delta, (bool, str, bytes)) or not isinstance(delta, numbers.Real):
            raise TypeError(f"Huber: delta must be a real number, got {type(delta).__name__}")
        if not (0 < float(delta) < float("inf")):
            raise ValueError(f"Huber: delta must be finite and > 0, got {delta!r}")
        self.delta = float(delta)

    kernel_kind = "huber"

    @property
    def kernel_param(self) -> float:
        return self.delta

    def _kernel(self, outputs, target, sample_weight, out):
        return ops.huber(outputs, target, delta=self.delta, sample_weight=sample_weight, out=out)

    def get_config(self) -> dict:
        return {"name": self.name, "delta": self.delta}

    def __repr__(self) -> str:
        return f"Huber(delta={self.delta!r})"


class Poisson(_Regression):
    """Poisson negative log-likelihood with a log link: the model's output is the log of the
    predicted rate, ``predict`` returns the rate ``exp(output)``. For counts and other
    non-negative targets (scikit-learn's ``MLPRegressor(loss="poisson")``, PyTorch's
    ``PoissonNLLLoss(log_input=True)``, Keras' ``poisson`` on the exp output).

    Targets: values >= 0 of shape (n,) or (n, k).
    """

    name = "poisson"
    output_function = "exp"

    kernel_kind = "poisson"

    def _kernel(self, outputs, target, sample_weight, out):
        return ops.poisson(outputs, target, sample_weight=sample_weight, out=out)

    def prepare_target(self, y, n, n_outputs, dtype, name="y"):
        target = super().prepare_target(y, n, n_outputs, dtype, name)
        if (target < 0).any():
            raise ValueError(f"{name}: poisson targets must be counts or rates >= 0, got a "
                             f"minimum of {target.min()}")
        return target

    def output_values(self, outputs: np.ndarray) -> np.ndarray:
        with np.errstate(over="ignore"):  # a rate beyond the dtype's range is inf
            return np.exp(outputs)


LOSSES = {"cross_entropy": CrossEntropy, "binary_cross_entropy": BinaryCrossEntropy,
          "mse": MSE, "mae": MAE, "huber": Huber, "poisson": Poisson, "hinge": Hinge,
          "kl_divergence": KLDivergence}
_ALIASES = {"categorical_crossentropy": "cross_entropy",
            "sparse_categorical_crossentropy": "cross_entropy",
            "softmax_cross_entropy": "cross_entropy", "binary_crossentropy":
            "binary_cross_entropy", "bce": "binary_cross_entropy",
            "mean_squared_error": "mse", "mean_absolute_error": "mae", "l1": "mae",
            "huber_loss": "huber", "poisson_nll": "poisson", "kl_div": "kl_divergence",
            "kld": "kl_divergence"}


def get(loss: str | dict | Loss) -> Loss:
    """A Loss instance from a name (see `LOSSES`, plus Keras-style aliases), a config dict as
    `Loss.get_config` writes it (``{"name": "huber", "delta": 2.0}``), or an instance."""
    if isinstance(loss, Loss):
        return loss
    if isinstance(loss, dict):
        options = dict(loss)
        name = options.pop("name", None)
        if not isinstance(name, str):
            raise TypeError(f"a loss config needs a 'name' string, got {loss!r}")
        cls = get(name).__class__
        try:
            return cls(**options)
        except TypeError as exc:
            raise ValueError(f"loss config {loss!r}: {exc}") from None
    if isinstance(loss, str):
        key = _ALIASES.get(loss, loss)
        if key in LOSSES:
            return LOSSES[key]()
        raise ValueError(f"loss must be one of {sorted(LOSSES)} or a pynn.Loss, got {loss!r}")
    raise TypeError(f"loss must be a name or a pynn.Loss instance, got {type(loss).__name__}")
