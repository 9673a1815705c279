"""Where the command line's data comes from: a bundled or MNIST-style data set (with its own
test split) or the user's file (CSV, .npz, .npy), cut into training, validation and test parts
and scaled the way the saved model will scale it again at predict time.

Every problem with the data is a `DataError` (one line: the file, the row or column, what was
expected); the command line prints it and exits with status 2.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from .tabular import DataError, Preprocessing, Table, read_table, split, task_of

__all__ = ["DATA_NAMES", "Prepared", "is_data_set", "load_data_set", "prepare_training"]

DATA_NAMES = ("digits", "fashion-mnist", "mnist")


def is_data_set(data: str) -> bool:
    """A named data set or a directory of IDX files (not a file of the user's)."""
    return data in DATA_NAMES or os.path.isdir(data)


@dataclass
class Prepared:
    """The parts a training run uses, targets encoded (class indices or scaled values)."""

    recipe: str            # key into the recipes: digits, fashion-mnist, mnist, idx, tabular
    prep: Preprocessing
    X_train: np.ndarray
    y_train: np.ndarray
    X_val: np.ndarray | None
    y_val: np.ndarray | None
    X_test: np.ndarray | None
    y_test: np.ndarray | None  # encoded
    y_test_raw: np.ndarray | None  # in the file's own units or labels
    test_name: str         # "test" or "training" (no held-out part)

    @property
    def n_outputs(self) -> int:
        return len(self.prep.classes) if self.prep.task == "classification" else 1


def load_data_set(data: str) -> tuple:
    """(recipe key, Table of the training split, Table of the test split) of a named data set or
    an IDX directory; images that cannot be trained on are a DataError."""
    from ..data import datasets

    try:
        if data == "digits":
            key, (train, test) = "digits", datasets.load_digits()
        elif data == "fashion-mnist":
            key, (train, test) = "fashion-mnist", datasets.load_fashion_mnist()
        elif data == "mnist":
            key, (train, test) = "mnist", datasets.load_mnist()
        else:
            key, (train, test) = "idx", datasets.load_mnist(data)
    except (OSError, ValueError) as exc:
        raise DataError(str(exc)) from None
    for part, (X, y) in (("training", train), ("test", test)):
        if len(X) == 0:
            raise DataError(f"{data}: the {part} split has no images")
        if X.shape[1] == 0:
            raise DataError(f"{data}: the {part} images have no pixels (shape {X.shape})")
    if train[0].shape[1] != test[0].shape[1]:
        raise DataError(f"{data}: training images have {train[0].shape[1]} pixels, test images "
                        f"{test[0].shape[1]}: both splits must have images of one size")
    names = [f"pixel{j}" for j in range(train[0].shape[1])]
    return key, Table(train[0], train[1], names, "label"), Table(test[0], test[1], names, "label")


def _held_out_rows(n: int, fraction: float, option: str, what: str) -> None:
    """A split must hold out at least one row and keep at least two."""
    if fraction and round(n * fraction) < 1:
        raise DataError(f"{option} {fraction:g} holds out less than one of the {n} {what} rows "
                        f"(use at least {1 / n:.2g}, or 0 for none)")
    if fraction and n - round(n * fraction) < 2:
        raise DataError(f"{option} {fraction:g} leaves {n - round(n * fraction)} of the {n} "
                        f"{what} rows to train on (use a smaller fraction)")


def _check_task(table: Table, task: str, where: str) -> None:
    if task == "regression" and table.y.dtype.kind not in "biuf":
        raise DataError(f"{where}: the target column {table.target_name!r} is not numeric "
                        f"(e.g. {table.y[0]!r}); regression needs numbers (or use --task "
                        f"classification)")


def prepare_training(data: str, *, target: str | None, target_file: str | None,
                     task: str | None, val_split: float, test_split: float | None,
                     seed: int, dtype: str) -> Prepared:
    """Read, split and scale the data for `pynn train` (see the module's docstring)."""
    if is_data_set(data):
        if test_split:
            raise DataError(f"--test-split: {data} comes with its own test split")
        if task == "regression":
            raise DataError(f"--task regression: {data} is a classification data set")
        key, train, test = load_data_set(data)
        task = "classification"
    else:
        key, train, test = "tabular", read_table(data, target=target, target_file=target_file), None
        task = task or task_of(train.y)
    _check_task(train, task, data)
    n = len(train.X)
    stratify = task == "classification"
    if test is None:
        test_split = 0.2 if test_split is None else test_split
        _held_out_rows(n, test_split, "--test-split", data)
        kept, held = split(train.y if stratify else n, test_split, seed, stratify)
        test = Table(train.X[held], train.y[held], train.feature_names, train.target_name)
        train = Table(train.X[kept], train.y[kept], train.feature_names, train.target_name)
    _held_out_rows(len(train.X), val_split, "--val-split", "training")
    kept, held = split(train.y if stratify else len(train.X), val_split, seed + 1, stratify)
    prep = Preprocessing.fit(train, task, kept, scale=key == "tabular", where=data)
    X_val = y_val = None
    if len(held):
        X_val = prep.features(train.X[held], dtype)
        y_val = prep.encode(train.y[held], f"{data} (validation rows)")
    X_train = prep.features(train.X[kept], dtype)
    y_train = prep.encode(train.y[kept], data)
    test_name = "test"
    if len(test.X) == 0:  # --test-split 0: report on the training rows
        test, test_name = Table(train.X[kept], train.y[kept]), "training"
    return Prepared(key, prep, X_train, y_train, X_val, y_val, prep.features(test.X, dtype),
                    prep.encode(test.y, f"{data} (test rows)"), test.y, test_name)
