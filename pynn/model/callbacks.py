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
import tempfile
import time
import weakref
from typing import Callable

import numpy as np

__all__ = ["Callback", "EarlyStopping", "History", "LambdaCallback", "ProgressBar"]


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
            path = os.fspath(path)
            directory = os.path.dirname(os.path.abspath(path))
            suffix = os.path.splitext(path)[1] or ".png"
            fd, tmp = tempfile.mkstemp(prefix=".plot-", suffix=suffix, dir=directory)
            try:
                with os.fdopen(fd, "wb") as f:
                    fig.savefig(f, format=suffix[1:], dpi=120)
                os.replace(tmp, path)
            except BaseException:
                if os.path.exists(tmp):
                    os.unlink(tmp)
                raise
        return fig


class EarlyStopping(Callback):
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
        if not isinstance(monitor, str):
            raise TypeError(f"monitor must be a str, got {type(monitor).__name__}")
        if isinstance(patience, bool) or not isinstance(patience, (int, np.integer)):
            raise TypeError(f"patience must be an int, got {type(patience).__name__}")
        if patience < 0:
            raise ValueError(f"patience must be >= 0, got {patience}")
        min_delta = float(min_delta)
        if not math.isfinite(min_delta) or min_delta < 0:
            raise ValueError(f"min_delta must be a finite number >= 0, got {min_delta}")
        if mode not in ("auto", "min", "max"):
            raise ValueError(f"mode must be 'auto', 'min' or 'max', got {mode!r}")
        self.monitor = monitor
        self.patience = int(patience)
        self.min_delta = min_delta
        self.mode = ("max" if "acc" in monitor else "min") if mode == "auto" else mode
        self.restore_best_weights = bool(restore_best_weights)
        self.verbose = verbose
        self._reset()

    def _reset(self) -> None:
        self.best = math.inf if self.mode == "min" else -math.inf
        self.best_epoch: int | None = None
        self.stopped_epoch: int | None = None
        self.wait = 0
        self._best_params: np.ndarray | None = None

    def on_train_begin(self, logs=None) -> None:
        self._reset()

    def _improved(self, value: float) -> bool:
        if self.mode == "min":
            return value < self.best - self.min_delta
        return value > self.best + self.min_delta

    def on_epoch_end(self, epoch: int, logs=None) -> None:
        logs = logs or {}
        if self.monitor not in logs:
            hint = " (pass validation_data or validation_split to fit)" \
                if self.monitor.startswith("val_") else ""
            raise ValueError(f"EarlyStopping monitors {self.monitor!r}, which this fit does not "
                             f"produce{hint}; available: {sorted(logs)}")
        value = float(logs[self.monitor])
        if self._improved(value):
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
