"""The kernels of pynn.ops in plain NumPy: the oracle for tests and the baseline for benchmarks.

Written for clarity, in float64-safe ways; each function matches its pynn.ops twin's signature.
"""
from __future__ import annotations

import numpy as np  # noqa: F401
