"""Data-parallel training on MPI: pynn at 1 and 2 ranks against one process with 2 threads and
against PyTorch DistributedDataParallel (gloo), then a model of the step time at scale.

Fashion-MNIST 784-256-128-10 relu, softmax cross-entropy, SGD lr 0.05 momentum 0.9, per-rank batch
128, float32, shuffled; the figure of a run is its median epoch after the first, as samples/s.
Runs alternate between the systems (A B C D, A B C D ...) and the result is the median per
system. Ranks are launched with MPICH's `mpiexec -n R -bind-to core` and 1 thread each.

The model at scale: a step costs the measured per-step compute (1 rank) plus a ring all-reduce of
the gradient bytes, 2(N-1)/N x bytes / bandwidth + 2(N-1) x latency (the latency measured here
for a 1-float Allreduce), with no overlap; it prints the efficiency for 2 to 64 nodes over 1,
10, 25 and 100 Gbit/s and the per-rank batch that keeps the efficiency at 90%.

    flock /tmp/pynn-bench.lock python bench/bench_distributed.py [--runs 3] [--epochs 3]
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"

PYNN = r"""
import json, sys, time
import numpy as np
import pynn
comm = None
if RANKS > 1:
    from mpi4py import MPI
    comm = MPI.COMM_WORLD
pynn.set_num_threads(THREADS)
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
              epochs=EPOCHS, batch_size=128, seed=0, callbacks=[Stamp()], comm=comm)
if comm is None or comm.Get_rank() == 0:
    print("@@" + json.dumps({"epochs": np.diff([start] + stamps).tolist(),
                             "loss": h.history["loss"][-1]}))
"""

TORCH_DDP = r"""
import json, os, time
import numpy as np
import torch, torch.distributed as dist
from mpi4py import MPI
import pynn
comm = MPI.COMM_WORLD
rank, size = comm.Get_rank(), comm.Get_size()
torch.set_num_threads(1)
dist.init_process_group("gloo", init_method="tcp://127.0.0.1:29533", rank=rank,
                        world_size=size)
(X, y), _ = pynn.datasets.load_fashion_mnist()
X = torch.from_numpy(np.ascontiguousarray(X, dtype=np.float32))
y = torch.from_numpy(y.astype(np.int64))
torch.manual_seed(0)
net = torch.nn.Sequential(torch.nn.Linear(784, 256), torch.nn.ReLU(), torch.nn.Linear(256, 128),
                          torch.nn.ReLU(), torch.nn.Linear(128, 10))
model = torch.nn.parallel.DistributedDataParallel(net)
opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
loss_fn = torch.nn.CrossEntropyLoss()
rng = np.random.default_rng(0)
n, b = X.shape[0], 128
times = []
for epoch in range(EPOCHS):
    start = time.perf_counter()
    order = torch.from_numpy(rng.permutation(n))
    for g in range(0, n, b * size):
        idx = order[g + rank * b: min(g + (rank + 1) * b, n)]
        if len(idx) == 0:
            idx = order[g:g + 1]
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(model(X[idx]), y[idx])
        loss.backward()
        opt.step()
    times.append(time.perf_counter() - start)
if rank == 0:
    print("@@" + json.dumps({"epochs": times, "loss": float(loss)}))
dist.destroy_process_group()
"""

ALLREDUCE = r"""
import json, time
import numpy as np
from mpi4py import MPI
comm = MPI.COMM_WORLD
g = np.ones(235146, np.float32)
one = np.ones(1, np.float64)
def timed(buf, reps):
    for _ in range(20):
        comm.Allreduce(MPI.IN_PLACE, buf)
    comm.Barrier()
    t = time.perf_counter()
    for _ in range(reps):
        comm.Allreduce(MPI.IN_PLACE, buf)
    return (time.perf_counter() - t) / reps
big = sorted(timed(g, 200) for _ in range(5))[2]
small = sorted(timed(one, 2000) for _ in range(5))[2]
if comm.Get_rank() == 0:
    print("@@" + json.dumps({"gradients_s": big, "latency_s": small, "bytes": g.nbytes}))
