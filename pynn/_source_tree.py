"""Importing pynn from a source checkout that has no compiled core.

`python -m pynn` (or `python -c "import pynn"`, or a notebook) started in the repository root puts
the root first on sys.path, so the source folder pynn/ -- which has no compiled `_core` -- shadows
the pynn that `pip install .` put in site-packages. Then the installed copy takes the source
package's place in sys.modules (its Python files are the ones that were built with its core);
with no installed copy the import fails with one line that says what to do, as NumPy's does,
instead of a partial-import traceback.
"""
from __future__ import annotations

import importlib.machinery
import importlib.util
import os
import sys
from types import ModuleType

__all__ = ["installed_copy"]


def _same_dir(a: str, b: str) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def _editable_core(name: str) -> bool:
    """Whether a finder on sys.meta_path other than the path finder (scikit-build-core's editable
    redirect, say) provides `name._core`."""
    for finder in sys.meta_path:
        if finder is importlib.machinery.PathFinder or not hasattr(finder, "find_spec"):
            continue
        try:
            if finder.find_spec(f"{name}._core", None) is not None:
                return True
        except (ImportError, ValueError, TypeError, AttributeError):
            continue
    return False


def installed_copy(name: str, init_file: str, search_path: list) -> ModuleType | None:
    """The installed package to use instead of this source folder, or None to use this one.

    `search_path` is the package's ``__path__`` (an editable install adds its build folder).

    Raises ImportError (one line saying what to do) when this folder has no compiled core and no
    installed copy of the package can be found elsewhere on sys.path.
    """
    here = os.path.dirname(os.path.abspath(init_file))
    if importlib.machinery.PathFinder.find_spec("_core", list(search_path)) is not None:
        return None  # the installed package itself, an editable install or an in-place build
    if _editable_core(name):
        return None  # an editable install whose finder serves the core from its build folder
    root = os.path.dirname(here)
    elsewhere = [p for p in sys.path if not _same_dir(p or os.getcwd(), root)]
    spec = importlib.machinery.PathFinder.find_spec(name, elsewhere)
    if spec is None or spec.origin is None or _same_dir(os.path.dirname(spec.origin), here) \
            or importlib.machinery.PathFinder.find_spec(
                "_core", list(spec.submodule_search_locations or [])) is None:
        raise ImportError(
            f"pynn is being imported from its source tree ({here}), which has no compiled core: "
            f"install it with `pip install .` (then this works from anywhere), or build it in "
            f"place for development with `pip install --no-build-isolation -e .`")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module
