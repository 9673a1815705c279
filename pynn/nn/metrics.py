"""Metrics: what `fit(metrics=...)` and `evaluate(metrics=...)` report besides the loss.

Each metric accumulates over batches (sums and counts, a confusion count, or the scores for
AUC) and gives one number at the end of an epoch; they read the raw outputs (logits) and the
targets in the loss's kernel form, as the loss does. Names follow Keras and scikit-learn.

=================  =========================================================  ===============
name               what                                                       for
=================  =========================================================  ===============
``accuracy``       fraction of correct labels (the loss's `predict`)          classification
``top_k_accuracy`` the label among the k largest outputs (k=5)                multi-class
``f1``             macro F1 over the classes seen (scikit-learn's "macro")    classification
``auc``            ROC AUC of the positive class (binary), ties averaged      binary
``mae``, ``mse``   mean absolute / squared error over every output            regression
``r2``             R², averaged over the outputs (scikit-learn's default)      regression
=================  =========================================================  ===============
"""
from __future__ import annotations

import numpy as np

from .losses import Loss

__all__ = ["METRICS", "Metric", "get"]


def _argmax_rows(outputs: np.ndarray) -> np.ndarray:
    """outputs.argmax(axis=1) (the first maximum), fast for few columns: NumPy's row-wise
    argmax is a loop over tiny rows, a pass per column is vectorised."""
    n, c = outputs.shape
    if c > 32:
        return outputs.argmax(axis=1)
    best = outputs[:, 0].copy()
    index = np.zeros(n, np.int64)
    for j in range(1, c):
        column = outputs[:, j]
        better = column > best
        np.copyto(best, column, where=better)
        index[better] = j
    return index


class Metric:
    """Base class: `reset`, `update` per batch, `result` at the end.

    `update` only keeps a copy of the batch's outputs and targets; they are read together, in
    vectorised passes over many batches (every `FLUSH_ROWS` rows and at `result`): per-batch
    NumPy calls on 128 x 10 arrays cost more than the arithmetic. Subclasses implement
    `_reset`, `_update` (on many rows at once) and `_result`.
    """

    name = "metric"
    needs_labels = False  # reads one class per sample (classification)
    FLUSH_ROWS = 65536

    def reset(self) -> None:
        self._pending: list = []
        self._pending_rows = 0
        self._reset()

    def update(self, outputs: np.ndarray, target: np.ndarray) -> None:
        self._pending.append((outputs.copy(), target.copy()))
        self._pending_rows += outputs.shape[0]
        if self._pending_rows >= self.FLUSH_ROWS:
            self._flush()

    def _flush(self) -> None:
        if not self._pending:
            return
        if len(self._pending) == 1:
            outputs, target = self._pending[0]
        else:
            outputs = np.concatenate([o for o, _ in self._pending])
            target = np.concatenate([t for _, t in self._pending])
        self._pending, self._pending_rows = [], 0
        self._update(outputs, target)

    def result(self) -> float:
        self._flush()
        return self._result()

    def bind(self, loss: Loss, n_outputs: int) -> Metric:
        """Check that the metric makes sense for this loss and model; returns self."""
        if self.needs_labels and not loss.has_accuracy:
            raise ValueError(f"metric {self.name!r} needs a classification loss; "
                             f"{loss.name} is not one")
        self.loss, self.n_outputs = loss, n_outputs
        self.reset()
        return self

    def _reset(self) -> None:
        raise NotImplementedError

    def _update(self, outputs: np.ndarray, target: np.ndarray) -> None:
        raise NotImplementedError

    def _result(self) -> float:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"

    # -- shared readings -------------------------------------------------------------------------
    def _labels(self, outputs: np.ndarray, target: np.ndarray) -> tuple:
        """(true, predicted) class indices; None when the targets are not one class each."""
        true = self.loss.class_labels(target)
        if true is None:
            raise ValueError(f"metric {self.name!r} needs one class per sample (multi-label "
                             f"targets have several)")
        if outputs.shape[1] > 1 and self.loss.output_function == "softmax":
            return true, _argmax_rows(outputs)
        pred = self.loss.predict(outputs)
        if pred.ndim == 2:
            pred = pred[:, 0]
        if self.loss.name == "hinge":  # -1/1 predictions, 0/1 labels
            pred = (pred > 0).astype(np.int64)
        return true, np.asarray(pred, dtype=np.int64)


class Accuracy(Metric):
    name = "accuracy"
    needs_labels = True

    def _reset(self) -> None:
        self.correct = self.count = 0

    def _update(self, outputs, target) -> None:
        true, pred = self._labels(outputs, target)
        self.correct += int(np.count_nonzero(true == pred))
        self.count += true.size

    def _result(self) -> float:
        return self.correct / self.count if self.count else float("nan")


class TopKAccuracy(Accuracy):
    name = "top_k_accuracy"

    def __init__(self, k: int = 5) -> None:
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
            raise ValueError(f"k must be an int >= 1, got {k!r}")
        self.k = int(k)

    def bind(self, loss, n_outputs):
        if n_outputs < 2:
            raise ValueError("top_k_accuracy needs one output per class (2 or more)")
        return super().bind(loss, n_outputs)

    def _update(self, outputs, target) -> None:
        true = self.loss.class_labels(target)
        # the label is in the top k when fewer than k outputs beat it (ties count for it, as
        # scikit-learn's top_k_accuracy_score): a compare and two sums, no sort
        own = outputs[np.arange(true.size), true]
        beaten_by = np.zeros(true.size, np.int32)
        for j in range(outputs.shape[1]):  # a pass per column: vectorised (see _argmax_rows)
            beaten_by += outputs[:, j] > own
        self.correct += int(np.count_nonzero(beaten_by < self.k))
        self.count += true.size

    def __repr__(self) -> str:
        return f"TopKAccuracy(k={self.k})"


