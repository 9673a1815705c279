"""What the training loop's conveniences cost: the reference epoch plain, with the README's
callbacks and metrics, and from a memory-mapped copy of the data (in the page cache).

Fashion-MNIST 784-256-128-10 relu, SGD lr 0.05 momentum 0.9, batch 128, float32; each variant is
a fresh model, the variants alternate (A B C, A B C, ...) and the figure is the median epoch
after the first. Targets (issue 16): callbacks + metrics < 2% of an epoch; memory-mapped data
within 10% of data in RAM.

    flock /tmp/pynn-bench.lock taskset -c 0 python bench/bench_training_loop.py --threads 1
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import pynn


class _Stamp(pynn.Callback):
    def __init__(self) -> None:
        self.times: list = []

    def on_epoch_end(self, epoch, logs=None) -> None:
        self.times.append(time.perf_counter())


class _Timed:
    """Adds the time spent in a callable to a shared counter (what the extras cost inside fit,
    measured directly: robust to the run-to-run drift of a shared machine)."""

    spent = 0.0

    def __init__(self, fn) -> None:
        self.fn = fn

    def __call__(self, *args, **kwargs):
        start = time.perf_counter()
        try:
            return self.fn(*args, **kwargs)
        finally:
            _Timed.spent += time.perf_counter() - start


def _instrument(objects: list) -> None:
    for obj in objects:
        for name in ("update", "reset", "result", "on_batch_end", "on_epoch_end",
                     "on_epoch_begin"):
            if hasattr(obj, name):
                setattr(obj, name, _Timed(getattr(obj, name)))


def _epochs(X, y, epochs: int, extras: bool, tmp: str) -> list:
    model = pynn.Sequential([pynn.Dense(784, 256, "relu"), pynn.Dense(256, 128, "relu"),
                             pynn.Dense(128, 10)], seed=0)
    stamp = _Stamp()
    callbacks = [stamp]
    metrics = None
    if extras:  # the README's example
        callbacks += [pynn.EarlyStopping("loss", patience=3), pynn.CSVLogger(f"{tmp}/log.csv"),
                      pynn.TerminateOnNaN(), pynn.ReduceLROnPlateau("loss", patience=5),
                      pynn.LambdaCallback(on_batch_end=lambda batch, logs: None)]
        metrics = [pynn.nn.metrics.get("f1"), pynn.nn.metrics.get("top_k_accuracy")]
        _instrument(callbacks[1:] + metrics)
    start = time.perf_counter()
    model.fit(X, y, loss="cross_entropy", optimizer=pynn.SGD(0.05, momentum=0.9), epochs=epochs,
              batch_size=128, seed=0, callbacks=callbacks, metrics=metrics)
    return np.diff([start] + stamp.times).tolist()[1:]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--json", default=None)
    args = parser.parse_args(argv)
    pynn.set_num_threads(args.threads)
    (X, y), _ = pynn.datasets.load_fashion_mnist()
    X = np.ascontiguousarray(X, dtype=np.float32)
    with tempfile.TemporaryDirectory() as tmp:
        np.save(f"{tmp}/X.npy", X)
        mapped = np.load(f"{tmp}/X.npy", mmap_mode="r")
        variants = {"plain": (X, False), "callbacks + metrics": (X, True),
                    "memory-mapped": (mapped, False)}
        times: dict = {k: [] for k in variants}
        for _ in range(args.runs):
            for name, (data, extras) in variants.items():
                times[name] += _epochs(data, y, args.epochs, extras, tmp)
    median = {k: statistics.median(v) for k, v in times.items()}
    base = median["plain"]
    for name, value in median.items():
        print(f"{name:22s} {value:.3f} s/epoch  {100 * (value / base - 1):+.1f}%")
    inside = _Timed.spent / (args.runs * args.epochs)
    print(f"time inside the callbacks and metrics: {1e3 * inside:.1f} ms per epoch, "
          f"{100 * inside / base:.2f}% of the plain epoch")
    if args.json:
        Path(args.json).write_text(json.dumps({"threads": args.threads, "times": times,
                                               "median": median,
                                               "inside_extras_s_per_epoch": inside},
                                              indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
