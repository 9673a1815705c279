"""The model: `Sequential` (layers over one flat parameter buffer, config, weights), its
callbacks and History, and the gradient check. Training runs on `pynn.engine`."""
from . import callbacks, gradcheck
from .callbacks import Callback, EarlyStopping, History, LambdaCallback
from .sequential import Sequential, TrainingDivergedError

__all__ = ["Callback", "EarlyStopping", "History", "LambdaCallback", "Sequential",
           "TrainingDivergedError", "callbacks", "gradcheck"]
