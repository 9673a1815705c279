"""Do subnormal (denormal) inputs slow pynn's kernels down?

x86 cores handle subnormal operands or results in microcode on some instructions (a "denormal
assist", up to ~100x slower per operation). Each kernel is timed on the same shapes with normal
inputs and with subnormal ones, interleaved (A B A B ...), median of the ratios.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE flock /tmp/pynn-bench.lock \\
        python -m bench.bench_denormal [--repeats 9]

Prints one line per kernel: time with normal inputs, with subnormal inputs, and the ratio.
"""
from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from pynn import ops


def _cases(rng, tiny):
    """(name, fn(scale)) where scale multiplies the inputs: 1 (normal) or `tiny` (subnormal)."""
    x = rng.standard_normal((512, 512)).astype(np.float32)
    w = rng.standard_normal((512, 512)).astype(np.float32)
    v = rng.standard_normal(1 << 20).astype(np.float32)
    out = np.empty_like(x)
    labels = rng.integers(0, 512, 512)

    def inputs(scale):
        return x * scale, w * scale, v * scale

    cases = {}
    cases["matmul 512^3"] = lambda a, b, c: ops.matmul(a, b, out=out)
    cases["linear relu 512^3"] = lambda a, b, c: ops.linear(a, b, activation="relu", out=out)
    cases["relu 1M"] = lambda a, b, c: ops.activation("relu", c)
    cases["sigmoid 1M"] = lambda a, b, c: ops.activation("sigmoid", c)
    cases["tanh 1M"] = lambda a, b, c: ops.activation("tanh", c)
    cases["softmax 512x512"] = lambda a, b, c: ops.softmax(a, out=out)
    cases["softmax_xent 512x512"] = lambda a, b, c: ops.softmax_cross_entropy(a, labels, out=out)
    cases["mse 1M"] = lambda a, b, c: ops.mse(c, c[::-1].copy())
    cases["sgd momentum 1M"] = lambda a, b, c: ops.sgd_step(c.copy(), c, np.zeros_like(c),
                                                            lr=0.5, momentum=0.9)
    cases["adam 1M"] = lambda a, b, c: ops.adam_step(c.copy(), c, np.zeros_like(c),
                                                     np.zeros_like(c), step=1)
    return cases, inputs


def _time(fn, args, number):
    t0 = time.perf_counter()
    for _ in range(number):
        fn(*args)
    return (time.perf_counter() - t0) / number


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=9)
    args = parser.parse_args(argv)
    rng = np.random.default_rng(0)
    tiny = float(np.finfo(np.float32).tiny) / 8  # every input value subnormal
    cases, inputs = _cases(rng, tiny)
    normal, sub = inputs(1.0), inputs(tiny)
    assert np.all(np.abs(sub[2][sub[2] != 0]) < np.finfo(np.float32).tiny)
    print(f"{'kernel':24s} {'normal':>10s} {'subnormal':>10s} {'ratio':>7s}")
    for name, fn in cases.items():
        fn(*normal), fn(*sub)  # warm up
        number = max(1, int(0.02 / max(_time(fn, normal, 1), 1e-6)))
        ratios, tn, ts = [], [], []
        for _ in range(args.repeats):
            a = _time(fn, normal, number)
            b = _time(fn, sub, number)
            tn.append(a)
            ts.append(b)
            ratios.append(b / a)
        print(f"{name:24s} {statistics.median(tn) * 1e6:9.0f}us {statistics.median(ts) * 1e6:9.0f}us"
              f" {statistics.median(ratios):6.2f}x")


if __name__ == "__main__":
    main()
