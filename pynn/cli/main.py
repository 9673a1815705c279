"""Command line: `pynn info | train | evaluate | predict` (also `python -m pynn ...`).

`pynn train` trains an MLP on the bundled digits with a tuned recipe and ends with the test
accuracy; `--data fashion-mnist` (or `mnist`, or a directory of IDX files) switches data set
and recipe, and `--data FILE` trains on your own CSV, .npz or .npy file (classification or
regression, from the target column). `pynn predict` and `pynn evaluate` apply a saved model to
a file. Every option left out comes from the data's recipe.
"""
from __future__ import annotations

import argparse
import math
import os
import sys

from .._version import __version__
from ..nn.layers import HIDDEN_ACTIVATIONS
from ..nn.losses import LOSSES as LOSS_TABLE
from . import commands
from .commands import RECIPES, UsageError
from .sources import DATA_NAMES
from .tabular import DataError

__all__ = ["RECIPES", "build_parser", "main"]

OPTIMIZERS = ("sgd", "adam", "rmsprop", "adagrad")
SCHEDULES = ("constant", "cosine", "step")
TASKS = ("classification", "regression")
LOSSES = tuple(LOSS_TABLE)
INITS = ("he_normal", "glorot_uniform")


# ---- argument types: each raises ArgumentTypeError, which argparse turns into a usage error ----

def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def _seed(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text!r}") from None
    if not 0 <= value < 2**63:
        raise argparse.ArgumentTypeError(f"expected an integer in [0, 2**63), got {value}")
    return value


def _float_in(low: float, high: float, *, low_open: bool, high_open: bool):
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        too_low = value <= low if low_open else value < low
        too_high = value >= high if high_open else value > high
        if not math.isfinite(value) or too_low or too_high:
            interval = (("(" if low_open else "[") + f"{low:g}, "
                        + ("inf" if math.isinf(high) else f"{high:g}")
                        + (")" if high_open else "]"))
            raise argparse.ArgumentTypeError(f"expected a number in {interval}, got {text}")
        return value
    return parse


def _hidden(text: str) -> list[int]:
    """'256,128' -> [256, 128]; '' or 'none' -> [] (a linear model)."""
    if text.strip().lower() in ("", "none"):
        return []
    sizes = []
    for part in text.split(","):
        try:
            size = int(part)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected comma-separated layer widths like 256,128, got {text!r}") from None
        if size < 1:
            raise argparse.ArgumentTypeError(f"layer widths must be >= 1, got {size}")
        sizes.append(size)
    return sizes


def _data(text: str) -> str:
    if text in DATA_NAMES or os.path.isdir(text) or os.path.isfile(text):
        return text
    raise argparse.ArgumentTypeError(
        f"expected {', '.join(DATA_NAMES)}, a CSV/.npz/.npy file or a directory of MNIST-style "
        f"IDX files, got {text!r} (no such file or directory)")


# ---- parser -------------------------------------------------------------------------------------

DATA_HELP = ("digits (bundled), fashion-mnist ($PYNN_DATA or /usr/share/datasets/fashion-mnist), "
             "mnist ($PYNN_MNIST), a directory of MNIST-style IDX files, or your own file: CSV "
             "with a header row (comma or semicolon), .npz with arrays X and y, or .npy "
             "features with --target-file")


def _default_threads() -> str:
    from .._platform import get_num_threads

    source = "OMP_NUM_THREADS" if os.environ.get("OMP_NUM_THREADS") else "the number of cores"
    return f"{get_num_threads()}, from {source}"


def _recipe_text(key: str) -> str:
    return f"{key}: " + ", ".join(f"{n}={'auto' if v is None else v}"
                                  for n, v in RECIPES[key].items())


def _add_common(command: argparse.ArgumentParser, *, data_default: str | None) -> None:
    if data_default is None:
        command.add_argument("--data", type=_data, required=True, help=DATA_HELP)
    else:
        command.add_argument("--data", type=_data, default=data_default,
                             help=DATA_HELP + f" (default {data_default})")
    command.add_argument("--threads", type=_positive_int,
                         help=f"threads to compute with (default {_default_threads()})")


def _add_target(command: argparse.ArgumentParser, default_text: str) -> None:
    command.add_argument("--target", metavar="NAME",
                         help=f"the CSV column to predict ({default_text})")
    command.add_argument("--target-file", metavar="FILE.npy",
                         help="the targets of a .npy --data file, one per row")


