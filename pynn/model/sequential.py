"""Sequential: a stack of Dense layers over one flat parameter buffer, and its training loop.

Memory layout: every W and b is a view into ``model.params`` (one contiguous, 64-byte aligned
buffer), every dW and db a view into ``model.grads``; the optimizer keeps its state as buffers
of the same size, so an update is one kernel call over all parameters.

A training step (one mini-batch) is: gather the batch into preallocated buffers, one fused
``ops.linear`` (x·W + b, activation) per layer into preallocated outputs, the loss fused with its
output function (softmax/sigmoid) writing d loss/d logits in place, one ``ops.linear_backward``
per layer (activation derivative from the stored output, dW, db, dx) into the gradient views,
and one optimizer kernel. Buffers are allocated once per batch size, so after the first batch a
step allocates no arrays. The batch loop is the only Python loop.
"""
from __future__ import annotations

import copy
import functools
import math
import numbers
import sys
import threading
from collections.abc import Iterable, Sequence

import numpy as np

from .. import _core, ops
from ..nn import losses as _losses
from ..nn import optim as _optim
from .callbacks import Callback, History, ProgressBar, _overrides
from ..nn.layers import TRAINABLE_ACTIVATIONS, Dense

__all__ = ["Sequential", "TrainingDivergedError"]

# Rows per inference chunk: keeps the hidden-activation buffers of a big predict call small
# (they are cached per chunk size) at no cost to GEMM efficiency.
_CHUNK_ROWS = 4096
# Inference buffers are cached for this many distinct batch sizes (least recently used out).
_MAX_CACHED_SIZES = 4
_ALIGN = 64


class TrainingDivergedError(FloatingPointError):
    """Raised by `fit` when the loss becomes NaN or infinite.

    No update is applied from the failing batch, and the weights and optimizer state are left
    at the last step that kept them finite, so a new `fit` (e.g. after lowering
    ``model.optimizer.lr``, or with a new optimizer) continues from sound numbers.

    Attributes
    ----------
    epoch, batch : int
        Where it happened, 1-based, as in the message.
    history : History
        The completed epochs.
    """

    def __init__(self, message: str, epoch: int, batch: int, history: History) -> None:
        super().__init__(message)
        self.epoch, self.batch, self.history = epoch, batch, history


def _aligned_zeros(n: int, dtype: np.dtype) -> np.ndarray:
    """A zeroed 1-D array of n elements whose data starts on a 64-byte boundary."""
    itemsize = np.dtype(dtype).itemsize
    raw = np.zeros(n * itemsize + _ALIGN, dtype=np.uint8)
    start = (-raw.ctypes.data) % _ALIGN
    return raw[start:start + n * itemsize].view(dtype)


def _check_dtype(dtype: object) -> np.dtype:
    try:
        dt = np.dtype(dtype)
    except TypeError:
        raise TypeError(f"dtype must be 'float32' or 'float64', got {dtype!r}") from None
    if dt not in (np.float32, np.float64):
        raise ValueError(f"dtype must be 'float32' or 'float64', got {dt}")
    return dt


def _check_int(value: object, name: str, low: int, allow_none: bool = False) -> int | None:
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int{' or None' if allow_none else ''}, got "
                        f"{type(value).__name__}")
    if value < low:
        raise ValueError(f"{name} must be >= {low}, got {value}")
    return int(value)


def _check_seed(seed: object, name: str = "seed") -> int | None:
    if seed is None:
        return None
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise TypeError(f"{name} must be a non-negative int or None, got {seed!r}")
    return int(seed)


def _one_fit_at_a_time(fit):
    """Refuse a second concurrent fit of the same model (from another thread, or re-entered
    from a callback): both would update the same parameter, gradient and optimizer buffers."""
    @functools.wraps(fit)
    def guarded(self, *args, **kwargs):
        lock = self.__dict__.setdefault("_fit_lock", threading.Lock())  # atomic under the GIL
        if not lock.acquire(blocking=False):
            raise RuntimeError("fit is already running on this model (in another thread, or "
                               "called from a callback); train one model from one thread at a "
                               "time, or give each thread its own copy.deepcopy(model)")
        try:
            return fit(self, *args, **kwargs)
        finally:
            lock.release()
    return guarded


