"""The systems the benchmarks compare, each run in its own worker process.

A system is pynn (float32), the textbook NumPy MLP (bench/numpy_mlp.py), PyTorch CPU eager, JAX
(the whole step jitted: grad and momentum update), or scikit-learn's MLPClassifier (float32);
onnxruntime (running pynn's model exported to ONNX)
only infers. All train the same network from the same He-normal
weights with the same recipe (softmax cross-entropy, SGD with classical momentum, shuffled
mini-batches).

Each system lives in a worker process (`python -m bench.systems`), so its thread setting is clean
(environment and library call agree from the start), its peak RSS is its own, and no two OpenMP
or BLAS thread pools share a process. The coordinator (`Worker`) sends one JSON command per line
and waits for the answer; several workers may be alive at once, but only one computes at a time,
so epochs of different systems interleave (A B C D A B C D) and their ratios come from one run.
"""
from __future__ import annotations

import gzip
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

BENCH_DIR = Path(__file__).resolve().parent
REPO_DIR = BENCH_DIR.parent
SYSTEMS = ("pynn", "numpy", "torch", "jax", "sklearn")
#: JAX's CPU backend on one thread (its own thread pools, not OpenMP's; issue 17's setting).
JAX_ONE_THREAD = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
FASHION_DIR_DEFAULT = "/usr/share/datasets/fashion-mnist"
FASHION_HOWTO = ("Fashion-MNIST is missing. Install it with\n"
                 "    sudo apt-get update && sudo apt-get install -y dataset-fashion-mnist\n"
                 "(files under /usr/share/datasets/fashion-mnist), or set PYNN_DATA to a "
                 "directory holding train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, "
                 "t10k-images-idx3-ubyte.gz and t10k-labels-idx1-ubyte.gz.")


class DataMissing(RuntimeError):
    """The real data set is not installed (the benchmarks never substitute synthetic data)."""


# ---- data --------------------------------------------------------------------------------------

def _read_idx(path: Path) -> np.ndarray:
    """A minimal IDX reader, used only when pynn.datasets is not available."""
    if path.suffix == ".gz":
        with gzip.open(path) as handle:
            raw = handle.read()
    else:
        raw = path.read_bytes()
    ndim = raw[3]
    shape = tuple(int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim))
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


def load_fashion_mnist() -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """(X_train, y_train), (X_test, y_test): X float32 (n, 784) in [0, 1], y int64.

    Uses pynn.datasets.load_fashion_mnist when pynn has it; raises DataMissing (with how to
    install the Debian package) when the files are absent.
    """
    try:
        from pynn import datasets
        loader = datasets.load_fashion_mnist
    except (ImportError, AttributeError):
        loader = None
    if loader is not None:
        try:
            (xtr, ytr), (xte, yte) = loader()
        except (FileNotFoundError, OSError, ValueError) as exc:
            raise DataMissing(f"{FASHION_HOWTO}\n(pynn.datasets said: {exc})") from None
    else:
        root = Path(os.environ.get("PYNN_DATA") or FASHION_DIR_DEFAULT)
        files = {}
        for part in ("train-images", "train-labels", "t10k-images", "t10k-labels"):
            kind = "idx3" if "images" in part else "idx1"
            for name in (f"{part}-{kind}-ubyte.gz", f"{part}-{kind}-ubyte"):
                if (root / name).exists():
                    files[part] = root / name
                    break
            else:
                raise DataMissing(f"{FASHION_HOWTO}\n(looked in {root})")
        xtr = _read_idx(files["train-images"]).reshape(-1, 784).astype(np.float32)
        xte = _read_idx(files["t10k-images"]).reshape(-1, 784).astype(np.float32)
        xtr /= 255
        xte /= 255
        ytr, yte = _read_idx(files["train-labels"]), _read_idx(files["t10k-labels"])
    xtr = np.ascontiguousarray(xtr, dtype=np.float32)
    xte = np.ascontiguousarray(xte, dtype=np.float32)
    return (xtr, np.asarray(ytr, dtype=np.int64)), (xte, np.asarray(yte, dtype=np.int64))


