"""Run every benchmark, one after another, and write the results, a report and plots.

    python -m bench [--quick]          (or: python bench/run.py [--quick])

Order: machine (description and measured limits), ops (bench/bench_ops.py), gemm
(bench/bench_gemm.py), train, infer, sklearn, onnx (bench/bench_inference_onnx.py: pynn against
onnxruntime on the exported model). Never two at once: the whole run holds
/tmp/pynn-bench.lock (the lock `flock /tmp/pynn-bench.lock ...` takes; started under flock(1)
it sees the lock is its parent's) and runs without OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE.

Writes to bench/results/ (or --out): run-<UTC stamp>.json with everything (the machine included),
latest.json (the same), latest.md (the tables, the targets and where pynn stands), and
epoch_time.png and gemm_gflops.png. A full run takes about 15 minutes on 2 cores, --quick about 2.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import bench_infer, bench_inference_onnx, bench_sklearn, bench_train
from bench import machine as machine_mod
from bench.systems import DataMissing

BENCH_DIR = Path(__file__).resolve().parent
STEPS = ("ops", "gemm", "train", "infer", "sklearn", "onnx")
EXTERNAL = {"ops": "bench_ops.py", "gemm": "bench_gemm.py",  # scripts owned by their issues
            "onnx": "bench_inference_onnx.py"}
EXTERNAL_TIMEOUT_S = {"full": 600, "quick": 240, "tiny": 60}
REPRODUCE = ("flock /tmp/pynn-bench.lock env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE "
             "python -m bench")


# ---- running -----------------------------------------------------------------------------------

def run_external(step: str, mode: str, out_dir: Path, log=machine_mod.say) -> dict:
    """Run bench/<script> in a subprocess with the flags it understands (--quick, --tiny,
    --json); its JSON (if it writes one) and the tail of its output go into the results."""
    script = BENCH_DIR / EXTERNAL[step]
    if not script.exists():
        return {"skipped": f"bench/{script.name} does not exist yet"}
    env = machine_mod.clean_env()
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(BENCH_DIR.parent),
                                                      env.get("PYTHONPATH")]))
    helptext = subprocess.run([sys.executable, str(script), "--help"], capture_output=True,
                              text=True, env=env, timeout=120, check=False).stdout
    args = []
    if mode == "tiny":
        if "--tiny" not in helptext:
            return {"skipped": f"bench/{script.name} has no --tiny mode"}
        args.append("--tiny")
    elif mode == "quick" and "--quick" in helptext:
        args.append("--quick")
    if "--dtype" in helptext:  # the end-to-end comparisons are float32; halves the run
        args += ["--dtype", "float32"]
    json_path = out_dir / f".{step}.json"
    if "--json" in helptext:
        args += ["--json", str(json_path)]
    log(f"{step}: python bench/{script.name} {' '.join(args)}")
    t0 = time.perf_counter()
    try:
        proc = subprocess.run([sys.executable, str(script), *args], capture_output=True,
                              text=True, env=env, timeout=EXTERNAL_TIMEOUT_S[mode],
                              cwd=str(BENCH_DIR.parent), check=False)
    except subprocess.TimeoutExpired as exc:
        return {"error": f"timed out after {exc.timeout} s", "args": args}
    out = {"args": args, "returncode": proc.returncode, "seconds": time.perf_counter() - t0,
           "stdout_tail": proc.stdout[-20000:], "stderr_tail": proc.stderr[-4000:]}
    if json_path.exists():
        try:
            out["results"] = json.loads(json_path.read_text())
        finally:
            json_path.unlink()
    if proc.returncode != 0:
        out["error"] = f"exit code {proc.returncode}: {proc.stderr[-500:]}"
    return out


def run_all(mode: str, steps: list[str], out_dir: Path, threads: list[int] | None,
            log=machine_mod.say) -> dict:
    out_dir.mkdir(parents=True, exist_ok=True)
    log(f"machine: describing and measuring peaks ({mode})")
    machine = machine_mod.describe(quick=mode != "full", threads=threads)
    results = {"mode": mode, "command": REPRODUCE + (f" --{mode}" if mode != "full" else ""),
               "machine": machine, "benchmarks": {}}
    for step in steps:
        t0 = time.perf_counter()
        try:
            if step in EXTERNAL:
                results["benchmarks"][step] = run_external(step, mode, out_dir, log)
            elif step == "train":
                results["benchmarks"][step] = bench_train.run(mode, machine=machine,
                                                              threads=threads, log=log)
            elif step == "infer":
                results["benchmarks"][step] = bench_infer.run(mode, machine=machine,
                                                              threads=threads, log=log)
            elif step == "sklearn":
                results["benchmarks"][step] = bench_sklearn.run(mode, machine=machine,
                                                                threads=threads, log=log)
        except DataMissing as exc:
            log(str(exc))
            results["benchmarks"][step] = {"error": str(exc)}
        results["benchmarks"][step]["wall_s"] = time.perf_counter() - t0
        log(f"{step}: {results['benchmarks'][step]['wall_s']:.0f} s")
        # What is done so far survives an interrupted run (render it with --from-json).
        (out_dir / "partial.json").write_text(json.dumps(results, indent=1, default=str))
    (out_dir / "partial.json").unlink(missing_ok=True)
    return results


# ---- reporting ---------------------------------------------------------------------------------

def _fmt(value, spec: str, empty: str = "") -> str:
    return empty if value is None else format(value, spec)


def limits_table(machine: dict) -> str:
    limits = machine.get("limits", {})
    lines = ["| threads | FP32 FMA peak GFLOP/s | FP64 FMA peak GFLOP/s | triad GB/s | probe |",
             "|---|---|---|---|---|"]
    for t in limits.get("threads", []):
        row = limits.get(str(t), {})
        lines.append(f"| {t} | {_fmt(row.get('fma_peak_f32_gflops'), '.1f', 'n/a')} | "
                     f"{_fmt(row.get('fma_peak_f64_gflops'), '.1f', 'n/a')} | "
                     f"{_fmt(row.get('triad_gbs'), '.1f', 'n/a')} | "
                     f"{row.get('fma_source', row.get('fma_error', ''))} |")
    return "\n".join(lines)


def scaling_table(train: dict) -> str:
    """Seconds per epoch at each thread count and the speed-up over 1 thread."""
    lines = []
    for config in train.get("configs", []):
        runs = config["runs"]
        threads = [r["threads"] for r in runs]
        if not lines:
            lines = ["| config | system | " + " | ".join(f"{t} thr s/epoch" for t in threads)
                     + " | " + " | ".join(f"speed-up {t} thr" for t in threads[1:]) + " |",
                     "|---|---|" + "---|" * (2 * len(threads) - 1)]
        for system in config.get("systems") or train.get("systems", []):
            times = [r["systems"].get(system, {}).get("median_epoch_s") for r in runs]
            if all(t is None for t in times):
                continue
            speedups = [(times[0] / t) if times[0] and t else None for t in times[1:]]
            lines.append(f"| {config['name']} | {system} | "
                         + " | ".join(_fmt(t, ".3f", "n/a") for t in times) + " | "
                         + " | ".join(_fmt(s, ".2f", "n/a") + ("x" if s else "")
                                      for s in speedups) + " |")
    return "\n".join(lines)


def gemm_table(gemm: dict) -> str:
    """float32 rows of bench_gemm.py's step-at-batch-128 GEMMs, their sum and the big square."""
    cases = (gemm.get("results") or {}).get("cases", [])
    rows = [c for c in cases if c.get("dtype") == "float32"
            and c.get("group") in ("step128", "step128-sum", "big")]
    if not rows:
        return ""
    lines = [("| GEMM (float32) | threads | pynn GFLOP/s | NumPy GFLOP/s | % FMA peak | "
              "NumPy time / pynn time | residual |"), "|---|---|---|---|---|---|---|"]
    for c in rows:
        lines.append(f"| {' '.join(c['case'].split())} | {c['threads']} | "
                     f"{c['pynn_gflops']:.1f} | {c['numpy_gflops']:.1f} | "
                     f"{c['pct_fma_peak']:.0f}% | {c['ratio_numpy_over_pynn']:.2f}x | "
                     f"{c['residual']:.1e} |")
    return "\n".join(lines)


