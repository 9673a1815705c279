"""Training callbacks: History (with plots), EarlyStopping, LambdaCallback, the progress bar.

A callback's hooks receive a ``logs`` dict: per batch ``{"loss", "accuracy", "size"}`` (running
means over the epoch so far), per epoch ``{"loss", "accuracy", "val_loss", "val_accuracy",
"lr"}`` (keys present when they apply). Setting ``model.stop_training = True`` in a hook ends
`fit` after the current epoch.
"""
from __future__ import annotations

import math
import os
import sys
import time
import weakref
from typing import Callable

import numpy as np

from .._atomic import write_atomically

__all__ = ["CSVLogger", "Callback", "EarlyStopping", "History", "LambdaCallback", "Monitor",
           "ProgressBar", "ReduceLROnPlateau", "TerminateOnNaN"]


class Callback:
    """Base class: override any of the hooks below.

    ``self.model`` is the model being trained, held by a weak reference: a model and its
    History refer to each other, and a strong reference both ways would keep dropped models
    (and their buffers) alive until the garbage collector runs.
    """

    _model_ref = None

    @property
    def model(self):
        return self._model_ref() if self._model_ref is not None else None

    @model.setter
    def model(self, model) -> None:
        self._model_ref = None if model is None else weakref.ref(model)

    def set_model(self, model) -> None:
        self.model = model

    def on_train_begin(self, logs: dict | None = None) -> None:
        pass

    def on_train_end(self, logs: dict | None = None) -> None:
        pass

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        pass

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        pass

    def on_batch_end(self, batch: int, logs: dict | None = None) -> None:
        pass

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state.pop("_model_ref", None)  # a callback never drags its model into a pickle
        return state


def overrides(callback: Callback, hook: str) -> bool:
    """Whether the callback does something in `hook` (skipped per batch otherwise)."""
    return hook in vars(callback) or getattr(type(callback), hook) is not getattr(Callback, hook)


class History(Callback):
    """What `fit` returns: per-epoch metrics.

    Attributes
    ----------
    history : dict of str to list of float
        ``loss`` and, where they apply, ``accuracy``, ``val_loss``, ``val_accuracy``, ``lr``.
    epoch : list of int
        The epoch indices recorded (counted over every fit of the model).
    interrupted : bool
        True when training was stopped by KeyboardInterrupt (the history so far is kept).
    stopped_early : bool
        True when a callback (e.g. EarlyStopping) ended training before `epochs`.
    """

    def __init__(self) -> None:
        self.history: dict[str, list[float]] = {}
        self.epoch: list[int] = []
        self.params: dict = {}
        self.interrupted = False
        self.stopped_early = False

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self.epoch.append(epoch)
        for key, value in (logs or {}).items():
            self.history.setdefault(key, []).append(float(value))

    def __repr__(self) -> str:
        keys = ", ".join(self.history)
        return f"History(epochs={len(self.epoch)}, keys=[{keys}])"

    def plot(self, path: str | os.PathLike | None = None, *, title: str | None = None):
        """Draw loss and accuracy per epoch, training and validation (needs matplotlib).

        Parameters
        ----------
        path : str or path-like, optional
            Where to write the image (format from the suffix, e.g. .png, .svg, .pdf). Written
            atomically: an existing file is replaced only by a complete new one.
        title : str, optional
            Figure title.

        Returns
        -------
        matplotlib.figure.Figure
        """
        try:
            from matplotlib.figure import Figure
            from matplotlib.ticker import MaxNLocator
        except ImportError:
            raise ImportError("History.plot needs matplotlib: pip install matplotlib") from None
        if not self.epoch:
            raise ValueError("the history is empty: there is nothing to plot")
        panels = [("loss", "loss")]
        if "accuracy" in self.history or "val_accuracy" in self.history:
            panels.append(("accuracy", "accuracy"))
        # A bare Figure (no pyplot): no global backend or figure state is touched.
        fig = Figure(figsize=(5 * len(panels), 3.8), layout="constrained")
        epochs = [e + 1 for e in self.epoch]
        for i, (key, label) in enumerate(panels):
            ax = fig.add_subplot(1, len(panels), i + 1)
            for prefix, style in (("", "-o"), ("val_", "--s")):
                values = self.history.get(prefix + key)
                if values:
                    ax.plot(epochs[-len(values):], values, style, markersize=3,
                            label="validation" if prefix else "training")
            ax.set_xlabel("epoch")
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # epochs are whole numbers
            ax.set_ylabel(label)
            ax.grid(alpha=0.3)
            ax.legend()
        if title:
            fig.suptitle(title)
        if path is not None:
            suffix = os.path.splitext(os.fspath(path))[1] or ".png"
            write_atomically(path, lambda f: fig.savefig(f, format=suffix[1:], dpi=120))
        return fig


