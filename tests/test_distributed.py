"""Data-parallel training on MPI: N ranks with per-rank batch b compute what one process with
batch N*b computes; faults stop every rank; runs are bitwise repeatable.

Each scenario runs `mpiexec -n 2 python -m mpi4py tests/mpi_worker.py ...` (mpi4py + MPICH from
PyPI, installed by .ci/run; on a developer's machine without them these tests skip, in CI never).
"""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import pynn

WORKER = Path(__file__).with_name("mpi_worker.py")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")

try:
    import mpi4py  # noqa: F401
    MPIEXEC = shutil.which("mpiexec", path=os.path.dirname(sys.executable)) or \
        shutil.which("mpiexec")
except ImportError:
    MPIEXEC = None
if MPIEXEC is None and not IN_CI:
    pytest.skip("mpi4py and an MPI library are needed: pip install mpi4py mpich",
                allow_module_level=True)


def launch(scenario: str, outdir: Path, ranks: int = 2, timeout: float = 120):
    env = dict(os.environ, PYTHONSAFEPATH="1", OMP_NUM_THREADS="1")
    return subprocess.run([MPIEXEC, "-n", str(ranks), sys.executable, "-m", "mpi4py",
                           str(WORKER), scenario, str(outdir)], check=False,
                          capture_output=True, text=True, timeout=timeout, env=env, cwd=outdir)


def ranks_of(outdir: Path, ranks: int = 2) -> list:
    return [dict(np.load(outdir / f"rank{r}.npz")) for r in range(ranks)]


def _data(n=50):
    rng = np.random.default_rng(0)
    return rng.standard_normal((n, 7)), rng.integers(0, 3, n)


def _single(optimizer, batch_size, epochs=3, sample_weight=None, dtype="float64", n=50):
    X, y = _data(n)
    model = pynn.Sequential([pynn.Dense(7, 6, "tanh"), pynn.Dense(6, 3)], seed=0, dtype=dtype)
    history = model.fit(X, y, loss="cross_entropy", optimizer=optimizer, epochs=epochs,
                        batch_size=batch_size, seed=1, sample_weight=sample_weight,
                        validation_data=(X[:13], y[:13]))
    return model, history


