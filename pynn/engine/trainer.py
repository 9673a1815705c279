"""The training engine: the one loop that `Sequential.fit`, the scikit-learn estimators and
gradcheck all drive.

A step reads like llm.c's: load the batch (gather shuffled rows into preallocated buffers),
forward (one fused linear + bias + activation per layer), the loss fused with its output
function (writing d loss / d outputs in place), backward (activation derivative, dW, db, dX per
layer into the flat gradient buffer), the penalty's gradient, one optimizer update over the flat
parameter buffer. After the first batch of a size nothing is allocated.

What the callers add is policy: `Sequential.fit` its callbacks, History and progress bar; the
estimators scikit-learn's stopping rules, schedules and ``loss_curve_``.

The divergence guard: a non-finite loss, or parameters or optimizer state that an update made
non-finite, stops training with `TrainingDivergedError`, the weights and optimizer state left at
the last step that kept them finite (replayed from a copy taken once per epoch: training is
deterministic, so the replay is bitwise the same; no copy is taken per step).
"""
from __future__ import annotations

import copy
import math
from collections.abc import Callable, Sequence

import numpy as np

from .. import ops
from ..nn.layers import Dense
from ..nn.losses import Loss
from ..nn.optim import Optimizer
from ..nn.regularizers import L2, LayerPenalties
from .distributed import DataParallel
from .inference import CHUNK_ROWS, Inference
from .network import Network, layer_state_arrays

__all__ = ["Batches", "EpochResult", "Trainer", "TrainingDivergedError", "evaluate"]

# Step buffers are kept for this many (batch size, target layout) keys.
_MAX_CACHED_SIZES = 4


class TrainingDivergedError(FloatingPointError):
    """Training produced a non-finite loss, or an update made the weights non-finite.

    No update is applied from the failing step, and the weights and optimizer state are left at
    the last step that kept them finite, so training can continue from sound numbers (e.g.
    after lowering the learning rate).

    Attributes
    ----------
    epoch, batch : int
        Where it happened, 1-based, as in the message.
    history : History or None
        The completed epochs (set by `Sequential.fit`).
    """

    def __init__(self, message: str, epoch: int, batch: int, history: object = None) -> None:
        super().__init__(message)
        self.epoch, self.batch, self.history = epoch, batch, history