def _count(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < 0:
        raise ValueError(f"{name} must be >= 0, got {value}")
    return int(value)


class Monitor:
    """A logged metric to watch: its key, which direction is better and by how much (Keras'
    ``monitor``, ``mode`` and ``min_delta``). `fit` checks before training that the key will be
    logged."""

    def __init__(self, monitor: str = "val_loss", mode: str = "auto",
                 min_delta: float = 0.0) -> None:
        if not isinstance(monitor, str):
            raise TypeError(f"monitor must be a str, got {type(monitor).__name__}")
        min_delta = float(min_delta)
        if not math.isfinite(min_delta) or min_delta < 0:
            raise ValueError(f"min_delta must be a finite number >= 0, got {min_delta}")
        if mode not in ("auto", "min", "max"):
            raise ValueError(f"mode must be 'auto', 'min' or 'max', got {mode!r}")
        self.monitor = monitor
        self.min_delta = min_delta
        self.mode = ("max" if "acc" in monitor or monitor.endswith("r2")
                     else "min") if mode == "auto" else mode
        self.best = self.worst()

    def worst(self) -> float:
        return math.inf if self.mode == "min" else -math.inf

    def improved(self, value: float) -> bool:
        if self.mode == "min":
            return value < self.best - self.min_delta
        return value > self.best + self.min_delta

    def read(self, logs: dict | None, who: str) -> float:
        logs = logs or {}
        if self.monitor not in logs:
            hint = " (pass validation_data or validation_split to fit)" \
                if self.monitor.startswith("val_") else ""
            raise ValueError(f"{who} monitors {self.monitor!r}, which this fit does not "
                             f"produce{hint}; available: {sorted(logs)}")
        return float(logs[self.monitor])


class EarlyStopping(Callback, Monitor):
    """Stop training when a monitored metric stops improving.

    Parameters
    ----------
    monitor : str, default "val_loss"
        A key of the epoch logs: loss, accuracy, val_loss, val_accuracy.
    patience : int, default 0
        Epochs without improvement to wait before stopping.
    min_delta : float, default 0
        Smallest change that counts as an improvement.
    mode : {"auto", "min", "max"}, default "auto"
        Whether smaller or larger is better; "auto" reads it from the name ("acc" → max).
    restore_best_weights : bool, default False
        At the end of training, put back the weights of the best epoch.
    verbose : int, default 0
        Print a line when stopping.

    Attributes
    ----------
    best : float
        The best value seen.
    best_epoch : int or None
        The epoch it was seen at.
    stopped_epoch : int or None
        The epoch training stopped at (None if it ran to the end).
    """

    def __init__(self, monitor: str = "val_loss", patience: int = 0, min_delta: float = 0.0,
                 mode: str = "auto", restore_best_weights: bool = False,
                 verbose: int = 0) -> None:
        Monitor.__init__(self, monitor, mode, min_delta)
        self.patience = _count(patience, "patience")
        self.restore_best_weights = bool(restore_best_weights)
        self.verbose = verbose
        self._reset()

    def _reset(self) -> None:
        self.best = self.worst()
        self.best_epoch: int | None = None
        self.stopped_epoch: int | None = None
        self.wait = 0
        self._best_params: np.ndarray | None = None

    def on_train_begin(self, logs=None) -> None:
        self._reset()

    def on_epoch_end(self, epoch: int, logs=None) -> None:
        value = self.read(logs, "EarlyStopping")
        if self.improved(value):
            self.best, self.best_epoch, self.wait = value, epoch, 0
            if self.restore_best_weights:
                if self._best_params is None:
                    self._best_params = self.model.params.copy()
                else:
                    np.copyto(self._best_params, self.model.params)
            return
        self.wait += 1
        if self.wait > self.patience:
            self.stopped_epoch = epoch
            self.model.stop_training = True
            if self.verbose:
                print(f"EarlyStopping: {self.monitor} has not improved for {self.wait} epochs "
                      f"(best {self.best:.6g} at epoch {self.best_epoch + 1}); stopping.",
                      file=sys.stderr)

    def on_train_end(self, logs=None) -> None:
        if self.restore_best_weights and self._best_params is not None:
            np.copyto(self.model.params, self._best_params)
            if self.verbose:
                print(f"EarlyStopping: restored the weights of epoch {self.best_epoch + 1}.",
                      file=sys.stderr)

    def __repr__(self) -> str:
        return (f"EarlyStopping(monitor={self.monitor!r}, patience={self.patience}, "
                f"min_delta={self.min_delta:g}, mode={self.mode!r}, "
                f"restore_best_weights={self.restore_best_weights})")


class LambdaCallback(Callback):
    """A callback from plain functions: ``LambdaCallback(on_epoch_end=lambda e, logs: ...)``."""

    def __init__(self, on_epoch_begin: Callable | None = None,
                 on_epoch_end: Callable | None = None,
                 on_batch_end: Callable | None = None,
                 on_train_begin: Callable | None = None,
                 on_train_end: Callable | None = None) -> None:
        for name, fn in list(locals().items()):
            if name != "self" and fn is not None:
                if not callable(fn):
                    raise TypeError(f"{name} must be callable, got {type(fn).__name__}")
                setattr(self, name, fn)


class ReduceLROnPlateau(Callback, Monitor):
    """Divide the learning rate by 1/`factor` when a monitored metric stops improving (Keras).

    Parameters
    ----------
    monitor : str, default "val_loss"
    factor : float, default 0.1
        New rate = rate * factor, in (0, 1).
    patience : int, default 10
        Epochs without improvement (by `min_delta`) before the rate is reduced.
    min_delta : float, default 1e-4
    cooldown : int, default 0
        Epochs to wait after a reduction before counting again.
    min_lr : float, default 0
        The rate never goes below this.
    mode : {"auto", "min", "max"}, default "auto"
    verbose : int, default 0

    The optimizer's learning rate must be a number (a schedule already decides the rate).
    """

    def __init__(self, monitor: str = "val_loss", factor: float = 0.1, patience: int = 10,
                 min_delta: float = 1e-4, cooldown: int = 0, min_lr: float = 0.0,
                 mode: str = "auto", verbose: int = 0) -> None:
        Monitor.__init__(self, monitor, mode, min_delta)
        factor = float(factor)
        if not 0.0 < factor < 1.0:
            raise ValueError(f"factor must be in (0, 1), got {factor}")
        min_lr = float(min_lr)
        if not math.isfinite(min_lr) or min_lr < 0:
            raise ValueError(f"min_lr must be a finite number >= 0, got {min_lr}")
        self.factor, self.min_lr = factor, min_lr
        self.patience = _count(patience, "patience")
        self.cooldown = _count(cooldown, "cooldown")
        self.verbose = verbose
        self.wait = self.cooldown_left = 0

    def on_train_begin(self, logs=None) -> None:
        if callable(self.model.optimizer.lr):
            raise TypeError("ReduceLROnPlateau changes a numeric learning rate; this optimizer's "
                            "is a schedule")
        self.best, self.wait, self.cooldown_left = self.worst(), 0, 0

    def on_epoch_end(self, epoch: int, logs=None) -> None:
        value = self.read(logs, "ReduceLROnPlateau")
        if self.cooldown_left > 0:
            self.cooldown_left -= 1
            self.wait = 0
        if self.improved(value):
            self.best, self.wait = value, 0
            return
        if self.cooldown_left > 0:
            return
        self.wait += 1
        if self.wait >= self.patience:
            opt = self.model.optimizer
            new = max(opt.lr * self.factor, self.min_lr)
            if new < opt.lr:
                if self.verbose:
                    print(f"ReduceLROnPlateau: epoch {epoch + 1}: learning rate {opt.lr:g} -> "
                          f"{new:g}", file=sys.stderr)
                opt.lr = new
            self.cooldown_left, self.wait = self.cooldown, 0


class CSVLogger(Callback):
    """Append every epoch's logs to a CSV file (Keras): a header ``epoch,<keys>``, then one
    row per epoch, flushed as it is written.

    Parameters
    ----------
    filename : str or path-like
    separator : str, default ","
    append : bool, default False
        Continue an existing file (no second header) instead of starting a new one.
    """

    def __init__(self, filename: str | os.PathLike, separator: str = ",",
                 append: bool = False) -> None:
        if not isinstance(filename, (str, os.PathLike)):
            raise TypeError(f"filename must be a str or path, got {type(filename).__name__}")
        if not isinstance(separator, str) or len(separator) != 1:
            raise ValueError(f"separator must be one character, got {separator!r}")
        self.filename, self.separator, self.append = os.fspath(filename), separator, bool(append)
        self._file = None
        self._keys: list | None = None

    def on_train_begin(self, logs=None) -> None:
        resume = self.append and os.path.exists(self.filename) \
            and os.path.getsize(self.filename) > 0
        # open from the first epoch to the last; closed in on_train_end
        self._file = open(self.filename, "a" if self.append else "w", newline="")  # noqa: SIM115
        self._keys = None
        if resume:
            with open(self.filename, newline="") as f:
                header = f.readline().rstrip("\r\n").split(self.separator)
            self._keys = header[1:]

    def on_epoch_end(self, epoch: int, logs=None) -> None:
        import csv

        logs = logs or {}
        writer = csv.writer(self._file, delimiter=self.separator)
        if self._keys is None:
            self._keys = sorted(logs)
            writer.writerow(["epoch"] + self._keys)
        writer.writerow([epoch] + [logs.get(k, "") for k in self._keys])
        self._file.flush()

    def on_train_end(self, logs=None) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def __getstate__(self) -> dict:
        state = super().__getstate__()
        state["_file"] = None
        return state


class TerminateOnNaN(Callback):
    """Stop training cleanly when the loss becomes NaN or infinite (Keras).

    Without it `fit` raises `pynn.TrainingDivergedError`; with it `fit` returns the history so
    far (``history.stopped_early``), the weights at the last finite step either way.
    """

    terminates_on_nan = True


class ProgressBar(Callback):
    """Live loss/accuracy while training: a tqdm bar per epoch when tqdm is installed
    (verbose=1), otherwise — or with verbose=2 — one line per epoch."""

    def __init__(self, verbose: int = 1, file=None) -> None:
        self.verbose = verbose
        self.file = file
        self._tqdm = None
        if verbose == 1:
            try:
                from tqdm.auto import tqdm
                self._tqdm = tqdm
            except ImportError:
                self._tqdm = None
        self._bar = None
        self._epochs = 0
        self._batches = 0
        self._last = 0.0

    def configure(self, epochs: int, batches: int, first_epoch: int) -> None:
        self._epochs, self._batches, self._first = epochs, batches, first_epoch

    def on_epoch_begin(self, epoch: int, logs=None) -> None:
        self._start = time.perf_counter()
        if self._tqdm is not None:
            self._bar = self._tqdm(total=self._batches, unit="batch", leave=True,
                                   desc=f"epoch {epoch - self._first + 1}/{self._epochs}",
                                   file=self.file or sys.stderr, dynamic_ncols=True)

    def on_batch_end(self, batch: int, logs=None) -> None:
        if self._bar is None:
            return
        self._bar.update(1)
        now = time.perf_counter()
        if now - self._last > 0.2 or batch + 1 == self._batches:
            self._last = now
            self._bar.set_postfix_str(_format(logs), refresh=False)

    def on_epoch_end(self, epoch: int, logs=None) -> None:
        seconds = time.perf_counter() - self._start
        if self._bar is not None:
            self._bar.set_postfix_str(_format(logs), refresh=True)
            self._bar.close()
            self._bar = None
        else:
            print(f"epoch {epoch - self._first + 1}/{self._epochs} - {seconds:.2f}s - "
                  f"{_format(logs)}", file=self.file or sys.stderr, flush=True)

    def on_train_end(self, logs=None) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


def _format(logs: dict | None) -> str:
    return " ".join(f"{k}={v:.4f}" for k, v in (logs or {}).items()
                    if k not in ("size", "batch") and isinstance(v, (int, float)))