@pytest.mark.parametrize("scenario", ["equivalence", "equivalence-adam", "weighted"])
def test_two_ranks_equal_one_process_with_the_global_batch(scenario, tmp_path):
    result = launch(scenario, tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    r0, r1 = ranks_of(tmp_path)
    for key in r0:  # every rank ends with bitwise the same weights and history
        assert r0[key].tobytes() == r1[key].tobytes(), key
    opt = pynn.Adam(0.01) if scenario == "equivalence-adam" else pynn.SGD(0.1, momentum=0.9)
    weight = np.random.default_rng(5).random(50) if scenario == "weighted" else None
    model, history = _single(opt, batch_size=8, sample_weight=weight)  # 2 ranks x 4
    np.testing.assert_allclose(r0["params"], model.params, rtol=1e-11, atol=1e-13)
    np.testing.assert_allclose(r0["loss"], history.history["loss"], rtol=1e-11)
    np.testing.assert_allclose(r0["val_loss"], history.history["val_loss"], rtol=1e-11)
    np.testing.assert_allclose(r0["accuracy"], history.history["accuracy"], rtol=1e-12)
    X, y = _data()
    scores = model.evaluate(X, y)
    np.testing.assert_allclose(r0["eval"], [scores["loss"], scores["accuracy"]], rtol=1e-11)


def test_float32_ranks_agree_to_rounding_and_repeat_bitwise(tmp_path):
    first, second = tmp_path / "a", tmp_path / "b"
    first.mkdir()
    second.mkdir()
    for outdir in (first, second):
        result = launch("float32", outdir)
        assert result.returncode == 0, result.stderr[-3000:]
    a, b = ranks_of(first), ranks_of(second)
    assert a[0]["params"].tobytes() == a[1]["params"].tobytes() == b[0]["params"].tobytes()
    X, y = _data(203)
    model = pynn.Sequential([pynn.Dense(7, 6, "tanh"), pynn.Dense(6, 3)], seed=0)
    # a short last global batch: 203 = 6 x 32 + 11 (rank 0 takes 11 rows, rank 1 none)
    model.fit(X, y, loss="cross_entropy", optimizer=pynn.SGD(0.05, momentum=0.9), epochs=2,
              batch_size=32)  # the same shuffling seed: drawn from the model's generator
    np.testing.assert_allclose(a[0]["params"], model.params, rtol=2e-5, atol=2e-6)


def test_a_non_finite_loss_on_one_rank_stops_every_rank(tmp_path):
    result = launch("diverge", tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    outcomes = [(tmp_path / f"rank{r}.txt").read_text() for r in range(2)]
    # rank 1's part of global batch 1 overflows; rank 0's is fine: both stop there, unchanged
    assert outcomes == ["TrainingDivergedError at batch 1, weights unchanged: True"] * 2, \
        outcomes


def test_ranks_that_disagree_are_told_what_differs(tmp_path):
    result = launch("disagree", tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    outcomes = [(tmp_path / f"rank{r}.txt").read_text() for r in range(2)]
    assert outcomes[0] == outcomes[1]
    assert "seed: rank 0 has 0, rank 1 has 1" in outcomes[0]


def test_a_failing_rank_ends_the_job_instead_of_hanging(tmp_path):
    result = launch("crash", tmp_path, timeout=60)
    assert result.returncode != 0
    assert "rank 1 fails" in result.stderr


def test_the_estimator_trains_data_parallel(tmp_path):
    pytest.importorskip("sklearn")
    from pynn.sklearn import MLPClassifier

    result = launch("estimator", tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    r0, r1 = ranks_of(tmp_path)
    assert r0["params"].tobytes() == r1["params"].tobytes()
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((90, 7)), rng.integers(0, 3, 90)
    est = MLPClassifier((6,), solver="sgd", learning_rate_init=0.05, batch_size=10,
                        max_iter=4, random_state=0, tol=0, n_iter_no_change=100)
    with pytest.warns(Warning):
        est.fit(X, y)
    params = np.concatenate([c.ravel() for c in est.coefs_ + est.intercepts_])
    np.testing.assert_allclose(r0["params"], params, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(r0["loss"], est.loss_curve_, rtol=1e-10)


def test_checkpoints_are_written_once_and_resume_at_another_world_size(tmp_path):
    result = launch("checkpoint", tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt.npz", "rank0.npz", "rank1.npz"]
    r0, r1 = ranks_of(tmp_path)
    assert r0["params"].tobytes() == r1["params"].tobytes()
    # one process continues the 2-rank checkpoint with the global batch: the same epoch
    X, y = _data()
    single = pynn.load(tmp_path / "ckpt.npz")
    single.fit(X, y, epochs=1, batch_size=8, seed=2)
    np.testing.assert_allclose(single.params, r0["params"], rtol=1e-11, atol=1e-13)


def test_command_line_distributed_equals_one_process_with_the_global_batch(tmp_path):
    """`mpiexec -n 2 pynn train --distributed --batch-size 16` prints one report (rank 0's) and
    trains the model one process trains with batch 32."""
    env = dict(os.environ, PYTHONSAFEPATH="1", OMP_NUM_THREADS="1")
    common = ["-m", "pynn", "train", "-q", "--epochs", "3", "--dtype", "float64"]
    two = subprocess.run([MPIEXEC, "-n", "2", sys.executable, *common, "--distributed",
                          "--batch-size", "16", "--save", str(tmp_path / "two.npz")],
                         check=False, capture_output=True, text=True, timeout=120, env=env,
                         cwd=tmp_path)
    assert two.returncode == 0, two.stderr
    assert two.stdout.count("test accuracy") == 1
    assert "batch 16 per rank x 2 ranks" in two.stdout
    one = subprocess.run([sys.executable, *common, "--batch-size", "32", "--save",
                          str(tmp_path / "one.npz")], check=False, capture_output=True,
                         text=True, timeout=120, env=env, cwd=tmp_path)
    assert one.returncode == 0, one.stderr
    for a, b in zip(pynn.load(tmp_path / "two.npz").get_weights(),
                    pynn.load(tmp_path / "one.npz").get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)
