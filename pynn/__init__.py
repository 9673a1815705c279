"""pynn: fast multilayer perceptrons on the CPU.

C/OpenMP kernels behind Cython; a thin Python layer builds and trains models.
"""
from __future__ import annotations

from ._source_tree import installed_copy as _installed_copy

# From a source checkout without a compiled core (`python -m pynn` in a fresh clone after
# `pip install .`), the installed pynn has taken this module's place: nothing below runs.
if _installed_copy(__name__, __file__, __path__) is None:
    import os as _os

    from . import _core, datasets
    from ._core import get_num_threads, set_num_threads

    __version__ = "0.1.0"

    __all__ = ["__version__", "build_info", "datasets", "get_isa", "set_isa", "get_num_threads",
               "set_num_threads"]

    # PYNN_ISA forces a lower SIMD path (generic, avx2, avx512); an unknown or unsupported value is
    # an error at import, never silently ignored.
    _ISA_ENV = "PYNN_ISA"


    def _select_isa_at_import() -> None:
        requested = _os.environ.get(_ISA_ENV, "").strip().lower()
        if not requested or requested == "auto":
            _core.set_isa(_core.best_isa())
            return
        try:
            _core.set_isa(requested)
        except ValueError as exc:
            raise ImportError(f"{_ISA_ENV}={requested!r}: {exc}") from None


    _select_isa_at_import()

    # ---- models (issue 4): layers, losses, optimizers, training, save/load, gradcheck ------------
    from . import callbacks, init, io, layers, losses, optim
    from .callbacks import Callback, EarlyStopping, History, LambdaCallback
    from .gradcheck import gradcheck
    from .io import ModelFileError, load, save
    from .layers import Dense
    from .losses import MSE, BinaryCrossEntropy, CrossEntropy, Hinge, KLDivergence, Loss
    from .model import Sequential, TrainingDivergedError
    from .optim import SGD, Adam, Constant, Cosine, Optimizer, StepDecay

    __all__ += ["MSE", "SGD", "Adam", "BinaryCrossEntropy", "Callback", "Constant", "Cosine",
                "CrossEntropy", "Dense", "EarlyStopping", "Hinge", "History", "KLDivergence",
                "LambdaCallback", "Loss", "ModelFileError", "Optimizer", "Sequential", "StepDecay",
                "TrainingDivergedError", "callbacks", "gradcheck", "init", "io", "layers", "load",
                "losses", "optim", "save"]


    def get_isa() -> str:
        """The SIMD path the kernels run: 'generic', 'avx2' or 'avx512'."""
        return _core.get_isa()


    def set_isa(name: str) -> None:
        """Switch the SIMD path ('generic', 'avx2', 'avx512', or 'auto' for the best supported).

        Raises ValueError for an unknown name or a path this build or CPU cannot run.
        """
        _core.set_isa(_core.best_isa() if name == "auto" else name)


    def build_info() -> dict:
        """How this pynn was built and what it runs on.

        Returns a dict with the pynn version, compiler, OpenMP on/off and version, the ISA paths
        built and supported, the one selected, and the thread count.
        """
        info = {"version": __version__}
        info.update(_core.core_info())
        return info
