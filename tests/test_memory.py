"""No leaks (issue 7): 100k calls of every op and 1000 fits of a small model leave the process's
resident memory flat.

RSS is read from /proc/self/statm after a warm-up (NumPy's and pynn's caches, the GEMM's
per-thread packing buffers and Python's allocator arenas are all filled by then). Tolerance: a
leak of 16 bytes per call would add 1.6 MB over 100k calls; the test allows 1 MiB of allocator
noise (measured growth here: 0 to a few hundred KB).
"""
from __future__ import annotations

import gc
import os

import numpy as np
import pytest

import pynn
from pynn import ops

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="Linux only"),
              pytest.mark.skipif(bool(os.environ.get("PYNN_SANITIZED")),
                                 reason="ASan's quarantine holds freed memory")]

CALLS = 100_000
TOLERANCE = 1 << 20


def _rss() -> int:
    gc.collect()
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _op_calls():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((8, 5)).astype(np.float32)
    w = rng.standard_normal((5, 4)).astype(np.float32)
    b = np.zeros(4, np.float32)
    y = np.tanh(x @ w)
    labels = np.arange(8) % 4
    probs = np.full((8, 4), 0.25, np.float32)
    p = np.zeros(64, np.float32)
    g = np.ones(64, np.float32)
    v = np.zeros(64, np.float32)
    m2 = np.zeros(64, np.float32)
    sw = np.ones(8, np.float32)
    out = np.empty((8, 4), np.float32)
    return {
        "matmul": lambda: ops.matmul(x, w),
        "matmul_out": lambda: ops.matmul(x, w, out=out),
        "linear": lambda: ops.linear(x, w, b, activation="tanh"),
        "linear_backward": lambda: ops.linear_backward(x, w, y, y, activation="tanh"),
        "activation": lambda: ops.activation("sigmoid", x),
        "activation_backward": lambda: ops.activation_backward("relu", y, y),
        "softmax": lambda: ops.softmax(x),
        "bias_grad": lambda: ops.bias_grad(x),
        "softmax_cross_entropy": lambda: ops.softmax_cross_entropy(y, labels, sample_weight=sw),
        "kl_divergence": lambda: ops.kl_divergence(y, probs),
        "mse": lambda: ops.mse(y, y),
        "binary_cross_entropy": lambda: ops.binary_cross_entropy(y, probs),
        "hinge": lambda: ops.hinge(y, np.sign(y)),
        "sgd_step": lambda: ops.sgd_step(p, g, v, lr=0.0, momentum=0.5),
        "adam_step": lambda: ops.adam_step(p, g, m2, v, step=1, lr=0.0),
        # rejected calls build exception messages: those must not leak either
        "rejected": lambda: _swallow(lambda: ops.matmul(x, x)),
    }


def _swallow(fn):
    try:
        fn()
    except ValueError:
        pass


@pytest.mark.parametrize("name", sorted(_op_calls()))
def test_op_calls_do_not_leak(name):
    call = _op_calls()[name]
    for _ in range(2000):
        call()
    before = _rss()
    for _ in range(CALLS):
        call()
    growth = _rss() - before
    assert growth < TOLERANCE, f"{name}: RSS grew by {growth / 1e6:.2f} MB over {CALLS} calls"


def test_fits_do_not_leak():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((64, 8)).astype(np.float32)
    y = np.arange(64) % 3

    def fit_one(i):
        model = pynn.Sequential([pynn.Dense(8, 16, "relu"), pynn.Dense(16, 3)], seed=i)
        model.fit(X, y, loss="cross_entropy", optimizer=pynn.SGD(0.05, momentum=0.9),
                  epochs=1, batch_size=16, seed=i)
        model.predict(X)

    for i in range(50):
        fit_one(i)
    before = _rss()
    for i in range(1000):
        fit_one(i)
    growth = _rss() - before
    assert growth < TOLERANCE, f"RSS grew by {growth / 1e6:.2f} MB over 1000 fits"
