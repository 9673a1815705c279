"""A/B: the reference epoch of two pynn builds (say, main and the commit before a change),
interleaved run by run. Each run is a fresh process of the given interpreter (its own venv with
its own pynn): Fashion-MNIST 784-256-128-10 relu, SGD lr 0.05 momentum 0.9, batch 128, float32,
shuffled (--sizes and --batch change the net and the batch: --sizes 784-1024-1024-10 is the
wide net); the run's figure is the median epoch after the first; the result the median over runs
of each side and the ratio B/A.

    python bench/bench_epoch_ab.py --a /path/to/venv-old/bin/python --b python --threads 1

On a machine whose speed drifts (a shared VM: +-30% from minute to minute), --simultaneous
runs A and B at the same time, each on one core with 1 thread (swapping the cores every run),
so that both see the same drift and each run's B/A is a fair ratio; the result is their median.
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
sizes, batch = [int(v) for v in sys.argv[3].split("-")], int(sys.argv[4])
pynn.set_num_threads(threads)
(X, y), _ = pynn.datasets.load_fashion_mnist()
X = np.ascontiguousarray(X, dtype=np.float32)
stamps = []
class Stamp(pynn.Callback):
    def on_epoch_end(self, epoch, logs=None):
        stamps.append(time.perf_counter())
model = pynn.Sequential([pynn.Dense(i, o, "relu" if k < len(sizes) - 2 else "identity")
                         for k, (i, o) in enumerate(zip(sizes[:-1], sizes[1:]))], seed=0)
start = time.perf_counter()
h = model.fit(X, y, loss="cross_entropy", optimizer=pynn.SGD(0.05, momentum=0.9),
              epochs=epochs, batch_size=batch, seed=0, callbacks=[Stamp()])
times = np.diff([start] + stamps)
print(json.dumps({"epochs": times.tolist(), "loss": h.history["loss"][-1],
                  "pynn": pynn.__file__}))
"""


def _env() -> dict:
    env = {k: v for k, v in os.environ.items()
           if k not in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")}
    env["PYTHONSAFEPATH"] = "1"
    return env


def run(python: str, threads: int, epochs: int, net: list[str]) -> dict:
    cmd = [python, "-c", WORKER, str(threads), str(epochs)] + net
    if threads == 1:
        cmd = ["taskset", "-c", "0"] + cmd
    out = subprocess.run(cmd, capture_output=True, text=True, env=_env(), check=True, cwd="/")
    return json.loads(out.stdout.strip().splitlines()[-1])


def run_together(pythons: tuple[str, str], cores: tuple[int, int], epochs: int,
                 net: list[str]) -> list[dict]:
    """Both builds at once, 1 thread each, pinned to the given cores."""
    procs = [subprocess.Popen(["taskset", "-c", str(core), python, "-c", WORKER, "1",
                               str(epochs)] + net, stdout=subprocess.PIPE, text=True, env=_env(),
                              cwd="/") for python, core in zip(pythons, cores)]
    outs = [proc.communicate()[0] for proc in procs]
    if any(proc.returncode for proc in procs):
        raise RuntimeError("a worker failed")
    return [json.loads(out.strip().splitlines()[-1]) for out in outs]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--a", required=True, help="interpreter of build A (the baseline)")
    parser.add_argument("--b", default=sys.executable, help="interpreter of build B")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--runs", type=int, default=4)
    parser.add_argument("--sizes", default="784-256-128-10", help="layer widths, a-b-c-...")
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--json", default=None)
    parser.add_argument("--simultaneous", action="store_true",
                        help="run A and B at once on the two cores (1 thread each)")
    args = parser.parse_args(argv)
    args.net = [args.sizes, str(args.batch)]
    if args.simultaneous:
        return simultaneous(args)
    medians = {"A": [], "B": []}
    for _ in range(args.runs):
        for side, python in (("A", args.a), ("B", args.b)):
            result = run(python, args.threads, args.epochs, args.net)
            medians[side].append(statistics.median(result["epochs"][1:]))
            print(f"{side}: epochs {[round(t, 3) for t in result['epochs']]} "
                  f"loss {result['loss']:.4f}", file=sys.stderr)
    a, b = statistics.median(medians["A"]), statistics.median(medians["B"])
    print(f"{args.threads} thread(s): A {a:.3f} s/epoch, B {b:.3f} s/epoch, B/A {b / a:.3f}")
    if args.json:
        Path(args.json).write_text(json.dumps({"threads": args.threads, "net": args.net,
                                               "a": args.a,
                                               "b": args.b, "medians": medians,
                                               "ratio_b_over_a": b / a}, indent=1))
    return 0


def simultaneous(args) -> int:
    ratios, medians = [], {"A": [], "B": []}
    for k in range(args.runs):
        cores = (0, 1) if k % 2 == 0 else (1, 0)
        results = run_together((args.a, args.b), cores, args.epochs, args.net)
        a, b = (statistics.median(r["epochs"][1:]) for r in results)
        medians["A"].append(a)
        medians["B"].append(b)
        ratios.append(b / a)
        print(f"run {k}: A {a:.3f} s (core {cores[0]}), B {b:.3f} s (core {cores[1]}), "
              f"B/A {b / a:.3f}", file=sys.stderr)
    ratio = statistics.median(ratios)
    print(f"1 thread, simultaneous: B/A {ratio:.3f} (median of {args.runs} runs)")
    if args.json:
        Path(args.json).write_text(json.dumps({"threads": 1, "simultaneous": True,
                                               "net": args.net, "a": args.a,
                                               "b": args.b, "medians": medians,
                                               "ratios_b_over_a": ratios,
                                               "ratio_b_over_a": ratio}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