def load_digits() -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """scikit-learn's digits (8x8, 1797 images), /16 as float32, a fixed 1437/360 split."""
    from sklearn.datasets import load_digits as sk_digits

    data = sk_digits()
    x = (data.data / 16.0).astype(np.float32)
    y = data.target.astype(np.int64)
    order = np.random.default_rng(0).permutation(len(x))
    x, y = x[order], y[order]
    split = int(0.8 * len(x))
    return (x[:split], y[:split]), (x[split:], y[split:])


def load_dataset(name: str, n_train: int | None = None, n_test: int | None = None):
    (xtr, ytr), (xte, yte) = {"fashion-mnist": load_fashion_mnist,
                              "digits": load_digits}[name]()
    if n_train is not None:
        xtr, ytr = xtr[:n_train], ytr[:n_train]
    if n_test is not None:
        xte, yte = xte[:n_test], yte[:n_test]
    return (np.ascontiguousarray(xtr), ytr), (np.ascontiguousarray(xte), yte)


# ---- the systems -------------------------------------------------------------------------------
# Each takes the config and the initial parameters [W1, b1, ...] (W: in x out, float32) and offers
# epoch(x, y) -> mean loss, logits(x) and accuracy(x, y).

class NumpySystem:
    name = "numpy"

    def __init__(self, cfg: dict, params: list[np.ndarray]):
        from threadpoolctl import threadpool_limits

        from bench.numpy_mlp import Momentum, NumpyMLP

        self._limits = threadpool_limits(limits=cfg["threads"])
        self.net = NumpyMLP([p.copy() for p in params])
        self.opt = Momentum(cfg["lr"], cfg["momentum"])
        self.rng = np.random.default_rng(cfg["seed"])
        self.batch_size = cfg["batch_size"]

    def epoch(self, x, y):
        from bench.numpy_mlp import train_epoch
        return train_epoch(self.net, self.opt, x, y, self.batch_size, self.rng)

    def logits(self, x):
        return self.net.predict(x)

    def accuracy(self, x, y):
        return self.net.accuracy(x, y)


class TorchSystem:
    name = "torch"

    def __init__(self, cfg: dict, params: list[np.ndarray]):
        import torch

        torch.set_num_threads(cfg["threads"])
        self.torch = torch
        layers = []
        n_affine = len(params) // 2
        for i in range(n_affine):
            w, b = params[2 * i], params[2 * i + 1]
            linear = torch.nn.Linear(w.shape[0], w.shape[1])
            with torch.no_grad():
                linear.weight.copy_(torch.from_numpy(np.ascontiguousarray(w.T)))
                linear.bias.copy_(torch.from_numpy(b))
            layers.append(linear)
            if i < n_affine - 1:
                layers.append(torch.nn.ReLU())
        self.model = torch.nn.Sequential(*layers)
        self.loss_fn = torch.nn.CrossEntropyLoss()
        # PyTorch's momentum (v <- m v + g; p <- p - lr v) equals the classical form at a fixed lr.
        self.opt = torch.optim.SGD(self.model.parameters(), lr=cfg["lr"],
                                   momentum=cfg["momentum"])
        self.rng = np.random.default_rng(cfg["seed"])
        self.batch_size = cfg["batch_size"]

    def epoch(self, x, y):
        torch = self.torch
        order = self.rng.permutation(len(x))
        xs, ys = torch.from_numpy(x[order]), torch.from_numpy(y[order])
        total, batches = 0.0, 0
        for start in range(0, len(x), self.batch_size):
            xb, yb = xs[start:start + self.batch_size], ys[start:start + self.batch_size]
            self.opt.zero_grad(set_to_none=True)
            loss = self.loss_fn(self.model(xb), yb)
            loss.backward()
            self.opt.step()
            total += loss.item()
            batches += 1
        return total / batches

    def logits(self, x):
        with self.torch.inference_mode():
            return self.model(self.torch.from_numpy(x)).numpy()

    def accuracy(self, x, y):
        return float(np.mean(self.logits(x).argmax(axis=1) == y))


