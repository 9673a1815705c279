"""What the benchmarks ran on: CPU, cores, versions, BLAS kernel, date, and measured limits.

`describe()` returns a JSON-ready dict that every result file embeds. The limits are measured, not
looked up: the FMA peak (float32 and float64, per thread count) from independent FMA chains, and
the DRAM triad bandwidth, both from bench/probe.c, compiled on first use into a private shared
library (a C compiler is needed; without one the peaks are reported as unavailable, with why).

Run `python bench/machine.py` to print it.
"""
from __future__ import annotations

import contextlib
import ctypes
import datetime
import fcntl
import hashlib
import importlib
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
REPO_DIR = BENCH_DIR.parent
PROBE_SOURCE = BENCH_DIR / "probe.c"
# These two make OpenBLAS pick slower kernels on this machine; the benchmarks run without them.
OPENBLAS_ENV_TO_UNSET = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
SIMD_FLAGS = ("sse4_2", "avx", "avx2", "fma", "f16c", "avx512f", "avx512dq", "avx512bw",
              "avx512vl", "avx512_vnni", "avx512_bf16", "amx_tile", "asimd", "sve")


def say(message: str) -> None:
    """Progress, on stderr and at once (a benchmark's stdout is its table)."""
    print(message, file=sys.stderr, flush=True)


def clean_env(env: dict | None = None) -> dict:
    """A copy of `env` (default os.environ) without the OpenBLAS overrides."""
    env = dict(os.environ if env is None else env)
    for name in OPENBLAS_ENV_TO_UNSET:
        env.pop(name, None)
    return env


def reexec_with_clean_env() -> None:
    """Restart this script without the OpenBLAS overrides if they are set.

    They must be gone before NumPy loads OpenBLAS, so entry points call this first.
    """
    if any(name in os.environ for name in OPENBLAS_ENV_TO_UNSET):
        sys.stdout.flush()
        os.execve(sys.executable, [sys.executable] + sys.argv, clean_env())


LOCK_PATH = "/tmp/pynn-bench.lock"
LOCK_HELD_ENV = "PYNN_BENCH_LOCK_HELD"


