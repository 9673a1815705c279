"""The one-call training step against the same step composed from Python, A/B in one process.

A model of Dense layers trains with one C call per step (`_core._Network.train_step`: gather,
forward, fused loss, backward; then the optimizer's update). The same kernels called one by one
from Python (gather, forward, loss, backward: what every model with other layers runs) are the
baseline: a `CrossEntropy` whose `value_and_grad` is overridden takes that path. Both train the
reference model (784-256-128-10 relu, SGD momentum 0.9, float32, shuffled) on 20000 rows of
Fashion-MNIST (random data of that shape when it is not installed); epochs alternate A B A B
and the figure is each side's median epoch and their ratio (> 1: the one-call step is faster).
Run it alone on the machine, 1 thread pinned with `taskset -c 0`:

    taskset -c 0 python bench/bench_step.py --threads 1 [--batch 32 128] [--json P]
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

from bench import machine as machine_mod
from bench.bench_engine import data


def composed_loss():
    """Cross-entropy computed by the same kernel, but through an overridden value_and_grad: the
    engine cannot run it inside the C step, so it composes the step from Python."""
    import pynn

    class Composed(pynn.losses.CrossEntropy):
        def value_and_grad(self, outputs, target, *, sample_weight=None, out=None):
            return super().value_and_grad(outputs, target, sample_weight=sample_weight,
                                          out=out)
    return Composed()


def model():
    import pynn

    return pynn.Sequential([pynn.Dense(784, 256, "relu"), pynn.Dense(256, 128, "relu"),
                            pynn.Dense(128, 10)], seed=0)


def epoch_times(X, y, batch: int, epochs: int) -> dict:
    """Median epoch of each side, alternating one epoch at a time."""
    import pynn

    sides = {"one_call": (model(), "cross_entropy"), "composed": (model(), composed_loss())}
    times: dict = {name: [] for name in sides}
    for epoch in range(epochs + 1):
        for name, (m, loss) in sides.items():
            started = time.perf_counter()
            m.fit(X, y, loss=loss, optimizer=pynn.SGD(0.05, momentum=0.9), epochs=1,
                  batch_size=batch, seed=epoch)
            if epoch:  # the first fit of each side warms the caches and buffers
                times[name].append(time.perf_counter() - started)
    one, comp = (statistics.median(times[k]) for k in ("one_call", "composed"))
    return {"batch": batch, "one_call_s": one, "composed_s": comp, "speedup": comp / one,
            "epochs": times}


def main(argv: list[str] | None = None) -> int:
    machine_mod.reexec_with_clean_env()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--batch", type=int, nargs="+", default=[32, 128])
    parser.add_argument("--epochs", type=int, default=9)
    parser.add_argument("--json", default=None)
    args = parser.parse_args(argv)
    import pynn

    pynn.set_num_threads(args.threads)
    X, y, source = data()
    rows = []
    for batch in args.batch:
        row = epoch_times(X, y, batch, args.epochs)
        rows.append(row)
        print(f"threads {args.threads} batch {batch:4d}: one call {row['one_call_s']:.3f} s, "
              f"composed {row['composed_s']:.3f} s per epoch of {len(X)} rows: "
              f"{row['speedup']:.3f}x", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps({"data": source, "threads": args.threads,
                                               "rows": rows}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
