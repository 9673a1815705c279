"""pynn against onnxruntime running the same model exported with pynn.to_onnx (issue 14).

The reference model, 784-256-128-10 relu, float32, He-normal weights (the same in both), on
Fashion-MNIST test images: the latency of one call at batch 1 (median µs, what a service pays
per request) and the throughput at batch 10000 (samples/s), at each thread count (pynn:
pynn.set_num_threads; onnxruntime: SessionOptions.intra_op_num_threads, one inter-op thread,
sequential execution). Both return the logits as a NumPy array: pynn's ``model(X)`` (predict's
forward pass, before its argmax), onnxruntime's ``session.run(["logits"], {"X": X})``. Each
system runs in its own worker process, their rounds alternating (bench/bench_infer.py's
procedure); before timing, the two outputs are compared on 1000 test rows.

    flock /tmp/pynn-bench.lock python bench/bench_inference_onnx.py [--quick] [--json PATH]

Target (issue 14): pynn ahead of onnxruntime on both figures.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import machine as machine_mod
from bench.bench_infer import MODES, run_threads
from bench.bench_train import RECIPE
from bench.numpy_mlp import he_normal
from bench.systems import (
    DataMissing,
    OnnxruntimeSystem,
    PynnSystem,
    load_dataset,
    unavailable_reason,
)

SYSTEMS = ("pynn", "onnxruntime")


def agreement(mode: dict, n_rows: int = 1000) -> dict:
    """Largest difference between the two systems' logits on the first test rows, absolute and
    relative to the largest logit (same weights: only the summation order differs)."""
    cfg = {**RECIPE, "hidden": mode["hidden"], "batch_size": 128, "threads": 1}
    _, (x, _y) = load_dataset(cfg["dataset"], 1, n_rows)
    params = he_normal([x.shape[1], *mode["hidden"], 10], seed=cfg["seed"])
    ours = PynnSystem(cfg, params).logits(x)
    theirs = OnnxruntimeSystem(cfg, params).logits(x)
    diff = float(np.max(np.abs(ours.astype(np.float64) - theirs)))
    return {"rows": len(x), "max_abs_diff": diff,
            "max_rel_diff": diff / float(np.max(np.abs(ours)))}


def run(mode_name: str = "full", threads: list[int] | None = None, machine: dict | None = None,
        log=machine_mod.say) -> dict:
    machine = machine or machine_mod.describe(quick=mode_name != "full")
    threads = threads or (machine.get("limits", {}).get("threads") or machine_mod.thread_counts())
    mode = MODES[mode_name]
    results = {"benchmark": "inference-onnx", "mode": mode_name,
               "sizes": [784, *mode["hidden"], 10], "big_batch": mode["big_batch"],
               "date_utc": machine["date_utc"], "git": machine.get("git"), "runs": []}
    missing = unavailable_reason("onnxruntime")
    if missing is None:
        import onnxruntime

        results["onnxruntime"] = onnxruntime.__version__
        results["agreement"] = agreement(mode)
    else:
        log(f"  onnxruntime unavailable: {missing}")
    for t in threads:
        log(f"inference-onnx {results['sizes']}, {t} thread(s)")
        out = run_threads(mode, t, list(SYSTEMS), machine, log)
        results["runs"].append({"threads": t, "systems": out["systems"]})
    return results


def _ratio(run: dict, key: str) -> float | None:
    """onnxruntime's figure over pynn's (> 1: pynn ahead for latency, behind for throughput)."""
    ours, theirs = run["systems"].get("pynn", {}), run["systems"].get("onnxruntime", {})
    if key not in ours or key not in theirs:
        return None
    return theirs[key] / ours[key]


def table(results: dict) -> str:
    """Markdown: per thread count, both figures for both systems and pynn's lead."""
    big = results["big_batch"]
    head = (f"| threads | pynn batch-1 µs | onnxruntime batch-1 µs | latency: ort / pynn | "
            f"pynn batch-{big} samples/s | onnxruntime batch-{big} samples/s | "
            f"throughput: pynn / ort |")
    lines = [head, "|---|---|---|---|---|---|---|"]
    for run in results["runs"]:
        rows = run["systems"]
        if any("samples_per_s" not in rows.get(s, {}) for s in SYSTEMS):
            why = "; ".join(f"{s}: {rows.get(s, {}).get('error', 'no result')}" for s in SYSTEMS)
            lines.append(f"| {run['threads']} | n/a: {why[:120]} | | | | | |")
            continue
        p, o = rows["pynn"], rows["onnxruntime"]
        lines.append(f"| {run['threads']} | {p['batch1_latency_us']:.1f} | "
                     f"{o['batch1_latency_us']:.1f} | {_ratio(run, 'batch1_latency_us'):.2f}x | "
                     f"{p['samples_per_s']:,.0f} | {o['samples_per_s']:,.0f} | "
                     f"{1 / _ratio(run, 'samples_per_s'):.2f}x |")
    agree = results.get("agreement")
    if agree:
        note = (f"Same weights, same inputs: the logits differ by at most "
                f"{agree['max_abs_diff']:.1e} ({agree['max_rel_diff']:.1e} of the largest) on "
                f"{agree['rows']} test rows; onnxruntime {results['onnxruntime']}.")
        lines += ["", note]
    return "\n".join(lines)


def targets(results: dict) -> list[tuple[str, str, str]]:
    """(target, measured, verdict) per thread count: pynn ahead on latency and throughput."""
    out = []
    for run in results.get("runs", []):
        latency, throughput = _ratio(run, "batch1_latency_us"), _ratio(run, "samples_per_s")
        if latency is None or throughput is None:
            continue
        target = (f"pynn ahead of onnxruntime at batch 1 and batch {results['big_batch']}, "
                  f"{run['threads']} thread(s)")
        out.append((target, f"latency {latency:.2f}x, throughput {1 / throughput:.2f}x",
                    "met" if latency > 1 and throughput < 1 else "missed"))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = machine_mod.bench_parser(__doc__.split("\n\n")[0])
    args = parser.parse_args(argv)
    machine_mod.reexec_with_clean_env()
    mode_name = machine_mod.mode_of(args)
    with machine_mod.bench_lock(not args.no_lock):
        if args.machine:
            machine = machine_mod.load_machine(args.machine)
        else:  # the FMA peaks mean nothing to this comparison: not measured in a tiny run
            machine = machine_mod.describe(measure=mode_name != "tiny", quick=True)
        try:
            results = run(mode_name, machine_mod.comma_list(args.threads, int), machine)
        except DataMissing as exc:
            print(exc, file=sys.stderr)
            return 2
    return machine_mod.finish(results, machine, table, args.json)


if __name__ == "__main__":
    sys.exit(main())