class Batches:
    """A training set cut into mini-batches of `size` rows (the last one holds the remainder).

    X is (n, features) in the model's dtype; target is in the loss's kernel form
    (`Loss.prepare_target`); weight is None or (n,) sample weights.
    """

    __slots__ = ("X", "count", "global_size", "n", "size", "target", "weight")

    def __init__(self, X: np.ndarray, target: np.ndarray, weight: np.ndarray | None,
                 batch_size: int | None, world: int = 1) -> None:
        self.X, self.target, self.weight = X, target, weight
        self.n = X.shape[0]
        if batch_size is None:  # full batch: the ranks share it
            self.size = -(-self.n // world)
        else:
            self.size = max(1, min(int(batch_size), -(-self.n // world)))
        # data-parallel: a global batch is `world` ranks' batches of `size` rows
        self.global_size = min(self.size * world, self.n)
        self.count = -(-self.n // self.global_size)


class EpochResult:
    """What an epoch reports: mean loss (sample-count weighted), accuracy if measured, the
    learning rate, and each metric's value."""

    __slots__ = ("accuracy", "loss", "lr", "metrics")

    def __init__(self, loss: float, accuracy: float | None, lr: float,
                 metrics: dict | None = None) -> None:
        self.loss, self.accuracy, self.lr = loss, accuracy, lr
        self.metrics = metrics or {}


class _StepBuffers:
    """Everything a step at batch size m writes into, with the network bound to it."""

    __slots__ = ("acc", "acts", "deltas", "network", "raw", "w", "x", "y")

    def __init__(self, layers: Sequence, dtype: np.dtype, m: int, target: np.ndarray,
                 gather: bool, weighted: bool, loss: Loss, accuracy: bool,
                 raw_dtype: np.dtype | None = None, dropout_key: int = 0) -> None:
        self.x = np.empty((m, layers[0].in_features), dtype) if gather else None
        # inputs stored in another dtype (a memory-mapped file): rows land here, then are cast
        self.raw = None if raw_dtype is None or raw_dtype == dtype else \
            np.empty((m, layers[0].in_features), raw_dtype)
        self.y = np.empty((m,) + target.shape[1:], target.dtype) if gather else None
        self.w = np.empty(m, dtype) if gather and weighted else None
        self.acts = [np.empty((m, layer.out_features), dtype) for layer in layers]
        self.deltas = [np.empty((m, layer.out_features), dtype) for layer in layers]
        self.acc = loss.accuracy_buffers(m, layers[-1].out_features) if accuracy else ()
        self.network = Network(layers, self.acts, self.deltas, dropout_key)


class Trainer:
    """A model's training machinery for one loss, optimizer and penalty.

    Parameters
    ----------
    model
        Anything with `layers` (bound Dense layers: W, b, dW, db views, activation, alpha),
        flat `params` and `grads` buffers and a `dtype` (a `pynn.Sequential`).
    loss : Loss
    optimizer : Optimizer or None
        None: the trainer only computes gradients (gradcheck).
    penalty : L2, optional
        Added to every batch's loss and gradient.
    accuracy : bool, default True
        Measure the training accuracy (when the loss has one).
    comm : mpi4py communicator, optional
        Data-parallel training over its ranks (see `pynn.engine.distributed`).
    metrics : list of bound `pynn.nn.metrics.Metric`, optional
        Updated with every batch's outputs (before its update), read at the end of the epoch.
    dropout_key : int, default 0
        Seeds the Dropout layers' masks (each step's mask also depends on the optimizer's step
        count, so a replayed step draws the same mask).
    """

    def __init__(self, model: object, loss: Loss, optimizer: Optimizer | None = None, *,
                 penalty: L2 | None = None, accuracy: bool = True,
                 comm: object = None, metrics: list | None = None,
                 dropout_key: int = 0) -> None:
        self.dp = DataParallel(comm) if comm is not None else None
        self.layers = list(model.layers)
        self.params, self.grads, self.dtype = model.params, model.grads, model.dtype
        self.loss = loss
        self.optimizer = optimizer
        if optimizer is not None:
            optimizer.bind(model, self.params.size, self.dtype)
        self.penalty = penalty if penalty is not None and penalty.alpha else None
        dense = [layer for layer in self.layers if isinstance(layer, Dense)]
        if self.penalty is not None:
            self.penalty.bind(dense, self.dtype)
        self.layer_penalty = LayerPenalties.for_layers(dense, self.dtype)
        self._buffers: dict = {}
        self.seed_dropout(dropout_key)
        self._state = layer_state_arrays(self.layers)
        self._state_checkpoint = [np.empty_like(a) for a in self._state]
        self.accuracy = bool(accuracy) and loss.has_accuracy
        self.metrics = list(metrics or [])
        if self.metrics and comm is not None:
            raise ValueError("metrics= are not reduced over ranks yet: train with comm= "
                             "without them (loss and accuracy are global)")
        self._checkpoint = np.empty_like(self.params)
        self._inference = Inference(self.layers, self.dtype)

    def seed_dropout(self, seed: int) -> None:
        """Key the Dropout masks of the steps to come (a fit's seed; each rank its own)."""
        rank = self.dp.rank if self.dp is not None else 0
        self.dropout_key = (int(seed) + (rank << 48)) & ((1 << 64) - 1)
        self._buffers.clear()

    @property
    def world(self) -> int:
        """Ranks training together (1 without a communicator)."""
        return 1 if self.dp is None else self.dp.size

    def synchronize(self, facts: dict) -> None:
        """Data-parallel start: check that every rank passes the same `facts`, then give every
        rank rank 0's weights and optimizer state. Nothing to do in one process."""
        dp = self.dp
        if dp is None:
            return
        dp.check_agreement(facts)
        dp.broadcast(self.params)
        opt = self.optimizer
        if opt is not None:
            for buffer in opt.state_arrays().values():
                dp.broadcast(buffer)
            opt.epoch, opt.iterations = dp.broadcast_object((opt.epoch, opt.iterations))

    # ---- one batch ---------------------------------------------------------------------------
    def _step_buffers(self, m: int, target: np.ndarray, gather: bool,
                      weighted: bool, raw_dtype: np.dtype | None = None) -> _StepBuffers:
        key = (m, target.shape[1:], target.dtype, gather, weighted, raw_dtype)
        bufs = self._buffers.get(key)
        if bufs is None:
            if len(self._buffers) >= _MAX_CACHED_SIZES:
                self._buffers.pop(next(iter(self._buffers)))
            bufs = _StepBuffers(self.layers, self.dtype, m, target, gather, weighted, self.loss,
                                self.accuracy, raw_dtype, self.dropout_key)
            self._buffers[key] = bufs
        return bufs

    def _counter(self) -> int:
        """The step's number: with the fit's key, it picks the dropout masks."""
        return self.optimizer.iterations if self.optimizer is not None else 0

    def _forward_backward(self, xb, yb, wb, bufs: _StepBuffers,
                          update_stats: bool = True) -> float:
        """Forward, loss, backward into the gradient buffer; the loss (gradients untouched when
        it is not finite)."""
        bufs.network.forward(xb, self._counter(), update_stats)
        value, _ = self.loss.value_and_grad(bufs.acts[-1], yb, sample_weight=wb,
                                            out=bufs.deltas[-1])
        if math.isfinite(value):
            bufs.network.backward(xb)
        return value

    def forward_backward(self, X: np.ndarray, target: np.ndarray,
                         weight: np.ndarray | None = None, *,
                         update_stats: bool = True) -> float:
        """The loss of one batch (checked arrays), its gradient left in the model's `grads`
        (training mode: batch statistics, this step's dropout masks)."""
        bufs = self._step_buffers(X.shape[0], target, False, weight is not None)
        value = self._forward_backward(X, target, weight, bufs, update_stats)
        if math.isfinite(value):
            value += self._add_penalty_gradients(_weight_sum(weight, X.shape[0]))
        return value

    def _add_penalty_gradients(self, batch_weight: float) -> float:
        """Every penalty's gradient added to `grads`; returns their value."""
        value = 0.0
        if self.penalty is not None:
            value += self.penalty.add_gradient(batch_weight)
        if self.layer_penalty is not None:
            value += self.layer_penalty.add_gradient()
        return value

    def _penalty_value(self, batch_weight: float) -> float:
        value = 0.0
        if self.penalty is not None:
            value += self.penalty.value(batch_weight)
        if self.layer_penalty is not None:
            value += self.layer_penalty.value()
        return value

    def loss_value(self, X: np.ndarray, target: np.ndarray,
                   weight: np.ndarray | None = None, *, training: bool = False) -> float:
        """The loss of one batch, forward only: inference mode, or with `training` the
        training-mode forward of `forward_backward` (running statistics left alone)."""
        if training:
            bufs = self._step_buffers(X.shape[0], target, False, weight is not None)
            bufs.network.forward(X, self._counter(), update_stats=False)
            out = bufs.acts[-1]
        else:
            out = self._inference(X)
        value, _ = self.loss.value_and_grad(out, target, sample_weight=weight,
                                            out=np.empty_like(out))
        return value + self._penalty_value(_weight_sum(weight, X.shape[0]))

    # ---- one epoch ---------------------------------------------------------------------------
    def run_epoch(self, data: Batches, order: np.ndarray | None = None, *, epoch: int = 0,
                  on_batch: Callable | None = None) -> EpochResult:
        """One pass over `data`, one optimizer step per batch.

        Parameters
        ----------
        data : Batches
        order : int64 array of shape (n,), optional
            The epoch's sample order (a permutation); None takes the rows as they are.
        epoch : int
            0-based, for the divergence message.
        on_batch : callable, optional
            ``on_batch(batch, size, loss_sum, correct_sum, done)`` after every step.

        Raises
        ------
        TrainingDivergedError
            The loss, or an update, became non-finite (see the module docstring).
        """
        opt = self.optimizer
        lr = opt.begin_epoch()
        np.copyto(self._checkpoint, self.params)
        self._save_state()
        opt.save_checkpoint()
        loader = _Loader(self, data, order)
        for metric in self.metrics:
            metric.reset()
        kernel = self._one_call_kernel(loader)
        loss_sum = correct = 0.0
        for batch in range(data.count):
            size = loader.global_rows(batch)
            if kernel is not None:
                value, hits = self._one_call_step(loader, batch, kernel)
            else:
                xb, yb, wb, bufs = loader(batch)
                value, hits = self._train_step(xb, yb, wb, bufs)
            if value is None:  # every sample of the batch weighs 0: nothing to learn
                continue
            if not math.isfinite(value):
                self._recover(batch, loader)
                self._diverged(f"the loss is {value}", epoch, batch, data.count, lr)
            correct += hits
            loss_sum += value * size
            if on_batch is not None:
                on_batch(batch, size, loss_sum, correct, batch * data.global_size + size)
        # The last update is checked too: it may have overflowed with a finite loss.
        if not (ops.all_finite(self.params) and opt.state_finite()):
            self._recover(data.count, loader)
            self._diverged("an update made the weights non-finite", epoch, data.count - 1,
                           data.count, lr)
        opt.end_epoch()
        return EpochResult(loss_sum / data.n, correct / data.n if self.accuracy else None, lr,
                           {m.name: m.result() for m in self.metrics})

    def _one_call_kernel(self, loader: _Loader) -> tuple[int, float] | None:
        """The loss kernel for the one-call C step (gather, forward, loss, backward), or None
        where a step needs Python in between: layers other than Dense, sample weights, several
        ranks, inputs cast batch by batch, or a loss without a C kernel."""
        data = loader.data
        if self.dp is not None or data.weight is not None or loader.raw_dtype is not None \
                or not loader.full.network.one_call \
                or not (data.X.flags.c_contiguous and data.X.flags.aligned
                        and data.target.flags.c_contiguous and data.target.flags.aligned):
            return None
        return self.loss.step_kernel(data.target)

    def _one_call_step(self, loader: _Loader, batch: int, kernel: tuple[int, float]) -> tuple:
        """`_train_step` with the gather, forward, loss and backward as one C call (the same
        kernels in the same order: bitwise the same result)."""
        data = loader.data
        start, stop, idx, bufs = loader.plan(batch)
        value = bufs.network.train_step(data.X, data.target, idx, start, bufs.x, bufs.y, kernel)
        if not math.isfinite(value):
            return value, 0
        yb = data.target[start:stop] if idx is None else bufs.y
        hits = self._hits(yb, bufs)
        for metric in self.metrics:
            metric.update(bufs.acts[-1], yb)
        value += self._add_penalty_gradients(float(stop - start))
        self.optimizer.step(self.params, self.grads)
        return value, hits

    def _train_step(self, xb, yb, wb, bufs) -> tuple:
        """One update; (loss, correct predictions), or (None, 0) for a batch that weighs 0.
        A non-finite loss comes back without any update."""
        if self.dp is not None:
            return self._train_step_data_parallel(xb, yb, wb, bufs)
        if wb is not None:
            batch_weight = float(wb.sum(dtype=np.float64))
            if not batch_weight > 0:
                return None, 0
        else:
            batch_weight = float(xb.shape[0])
        value = self._forward_backward(xb, yb, wb, bufs)
        if not math.isfinite(value):
            return value, 0
        hits = self._hits(yb, bufs)
        for metric in self.metrics:
            metric.update(bufs.acts[-1], yb)
        value += self._add_penalty_gradients(batch_weight)
        self.optimizer.step(self.params, self.grads)
        return value, hits

    def _hits(self, yb, bufs) -> float:
        if not self.accuracy:
            return 0
        return self.loss.batch_accuracy(bufs.acts[-1], yb, bufs.acc) * yb.shape[0]

    def _train_step_data_parallel(self, xb, yb, wb, bufs) -> tuple:
        """This rank's part of a global batch: forward and loss here, the sums of (loss, weight,
        hits, non-finite flags) over the ranks, the loss gradient scaled by this rank's share
        of the global weight, backward, one Allreduce of the gradients, the same step
        everywhere. A rank with no rows (a short last batch) contributes zeros."""
        dp, m = self.dp, xb.shape[0]
        weight = float(m if wb is None else wb.sum(dtype=np.float64)) if m else 0.0
        value = hits = 0.0
        if weight > 0:
            bufs.network.forward(xb, self._counter())
            value, _ = self.loss.value_and_grad(bufs.acts[-1], yb, sample_weight=wb,
                                                out=bufs.deltas[-1])
            hits = self._hits(yb, bufs)
        bad = not math.isfinite(value)
        total = dp.sum_scalars(0.0 if bad else value * weight, weight, hits, bad)
        if total[3] > 0:  # some rank overflowed: every rank stops here, nothing updated
            return math.nan, 0
        if not total[1] > 0:
            return None, 0
        if weight > 0:
            delta = bufs.deltas[-1]
            np.multiply(delta, delta.dtype.type(weight / total[1]), out=delta)
            bufs.network.backward(xb)
        else:
            self.grads.fill(0)
        dp.sum(self.grads)
        value = total[0] / total[1]
        # the same weights on every rank: the penalties need no communication
        value += self._add_penalty_gradients(total[1])
        self.optimizer.step(self.params, self.grads)
        return value, total[2]

    def run_stream(self, batches, *, epoch: int = 0, on_batch: Callable | None = None,
                   ) -> EpochResult:
        """One pass over checked ``(X, target, weight)`` batches from an iterator (a generator
        that cannot be replayed): the weights are copied before each step, so a step that
        makes them non-finite is undone before `TrainingDivergedError` is raised."""
        opt = self.optimizer
        lr = opt.begin_epoch()
        for metric in self.metrics:
            metric.reset()
        previous = self._checkpoint
        loss_sum = correct = 0.0
        n = 0
        for batch, (xb, yb, wb) in enumerate(batches):
            bufs = self._step_buffers(xb.shape[0], yb, False, wb is not None)
            np.copyto(previous, self.params)
            self._save_state()
            opt.save_checkpoint()
            value, hits = self._train_step(xb, yb, wb, bufs)
            if value is None:
                continue
            if not math.isfinite(value):
                self._diverged(f"the loss is {value}", epoch, batch, batch + 1, lr)
            if not (ops.all_finite(self.params) and opt.state_finite()):
                np.copyto(self.params, previous)
                self._restore_state()
                opt.restore_checkpoint()
                self._diverged("an update made the weights non-finite", epoch, batch,
                               batch + 1, lr)
            n += xb.shape[0]
            correct += hits
            loss_sum += value * xb.shape[0]
            if on_batch is not None:
                on_batch(batch, xb.shape[0], loss_sum, correct, n)
        if n == 0:
            raise ValueError(f"epoch {epoch + 1} got no batches from the data source")
        opt.end_epoch()
        return EpochResult(loss_sum / n, correct / n if self.accuracy else None, lr,
                           {m.name: m.result() for m in self.metrics})

    # ---- divergence --------------------------------------------------------------------------
    def _save_state(self) -> None:
        """Copy the layers' running statistics (restored with the weights on divergence)."""
        for src, dst in zip(self._state, self._state_checkpoint):
            np.copyto(dst, src)

    def _restore_state(self) -> None:
        for dst, src in zip(self._state, self._state_checkpoint):
            np.copyto(dst, src)

    def _recover(self, bad_batch: int, loader: _Loader) -> None:
        """Leave the weights and optimizer state at the last step that kept them finite.

        Usually they still are (the loss overflowed in the forward pass). If an update made them
        non-finite, rebuild from the epoch's copy by replaying this epoch's steps, stopping
        before the first one that breaks them.
        """
        opt = self.optimizer
        with np.errstate(all="ignore"):  # huge or non-finite numbers are expected here
            if ops.all_finite(self.params) and opt.state_finite():
                return
            np.copyto(self.params, self._checkpoint)
            self._restore_state()
            opt.restore_checkpoint()
            previous = np.empty_like(self.params)
            for batch in range(bad_batch):
                xb, yb, wb, bufs = loader(batch)
                np.copyto(previous, self.params)
                self._save_state()
                opt.save_checkpoint()
                value, _ = self._train_step(xb, yb, wb, bufs)
                if value is None:
                    continue
                if not math.isfinite(value) or not (ops.all_finite(self.params)
                                                     and opt.state_finite()):
                    np.copyto(self.params, previous)
                    self._restore_state()
                    opt.restore_checkpoint()
                    break

    def _diverged(self, what: str, epoch: int, batch: int, n_batches: int, lr: float) -> None:
        raise TrainingDivergedError(
            f"training diverged at epoch {epoch + 1}, batch {batch + 1}/{n_batches}: {what}. "
            f"The weights and optimizer state are left at the last step that kept them finite; "
            f"a smaller learning rate (now {lr:g}) usually helps.", epoch + 1, batch + 1)

    # ---- evaluation --------------------------------------------------------------------------
    def outputs(self, X: np.ndarray) -> np.ndarray:
        """Raw outputs of checked X."""
        return self._inference(X)

    def evaluate(self, X: np.ndarray, target: np.ndarray,
                 weight: np.ndarray | None = None) -> dict:
        """Mean loss and accuracy over checked arrays (see `evaluate`); sharded over the ranks
        when data-parallel."""
        return evaluate(self._inference, self.loss, X, target, weight, accuracy=self.accuracy,
                        dp=self.dp, metrics=[copy.deepcopy(m) for m in self.metrics])


def evaluate(forward: Callable, loss: Loss, X: np.ndarray, target: np.ndarray,
             weight: np.ndarray | None = None, *, accuracy: bool = True,
             dp: DataParallel | None = None, metrics: list | None = None) -> dict:
    """``{"loss", "accuracy"}`` of a model's `forward` over checked arrays, in chunks.

    The loss is the mean weighted by the sample weights; chunks whose weights are all zero
    contribute nothing. No "accuracy" when the loss has none. With `dp`, each rank evaluates
    its share of the rows and the sums are reduced (every rank gets the result). Each bound
    metric in `metrics` adds its value under its name.
    """
    metrics = list(metrics or [])
    if metrics and dp is not None:
        raise ValueError("metrics= are not reduced over ranks yet: evaluate with comm= "
                         "without them")
    for metric in metrics:
        metric.reset()
    total_loss = total_weight = correct = 0.0
    n = X.shape[0]
    if dp is not None:
        lo, hi = dp.shard(n)
        shard = evaluate(forward, loss, X[lo:hi], target[lo:hi],
                         None if weight is None else weight[lo:hi], accuracy=accuracy)
        mean = shard["loss"] if math.isfinite(shard["loss"]) else 0.0
        local_weight = _weight_sum(None if weight is None else weight[lo:hi], hi - lo)
        sums = dp.sum_scalars(mean * local_weight, local_weight,
                              shard.get("accuracy", 0.0) * (hi - lo),
                              not math.isfinite(shard["loss"]) and hi > lo)
        result = {"loss": math.nan if sums[3] > 0 or not sums[1] > 0 else sums[0] / sums[1]}
        if accuracy and loss.has_accuracy:
            result["accuracy"] = sums[2] / n
        return result
    accuracy = accuracy and loss.has_accuracy
    for start in range(0, n, CHUNK_ROWS):
        stop = min(start + CHUNK_ROWS, n)
        out = forward(X[start:stop])
        yb = target[start:stop]
        for metric in metrics:
            metric.update(out, yb)
        if accuracy:
            bufs = loss.accuracy_buffers(stop - start, out.shape[1])
            correct += loss.batch_accuracy(out, yb, bufs) * (stop - start)
        w = None if weight is None else weight[start:stop]
        chunk_weight = _weight_sum(w, stop - start)
        if not chunk_weight > 0:
            continue
        value, _ = loss.value_and_grad(out, yb, sample_weight=w, out=np.empty_like(out))
        total_loss += value * chunk_weight
        total_weight += chunk_weight
    result = {"loss": float(total_loss / total_weight) if total_weight > 0 else math.nan}
    if accuracy:
        result["accuracy"] = float(correct / n) if n else 0.0
    for metric in metrics:
        result[metric.name] = metric.result()
    return result


def _weight_sum(weight: np.ndarray | None, n: int) -> float:
    return float(n) if weight is None else float(weight.sum(dtype=np.float64))


class _Loader:
    """Batch k of an epoch: slices of the data, or its rows gathered in the epoch's order; with
    several ranks, this rank's part of global batch k. Inputs stored in another dtype (a
    memory-mapped file) are gathered in theirs and cast batch by batch."""

    __slots__ = ("data", "dp", "full", "gather", "order", "raw_dtype", "trainer")

    def __init__(self, trainer: Trainer, data: Batches, order: np.ndarray | None) -> None:
        self.data, self.order, self.dp, self.trainer = data, order, trainer.dp, trainer
        self.raw_dtype = None if data.X.dtype == trainer.dtype else data.X.dtype
        self.gather = order is not None or self.raw_dtype is not None
        self.full = trainer._step_buffers(data.size, data.target, self.gather,
                                          data.weight is not None, self.raw_dtype)

    def global_rows(self, batch: int) -> int:
        """Rows of global batch k (over every rank)."""
        start = batch * self.data.global_size
        return min(start + self.data.global_size, self.data.n) - start

    def plan(self, batch: int) -> tuple:
        """(start, stop, idx, bufs) of batch k, not gathered: its rows start:stop of the epoch
        order, their indices in the data (None when read in place) and its step buffers (None
        for a rank with no rows in a short last batch)."""
        data = self.data
        start = batch * data.global_size
        stop = min(start + data.global_size, data.n)
        if self.dp is not None:
            start, stop = self.dp.part(start, stop, data.size)
        m = stop - start
        if m == 0:
            return start, stop, None, None
        bufs = self.full if m == data.size else self.trainer._step_buffers(
            m, data.target, self.gather, data.weight is not None, self.raw_dtype)
        if not self.gather:
            return start, stop, None, bufs
        idx = self.order[start:stop] if self.order is not None else \
            np.arange(start, stop, dtype=np.int64)
        return start, stop, idx, bufs

    def __call__(self, batch: int) -> tuple:
        data = self.data
        start, stop, idx, bufs = self.plan(batch)
        if bufs is None:  # a rank with no rows in a short last batch
            return (data.X[:0], data.target[:0], None if data.weight is None
                    else data.weight[:0], None)
        if idx is None:
            return (data.X[start:stop], data.target[start:stop],
                    None if data.weight is None else data.weight[start:stop], bufs)
        if bufs.raw is None:
            ops.gather_rows(data.X, idx, bufs.x)
        else:
            ops.gather_rows(data.X, idx, bufs.raw)
            np.copyto(bufs.x, bufs.raw, casting="unsafe")
        ops.gather_rows(data.target, idx, bufs.y)
        if bufs.w is not None:
            ops.gather_rows(data.weight, idx, bufs.w)
        return bufs.x, bufs.y, bufs.w, bufs
