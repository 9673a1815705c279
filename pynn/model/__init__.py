"""The model: `Sequential` (layers over one flat parameter buffer, config, weights), its
callbacks and History, and the gradient check. Training runs on `pynn.engine`."""
from . import callbacks, gradcheck
from .callbacks import (
    Callback,
    CSVLogger,
    EarlyStopping,
    History,
    LambdaCallback,
    Monitor,
    ReduceLROnPlateau,
    TerminateOnNaN,
)
from .sequential import Sequential, TrainingDivergedError

__all__ = ["CSVLogger", "Callback", "EarlyStopping", "History", "LambdaCallback", "Monitor",
           "ReduceLROnPlateau", "Sequential", "TerminateOnNaN",
           "TrainingDivergedError", "callbacks", "gradcheck"]
