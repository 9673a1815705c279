"""Array-level kernels: what the layers, tests and benchmarks call.

Every function takes NumPy arrays of float32 or float64, checks them in the Cython bridge,
releases the GIL and runs C. `pynn.reference` holds the same maths in plain NumPy.
"""
from __future__ import annotations

from . import _core  # noqa: F401

__all__: list[str] = []

# ---- gemm (issue 3): matrix multiply with fused bias and activation -----------------------------
# The Cython functions themselves (no Python wrapper: a batch-1 forward calls linear() per layer
# and every microsecond counts). Signatures and numpydoc docstrings live in pynn/_gemm.pxi.
from ._core import linear, linear_backward, matmul

__all__ += ["linear", "linear_backward", "matmul"]
