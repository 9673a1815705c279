"""Scenarios for tests/test_distributed.py, run as `mpiexec -n N python -m mpi4py
tests/mpi_worker.py SCENARIO OUTDIR`; each rank writes OUTDIR/rank<r>.npz (or .txt)."""
import sys

import numpy as np
from mpi4py import MPI

import pynn

comm = MPI.COMM_WORLD
scenario, outdir = sys.argv[1], sys.argv[2]
rank = comm.Get_rank()


def data(n=50, features=7, classes=3, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, features)), rng.integers(0, classes, n)


def model(dtype="float64", seed=0):
    return pynn.Sequential([pynn.Dense(7, 6, "tanh"), pynn.Dense(6, 3)], seed=seed,
                           dtype=dtype)


def save(**arrays):
    np.savez(f"{outdir}/rank{rank}.npz", **arrays)


if scenario in ("equivalence", "equivalence-adam", "weighted"):
    X, y = data()
    m = model()
    if rank:  # different weights elsewhere: rank 0's must win
        m.params[...] = np.random.default_rng(rank).standard_normal(m.params.size)
    opt = pynn.Adam(0.01) if scenario == "equivalence-adam" else pynn.SGD(0.1, momentum=0.9)
    w = np.random.default_rng(5).random(len(y)) if scenario == "weighted" else None
    h = m.fit(X, y, loss="cross_entropy", optimizer=opt, epochs=3, batch_size=4, seed=1,
              comm=comm, sample_weight=w, validation_data=(X[:13], y[:13]))
    scores = m.evaluate(X, y, comm=comm)
    save(params=m.params, loss=h.history["loss"], val_loss=h.history["val_loss"],
         accuracy=h.history["accuracy"], eval=[scores["loss"], scores["accuracy"]])
elif scenario == "float32":
    X, y = data(n=203)
    m = model("float32")
    m.fit(X, y, loss="cross_entropy", optimizer=pynn.SGD(0.05, momentum=0.9), epochs=2,
          batch_size=16, comm=comm)
    save(params=m.params)
elif scenario == "diverge":
    X, y = data()
    X[4:8] = 1e308  # rows of rank 1's part of the first global batch: only its loss overflows
    m = pynn.Sequential([pynn.Dense(7, 6), pynn.Dense(6, 3)], seed=0, dtype="float64")
    before = m.params.copy()
    try:
        m.fit(X, y, loss="cross_entropy", optimizer=pynn.SGD(0.1), epochs=1, batch_size=4,
              shuffle=False, comm=comm)
        outcome = "no error"
    except pynn.TrainingDivergedError as exc:
        outcome = (f"TrainingDivergedError at batch {exc.batch}, weights unchanged: "
                   f"{np.array_equal(m.params, before)}")
    with open(f"{outdir}/rank{rank}.txt", "w") as f:
        f.write(outcome)
elif scenario == "disagree":
    X, y = data()
    m = model()
    try:
        m.fit(X, y, loss="cross_entropy", epochs=1, batch_size=4, seed=rank, comm=comm)
        outcome = "no error"
    except ValueError as exc:
        outcome = str(exc)
    with open(f"{outdir}/rank{rank}.txt", "w") as f:
        f.write(outcome)
elif scenario == "crash":
    X, y = data()
    if rank == 1:
        raise RuntimeError("rank 1 fails")
    model().fit(X, y, loss="cross_entropy", epochs=50, batch_size=1, comm=comm)
elif scenario == "estimator":
    from pynn.sklearn import MLPClassifier

    X, y = data(n=90)
    est = MLPClassifier((6,), solver="sgd", learning_rate_init=0.05, batch_size=5, max_iter=4,
                        random_state=0, tol=0, n_iter_no_change=100)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est.fit(X, y, comm=comm)
    save(params=np.concatenate([c.ravel() for c in est.coefs_ + est.intercepts_]),
         loss=est.loss_curve_)
elif scenario == "checkpoint":
    X, y = data()
    m = model()
    m.fit(X, y, loss="cross_entropy", optimizer=pynn.SGD(0.1, momentum=0.9), epochs=2,
          batch_size=4, seed=1, comm=comm)
    pynn.save(m, f"{outdir}/ckpt.npz", comm=comm)  # rank 0 writes, the others wait
    resumed = pynn.load(f"{outdir}/ckpt.npz")
    assert resumed.params.tobytes() == m.params.tobytes()
    resumed.fit(X, y, epochs=1, batch_size=4, seed=2, comm=comm)
    save(params=resumed.params)
else:
    raise SystemExit(f"unknown scenario {scenario}")
