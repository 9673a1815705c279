"""Sequential: a stack of layers (Dense, Activation, Dropout, BatchNorm, LayerNorm) over one flat
parameter buffer.

Memory layout: every W and b is a view into ``model.params`` (one contiguous, 64-byte aligned
buffer), every dW and db a view into ``model.grads``; the optimizer keeps its state as buffers
of the same size, so an update is one kernel call over all parameters.

The model holds the numbers and the configuration; training runs on `pynn.engine` (the same
loop the scikit-learn estimators use). `fit` adds the policy: argument checks, callbacks,
History, the progress bar.
"""
from __future__ import annotations

import copy
import functools
import math
import numbers
import sys
import threading
import zlib
from collections.abc import Iterable, Sequence

import numpy as np

from .. import ops
from .._platform import get_num_threads, set_num_threads
from ..engine import (
    Batches,
    DataParallel,
    Inference,
    Trainer,
    TrainingDivergedError,
    as_inputs,
    check_loss_fits,
    check_trainable,
    class_sample_weights,
    evaluate,
    rank_zero,
)
from ..engine.lbfgs import run_lbfgs
from ..engine.network import check_batch_rows
from ..nn import losses as _losses
from ..nn import metrics as _metrics
from ..nn import optim as _optim
from ..nn.layers import BatchNorm, Dense, Dropout, Input, Layer, layer_from_config
from .callbacks import Callback, History, ProgressBar, overrides
from .torch_layout import torch_entries

__all__ = ["Sequential", "TrainingDivergedError"]

_ALIGN = 64


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


def _peek_build(model: Sequential, source: Iterable) -> Iterable:
    """Build an unbuilt model from the first batch of `source`; the batch is not lost."""
    iterator = iter(source)
    try:
        first = next(iterator)
    except StopIteration:
        raise ValueError("the data source gave no batches") from None
    if isinstance(first, tuple) and first:
        model._check_X(first[0], "X of batch 0 of epoch 1", allow_empty=False)

    def chained():
        yield first
        yield from iterator
    return chained() if iterator is source else source


