"""Inference speed of the reference model (784-256-128-10 relu): pynn, NumPy, PyTorch (issue 6).

Two figures per system and thread count, systems alternating round by round in their own worker
processes: throughput at batch 10000 (samples/s, and % of the FMA peak: 2 FLOPs per weight per
sample), and the latency of one call at batch 1 (what a web service pays per request; at this
size it is almost all Python and dispatch overhead). Every call returns the logits as a NumPy
array, converted from the system's own type where it has one.

    python bench/bench_infer.py [--quick] [--json PATH]
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import machine as machine_mod
from bench.bench_train import HANDOFF_PAUSE_S, RECIPE, median
from bench.systems import DataMissing, Worker, start_workers

SYSTEMS = ("pynn", "numpy", "torch")
MODES = {  # rounds of (batch 10000 for `seconds`, batch 1 for `seconds`) per system
    "full": {"hidden": [256, 128], "big_batch": 10000, "rounds": 5, "seconds": 0.6},
    "quick": {"hidden": [256, 128], "big_batch": 10000, "rounds": 3, "seconds": 0.3},
    "tiny": {"hidden": [32, 16], "big_batch": 256, "rounds": 2, "seconds": 0.05, "n_train": 256,
             "n_test": 256},
}


def forward_flops_per_sample(sizes: list[int]) -> int:
    return 2 * sum(i * o for i, o in zip(sizes[:-1], sizes[1:]))


def run_threads(mode: dict, threads: int, systems: list[str], machine: dict,
                log=machine_mod.say) -> dict:
    cfg = {**RECIPE, "hidden": mode["hidden"], "batch_size": 128, "threads": threads,
           "n_train": mode.get("n_train", 1), "n_test": mode.get("n_test")}
    out: dict = {"threads": threads, "systems": {}}
    workers: dict[str, Worker] = {}
    try:
        workers, _ = start_workers(systems, threads, cfg, out, log)
        for system in workers:
            out["systems"][system] = {"big_batch_s": [], "batch1_s": []}
        for r in range(mode["rounds"]):
            names = list(workers)
            names = names[r % len(names):] + names[:r % len(names)] if names else names
            for system in names:
                row = out["systems"][system]
                time.sleep(HANDOFF_PAUSE_S)
                big = workers[system].call("infer", batch=mode["big_batch"],
                                           seconds=mode["seconds"], min_calls=3)
                time.sleep(HANDOFF_PAUSE_S)
                one = workers[system].call("infer", batch=1, seconds=mode["seconds"],
                                           min_calls=50, warmup=50)
                row["big_batch_s"].append(big["median_s"])
                row["batch1_s"].append(one["median_s"])
    finally:
        for worker in workers.values():
            worker.close()
    sizes = [784, *mode["hidden"], 10]
    flops = forward_flops_per_sample(sizes)
    peak = machine_mod.peak_gflops(machine, threads)
    out["peak_bound_samples_per_s"] = peak * 1e9 / flops if peak else None
    for row in out["systems"].values():
        if not row.get("big_batch_s"):
            continue
        row["samples_per_s"] = mode["big_batch"] / median(row["big_batch_s"])
        row["pct_fma_peak"] = (100 * row["samples_per_s"] * flops / (peak * 1e9)) if peak else None
        row["batch1_latency_us"] = 1e6 * median(row["batch1_s"])
    base = out["systems"].get("pynn", {})
    for row in out["systems"].values():
        if "samples_per_s" in row and "samples_per_s" in base:
            row["throughput_ratio_to_pynn"] = row["samples_per_s"] / base["samples_per_s"]
            row["latency_ratio_to_pynn"] = row["batch1_latency_us"] / base["batch1_latency_us"]
    return out


def table(results: dict) -> str:
    lines = [(f"| threads | system | batch {results['big_batch']} samples/s | % FMA peak | "
              "batch-1 latency µs | throughput / pynn | latency / pynn |"),
             "|---|---|---|---|---|---|---|"]
    for run in results["runs"]:
        for system, row in run["systems"].items():
            if "samples_per_s" not in row:
                lines.append(f"| {run['threads']} | {system} | n/a: "
                             f"{row.get('error', '?')[:60]} | | | | |")
                continue
            pct = row.get("pct_fma_peak")
            tr, lr = row.get("throughput_ratio_to_pynn"), row.get("latency_ratio_to_pynn")
            lines.append(f"| {run['threads']} | {system} | {row['samples_per_s']:,.0f} | "
                         f"{'' if pct is None else f'{pct:.0f}%'} | "
                         f"{row['batch1_latency_us']:.1f} | "
                         f"{'' if tr is None else f'{tr:.2f}x'} | "
                         f"{'' if lr is None else f'{lr:.2f}x'} |")
        bound = run.get("peak_bound_samples_per_s")
        if bound:
            lines.append(f"| {run['threads']} | *FMA-peak bound* | {bound:,.0f} | 100% | | | |")
    return "\n".join(lines)


def run(mode_name: str = "full", systems: list[str] | None = None,
        threads: list[int] | None = None, machine: dict | None = None, log=machine_mod.say) -> dict:
    machine = machine or machine_mod.describe(quick=mode_name != "full")
    threads = threads or (machine.get("limits", {}).get("threads") or machine_mod.thread_counts())
    mode = MODES[mode_name]
    results = {"benchmark": "infer", "mode": mode_name, "sizes": [784, *mode["hidden"], 10],
               "big_batch": mode["big_batch"], "date_utc": machine["date_utc"],
               "git": machine.get("git"), "runs": []}
    for t in threads:
        log(f"infer {results['sizes']}, {t} thread(s)")
        results["runs"].append(run_threads(mode, t, list(systems or SYSTEMS), machine, log))
    return results


def main(argv: list[str] | None = None) -> int:
    parser = machine_mod.bench_parser(__doc__.split("\n\n")[0], systems=",".join(SYSTEMS))
    args = parser.parse_args(argv)
    machine_mod.reexec_with_clean_env()
    mode_name = machine_mod.mode_of(args)
    with machine_mod.bench_lock(not args.no_lock):
        machine = machine_mod.load_machine(args.machine, quick=mode_name != "full")
        try:
            results = run(mode_name, machine_mod.comma_list(args.systems),
                          machine_mod.comma_list(args.threads, int), machine)
        except DataMissing as exc:
            print(exc, file=sys.stderr)
            return 2
    return machine_mod.finish(results, machine, table, args.json)


if __name__ == "__main__":
    sys.exit(main())