class JaxSystem:
    """`jax.jit` of the whole step (value_and_grad of relu-MLP softmax cross-entropy, classical
    momentum update), batches gathered in NumPy as for the others."""

    name = "jax"

    def __init__(self, cfg: dict, params: list[np.ndarray]):
        import jax
        import jax.numpy as jnp

        lr, mu = cfg["lr"], cfg["momentum"]
        n_affine = len(params) // 2

        def forward(p, x):
            h = x
            for i in range(n_affine):
                h = h @ p[2 * i] + p[2 * i + 1]
                if i < n_affine - 1:
                    h = jax.nn.relu(h)
            return h

        def loss(p, x, y):
            logp = jax.nn.log_softmax(forward(p, x))
            return -jnp.mean(jnp.take_along_axis(logp, y[:, None], axis=1))

        @jax.jit
        def step(p, v, x, y):
            value, grads = jax.value_and_grad(loss)(p, x, y)
            v = [mu * vi - lr * gi for vi, gi in zip(v, grads)]
            return [pi + vi for pi, vi in zip(p, v)], v, value

        self.jax, self.step, self.forward = jax, step, jax.jit(forward)
        self.params = [jnp.asarray(p) for p in params]
        self.velocity = [jnp.zeros_like(p) for p in self.params]
        self.rng = np.random.default_rng(cfg["seed"])
        self.batch_size = cfg["batch_size"]

    def epoch(self, x, y):
        order = self.rng.permutation(len(x))
        losses = []
        for start in range(0, len(x), self.batch_size):
            idx = order[start:start + self.batch_size]
            self.params, self.velocity, value = self.step(self.params, self.velocity, x[idx],
                                                          y[idx])
            losses.append(value)
        self.jax.block_until_ready(self.params)
        return float(np.mean([float(v) for v in losses]))

    def logits(self, x):
        return np.asarray(self.forward(self.params, x))

    def accuracy(self, x, y):
        return float(np.mean(self.logits(x).argmax(axis=1) == y))


class SklearnSystem:
    name = "sklearn"

    def __init__(self, cfg: dict, params: list[np.ndarray]):
        from sklearn.neural_network import MLPClassifier
        from threadpoolctl import threadpool_limits

        self._limits = threadpool_limits(limits=cfg["threads"])
        initial = [p.copy() for p in params]

        class HeStartMLP(MLPClassifier):
            """MLPClassifier starting from the given weights instead of its Glorot draw."""

            def _init_coef(self, fan_in, fan_out, dtype):
                w, b = initial.pop(0), initial.pop(0)
                if w.shape != (fan_in, fan_out):
                    raise ValueError(f"initial weight {w.shape} != {(fan_in, fan_out)}")
                return w.astype(dtype), b.astype(dtype)

        sizes = [p.shape[1] for p in params[0::2]]
        self.clf = HeStartMLP(hidden_layer_sizes=tuple(sizes[:-1]), activation="relu",
                              solver="sgd", alpha=0.0, batch_size=cfg["batch_size"],
                              learning_rate="constant", learning_rate_init=cfg["lr"],
                              momentum=cfg["momentum"], nesterovs_momentum=False, shuffle=True,
                              random_state=cfg["seed"], max_iter=1)
        self.classes = np.arange(sizes[-1])

    def epoch(self, x, y):
        self.clf.partial_fit(x, y, classes=self.classes)
        return float(self.clf.loss_)

    def logits(self, x):
        return self.clf.predict_proba(x)

    def accuracy(self, x, y):
        return float(np.mean(self.clf.predict(x) == y))


class _EpochStepper:
    """model.fit(x, y, epochs=many) in a daemon thread that waits after every epoch.

    next_epoch() lets one epoch run and returns (seconds, loss), timed from on_epoch_begin to
    on_epoch_end (the shuffle included); between epochs the model is idle, so the coordinator can
    measure accuracy or run the other systems. The thread ends with the worker process."""

    MAX_EPOCHS = 10_000

    def __init__(self, model, x, y, opt, cfg):
        import queue
        import threading

        from pynn.callbacks import Callback

        self._go = threading.Semaphore(0)
        self._done: queue.Queue = queue.Queue()
        stepper = self

        class Pause(Callback):
            def on_epoch_begin(self, epoch):
                stepper._go.acquire()
                stepper._t0 = time.perf_counter()

            def on_epoch_end(self, epoch, logs=None):
                stepper._done.put((time.perf_counter() - stepper._t0, float(logs["loss"])))

        def train():
            try:
                model.fit(x, y, loss="cross_entropy", optimizer=opt, epochs=self.MAX_EPOCHS,
                          batch_size=cfg["batch_size"], shuffle=True, seed=cfg["seed"],
                          verbose=0, callbacks=[Pause()])
            except BaseException as exc:  # noqa: BLE001 -- handed to next_epoch()
                self._done.put(exc)

        self._thread = threading.Thread(target=train, daemon=True)
        self._thread.start()

    def next_epoch(self) -> tuple[float, float]:
        self._go.release()
        answer = self._done.get()
        if isinstance(answer, BaseException):
            raise answer
        return answer


