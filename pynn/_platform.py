"""The machine side of the bridge: SIMD path, threads, build facts."""
from __future__ import annotations

import os
import threading
import warnings

import numpy as np

from . import _core
from ._core import get_num_threads
from ._version import __version__

__all__ = ["MAX_THREADS_PER_CORE", "build_info", "get_isa", "get_num_threads", "max_threads",
           "select_isa_at_import", "set_isa", "set_num_threads"]

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


#: Thread counts above this many per core are capped (each OpenMP thread costs a stack; with
#: thousands, thread creation fails and libgomp aborts the process).
MAX_THREADS_PER_CORE = 4
_forked_child = False


def max_threads() -> int:
    """The largest thread count `set_num_threads` accepts: 4 per core."""
    return MAX_THREADS_PER_CORE * (os.cpu_count() or 1)


def set_num_threads(n: int) -> None:
    """Threads pynn's kernels may use (OpenMP); small inputs still run on one.

    At most `max_threads()` (more is capped, with a warning). In a child process made by
    ``fork`` after pynn ran threads, kernels stay on one thread: OpenMP's thread team does not
    survive fork, and a second thread there would wait forever.
    """
    if isinstance(n, (bool, np.bool_)) or not isinstance(n, (int, np.integer)):
        raise TypeError(f"n must be an int, got {type(n).__name__}")
    n = int(n)
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    if _forked_child and n > 1:
        warnings.warn("pynn runs single-threaded in a forked child process (OpenMP's threads "
                      "do not survive fork); use the 'spawn' or 'forkserver' start method for "
                      "threads in workers", RuntimeWarning, stacklevel=2)
        n = 1
    cap = max_threads()
    if n > cap:
        warnings.warn(f"set_num_threads({n}) capped at {cap} ({MAX_THREADS_PER_CORE} per core)",
                      RuntimeWarning, stacklevel=2)
        n = cap
    if n > _core.get_num_threads():
        _check_threads_can_start(n)
    _core.set_num_threads(n)


def _check_threads_can_start(n: int) -> None:
    """Start n - 1 idle threads and let them go: OpenMP aborts the whole process when it cannot
    create its team (libgomp: "Thread creation failed"), so a system that refuses threads (short
    of memory, a thread limit) is found here first and reported as an exception."""
    release = threading.Event()
    started = []
    try:
        for _ in range(n - 1):
            thread = threading.Thread(target=release.wait, daemon=True)
            thread.start()
            started.append(thread)
    except RuntimeError as exc:
        raise RuntimeError(f"set_num_threads({n}): the system refused to start thread "
                           f"{len(started) + 2} of {n} ({exc}); use fewer threads") from None
    finally:
        release.set()
        for thread in started:
            thread.join()


def _after_fork_in_child() -> None:
    global _forked_child
    _forked_child = True
    _core.set_num_threads(1)


# pthread_atfork's Python face: runs in the child of os.fork() and multiprocessing's "fork".
os.register_at_fork(after_in_child=_after_fork_in_child)


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
