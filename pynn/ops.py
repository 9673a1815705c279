"""Array-level kernels: what the layers, tests and benchmarks call.

Every function takes NumPy arrays of float32 or float64, checks them in the Cython bridge,
releases the GIL and runs C. `pynn.reference` holds the same maths in plain NumPy.
"""
from __future__ import annotations

from . import _core  # noqa: F401

__all__: list[str] = []