def build_parser(prog: str = "pynn") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"pynn {__version__}",
                        help="print the version and exit")
    sub = parser.add_subparsers(dest="command", required=True)

    info = sub.add_parser("info", help="print how pynn was built and what it runs on")
    info.add_argument("--json", action="store_true", help="print JSON")
    info.set_defaults(func=commands.info, parser=info)

    train = sub.add_parser(
        "train", help="train an MLP and print its held-out scores",
        description="Train an MLP and print its held-out scores. Options not given come from "
                    "the data's recipe: " + "; ".join(
                        _recipe_text(k) for k in ("digits", "fashion-mnist", "tabular"))
                    + " (tabular: your own file; batch_size=auto: min(200, rows); epochs=auto: "
                    "200, fewer for files over 20000 steps per 200 epochs).")
    _add_common(train, data_default="digits")
    _add_target(train, "default: the last column")
    train.add_argument("--task", choices=TASKS, help="default: classification for string, "
                       "boolean or integer targets, regression for fractional numbers")
    train.add_argument("--hidden", type=_hidden, help="hidden layer widths, e.g. 256,128")
    train.add_argument("--activation", choices=HIDDEN_ACTIVATIONS,
                       help="hidden-layer activation")
    train.add_argument("--dropout", type=_float_in(0, 1, low_open=False, high_open=True),
                       metavar="RATE", help="a Dropout layer of this rate after every hidden "
                       "layer (default 0: none)")
    train.add_argument("--batchnorm", action="store_const", const=True, default=None,
                       help="BatchNorm between every hidden layer's Dense and its activation")
    train.add_argument("--loss", choices=LOSSES, help="default: cross_entropy for "
                       "classification (binary_cross_entropy, hinge, kl_divergence train on "
                       "one-hot targets), mse for regression (or mae, huber with delta 1 in "
                       "standardised target units, poisson for counts >= 0)")
    train.add_argument("--init", choices=INITS, help="weight initialisation (default: "
                       "he_normal for relu-like activations, glorot_uniform otherwise)")
    train.add_argument("--optimizer", choices=OPTIMIZERS, help="sgd (with momentum), adam "
                       "(decoupled weight decay), rmsprop or adagrad (PyTorch's definitions)")
    train.add_argument("--lr", type=_float_in(0, math.inf, low_open=True, high_open=True),
                       help="(initial) learning rate")
    train.add_argument("--momentum", type=_float_in(0, 1, low_open=False, high_open=True),
                       help="momentum in [0, 1) of sgd (default from the recipe) or rmsprop "
                       "(default 0)")
    train.add_argument("--weight-decay", type=_float_in(0, math.inf, low_open=False,
                                                        high_open=True),
                       help="L2 penalty on the weights")
    train.add_argument("--schedule", choices=SCHEDULES,
                       help="learning-rate schedule over the epochs (step: /10 every third)")
    train.add_argument("--epochs", type=_positive_int, help="passes over the training data")
    train.add_argument("--batch-size", type=_positive_int, help="samples per step")
    train.add_argument("--val-split", type=_float_in(0, 1, low_open=False, high_open=True),
                       default=0.0, help="hold out this fraction of the training rows for "
                       "validation scores after each epoch (default 0: none)")
    train.add_argument("--test-split", type=_float_in(0, 1, low_open=False, high_open=True),
                       help="hold out this fraction of your file's rows (stratified by class) "
                       "for the final scores (default 0.2; the named data sets have their own "
                       "test split)")
    train.add_argument("--dtype", choices=("float32", "float64"), default="float32",
                       help="floating-point type of the model (default float32)")
    train.add_argument("--seed", type=_seed, default=0, help="seed of initialisation, splits "
                       "and shuffling (default 0)")
    train.add_argument("--save", metavar="PATH", help="save the trained model here (with its "
                       "feature scaling and class labels, for predict and evaluate)")
    train.add_argument("--plot", metavar="PATH", help="plot the learning curves here (png; "
                       "needs matplotlib)")
    train.add_argument("--quiet", "-q", action="store_true", help="no progress lines")
    train.add_argument("--distributed", action="store_true", help="data-parallel training on "
                       "every MPI rank (launch with mpiexec -n N; --batch-size is per rank; "
                       "needs mpi4py)")
    train.set_defaults(func=commands.train, parser=train)

    evaluate = sub.add_parser("evaluate", help="print a saved model's scores on data")
    evaluate.add_argument("--model", required=True, metavar="PATH",
                          help="a model saved by pynn.save or train --save")
    _add_common(evaluate, data_default="digits")
    _add_target(evaluate, "default: the one the model was trained on, else the last column")
    evaluate.set_defaults(func=commands.evaluate, parser=evaluate)

    predict = sub.add_parser("predict", help="write a saved model's predictions for a file")
    predict.add_argument("--model", required=True, metavar="PATH",
                         help="a model saved by pynn.save or train --save")
    _add_common(predict, data_default=None)
    _add_target(predict, "default: the one the model was trained on; the file may lack it")
    predict.add_argument("--out", metavar="PATH", help="write the predictions here as CSV "
                         "(default: standard output)")
    predict.add_argument("--proba", action="store_true", help="class probabilities, one column "
                         "per class named by its label, instead of labels")
    predict.set_defaults(func=commands.predict, parser=predict)
    return parser


def main(argv: list[str] | None = None) -> int:
    prog = "python -m pynn" if sys.argv[0].endswith("__main__.py") else "pynn"
    parser = build_parser(prog)
    args = parser.parse_args(argv)
    args.prog = prog
    command = f"{prog} {args.command}"
    try:
        return args.func(args)
    except UsageError as exc:  # an option's value: usage, then the reason, as argparse does
        args.parser.error(str(exc))
    except DataError as exc:
        print(f"{command}: error: {exc}", file=sys.stderr)
    except MemoryError:
        print(f"{command}: error: not enough memory (try a smaller --hidden or --batch-size, "
              f"or fewer rows)", file=sys.stderr)
    except KeyboardInterrupt:
        print(f"{command}: interrupted", file=sys.stderr)
        return 130
    return 2


if __name__ == "__main__":
    sys.exit(main())
