"""Training speed: pynn against the textbook NumPy MLP, PyTorch, JAX and scikit-learn (issue 6).

The reference workload (shared/BENCHMARKS.md): Fashion-MNIST, 784-256-128-10 relu, softmax
cross-entropy, SGD lr 0.05 momentum 0.9, batch 128, He-normal init, shuffled every epoch, float32;
plus batch 32 and 512 and a wider 784-1024-1024-10 net (shorter runs). Every system starts from
the same weights, runs in its own worker process (clean threads, own peak RSS) and the systems'
epochs alternate (A B C D A B C D ...), so ratios come from one run. Per system: median seconds
per epoch after the warm-up epoch, samples/s, % of the measured FMA peak, test accuracy after
the last epoch, peak RSS (the data set included), and the ratio of its epoch time to pynn's.
pynn's epochs are those of one model.fit(epochs=...) call, paused between epochs (the way users
train: fit checks its inputs once per call, not per epoch); the others run one epoch per call.

    python bench/bench_train.py [--quick] [--json PATH]
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `bench` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import machine as machine_mod
from bench.systems import SYSTEMS, DataMissing, Worker, WorkerError, start_workers

# Full run: about 5 minutes on 2 cores. --quick: under a minute. --tiny: the test's pipeline check.
CONFIGS = {
    "full": [
        {"name": "batch128", "hidden": [256, 128], "batch_size": 128, "epochs": 6,
         "budget_s": 180},
        {"name": "batch32", "hidden": [256, 128], "batch_size": 32, "epochs": 3, "budget_s": 60},
        {"name": "batch512", "hidden": [256, 128], "batch_size": 512, "epochs": 3,
         "budget_s": 60},
        {"name": "wide1024", "hidden": [1024, 1024], "batch_size": 128, "epochs": 3,
         "n_train": 15000, "budget_s": 60},
    ],
    "quick": [
        {"name": "batch128", "hidden": [256, 128], "batch_size": 128, "epochs": 3,
         "n_train": 15000, "budget_s": 30},
        {"name": "wide1024", "hidden": [1024, 1024], "batch_size": 128, "epochs": 2,
         "n_train": 3000},
    ],
    "tiny": [
        {"name": "batch128", "hidden": [32, 16], "batch_size": 128, "epochs": 2, "n_train": 512,
         "n_test": 256},
    ],
}
RECIPE = {"dataset": "fashion-mnist", "lr": 0.05, "momentum": 0.9, "seed": 0}
# Idle worker pools (OpenBLAS, OpenMP) spin for a moment after their last job; a short pause
# between two systems' epochs keeps one's spinning threads off the other's cores.
HANDOFF_PAUSE_S = 0.15


def gemm_flops_per_sample(sizes: list[int]) -> int:
    """FLOPs of the GEMMs one sample costs in a training step: forward x.W of every layer, dW of
    every layer, dx of every layer but the first (2 FLOPs per multiply-add)."""
    pairs = list(zip(sizes[:-1], sizes[1:]))
    macs = 2 * sum(i * o for i, o in pairs) + sum(i * o for i, o in pairs[1:])
    return 2 * macs


def median(values: list[float]) -> float:
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else 0.5 * (ordered[mid - 1] + ordered[mid])


def run_config(config: dict, threads: int, systems: list[str], machine: dict,
               epochs_override: int | None = None, log=machine_mod.say) -> dict:
    """Train every system `epochs` epochs at `threads` threads, epochs interleaved."""
    cfg = {**RECIPE, **config, "threads": threads}
    epochs = epochs_override or cfg["epochs"]
    out: dict = {"threads": threads, "systems": {}}
    workers: dict[str, Worker] = {}
    try:
        workers, answers = start_workers(systems, threads, cfg, out, log)
        for system, setup in answers.items():
            out["n_train"], out["n_test"] = setup["n_train"], setup["n_test"]
            out["systems"][system] = {"epoch_seconds": [], "losses": []}
        names = list(workers)
        started = time.perf_counter()
        budget = cfg.get("budget_s")
        for epoch in range(epochs):
            if budget and epoch >= 2 and time.perf_counter() - started > budget:
                # A loaded machine can make epochs many times slower; the run stays bounded and
                # says so (every system still gets the same number of epochs).
                out["truncated"] = f"stopped after {epoch} of {epochs} epochs ({budget} s budget)"
                log(f"  {out['truncated']}")
                break
            # Rotate the order each epoch so no system always follows the same neighbour.
            order = names[epoch % max(len(names), 1):] + names[:epoch % max(len(names), 1)]
            for system in order:
                time.sleep(HANDOFF_PAUSE_S)
                try:
                    answer = workers[system].call("epoch")
                except WorkerError as exc:
                    out["systems"][system]["error"] = str(exc)
                    workers.pop(system).close()
                    names.remove(system)
                    continue
                out["systems"][system]["epoch_seconds"].append(answer["seconds"])
                out["systems"][system]["losses"].append(answer["loss"])
            log(f"  epoch {epoch + 1}/{epochs}: " + "  ".join(
                f"{s} {out['systems'][s]['epoch_seconds'][-1]:.3f}s" for s in names))
        for system, worker in workers.items():
            row = out["systems"][system]
            try:
                row.update(worker.call("accuracy"))
                row.update(worker.call("rss"))
            except WorkerError as exc:
                row["error"] = str(exc)
    finally:
        for worker in workers.values():
            worker.close()
    summarize(out, cfg, machine)
    return out


def summarize(out: dict, cfg: dict, machine: dict) -> None:
    """Median epoch (after the warm-up epoch), samples/s, % of peak, ratio to pynn."""
    sizes = [784, *cfg["hidden"], 10]
    n_train = out.get("n_train", 0)
    flops = gemm_flops_per_sample(sizes) * n_train
    out["flops_per_epoch"] = flops
    peak = machine_mod.peak_gflops(machine, out["threads"])
    out["fma_peak_gflops"] = peak
    for row in out["systems"].values():
        times = row.get("epoch_seconds") or []
        if not times:
            continue
        timed = times[1:] if len(times) > 1 else times  # the first epoch is the warm-up
        row["median_epoch_s"] = median(timed)
        row["samples_per_s"] = n_train / row["median_epoch_s"]
        row["gflops"] = flops / row["median_epoch_s"] / 1e9
        row["pct_fma_peak"] = 100 * row["gflops"] / peak if peak else None
    base = out["systems"].get("pynn", {}).get("median_epoch_s")
    for row in out["systems"].values():
        if base and "median_epoch_s" in row:
            row["time_ratio_to_pynn"] = row["median_epoch_s"] / base


def table(results: dict) -> str:
    """A markdown table: one row per config x threads x system."""
    lines = [("| config | threads | system | s/epoch | samples/s | % FMA peak | epochs | "
              "test acc | peak RSS MiB | time / pynn |"),
             "|---|---|---|---|---|---|---|---|---|---|"]
    for config in results["configs"]:
        for run in config["runs"]:
            for system, row in run["systems"].items():
                if "median_epoch_s" not in row:
                    lines.append(f"| {config['name']} | {run['threads']} | {system} | "
                                 f"n/a: {row.get('error', '?')[:60]} | | | | | | |")
                    continue
                pct = row.get("pct_fma_peak")
                ratio = row.get("time_ratio_to_pynn")
                lines.append(
                    f"| {config['name']} | {run['threads']} | {system} | "
                    f"{row['median_epoch_s']:.3f} | {row['samples_per_s']:,.0f} | "
                    f"{'' if pct is None else f'{pct:.0f}%'} | {len(row['epoch_seconds'])} | "
                    f"{row.get('test_accuracy', float('nan')):.4f} | "
                    f"{row.get('peak_rss_mib', float('nan')):.0f} | "
                    f"{'' if ratio is None else f'{ratio:.2f}x'} |")
    return "\n".join(lines)


def run(mode: str = "full", systems: list[str] | None = None, threads: list[int] | None = None,
        machine: dict | None = None, configs: list[str] | None = None, log=machine_mod.say) -> dict:
    machine = machine or machine_mod.describe(quick=mode != "full")
    threads = threads or (machine.get("limits", {}).get("threads") or machine_mod.thread_counts())
    systems = systems or list(SYSTEMS)
    results = {"benchmark": "train", "mode": mode, "recipe": RECIPE, "systems": systems,
               "date_utc": machine["date_utc"], "git": machine.get("git"), "configs": []}
    for config in CONFIGS[mode]:
        if configs and config["name"] not in configs:
            continue
        entry = {**config, "sizes": [784, *config["hidden"], 10], "runs": []}
        for t in threads:
            log(f"train {config['name']} {entry['sizes']} batch {config['batch_size']}, "
                f"{t} thread(s)")
            entry["runs"].append(run_config(config, t, systems, machine, log=log))
        results["configs"].append(entry)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = machine_mod.bench_parser(__doc__.split("\n\n")[0], systems=",".join(SYSTEMS))
    parser.add_argument("--configs", help="comma-separated config names")
    args = parser.parse_args(argv)
    machine_mod.reexec_with_clean_env()
    mode_name = machine_mod.mode_of(args)
    with machine_mod.bench_lock(not args.no_lock):
        machine = machine_mod.load_machine(args.machine, quick=mode_name != "full")
        try:
            results = run(mode_name, systems=machine_mod.comma_list(args.systems),
                          threads=machine_mod.comma_list(args.threads, int), machine=machine,
                          configs=machine_mod.comma_list(args.configs))
        except DataMissing as exc:
            print(exc, file=sys.stderr)
            return 2
    return machine_mod.finish(results, machine, table, args.json)


if __name__ == "__main__":
    sys.exit(main())