class PynnSystem:
    name = "pynn"

    def __init__(self, cfg: dict, params: list[np.ndarray]):
        import pynn

        missing = [n for n in ("Sequential", "Dense", "SGD") if not hasattr(pynn, n)]
        if missing:
            raise NotImplementedError(f"pynn has no {', '.join(missing)} yet (issue 4)")
        pynn.set_num_threads(cfg["threads"])
        n_affine = len(params) // 2
        layers = []
        for i in range(n_affine):
            w = params[2 * i]
            act = "relu" if i < n_affine - 1 else "identity"
            layers.append(pynn.Dense(w.shape[0], w.shape[1], activation=act))
        self.model = pynn.Sequential(layers, seed=cfg["seed"], dtype="float32")
        self.model.set_weights(params)
        self.opt = pynn.SGD(lr=cfg["lr"], momentum=cfg["momentum"])
        self.cfg = cfg
        self.epochs_done = 0
        self._stepper = None
        self.last_epoch_s = None

    def epoch(self, x, y):
        """One epoch of a single long model.fit(...) call, as users train: fit's once-per-call
        work (checking X for NaN/inf, converting targets) is not an epoch's cost, so fit runs
        in a thread and pauses between epochs (see _EpochStepper) instead of being called once
        per epoch."""
        if self._stepper is None:
            self._stepper = _EpochStepper(self.model, x, y, self.opt, self.cfg)
        seconds, loss = self._stepper.next_epoch()
        self.epochs_done += 1
        self.last_epoch_s = seconds
        return loss

    def logits(self, x):
        return self.model(x)

    def accuracy(self, x, y):
        return float(np.mean(self.model.predict(x) == y))


class OnnxruntimeSystem:
    """Inference only: pynn's model with these weights exported by `pynn.to_onnx` (the logits)
    and run by onnxruntime's CPU provider, `threads` intra-op threads, one inter-op thread."""

    name = "onnxruntime"

    def __init__(self, cfg: dict, params: list[np.ndarray]):
        import onnxruntime

        import pynn

        model = PynnSystem(cfg, params).model
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = cfg["threads"]
        options.inter_op_num_threads = 1
        options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
        self.session = onnxruntime.InferenceSession(
            pynn.to_onnx(model).SerializeToString(), options, providers=["CPUExecutionProvider"])

    def epoch(self, x, y):
        raise NotImplementedError("onnxruntime runs inference only here")

    def logits(self, x):
        return self.session.run(["logits"], {"X": x})[0]

    def accuracy(self, x, y):
        return float(np.mean(self.logits(x).argmax(axis=1) == y))


SYSTEM_CLASSES = {"pynn": PynnSystem, "numpy": NumpySystem, "torch": TorchSystem,
                  "jax": JaxSystem, "sklearn": SklearnSystem, "onnxruntime": OnnxruntimeSystem}


def unavailable_reason(system: str) -> str | None:
    """Why `system` cannot run here (None when it can), without importing heavy modules twice."""
    import importlib.util

    needs = {"torch": ["torch"], "sklearn": ["sklearn"], "numpy": ["threadpoolctl"],
             "onnxruntime": ["onnxruntime", "onnx"], "jax": ["jax"]}.get(system, [])
    for module in needs:
        if importlib.util.find_spec(module) is None:
            hint = {"torch": "pip install torch==2.13.0",
                    "sklearn": "pip install scikit-learn",
                    "threadpoolctl": "pip install threadpoolctl",
                    "onnxruntime": "pip install onnxruntime",
                    "onnx": "pip install onnx",
                    "jax": "pip install jax"}[module]
            return f"{module} is not installed ({hint})"
    return None


