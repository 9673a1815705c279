"""64-bit sizes (issue 7): kernels index inputs with more than 2^31 elements correctly.

csrc/ uses pn_size (int64_t) for every size, index and offset; an int32 anywhere in that
arithmetic would wrap past 2^31 elements (a crash or a wrong answer). These tests run kernels on
inputs of 2^31 + k float32 elements without the memory that would take: the arrays are
np.zeros, whose untouched pages all map the kernel's one shared zero page, so an 8.6 GB input
costs a few MB of RAM. A handful of non-zero entries placed beyond index 2^31 (each dirties
one page) must show up in the result. Outputs are small, so only read-only inputs are huge.

PYNN_TEST_HUGE_MEMORY=1 adds an in-place relu over 2^31 + 77 float32 elements, which really
writes 8.6 GB (needs ~9 GB of free RAM; 6 s on an idle machine, over a minute under load).
"""
from __future__ import annotations

import os

import numpy as np
import pytest

from pynn import ops

BIG = 2**31


def _sanitized():
    return bool(os.environ.get("PYNN_SANITIZED"))


pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(_sanitized(), reason="8 GB of address space under ASan")]


def test_bias_grad_over_more_than_2_31_elements():
    cols = 512
    rows = BIG // cols + 3  # 2^31 + 1536 elements, 8.6 GB of address space
    dz = np.zeros((rows, cols), np.float32)
    dz[0] = 1
    dz[rows // 2, 7] = 5
    dz[-1] = np.arange(cols)  # element (2^31 + 1024 + j): wraps to a negative int32 index
    db = ops.bias_grad(dz)
    want = 1 + np.arange(cols, dtype=np.float32)
    want[7] += 5
    np.testing.assert_array_equal(db, want)


def test_linear_backward_over_more_than_2_31_elements():
    """dw = x^T dz through the GEMM's row kernel with k = 2^28 + 5 steps of an 8-wide row:
    dy holds 2^31 + 40 elements; db is its column sum."""
    n = BIG // 8 + 5
    x = np.zeros((n, 1), np.float32)
    dy = np.zeros((n, 8), np.float32)
    y = np.zeros((n, 8), np.float32)  # read by no identity backward: never touched
    w = np.ones((1, 8), np.float32)
    x[0, 0], dy[0] = 1, 1
    x[-1, 0], dy[-1] = 2, np.arange(8)
    dx, dw, db = ops.linear_backward(x, w, y, dy, need_dx=False)
    assert dx is None
    np.testing.assert_array_equal(dw, [1 + 2 * np.arange(8, dtype=np.float32)])
    np.testing.assert_array_equal(db, 1 + np.arange(8, dtype=np.float32))


def _free_bytes() -> int:
    with open("/proc/meminfo") as f:
        info = dict(line.split(":", 1) for line in f)
    return int(info["MemAvailable"].split()[0]) * 1024


@pytest.mark.skipif(os.environ.get("PYNN_TEST_HUGE_MEMORY") != "1",
                    reason="writes 8.6 GB: set PYNN_TEST_HUGE_MEMORY=1")
def test_relu_in_place_over_more_than_2_31_elements():
    n = BIG + 77
    if _free_bytes() < 3 * 4 * n // 2:
        pytest.skip("needs ~13 GB of available memory")
    x = np.zeros(n, np.float32)
    idx = [0, BIG - 1, BIG, BIG + 1, n - 1]
    x[idx] = [-1, -2, -3, 4, -5]
    ops.activation("relu", x, out=x)
    np.testing.assert_array_equal(x[idx], [0, 0, 0, 4, 0])
