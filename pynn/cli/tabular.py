"""The command line's own data: CSV, .npz and .npy files, their targets, splits and scaling.

Everything that can be wrong with a user's file is a `DataError` whose message names the file
and the row or column: the command line prints it as one line and exits with status 2.
"""
from __future__ import annotations

import csv
import math
import os
from dataclasses import dataclass, field

import numpy as np

__all__ = ["DataError", "Preprocessing", "Table", "read_table", "split", "task_of"]

MISSING = {"", "na", "nan", "n/a", "null", "none", "?"}


class DataError(ValueError):
    """A user's data file that cannot be used, with where and why."""


@dataclass
class Table:
    """Features (float64), the raw target column (or None) and the names."""

    X: np.ndarray
    y: np.ndarray | None
    feature_names: list = field(default_factory=list)
    target_name: str | None = None


def _sniff_delimiter(header: str) -> str:
    return ";" if header.count(";") > header.count(",") else ","


def _read_csv(path: str, target: str | None, need_target: bool,
              known_features: list | None) -> Table:
    with open(path, newline="", encoding="utf-8-sig") as f:
        text = f.read()
    lines = text.splitlines()
    if not text.strip():
        raise DataError(f"{path}: the file is empty (expected a header row, then data rows)")
    delimiter = _sniff_delimiter(lines[0])
    rows = list(csv.reader(lines, delimiter=delimiter))
    header = [name.strip() for name in rows[0]]
    body = [(i + 2, row) for i, row in enumerate(rows[1:]) if any(c.strip() for c in row)]
    if not body:
        raise DataError(f"{path}: the file has a header but no data rows")
    if len(set(header)) != len(header):
        raise DataError(f"{path}: the header names a column twice ({header})")
    for line, row in body:
        if len(row) != len(header):
            raise DataError(f"{path}: row {line} has {len(row)} fields, the header has "
                            f"{len(header)}")
    if target is not None and target not in header:
        if need_target or known_features is None:
            raise DataError(f"{path}: no column {target!r} (columns: {', '.join(header)})")
        target = None  # predicting: the file may come without the target column
    if known_features is not None and set(known_features) <= set(header):
        # a model's own columns, by name: their order, whatever else the file holds
        feature_idx = [header.index(name) for name in known_features]
        target_index = header.index(target) if target is not None else None
    else:
        if target is not None:
            target_index = header.index(target)
        elif known_features is not None and len(header) == len(known_features):
            target_index = None  # as many columns as the model has features: no target
        else:
            target_index = len(header) - 1
        feature_idx = [j for j in range(len(header)) if j != target_index]
    if need_target and target_index is None:
        raise DataError(f"{path}: no target column")
    if not feature_idx:
        raise DataError(f"{path}: only a target column, no feature columns")
    X = np.empty((len(body), len(feature_idx)))
    for col, j in enumerate(feature_idx):
        for r, (line, row) in enumerate(body):
            cell = row[j].strip()
            if cell.lower() in MISSING:
                raise DataError(f"{path}: row {line}, column {header[j]!r}: missing value "
                                f"(fill or drop it; pynn does not impute)")
            try:
                X[r, col] = float(cell)
            except ValueError:
                raise DataError(f"{path}: row {line}, column {header[j]!r}: {cell!r} is not a "
                                f"number (feature columns must be numeric; encode categories "
                                f"first)") from None
            if not math.isfinite(X[r, col]):
                raise DataError(f"{path}: row {line}, column {header[j]!r}: {cell!r} is not "
                                f"finite")
    y = None
    if target_index is not None:
        values = []
        for line, row in body:
            cell = row[target_index].strip()
            if cell.lower() in MISSING:
                raise DataError(f"{path}: row {line}, target column "
                                f"{header[target_index]!r}: missing value")
            values.append(cell)
        y = _typed(np.array(values, dtype=object))
    return Table(X, y, [header[j] for j in feature_idx],
                 header[target_index] if target_index is not None else None)


def _typed(cells: np.ndarray) -> np.ndarray:
    """Strings from a CSV as bools, ints, floats, or strings, whichever fits every cell."""
    lowered = {str(c).lower() for c in cells}
    if lowered <= {"true", "false"}:
        return np.array([str(c).lower() == "true" for c in cells])
    for kind in (int, float):
        try:
            return np.array([kind(c) for c in cells])
        except ValueError:
            continue
    return cells.astype(str)


def _read_arrays(path: str, target_file: str | None, need_target: bool) -> Table:
    if path.endswith(".npz"):
        try:
            with np.load(path, allow_pickle=False) as archive:
                if "X" not in archive:
                    raise DataError(f"{path}: no array 'X' (arrays: {', '.join(archive.files)})")
                X = archive["X"]
                y = archive.get("y", None)
        except DataError:
            raise
        except (OSError, ValueError) as exc:
            raise DataError(f"{path}: not a readable .npz file ({exc})") from None
    else:
        try:
            X = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise DataError(f"{path}: not a readable .npy file ({exc})") from None
        y = None
        if target_file is not None:
            try:
                y = np.load(target_file, allow_pickle=False)
            except (OSError, ValueError) as exc:
                raise DataError(f"{target_file}: not a readable .npy file ({exc})") from None
    if X.ndim != 2:
        raise DataError(f"{path}: X must be 2-D (samples x features), got shape {X.shape}")
    if X.shape[0] == 0 or X.shape[1] == 0:
        raise DataError(f"{path}: X has shape {X.shape}: no samples or no features")
    if X.dtype.kind not in "biuf":
        raise DataError(f"{path}: X must be numeric, got dtype {X.dtype}")
    X = X.astype(np.float64)
    bad = np.argwhere(~np.isfinite(X))
    if bad.size:
        raise DataError(f"{path}: X row {bad[0][0]}, column {bad[0][1]} is NaN or infinite")
    if y is not None:
        y = np.asarray(y)
        if y.ndim != 1 or y.shape[0] != X.shape[0]:
            raise DataError(f"{path}: y must have one value per row of X ({X.shape[0]}), got "
                            f"shape {y.shape}")
        if y.dtype.kind == "f" and not np.isfinite(y).all():
            raise DataError(f"{path}: y contains NaN or infinite values")
    if need_target and y is None:
        raise DataError(f"{path}: no targets (an array 'y' in the .npz, or --target-file for "
                        f".npy)")
    return Table(X, y, [f"x{j}" for j in range(X.shape[1])], "y")