def start_workers(systems: list[str], threads: int, cfg: dict, out: dict,
                  log) -> tuple[dict, dict]:
    """A set-up worker per system that can run here: ({system: Worker}, {system: setup answer}).

    A system that cannot run gets {"error": why} in out["systems"] and is logged; missing data
    (which every system needs) raises DataMissing. The caller closes the workers."""
    workers: dict[str, Worker] = {}
    answers: dict[str, dict] = {}
    for system in systems:
        reason = unavailable_reason(system)
        if reason:
            out["systems"][system] = {"error": reason}
            continue
        worker = Worker(threads)
        try:
            answers[system] = worker.call("setup", system=system, **cfg)
        except WorkerError as exc:
            worker.close()
            if "DataMissing" in str(exc):
                for other in workers.values():
                    other.close()
                raise DataMissing(str(exc)) from None
            out["systems"][system] = {"error": str(exc)}
            log(f"  {system:8s} unavailable: {exc}")
            continue
        workers[system] = worker
    return workers, answers


# ---- scikit-learn-style estimators (bench_sklearn) -----------------------------------------------

def estimator_fit(impl: str, params: dict, state: dict) -> dict:
    """Fit a fresh classifier on the loaded data, timed; then its test accuracy.

    impl "sklearn": sklearn.neural_network.MLPClassifier(**params). impl "pynn":
    pynn.sklearn.MLPClassifier(**params, dtype="float32", n_threads=threads) once pynn has it;
    until then the same recipe through pynn.Sequential.fit (recorded in the answer's "impl").
    """
    import warnings

    from threadpoolctl import threadpool_limits

    x, y, threads = state["xtr"], state["ytr"], state["threads"]
    limits = threadpool_limits(limits=threads)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ConvergenceWarning: max_iter is the point here
        if impl == "sklearn":
            from sklearn.neural_network import MLPClassifier
            clf, used = MLPClassifier(**params), "sklearn.neural_network.MLPClassifier"
        else:
            import pynn
            try:
                from pynn.sklearn import MLPClassifier as PynnMLP
            except ImportError:
                PynnMLP = None
            if PynnMLP is not None:
                clf = PynnMLP(**params, dtype="float32", n_threads=threads)
                used = "pynn.sklearn.MLPClassifier"
            else:
                clf = _SequentialAsClassifier(params, threads)
                used = ("pynn.Sequential.fit, same recipe (pynn.sklearn.MLPClassifier not "
                        "available yet)")
            pynn.set_num_threads(threads)
        t0 = time.perf_counter()
        clf.fit(x, y)
        seconds = time.perf_counter() - t0
        accuracy = float(np.mean(clf.predict(state["xte"]) == state["yte"]))
    limits.restore_original_limits()
    return {"seconds": seconds, "test_accuracy": accuracy, "impl": used,
            "epochs": int(getattr(clf, "n_iter_", params["max_iter"]))}


class _SequentialAsClassifier:
    """The estimator recipe on pynn.Sequential: sklearn's L2 term alpha*W/batch per step becomes
    SGD weight decay alpha/batch_size (equal for full batches)."""

    def __init__(self, params: dict, threads: int):
        import pynn

        if not all(hasattr(pynn, n) for n in ("Sequential", "Dense", "SGD")):
            raise NotImplementedError("pynn has neither pynn.sklearn.MLPClassifier nor "
                                      "Sequential/Dense/SGD yet (issues 4 and 5)")
        self.params, self.pynn = params, pynn

    def fit(self, x, y):
        pynn, p = self.pynn, self.params
        sizes = [x.shape[1], *p["hidden_layer_sizes"], int(y.max()) + 1]
        layers = [pynn.Dense(i, o, activation="relu" if k < len(sizes) - 2 else "identity")
                  for k, (i, o) in enumerate(zip(sizes[:-1], sizes[1:]))]
        self.model = pynn.Sequential(layers, seed=p["random_state"], dtype="float32")
        opt = pynn.SGD(lr=p["learning_rate_init"], momentum=p["momentum"],
                       nesterov=p["nesterovs_momentum"],
                       weight_decay=p["alpha"] / p["batch_size"])
        self.model.fit(x, y, loss="cross_entropy", optimizer=opt, epochs=p["max_iter"],
                       batch_size=p["batch_size"], shuffle=p["shuffle"], seed=p["random_state"],
                       verbose=0)
        self.n_iter_ = p["max_iter"]
        return self

    def predict(self, x):
        return self.model.predict(x)


# ---- the worker process ------------------------------------------------------------------------

