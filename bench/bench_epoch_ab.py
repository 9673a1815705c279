"""A/B: the reference epoch of two pynn builds (say, main and the commit before a change),
interleaved run by run. Each run is a fresh process of the given interpreter (its own venv with
its own pynn): Fashion-MNIST 784-256-128-10 relu, SGD lr 0.05 momentum 0.9, batch 128, float32,
shuffled; the run's figure is the median epoch after the first; the result the median over runs
of each side and the ratio B/A.

    python bench/bench_epoch_ab.py --a /path/to/venv-old/bin/python --b python --threads 1
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

WORKER = r"""
import json, sys, time
import numpy as np
import pynn
threads, epochs = int(sys.argv[1]), int(sys.argv[2])
pynn.set_num_threads(threads)
(X, y), _ = pynn.datasets.load_fashion_mnist()
X = np.ascontiguousarray(X, dtype=np.float32)
stamps = []
class Stamp(pynn.Callback):
    def on_epoch_end(self, epoch, logs=None):
        stamps.append(time.perf_counter())
model = pynn.Sequential([pynn.Dense(784, 256, "relu"), pynn.Dense(256, 128, "relu"),
                         pynn.Dense(128, 10)], seed=0)
start = time.perf_counter()
h = model.fit(X, y, loss="cross_entropy", optimizer=pynn.SGD(0.05, momentum=0.9),
              epochs=epochs, batch_size=128, seed=0, callbacks=[Stamp()])
times = np.diff([start] + stamps)
print(json.dumps({"epochs": times.tolist(), "loss": h.history["loss"][-1],
                  "pynn": pynn.__file__}))
"""


def run(python: str, threads: int, epochs: int) -> dict:
    env = {k: v for k, v in os.environ.items()
           if k not in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")}
    env["PYTHONSAFEPATH"] = "1"
    cmd = [python, "-c", WORKER, str(threads), str(epochs)]
    if threads == 1:
        cmd = ["taskset", "-c", "0"] + cmd
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, check=True, cwd="/")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--a", required=True, help="interpreter of build A (the baseline)")
    parser.add_argument("--b", default=sys.executable, help="interpreter of build B")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--runs", type=int, default=4)
    parser.add_argument("--json", default=None)
    args = parser.parse_args(argv)
    medians = {"A": [], "B": []}
    for _ in range(args.runs):
        for side, python in (("A", args.a), ("B", args.b)):
            result = run(python, args.threads, args.epochs)
            medians[side].append(statistics.median(result["epochs"][1:]))
            print(f"{side}: epochs {[round(t, 3) for t in result['epochs']]} "
                  f"loss {result['loss']:.4f}", file=sys.stderr)
    a, b = statistics.median(medians["A"]), statistics.median(medians["B"])
    print(f"{args.threads} thread(s): A {a:.3f} s/epoch, B {b:.3f} s/epoch, B/A {b / a:.3f}")
    if args.json:
        Path(args.json).write_text(json.dumps({"threads": args.threads, "a": args.a,
                                               "b": args.b, "medians": medians,
                                               "ratio_b_over_a": b / a}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
