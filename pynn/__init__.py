"""pynn: fast multilayer perceptrons on the CPU.

C/OpenMP kernels behind Cython; a thin Python layer builds and trains models. The package is
layered, each part importing only from those below it:

    cli, sklearn              the ways in: the command line, scikit-learn's estimators
    io, interop               and out: model files (.npz, safetensors); ONNX, PyTorch and
                              scikit-learn's own MLPs
    model                     Sequential, callbacks, History, gradcheck
    engine                    the one training loop
    nn                        layers, losses, optimizers, schedules, initialisers
    ops, reference            array kernels and their NumPy twins
    _core                     the Cython bridge to csrc/ (C + OpenMP)

Public names stay flat: ``pynn.Sequential``, ``pynn.Dense``, ``pynn.ops``, ``pynn.datasets``...
"""
from __future__ import annotations

from ._source_tree import installed_copy as _installed_copy

# From a source checkout without a compiled core (`python -m pynn` in a fresh clone after
# `pip install .`), the installed pynn has taken this module's place: nothing below runs.
if _installed_copy(__name__, __file__, __path__) is None:
    import sys as _sys

    from . import _core, ops  # noqa: F401  (pynn._core: the bridge, used by tests and bench)
    from ._platform import (
        build_info,
        get_isa,
        get_num_threads,
        select_isa_at_import,
        set_isa,
        set_num_threads,
    )
    from ._version import __version__

    select_isa_at_import()
    del select_isa_at_import

    from . import io, nn
    from .data import datasets
    from .interop import from_torch, to_onnx, to_torch
    from .io import ModelCheckpoint, ModelFileError, load, save
    from .model import (
        Callback,
        CSVLogger,
        EarlyStopping,
        History,
        LambdaCallback,
        ReduceLROnPlateau,
        Sequential,
        TerminateOnNaN,
        TrainingDivergedError,
        callbacks,
    )
    from .model.gradcheck import gradcheck
    from .nn import (
        MAE,
        MSE,
        SGD,
        Activation,
        Adagrad,
        Adam,
        BatchNorm,
        BinaryCrossEntropy,
        Constant,
        Cosine,
        CrossEntropy,
        Dense,
        Dropout,
        Hinge,
        Huber,
        Input,
        KLDivergence,
        LayerNorm,
        Loss,
        Optimizer,
        Poisson,
        RMSprop,
        StepDecay,
        init,
        layers,
        losses,
        optim,
    )

    # The module paths of the flat layout before the subpackages (pynn.layers, pynn.optim, ...)
    # keep working for `import pynn.layers` and `from pynn.optim import SGD`.
    for _name, _module in {"layers": layers, "losses": losses, "optim": optim, "init": init,
                           "callbacks": callbacks, "datasets": datasets,
                           "gradcheck": _sys.modules[f"{__name__}.model.gradcheck"]}.items():
        _sys.modules.setdefault(f"{__name__}.{_name}", _module)
    del _name, _module

    __all__ = [
        "MAE",
        "MSE",
        "SGD",
        "Activation",
        "Adagrad",
        "Adam",
        "BatchNorm",
        "BinaryCrossEntropy",
        "CSVLogger",
        "Callback",
        "Constant",
        "Cosine",
        "CrossEntropy",
        "Dense",
        "Dropout",
        "EarlyStopping",
        "Hinge",
        "History",
        "Huber",
        "Input",
        "KLDivergence",
        "LambdaCallback",
        "LayerNorm",
        "Loss",
        "ModelCheckpoint",
        "ModelFileError",
        "Optimizer",
        "Poisson",
        "RMSprop",
        "ReduceLROnPlateau",
        "Sequential",
        "StepDecay",
        "TerminateOnNaN",
        "TrainingDivergedError",
        "__version__",
        "build_info",
        "callbacks",
        "datasets",
        "from_torch",
        "get_isa",
        "get_num_threads",
        "gradcheck",
        "init",
        "io",
        "layers",
        "load",
        "losses",
        "nn",
        "ops",
        "optim",
        "save",
        "set_isa",
        "set_num_threads",
        "to_onnx",
        "to_torch",
    ]
