"""Optional packages, imported only inside the functions that need them."""
from __future__ import annotations

import importlib
from types import ModuleType

__all__ = ["require"]


def require(module: str, pip_name: str, what: str) -> ModuleType:
    """`module`, or an ImportError saying which package to install for `what`.

    The hint names the package itself (``pip install onnx``), never a ``pynn[...]`` extra: the
    name pynn on PyPI belongs to another project.
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ImportError(f"{what} needs the {pip_name!r} package: pip install {pip_name} "
                          f"(importing {module} failed: {exc})") from exc
