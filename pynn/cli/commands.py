"""What `pynn info | train | evaluate | predict` do, once their options are parsed.

Each command returns an exit status. Problems with the user's data raise `DataError` and
problems with an option raise `UsageError`; `main` turns both into one line and status 2.
"""
from __future__ import annotations

import argparse
import csv
import io
import json
import math
import os
import sys
import time

import numpy as np

from .._atomic import write_atomically
from .sources import Prepared, is_data_set, load_data_set, prepare_training
from .tabular import DataError, Preprocessing, read_table

__all__ = ["RECIPES", "UsageError", "evaluate", "info", "plural", "predict", "train"]

# Per-data-set defaults, chosen by measurement (README "Command line"; seeds 0-2).
# fashion-mnist: 0.9005-0.9015 test accuracy (bar 0.89), about 25 s of training on 2 cores.
# digits: 0.967-0.975 over seeds 0-4 (bar 0.96; one test image is 0.0028), about 2 s.
# tabular (the user's CSV/npz/npy): scikit-learn's MLP defaults (100 relu units, Adam 1e-3,
# L2 1e-4, batches of min(200, n), 200 epochs), fewer epochs for big files (None: "auto").
RECIPES: dict[str, dict] = {
    "digits": {"hidden": [512], "activation": "relu", "optimizer": "sgd", "lr": 0.1,
               "momentum": 0.9, "weight_decay": 5e-4, "schedule": "cosine", "epochs": 40,
               "batch_size": 32, "init": None, "dropout": 0.0, "batchnorm": False},
    "fashion-mnist": {"hidden": [256, 128], "activation": "relu", "optimizer": "adam",
                      "lr": 1e-3, "momentum": 0.9, "weight_decay": 0.0, "schedule": "cosine",
                      "epochs": 20, "batch_size": 128, "init": None, "dropout": 0.0,
                      "batchnorm": False},
    "tabular": {"hidden": [100], "activation": "relu", "optimizer": "adam", "lr": 1e-3,
                "momentum": 0.9, "weight_decay": 1e-4, "schedule": "constant", "epochs": None,
                "batch_size": None, "init": "glorot_uniform", "dropout": 0.0,
                "batchnorm": False},
}
RECIPES["mnist"] = RECIPES["fashion-mnist"]
RECIPES["idx"] = RECIPES["fashion-mnist"]

METADATA_KEY = "pynn.cli"  # where a model file keeps the command line's preprocessing
ESTIMATE_AFTER_S = 1.0     # time the first batches this long before estimating the run
LONG_RUN_S = 10.0          # runs expected to take longer are announced with an estimate


class UsageError(Exception):
    """An option value that cannot be used (the message names the option)."""


def plural(count: int, word: str) -> str:
    return f"{count} {word}" + ("" if count == 1 else "s")


