"""Determinism (issue 7): the same seed and data give bitwise the same model

- across runs in one process, across 1 and 2 threads, and across processes (a fresh
  interpreter, with OMP_NUM_THREADS set differently): threads only split disjoint outputs and
  every reduction has a fixed order;
- on each SIMD path (generic, avx2, avx512) separately. Across paths the bits differ (FMA
  contraction, vector widths and the vectorised exp differ): the results agree to a few float32
  ulps per step, which this file measures rather than hides.
"""
from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import pynn

TRAIN = textwrap.dedent("""
    import numpy as np
    import pynn

    def train(isa, threads):
        pynn.set_isa(isa)
        pynn.set_num_threads(threads)
        rng = np.random.default_rng(1)
        X = rng.standard_normal((600, 32)).astype(np.float32)
        y = X[:, :5].argmax(axis=1)
        model = pynn.Sequential([pynn.Dense(32, 96, "relu"), pynn.Dense(96, 64, "tanh"),
                                 pynn.Dense(64, 5)], seed=0)
        model.fit(X, y, loss="cross_entropy", optimizer=pynn.SGD(0.05, momentum=0.9),
                  epochs=3, batch_size=64, seed=0)
        return model.params.copy()
""")
# the same code run in a fresh interpreter prints the weights' SHA-256
SCRIPT = TRAIN + textwrap.dedent("""
    import hashlib, sys
    print(hashlib.sha256(train(sys.argv[1], int(sys.argv[2])).tobytes()).hexdigest())
""")
_namespace: dict = {}
exec(compile(TRAIN, "<determinism>", "exec"), _namespace)  # noqa: S102 - our own code


def _train(isa: str, threads: int) -> np.ndarray:
    before = (pynn.get_isa(), pynn.get_num_threads())
    try:
        return _namespace["train"](isa, threads)
    finally:
        pynn.set_isa(before[0])
        pynn.set_num_threads(before[1])


def _sha(params: np.ndarray) -> str:
    return hashlib.sha256(params.tobytes()).hexdigest()


@pytest.mark.parametrize("isa_name", pynn._core.isa_supported())
def test_bitwise_across_runs_threads_and_processes(isa_name):
    first = _train(isa_name, 1)
    assert _sha(_train(isa_name, 1)) == _sha(first), "two runs in one process differ"
    assert _sha(_train(isa_name, 2)) == _sha(first), "1 and 2 threads differ"
    env = dict(os.environ, OMP_NUM_THREADS="2")
    for threads in (1, 2):
        out = subprocess.run([sys.executable, "-c", SCRIPT, isa_name, str(threads)], env=env,
                             capture_output=True, text=True, timeout=300, check=True)
        assert out.stdout.strip() == _sha(first), f"a fresh process at {threads} thread(s) differs"


@pytest.mark.skipif(len(pynn._core.isa_supported()) < 2, reason="one SIMD path on this CPU")
def test_simd_paths_agree_closely_but_not_bitwise():
    paths = pynn._core.isa_supported()
    results = {isa: _train(isa, 1) for isa in paths}
    base = results[paths[0]]
    for isa in paths[1:]:
        diff = np.abs(results[isa] - base)
        # 3 epochs x 10 steps of SGD with momentum from the same start: the paths round
        # differently (FMA, lane order of the vector exp), so they drift apart by ulps only
        np.testing.assert_allclose(results[isa], base, rtol=1e-3, atol=1e-5,
                                   err_msg=f"{isa} vs {paths[0]}")
        print(f"{isa} vs {paths[0]}: max |diff| {diff.max():.3g}, "
              f"{np.mean(diff == 0):.0%} of the weights bitwise equal")
