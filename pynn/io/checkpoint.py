"""ModelCheckpoint: save the model during training (a callback in the io layer: it writes files
with `pynn.save`, which the model layer must not import)."""
from __future__ import annotations

import os
import sys

from ..model.callbacks import Callback, Monitor
from .files import save

__all__ = ["ModelCheckpoint"]


class ModelCheckpoint(Callback, Monitor):
    """Save the model at the end of epochs (Keras' ModelCheckpoint), atomically.

    Parameters
    ----------
    filepath : str or path-like
        May hold ``{epoch}`` (1-based, as Keras) and any logged value, with a format:
        ``"ckpt-{epoch:02d}-{val_loss:.4f}.npz"``.
    monitor : str, default "val_loss"
        What `save_best_only` compares.
    save_best_only : bool, default False
        Save only when `monitor` improved (the file then always holds the best model).
    mode : {"auto", "min", "max"}, default "auto"
    verbose : int, default 0
    """

    def __init__(self, filepath: str | os.PathLike, monitor: str = "val_loss",
                 save_best_only: bool = False, mode: str = "auto", verbose: int = 0) -> None:
        if not isinstance(filepath, (str, os.PathLike)):
            raise TypeError(f"filepath must be a str or path, got {type(filepath).__name__}")
        Monitor.__init__(self, monitor, mode)
        self.filepath = os.fspath(filepath)
        self.save_best_only = bool(save_best_only)
        self.verbose = verbose
        if not self.save_best_only:
            self.monitor = None  # nothing to watch: fit need not log anything in particular

    def on_train_begin(self, logs=None) -> None:
        self.best = self.worst()

    def on_epoch_end(self, epoch: int, logs=None) -> None:
        logs = logs or {}
        if self.save_best_only:
            value = self.read(logs, "ModelCheckpoint")
            if not self.improved(value):
                return
            self.best = value
        try:
            path = self.filepath.format(epoch=epoch + 1, **logs)
        except (KeyError, IndexError, ValueError) as exc:
            raise ValueError(f"ModelCheckpoint: cannot fill in filepath {self.filepath!r} from "
                             f"epoch and {sorted(logs)}: {exc}") from None
        save(self.model, path)
        if self.verbose:
            print(f"ModelCheckpoint: epoch {epoch + 1}: saved {path}", file=sys.stderr)
