"""The machine side of the bridge: SIMD path, threads, build facts."""
from __future__ import annotations

import os

from . import _core
from ._core import get_num_threads, set_num_threads
from ._version import __version__

__all__ = ["build_info", "get_isa", "get_num_threads", "select_isa_at_import", "set_isa",
           "set_num_threads"]

# PYNN_ISA forces a lower SIMD path (generic, avx2, avx512); an unknown or unsupported value is an
# error at import, never silently ignored.
ISA_ENV = "PYNN_ISA"


def select_isa_at_import() -> None:
    requested = os.environ.get(ISA_ENV, "").strip().lower()
    if not requested or requested == "auto":
        _core.set_isa(_core.best_isa())
        return
    try:
        _core.set_isa(requested)
    except ValueError as exc:
        raise ImportError(f"{ISA_ENV}={requested!r}: {exc}") from None


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