class F1(Metric):
    name = "f1"
    needs_labels = True

    def _reset(self) -> None:
        self.size = max(self.n_outputs, 2)
        self.confusion = np.zeros(self.size * self.size, np.int64)

    def _update(self, outputs, target) -> None:
        true, pred = self._labels(outputs, target)
        self.confusion += np.bincount(true * self.size + pred, minlength=self.size ** 2)

    def _result(self) -> float:
        confusion = self.confusion.reshape(self.size, self.size)
        tp = np.diag(confusion)
        fp = confusion.sum(axis=0) - tp
        fn = confusion.sum(axis=1) - tp
        seen = (tp + fp + fn) > 0  # scikit-learn: labels in y_true or y_pred
        if not seen.any():
            return float("nan")
        denominator = 2 * tp + fp + fn
        scores = np.where(denominator > 0, 2 * tp / np.maximum(denominator, 1), 0.0)
        return float(scores[seen].mean())


class AUC(Metric):
    name = "auc"
    needs_labels = True

    def bind(self, loss, n_outputs):
        if n_outputs > 2:
            raise ValueError("auc is for binary classification (1 output with "
                             "binary_cross_entropy, or 2 with cross_entropy)")
        return super().bind(loss, n_outputs)

    def _reset(self) -> None:
        self.scores: list = []
        self.truth: list = []

    def _update(self, outputs, target) -> None:
        true = self.loss.class_labels(target)
        score = outputs[:, 0] if outputs.shape[1] == 1 else outputs[:, 1] - outputs[:, 0]
        self.scores.append(np.array(score, dtype=np.float64))
        self.truth.append(np.array(true))

    def _result(self) -> float:
        if not self.scores:
            return float("nan")
        scores, truth = np.concatenate(self.scores), np.concatenate(self.truth)
        positives = int(np.count_nonzero(truth == 1))
        negatives = truth.size - positives
        if positives == 0 or negatives == 0:
            return float("nan")  # undefined with one class (scikit-learn raises)
        # Mann-Whitney: the mean rank of the positives, ties given their average rank
        order = np.argsort(scores, kind="mergesort")
        ranks = np.empty(scores.size)
        sorted_scores = scores[order]
        starts = np.r_[0, np.flatnonzero(np.diff(sorted_scores)) + 1]
        ends = np.r_[starts[1:], scores.size]
        for lo, hi in zip(starts, ends):
            ranks[order[lo:hi]] = 0.5 * (lo + hi - 1) + 1
        rank_sum = ranks[truth == 1].sum()
        return float((rank_sum - positives * (positives + 1) / 2) / (positives * negatives))


class _Regression(Metric):
    def _reset(self) -> None:
        self.total = 0.0
        self.count = 0

    def _result(self) -> float:
        return self.total / self.count if self.count else float("nan")

    def _errors(self, outputs, target) -> np.ndarray:
        target = target.reshape(outputs.shape) if target.size == outputs.size else None
        if target is None:
            raise ValueError(f"metric {self.name!r} compares outputs with targets of the same "
                             f"shape (a regression loss such as mse)")
        # in the targets' units: poisson's outputs are log-rates
        return self.loss.output_values(outputs).astype(np.float64) - target


class MAE(_Regression):
    name = "mae"

    def _update(self, outputs, target) -> None:
        self.total += float(np.abs(self._errors(outputs, target)).sum())
        self.count += outputs.size


class MSE(_Regression):
    name = "mse"

    def _update(self, outputs, target) -> None:
        errors = self._errors(outputs, target)
        self.total += float(np.einsum("ij,ij->", errors, errors))
        self.count += outputs.size


class R2(_Regression):
    name = "r2"

    def _reset(self) -> None:
        k = self.n_outputs
        self.residual, self.sum, self.square = np.zeros(k), np.zeros(k), np.zeros(k)
        self.count = 0

    def _update(self, outputs, target) -> None:
        errors = self._errors(outputs, target)
        truth = target.reshape(outputs.shape).astype(np.float64)
        self.residual += np.einsum("ij,ij->j", errors, errors)
        self.sum += truth.sum(axis=0)
        self.square += np.einsum("ij,ij->j", truth, truth)
        self.count += truth.shape[0]

    def _result(self) -> float:
        if self.count < 2:
            return float("nan")
        total = self.square - self.sum ** 2 / self.count
        scores = np.where(total > 0, 1 - self.residual / np.where(total > 0, total, 1),
                          np.where(self.residual > 0, 0.0, 1.0))  # scikit-learn's constant y
        return float(scores.mean())


METRICS = {m.name: m for m in (Accuracy, TopKAccuracy, F1, AUC, MAE, MSE, R2)}


def get(metric: str | Metric) -> Metric:
    """A fresh Metric from a name (see `METRICS`) or an instance."""
    if isinstance(metric, Metric):
        return metric
    if isinstance(metric, str):
        if metric in METRICS:
            return METRICS[metric]()
        raise ValueError(f"unknown metric {metric!r}; pynn has {sorted(METRICS)}")
    raise TypeError(f"a metric must be a name or a pynn.nn.metrics.Metric, got "
                    f"{type(metric).__name__}")
