"""Benchmark pynn.ops' non-GEMM kernels against their NumPy references (pynn.reference).

Each case runs pynn and NumPy interleaved (A B A B ...) on the same inputs after a warm-up; the
figure is the median of the per-pair time ratios. Sizes go from one training step (128x256
activations, 128x10 logits) to memory-bound (4M elements; a 10M-parameter optimizer step), at 1
and 2 threads. GB/s counts the bytes each kernel must read and write once (no write-allocate, as
STREAM counts), and "% bw" compares it with this machine's triad bandwidth measured first, at the
same thread count. pynn writes into preallocated out= buffers, as a training loop does; the NumPy
references allocate their results, as NumPy code does.

    flock /tmp/pynn-bench.lock env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE \
        python bench/bench_ops.py [--quick] [--threads 1 2] [--samples 9] [--json FILE]
    python bench/bench_ops.py --markdown FILE    # a results file as a markdown table
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import time
from pathlib import Path

import numpy as np

import pynn
from bench import machine
from pynn import ops
from pynn import reference as ref

try:
    from threadpoolctl import threadpool_info, threadpool_limits
except ImportError:  # pragma: no cover - threadpoolctl is a bench extra
    threadpool_limits = None
    threadpool_info = None


def _timed(fn, reps: int) -> float:
    t0 = time.perf_counter()
    for _ in range(reps):
        fn()
    return (time.perf_counter() - t0) / reps


def compare(fa, fb, min_sample: float = 0.004, samples: int = 9):
    """Median time of fa, of fb, and the median of the pairwise ratios fb/fa (interleaved)."""
    fa(), fb(), fa(), fb()  # warm up: first-touch pages, thread pool
    reps = 1
    while _timed(fa, reps) * reps < min_sample and reps < 1 << 16:
        reps *= 2
    reps_b = 1
    while _timed(fb, reps_b) * reps_b < min_sample and reps_b < 1 << 16:
        reps_b *= 2
    ta, tb = [], []
    for _ in range(samples):
        ta.append(_timed(fa, reps))
        tb.append(_timed(fb, reps_b))
    ratio = statistics.median(b / a for a, b in zip(ta, tb))
    return statistics.median(ta), statistics.median(tb), ratio


def triad_bandwidth(threads: int, n: int = 20_000_000) -> float:
    """GB/s of a = b + s*c over three 160 MB float64 arrays (24 bytes per element), from
    bench/probe.c."""
    return machine.measure_triad(threads, n)["gbs"]


def _residual(got, want) -> float:
    got = got if isinstance(got, tuple) else (got,)
    want = want if isinstance(want, tuple) else (want,)
    worst = 0.0
    for g, w in zip(got, want):
        g64, w64 = np.asarray(g, np.float64), np.asarray(w, np.float64)
        scale = max(1e-30, float(np.max(np.abs(w64))))
        worst = max(worst, float(np.max(np.abs(g64 - w64))) / scale)
    return worst


def cases(rng, quick: bool):
    """(kernel, shape, bytes touched, pynn call, NumPy call, residual check)."""
    f32 = np.float32
    act_shapes = [(128, 256), (1024, 1024)] + ([] if quick else [(2048, 2048)])
    for name in ("relu", "sigmoid", "tanh"):
        for shape in act_shapes:
            x = rng.normal(0, 3, size=shape).astype(f32)
            dy = rng.normal(size=shape).astype(f32)
            y, dx = np.empty_like(x), np.empty_like(x)

            def ours(name=name, x=x, dy=dy, y=y, dx=dx):
                ops.activation(name, x, out=y)
                ops.activation_backward(name, y, dy, out=dx)
                return y, dx

            def theirs(name=name, x=x, dy=dy):
                yy = ref.activation(name, x)
                return yy, ref.activation_backward(name, yy, dy)

            # forward reads x, writes y; backward reads y and dy, writes dx
            yield f"{name} fwd+bwd", shape, 20 * x.size, ours, theirs

    sm_shapes = [(128, 10), (60000, 10)] + ([] if quick else [(4096, 1024)])
    for shape in sm_shapes:
        x = rng.normal(0, 3, size=shape).astype(f32)
        labels = rng.integers(0, shape[1], size=shape[0])
        d = np.empty_like(x)
        y = np.empty_like(x)
        yield ("softmax", shape, 8 * x.size, lambda x=x, y=y: ops.softmax(x, out=y),
               lambda x=x: ref.softmax(x))
        yield ("softmax_cross_entropy", shape, 8 * x.size + 8 * shape[0],
               lambda x=x, labels=labels, d=d: ops.softmax_cross_entropy(x, labels, out=d),
               lambda x=x, labels=labels: ref.softmax_cross_entropy(x, labels))

    for shape in [(128, 10)] + ([] if quick else [(4_194_304,)]):
        p = rng.normal(size=shape).astype(f32)
        t = rng.random(shape).astype(f32)
        d = np.empty_like(p)
        yield ("mse", shape, 12 * p.size, lambda p=p, t=t, d=d: ops.mse(p, t, out=d),
               lambda p=p, t=t: ref.mse(p, t))
        yield ("binary_cross_entropy", shape, 12 * p.size,
               lambda p=p, t=t, d=d: ops.binary_cross_entropy(p, t, out=d),
               lambda p=p, t=t: ref.binary_cross_entropy(p, t))

    for shape in [(128, 256), (60000, 10)] + ([] if quick else [(4096, 1024)]):
        dz = rng.normal(size=shape).astype(f32)
        db = np.empty(shape[1], f32)
        yield ("bias_grad", shape, 4 * dz.size, lambda dz=dz, db=db: ops.bias_grad(dz, out=db),
               lambda dz=dz: ref.bias_grad(dz))

    # MLP 784-256-128-10 has 235,146 parameters; then a 10M-parameter model
    for size in [235_146] + ([] if quick else [10_000_000]):
        p0, g = rng.normal(size=size).astype(f32), rng.normal(size=size).astype(f32)
        p_a, v_a = p0.copy(), np.zeros(size, f32)
        p_b, v_b = p0.copy(), np.zeros(size, f32)
        # the step is repeated many times: a small lr keeps the values finite and realistic
        yield ("sgd_step momentum", (size,), 20 * size,
               lambda p=p_a, g=g, v=v_a: ops.sgd_step(p, g, v, lr=1e-4, momentum=0.9),
               lambda p=p_b, g=g, v=v_b: ref.sgd_step(p, g, v, lr=1e-4, momentum=0.9),
               None)
        m_a, s_a = np.zeros(size, f32), np.zeros(size, f32)
        m_b, s_b = np.zeros(size, f32), np.zeros(size, f32)
        yield ("adam_step", (size,), 28 * size,
               lambda p=p_a, g=g, m=m_a, v=s_a: ops.adam_step(p, g, m, v, step=10, lr=1e-6),
               lambda p=p_b, g=g, m=m_b, v=s_b: ref.adam_step(p, g, m, v, step=10, lr=1e-6),
               None)


def _sgd_residual(rng) -> float:
    """One optimizer step from identical buffers (the timed loops drift apart by design)."""
    p, g, v = (rng.normal(size=100_003).astype(np.float32) for _ in range(3))
    pa, va, pb, vb = p.copy(), v.copy(), p.copy(), v.copy()
    ops.sgd_step(pa, g, va, lr=0.1, momentum=0.9)
    ref.sgd_step(pb, g, vb, lr=0.1, momentum=0.9)
    return _residual((pa, va), (pb, vb))


def machine_info() -> dict:
    cpu = "unknown"
    flags = []
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name") and cpu == "unknown":
                cpu = line.split(":", 1)[1].strip()
            if line.startswith("flags") and not flags:
                flags = [f for f in line.split(":", 1)[1].split()
                         if f.startswith(("avx", "fma", "sse4"))]
    except OSError:
        pass
    info = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "cpu": cpu, "cpu_flags": flags, "cores": os.cpu_count(),
        "python": platform.python_version(), "numpy": np.__version__,
        "pynn": pynn.build_info(),
    }
    if threadpool_info is not None:
        info["threadpools"] = [{k: p.get(k) for k in ("internal_api", "version", "architecture",
                                                       "num_threads")}
                               for p in threadpool_info()]
    return info


def markdown(result: dict) -> str:
    """The results as a markdown table (for the README)."""
    info = result["machine"]
    triads = {r["threads"]: r["triad_gb_per_s"] for r in result["results"]}
    lines = [f"{info['cpu']}, {info['cores']} cores, ISA path {info['pynn']['isa_selected']}, "
             f"NumPy {info['numpy']}, {info['date'][:10]}; triad "
             + ", ".join(f"{v:.1f} GB/s at {k}T" for k, v in sorted(triads.items())) + ".",
             "",
             "| kernel | shape | threads | pynn (us) | NumPy (us) | speedup | GB/s | % triad |",
             "|---|---|---|---|---|---|---|---|"]
    for r in result["results"]:
        lines.append(f"| {r['kernel']} | {'x'.join(map(str, r['shape']))} | {r['threads']} | "
                     f"{r['pynn_s'] * 1e6:.1f} | {r['numpy_s'] * 1e6:.1f} | "
                     f"{r['speedup']:.2f}x | {r['gb_per_s']:.1f} | {r['pct_of_triad']:.0f}% |")
    return "\n".join(lines)


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--quick", action="store_true", help="small sizes only")
    parser.add_argument("--json", type=Path, default=None, help="write results here")
    parser.add_argument("--samples", type=int, default=9, help="interleaved pairs per case")
    parser.add_argument("--markdown", type=Path, default=None,
                        help="print the table of a results JSON written earlier, and exit")
    args = parser.parse_args(argv)
    if args.markdown:
        result = json.loads(args.markdown.read_text())
        print(markdown(result))
        return result

    info = machine_info()
    print(f"# {info['cpu']}, {info['cores']} cores, isa {pynn.get_isa()}, numpy "
          f"{np.__version__}, {info['date']}")
    rows = []
    for nt in args.threads:
        pynn.set_num_threads(nt)
        limits = threadpool_limits(limits=nt) if threadpool_limits else None
        triad = triad_bandwidth(nt)
        print(f"\n## {nt} thread(s): triad bandwidth {triad:.1f} GB/s")
        print(f"{'kernel':24s} {'shape':>14s} {'pynn us':>10s} {'numpy us':>10s} "
              f"{'GB/s':>7s} {'% bw':>6s} {'speedup':>8s} {'residual':>9s}")
        rng = np.random.default_rng(0)
        for case in cases(rng, args.quick):
            kernel, shape, nbytes, ours, theirs = case[:5]
            residual = (_sgd_residual(rng) if len(case) > 5 else
                        _residual(ours(), theirs()))
            t_ours, t_np, ratio = compare(ours, theirs, samples=args.samples)
            gbs = nbytes / t_ours / 1e9
            row = {"kernel": kernel, "shape": list(shape), "threads": nt, "dtype": "float32",
                   "pynn_s": t_ours, "numpy_s": t_np, "speedup": ratio, "gb_per_s": gbs,
                   "pct_of_triad": 100 * gbs / triad, "triad_gb_per_s": triad,
                   "residual": residual}
            rows.append(row)
            print(f"{kernel:24s} {'x'.join(map(str, shape)):>14s} {t_ours * 1e6:10.1f} "
                  f"{t_np * 1e6:10.1f} {gbs:7.1f} {row['pct_of_triad']:5.0f}% "
                  f"{ratio:7.2f}x {residual:9.1e}", flush=True)
        if limits is not None:
            limits.unregister()
    result = {"machine": info, "results": rows}
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=1))
        print(f"\nwrote {args.json}")
    return result


if __name__ == "__main__":
    main()