def read_table(path: str, *, target: str | None = None, target_file: str | None = None,
               need_target: bool = True, known_features: list | None = None) -> Table:
    """Read a user's CSV (header row; comma or semicolon), .npz (X, y) or .npy file."""
    if not os.path.isfile(path):
        raise DataError(f"{path}: no such file")
    if path.endswith((".npz", ".npy")):
        return _read_arrays(path, target_file, need_target)
    try:
        return _read_csv(path, target, need_target, known_features)
    except UnicodeDecodeError:
        raise DataError(f"{path}: not a text (UTF-8) CSV file") from None
    except csv.Error as exc:
        raise DataError(f"{path}: not a valid CSV file ({exc})") from None


def task_of(y: np.ndarray) -> str:
    """Strings, bools and integers are classes; floats are a quantity to regress."""
    return "regression" if y.dtype.kind == "f" else "classification"


def split(y_or_n, fraction: float, seed: int, stratify: bool) -> tuple:
    """(kept indices, held-out indices): `fraction` of the rows held out, stratified by class
    when asked (each class keeps its share, at least one row on each side when it can)."""
    rng = np.random.default_rng(seed)
    if not stratify:
        n = y_or_n if isinstance(y_or_n, int) else len(y_or_n)
        order = rng.permutation(n)
        held = round(n * fraction)
        return np.sort(order[held:]), np.sort(order[:held])
    y = y_or_n
    kept, held = [], []
    for label in np.unique(y):
        rows = rng.permutation(np.flatnonzero(y == label))
        k = round(len(rows) * fraction)
        if fraction > 0 and len(rows) > 1:
            k = min(max(k, 1), len(rows) - 1)
        held.append(rows[:k])
        kept.append(rows[k:])
    return np.sort(np.concatenate(kept)), np.sort(np.concatenate(held))


@dataclass
class Preprocessing:
    """Feature standardisation (training statistics), class labels or target scaling: what
    predict must apply again, saved in the model's metadata."""

    task: str
    mean: np.ndarray
    std: np.ndarray
    feature_names: list
    target_name: str | None
    classes: list | None = None
    y_mean: float = 0.0
    y_std: float = 1.0

    @classmethod
    def fit(cls, table: Table, task: str, rows: np.ndarray, *, scale: bool = True,
            where: str = "the data") -> Preprocessing:
        """Statistics of the training rows; `scale=False` keeps the features as they are
        (images already in [0, 1])."""
        X = table.X[rows]
        if scale:
            mean, std = X.mean(axis=0), X.std(axis=0)
            std[std == 0] = 1.0
        else:
            mean, std = np.zeros(X.shape[1]), np.ones(X.shape[1])
        prep = cls(task, mean, std, table.feature_names, table.target_name)
        if task == "classification":
            classes = np.unique(table.y[rows])
            if len(classes) < 2:
                raise DataError(f"{where}: the target {table.target_name!r} has one class "
                                f"({classes[0].item()!r}) in the training rows: nothing to "
                                f"learn")
            prep.classes = [c.item() if hasattr(c, "item") else c for c in classes]
        else:
            y = table.y[rows].astype(np.float64)
            prep.y_mean = float(y.mean())
            prep.y_std = float(y.std()) or 1.0
        return prep

    def features(self, X: np.ndarray, dtype) -> np.ndarray:
        if not self.mean.any() and (self.std == 1).all():
            return X.astype(dtype, copy=False)
        return ((X - self.mean) / self.std).astype(dtype)

    def encode(self, y: np.ndarray, where: str) -> np.ndarray:
        if self.task == "classification":
            index = {c: i for i, c in enumerate(self.classes)}
            try:
                return np.array([index[v.item() if hasattr(v, "item") else v] for v in y],
                                dtype=np.int64)
            except KeyError as exc:
                raise DataError(f"{where}: the class {exc.args[0]!r} was not seen in "
                                f"training (classes: {self.classes})") from None
        return ((y.astype(np.float64) - self.y_mean) / self.y_std).reshape(-1, 1)

    def decode(self, outputs: np.ndarray) -> np.ndarray:
        if self.task == "classification":
            return np.array(self.classes, dtype=object)[outputs.argmax(axis=1)]
        return outputs[:, 0].astype(np.float64) * self.y_std + self.y_mean

    def to_metadata(self) -> dict:
        meta = {"task": self.task, "mean": self.mean.tolist(), "std": self.std.tolist(),
                "feature_names": list(self.feature_names), "target_name": self.target_name}
        if self.classes is not None:
            meta["classes"] = self.classes
        else:
            meta["y_mean"], meta["y_std"] = self.y_mean, self.y_std
        return meta

    @classmethod
    def from_metadata(cls, meta: dict) -> Preprocessing:
        return cls(meta["task"], np.array(meta["mean"]), np.array(meta["std"]),
                   list(meta["feature_names"]), meta.get("target_name"), meta.get("classes"),
                   float(meta.get("y_mean", 0.0)), float(meta.get("y_std", 1.0)))
