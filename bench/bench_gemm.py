"""GEMM benchmark: pynn.ops.matmul / linear / linear_backward against NumPy (OpenBLAS).

Side by side in one run, interleaved (A B A B ...), median ratio; at 1 and 2 threads, float32 and
float64. Cases: the nine GEMMs of a 784-256-128-10 step (forward x.w, backward dz.w^T
and x^T.dz per layer) at batch 32, 128 and 512, and the sum of the eight a training step runs
(all but the first layer's dx); 2048^3; linear(..., relu) against
np.maximum(x @ w + b, 0) (the output layer: x @ w + b); linear_backward against NumPy's composed
dz, dw, db, dx. Prints GFLOP/s, % of the FMA peak measured here (pynn's own FMA-throughput loop),
the residual against a float64 reference, and the ratio NumPy time / pynn time (> 1: pynn
faster).

Run:  flock /tmp/pynn-bench.lock env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE \
        python bench/bench_gemm.py [--quick] [--threads 1 2] [--json bench/results/gemm.json]
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import time

import numpy as np
from threadpoolctl import threadpool_info, threadpool_limits

import pynn
from bench import machine
from pynn import ops

LAYERS = [(784, 256), (256, 128), (128, 10)]


def machine_info() -> dict:
    model, flags = "unknown", []
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name") and model == "unknown":
                    model = line.split(":", 1)[1].strip()
                if line.startswith("flags") and not flags:
                    flags = [fl for fl in line.split(":", 1)[1].split()
                             if fl.startswith(("avx", "fma", "sse4"))]
    except OSError:
        pass
    blas = [{k: d.get(k) for k in ("internal_api", "version", "architecture", "num_threads")}
            for d in threadpool_info() if d.get("user_api") == "blas"]
    return {"cpu": model, "simd_flags": flags, "cores": os.cpu_count(),
            "python": platform.python_version(), "numpy": np.__version__,
            "pynn": pynn.build_info(), "blas": blas,
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "env_openblas": {k: os.environ.get(k) for k in ("OPENBLAS_CORETYPE",
                                                          "OPENBLAS_L2_SIZE")}}


def _time_call(f, min_time: float) -> float:
    """Seconds per call of f, looping until at least min_time has passed."""
    n, t = 1, 0.0
    while True:
        t0 = time.perf_counter()
        for _ in range(n):
            f()
        t = time.perf_counter() - t0
        if t >= min_time:
            return t / n
        n = max(n * 2, int(n * min_time / max(t, 1e-9) * 1.2))


# After its last call each library's idle worker threads spin for a while (OpenBLAS ~0.1 s,
# libgomp ~1 ms) before they sleep; on 2 cores a spinning pool starves the other library's
# second thread (a 2-thread GEMM then waits on a descheduled partner: 20-40x slower). Multi-
# threaded timings therefore switch library only after this pause.
HANDOFF_PAUSE_S = 0.15


def interleaved(f_pynn, f_numpy, reps: int, min_time: float,
                pause: float = 0.0) -> tuple[float, float, float]:
    """(median pynn seconds, median numpy seconds, median of per-pair ratios numpy/pynn).

    pause: seconds to wait before each switch to the other library (see HANDOFF_PAUSE_S)."""
    f_pynn()
    f_numpy()  # warm up: packing buffers, thread pools, caches
    _time_call(f_pynn, min_time / 4)
    _time_call(f_numpy, min_time / 4)
    tp, tn, ratios = [], [], []
    for _ in range(reps):
        time.sleep(pause)
        a = _time_call(f_pynn, min_time)
        time.sleep(pause)
        b = _time_call(f_numpy, min_time)
        tp.append(a)
        tn.append(b)
        ratios.append(b / a)
    return statistics.median(tp), statistics.median(tn), statistics.median(ratios)


def residual(got, want64) -> float:
    """max |got - want| / max |want| (relative to the result's scale)."""
    got, want64 = np.asarray(got, np.float64), np.asarray(want64, np.float64)
    return float(np.max(np.abs(got - want64)) / max(np.max(np.abs(want64)), 1e-300))


def step_gemms(batch: int, rng, dtype):
    """The nine GEMMs of a 784-256-128-10 step: (name, flops, pynn fn, numpy fn, reference)."""
    cases = []
    for li, (i, o) in enumerate(LAYERS):
        x = rng.standard_normal((batch, i)).astype(dtype)
        w = (rng.standard_normal((i, o)) / np.sqrt(i)).astype(dtype)
        dz = rng.standard_normal((batch, o)).astype(dtype)
        c_f, c_w, c_x = (np.empty((batch, o), dtype), np.empty((i, o), dtype),
                         np.empty((batch, i), dtype))
        x64, w64, dz64 = (v.astype(np.float64) for v in (x, w, dz))
        fl = 2.0 * batch * i * o
        cases.append((f"L{li + 1} fwd  x.w    {batch}x{i}.{i}x{o}", fl,
                      lambda x=x, w=w, c=c_f: ops.matmul(x, w, out=c),
                      lambda x=x, w=w, c=c_f: np.matmul(x, w, out=c),
                      lambda x64=x64, w64=w64: x64 @ w64))
        cases.append((f"L{li + 1} dw   x^T.dz {i}x{batch}.{batch}x{o}", fl,
                      lambda x=x, dz=dz, c=c_w: ops.matmul(x, dz, trans_a=True, out=c),
                      lambda x=x, dz=dz, c=c_w: np.matmul(x.T, dz, out=c),
                      lambda x64=x64, dz64=dz64: x64.T @ dz64))
        cases.append((f"L{li + 1} dx   dz.w^T {batch}x{o}.{o}x{i}", fl,
                      lambda dz=dz, w=w, c=c_x: ops.matmul(dz, w, trans_b=True, out=c),
                      lambda dz=dz, w=w, c=c_x: np.matmul(dz, w.T, out=c),
                      lambda dz64=dz64, w64=w64: dz64 @ w64.T))
    return cases


def run(threads_list, dtypes, quick: bool) -> dict:
    rng = np.random.default_rng(0)
    reps, min_time = (3, 0.02) if quick else (5, 0.03)
    results = {"machine": machine_info(), "cases": []}
    print(f"# {results['machine']['cpu']}  cores={results['machine']['cores']}  "
          f"isa={pynn.get_isa()}  blas={results['machine']['blas']}")
    hdr = (f"{'case':44s} {'thr':>3s} {'dtype':>7s} {'pynn GF/s':>9s} {'%peak':>6s} "
           f"{'numpy GF/s':>10s} {'resid':>8s} {'ratio':>6s}")
    for nt in threads_list:
        pynn.set_num_threads(nt)
        with threadpool_limits(nt):
            for dtype in dtypes:
                dname = np.dtype(dtype).name
                peak = machine.measure_fma_peak(nt, dname)["gflops"] * 1e9
                print(f"\n## threads={nt} {dname}: FMA peak measured {peak / 1e9:.1f} GFLOP/s")
                print(hdr)

                def record(name, flops, fp, fn, want, group, got=None, nt=nt, dname=dname,
                           peak=peak):
                    tp, tn, ratio = interleaved(fp, fn, reps, min_time,
                                                HANDOFF_PAUSE_S if nt > 1 else 0.0)
                    res = residual(fp() if got is None else got(), want()) if want else 0.0
                    gp = flops / tp / 1e9 if flops else float("nan")
                    gn = flops / tn / 1e9 if flops else float("nan")
                    pct = 100 * flops / tp / peak if flops else float("nan")
                    print(f"{name:44s} {nt:3d} {dname:>7s} {gp:9.1f} {pct:6.1f} {gn:10.1f} "
                          f"{res:8.1e} {ratio:6.2f}", flush=True)
                    results["cases"].append({
                        "group": group, "case": name, "threads": nt, "dtype": dname,
                        "pynn_s": tp, "numpy_s": tn, "ratio_numpy_over_pynn": ratio,
                        "pynn_gflops": gp, "numpy_gflops": gn, "pct_fma_peak": pct,
                        "fma_peak_gflops": peak / 1e9, "residual": res})
                    return tp, tn

                batches = (128,) if quick else (32, 128, 512)
                for batch in batches:
                    tot_f = 0.0
                    for name, fl, fp, fn, want in step_gemms(batch, rng, dtype):
                        record(name, fl, fp, fn, want, f"step{batch}")
                        tot_f += fl if not name.startswith("L1 dx") else 0.0
                    # the eight a training step runs (not the first layer's dx), timed back to
                    # back as one step's worth
                    cases = [c for c in step_gemms(batch, rng, dtype)
                             if not c[0].startswith("L1 dx")]

                    def all_p(cases=cases):
                        for c in cases:
                            c[2]()

                    def all_n(cases=cases):
                        for c in cases:
                            c[3]()
                    record(f"STEP SUM (8 GEMMs) batch {batch}", tot_f, all_p, all_n, None,
                           f"step{batch}-sum")

                big = 1024 if quick else 2048
                a = rng.standard_normal((big, big)).astype(dtype)
                b = rng.standard_normal((big, big)).astype(dtype)
                cbuf, nbuf = np.empty_like(a), np.empty_like(a)
                sub = slice(0, 64)
                record(f"{big}^3", 2.0 * big ** 3,
                       lambda a=a, b=b, c=cbuf: ops.matmul(a, b, out=c),
                       lambda a=a, b=b, c=nbuf: np.matmul(a, b, out=c),
                       lambda a=a, b=b, s=sub: a[s].astype(np.float64) @ b.astype(np.float64),
                       "big", got=lambda a=a, b=b, s=sub: ops.matmul(a[s], b))

                for batch in (1, 128) if quick else (1, 32, 128, 512):
                    for li, (i, o) in enumerate(LAYERS):
                        act = "relu" if li < 2 else "identity"
                        x = rng.standard_normal((batch, i)).astype(dtype)
                        w = (rng.standard_normal((i, o)) / np.sqrt(i)).astype(dtype)
                        bias = rng.standard_normal(o).astype(dtype)
                        y = np.empty((batch, o), dtype)
                        if act == "relu":
                            def fnp(x=x, w=w, bias=bias):
                                return np.maximum(x @ w + bias, 0)
                        else:
                            def fnp(x=x, w=w, bias=bias):
                                return x @ w + bias

                        def want(x=x, w=w, bias=bias, act=act):
                            z = x.astype(np.float64) @ w.astype(np.float64) + bias
                            return np.maximum(z, 0) if act == "relu" else z
                        record(f"linear {act:8s} {batch}x{i}.{i}x{o}+b", 2.0 * batch * i * o,
                               lambda x=x, w=w, bias=bias, y=y, act=act:
                               ops.linear(x, w, bias, activation=act, out=y),
                               fnp, want, f"linear{batch}")

                for batch in (128,) if quick else (32, 128, 512):
                    for li, (i, o) in enumerate(LAYERS):
                        act = "relu" if li < 2 else "identity"
                        need_dx = li > 0
                        x = rng.standard_normal((batch, i)).astype(dtype)
                        w = (rng.standard_normal((i, o)) / np.sqrt(i)).astype(dtype)
                        y = ops.linear(x, w, activation=act)
                        dy = rng.standard_normal((batch, o)).astype(dtype)
                        dx, dw, db = (np.empty((batch, i), dtype), np.empty((i, o), dtype),
                                      np.empty(o, dtype))

                        def fp(x=x, w=w, y=y, dy=dy, dx=dx, dw=dw, db=db, act=act,
                               need_dx=need_dx):
                            return ops.linear_backward(
                                x, w, y, dy, activation=act, need_dx=need_dx,
                                dx=dx if need_dx else None, dw=dw, db=db)

                        def fnp(x=x, w=w, y=y, dy=dy, act=act, need_dx=need_dx):
                            dz = dy * (y > 0) if act == "relu" else dy
                            return (dz @ w.T if need_dx else None, x.T @ dz, dz.sum(axis=0))

                        def want(x=x, w=w, y=y, dy=dy, act=act):
                            dz = dy.astype(np.float64) * ((y > 0) if act == "relu" else 1)
                            return x.astype(np.float64).T @ dz

                        fl = 2.0 * batch * i * o * (2 if need_dx else 1)
                        record(f"linear_backward {act:8s} {batch}x{i}->{o}"
                               f"{'' if need_dx else ' (no dx)'}", fl, fp, fnp, want,
                               f"backward{batch}", got=lambda fp=fp: fp()[1])
    return results


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--dtype", nargs="+", default=["float32", "float64"])
    ap.add_argument("--quick", action="store_true", help="fewer cases and repetitions")
    ap.add_argument("--json", default=None, help="write the results here")
    args = ap.parse_args()
    results = run(args.threads, [np.dtype(d).type for d in args.dtype], args.quick)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
        print(f"\nwrote {args.json}")


if __name__ == "__main__":
    main()
