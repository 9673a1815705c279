"""One engine, two front ends: `pynn.sklearn.MLPClassifier.fit` against `pynn.Sequential.fit` on
the same model, data and settings (the one-engine issue's target: within 5%).

20000 x 784 float32 rows (Fashion-MNIST's first 20000 training images when installed, else
random data of that shape), hidden layers 256-128 relu, 10 classes, SGD with classical momentum
0.9 (no Nesterov), alpha 0, batch 128, shuffled, a fixed number of epochs. The two fits
alternate in one process (A B A B ...); the figure is the median fit time of each and their
ratio. Run it alone on the machine (`flock /tmp/pynn-bench.lock ...`), 1 thread pinned with
`taskset -c 0`:

    taskset -c 0 python bench/bench_engine.py --threads 1 [--epochs 2] [--repeats 5] [--json P]
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np

from bench import machine as machine_mod

N_ROWS, HIDDEN, CLASSES, BATCH, LR, MOMENTUM = 20000, (256, 128), 10, 128, 0.05, 0.9


def data() -> tuple[np.ndarray, np.ndarray, str]:
    import pynn

    try:
        (X, y), _ = pynn.datasets.load_fashion_mnist()
        return (np.ascontiguousarray(X[:N_ROWS], dtype=np.float32), y[:N_ROWS].astype(np.int64),
                "fashion-mnist[:20000]")
    except FileNotFoundError:
        rng = np.random.default_rng(0)
        return (rng.random((N_ROWS, 784), dtype=np.float32),
                rng.integers(0, CLASSES, N_ROWS), "random 20000x784")


def fit_sequential(X, y, epochs: int) -> float:
    import pynn

    sizes = (X.shape[1],) + HIDDEN
    layers = [pynn.Dense(a, b, "relu") for a, b in zip(sizes[:-1], sizes[1:])]
    model = pynn.Sequential(layers + [pynn.Dense(sizes[-1], CLASSES)], seed=0)
    started = time.perf_counter()
    model.fit(X, y, loss="cross_entropy", optimizer=pynn.SGD(LR, momentum=MOMENTUM),
              epochs=epochs, batch_size=BATCH, seed=0)
    return time.perf_counter() - started


def fit_estimator(X, y, epochs: int) -> float:
    from pynn.sklearn import MLPClassifier

    est = MLPClassifier(HIDDEN, solver="sgd", learning_rate_init=LR, momentum=MOMENTUM,
                        nesterovs_momentum=False, alpha=0.0, batch_size=BATCH, max_iter=epochs,
                        tol=0.0, n_iter_no_change=epochs + 1, shuffle=True, random_state=0)
    started = time.perf_counter()
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # max_iter reached: expected
        est.fit(X, y)
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    machine_mod.reexec_with_clean_env()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", default=None)
    args = parser.parse_args(argv)
    import pynn

    pynn.set_num_threads(args.threads)
    X, y, source = data()
    fit_sequential(X[:2000], y[:2000], 1)  # warm-up: packing buffers, thread team, imports
    fit_estimator(X[:2000], y[:2000], 1)
    times = {"Sequential.fit": [], "MLPClassifier.fit": []}
    for _ in range(args.repeats):
        times["Sequential.fit"].append(fit_sequential(X, y, args.epochs))
        times["MLPClassifier.fit"].append(fit_estimator(X, y, args.epochs))
    seq = statistics.median(times["Sequential.fit"])
    est = statistics.median(times["MLPClassifier.fit"])
    print(f"# {source}, {args.epochs} epochs, {args.threads} thread(s), isa {pynn.get_isa()}")
    print(f"Sequential.fit     {seq:8.3f} s")
    print(f"MLPClassifier.fit  {est:8.3f} s   ({est / seq:.3f}x Sequential.fit's time)")
    if args.json:
        Path(args.json).write_text(json.dumps({
            "machine": machine_mod.describe(measure=False), "data": source,
            "epochs": args.epochs, "threads": args.threads, "times": times,
            "median_s": {"Sequential.fit": seq, "MLPClassifier.fit": est},
            "ratio": est / seq}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
