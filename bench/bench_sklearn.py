"""fit() time of pynn's scikit-learn estimator against scikit-learn's MLPClassifier (issue 5).

Same settings on both sides (SGD, classical momentum 0.9, constant learning rate 0.05, batch 128,
alpha 1e-4, shuffle, a fixed number of epochs: tol=0 and n_iter_no_change above max_iter so
neither stops early), float32 input, on scikit-learn's digits and on Fashion-MNIST, at 1 and 2
threads. The two alternate fit by fit (A B A B) in their own worker processes; the figure is the
median fit time and its ratio. Test accuracy is reported next to it: faster must not mean worse.

Until pynn.sklearn.MLPClassifier exists, the pynn side runs the same recipe through
pynn.Sequential.fit and the result says so.

    python bench/bench_sklearn.py [--quick] [--json PATH]
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import machine as machine_mod
from bench.bench_train import HANDOFF_PAUSE_S, median
from bench.systems import DataMissing, Worker, WorkerError, unavailable_reason

IMPLS = ("pynn", "sklearn")


def estimator_params(hidden: list[int], epochs: int) -> dict:
    return {"hidden_layer_sizes": tuple(hidden), "activation": "relu", "solver": "sgd",
            "alpha": 1e-4, "batch_size": 128, "learning_rate": "constant",
            "learning_rate_init": 0.05, "momentum": 0.9, "nesterovs_momentum": False,
            "shuffle": True, "random_state": 0, "max_iter": epochs, "tol": 0.0,
            "n_iter_no_change": epochs + 1, "early_stopping": False}


def default_params(epochs: int) -> dict:
    """scikit-learn's defaults (100 hidden units, Adam lr 1e-3, batch min(200, n), alpha 1e-4),
    `epochs` epochs without the early stop: what a user gets from MLPClassifier()."""
    return {"random_state": 0, "max_iter": epochs, "tol": 0.0, "n_iter_no_change": epochs + 1}


def case_params(case: dict) -> dict:
    if case.get("defaults"):
        return default_params(case["epochs"])
    return estimator_params(case["hidden"], case["epochs"])


CASES = {
    "full": [
        {"dataset": "digits", "hidden": [256, 128], "epochs": 30, "repeats": 3, "budget_s": 60},
        {"dataset": "fashion-mnist", "hidden": [256, 128], "epochs": 2, "repeats": 2,
         "budget_s": 90},
        {"dataset": "fashion-mnist", "defaults": True, "epochs": 3, "repeats": 2,
         "budget_s": 90},
    ],
    "quick": [
        {"dataset": "digits", "hidden": [256, 128], "epochs": 20, "repeats": 2},
        {"dataset": "fashion-mnist", "hidden": [256, 128], "epochs": 2, "repeats": 1,
         "n_train": 15000},
    ],
    "tiny": [
        {"dataset": "digits", "hidden": [16], "epochs": 2, "repeats": 1},
    ],
}


def run_case(case: dict, threads: int, log=machine_mod.say) -> dict:
    params = case_params(case)
    out: dict = {"threads": threads, "impls": {}}
    workers: dict[str, Worker] = {}
    try:
        for impl in IMPLS:
            reason = unavailable_reason("sklearn")
            if reason:
                out["impls"][impl] = {"error": reason}
                continue
            worker = Worker(threads)
            try:
                setup = worker.call("setup", dataset=case["dataset"], threads=threads,
                                    n_train=case.get("n_train"), n_test=case.get("n_test"))
            except WorkerError as exc:
                worker.close()
                if "DataMissing" in str(exc):
                    raise DataMissing(str(exc)) from None
                raise
            out["n_train"], out["n_test"] = setup["n_train"], setup["n_test"]
            workers[impl] = worker
            out["impls"][impl] = {"fit_seconds": [], "test_accuracy": []}
        started = time.perf_counter()
        for r in range(case["repeats"]):
            if r and case.get("budget_s") and time.perf_counter() - started > case["budget_s"]:
                out["truncated"] = f"{r} of {case['repeats']} rounds ({case['budget_s']} s budget)"
                log(f"  stopped after {out['truncated']}")
                break
            names = list(workers)
            names = names[r % len(names):] + names[:r % len(names)] if names else names
            for impl in names:
                time.sleep(HANDOFF_PAUSE_S)
                row = out["impls"][impl]
                try:
                    answer = workers[impl].call("estimator_fit", impl=impl, params=params)
                except WorkerError as exc:
                    row["error"] = str(exc)
                    workers.pop(impl).close()
                    log(f"  {impl:8s} unavailable: {exc}")
                    continue
                row["fit_seconds"].append(answer["seconds"])
                row["test_accuracy"].append(answer["test_accuracy"])
                row["impl"], row["epochs"] = answer["impl"], answer["epochs"]
            log(f"  round {r + 1}: " + "  ".join(
                f"{i} {out['impls'][i]['fit_seconds'][-1]:.3f}s" for i in workers))
    finally:
        for worker in workers.values():
            worker.close()
    for row in out["impls"].values():
        if row.get("fit_seconds"):
            row["median_fit_s"] = median(row["fit_seconds"])
            row["s_per_epoch"] = row["median_fit_s"] / case["epochs"]
    sk, pn = out["impls"].get("sklearn", {}), out["impls"].get("pynn", {})
    if "median_fit_s" in sk and "median_fit_s" in pn:
        out["speedup_vs_sklearn"] = sk["median_fit_s"] / pn["median_fit_s"]
    return out


def table(results: dict) -> str:
    lines = [("| data | epochs | threads | scikit-learn fit s | pynn fit s | speedup | "
              "acc scikit-learn | acc pynn | pynn side |"), "|---|---|---|---|---|---|---|---|---|"]
    for case in results["cases"]:
        for run in case["runs"]:
            sk, pn = run["impls"].get("sklearn", {}), run["impls"].get("pynn", {})

            def cell(row: dict, key: str, fmt: str) -> str:
                if key == "test_accuracy":
                    return format(row[key][-1], fmt) if row.get(key) else "n/a"
                return format(row[key], fmt) if key in row else "n/a"
            speed = run.get("speedup_vs_sklearn")
            label = f"{case['dataset']}{', defaults' if case.get('defaults') else ''}"
            lines.append(f"| {label} ({run.get('n_train', '?')} train) | "
                         f"{case['epochs']} | {run['threads']} | "
                         f"{cell(sk, 'median_fit_s', '.3f')} | {cell(pn, 'median_fit_s', '.3f')} | "
                         f"{'' if speed is None else f'{speed:.2f}x'} | "
                         f"{cell(sk, 'test_accuracy', '.4f')} | "
                         f"{cell(pn, 'test_accuracy', '.4f')} | "
                         f"{pn.get('impl') or pn.get('error', '?')[:70]} |")
    return "\n".join(lines)


def run(mode: str = "full", threads: list[int] | None = None, machine: dict | None = None,
        log=machine_mod.say) -> dict:
    machine = machine or machine_mod.describe(measure=False)
    threads = threads or (machine.get("limits", {}).get("threads") or machine_mod.thread_counts())
    results = {"benchmark": "sklearn", "mode": mode, "date_utc": machine["date_utc"],
               "git": machine.get("git"), "cases": []}
    for case in CASES[mode]:
        entry = {**case, "params": case_params(case), "runs": []}
        for t in threads:
            log(f"sklearn-style fit on {case['dataset']}, {case['epochs']} epochs, {t} thread(s)")
            entry["runs"].append(run_case(case, t, log))
        results["cases"].append(entry)
    return results


def main(argv: list[str] | None = None) -> int:
    args = machine_mod.bench_parser(__doc__.split("\n\n")[0]).parse_args(argv)
    machine_mod.reexec_with_clean_env()
    mode = machine_mod.mode_of(args)
    with machine_mod.bench_lock(not args.no_lock):
        machine = (machine_mod.load_machine(args.machine) if args.machine
                   else machine_mod.describe(measure=False))
        try:
            results = run(mode, machine_mod.comma_list(args.threads, int), machine)
        except DataMissing as exc:
            print(exc, file=sys.stderr)
            return 2
    return machine_mod.finish(results, machine, table, args.json)


if __name__ == "__main__":
    sys.exit(main())