"""


def _env(threads: int) -> dict:
    env = {k: v for k, v in os.environ.items()
           if k not in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")}
    env.update(PYTHONSAFEPATH="1", OMP_NUM_THREADS=str(threads))
    return env


def _run(code: str, ranks: int, threads: int, epochs: int) -> dict:
    code = code.replace("RANKS", str(ranks)).replace("THREADS", str(threads)) \
        .replace("EPOCHS", str(epochs))
    if ranks == 1:
        cmd = [sys.executable, "-c", code]
        if threads == 1:
            cmd = ["taskset", "-c", "0"] + cmd
    else:
        mpiexec = shutil.which("mpiexec", path=os.path.dirname(sys.executable))
        cmd = [mpiexec, "-n", str(ranks), "-bind-to", "core", sys.executable, "-m", "mpi4py",
               "-c", code]
    out = subprocess.run(cmd, capture_output=True, text=True, env=_env(threads), cwd="/",
                         check=False)
    if out.returncode != 0:
        raise RuntimeError(f"{cmd[:4]} failed: {out.stderr[-2000:]}")
    line = [x for x in out.stdout.splitlines() if x.startswith("@@")][-1]
    return json.loads(line[2:])


def scale_model(step_compute_s: float, per_rank_batch: int, allreduce: dict) -> list[dict]:
    rows = []
    for gbit in (1, 10, 25, 100):
        bandwidth = gbit * 1e9 / 8
        for nodes in (2, 4, 8, 16, 32, 64):
            volume = 2 * (nodes - 1) / nodes * allreduce["bytes"]
            t_ar = volume / bandwidth + 2 * (nodes - 1) * allreduce["latency_s"]
            efficiency = step_compute_s / (step_compute_s + t_ar)
            per_sample = step_compute_s / per_rank_batch
            batch_90 = 9 * t_ar / per_sample  # c*b / (c*b + t) >= 0.9
            rows.append({"gbit_s": gbit, "nodes": nodes, "allreduce_ms": 1e3 * t_ar,
                         "efficiency_batch128": efficiency, "batch_for_90pct": batch_90})
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--no-torch", action="store_true")
    args = parser.parse_args(argv)
    systems = {"pynn 1 rank x 1 thread": (PYNN, 1, 1), "pynn 2 ranks x 1 thread": (PYNN, 2, 1),
               "pynn 1 process x 2 threads": (PYNN, 1, 2)}
    if not args.no_torch:
        systems["torch DDP gloo 2 x 1 thread"] = (TORCH_DDP, 2, 1)
    epoch_s: dict[str, list] = {name: [] for name in systems}
    losses = {}
    for _ in range(args.runs):
        for name, (code, ranks, threads) in systems.items():
            result = _run(code, ranks, threads, args.epochs)
            epoch_s[name].append(statistics.median(result["epochs"][1:]))
            losses[name] = result["loss"]
            print(f"{name}: {[round(t, 3) for t in result['epochs']]}", file=sys.stderr)
    allreduce = _run(ALLREDUCE, 2, 1, 0)
    median = {name: statistics.median(v) for name, v in epoch_s.items()}
    samples = 60000
    one = median["pynn 1 rank x 1 thread"]
    step_compute = one / (samples / 128)
    report = {"epoch_s": median, "runs": epoch_s, "final_loss": losses,
              "samples_per_s": {k: samples / v for k, v in median.items()},
              "speedup_2_ranks": one / median["pynn 2 ranks x 1 thread"],
              "vs_2_threads": median["pynn 1 process x 2 threads"] /
              median["pynn 2 ranks x 1 thread"],
              "allreduce": allreduce, "step_compute_s": step_compute,
              "scale_model": scale_model(step_compute, 128, allreduce)}
    if "torch DDP gloo 2 x 1 thread" in median:
        report["vs_torch_ddp"] = median["torch DDP gloo 2 x 1 thread"] / \
            median["pynn 2 ranks x 1 thread"]
    lines = ["| system | s/epoch | samples/s |", "|---|---|---|"]
    lines += [f"| {k} | {v:.3f} | {samples / v:,.0f} |" for k, v in median.items()]
    lines.append(f"\n2 ranks vs 1 rank: {report['speedup_2_ranks']:.2f}x; vs 1 process x 2 "
                 f"threads: {report['vs_2_threads']:.2f}x"
                 + (f"; vs torch DDP: {report['vs_torch_ddp']:.2f}x"
                    if "vs_torch_ddp" in report else ""))
    lines.append(f"Allreduce of the 235,146 float32 gradients, 2 ranks here: "
                 f"{1e6 * allreduce['gradients_s']:.0f} us; 1-float latency "
                 f"{1e6 * allreduce['latency_s']:.1f} us; compute per step (1 rank, batch 128) "
                 f"{1e3 * step_compute:.2f} ms\n")
    lines += ["| Gbit/s | nodes | all-reduce ms | efficiency at batch 128 | batch for 90% |",
              "|---|---|---|---|---|"]
    lines += [f"| {r['gbit_s']} | {r['nodes']} | {r['allreduce_ms']:.2f} | "
              f"{100 * r['efficiency_batch128']:.0f}% | {r['batch_for_90pct']:.0f} |"
              for r in report["scale_model"]]
    text = "\n".join(lines)
    print(text)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "distributed.json").write_text(json.dumps(report, indent=1))
    (RESULTS / "distributed.md").write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