def ops_table(ops: dict) -> str:
    """bench_ops.py's rows: kernel, shape, threads, times, speed-up, bandwidth."""
    rows = (ops.get("results") or {}).get("results", [])
    if not rows or "kernel" not in rows[0]:
        return ""
    lines = [("| kernel (float32) | shape | threads | pynn µs | NumPy µs | "
              "NumPy time / pynn time | GB/s | % triad | residual |"),
             "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        shape = "x".join(map(str, r["shape"]))
        lines.append(f"| {r['kernel']} | {shape} | {r['threads']} | "
                     f"{1e6 * r['pynn_s']:.1f} | {1e6 * r['numpy_s']:.1f} | {r['speedup']:.2f}x | "
                     f"{r['gb_per_s']:.1f} | {r['pct_of_triad']:.0f}% | {r['residual']:.1e} |")
    return "\n".join(lines)


def generic_table(records: list[dict], max_cols: int = 9) -> str:
    """A markdown table of a list of flat records (for result files whose layout we do not own)."""
    if not records or not isinstance(records[0], dict):
        return ""
    cols = [k for k, v in records[0].items() if isinstance(v, (str, int, float, type(None)))]
    cols = cols[:max_cols]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for r in records:
        cells = []
        for k in cols:
            v = r.get(k)
            cells.append(f"{v:.4g}" if isinstance(v, float) else str(v))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def external_section(name: str, bench: dict) -> str:
    if "skipped" in bench:
        return f"Skipped: {bench['skipped']}."
    if "error" in bench and "results" not in bench:
        return f"Failed: {bench['error']}"
    table = gemm_table(bench) if name == "gemm" else ops_table(bench)
    if table:
        return table
    results = bench.get("results")
    if isinstance(results, dict):
        for key in ("cases", "rows", "results"):
            if isinstance(results.get(key), list):
                return generic_table(results[key])
    if isinstance(results, list):
        return generic_table(results)
    return "```\n" + bench.get("stdout_tail", "")[-4000:] + "\n```"


def ceiling_ratio(run: dict, peer_seconds: float) -> float | None:
    """The most any system could beat a peer's epoch by on this machine: the peer's time over
    the epoch's GEMM FLOPs at the measured FMA peak (a system at 100% of the peak)."""
    flops, peak = run.get("flops_per_epoch"), run.get("fma_peak_gflops")
    if not flops or not peak:
        return None
    return peer_seconds / (flops / (peak * 1e9))


def targets(results: dict) -> list[tuple[str, str, str]]:
    """(target, measured, verdict) for the issue's targets that this run measured."""
    out = []
    bench = results["benchmarks"]
    train = bench.get("train", {})
    main = next((c for c in train.get("configs", []) if c["name"] == "batch128"), None)
    if main:
        for run in main["runs"]:
            sys_rows = run["systems"]
            pynn_t = sys_rows.get("pynn", {}).get("median_epoch_s")
            peers = {s: r["median_epoch_s"] for s, r in sys_rows.items()
                     if s != "pynn" and "median_epoch_s" in r}
            if pynn_t and peers:
                best = min(peers, key=peers.get)
                ratio = peers[best] / pynn_t
                thr = f"{run['threads']} thread(s)"
                verdict = "met" if ratio >= 1.7 else f"missed ({ratio / 1.7:.0%} of target)"
                ceiling = ceiling_ratio(run, peers[best])
                if ratio < 1.7 and ceiling is not None and ceiling < 1.7:
                    verdict += (f"; out of reach here: even at 100% of the FMA peak pynn would "
                                f"be {ceiling:.2f}x {best}")
                out.append((f"epoch (batch 128) ≥ 1.7x faster than the fastest peer, {thr}",
                            f"pynn {pynn_t:.3f} s vs {best} {peers[best]:.3f} s: {ratio:.2f}x",
                            verdict))
            pct = sys_rows.get("pynn", {}).get("pct_fma_peak")
            if run["threads"] == 1 and pct is not None:
                out.append(("≥ 75% of the FMA peak over an epoch, 1 thread", f"{pct:.1f}%",
                            "met" if pct >= 75 else f"missed by {75 - pct:.1f} points"))
            accs = {s: r.get("test_accuracy") for s, r in sys_rows.items()
                    if r.get("test_accuracy") is not None}
            if "pynn" in accs and len(accs) > 1:
                # "the same accuracy": inside the peers' own spread (they differ by their shuffles)
                others = [a for s, a in accs.items() if s != "pynn"]
                gap = accs["pynn"] - min(others)
                done = len(sys_rows["pynn"].get("epoch_seconds", []))
                what = f"{done} epochs, {run['threads']} thread(s)"
                out.append((f"same accuracy as the peers ({what})",
                            f"pynn {accs['pynn']:.4f}, peers {min(others):.4f}–{max(others):.4f}",
                            "met" if gap >= -0.005 else f"missed by {-gap:.4f}"))
    for run in bench.get("infer", {}).get("runs", []):
        rows = run["systems"]
        p, t = rows.get("pynn", {}), rows.get("torch", {})
        if "batch1_latency_us" in p and "batch1_latency_us" in t and run["threads"] == 1:
            ratio = t["batch1_latency_us"] / p["batch1_latency_us"]
            out.append(("batch-1 latency ≤ 1/3 of PyTorch's, 1 thread",
                        (f"pynn {p['batch1_latency_us']:.1f} µs vs PyTorch "
                         f"{t['batch1_latency_us']:.1f} µs ({ratio:.2f}x)"),
                        "met" if ratio >= 3 else f"missed ({ratio:.2f}x of 3x)"))
        if p.get("pct_fma_peak") is not None:
            pct = p["pct_fma_peak"]
            thr = f"{run['threads']} thread(s)"
            out.append((f"batch-10000 inference ≥ 80% of the FMA peak, {thr}",
                        f"{p['samples_per_s']:,.0f} samples/s, {pct:.1f}%",
                        "met" if pct >= 80 else f"missed by {80 - pct:.1f} points"))
    for case in bench.get("sklearn", {}).get("cases", []):
        for run in case["runs"]:
            speed = run.get("speedup_vs_sklearn")
            if speed is None:
                continue
            pn = run["impls"]["pynn"]
            sk = run["impls"]["sklearn"]
            acc_ok = pn["test_accuracy"][-1] >= sk["test_accuracy"][-1] - 0.01
            what = f"{case['dataset']}, {run['threads']} thread(s)"
            accs = f"{pn['test_accuracy'][-1]:.4f} vs {sk['test_accuracy'][-1]:.4f}"
            out.append((f"fit ≥ 1.7x faster than scikit-learn on {what}, accuracy no worse",
                        f"{speed:.2f}x, accuracy {accs} ({pn.get('impl', '')})",
                        "met" if speed >= 1.7 and acc_ok else "missed"))
    out += bench_inference_onnx.targets(bench.get("onnx", {}).get("results") or {})
    return out


def gemm_share_lines(results: dict) -> list[str]:
    """How much of pynn's batch-128 epoch its GEMMs explain: bench_gemm.py's timed step sum
    (the 8 GEMMs of a training step) x batches per epoch."""
    bench = results["benchmarks"]
    cases = (bench.get("gemm", {}).get("results") or {}).get("cases", [])
    main = next((c for c in bench.get("train", {}).get("configs", [])
                 if c["name"] == "batch128"), None)
    if not main or not cases:
        return []
    lines = []
    for run in main["runs"]:
        epoch = run["systems"].get("pynn", {}).get("median_epoch_s")
        step = next((c for c in cases if c.get("group") == "step128-sum"
                     and c.get("threads") == run["threads"] and c.get("dtype") == "float32"), None)
        if not epoch or not step:
            continue
        batches = -(-run["n_train"] // main["batch_size"])
        for name, key in (("pynn", "pynn_s"), ("NumPy", "numpy_s")):
            gemm_s = step[key] * batches
            lines.append(f"- {run['threads']} thread(s): the step's GEMMs at {name}'s speed take "
                         f"{gemm_s:.3f} s per epoch ({100 * gemm_s / epoch:.0f}% of pynn's "
                         f"{epoch:.3f} s epoch)")
    return lines


def render_markdown(results: dict, plots: dict[str, str], compact: bool = False) -> str:
    """The report. compact (the README's section): without the GEMM and kernel tables."""
    machine = results["machine"]
    bench = results["benchmarks"]
    git = machine.get("git") or {}
    parts = [
        textwrap.fill(
            f"Measured {machine['date_utc']} on {machine_mod.summary_line(machine)}; pynn commit "
            f"`{(git.get('commit') or '?')[:10]}`"
            f"{' (with uncommitted changes)' if git.get('dirty') else ''}, mode "
            f"`{results['mode']}`, {results.get('wall_s', 0) / 60:.0f} minutes. Reproduce: "
            f"`{results['command']}`.", width=99, break_on_hyphens=False,
            break_long_words=False),
        "", "Machine limits (measured in the same run):", "", limits_table(machine),
    ]
    if "train" in bench and "configs" in bench["train"]:
        train = bench["train"]
        parts += ["", "### Training (Fashion-MNIST, SGD momentum 0.9, lr 0.05, He init, float32)",
                  "", ("Median seconds per epoch after a warm-up epoch; `time / pynn` > 1 means "
                       "pynn is faster;\ntest accuracy after the last epoch; peak RSS includes "
                       "the data set."), "", bench_train.table(train), "", "Thread scaling:", "",
                  scaling_table(train)]
        share = gemm_share_lines(results)
        if share:
            parts += ["", "Where pynn's epoch goes (GEMM times from bench_gemm.py, same run):",
                      "", *share]
        if "epoch_time" in plots:
            parts += ["", f"![epoch time per system]({plots['epoch_time']})"]
    elif "train" in bench:
        parts += ["", f"Training: {bench['train'].get('error')}"]
    if "infer" in bench and "runs" in bench["infer"]:
        parts += ["", "### Inference (784-256-128-10, logits as a NumPy array)", "",
                  bench_infer.table(bench["infer"])]
    if "sklearn" in bench and "cases" in bench["sklearn"]:
        parts += ["", "### scikit-learn estimator: fit time, same settings", "",
                  bench_sklearn.table(bench["sklearn"])]
    onnx = bench.get("onnx", {})
    if (onnx.get("results") or {}).get("runs") and not compact:
        title = "### Inference against onnxruntime on the exported model (bench_inference_onnx.py)"
        parts += ["", title, "", bench_inference_onnx.table(onnx["results"])]
    elif "onnx" in bench and not compact:
        parts += ["", "### Inference against onnxruntime", "", external_section("onnx", onnx)]
    for name in ("gemm", "ops"):
        if name in bench and not compact:
            title = "GEMM" if name == "gemm" else "Kernels"
            parts += ["", f"### {title} (bench/bench_{name}.py)", "",
                      external_section(name, bench[name])]
            if name == "gemm" and "gemm_gflops" in plots:
                parts += ["", f"![GEMM GFLOP/s]({plots['gemm_gflops']})"]
    rows = targets(results)
    if rows:
        parts += ["", "### Targets", "", "| target | measured | |", "|---|---|---|"]
        parts += [f"| {a} | {b} | {c} |" for a, b, c in rows]
    return "\n".join(parts) + "\n"


README_ANCHOR = "<!-- section: performance -->"


def update_readme(results: dict, plots: dict[str, str], out_dir: Path,
                  readme: Path = BENCH_DIR.parent / "README.md") -> None:
    """Rewrite README.md's performance section (from its anchor to the next section anchor)."""
    text = readme.read_text()
    start = text.index(README_ANCHOR) + len(README_ANCHOR)
    end = text.find("<!-- section:", start)
    end = len(text) if end < 0 else end
    rel = os.path.relpath(out_dir, readme.parent)
    body = render_markdown(results, {k: f"{rel}/{v}" for k, v in plots.items()}, compact=True)
    def para(text: str) -> str:
        return textwrap.fill(text, width=99, break_on_hyphens=False)

    section = "\n".join([
        "", "## Performance", "",
        para("pynn against what its users would otherwise write or pick: a textbook NumPy MLP "
             "(`bench/numpy_mlp.py`), PyTorch (CPU, eager) and scikit-learn's MLPClassifier, "
             "all float32, same network, same starting weights, same recipe, each system in its "
             "own process, their epochs interleaved (A B C D A B C D) so that the ratios come "
             "from one run. Every benchmark (kernels, GEMM, training, inference, the "
             "scikit-learn estimator), one after another:"),
        "", "```bash",
        "pip install '.[bench]' torch==2.13.0        # torch and scikit-learn are optional",
        "sudo apt-get install dataset-fashion-mnist  # the real data; nothing is downloaded",
        REPRODUCE + " [--quick]", "```", "",
        para(f"A full run takes about 15 minutes on 2 idle cores (`--quick` about 2; longer on a "
             f"busy machine: each training configuration has a time budget and says when it "
             f"stopped early). It writes `{rel}/latest.json` (everything, with the machine), "
             f"`{rel}/latest.md` (all tables, the GEMM and kernel ones included) and the plots; "
             "`--readme` rewrites this section from them. Only same-run ratios mean much: on a "
             "shared virtual machine absolute times drift 10–30% between runs (other tenants "
             "share the L3 cache and the memory bus; the FMA peak probe barely moves), and every "
             "system drifts together."), "", body])
    readme.write_text(text[:start] + section + "\n" + text[end:])


# ---- plots -------------------------------------------------------------------------------------

def plot_epoch_time(train: dict, path: Path) -> bool:
    """One panel per config (columns) and thread count (rows), each on its own scale: seconds per
    epoch per system, with the time the epoch's GEMM FLOPs take at the measured FMA peak."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    configs = [c for c in train.get("configs", []) if c["runs"]]
    if not configs:
        return False
    systems = train.get("systems", [])
    threads = [r["threads"] for r in configs[0]["runs"]]
    fig, axes = plt.subplots(len(threads), len(configs), squeeze=False,
                             figsize=(3.3 * len(configs), 2.9 * len(threads)))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for col, config in enumerate(configs):
        sizes = "-".join(map(str, config["sizes"]))
        for row, run in enumerate(config["runs"]):
            ax = axes[row][col]
            values = [run["systems"].get(s, {}).get("median_epoch_s") or 0 for s in systems]
            bars = ax.bar(range(len(systems)), values, color=colors[:len(systems)])
            for bar, v in zip(bars, values):
                if v:
                    ax.annotate(f"{v:.2f}", (bar.get_x() + bar.get_width() / 2, v),
                                ha="center", va="bottom", fontsize=7)
            if run.get("fma_peak_gflops"):
                at_peak = run["flops_per_epoch"] / (run["fma_peak_gflops"] * 1e9)
                ax.axhline(at_peak, color="k", linestyle="dashed", linewidth=1,
                           label="GEMM FLOPs at the FMA peak")
            ax.set_xticks(range(len(systems)), systems, fontsize=8)
            ax.set_ylim(0, max(values + [1e-9]) * 1.18)
            n = run.get("n_train")
            ax.set_title(f"{sizes}, batch {config['batch_size']}, {run['threads']} thr"
                         + (f"\n{n} samples/epoch" if n else ""), fontsize=8)
            if col == 0:
                ax.set_ylabel("s per epoch (lower is better)", fontsize=8)
    axes[0][0].legend(fontsize=7, loc="lower left")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True


def plot_gemm(gemm: dict, path: Path) -> bool:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cases = [c for c in (gemm.get("results") or {}).get("cases", [])
             if c.get("dtype") == "float32" and c.get("group") in ("step128", "step128-sum", "big")]
    threads = sorted({c["threads"] for c in cases})
    if not threads:
        return False
    fig, axes = plt.subplots(len(threads), 1, figsize=(10, 3.6 * len(threads)), squeeze=False)
    for ax, t in zip(axes[:, 0], threads):
        rows = [c for c in cases if c["threads"] == t]
        xs = range(len(rows))
        ax.bar([x - 0.2 for x in xs], [c["pynn_gflops"] for c in rows], 0.4, label="pynn")
        ax.bar([x + 0.2 for x in xs], [c["numpy_gflops"] for c in rows], 0.4,
               label="NumPy (OpenBLAS)")
        ax.axhline(rows[0]["fma_peak_gflops"], color="k", linestyle="dashed", linewidth=1,
                   label="FMA peak")
        labels = [" ".join(c["case"].split()).replace("STEP SUM (8 GEMMs) batch 128",
                                                      "step sum") for c in rows]
        ax.set_xticks(list(xs), labels, rotation=30, ha="right", fontsize=7)
        ax.set_ylabel("GFLOP/s (float32)")
        ax.set_title(f"GEMMs of a 784-256-128-10 step at batch 128, {t} thread(s)", fontsize=9)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def make_plots(results: dict, out_dir: Path) -> dict[str, str]:
    """PNG files next to latest.md; returns name -> file name (relative to out_dir)."""
    made = {}
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return made
    bench = results["benchmarks"]
    if "configs" in bench.get("train", {}) and plot_epoch_time(bench["train"],
                                                                out_dir / "epoch_time.png"):
        made["epoch_time"] = "epoch_time.png"
    if "gemm" in bench and plot_gemm(bench["gemm"], out_dir / "gemm_gflops.png"):
        made["gemm_gflops"] = "gemm_gflops.png"
    return made


def write_outputs(results: dict, out_dir: Path, stamped: bool = True) -> dict[str, Path]:
    """run-<stamp>.json (when stamped), latest.json, latest.md and the plots."""
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    text = json.dumps(results, indent=1, default=str)
    paths = {"latest_json": out_dir / "latest.json", "markdown": out_dir / "latest.md"}
    if stamped:
        paths["json"] = out_dir / f"run-{stamp}.json"
        paths["json"].write_text(text)
    paths["latest_json"].write_text(text)
    plots = make_plots(results, out_dir)
    paths["markdown"].write_text(render_markdown(results, plots))
    for name, file in plots.items():
        paths[name] = out_dir / file
    return paths


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--quick", action="store_true", help="short runs, about 2 minutes")
    group.add_argument("--tiny", action="store_true",
                       help="a seconds-long check of the pipeline (the test suite's)")
    parser.add_argument("--only", help=f"comma-separated subset of {','.join(STEPS)}")
    parser.add_argument("--threads", help="comma-separated thread counts (default 1,2,..cores)")
    parser.add_argument("--out", default=str(BENCH_DIR / "results"), help="output directory")
    parser.add_argument("--no-lock", action="store_true", help="do not take the benchmark lock")
    parser.add_argument("--from-json", metavar="PATH",
                        help="run nothing: render the report (and --readme) from a results file")
    parser.add_argument("--readme", action="store_true",
                        help="also rewrite README.md's performance section with these results")
    args = parser.parse_args(argv)
    machine_mod.reexec_with_clean_env()
    mode = "tiny" if args.tiny else "quick" if args.quick else "full"
    steps = args.only.split(",") if args.only else list(STEPS)
    unknown = sorted(set(steps) - set(STEPS))
    if unknown:
        parser.error(f"--only: unknown step(s) {', '.join(unknown)}; choose from "
                     f"{', '.join(STEPS)}")
    threads = [int(t) for t in args.threads.split(",")] if args.threads else None
    out_dir = Path(args.out)
    if args.from_json:
        results = json.loads(Path(args.from_json).read_text())
        out_dir.mkdir(parents=True, exist_ok=True)
        paths = write_outputs(results, out_dir, stamped=False)
    else:
        t0 = time.perf_counter()
        with machine_mod.bench_lock(not args.no_lock):
            results = run_all(mode, steps, out_dir, threads)
        results["wall_s"] = time.perf_counter() - t0
        paths = write_outputs(results, out_dir)
    if args.readme:
        plots = {k: p.name for k, p in paths.items() if p.suffix == ".png"}
        update_readme(results, plots, out_dir)
    print()
    print(paths["markdown"].read_text())
    print("wrote " + ", ".join(str(p) for p in paths.values()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
