"""What Dropout and BatchNorm cost per training step, and the same model against PyTorch.

Fashion-MNIST-shaped data (784 features, 10 classes; real Fashion-MNIST when installed, else
random numbers of the same shape: the timing does not depend on the values), 784-512-512-10
relu, Adam lr 1e-3, batch 128, float32. Variants, each a fresh model trained for a few
epochs, alternating (A B C D, A B C D, ...); the figure is the median time per step:

- plain:      Dense-relu, Dense-relu, Dense
- dropout:    plain with Dropout(0.2) after each hidden layer
- batchnorm:  Dense, BatchNorm, Activation(relu) per hidden layer
- both:       BatchNorm and Dropout
- torch both: the same layers in PyTorch (torch.nn.Linear, BatchNorm1d, ReLU, Dropout), eager,
  the same batches gathered in NumPy

Targets (issue 15): Dropout <= 5% and BatchNorm <= 10% over plain; pynn >= 1.5x PyTorch.

    flock /tmp/pynn-bench.lock taskset -c 0 python bench/bench_layers.py --threads 1
"""
from __future__ import annotations

import argparse
import json
import statistics
import time

import numpy as np

import pynn

HIDDEN = (512, 512)


def _data(rows: int) -> tuple:
    try:
        (X, y), _ = pynn.datasets.load_fashion_mnist()
        return X[:rows].astype(np.float32), y[:rows].astype(np.int64)
    except (FileNotFoundError, OSError, ValueError):
        rng = np.random.default_rng(0)
        return rng.random((rows, 784), dtype=np.float32), rng.integers(0, 10, rows)


def _pynn_layers(variant: str) -> list:
    layers, width = [], 784
    for h in HIDDEN:
        if variant in ("batchnorm", "both"):
            layers += [pynn.Dense(width, h), pynn.BatchNorm(), pynn.Activation("relu")]
        else:
            layers.append(pynn.Dense(width, h, "relu"))
        if variant in ("dropout", "both"):
            layers.append(pynn.Dropout(0.2))
        width = h
    return layers + [pynn.Dense(width, 10)]


def _pynn_step_time(variant: str, X, y, epochs: int, batch: int) -> float:
    model = pynn.Sequential(_pynn_layers(variant), seed=0)
    stamps = []

    class Stamp(pynn.Callback):
        def on_epoch_end(self, epoch, logs=None):
            stamps.append(time.perf_counter())

    start = time.perf_counter()
    model.fit(X, y, loss="cross_entropy", optimizer=pynn.Adam(1e-3), epochs=epochs,
              batch_size=batch, seed=0, callbacks=[Stamp()])
    steps = -(-len(X) // batch)
    times = np.diff([start] + stamps)[1:]  # the first epoch allocates
    return float(np.median(times)) / steps


def _torch_step_time(X, y, epochs: int, batch: int) -> float | None:
    try:
        import torch
    except ImportError:
        return None
    torch.manual_seed(0)
    nn = torch.nn
    modules, width = [], 784
    for h in HIDDEN:
        modules += [nn.Linear(width, h), nn.BatchNorm1d(h), nn.ReLU(), nn.Dropout(0.2)]
        width = h
    net = nn.Sequential(*modules, nn.Linear(width, 10))
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    rng = np.random.default_rng(0)
    times = []
    for _ in range(epochs):
        order = rng.permutation(len(X))
        start = time.perf_counter()
        for lo in range(0, len(X), batch):
            idx = order[lo:lo + batch]
            xb, yb = torch.from_numpy(X[idx]), torch.from_numpy(y[idx])
            opt.zero_grad()
            nn.functional.cross_entropy(net(xb), yb).backward()
            opt.step()
        times.append(time.perf_counter() - start)
    return float(np.median(times[1:])) / (-(-len(X) // batch))


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rows", type=int, default=20000)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--json", help="write the figures here too")
    args = parser.parse_args(argv)
    pynn.set_num_threads(args.threads)
    try:
        import torch
        torch.set_num_threads(args.threads)
    except ImportError:
        pass
    X, y = _data(args.rows)
    rows = len(X) - (len(X) % args.batch == 1)  # no last batch of one row (BatchNorm)
    X, y = X[:rows], y[:rows]
    variants = ["plain", "dropout", "batchnorm", "both"]
    runs: dict = {v: [] for v in variants + ["torch both"]}
    for _ in range(args.rounds):
        for v in variants:
            runs[v].append(_pynn_step_time(v, X, y, args.epochs, args.batch))
        t = _torch_step_time(X, y, args.epochs, args.batch)
        if t is not None:
            runs["torch both"].append(t)
    step = {k: statistics.median(v) for k, v in runs.items() if v}
    print(f"784-512-512-10, batch {args.batch}, float32, {args.threads} thread(s), "
          f"{len(X)} rows, median step time")
    print("| variant | ms/step | vs plain | vs pynn both |")
    print("|---|---|---|---|")
    for name, t in step.items():
        print(f"| {name} | {t * 1e3:.3f} | {t / step['plain']:.3f}x | "
              f"{t / step['both']:.2f}x |")
    result = {"threads": args.threads, "batch": args.batch, "step_seconds": step}
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1)
    return result


if __name__ == "__main__":
    main()