class _TrainBuffers:
    """Everything a training step at batch size m writes into, allocated once."""

    __slots__ = ("acc", "acts", "deltas", "w", "x", "y")

    def __init__(self, model: Sequential, m: int, target: np.ndarray, gather: bool,
                 weighted: bool, loss: _losses.Loss) -> None:
        dt = model.dtype
        self.x = np.empty((m, model.in_features), dt) if gather else None
        self.y = np.empty((m,) + target.shape[1:], target.dtype) if gather else None
        self.w = np.empty(m, dt) if gather and weighted else None
        self.acts = [np.empty((m, layer.out_features), dt) for layer in model.layers]
        self.deltas = [np.empty((m, layer.out_features), dt) for layer in model.layers]
        self.acc = loss.accuracy_buffers(m, model.out_features) if loss.has_accuracy else ()


class Sequential:
    """A feed-forward network: Dense layers applied in order.

    Parameters
    ----------
    layers : sequence of Dense
        Each layer's in_features must equal the previous layer's out_features.
    seed : int, optional
        Seeds the weight initialisation (and, unless `fit` gets its own seed, the shuffling).
        Same seed → the same weights whatever the dtype's rounding.
    dtype : {"float32", "float64"}, default "float32"
        Precision of parameters and computation.

    Attributes
    ----------
    layers : list of Dense
    params, grads : ndarray
        The flat parameter and gradient buffers (every layer's W, b, dW, db are views).
    loss : Loss or None
        The loss of the last `fit`/`compile` (decides what `predict` returns).
    optimizer : Optimizer or None
        Its state is kept between `fit` calls: fitting again continues training.
    history : History or None
        What the last `fit` returned.

    Examples
    --------
    >>> model = pynn.Sequential([pynn.Dense(784, 256, "relu"), pynn.Dense(256, 10)], seed=0)
    >>> model.fit(X, y, loss="cross_entropy", optimizer=pynn.SGD(0.05, momentum=0.9),
    ...           epochs=10, batch_size=128)
    >>> model.predict(X_test)   # class labels
    """

    def __init__(self, layers: Sequence[Dense], *, seed: int | None = None,
                 dtype: str | np.dtype | type = "float32") -> None:
        layers = self._check_layers(layers)
        self.dtype = _check_dtype(dtype)
        self.seed = _check_seed(seed)
        self.layers = layers
        self._allocate()
        self._rng = np.random.default_rng(self.seed)
        for layer in self.layers:
            layer.W[...] = layer.init(layer.in_features, layer.out_features, self._rng)
            layer.b[...] = 0
        self.loss: _losses.Loss | None = None
        self.optimizer: _optim.Optimizer | None = None
        self.history: History | None = None
        self.stop_training = False
        self.epochs_trained = 0

    # ---- construction --------------------------------------------------------------------------
    @staticmethod
    def _check_layers(layers: object) -> list:
        if isinstance(layers, Dense):
            layers = [layers]
        try:
            layers = list(layers)
        except TypeError:
            raise TypeError(f"layers must be a list of pynn.Dense, got "
                            f"{type(layers).__name__}") from None
        if not layers:
            raise ValueError("layers must contain at least one Dense layer")
        for i, layer in enumerate(layers):
            if not isinstance(layer, Dense):
                raise TypeError(f"layers[{i}] must be a pynn.Dense, got {type(layer).__name__}")
        for i in range(1, len(layers)):
            if layers[i].in_features != layers[i - 1].out_features:
                raise ValueError(f"layers[{i}] takes {layers[i].in_features} inputs but "
                                 f"layers[{i - 1}] gives {layers[i - 1].out_features} outputs")
        if len({id(layer) for layer in layers}) != len(layers):
            raise ValueError("the same Dense instance appears twice in layers; create one per "
                             "position")
        for i, layer in enumerate(layers):
            if layer._W is not None:
                raise ValueError(f"layers[{i}] already belongs to another model; create a new "
                                 f"Dense (or copy.deepcopy the model)")
        return layers

    def _allocate(self) -> None:
        total = sum(layer.n_params for layer in self.layers)
        self.params = _aligned_zeros(total, self.dtype)
        self.grads = _aligned_zeros(total, self.dtype)
        offset = 0
        for layer in self.layers:
            offset = layer._bind(self.params, self.grads, offset)
        self._n_in, self._n_out = self.layers[0].in_features, self.layers[-1].out_features
        # Per-layer kernel arguments, looked up once instead of per call.
        self._layer_args = [(layer._W, layer._b, layer.activation, layer.alpha)
                            for layer in self.layers]
        self._infer_buffers: dict[int, list] = {}
        self._infer_lock = threading.Lock()
        self._train_buffers: dict = {}
        self._networks: dict = {}
        # The weights at the start of the current epoch (see _recover_from_divergence).
        self._checkpoint: np.ndarray | None = None

    @property
    def in_features(self) -> int:
        return self.layers[0].in_features

    @property
    def out_features(self) -> int:
        return self.layers[-1].out_features

    @property
    def n_params(self) -> int:
        """Total number of parameters (weights and biases)."""
        return self.params.size

    # ---- description ---------------------------------------------------------------------------
    def get_config(self) -> dict:
        """A JSON-able description of the architecture (no numbers)."""
        return {"layers": [layer.get_config() for layer in self.layers],
                "dtype": self.dtype.name, "seed": self.seed}

    def __repr__(self) -> str:
        lines = [f"  ({i}): {layer!r}" for i, layer in enumerate(self.layers)]
        return (f"Sequential(dtype={self.dtype.name!r}, params={self.n_params:,}\n"
                + "\n".join(lines) + "\n)")

    def summary(self, print_fn=print) -> None:
        """Print a table of layers, output shapes and parameter counts (Keras-style)."""
        rows = [("#", "layer", "output shape", "activation", "params")]
        for i, layer in enumerate(self.layers):
            rows.append((str(i), f"Dense({layer.in_features}, {layer.out_features})",
                         f"(None, {layer.out_features})", layer.activation,
                         f"{layer.n_params:,}"))
        widths = [max(len(r[c]) for r in rows) for c in range(5)]
        fmt = "  ".join(f"{{:{'>' if c in (0, 4) else '<'}{w}}}" for c, w in enumerate(widths))
        rule = "-" * (sum(widths) + 8)
        out = [rule, fmt.format(*rows[0]), rule] + [fmt.format(*r) for r in rows[1:]] + [rule]
        size_kib = self.n_params * self.dtype.itemsize / 1024
        out.append(f"Total params: {self.n_params:,} ({self.dtype.name}, {size_kib:,.1f} KiB)")
        if self.loss is not None:
            out.append(f"Loss: {self.loss.name}   Optimizer: {self.optimizer!r}")
        for line in out:
            print_fn(line)

    def get_weights(self) -> list:
        """Copies of [W0, b0, W1, b1, ...]."""
        return [a.copy() for layer in self.layers for a in (layer.W, layer.b)]

    def set_weights(self, weights: Sequence[np.ndarray]) -> None:
        """Set every W and b from a list like `get_weights()` returns (checked before any copy)."""
        views = [a for layer in self.layers for a in (layer.W, layer.b)]
        weights = list(weights)
        if len(weights) != len(views):
            raise ValueError(f"weights must hold {len(views)} arrays (W and b per layer), "
                             f"got {len(weights)}")
        checked = []
        for i, (view, w) in enumerate(zip(views, weights)):
            arr = np.asarray(w)
            name = f"weights[{i}] ({'W' if i % 2 == 0 else 'b'} of layer {i // 2})"
            if arr.shape != view.shape:
                raise ValueError(f"{name} must have shape {view.shape}, got {arr.shape}")
            if arr.dtype.kind not in "fiu":
                raise TypeError(f"{name} must be real numbers, got dtype {arr.dtype}")
            if not np.isfinite(arr).all():
                raise ValueError(f"{name} contains NaN or inf")
            checked.append(arr)
        for view, arr in zip(views, checked):
            view[...] = arr

    # ---- input checks --------------------------------------------------------------------------
    def _check_X(self, X: object, name: str = "X", allow_empty: bool = True) -> np.ndarray:
        """X as a C-contiguous (n, in_features) array of the model's dtype, finite."""
        if not (type(X) is np.ndarray and X.dtype is self.dtype and X.ndim == 2
                and X.shape[1] == self._n_in and X.flags.c_contiguous and X.flags.aligned):
            X = self._convert_X(X, name)
        if X.shape[0] == 0 and not allow_empty:
            raise ValueError(f"{name} must contain at least one sample, got shape {X.shape}")
        if not ops.all_finite(X):
            raise ValueError(f"{name} contains NaN or inf")
        return X

    def _convert_X(self, X: object, name: str) -> np.ndarray:
        try:
            arr = np.asarray(X)
        except Exception as exc:
            raise TypeError(f"{name} must be a 2-D array of numbers, got "
                            f"{type(X).__name__}") from exc
        if arr.dtype.kind not in "biuf":
            raise TypeError(f"{name} must hold real numbers, got dtype {arr.dtype}")
        if arr.ndim != 2:
            hint = f" (for one sample use {name}.reshape(1, -1))" if arr.ndim == 1 else ""
            raise ValueError(f"{name} must be 2-D with shape (n_samples, {self.in_features}), "
                             f"got shape {arr.shape}{hint}")
        if arr.shape[1] != self.in_features:
            raise ValueError(f"{name} must have {self.in_features} features (columns) for this "
                             f"model, got shape {arr.shape}")
        arr = np.ascontiguousarray(arr, dtype=self.dtype)
        return arr if arr.flags.aligned else arr.copy()  # a copy is always aligned

    # ---- inference -----------------------------------------------------------------------------
    def _hidden_buffers(self, n: int) -> list | None:
        bufs = self._infer_buffers.get(n)
        if bufs is None:
            if len(self._infer_buffers) >= _MAX_CACHED_SIZES:
                self._infer_buffers.pop(next(iter(self._infer_buffers)))
            bufs = [np.empty((n, layer.out_features), self.dtype) for layer in self.layers[:-1]]
            self._infer_buffers[n] = bufs
        return bufs

    def _forward_into(self, X: np.ndarray, out: np.ndarray) -> None:
        """Raw outputs of checked X into out, through cached hidden buffers."""
        linear = ops.linear
        n = X.shape[0]
        # Another thread using this model's buffers at this moment: use private ones instead.
        lock = self._infer_lock
        locked = lock.acquire(False)
        try:
            bufs = self._infer_buffers.get(n) if locked else None
            if bufs is None:
                bufs = self._hidden_buffers(n) if locked else \
                    [np.empty((n, layer.out_features), self.dtype) for layer in self.layers[:-1]]
            a = X
            for (W, b, act, alpha), buf in zip(self._layer_args, bufs):
                linear(a, W, b, activation=act, alpha=alpha, out=buf)
                a = buf
            W, b, act, alpha = self._layer_args[-1]
            linear(a, W, b, activation=act, alpha=alpha, out=out)
        finally:
            if locked:
                lock.release()

    def _forward(self, X: np.ndarray) -> np.ndarray:
        n = X.shape[0]
        out = np.empty((n, self._n_out), self.dtype)
        if n <= _CHUNK_ROWS:
            if n:
                self._forward_into(X, out)
            return out
        for start in range(0, n, _CHUNK_ROWS):
            stop = min(start + _CHUNK_ROWS, n)
            self._forward_into(X[start:stop], out[start:stop])
        return out

    def __call__(self, X: object) -> np.ndarray:
        """Raw outputs (logits for the classification losses), shape (n, out_features)."""
        return self._forward(self._check_X(X))

    forward = __call__

    def _require_loss(self, what: str) -> _losses.Loss:
        if self.loss is None:
            raise ValueError(f"{what} needs to know the loss (it decides whether outputs are "
                             f"labels, probabilities or values): call fit or "
                             f"compile(loss=...) first; model(X) gives the raw outputs")
        return self.loss

    def predict(self, X: object) -> np.ndarray:
        """Class labels for the classification losses, values for regression (mse).

        cross_entropy / kl_divergence: argmax labels (n,); binary_cross_entropy: 0/1 labels
        ((n,) for one output, else (n, k)); hinge: -1/1 labels; mse: values ((n,) for one
        output, else (n, k)).
        """
        loss = self._require_loss("predict")
        return loss.predict(self._forward(self._check_X(X)))

    def predict_proba(self, X: object) -> np.ndarray:
        """Probabilities: softmax rows (cross_entropy, kl_divergence) or per-output sigmoid
        (binary_cross_entropy), shape (n, out_features)."""
        loss = self._require_loss("predict_proba")
        if not loss.has_proba:
            loss.proba(None)  # raises the explanatory error
        return loss.proba(self._forward(self._check_X(X)))

    def evaluate(self, X: object, y: object, *, sample_weight: object = None,
                 loss: str | _losses.Loss | None = None) -> dict:
        """The loss (and accuracy, for classification losses) on (X, y).

        Returns
        -------
        dict
            ``{"loss": float, "accuracy": float}`` (no "accuracy" for mse).
        """
        loss_obj = _losses.get(loss) if loss is not None else self._require_loss("evaluate")
        X = self._check_X(X, "X", allow_empty=False)
        target = loss_obj.prepare_target(y, X.shape[0], self.out_features, self.dtype, "y")
        weight = None if sample_weight is None else _losses.prepare_sample_weight(
            sample_weight, X.shape[0], self.dtype)
        return self._evaluate_checked(X, target, weight, loss_obj)

    def _evaluate_checked(self, X, target, weight, loss_obj) -> dict:
        total_loss = total_weight = correct = 0.0
        n = X.shape[0]
        for start in range(0, n, _CHUNK_ROWS):
            stop = min(start + _CHUNK_ROWS, n)
            out = self._forward(X[start:stop])
            w = None if weight is None else weight[start:stop]
            value, _ = loss_obj.value_and_grad(out, target[start:stop], sample_weight=w,
                                               out=np.empty_like(out))
            chunk_weight = float(stop - start) if w is None else float(w.sum(dtype=np.float64))
            total_loss += value * chunk_weight
            total_weight += chunk_weight
            if loss_obj.has_accuracy:
                bufs = loss_obj.accuracy_buffers(stop - start, self.out_features)
                correct += loss_obj.batch_accuracy(out, target[start:stop], bufs) * (stop - start)
        result = {"loss": float(total_loss / total_weight)}
        if loss_obj.has_accuracy:
            result["accuracy"] = float(correct / n)
        return result

    # ---- training ------------------------------------------------------------------------------
    def _check_loss_fits_model(self, loss: _losses.Loss) -> None:
        last = self.layers[-1].activation
        if last != "identity" and last == loss.output_function:
            raise ValueError(f"the last layer's activation is {last!r}, but {loss.name} applies "
                             f"{last} itself (fused, from the raw outputs): use "
                             f"activation='identity' on the last Dense; predict_proba gives the "
                             f"{last} probabilities")
        if loss.name in ("cross_entropy", "kl_divergence") and self.out_features < 2:
            raise ValueError(f"{loss.name} needs at least 2 outputs (one per class); for a "
                             f"single output use binary_cross_entropy")

    def _check_trainable(self) -> None:
        for i, layer in enumerate(self.layers):
            if layer.activation not in TRAINABLE_ACTIVATIONS:
                raise ValueError(f"layers[{i}] uses activation {layer.activation!r}, which is "
                                 f"forward-only (its derivative is zero almost everywhere, so "
                                 f"gradient descent cannot train it); use sigmoid, tanh or relu "
                                 f"to train, then predict with any activation")

    def compile(self, loss: str | _losses.Loss | None = None,
                optimizer: str | _optim.Optimizer | None = None) -> Sequential:
        """Set the loss and/or optimizer without training (fit can also take them)."""
        loss_obj = _losses.get(loss) if loss is not None else None
        opt = _optim.get(optimizer) if optimizer is not None else None
        if loss_obj is not None:
            self._check_loss_fits_model(loss_obj)
        if opt is not None:
            opt._bind(self, self.n_params, self.dtype)
            self.optimizer = opt
        if loss_obj is not None:
            self.loss = loss_obj
        return self

    @_one_fit_at_a_time
    def fit(self, X: object, y: object, *, loss: str | _losses.Loss | None = None,
            optimizer: str | _optim.Optimizer | None = None, epochs: int = 1,
            batch_size: int | None = 32, validation_data: tuple | None = None,
            validation_split: float = 0.0, shuffle: bool = True, seed: int | None = None,
            verbose: int = 0, callbacks: Iterable[Callback] | None = None,
            sample_weight: object = None) -> History:
        """Train with mini-batch gradient descent.

        Parameters
        ----------
        X : array of shape (n, in_features)
            Inputs (any real dtype; converted once to the model's dtype).
        y : array
            Targets in the loss's form (see `pynn.losses`).
        loss : str or Loss, optional
            Defaults to the loss of the previous fit/compile.
        optimizer : str or Optimizer, optional
            Defaults to the model's current optimizer (its state is kept: fitting again
            continues training), else ``SGD(lr=0.01)``.
        epochs : int, default 1
            Passes over the data (0 does nothing).
        batch_size : int or None, default 32
            Samples per update; None means the full batch, 1 online learning. The last batch
            of an epoch holds the remainder.
        validation_data : (X_val, y_val) or (X_val, y_val, sample_weight_val), optional
            Evaluated after every epoch (val_loss, val_accuracy).
        validation_split : float, default 0
            Fraction in [0, 1) of (X, y) held out for validation: the last samples, before any
            shuffling. Ignored when validation_data is given.
        shuffle : bool, default True
            Reshuffle the training samples every epoch (seeded).
        seed : int, optional
            Seeds the shuffling; by default it comes from the model's seed.
        verbose : int, default 0
            0 silent, 1 a live progress bar (tqdm, when installed), 2 one line per epoch.
        callbacks : list of Callback, optional
            E.g. `pynn.EarlyStopping`.
        sample_weight : array of shape (n,), optional
            Per-sample loss weights (>= 0).

        Returns
        -------
        History
            Per-epoch loss, accuracy, val_loss, val_accuracy, lr. Also kept as model.history.

        Raises
        ------
        TrainingDivergedError
            When the loss becomes NaN or infinite: names the epoch and batch; the weights and
            optimizer state are left at the last step that kept them finite.

        Notes
        -----
        KeyboardInterrupt (Ctrl-C) stops training cleanly after the current batch and returns
        the history so far (``history.interrupted`` is True).
        """
        # -- every check before anything changes -------------------------------------------
        loss_obj = _losses.get(loss) if loss is not None else (self.loss or None)
        if loss_obj is None:
            raise ValueError("fit needs a loss: pass loss='cross_entropy' (or mse, "
                             "binary_cross_entropy, hinge, kl_divergence) or a pynn.Loss")
        self._check_loss_fits_model(loss_obj)
        self._check_trainable()
        if optimizer is not None:
            opt = _optim.get(optimizer)
        else:
            opt = self.optimizer if self.optimizer is not None else _optim.SGD(lr=0.01)
        epochs = _check_int(epochs, "epochs", 0)
        batch_size = _check_int(batch_size, "batch_size", 1, allow_none=True)
        if not isinstance(shuffle, (bool, np.bool_)):
            raise TypeError(f"shuffle must be a bool, got {type(shuffle).__name__}")
        seed = _check_seed(seed)
        verbose = _check_int(verbose, "verbose", 0)
        callbacks = list(callbacks or [])
        for i, cb in enumerate(callbacks):
            if not isinstance(cb, Callback):
                raise TypeError(f"callbacks[{i}] must be a pynn.Callback, got "
                                f"{type(cb).__name__}")
        if isinstance(validation_split, bool) or not isinstance(validation_split, numbers.Real):
            raise TypeError(f"validation_split must be a float, got "
                            f"{type(validation_split).__name__}")
        if not 0.0 <= validation_split < 1.0:
            raise ValueError(f"validation_split must be in [0, 1), got {validation_split}")

        X = self._check_X(X, "X", allow_empty=False)
        n = X.shape[0]
        target = loss_obj.prepare_target(y, n, self.out_features, self.dtype, "y")
        weight = None if sample_weight is None else _losses.prepare_sample_weight(
            sample_weight, n, self.dtype)
        val = None
        if validation_data is not None:
            val = self._check_validation(validation_data, loss_obj)
        elif validation_split > 0:
            n_val = math.floor(n * validation_split)
            if n_val < 1 or n_val >= n:
                raise ValueError(f"validation_split={validation_split} of {n} samples leaves "
                                 f"{n_val} for validation and {n - n_val} for training; both "
                                 f"need at least one")
            n -= n_val
            val = (X[n:], target[n:], None if weight is None else weight[n:])
            X, target = X[:n], target[:n]
            weight = None if weight is None else weight[:n]
        opt._bind(self, self.n_params, self.dtype)   # may raise: other model's optimizer
        if callable(opt.lr):
            opt.learning_rate()  # a broken schedule fails here, before any change

        # -- state ----------------------------------------------------------------------------
        self.loss, self.optimizer = loss_obj, opt
        self.stop_training = False
        history = History()
        self.history = history
        m = n if batch_size is None else min(batch_size, n)
        n_batches = -(-n // m)
        history.params = {"epochs": epochs, "batch_size": m, "samples": n,
                          "batches": n_batches}
        callbacks = [history] + callbacks
        if verbose:
            bar = ProgressBar(verbose)
            bar.configure(epochs, n_batches, self.epochs_trained)
            callbacks.append(bar)
        for cb in callbacks:
            cb.set_model(self)
        batch_hooks = [cb for cb in callbacks if _overrides(cb, "on_batch_end")]
        if seed is not None:
            rng = np.random.default_rng(seed)
        else:
            rng = np.random.default_rng(self._rng.integers(2**63))
        gather = shuffle and n > 1
        if self._checkpoint is None:
            self._checkpoint = _aligned_zeros(self.n_params, self.dtype)

        for cb in callbacks:
            cb.on_train_begin()
        try:
            self._train_epochs(X, target, weight, val, loss_obj, opt, epochs, m, n_batches,
                               gather, rng, callbacks, batch_hooks, history)
        except KeyboardInterrupt:
            history.interrupted = True
            print(f"\nTraining interrupted: {len(history.epoch)} complete epoch(s) kept in the "
                  f"history.", file=sys.stderr)
        except TrainingDivergedError:
            for cb in callbacks:
                if isinstance(cb, ProgressBar):
                    cb.on_train_end()
            raise
        for cb in callbacks:
            cb.on_train_end()
        return history

    def _check_validation(self, validation_data: object, loss_obj: _losses.Loss) -> tuple:
        if not isinstance(validation_data, (tuple, list)) or len(validation_data) not in (2, 3):
            raise TypeError("validation_data must be a tuple (X_val, y_val) or "
                            "(X_val, y_val, sample_weight_val)")
        Xv = self._check_X(validation_data[0], "validation_data[0] (X_val)", allow_empty=False)
        tv = loss_obj.prepare_target(validation_data[1], Xv.shape[0], self.out_features,
                                     self.dtype, "validation_data[1] (y_val)")
        wv = None
        if len(validation_data) == 3 and validation_data[2] is not None:
            wv = _losses.prepare_sample_weight(validation_data[2], Xv.shape[0], self.dtype,
                                               "validation_data[2] (sample_weight_val)")
        return Xv, tv, wv

    def _buffers(self, m: int, target: np.ndarray, gather: bool, weighted: bool,
                 loss_obj: _losses.Loss) -> _TrainBuffers:
        key = (m, target.shape[1:], target.dtype, gather, weighted, type(loss_obj))
        bufs = self._train_buffers.get(key)
        if bufs is None:
            bufs = _TrainBuffers(self, m, target, gather, weighted, loss_obj)
            self._train_buffers[key] = bufs
        return bufs

    def _train_epochs(self, X, target, weight, val, loss_obj, opt, epochs, m, n_batches,
                      gather, rng, callbacks, batch_hooks, history) -> None:
        n = X.shape[0]
        self._train_buffers = {k: v for k, v in self._train_buffers.items()
                               if k[0] in (m, n % m)}  # drop sizes this fit does not use
        perm = np.arange(n, dtype=np.int64) if gather else None
        gather_rows = ops.gather_rows
        params, grads = self.params, self.grads
        has_acc = loss_obj.has_accuracy
        kernel = loss_obj.value_and_grad
        full_bufs = self._buffers(m, target, gather, weight is not None, loss_obj)
        last_bufs = self._buffers(n - (n_batches - 1) * m, target, gather, weight is not None,
                                  loss_obj)

        def load_batch(batch):
            """The batch's inputs, targets, weights (gathered in place when shuffling)."""
            start = batch * m
            stop = min(start + m, n)
            bufs = full_bufs if stop - start == m else last_bufs
            if not gather:
                return (X[start:stop], target[start:stop],
                        None if weight is None else weight[start:stop], bufs)
            idx = perm[start:stop]
            gather_rows(X, idx, bufs.x)
            gather_rows(target, idx, bufs.y)
            if bufs.w is not None:
                gather_rows(weight, idx, bufs.w)
            return bufs.x, bufs.y, bufs.w, bufs

        for _ in range(epochs):
            epoch = self.epochs_trained
            lr = opt._begin_epoch()
            for cb in callbacks:
                cb.on_epoch_begin(epoch)
            if gather:
                rng.shuffle(perm)
            # One copy per epoch (not per step): enough to rebuild any step of this epoch.
            np.copyto(self._checkpoint, params)
            opt._save_checkpoint()
            loss_sum = acc_sum = 0.0
            for batch in range(n_batches):
                xb, yb, wb, bufs = load_batch(batch)
                value = self._forward_backward(xb, yb, wb, bufs.acts, bufs.deltas, kernel)
                if not math.isfinite(value):
                    self._recover_from_divergence(batch, load_batch, kernel, opt)
                    self._diverged(value, epoch, batch, n_batches, lr, history)
                size = len(xb)
                if has_acc:
                    acc_sum += loss_obj.batch_accuracy(bufs.acts[-1], yb, bufs.acc) * size
                loss_sum += value * size
                opt.step(params, grads)
                if batch_hooks:
                    done = batch * m + size
                    logs = {"loss": loss_sum / done, "size": size}
                    if has_acc:
                        logs["accuracy"] = acc_sum / done
                    for cb in batch_hooks:
                        cb.on_batch_end(batch, logs)

            logs = {"loss": loss_sum / n}
            if has_acc:
                logs["accuracy"] = acc_sum / n
            if val is not None:
                scores = self._evaluate_checked(val[0], val[1], val[2], loss_obj)
                logs["val_loss"] = scores["loss"]
                if has_acc:
                    logs["val_accuracy"] = scores["accuracy"]
            logs["lr"] = lr
            opt._end_epoch()
            self.epochs_trained += 1
            for cb in callbacks:
                cb.on_epoch_end(epoch, logs)
            if self.stop_training:
                history.stopped_early = True
                break

    def _recover_from_divergence(self, bad_batch, load_batch, kernel, opt) -> None:
        """Leave the weights and optimizer state at the last step that kept them finite.

        Usually they still are finite (the loss overflowed in the forward pass): nothing to do.
        If the previous update itself overflowed them, rebuild from the epoch's checkpoint by
        replaying this epoch's steps (training is deterministic, so the replay is bitwise the
        same), stopping before the first step that would make them non-finite. This costs
        nothing per step: no copy of the weights is kept except once per epoch.
        """
        with np.errstate(all="ignore"):  # huge or non-finite numbers are expected here
            self._replay_to_last_finite_step(bad_batch, load_batch, kernel, opt)

    def _replay_to_last_finite_step(self, bad_batch, load_batch, kernel, opt) -> None:
        params, grads = self.params, self.grads
        if ops.all_finite(params) and opt._state_finite():
            return
        np.copyto(params, self._checkpoint)
        opt._restore_checkpoint()
        previous = np.empty_like(params)
        for batch in range(bad_batch):
            xb, yb, wb, bufs = load_batch(batch)
            value = self._forward_backward(xb, yb, wb, bufs.acts, bufs.deltas, kernel)
            if not math.isfinite(value):
                break
            np.copyto(previous, params)
            opt._save_checkpoint()
            opt.step(params, grads)
            if not (ops.all_finite(params) and opt._state_finite()):
                np.copyto(params, previous)
                opt._restore_checkpoint()
                break

    def _forward_backward(self, xb, yb, wb, acts, deltas, kernel) -> float:
        """One batch: forward into acts, loss, backward into self.grads; returns the loss.

        Nothing is written to the gradients when the loss is not finite.
        """
        network = self._network(acts, deltas)
        # forward: keep each layer's output (the backward needs only outputs)
        network.forward(xb)
        value, _ = kernel(acts[-1], yb, sample_weight=wb, out=deltas[-1])
        if not math.isfinite(value):
            return value
        # backward: dZ = dY ⊙ act'(Y); dW = Xᵀ·dZ; db = colsum(dZ); dX = dZ·Wᵀ
        network.backward(xb)
        return value

    def _network(self, acts: list, deltas: list) -> _core._Network:
        """The layers bound to these activation buffers (checked once, cached per buffer set)."""
        key = (id(acts[0]), id(deltas[0]))  # the network holds both: ids stay unique
        network = self._networks.get(key)
        if network is None:
            if len(self._networks) >= _MAX_CACHED_SIZES:
                self._networks.pop(next(iter(self._networks)))
            layers = self.layers
            network = _core._Network([layer._W for layer in layers],
                                     [layer._b for layer in layers],
                                     [layer._dW for layer in layers],
                                     [layer._db for layer in layers],
                                     [layer.activation for layer in layers],
                                     [layer.alpha for layer in layers], list(acts), list(deltas))
            self._networks[key] = network
        return network

    def _diverged(self, value: float, epoch: int, batch: int, n_batches: int, lr: float,
                  history: History) -> None:
        raise TrainingDivergedError(
            f"training diverged at epoch {epoch + 1}, batch {batch + 1}/{n_batches}: the loss "
            f"is {value}. The weights and optimizer state are left at the last step that kept "
            f"them finite; a smaller learning rate (now {lr:g}) usually helps.",
            epoch + 1, batch + 1, history)

    # ---- copying, pickling, saving -------------------------------------------------------------
    def __getstate__(self) -> dict:
        return {"config": self.get_config(), "layers": self.layers,
                "params": np.array(self.params), "loss": self.loss,
                "optimizer": self.optimizer, "history": self.history, "rng": self._rng,
                "epochs_trained": self.epochs_trained}

    def __setstate__(self, state: dict) -> None:
        self.dtype = np.dtype(state["config"]["dtype"])
        self.seed = state["config"]["seed"]
        # Fresh layer objects: a shallow copy.copy must not re-point the original's views.
        self.layers = [copy.copy(layer) for layer in state["layers"]]
        self._allocate()
        self.params[...] = state["params"]
        self._rng = state["rng"]
        self.loss = state["loss"]
        self.optimizer = state["optimizer"]
        if self.optimizer is not None and self.optimizer._owner is not None \
                and self.optimizer._owner() is not None:
            self.optimizer = copy.deepcopy(self.optimizer)  # shallow copy: state of its own
        if self.optimizer is not None and self.optimizer._state:
            self.optimizer._owner = None
            self.optimizer._bind(self, self.n_params, self.dtype)  # keeps the loaded arrays
        self.history = state["history"]
        self.stop_training = False
        self.epochs_trained = state["epochs_trained"]

    def save(self, path) -> None:
        """Save to `path` (see `pynn.save`)."""
        from ..io import save
        save(self, path)

    @staticmethod
    def load(path) -> Sequential:
        """Load a model saved with `save` (see `pynn.load`)."""
        from ..io import load
        return load(path)