@contextlib.contextmanager
def bench_lock(enabled: bool = True):
    """Hold /tmp/pynn-bench.lock (the same lock `flock /tmp/pynn-bench.lock CMD` takes) so no two
    benchmarks ever run at once. Children inherit PYNN_BENCH_LOCK_HELD and do not re-lock."""
    if not enabled or os.environ.get(LOCK_HELD_ENV) == "1":
        yield
        return
    with open(LOCK_PATH, "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if _lock_held_by_ancestor(handle.fileno()):  # `flock LOCK python -m bench`
                os.environ[LOCK_HELD_ENV] = "1"
                try:
                    yield
                finally:
                    os.environ.pop(LOCK_HELD_ENV, None)
                return
            print(f"waiting for {LOCK_PATH} (another benchmark is running)", file=sys.stderr)
            fcntl.flock(handle, fcntl.LOCK_EX)
        os.environ[LOCK_HELD_ENV] = "1"
        try:
            yield
        finally:
            os.environ.pop(LOCK_HELD_ENV, None)
            fcntl.flock(handle, fcntl.LOCK_UN)


def _lock_held_by_ancestor(fd: int) -> bool:
    """True if the flock on the file behind `fd` belongs to this process's parent chain (as when
    the command was started by flock(1)), from /proc/locks."""
    inode = os.fstat(fd).st_ino
    holders = set()
    try:
        for line in Path("/proc/locks").read_text().splitlines():
            fields = line.split()
            if len(fields) >= 6 and fields[1] == "FLOCK" and fields[5].split(":")[-1] == str(inode):
                holders.add(int(fields[4]))
    except (OSError, ValueError):
        return False
    pid = os.getppid()
    while pid > 1:
        if pid in holders:
            return True
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
            pid = int(stat.rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            return False
    return False


def load_machine(path: str | None, quick: bool = False) -> dict:
    """The machine description from a file the runner wrote, or measured now."""
    if path:
        import json
        return json.loads(Path(path).read_text())
    return describe(quick=quick)


def thread_counts() -> list[int]:
    """1, 2, 4, ... up to the cores this process may use, and that core count itself."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    counts, n = [], 1
    while n < cores:
        counts.append(n)
        n *= 2
    counts.append(cores)
    return counts


def cpu_info() -> dict:
    model, flags = platform.processor() or platform.machine(), []
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            key = key.strip()
            if key in ("model name", "Model", "cpu model") and model in ("", platform.machine(),
                                                                        platform.processor()):
                model = value.strip()
            elif key in ("flags", "Features") and not flags:
                flags = value.split()
    except OSError:
        pass
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    caches = {}
    for index in sorted(Path("/sys/devices/system/cpu/cpu0/cache").glob("index*")):
        try:
            level = (index / "level").read_text().strip()
            kind = (index / "type").read_text().strip()
            size = (index / "size").read_text().strip()
        except OSError:
            continue
        name = f"L{level}" + {"Data": "d", "Instruction": "i"}.get(kind, "")
        caches[name] = size
    mem_gib = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_gib = round(int(line.split()[1]) / 2**20, 1)
    except OSError:
        pass
    return {
        "model": model,
        "arch": platform.machine(),
        "cores_usable": cores,
        "cpu_count": os.cpu_count(),
        "simd_flags": [f for f in SIMD_FLAGS if f in flags],
        "caches": caches,
        "memory_gib": mem_gib,
        "hypervisor": "hypervisor" in flags,
    }


def versions() -> dict:
    out = {"python": platform.python_version()}
    for name in ("numpy", "pynn", "torch", "sklearn", "threadpoolctl", "matplotlib", "psutil"):
        try:
            module = importlib.import_module(name)
            out[name] = getattr(module, "__version__", "?")
        except Exception:  # noqa: BLE001 -- absent or broken: recorded as missing
            out[name] = None
    return out


def blas_info() -> list[dict]:
    """What threadpoolctl reports for every BLAS/OpenMP library loaded (kernel = architecture)."""
    try:
        import numpy  # noqa: F401 -- loads its BLAS
        from threadpoolctl import threadpool_info
    except ImportError:
        return []
    keep = ("user_api", "internal_api", "version", "architecture", "threading_layer",
            "num_threads", "filepath")
    return [{k: lib.get(k) for k in keep if k in lib} for lib in threadpool_info()]


def openblas_kernel(blas: list[dict]) -> str | None:
    for lib in blas:
        if lib.get("internal_api") == "openblas":
            return f"OpenBLAS {lib.get('version')} {lib.get('architecture')}"
    return None


def git_state() -> dict:
    def git(*args: str) -> str | None:
        try:
            return subprocess.run(["git", "-C", str(REPO_DIR), *args], capture_output=True,
                                  text=True, timeout=10, check=True).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return None
    status = git("status", "--porcelain", "--untracked-files=no")
    return {"commit": git("rev-parse", "HEAD"), "branch": git("rev-parse", "--abbrev-ref", "HEAD"),
            "subject": git("log", "-1", "--format=%s"), "dirty": bool(status) if status is not None
            else None}


# ---- measured limits (bench/probe.c) -------------------------------------------------------------

_probe_lib = None


def _probe_library() -> ctypes.CDLL:
    """Compile probe.c once per source version (cached by hash) and load it."""
    global _probe_lib
    if _probe_lib is not None:
        return _probe_lib
    source = PROBE_SOURCE.read_bytes()
    digest = hashlib.sha256(source).hexdigest()[:12]
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "pynn-bench"
    lib_path = cache / f"probe-{digest}.so"
    if not lib_path.exists():
        cc = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
        if cc is None:
            raise RuntimeError("no C compiler (cc/gcc) to build bench/probe.c")
        cache.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=cache) as tmp:
            tmp_lib = Path(tmp) / lib_path.name
            base = [cc, "-O2", "-shared", "-fPIC", "-o", str(tmp_lib), str(PROBE_SOURCE)]
            result = subprocess.run(base[:1] + ["-fopenmp"] + base[1:], capture_output=True,
                                    text=True, check=False)
            if result.returncode != 0:  # no OpenMP: a serial probe (1 thread only)
                result = subprocess.run(base, capture_output=True, text=True, check=False)
            if result.returncode != 0:
                raise RuntimeError(f"building bench/probe.c failed:\n{result.stderr[-2000:]}")
            os.replace(tmp_lib, lib_path)
    lib = ctypes.CDLL(str(lib_path))
    lib.probe_fma_seconds.restype = ctypes.c_double
    lib.probe_fma_seconds.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int64, ctypes.c_int]
    lib.probe_fma_lanes.restype = ctypes.c_int
    lib.probe_fma_lanes.argtypes = [ctypes.c_int, ctypes.c_int]
    lib.probe_triad_seconds.restype = ctypes.c_double
    lib.probe_triad_seconds.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p,
                                        ctypes.c_int64, ctypes.c_int, ctypes.c_int]
    lib.probe_openmp.restype = ctypes.c_int
    _probe_lib = lib
    return lib


def _supported_isas() -> list[str]:
    try:
        import pynn
        return list(pynn._core.isa_supported())
    except Exception:  # noqa: BLE001 -- pynn not built: fall back to the CPU flags
        flags = cpu_info()["simd_flags"]
        isas = ["generic"]
        if "avx2" in flags and "fma" in flags:
            isas.append("avx2")
        if all(f in flags for f in ("avx512f", "avx512dq", "avx512bw", "avx512vl")):
            isas.append("avx512")
        return isas


def _calibrated_best(run, seconds: float, repeats: int) -> tuple[int, float]:
    """(iters, best seconds) of run(iters) -> seconds, with iters sized on ONE thread's time so
    that a loaded machine (a thread descheduled mid-run) cannot shrink the work to nothing."""
    iters = 1000
    while True:
        t = run(iters, 1)
        if t > seconds / 4 or iters > 1 << 34:
            break
        iters *= 4
    iters = max(1000, int(iters * seconds / max(t, 1e-9)))
    return iters, min(run(iters, None) for _ in range(repeats))


def measure_fma_peak(threads: int, dtype: str = "float32", seconds: float = 0.1,
                     repeats: int = 9) -> dict:
    """Best-of-`repeats` FMA throughput in GFLOP/s at `threads` threads, from bench/probe.c on
    every ISA path the CPU runs (the best one is the figure; every path recorded). Short runs,
    many of them: on a shared machine the best one is the machine's limit."""
    lib = _probe_library()
    dt = {"float32": 0, "float64": 1}[dtype]
    names = ("generic", "avx2", "avx512")
    per_isa = {}
    for isa in _supported_isas():
        code, lanes = names.index(isa), lib.probe_fma_lanes(names.index(isa), dt)

        def run(iters: int, t: int | None, code: int = code) -> float:
            return lib.probe_fma_seconds(code, dt, iters, t or threads)

        iters, best = _calibrated_best(run, seconds, repeats)
        per_isa[isa] = round(threads * iters * 12 * lanes * 2 / best / 1e9, 2)
    best_isa = max(per_isa, key=per_isa.get)
    return {"gflops": per_isa[best_isa], "isa": best_isa, "per_isa": per_isa,
            "source": "bench/probe.c"}


def measure_triad(threads: int, n: int = 1 << 23, reps: int = 5) -> dict:
    """STREAM triad a = b + 3c on three 64 MiB float64 arrays (beyond the L3): best GB/s, from
    bench/probe.c (the probes live outside the pynn library)."""
    import numpy as np

    a, b, c = np.zeros(n), np.ones(n), np.full(n, 2.0)
    lib = _probe_library()
    best = lib.probe_triad_seconds(a.ctypes.data, b.ctypes.data, c.ctypes.data, n, reps, threads)
    source = "bench/probe.c"
    return {"gbs": round(3 * 8 * n / best / 1e9, 2), "source": source}


def measure_limits(threads_list: list[int] | None = None, quick: bool = False) -> dict:
    """FMA peak (float32/float64) and triad bandwidth at each thread count."""
    threads_list = threads_list or thread_counts()
    out: dict = {"threads": threads_list}
    seconds, repeats = (0.05, 7) if quick else (0.1, 11)
    for t in threads_list:
        row: dict = {}
        try:
            f32 = measure_fma_peak(t, "float32", seconds, repeats)
            f64 = measure_fma_peak(t, "float64", seconds, repeats)
            row.update(fma_peak_f32_gflops=f32["gflops"], fma_peak_f64_gflops=f64["gflops"],
                       fma_isa=f32["isa"], fma_source=f32["source"])
            if "per_isa" in f32:
                row["fma_per_isa_f32"] = f32["per_isa"]
        except (RuntimeError, OSError) as exc:
            row["fma_error"] = str(exc)
        try:
            triad = measure_triad(t, reps=3 if quick else 5)
            row["triad_gbs"], row["triad_source"] = triad["gbs"], triad["source"]
        except (RuntimeError, OSError) as exc:
            row["triad_error"] = str(exc)
        out[str(t)] = row
    return out


def peak_gflops(machine: dict, threads: int, dtype: str = "float32") -> float | None:
    """The measured FMA peak at `threads` threads from a describe() dict (None if unmeasured)."""
    row = machine.get("limits", {}).get(str(threads))
    return row.get(f"fma_peak_{'f32' if dtype == 'float32' else 'f64'}_gflops") if row else None


def describe(measure: bool = True, quick: bool = False,
             threads: list[int] | None = None) -> dict:
    """Everything a result file records about the machine and the software."""
    blas = blas_info()
    info = {
        "date_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "hostname": platform.node(),
        "os": f"{platform.system()} {platform.release()}",
        "cpu": cpu_info(),
        "versions": versions(),
        "blas": blas,
        "openblas_kernel": openblas_kernel(blas),
        "env_unset": list(OPENBLAS_ENV_TO_UNSET),
        "git": git_state(),
    }
    try:
        import pynn
        info["pynn_build"] = pynn.build_info()
    except Exception as exc:  # noqa: BLE001
        info["pynn_build"] = {"error": str(exc)}
    if measure:
        info["limits"] = measure_limits(threads, quick=quick)
    return info


def summary_line(machine: dict) -> str:
    cpu = machine["cpu"]
    v = machine["versions"]
    return (f"{cpu['model']}, {cpu['cores_usable']} cores ({', '.join(cpu['simd_flags'])}); "
            f"Python {v['python']}, NumPy {v['numpy']} ({machine.get('openblas_kernel')}), "
            f"pynn {v['pynn']} ({machine.get('pynn_build', {}).get('isa_selected')}), "
            f"torch {v['torch']}, scikit-learn {v['sklearn']}")



# ---- the command line every benchmark script shares ---------------------------------------------

def bench_parser(description: str, systems: str | None = None):
    """The flags every benchmark script takes: --quick/--tiny, --json, --machine, --threads,
    --no-lock, and --systems when `systems` (the choices, comma-separated) is given."""
    import argparse

    parser = argparse.ArgumentParser(description=description)
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="short runs")
    mode.add_argument("--tiny", action="store_true", help="a pipeline check, seconds")
    parser.add_argument("--json", help="write the results here")
    parser.add_argument("--machine", help="machine description JSON (default: measure now)")
    if systems is not None:
        parser.add_argument("--systems", help=f"comma-separated subset of {systems}")
    parser.add_argument("--threads", help="comma-separated thread counts (default 1,2,..cores)")
    parser.add_argument("--no-lock", action="store_true", help="do not take the benchmark lock")
    return parser


def mode_of(args) -> str:
    return "tiny" if args.tiny else "quick" if args.quick else "full"


def comma_list(text: str | None, kind=str):
    """'1,2' -> [1, 2] (with kind=int); None -> None (the script's default)."""
    return [kind(item) for item in text.split(",")] if text else None


def finish(results: dict, machine: dict, table, json_path: str | None) -> int:
    """Attach the machine, print the table, write the JSON: how every script ends."""
    results["machine"] = machine
    print(table(results))
    if json_path:
        Path(json_path).write_text(json.dumps(results, indent=1))
    return 0

if __name__ == "__main__":
    import json

    reexec_with_clean_env()
    print(json.dumps(describe(quick="--quick" in sys.argv), indent=2))