def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def _serve(reply) -> None:
    """Answer commands from stdin, one JSON object per line, until 'exit'."""
    state: dict = {}
    for line in sys.stdin:
        cmd = json.loads(line)
        op = cmd.pop("op")
        try:
            if op == "setup":
                t0 = time.perf_counter()
                cfg = cmd
                (xtr, ytr), (xte, yte) = load_dataset(cfg["dataset"], cfg.get("n_train"),
                                                      cfg.get("n_test"))
                state.update(xtr=xtr, ytr=ytr, xte=xte, yte=yte, threads=cfg["threads"])
                if cfg.get("system"):
                    from bench.numpy_mlp import he_normal
                    params = he_normal([xtr.shape[1], *cfg["hidden"], 10], seed=cfg["seed"])
                    state["system"] = SYSTEM_CLASSES[cfg["system"]](cfg, params)
                out = {"seconds": time.perf_counter() - t0, "n_train": len(xtr),
                       "n_test": len(xte)}
            elif op == "epoch":
                t0 = time.perf_counter()
                loss = state["system"].epoch(state["xtr"], state["ytr"])
                seconds = time.perf_counter() - t0
                # a system that times its own epochs (pynn: inside one fit call) says so
                own = getattr(state["system"], "last_epoch_s", None)
                out = {"seconds": own if own is not None else seconds, "loss": loss}
            elif op == "accuracy":
                out = {"test_accuracy": state["system"].accuracy(state["xte"], state["yte"])}
            elif op == "infer":
                # Best-of and median per-call seconds of logits() on the first `batch` test rows.
                x = np.ascontiguousarray(state["xte"][:cmd["batch"]])
                system = state["system"]
                for _ in range(cmd.get("warmup", 3)):
                    system.logits(x)
                times = []
                deadline = time.perf_counter() + cmd.get("seconds", 1.0)
                while len(times) < cmd.get("min_calls", 5) or time.perf_counter() < deadline:
                    t0 = time.perf_counter()
                    system.logits(x)
                    times.append(time.perf_counter() - t0)
                    if len(times) >= cmd.get("max_calls", 1_000_000):
                        break
                out = {"median_s": float(np.median(times)), "best_s": float(min(times)),
                       "calls": len(times)}
            elif op == "estimator_fit":
                out = estimator_fit(cmd["impl"], cmd["params"], state)
            elif op == "rss":
                out = {"peak_rss_mib": _peak_rss_mib()}
            elif op == "exit":
                reply({"ok": True})
                return
            else:
                raise ValueError(f"unknown op {op!r}")
            out["ok"] = True
        except Exception as exc:  # noqa: BLE001 -- reported to the coordinator, which decides
            out = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
        reply(out)


def worker_main() -> None:
    # Libraries print to stdout now and then; the protocol gets its own copy of the original
    # stdout and everything else goes to stderr.
    protocol = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr

    def reply(obj: dict) -> None:
        protocol.write(json.dumps(obj) + "\n")
        protocol.flush()

    _serve(reply)


class WorkerError(RuntimeError):
    pass


class Worker:
    """A system in its own process, with `threads` threads set through the environment and the
    library's own call. Use as a context manager; `call(op, **args)` returns the answer dict."""

    def __init__(self, threads: int):
        from bench.machine import clean_env

        env = clean_env()
        for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
            env[name] = str(threads)
        if threads == 1:
            env["XLA_FLAGS"] = JAX_ONE_THREAD
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_DIR),
                                                          env.get("PYTHONPATH")]))
        self.threads = threads
        # one thread: pinned to one core, every system alike (a thread that migrates between
        # cores, or shares one with another process's, measures the scheduler)
        pin = ["taskset", "-c", "0"] if threads == 1 and shutil.which("taskset") else []
        self.proc = subprocess.Popen(pin + [sys.executable, "-m", "bench.systems"],
                                     cwd=str(REPO_DIR),
                                     env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     text=True, bufsize=1)

    def call(self, op: str, **args) -> dict:
        self.proc.stdin.write(json.dumps({"op": op, **args}) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise WorkerError(f"worker exited (code {self.proc.wait()}) during {op!r}")
        answer = json.loads(line)
        if not answer.pop("ok"):
            raise WorkerError(answer["error"])
        return answer

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self.call("exit")
            except (WorkerError, BrokenPipeError, OSError):
                pass
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


if __name__ == "__main__":
    worker_main()
