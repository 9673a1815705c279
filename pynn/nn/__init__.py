"""The building blocks: layers, losses, optimizers and schedules, weight initialisers.

Each concept is one table of names (``layers.ACTIVATIONS``, ``losses.LOSSES``,
``optim.OPTIMIZERS``) over the compiled kernels in `pynn.ops`; nothing here trains (that is
`pynn.engine`) or owns a model's numbers (that is `pynn.model`).
"""
from . import init, layers, losses, metrics, optim
from .layers import Activation, BatchNorm, Dense, Dropout, Input, LayerNorm
from .losses import (
    MAE,
    MSE,
    BinaryCrossEntropy,
    CrossEntropy,
    Hinge,
    Huber,
    KLDivergence,
    Loss,
    Poisson,
)
from .optim import SGD, Adagrad, Adam, Constant, Cosine, Optimizer, RMSprop, StepDecay

__all__ = [
    "MAE",
    "MSE",
    "SGD",
    "Activation",
    "Adagrad",
    "Adam",
    "BatchNorm",
    "BinaryCrossEntropy",
    "Constant",
    "Cosine",
    "CrossEntropy",
    "Dense",
    "Dropout",
    "Hinge",
    "Huber",
    "Input",
    "KLDivergence",
    "LayerNorm",
    "Loss",
    "Optimizer",
    "Poisson",
    "RMSprop",
    "StepDecay",
    "init",
    "layers",
    "losses",
    "metrics",
    "optim",
]