def _resolve_auto(recipe: dict, n_train: int) -> None:
    """Fill the tabular recipe's "auto" batch size and epochs for `n_train` rows: batches of
    min(200, n) as scikit-learn, 200 epochs, or fewer (at least 10) past 20000 steps."""
    if recipe["batch_size"] is None:
        recipe["batch_size"] = min(200, n_train)
    if recipe["epochs"] is None:
        steps_per_epoch = math.ceil(n_train / recipe["batch_size"])
        recipe["epochs"] = min(200, max(10, 20000 // steps_per_epoch))


def _check_output_path(option: str, path: str | None) -> None:
    """Fail before training, not after it, on a path the result could not be written to."""
    if path is None:
        return
    parent = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(parent):
        raise UsageError(f"{option} {path}: directory {parent} does not exist")
    if not os.access(parent, os.W_OK):
        raise UsageError(f"{option} {path}: directory {parent} is not writable")
    if os.path.isdir(path):
        raise UsageError(f"{option} {path}: is a directory, expected a file name")
    name_max = os.pathconf(parent, "PC_NAME_MAX")
    if len(os.fsencode(os.path.basename(path))) > name_max:
        raise UsageError(f"{option}: the file name is {len(os.fsencode(os.path.basename(path)))} "
                         f"bytes long; this file system allows {name_max}")


# ---- the model ----------------------------------------------------------------------------------

def _build_model(args, recipe: dict, data: Prepared):
    import pynn

    sizes = [data.X_train.shape[1], *recipe["hidden"], data.n_outputs]
    act, init = recipe["activation"], recipe["init"] or pynn.init.default_for(
        recipe["activation"])
    try:
        layers = []
        for a, b in zip(sizes[:-2], sizes[1:-1]):  # Dense [BatchNorm, Activation] [Dropout]
            if recipe["batchnorm"]:
                layers += [pynn.Dense(a, b, init=init), pynn.BatchNorm(), pynn.Activation(act)]
            else:
                layers.append(pynn.Dense(a, b, activation=act, init=init))
            if recipe["dropout"]:
                layers.append(pynn.Dropout(recipe["dropout"]))
        layers.append(pynn.Dense(sizes[-2], sizes[-1], init=recipe["init"]))
        model = pynn.Sequential(layers, seed=args.seed, dtype=args.dtype)
    except (MemoryError, ValueError, OverflowError) as exc:
        detail = "not enough memory" if isinstance(exc, MemoryError) else str(exc)
        raise UsageError(f"--hidden {','.join(map(str, recipe['hidden']))}: cannot build a "
                         f"{'-'.join(map(str, sizes))} network ({detail})") from None
    model.metadata[METADATA_KEY] = data.prep.to_metadata()
    return model, sizes


def _optimizer(recipe: dict, epochs: int):
    import pynn

    if recipe["schedule"] == "cosine":
        lr = pynn.optim.Cosine(recipe["lr"], epochs)
    elif recipe["schedule"] == "step":
        lr = pynn.optim.StepDecay(recipe["lr"], step_size=max(1, epochs // 3), gamma=0.1)
    else:
        lr = recipe["lr"]
    name = recipe["optimizer"]
    if name in ("sgd", "rmsprop"):  # the two with momentum
        text = f"{name} lr {recipe['lr']:g} momentum {recipe['momentum']:g}"
        make = pynn.SGD if name == "sgd" else pynn.RMSprop
        optimizer = make(lr=lr, momentum=recipe["momentum"], weight_decay=recipe["weight_decay"])
    else:
        text = f"{name} lr {recipe['lr']:g}"
        make = pynn.Adam if name == "adam" else pynn.Adagrad
        optimizer = make(lr=lr, weight_decay=recipe["weight_decay"])
    if recipe["weight_decay"]:
        text += f" weight decay {recipe['weight_decay']:g}"
    return optimizer, text


class _Estimate:
    """Times the first batches of a run and, if the whole run looks long, says how long."""

    def __init__(self, total_batches: int, epochs: int, samples: int) -> None:
        self.total, self.epochs, self.samples = total_batches, epochs, samples
        self.start = None
        self.done = False

    def on_batch_end(self, batch: int, logs=None) -> None:
        if self.done:
            return
        now = time.perf_counter()
        if self.start is None:  # the first batch warms caches and threads: not counted
            self.start, self.first = now, batch
            return
        elapsed = now - self.start
        if elapsed < ESTIMATE_AFTER_S:
            return
        self.done = True
        timed = batch - self.first
        if timed <= 0:
            return
        seconds = elapsed / timed * self.total
        if seconds >= LONG_RUN_S:
            print(f"estimate  about {_duration(seconds)} for {plural(self.epochs, 'epoch')} of "
                  f"{self.samples} samples (from the first {timed} batches)", flush=True)


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


# ---- metrics ------------------------------------------------------------------------------------

#: Losses for numeric targets: the others are classification losses.
REGRESSION_LOSSES = ("mse", "mae", "huber", "poisson")


def _counts_unscaled(data) -> None:
    """Poisson predicts rates of counts: its targets stay in their own units (scaling would
    make them negative), and must be >= 0."""
    prep = data.prep
    parts = [("training", "y_train"), ("validation", "y_val"), ("test", "y_test")]
    for name, attr in parts:
        y = getattr(data, attr)
        if y is None:
            continue
        raw = y * prep.y_std + prep.y_mean
        if raw.min() < 0:
            raise UsageError(f"--loss poisson needs counts or rates >= 0; the "
                             f"{name} target {prep.target_name!r} has {raw.min():.6g}")
        setattr(data, attr, raw)
    prep.y_mean, prep.y_std = 0.0, 1.0


def _scores(model, prep: Preprocessing, X, y_encoded, y_raw) -> dict:
    """Loss plus accuracy (classes) or R^2 and RMSE in the target's own units (regression)."""
    target = y_encoded
    if prep.task == "classification" and model.loss.name != "cross_entropy":
        from ..data.datasets import one_hot  # the other classification losses take one-hot rows

        target = one_hot(y_encoded, model.out_features, dtype=str(model.dtype))
    scores = {"loss": model.evaluate(X, target)["loss"]}
    if prep.task == "classification":
        predicted = np.argmax(model(X), axis=1)
        scores["accuracy"] = float(np.mean(predicted == y_encoded))
    else:
        predicted = prep.decode(model.predict(X).reshape(len(X), -1))
        truth = np.asarray(y_raw, dtype=np.float64)
        residual = float(np.sum((truth - predicted) ** 2))
        spread = float(np.sum((truth - truth.mean()) ** 2))
        scores["r2"] = 1.0 - residual / spread if spread > 0 else float("nan")
        scores["rmse"] = math.sqrt(residual / len(truth))
    return scores


def _print_scores(name: str, scores: dict, loss_name: str = "") -> None:
    """`name` is "test", "training" or "" (a user's file, scored as a whole)."""
    prefix = f"{name} " if name else ""
    loss = scores["loss"]
    print(f"{prefix}loss " + (f"{loss:.4f}" if abs(loss) < 1e6 else f"{loss:.4g}")
          + (f" ({loss_name})" if loss_name else ""))
    if "accuracy" in scores:
        print(f"{prefix}accuracy {scores['accuracy']:.4f}")
    else:
        print(f"{prefix}R2 {scores['r2']:.4f}")
        print(f"{prefix}RMSE {scores['rmse']:.4g} (in the target's units)")


def _warn_if_not_learning(history, recipe: dict, chance_loss: float) -> None:
    losses = history.history.get("loss", [])
    if not losses:
        return
    last = losses[-1]
    if last > 10 * chance_loss or (len(losses) > 1 and last > 2 * losses[0]):
        print(f"warning: the final training loss {last:.4g} is far above a model that "
              f"guesses ({chance_loss:.3g}): the learning rate {recipe['lr']:g} is probably too "
              f"high; try --lr {recipe['lr'] / 10:g}", file=sys.stderr)


# ---- commands -----------------------------------------------------------------------------------

def info(args: argparse.Namespace) -> int:
    import pynn

    build = pynn.build_info()
    if args.json:
        print(json.dumps(build, indent=2))
    else:
        width = max(len(k) for k in build)
        for key, value in build.items():
            if isinstance(value, list):
                value = ", ".join(value)
            print(f"{key:<{width}}  {value}")
    return 0


def train(args: argparse.Namespace) -> int:
    import pynn

    _check_output_path("--save", args.save)
    _check_output_path("--plot", args.plot)
    if args.plot is not None:
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            raise UsageError("--plot needs matplotlib: pip install matplotlib") from None
    if args.threads is not None:
        pynn.set_num_threads(args.threads)
    comm = _world() if args.distributed else None
    if comm is not None and comm.rank != 0:  # one report, from rank 0; every rank trains
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 -- lives as long as the process

    data = prepare_training(args.data, target=args.target, target_file=args.target_file,
                            task=args.task, val_split=args.val_split,
                            test_split=args.test_split, seed=args.seed, dtype=args.dtype)
    recipe = dict(RECIPES[data.recipe])
    for name in recipe:
        if getattr(args, name, None) is not None:
            recipe[name] = getattr(args, name)
    _resolve_auto(recipe, len(data.X_train))
    rows, batch = len(data.X_train), recipe["batch_size"]
    if recipe["batchnorm"] and (batch == 1 or rows % batch == 1):
        raise UsageError(f"--batchnorm needs training batches of 2 rows or more, but "
                         f"--batch-size {batch} over {rows} training rows leaves a batch of 1 "
                         f"row: choose another --batch-size")
    if recipe["optimizer"] == "rmsprop" and args.momentum is None:
        recipe["momentum"] = 0.0  # the recipes' momentum is SGD's; RMSprop's default is none
    epochs = recipe["epochs"]
    regression = data.prep.task == "regression"
    loss = args.loss or ("mse" if regression else "cross_entropy")
    if regression and loss not in REGRESSION_LOSSES:
        raise UsageError(f"--loss {loss}: the target {data.prep.target_name!r} is a regression "
                         f"target; use one of {', '.join(REGRESSION_LOSSES)} (or --task "
                         f"classification)")
    if loss == "poisson":
        _counts_unscaled(data)
    y_fit, validation = data.y_train, None if data.X_val is None else (data.X_val, data.y_val)
    if loss != "cross_entropy" and not regression:  # the other losses take one-hot rows
        from ..data.datasets import one_hot

        y_fit = one_hot(data.y_train, data.n_outputs, dtype=args.dtype)
        if validation is not None:
            validation = (data.X_val, one_hot(data.y_val, data.n_outputs, dtype=args.dtype))
    model, sizes = _build_model(args, recipe, data)
    optimizer, opt_text = _optimizer(recipe, epochs)

    held = [f"{len(data.X_test)} {data.test_name}"] if data.test_name == "test" else []
    if data.X_val is not None:
        held.insert(0, f"{len(data.X_val)} validation")
    what = (f"target {data.prep.target_name!r}, regression" if regression
            else f"{len(data.prep.classes)} classes")
    print(f"data      {args.data}: {len(data.X_train)} training"
          + "".join(f", {h}" for h in held)
          + f" samples, {data.X_train.shape[1]} features, {what}")
    extras = ("batchnorm, " if recipe["batchnorm"] else "") + (
        f"dropout {recipe['dropout']:g}, " if recipe["dropout"] else "")
    print(f"model     {'-'.join(map(str, sizes))} {recipe['activation']}, {extras}{loss}, "
          f"{args.dtype}, "
          f"seed {args.seed}")
    batch = f"batch {recipe['batch_size']}"
    if comm is not None:
        batch += f" per rank x {plural(comm.size, 'rank')}"
    print(f"training  {opt_text}, {recipe['schedule']} schedule, {plural(epochs, 'epoch')}, "
          f"{batch}, "
          f"{plural(pynn.get_num_threads(), 'thread')} ({pynn.get_isa()})", flush=True)

    batches_per_epoch = math.ceil(len(data.X_train) / recipe["batch_size"])
    estimate = _Estimate(batches_per_epoch * epochs, epochs, len(data.X_train))
    start = time.perf_counter()
    try:
        history = model.fit(data.X_train, y_fit, loss=loss, optimizer=optimizer,
                            epochs=epochs, batch_size=recipe["batch_size"],
                            validation_data=validation, shuffle=True, seed=args.seed,
                            verbose=0 if args.quiet else 1, comm=comm,
                            callbacks=[pynn.LambdaCallback(on_batch_end=estimate.on_batch_end)])
    except pynn.TrainingDivergedError as exc:
        print(f"{args.prog} train: error: training diverged in epoch {exc.epoch}, batch {exc.batch} "
              f"(the loss or the weights became infinite or NaN) at learning rate "
              f"{recipe['lr']:g}; try a smaller --lr, e.g. {recipe['lr'] / 10:g}",
              file=sys.stderr)
        return 1
    seconds = time.perf_counter() - start
    epochs_run = len(history.epoch)
    note = " (interrupted)" if history.interrupted else ""
    rate = f" ({seconds / epochs_run:.2f} s/epoch)" if epochs_run else ""
    print(f"trained   {plural(epochs_run, 'epoch')} in {seconds:.1f} s{rate}{note}")

    chance = 1.0 if regression else math.log(len(data.prep.classes))
    if epochs_run:
        _warn_if_not_learning(history, recipe, chance)
    if args.save is not None:
        pynn.save(model, args.save, comm=comm)
        print(f"saved     {args.save}")
    if args.plot is not None and epochs_run and (comm is None or comm.rank == 0):
        history.plot(args.plot)
        print(f"plotted   {args.plot}")
    if validation is not None and history.history.get("val_loss"):
        line = f"val loss  {history.history['val_loss'][-1]:.4f}"
        if history.history.get("val_accuracy"):
            line += f", val accuracy {history.history['val_accuracy'][-1]:.4f}"
        print(line + f" ({len(data.X_val)} held-out training samples)")
    _print_scores(data.test_name,
                  _scores(model, data.prep, data.X_test, data.y_test, data.y_test_raw))
    return 130 if history.interrupted else 0


def _world():
    """MPI's world communicator for --distributed (mpi4py is imported only when asked)."""
    try:
        from mpi4py import MPI
    except ImportError:
        raise UsageError("--distributed needs mpi4py and an MPI library: pip install mpi4py "
                         "mpich, then run: mpiexec -n 2 pynn train --distributed ...") from None
    return MPI.COMM_WORLD


def _load_model(path: str):
    import pynn

    if not os.path.isfile(path):
        raise UsageError(f"--model {path}: no such file")
    try:
        return pynn.load(path)
    except (OSError, ValueError) as exc:
        raise UsageError(f"--model {path}: {exc}") from None


def _preprocessing_of(model, path: str) -> Preprocessing:
    """The model's own preprocessing (saved by `pynn train`), or none for a model saved from
    Python: features as they are, classes 0..k-1 for classification losses."""
    meta = model.metadata.get(METADATA_KEY)
    if meta is not None:
        try:
            return Preprocessing.from_metadata(meta)
        except (KeyError, TypeError, ValueError):
            raise UsageError(f"--model {path}: its '{METADATA_KEY}' metadata is damaged") \
                from None
    n = model.in_features
    if model.loss is not None and model.loss.name in REGRESSION_LOSSES:
        return Preprocessing("regression", np.zeros(n), np.ones(n),
                             [f"x{j}" for j in range(n)], None)
    return Preprocessing("classification", np.zeros(n), np.ones(n),
                         [f"x{j}" for j in range(n)], None, list(range(model.out_features)))


def _user_data(args, model, prep: Preprocessing, need_target: bool):
    """(features in the model's dtype, raw targets or None) from --data, checked against the
    model."""
    if is_data_set(args.data):
        _, _, table = load_data_set(args.data)
    else:
        table = read_table(args.data, target=getattr(args, "target", None) or prep.target_name,
                           target_file=getattr(args, "target_file", None),
                           need_target=need_target, known_features=prep.feature_names)
    if table.X.shape[1] != model.in_features:
        raise DataError(f"--model {args.model} maps {model.in_features} features to "
                        f"{model.out_features} outputs, but --data {args.data} has "
                        f"{table.X.shape[1]} features")
    return prep.features(table.X, model.dtype), table.y


def evaluate(args: argparse.Namespace) -> int:
    import pynn

    model = _load_model(args.model)
    if args.threads is not None:
        pynn.set_num_threads(args.threads)
    if model.loss is None:
        raise UsageError(f"--model {args.model}: the model has no loss to evaluate (save it "
                         f"after fit or compile)")
    prep = _preprocessing_of(model, args.model)
    X, y = _user_data(args, model, prep, need_target=True)
    y_encoded = prep.encode(y, args.data)
    if prep.task == "classification" and model.out_features != len(prep.classes):
        raise DataError(f"--model {args.model} has {model.out_features} outputs for "
                        f"{len(prep.classes)} classes")
    print(f"model     {args.model}: {model.in_features}-"
          + "-".join(str(layer.W.shape[1]) for layer in model.layers) + f", {model.dtype}")
    name = "test" if is_data_set(args.data) else ""
    print(f"data      {args.data}: {len(X)} {name or 'labelled'} samples")
    _print_scores(name, _scores(model, prep, X, y_encoded, y), model.loss.name)
    return 0


def predict(args: argparse.Namespace) -> int:
    import pynn

    model = _load_model(args.model)
    if args.threads is not None:
        pynn.set_num_threads(args.threads)
    prep = _preprocessing_of(model, args.model)
    if args.proba and prep.task != "classification":
        raise UsageError(f"--proba: the model {args.model} is a regression model")
    if args.out is not None:
        _check_output_path("--out", args.out)
    X, _ = _user_data(args, model, prep, need_target=False)
    if args.proba:
        if model.loss is None or not model.loss.has_proba:
            raise UsageError(f"--proba: the model {args.model} has no probability output")
        table = model.predict_proba(X)
        header = [str(c) for c in prep.classes]
        rows = ([f"{p:.6g}" for p in row] for row in table)
    else:
        outputs = np.asarray(model(X))
        if prep.task == "regression" and model.loss is not None:
            outputs = model.loss.output_values(outputs)  # poisson: the rate exp(output)
        predictions = prep.decode(outputs.reshape(len(X), -1))
        header = ["prediction"]
        rows = ([_cell(p)] for p in predictions)
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    if args.out is None:
        sys.stdout.write(text.getvalue())
    else:
        write_atomically(args.out, lambda f: f.write(text.getvalue().encode()))
        print(f"wrote     {len(X)} predictions to {args.out}", file=sys.stderr)
    return 0


def _cell(value) -> str:
    if isinstance(value, (float, np.floating)):
        return f"{float(value):.8g}"
    return str(value)