class Sequential:
    """A feed-forward network: layers applied in order.

    Parameters
    ----------
    layers : sequence of layers
        `pynn.Dense`, `pynn.Activation`, `pynn.Dropout`, `pynn.BatchNorm`, `pynn.LayerNorm`
        (optionally after a `pynn.Input`). Each layer's in_features must equal the previous
        layer's out_features; the layers that keep the width take it from the layer before.
    seed : int, optional
        Seeds the weight initialisation (and, unless `fit` gets its own seed, the shuffling).
        Same seed → the same weights whatever the dtype's rounding.
    dtype : {"float32", "float64"}, default "float32"
        Precision of parameters and computation.

    Attributes
    ----------
    layers : list of layers
    params, grads : ndarray
        The flat parameter and gradient buffers (every layer's W, b, dW, db, gamma, beta, ...
        are views).
    loss : Loss or None
        The loss of the last `fit`/`compile` (decides what `predict` returns).
    optimizer : Optimizer or None
        Its state is kept between `fit` calls: fitting again continues training.
    history : History or None
        What the last `fit` returned.
    epochs_trained : int
        Epochs completed over every `fit`.
    rng : numpy.random.Generator
        Draws each `fit`'s shuffling seed when `fit` gets none (saved with the model).
    metadata : dict
        Free-form JSON-serialisable data saved with the model by `pynn.save` (e.g. class labels,
        feature names, preprocessing statistics); `pynn.load` restores it.

    Examples
    --------
    >>> model = pynn.Sequential([pynn.Dense(784, 256, "relu"), pynn.Dense(256, 10)], seed=0)
    >>> model.fit(X, y, loss="cross_entropy", optimizer=pynn.SGD(0.05, momentum=0.9),
    ...           epochs=10, batch_size=128)
    >>> model.predict(X_test)   # class labels
    """

    def __init__(self, layers: Sequence[Layer | Input] | None = None, *, seed: int | None = None,
                 dtype: str | np.dtype | type = "float32") -> None:
        self.dtype = _check_dtype(dtype)
        self.seed = _check_seed(seed)
        self.layers = []
        if layers is not None:
            self.layers = self._check_layers(layers)
        self.rng = np.random.default_rng(self.seed)
        self._built = False
        self._input_features: int | None = None
        if self.layers and self.layers[0].in_features is not None:
            self._build()
        self.loss: _losses.Loss | None = None
        self.optimizer: _optim.Optimizer | None = None
        self.history: History | None = None
        self.stop_training = False
        self.epochs_trained = 0
        self.metadata: dict = {}

    # ---- construction --------------------------------------------------------------------------
    @staticmethod
    def _check_layers(layers: object) -> list:
        """The layers, input sizes chained (an `Input` first sets the first one's)."""
        if isinstance(layers, (Layer, Input)):
            layers = [layers]
        try:
            layers = list(layers)
        except TypeError:
            raise TypeError(f"layers must be a list of pynn.Dense (or other pynn layers), got "
                            f"{type(layers).__name__}") from None
        if not layers:
            raise ValueError("layers must contain at least one layer (or use Sequential() and "
                             "model.add)")
        for i, layer in enumerate(layers):
            if isinstance(layer, Input) and i == 0:
                continue
            if not isinstance(layer, Layer):
                where = " (pynn.Input goes first only)" if isinstance(layer, Input) else ""
                raise TypeError(f"layers[{i}] must be a pynn.Dense or another pynn layer "
                                f"(Activation, Dropout, BatchNorm, LayerNorm), got "
                                f"{type(layer).__name__}{where}")
        if len({id(layer) for layer in layers}) != len(layers):
            raise ValueError("the same layer instance appears twice in layers; create one per "
                             "position")
        for i, layer in enumerate(layers):
            if isinstance(layer, Layer) and layer.is_bound:
                raise ValueError(f"layers[{i}] already belongs to another model; create a new "
                                 f"{type(layer).__name__} (or copy.deepcopy the model)")
        offset = 0
        if isinstance(layers[0], Input):
            if len(layers) == 1:
                raise ValueError("layers holds only an Input: add Dense layers after it")
            first = layers[1]
            if first.in_features not in (None, layers[0].features):
                raise ValueError(f"layers[1] takes {first.in_features} inputs but the Input "
                                 f"gives {layers[0].features}")
            offset = 1
        chain = layers[offset:]
        if offset:
            chain[0].build(layers[0].features)
        for i in range(1, len(chain)):
            before, layer = chain[i - 1], chain[i]
            if before.out_features is None:  # width-keeping layers waiting for the input size
                if layer.in_features is not None and not layer.same_width:
                    before.build(layer.in_features)
                continue
            if layer.in_features is not None and layer.in_features != before.out_features:
                what = f"{type(layer).__name__} has {layer.in_features} features" \
                    if layer.same_width else f"takes {layer.in_features} inputs"
                raise ValueError(f"layers[{i + offset}] {what} but layers[{i + offset - 1}] "
                                 f"gives {before.out_features} outputs")
            layer.build(before.out_features)
        if chain[0].in_features is not None:  # sizes known up to a width-keeping head
            for i in range(1, len(chain)):
                if chain[i].in_features is None:
                    chain[i].build(chain[i - 1].out_features)
        return chain

    def _allocate(self) -> None:
        total = sum(layer.n_params for layer in self.layers)
        try:
            params = _aligned_zeros(total, self.dtype)
            grads = _aligned_zeros(total, self.dtype)
        except (MemoryError, ValueError) as exc:  # ValueError: NumPy's size limit
            gib = total * self.dtype.itemsize / 2**30
            biggest = max(range(len(self.layers)), key=lambda i: self.layers[i].n_params)
            raise MemoryError(f"the model needs {total:,} parameters ({gib:,.1f} GiB for the "
                              f"weights, as much again for the gradients); layers[{biggest}] "
                              f"{self.layers[biggest]!r} alone has "
                              f"{self.layers[biggest].n_params:,}") from exc
        self.params, self.grads = params, grads
        offset = 0
        for layer in self.layers:
            offset = layer.bind(self.params, self.grads, offset)
        self._inference = Inference(self.layers, self.dtype)

    def _build(self, start: int = 0) -> None:
        """Allocate the flat buffers (keeping the values of the first `start` layers) and draw
        the weights of the others from the model's generator, in layer order."""
        kept = self.params[:sum(layer.n_params for layer in self.layers[:start])].copy() \
            if start else None
        self._allocate()
        if kept is not None:
            self.params[:kept.size] = kept
        for i, layer in enumerate(self.layers[start:], start):
            layer.reset_parameters(self.rng, f"layers[{i}]")
        self._built = True

    @property
    def built(self) -> bool:
        """Whether the sizes are all known and the parameters exist."""
        return self._built

    def build(self, in_features: int) -> Sequential:
        """Fix the input size and create the parameters (fit/predict do this from the data)."""
        if not self.layers:
            raise ValueError("this model has no layers: add some with model.add(pynn.Dense(...))")
        if self._built:
            if in_features != self.in_features:
                raise ValueError(f"this model takes {self.in_features} input features, not "
                                 f"{in_features}")
            return self
        self.layers[0].build(in_features)
        self._build()
        return self

    def add(self, layer: Layer | Input) -> Sequential:
        """Append a layer (Keras' ``model.add``); its input size comes from the layer before.

        On a built model the existing weights are kept and the new layer's drawn; the
        optimizer's state no longer fits and starts afresh at the next fit.
        """
        if isinstance(layer, Input):
            if self.layers:
                raise ValueError("pynn.Input sets the model's input size: add it first")
            self._input_features = layer.features
            return self
        if not isinstance(layer, Layer):
            raise TypeError(f"layer must be a pynn.Dense or another pynn layer (Activation, "
                            f"Dropout, BatchNorm, LayerNorm), got {type(layer).__name__}")
        head = self.layers[-1].out_features if self.layers else self._input_features
        chained = self._check_layers(([Input(head)] if head is not None else []) + [layer])
        start = len(self.layers)
        self.layers = self.layers + chained
        if self._built:
            self._build(start)
        elif self.layers[0].in_features is not None:
            self._build()
        return self

    def _require_layers(self) -> None:
        if not self.layers:
            raise ValueError("this model has no layers: add some with model.add(pynn.Dense(...))")

    def _require_built(self, what: str) -> None:
        if not self._built:
            raise ValueError(f"{what} needs the model's parameters, which do not exist yet: "
                             f"the input size is unknown until the first fit/predict or "
                             f"model.build(in_features) (or start with pynn.Input(n))")

    def __getattr__(self, name: str):
        # only reached when normal lookup fails: params/grads of a model not built yet
        if name in ("params", "grads"):
            raise AttributeError(f"model.{name} does not exist yet: the input size is unknown "
                                 f"until the first fit/predict or model.build(in_features)")
        raise AttributeError(f"'Sequential' object has no attribute {name!r}")

    @classmethod
    def from_config(cls, config: dict) -> Sequential:
        """A new model from `get_config()`'s description (weights drawn from its seed)."""
        if not isinstance(config, dict) or "layers" not in config:
            raise TypeError("config must be a dict from Sequential.get_config()")
        layers = [layer_from_config(c) for c in config["layers"]]
        return cls(layers, seed=config.get("seed"), dtype=config.get("dtype", "float32"))

    @property
    def in_features(self) -> int:
        return self.layers[0].in_features

    @property
    def out_features(self) -> int:
        return self.layers[-1].out_features

    @property
    def n_params(self) -> int:
        """Total number of parameters (weights and biases)."""
        self._require_built("n_params")
        return self.params.size

    # ---- description ---------------------------------------------------------------------------
    def get_config(self) -> dict:
        """A JSON-able description of the architecture (no numbers)."""
        return {"layers": [layer.get_config() for layer in self.layers],
                "dtype": self.dtype.name, "seed": self.seed}

    def __repr__(self) -> str:
        lines = [f"  ({i}): {layer!r}" for i, layer in enumerate(self.layers)]
        params = f"{self.n_params:,}" if self._built else "? (not built)"
        return (f"Sequential(dtype={self.dtype.name!r}, params={params}\n"
                + "\n".join(lines) + "\n)")

    def summary(self, print_fn=print) -> None:
        """Print a table of layers, output shapes and parameter counts (Keras-style)."""
        rows = [("#", "layer", "output shape", "activation", "params")]
        for i, layer in enumerate(self.layers):
            fan_in = "?" if layer.in_features is None else layer.in_features
            width = "?" if layer.out_features is None else layer.out_features
            name = f"Dense({fan_in}, {width})" if isinstance(layer, Dense) else repr(layer)
            rows.append((str(i), name, f"(None, {width})", getattr(layer, "activation", ""),
                         "?" if layer.in_features is None else f"{layer.n_params:,}"))
        widths = [max(len(r[c]) for r in rows) for c in range(5)]
        fmt = "  ".join(f"{{:{'>' if c in (0, 4) else '<'}{w}}}" for c, w in enumerate(widths))
        rule = "-" * (sum(widths) + 8)
        out = [rule, fmt.format(*rows[0]), rule] + [fmt.format(*r) for r in rows[1:]] + [rule]
        if self._built:
            size_kib = self.n_params * self.dtype.itemsize / 1024
            out.append(f"Total params: {self.n_params:,} ({self.dtype.name}, "
                       f"{size_kib:,.1f} KiB)")
        else:
            out.append("Total params: ? (the input size comes with the first data, "
                       "pynn.Input or model.build)")
        if self.loss is not None:
            out.append(f"Loss: {self.loss.name}   Optimizer: {self.optimizer!r}")
        for line in out:
            print_fn(line)

    def get_weights(self) -> list:
        """Copies of every layer's arrays in order, Keras' way: [W0, b0, W1, b1, ...], a
        BatchNorm's [gamma, beta, running_mean, running_var], a LayerNorm's [gamma, beta]."""
        self._require_built("get_weights")
        return [a.copy() for layer in self.layers for a in layer.weights()]

    def set_weights(self, weights: Sequence[np.ndarray]) -> None:
        """Set every array from a list like `get_weights()` returns (checked before any copy)."""
        self._require_built("set_weights")
        names = [(i, name) for i, layer in enumerate(self.layers)
                 for name in [n for n, _ in layer.param_shapes()] + list(layer.state_names)]
        views = [a for layer in self.layers for a in layer.weights()]
        weights = list(weights)
        if len(weights) != len(views):
            raise ValueError(f"weights must hold {len(views)} arrays (as get_weights returns: "
                             f"W and b per Dense layer, ...), got {len(weights)}")
        checked = []
        for i, (view, w) in enumerate(zip(views, weights)):
            arr = np.asarray(w)
            name = f"weights[{i}] ({names[i][1]} of layer {names[i][0]})"
            if arr.shape != view.shape:
                raise ValueError(f"{name} must have shape {view.shape}, got {arr.shape}")
            if arr.dtype.kind not in "fiu":
                raise TypeError(f"{name} must be real numbers, got dtype {arr.dtype}")
            if not np.isfinite(arr).all():
                raise ValueError(f"{name} contains NaN or inf")
            with np.errstate(over="ignore"):
                arr = arr.astype(self.dtype)
            if not np.isfinite(arr).all():
                raise ValueError(f"{name} overflows {self.dtype.name}")
            checked.append(arr)
        for view, arr in zip(views, checked):
            view[...] = arr

    # ---- inference -----------------------------------------------------------------------------
    def _check_X(self, X: object, name: str = "X", allow_empty: bool = True) -> np.ndarray:
        """Checked X; an unbuilt model is built from its number of columns."""
        if self._built:
            return as_inputs(X, self.in_features, self.dtype, name, allow_empty)
        if not self.layers:
            raise ValueError("this model has no layers: add some with model.add(pynn.Dense(...))")
        try:
            shape = np.shape(X)
        except (TypeError, ValueError):  # ragged input: as_inputs says what is wrong
            shape = ()
        n_features = shape[1] if len(shape) == 2 else 1
        X = as_inputs(X, n_features, self.dtype, name, allow_empty)
        self.build(n_features)
        return X

    def __call__(self, X: object) -> np.ndarray:
        """Raw outputs (logits for the classification losses), shape (n, out_features)."""
        X = self._check_X(X)
        return self._inference(X)

    forward = __call__

    def _require_loss(self, what: str) -> _losses.Loss:
        if self.loss is None:
            raise ValueError(f"{what} needs to know the loss (it decides whether outputs are "
                             f"labels, probabilities or values): call fit or "
                             f"compile(loss=...) first; model(X) gives the raw outputs")
        return self.loss

    def _outputs(self, X: object, batch_size: int | None) -> np.ndarray:
        batch_size = _check_int(batch_size, "batch_size", 1, allow_none=True)
        X = self._check_X(X)
        return self._inference(X) if batch_size is None else self._inference(X, batch_size)

    def predict(self, X: object, batch_size: int | None = None) -> np.ndarray:
        """Class labels for the classification losses, values for regression (mse).

        cross_entropy / kl_divergence: argmax labels (n,); binary_cross_entropy: 0/1 labels
        ((n,) for one output, else (n, k)); hinge: -1/1 labels; mse: values ((n,) for one
        output, else (n, k)). `batch_size` rows are computed at a time (default 4096).
        """
        loss = self._require_loss("predict")
        return loss.predict(self._outputs(X, batch_size))

    def predict_proba(self, X: object, batch_size: int | None = None) -> np.ndarray:
        """Probabilities: softmax rows (cross_entropy, kl_divergence) or per-output sigmoid
        (binary_cross_entropy), shape (n, out_features)."""
        loss = self._require_loss("predict_proba")
        if not loss.has_proba:
            loss.proba(None)  # raises the explanatory error
        return loss.proba(self._outputs(X, batch_size))

    def evaluate(self, X: object, y: object, *, sample_weight: object = None,
                 loss: str | _losses.Loss | None = None, metrics: Sequence | None = None,
                 comm: object = None) -> dict:
        """The loss (and accuracy, for classification losses) on (X, y).

        Returns
        -------
        dict
            ``{"loss": float, "accuracy": float}`` (no "accuracy" for mse). The loss is the
            mean weighted by `sample_weight`. With `comm` (an mpi4py communicator), each rank
            evaluates its share of the rows and every rank gets the reduced result.
        """
        loss_obj = _losses.get(loss) if loss is not None else self._require_loss("evaluate")
        self._require_layers()
        X = self._check_X(X, "X", allow_empty=False)
        target = loss_obj.prepare_target(y, X.shape[0], self.out_features, self.dtype, "y")
        weight = None if sample_weight is None else _losses.prepare_sample_weight(
            sample_weight, X.shape[0], self.dtype)
        dp = None if comm is None else DataParallel(comm)
        return evaluate(self._inference, loss_obj, X, target, weight, dp=dp,
                        metrics=self._metrics(metrics, loss_obj))

    # ---- training ------------------------------------------------------------------------------
    def compile(self, loss: str | _losses.Loss | None = None,
                optimizer: str | _optim.Optimizer | None = None) -> Sequential:
        """Set the loss and/or optimizer without training (fit can also take them)."""
        loss_obj = _losses.get(loss) if loss is not None else None
        opt = _optim.get(optimizer) if optimizer is not None else None
        if loss_obj is not None:
            self._require_layers()
            check_loss_fits(self.layers, loss_obj)
        if opt is not None:
            if self._built:
                opt.bind(self, self.n_params, self.dtype)
            self.optimizer = opt
        if loss_obj is not None:
            self.loss = loss_obj
        return self

    @_one_fit_at_a_time
    def fit(self, X: object, y: object = None, *, loss: str | _losses.Loss | None = None,
            optimizer: str | _optim.Optimizer | None = None, epochs: int = 1,
            batch_size: int | None = 32, validation_data: tuple | None = None,
            validation_split: float = 0.0, shuffle: bool = True, seed: int | None = None,
            verbose: int = 0, callbacks: Iterable[Callback] | None = None,
            sample_weight: object = None, class_weight: dict | str | None = None,
            metrics: Sequence | None = None, comm: object = None,
            steps_per_epoch: int | None = None) -> History:
        """Train with mini-batch gradient descent.

        Parameters
        ----------
        X : array of shape (n, in_features), or an iterable of batches
            Inputs (any real dtype; converted once to the model's dtype; a memory-mapped
            array is read batch by batch). Or, with y None, batches ``(X, y)`` or
            ``(X, y, sample_weight)`` from an iterable (a list, a generator, a
            `pynn.datasets`-style loader): each is checked as it arrives (a bad one is an
            error naming it, the model left at the last finished step).
        y : array
            Targets in the loss's form (see `pynn.losses`); None with batches in X.
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
        class_weight : dict or "balanced", optional
            Weights of the classes in the training loss, multiplied into the sample weights:
            ``{class index: weight}`` (others weigh 1), or "balanced" (n_samples /
            (n_classes · count), scikit-learn's rule). For cross_entropy, kl_divergence and
            single-output binary_cross_entropy / hinge (classes 0 and 1).
        metrics : list of str or Metric, optional
            Reported every epoch besides the loss (and as ``val_<name>`` with validation data):
            "accuracy", "top_k_accuracy", "f1", "auc", "mae", "mse", "r2" (see
            `pynn.nn.metrics`). Classification losses report accuracy anyway.
        steps_per_epoch : int, optional
            With batches from an iterable: batches per epoch (Keras' meaning). Without it an
            epoch runs until the iterable ends (so a generator must be given afresh, or the
            iterable be re-iterable, for more than one epoch).
        comm : mpi4py communicator, optional
            Data-parallel training over its ranks (e.g. ``MPI.COMM_WORLD``; launch with
            ``mpiexec -n N python -m mpi4py script.py``). Every rank passes the same arrays and
            settings; `batch_size` is per rank (the global batch is ``batch_size * comm.size``);
            rank 0's weights and optimizer state are broadcast first; the history, callbacks
            and validation see global (reduced) values; only rank 0 shows progress. Each rank
            uses at most cores / ranks-on-its-host threads.

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
        self._require_layers()
        check_loss_fits(self.layers, loss_obj)
        check_trainable(self.layers)
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

        steps_per_epoch = _check_int(steps_per_epoch, "steps_per_epoch", 1, allow_none=True)
        if y is None:
            if isinstance(X, np.ndarray) or not isinstance(X, Iterable):
                raise TypeError("fit needs y, unless X is an iterable of (X, y) batches")
            if comm is not None or isinstance(opt, _optim.LBFGS):
                raise ValueError("batches from an iterable train in one process with a "
                                 "stochastic optimizer (not with comm= or L-BFGS)")
            return self._fit_stream(X, steps_per_epoch, loss_obj, opt, epochs, callbacks,
                                    verbose, validation_data, metrics)
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
        if class_weight is not None:
            labels = loss_obj.class_labels(target)
            if labels is None:
                raise ValueError(f"class_weight needs one class per sample (cross_entropy, "
                                 f"kl_divergence, or binary_cross_entropy/hinge with one "
                                 f"output); the targets of {loss_obj.name} here are not")
            n_classes = self.out_features if self.out_features > 1 else 2
            per_sample = class_sample_weights(class_weight, labels, n_classes)
            if weight is not None:
                per_sample *= weight
            if not (per_sample > 0).any():
                raise ValueError("class_weight and sample_weight give every sample a weight of 0")
            weight = per_sample.astype(self.dtype)
        if callable(opt.lr):
            opt.learning_rate()  # a broken schedule fails here, before any change
        metric_objs = self._metrics(metrics, loss_obj)
        if isinstance(opt, _optim.LBFGS) and comm is not None:
            raise ValueError("L-BFGS trains in one process: fit without comm= (or with SGD/Adam "
                             "for data-parallel training)")
        trainer = Trainer(self, loss_obj, opt, comm=comm,  # may raise: another model's optimizer
                          metrics=metric_objs)
        data = Batches(X, target, weight, batch_size, world=trainer.world)
        if trainer.world == 1 and not isinstance(opt, _optim.LBFGS):
            check_batch_rows(self.layers, (data.size, n - (data.count - 1) * data.size))
        if comm is not None:
            trainer.synchronize(self._fit_facts(X, target, weight, val, loss_obj, opt, epochs,
                                                batch_size, shuffle, seed))

        # -- state ----------------------------------------------------------------------------
        self.loss, self.optimizer = loss_obj, opt
        self.stop_training = False
        history = History()
        self.history = history
        history.params = {"epochs": epochs, "batch_size": data.size, "samples": n,
                          "batches": data.count, "ranks": trainer.world}
        callbacks = [history] + callbacks
        if verbose and rank_zero(comm):
            bar = ProgressBar(verbose)
            bar.configure(epochs, data.count, self.epochs_trained)
            callbacks.append(bar)
        for cb in callbacks:
            cb.set_model(self)
        self._check_monitors(callbacks, loss_obj, val is not None,
                             [m.name for m in metric_objs])
        batch_hooks = [cb for cb in callbacks if overrides(cb, "on_batch_end")]
        if seed is None:
            seed = int(self.rng.integers(2**63))
            if comm is not None:  # every rank shuffles with rank 0's draw
                seed = trainer.dp.broadcast_object(seed)
        rng = np.random.default_rng(seed)
        trainer.seed_dropout(seed)
        order = np.arange(n, dtype=np.int64) if shuffle and n > 1 else None

        for cb in callbacks:
            cb.on_train_begin()
        previous_threads = get_num_threads()
        try:
            if comm is not None:  # never oversubscribe the cores the ranks share
                set_num_threads(min(previous_threads, trainer.dp.threads_per_rank()))
            if isinstance(opt, _optim.LBFGS):
                self._train_lbfgs(trainer, data, val, epochs, callbacks, history)
            else:
                self._train_epochs(trainer, data, order, rng, val, epochs, callbacks,
                                   batch_hooks, history)
        except KeyboardInterrupt:
            history.interrupted = True
            print(f"\nTraining interrupted: {len(history.epoch)} complete epoch(s) kept in the "
                  f"history.", file=sys.stderr)
        except TrainingDivergedError as exc:
            exc.history = history
            if not any(getattr(cb, "terminates_on_nan", False) for cb in callbacks):
                for cb in callbacks:
                    if isinstance(cb, ProgressBar):
                        cb.on_train_end()
                raise
            history.stopped_early = True  # TerminateOnNaN: a clean stop, same weights
            if rank_zero(comm):
                print(f"TerminateOnNaN: {exc}", file=sys.stderr)
        finally:
            if get_num_threads() != previous_threads:
                set_num_threads(previous_threads)
        for cb in callbacks:
            cb.on_train_end()
        return history

    @staticmethod
    def _check_monitors(callbacks: list, loss: _losses.Loss, validation: bool,
                        metric_names: list) -> None:
        """A callback watching a metric this fit never logs fails now, not after an epoch.
        (Keys fit does not know may come from another callback's logs: those are let be.)"""
        logged = {"loss", "lr"} | ({"accuracy"} if loss.has_accuracy else set())
        logged |= set(metric_names)
        if validation:
            logged |= {"val_" + k for k in logged - {"lr"}}
        known = {"loss", "lr"} | set(_metrics.METRICS)
        known |= {"val_" + k for k in known}
        for cb in callbacks:
            monitor = getattr(cb, "monitor", None)
            if isinstance(monitor, str) and monitor in known and monitor not in logged:
                hint = " (pass validation_data or validation_split to fit)" \
                    if monitor.startswith("val_") and not validation else ""
                raise ValueError(f"{type(cb).__name__} monitors {monitor!r}, which this fit "
                                 f"does not log{hint}; it logs {sorted(logged)}")

    def _metrics(self, metrics: object, loss: _losses.Loss) -> list:
        """Bound metric objects (accuracy left to the built-in one of classification losses)."""
        if metrics is None:
            return []
        if isinstance(metrics, (str, _metrics.Metric)):
            metrics = [metrics]
        try:
            metrics = list(metrics)
        except TypeError:
            raise TypeError(f"metrics must be a list of names or Metric objects, got "
                            f"{type(metrics).__name__}") from None
        bound = []
        for m in metrics:
            metric = _metrics.get(m)
            if metric.name == "accuracy" and loss.has_accuracy:
                continue
            bound.append(copy.deepcopy(metric).bind(loss, self.out_features))
        return bound

    def _fit_facts(self, X, target, weight, val, loss, opt, epochs, batch_size, shuffle,
                   seed) -> dict:
        """What every rank of a data-parallel fit must agree on (cheap to compute)."""
        def fingerprint(a: np.ndarray) -> int:
            rows = min(len(a), 64)
            return zlib.crc32(np.ascontiguousarray(a[:rows]).tobytes()
                              + np.ascontiguousarray(a[len(a) - rows:]).tobytes())

        return {"architecture": [layer.get_config() for layer in self.layers],
                "model seed": self.seed, "dtype": self.dtype.name, "samples": X.shape[0],
                "data (first and last rows)": fingerprint(X),
                "targets": (target.shape, target.dtype.str, fingerprint(target)),
                "sample weights": None if weight is None else fingerprint(weight),
                "validation rows": None if val is None else val[0].shape[0],
                "loss": loss.name, "optimizer": repr(opt), "epochs": epochs,
                "batch_size": batch_size, "shuffle": bool(shuffle), "seed": seed}

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

    def _train_epochs(self, trainer: Trainer, data: Batches, order: np.ndarray | None,
                      rng: np.random.Generator, val: tuple | None, epochs: int, callbacks: list,
                      batch_hooks: list, history: History) -> None:
        has_acc = trainer.accuracy
        on_batch = None
        if batch_hooks:
            def on_batch(batch, size, loss_sum, correct, done):
                logs = {"loss": loss_sum / done, "size": size}
                if has_acc:
                    logs["accuracy"] = correct / done
                for cb in batch_hooks:
                    cb.on_batch_end(batch, logs)

        for _ in range(epochs):
            epoch = self.epochs_trained
            for cb in callbacks:
                cb.on_epoch_begin(epoch)
            if order is not None:
                rng.shuffle(order)
            result = trainer.run_epoch(data, order, epoch=epoch, on_batch=on_batch)
            logs = {"loss": result.loss}
            if has_acc:
                logs["accuracy"] = result.accuracy
            logs.update(result.metrics)
            if val is not None:
                scores = trainer.evaluate(*val)
                logs.update({"val_" + key: value for key, value in scores.items()})
            logs["lr"] = result.lr
            self.epochs_trained += 1
            for cb in callbacks:
                cb.on_epoch_end(epoch, logs)
            if self.stop_training:
                history.stopped_early = True
                break

    def _stream(self, source: Iterable, steps: int | None, loss: _losses.Loss, epoch: int,
                what: str = "batch"):
        """Checked (X, target, weight) batches from a user's iterable."""
        iterator = iter(source)
        k = 0
        while steps is None or k < steps:
            try:
                item = next(iterator)
            except StopIteration:
                if steps is not None:
                    raise ValueError(f"the data source ran out after {k} {what}es in epoch "
                                     f"{epoch + 1}, steps_per_epoch is {steps}") from None
                return
            where = f"{what} {k} of epoch {epoch + 1}"
            if not isinstance(item, tuple) or len(item) not in (2, 3):
                raise TypeError(f"{where}: expected a tuple (X, y) or (X, y, sample_weight), "
                                f"got {type(item).__name__}")
            X = self._check_X(item[0], f"X of {where}", allow_empty=False)
            target = loss.prepare_target(item[1], X.shape[0], self.out_features, self.dtype,
                                         f"y of {where}")
            weight = None
            if len(item) == 3 and item[2] is not None:
                weight = _losses.prepare_sample_weight(item[2], X.shape[0], self.dtype,
                                                       f"sample_weight of {where}")
            yield X, target, weight
            k += 1

    def _fit_stream(self, source, steps_per_epoch, loss_obj, opt, epochs, callbacks, verbose,
                    validation_data, metrics) -> History:
        """fit on batches from an iterable: the same engine, one step per batch."""
        if steps_per_epoch is None and epochs > 1 and iter(source) is source:
            raise ValueError("a generator (a one-pass iterator) runs out after one epoch: "
                             "give steps_per_epoch, or an iterable that can be iterated again")
        metric_objs = self._metrics(metrics, loss_obj)
        if not self._built:  # the first batch tells the input size
            source = _peek_build(self, source)
        trainer = Trainer(self, loss_obj, opt, metrics=metric_objs)
        if any(isinstance(layer, Dropout) for layer in self.layers):
            trainer.seed_dropout(int(self.rng.integers(2**63)))
        self.loss, self.optimizer = loss_obj, opt
        self.stop_training = False
        history = History()
        self.history = history
        history.params = {"epochs": epochs, "steps": steps_per_epoch}
        callbacks = [history] + list(callbacks)
        if verbose:
            bar = ProgressBar(verbose)
            bar.configure(epochs, steps_per_epoch or 0, self.epochs_trained)
            callbacks.append(bar)
        for cb in callbacks:
            cb.set_model(self)
        self._check_monitors(callbacks, loss_obj, validation_data is not None,
                             [m.name for m in metric_objs])
        val = validation_data
        if isinstance(val, (tuple, list)) and len(val) in (2, 3) and not isinstance(
                val[0], tuple):
            val = self._check_validation(val, loss_obj)
        for cb in callbacks:
            cb.on_train_begin()
        try:
            for _ in range(epochs):
                epoch = self.epochs_trained
                for cb in callbacks:
                    cb.on_epoch_begin(epoch)
                result = trainer.run_stream(self._stream(source, steps_per_epoch, loss_obj,
                                                         epoch), epoch=epoch)
                logs = {"loss": result.loss}
                if trainer.accuracy:
                    logs["accuracy"] = result.accuracy
                logs.update(result.metrics)
                if val is not None:
                    logs.update({"val_" + k: v for k, v in
                                 self._evaluate_source(trainer, val, loss_obj).items()})
                logs["lr"] = result.lr
                self.epochs_trained += 1
                for cb in callbacks:
                    cb.on_epoch_end(epoch, logs)
                if self.stop_training:
                    history.stopped_early = True
                    break
        except KeyboardInterrupt:
            history.interrupted = True
        except TrainingDivergedError as exc:
            exc.history = history
            raise
        for cb in callbacks:
            cb.on_train_end()
        return history

    def _evaluate_source(self, trainer: Trainer, val: object, loss: _losses.Loss) -> dict:
        """Validation scores over checked arrays, or over the batches of an iterable."""
        if isinstance(val, tuple) and isinstance(val[0], np.ndarray):
            return trainer.evaluate(*val)
        totals: dict = {}
        count = 0
        for X, target, weight in self._stream(val, None, loss, 0, "validation batch"):
            scores = trainer.evaluate(X, target, weight)
            for key, value in scores.items():
                totals[key] = totals.get(key, 0.0) + value * X.shape[0]
            count += X.shape[0]
        if not count:
            raise ValueError("validation_data gave no batches")
        return {key: value / count for key, value in totals.items()}

    def _train_lbfgs(self, trainer: Trainer, data: Batches, val: tuple | None, epochs: int,
                     callbacks: list, history: History) -> None:
        """Full-batch L-BFGS: every iteration is an epoch for the history and callbacks."""
        opt = trainer.optimizer

        def on_iteration(iteration: int, loss: float) -> None:
            epoch = self.epochs_trained
            for cb in callbacks:
                cb.on_epoch_begin(epoch)
            logs = {"loss": loss}
            if trainer.accuracy or trainer.metrics:
                scores = trainer.evaluate(data.X, data.target, data.weight)
                logs.update({k: v for k, v in scores.items() if k != "loss"})
            if val is not None:
                scores = trainer.evaluate(*val)
                logs.update({"val_" + key: value for key, value in scores.items()})
            self.epochs_trained += 1
            opt.epoch += 1
            for cb in callbacks:
                cb.on_epoch_end(epoch, logs)
            if self.stop_training:
                history.stopped_early = True
                raise StopIteration

        if epochs == 0:
            return
        result = run_lbfgs(trainer, data.X, data.target, data.weight, max_iter=epochs,
                           max_fun=opt.max_fun, tol=opt.tol, on_iteration=on_iteration)
        if not (np.isfinite(result.fun) and ops.all_finite(self.params)):
            raise TrainingDivergedError(f"L-BFGS ended at a non-finite loss ({result.fun}): "
                                        f"{result.message}", self.epochs_trained, 1)

    # ---- copying, pickling ---------------------------------------------------------------------
    def __getstate__(self) -> dict:
        return {"config": self.get_config(), "layers": self.layers,
                "params": np.array(self.params) if self._built else None, "loss": self.loss,
                "optimizer": self.optimizer, "history": self.history, "rng": self.rng,
                "epochs_trained": self.epochs_trained, "metadata": self.metadata}

    def __setstate__(self, state: dict) -> None:
        self.dtype = np.dtype(state["config"]["dtype"])
        self.seed = state["config"]["seed"]
        # Fresh layer objects: a shallow copy.copy must not re-point the original's views.
        self.layers = [copy.copy(layer) for layer in state["layers"]]
        self._built, self._input_features = False, None
        if state["params"] is not None:
            self._allocate()
            self.params[...] = state["params"]
            self._built = True
        self.rng = state["rng"]
        self.loss = state["loss"]
        self.optimizer = state["optimizer"]
        if self.optimizer is not None and self._built:
            # A shallow copy shares the optimizer with the original: state of its own instead.
            self.optimizer = copy.deepcopy(self.optimizer)
            self.optimizer.release()
            self.optimizer.bind(self, self.n_params, self.dtype)  # keeps the copied arrays
        self.history = state["history"]
        self.stop_training = False
        self.epochs_trained = state["epochs_trained"]
        self.metadata = state.get("metadata", {})

    # ---- PyTorch's names and layouts -----------------------------------------------------------
    def state_dict(self) -> dict:
        """The parameters under PyTorch's names and layouts: ``{"0.weight": (out, in) array,
        "0.bias": (out,) array, "2.weight": ...}``, copies (BatchNorm adds ``running_mean``,
        ``running_var`` and ``num_batches_tracked``).

        The keys are those of `pynn.to_torch(model).state_dict()`: numbered by the position of
        each module in that torch.nn.Sequential (`pynn.model.torch_layout`). So
        ``torch_module.load_state_dict({k: torch.from_numpy(v) for k, v in
        model.state_dict().items()})`` fills a module built like it.
        """
        self._require_built("state_dict")
        state = {}
        for layer, (position, arrays) in zip(self.layers, torch_entries(self.layers)):
            for key, attr, transposed in arrays:
                arr = getattr(layer, attr)
                state[key] = np.ascontiguousarray(arr.T) if transposed else arr.copy()
            if isinstance(layer, BatchNorm):
                state[f"{position}.num_batches_tracked"] = np.array(layer.batches_tracked,
                                                                    dtype=np.int64)
        return state

    def load_state_dict(self, state_dict: dict) -> None:
        """Set the parameters from `state_dict()`'s form (NumPy arrays or torch tensors).

        Every key, shape and value is checked before any parameter changes: no key missing or
        unexpected, real finite numbers that fit the model's dtype. An unbuilt model takes its
        input size from ``"0.weight"`` and is built.
        """
        if not hasattr(state_dict, "keys") or not hasattr(state_dict, "__getitem__"):
            raise TypeError(f"state_dict must be a mapping of names to arrays, got "
                            f"{type(state_dict).__name__}")
        self._require_layers()
        layout = torch_entries(self.layers)
        counters = {f"{position}.num_batches_tracked": layer for layer, (position, _) in
                    zip(self.layers, layout) if isinstance(layer, BatchNorm)}
        expected = [key for _, arrays in layout for key, _, _ in arrays] + list(counters)
        missing = [k for k in expected if k not in state_dict]
        unexpected = [k for k in state_dict if k not in expected]
        if missing or unexpected:
            raise ValueError(f"state_dict does not fit this model: missing keys {missing}, "
                             f"unexpected keys {unexpected} (expected {expected})")

        def as_array(key: str) -> np.ndarray:
            value = state_dict[key]
            if hasattr(value, "detach"):  # a torch tensor (on any device, maybe bfloat16)
                value = value.detach().cpu()
                try:
                    return np.asarray(value.numpy())
                except (TypeError, RuntimeError):  # dtypes NumPy lacks: float64 holds them
                    return np.asarray(value.double().numpy())
            return np.asarray(value)

        in_features = self.layers[0].in_features
        if in_features is None:
            first_key = layout[0][1][0][0] if layout[0][1] else None
            first = as_array(first_key) if first_key else None
            if first is None or first.ndim not in (1, 2):
                raise ValueError("state_dict cannot give this model its input size: build it "
                                 "first (model.build(n))")
            in_features = first.shape[-1]
        widths, width = [], in_features
        for layer in self.layers:  # each layer's (in, out) once the input size is known
            fan_in = layer.in_features if layer.in_features is not None else width
            width = layer.out_features if layer.out_features is not None else fan_in
            widths.append((fan_in, width))
        checked = []
        for (fan_in, fan_out), (_, arrays) in zip(widths, layout):
            for key, attr, transposed in arrays:
                shape = (fan_out, fan_in) if transposed else (fan_out,)
                arr = as_array(key)
                if arr.shape != shape:
                    raise ValueError(f"state_dict[{key!r}] must have shape {shape}, got "
                                     f"{arr.shape}")
                if arr.dtype.kind not in "fiu":
                    raise TypeError(f"state_dict[{key!r}] must be real numbers, got dtype "
                                    f"{arr.dtype}")
                if not np.isfinite(arr).all():
                    raise ValueError(f"state_dict[{key!r}] contains NaN or inf")
                with np.errstate(over="ignore"):
                    cast = arr.astype(self.dtype)
                if not np.isfinite(cast).all():
                    raise ValueError(f"state_dict[{key!r}] overflows {self.dtype.name}")
                if attr == "running_var" and (cast < 0).any():
                    raise ValueError(f"state_dict[{key!r}] must be >= 0 (a variance)")
                checked.append(cast.T if transposed else cast)
        counts = {}
        for key in counters:
            count = as_array(key)
            if count.shape != () or count.dtype.kind not in "iu" or int(count) < 0:
                raise ValueError(f"state_dict[{key!r}] must be an integer >= 0")
            counts[key] = int(count)
        if not self._built:
            self.build(in_features)
        values = iter(checked)
        for layer, (_, arrays) in zip(self.layers, layout):
            for _, attr, _ in arrays:
                getattr(layer, attr)[...] = next(values)
        for key, layer in counters.items():
            layer.batches_tracked = counts[key]
