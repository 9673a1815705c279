"""scikit-learn estimators on pynn's core: `MLPClassifier` and `MLPRegressor`.

Drop-in replacements for ``sklearn.neural_network.MLPClassifier`` / ``MLPRegressor`` (solvers
'sgd' and 'adam'): the same parameters with the same meanings, the same fitted attributes, the
same random draws for a given ``random_state`` (initial weights, shuffling, the early-stopping
split), the same loss definitions — so the same training trajectory up to float rounding — on
pynn's fused C/OpenMP kernels instead of NumPy.

Beyond scikit-learn:

- ``dtype``: 'auto' (default) trains float32 input in float32 and anything else in float64, as
  scikit-learn does; 'float32' / 'float64' force one. float32 is pynn's fast path.
- ``n_threads``: threads for pynn's kernels during fit/predict (None: pynn's global setting).
  Results are bitwise identical for a given random_state whatever the thread count.
- ``class_weight`` (classifier): dict {label: weight} or 'balanced', multiplied into the
  sample weights.
- ``warm_start`` keeps the optimizer state (momentum velocity, Adam moments and step count,
  the current 'adaptive'/'invscaling' SGD rate unless learning_rate_init was changed) between
  fits; scikit-learn restarts the optimizer.
- early stopping restores the weights of the best validation score (as scikit-learn) without
  breaking the link between ``coefs_`` and the network.
- ``verbose``: a live progress bar over epochs (tqdm, when installed), else one line per epoch.
- ``validation_loss_curve_``: the validation loss per epoch when early_stopping is on.

``coefs_[i]`` and ``intercepts_[i]`` are views into the network's flat parameter buffer:
writing into them changes the model. Assigning new arrays (``est.coefs_ = [...]``) is picked up
by the next predict / warm-start fit / partial_fit (shapes are checked).

solver='lbfgs' (with max_fun) runs scipy's L-BFGS-B on pynn's full-batch forward and backward.

``MLPClassifier.from_sklearn(est)`` / ``est.to_sklearn()`` (and the regressor's) convert a fitted
estimator from / to scikit-learn's own class with the same predictions (`pynn.interop.sklearn`).
``MLPRegressor(loss='poisson')`` is scikit-learn's half Poisson deviance with an exp output.

scikit-learn is an optional dependency: ``pip install scikit-learn``.
"""
from __future__ import annotations

import contextlib
import sys
import time
import warnings
from numbers import Integral, Real
from typing import ClassVar

import numpy as np

try:
    import sklearn
    from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin, is_classifier
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.metrics import accuracy_score, r2_score
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import LabelBinarizer
    from sklearn.utils import check_random_state, column_or_1d
    from sklearn.utils._param_validation import Interval, Options, StrOptions
    from sklearn.utils.class_weight import compute_class_weight
    from sklearn.utils.multiclass import (
        _check_partial_fit_first_call,
        type_of_target,
        unique_labels,
    )
    from sklearn.utils.validation import _check_sample_weight, check_is_fitted, validate_data
except ImportError as _exc:  # pragma: no cover - exercised only without scikit-learn
    raise ImportError(
        "pynn.sklearn needs scikit-learn >= 1.6 (pip install 'scikit-learn>=1.6'); importing "
        f"it failed: {_exc}") from _exc

from .. import ops
from .._platform import get_num_threads, set_num_threads
from ..engine import Batches, DataParallel, Trainer, TrainingDivergedError, rank_zero
from ..engine.lbfgs import run_lbfgs
from ..interop import sklearn as interop_sklearn
from ..model import Sequential
from ..nn.layers import Dense
from ..nn.optim import SGD, Adam
from ..nn.regularizers import L2
from .rules import ScikitLearnLoss, invscaling_rate

__all__ = ["MLPClassifier", "MLPRegressor"]

# scikit-learn's activation names -> pynn's
_ACTIVATIONS = {"identity": "identity", "logistic": "sigmoid", "tanh": "tanh", "relu": "relu"}
_NON_FINITE = ("Solver produced non-finite parameter weights. The input data may contain large "
               "values and need to be preprocessed.")


@contextlib.contextmanager
def _thread_limit(n_threads):
    """pynn's kernel threads set to n_threads for the block (None: leave as is)."""
    if n_threads is None:
        yield
        return
    previous = get_num_threads()
    set_num_threads(int(n_threads))
    try:
        yield
    finally:
        set_num_threads(previous)


class _Progress:
    """verbose: a tqdm bar over epochs when tqdm is installed, else scikit-learn's lines."""

    def __init__(self, total: int, name: str) -> None:
        self._bar = None
        try:
            from tqdm.auto import tqdm
        except ImportError:
            tqdm = None
        if tqdm is not None:
            self._bar = tqdm(total=total, desc=name, unit="epoch", leave=True, file=sys.stderr,
                             dynamic_ncols=True)

    def epoch(self, n_iter: int, loss: float, val_score, seconds: float) -> None:
        if self._bar is not None:
            post = f"loss={loss:.6f}" + ("" if val_score is None else f" val={val_score:.4f}")
            self._bar.set_postfix_str(post, refresh=False)
            self._bar.update(1)
        else:
            print(f"Iteration {n_iter}, loss = {loss:.8f} ({seconds:.3f} s)")
            if val_score is not None:
                print(f"Validation score: {val_score:f}")

    def message(self, text: str) -> None:
        if self._bar is not None:
            self._bar.write(text, file=sys.stderr)
        else:
            print(text)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


def _stochastic_only(estimator) -> None:
    if estimator.solver == "lbfgs":
        raise AttributeError("partial_fit is only available for stochastic optimizers. lbfgs "
                             "is not stochastic.")


def _hidden_sizes(hidden_layer_sizes) -> list:
    sizes = hidden_layer_sizes
    if not hasattr(sizes, "__iter__"):
        sizes = [sizes]
    sizes = list(sizes)
    for s in sizes:
        if isinstance(s, bool) or not isinstance(s, Integral):
            raise TypeError(f"hidden_layer_sizes must hold ints > 0, got {hidden_layer_sizes!r}")
    if any(s <= 0 for s in sizes):
        raise ValueError(f"hidden_layer_sizes must be > 0, got {sizes}.")
    return [int(s) for s in sizes]


class _BaseMLP(BaseEstimator):
    """What MLPClassifier and MLPRegressor share: the fit loop and the network."""

    _parameter_constraints: ClassVar[dict] = {
        "hidden_layer_sizes": ["array-like", Interval(Integral, 1, None, closed="left")],
        "activation": [StrOptions({"identity", "logistic", "tanh", "relu"})],
        "solver": [StrOptions({"lbfgs", "sgd", "adam"})],
        "alpha": [Interval(Real, 0, None, closed="left")],
        "batch_size": [StrOptions({"auto"}), Interval(Integral, 1, None, closed="left")],
        "learning_rate": [StrOptions({"constant", "invscaling", "adaptive"})],
        "learning_rate_init": [Interval(Real, 0, None, closed="neither")],
        "power_t": [Interval(Real, 0, None, closed="left")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "shuffle": ["boolean"],
        "random_state": ["random_state"],
        "tol": [Interval(Real, 0, None, closed="left")],
        "verbose": ["verbose"],
        "warm_start": ["boolean"],
        "momentum": [Interval(Real, 0, 1, closed="both")],
        "nesterovs_momentum": ["boolean"],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
        "beta_1": [Interval(Real, 0, 1, closed="left")],
        "beta_2": [Interval(Real, 0, 1, closed="left")],
        "epsilon": [Interval(Real, 0, None, closed="neither")],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left"), Options(Real, {np.inf})],
        "max_fun": [Interval(Integral, 1, None, closed="left")],
        "dtype": [StrOptions({"auto", "float32", "float64"}), type, np.dtype],
        "n_threads": [Interval(Integral, 1, None, closed="left"), None],
    }

    # ---- dtype ---------------------------------------------------------------------------------
    def _resolve_dtype(self, input_dtype: np.dtype) -> np.dtype:
        if isinstance(self.dtype, str) and self.dtype == "auto":
            return np.dtype(np.float32) if input_dtype == np.float32 else np.dtype(np.float64)
        try:
            dt = np.dtype(self.dtype)
        except TypeError:
            dt = None
        if dt not in (np.float32, np.float64):
            raise ValueError(f"dtype must be 'auto', 'float32' or 'float64', got {self.dtype!r}")
        return dt

    def _as_dense(self, X, dtype) -> np.ndarray:
        if hasattr(X, "toarray"):  # scipy sparse: pynn's kernels are dense
            X = X.toarray()
        return np.ascontiguousarray(X, dtype=dtype)

    # ---- fitting -------------------------------------------------------------------------------
    def fit(self, X, y, sample_weight=None, comm=None):
        """Fit the model to data matrix X and target(s) y.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The input data (sparse input is densified).
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            The target values (class labels in classification, real numbers in regression).
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative sample weights: each batch's loss is the weighted mean
            ``sum(w_i l_i) / sum(w_i)`` (as scikit-learn); a batch whose weights are all zero is
            skipped.
        comm : mpi4py communicator, default=None
            Data-parallel training over its ranks (pynn's engine; see `pynn.Sequential.fit`):
            every rank passes the same data and parameters, `batch_size` is per rank, rank 0's
            initial weights and random draws are used everywhere, only rank 0 shows progress.

        Returns
        -------
        self : object
            The fitted estimator.
        """
        self._validate_params()
        return self._fit(X, y, sample_weight=sample_weight, incremental=False, comm=comm)

    def _fit(self, X, y, sample_weight=None, incremental=False, comm=None):
        hidden = _hidden_sizes(self.hidden_layer_sizes)
        first_pass = not hasattr(self, "coefs_") or (not self.warm_start and not incremental)
        X, y = self._validate_input(X, y, incremental, reset=first_pass)
        dtype = self._resolve_dtype(X.dtype) if first_pass else self._network.dtype
        X = self._as_dense(X, dtype)
        if sample_weight is not None:
            sample_weight = _check_sample_weight(sample_weight, X, dtype=dtype,
                                                 ensure_non_negative=True)
        sample_weight = self._with_class_weight(y, sample_weight, incremental, dtype)
        if y.ndim == 1:
            y = y.reshape((-1, 1))
        n_features = X.shape[1]
        layer_units = [n_features] + hidden + [y.shape[1]]
        self._random_state = check_random_state(self.random_state)
        if comm is not None and not isinstance(self.random_state, Integral):
            # every rank draws the same split and shuffles: rank 0's
            seed = self._random_state.randint(np.iinfo(np.int32).max)
            self._random_state = check_random_state(DataParallel(comm).broadcast_object(seed))
        if first_pass:
            self._initialize(y, layer_units, dtype)
        else:
            self._check_architecture(layer_units)
            self._sync_coefs()
        n_threads = self.n_threads
        if n_threads is None and comm is not None:  # never oversubscribe the shared cores
            n_threads = min(get_num_threads(), DataParallel(comm).threads_per_rank())
        with _thread_limit(n_threads):
            if self.solver == "lbfgs":
                if comm is not None:
                    raise ValueError("solver='lbfgs' trains in one process: fit without comm= "
                                     "(or use solver='sgd'/'adam' for data-parallel training)")
                self._fit_lbfgs(X, y, sample_weight)
            else:
                self._fit_stochastic(X, y, sample_weight, incremental, first_pass, comm)
        if not ops.all_finite(self._network.params):
            raise ValueError(_NON_FINITE)
        return self

    def _with_class_weight(self, y, sample_weight, incremental, dtype):
        return sample_weight

    def _initialize(self, y, layer_units, dtype) -> None:
        """New network with scikit-learn's initial weights (same draws for a random_state)."""
        self.n_iter_ = 0
        self.t_ = 0
        self.n_outputs_ = y.shape[1]
        self.n_layers_ = len(layer_units)
        self.out_activation_ = self._output_activation()
        hidden_act = _ACTIVATIONS[self.activation]
        layers = [Dense(layer_units[i], layer_units[i + 1],
                        hidden_act if i + 2 < len(layer_units) else "identity")
                  for i in range(len(layer_units) - 1)]
        net = Sequential(layers, dtype=dtype, seed=0)
        # Glorot uniform for weights and biases, factor 2 for logistic (Glorot & Bengio), drawn
        # in scikit-learn's order so that a random_state gives scikit-learn's initial model.
        factor = 2.0 if self.activation == "logistic" else 6.0
        for layer in net.layers:
            bound = np.sqrt(factor / (layer.in_features + layer.out_features))
            layer.W[...] = self._random_state.uniform(
                -bound, bound, (layer.in_features, layer.out_features)).astype(dtype, copy=False)
            layer.b[...] = self._random_state.uniform(
                -bound, bound, layer.out_features).astype(dtype, copy=False)
        self._network = net
        self._bind_views()
        self._best_params = net.params.copy()
        self._lr_init = None
        if self.solver == "lbfgs":  # as scikit-learn: no curve, no stopping state
            return
        self.loss_curve_ = []
        self._no_improvement_count = 0
        if self.early_stopping:
            self.validation_scores_ = []
            self.validation_loss_curve_ = []
            self.best_validation_score_ = -np.inf
            self.best_loss_ = None
        else:
            self.best_loss_ = np.inf
            self.validation_scores_ = None
            self.validation_loss_curve_ = None
            self.best_validation_score_ = None

    def _bind_views(self) -> None:
        net = self._network
        self._coef_views = tuple(layer.W for layer in net.layers)
        self._intercept_views = tuple(layer.b for layer in net.layers)
        self.coefs_ = list(self._coef_views)
        self.intercepts_ = list(self._intercept_views)
        self._trainer = None

    def _sync_coefs(self) -> None:
        """Copy user-assigned coefs_/intercepts_ arrays into the network (checked first)."""
        coefs, intercepts = self.coefs_, self.intercepts_
        if (len(coefs) == len(self._coef_views)
                and all(a is v for a, v in zip(coefs, self._coef_views))
                and len(intercepts) == len(self._intercept_views)
                and all(a is v for a, v in zip(intercepts, self._intercept_views))):
            return
        pairs = []
        for name, given, views in (("coefs_", coefs, self._coef_views),
                                   ("intercepts_", intercepts, self._intercept_views)):
            if len(given) != len(views):
                raise ValueError(f"{name} must hold {len(views)} arrays, got {len(given)}")
            for i, (a, v) in enumerate(zip(given, views)):
                arr = np.asarray(a)
                if arr.shape != v.shape:
                    raise ValueError(f"{name}[{i}] must have shape {v.shape}, got {arr.shape}")
                if not np.isfinite(arr).all():
                    raise ValueError(f"{name}[{i}] contains NaN or inf")
                pairs.append((v, arr))
        for v, arr in pairs:
            if arr is not v:
                v[...] = arr
        self.coefs_ = list(self._coef_views)
        self.intercepts_ = list(self._intercept_views)

    def _check_architecture(self, layer_units) -> None:
        have = [self._network.in_features] + [layer.out_features for layer in self._network.layers]
        if have != list(layer_units):
            raise ValueError(f"warm_start/partial_fit: the fitted network has layer sizes {have}, "
                             f"but these parameters and data need {list(layer_units)}; fit with "
                             f"warm_start=False to start a new network")

    def _new_optimizer(self):
        if self.solver == "sgd":
            opt = SGD(self.learning_rate_init, nesterov=False)
            self._set_momentum(opt)
        else:
            opt = Adam(self.learning_rate_init, betas=(self.beta_1, self.beta_2),
                       eps=self.epsilon, epsilon_hat=True)
        self._lr_init = float(self.learning_rate_init)
        return opt

    def _set_momentum(self, opt) -> None:
        # assigned, not passed: scikit-learn allows momentum = 1, which pynn.SGD refuses
        opt.momentum = float(self.momentum)
        opt.nesterov = bool(self.nesterovs_momentum) and opt.momentum > 0

    def _optimizer_for_fit(self, first_pass: bool):
        """A pynn optimizer: kept across warm-start fits and partial_fit calls (same solver, so
        its state -- velocity, moments, step count, the current adaptive/invscaling rate --
        carries over) with the current hyperparameters; new for a fresh fit."""
        opt = self._network.optimizer
        if first_pass or opt is None or opt.name != self.solver:
            return self._new_optimizer()
        if self._lr_init != float(self.learning_rate_init):
            opt.lr = self._lr_init = float(self.learning_rate_init)
        if self.solver == "sgd":
            if (self.momentum > 0) != bool(opt.state_names):
                return self._new_optimizer()
            self._set_momentum(opt)
        else:
            opt.betas, opt.eps = (float(self.beta_1), float(self.beta_2)), float(self.epsilon)
        return opt

    def _trainer_for(self, opt, comm) -> Trainer:
        trainer = self._trainer
        if trainer is None or trainer.optimizer is not opt or trainer.loss.out_activation != \
                self.out_activation_ or (trainer.penalty.alpha if trainer.penalty else 0.0) \
                != float(self.alpha) or comm is not None or trainer.dp is not None:
            trainer = Trainer(self._network, ScikitLearnLoss(self.out_activation_,
                                                             self.n_outputs_),
                              opt, penalty=L2(self.alpha, per_sample=True), accuracy=False,
                              comm=comm)
            self._trainer = trainer
        return trainer

    def _fit_lbfgs(self, X, y, sample_weight) -> None:
        """scipy's L-BFGS-B on pynn's full-batch forward and backward (the engine's
        `run_lbfgs`; loss and L2 as the stochastic solvers have them)."""
        from sklearn.utils.optimize import _check_optimize_result

        trainer = Trainer(self._network, ScikitLearnLoss(self.out_activation_, self.n_outputs_),
                          penalty=L2(self.alpha, per_sample=True), accuracy=False)
        weight = None if sample_weight is None else np.ascontiguousarray(sample_weight)
        result = run_lbfgs(trainer, X, self._encode_target(y), weight, max_iter=self.max_iter,
                           max_fun=self.max_fun, tol=self.tol)
        self.n_iter_ = _check_optimize_result("lbfgs", result, self.max_iter)
        self.loss_ = float(result.fun)

    def _fit_stochastic(self, X, y, sample_weight, incremental, first_pass,
                        comm=None) -> None:
        if self.early_stopping and incremental:
            raise ValueError("partial_fit does not support early_stopping=True")
        early_stopping = self.early_stopping
        if early_stopping:
            if self.validation_scores_ is None:  # warm start from a fit without it
                self.validation_scores_, self.validation_loss_curve_ = [], []
                self.best_validation_score_, self.best_loss_ = -np.inf, None
            should_stratify = is_classifier(self) and self.n_outputs_ == 1
            stratify = y if should_stratify else None
            arrays = (X, y) if sample_weight is None else (X, y, sample_weight)
            split = train_test_split(*arrays, random_state=self._random_state,
                                     test_size=self.validation_fraction, stratify=stratify)
            X_train, X_val, y_train, y_val = split[:4]
            sw_train, sw_val = (split[4], split[5]) if sample_weight is not None else (None, None)
            if X_val.shape[0] < 2:
                raise ValueError("The validation set is too small. Increase "
                                 "'validation_fraction' or the size of your dataset.")
            X_train = np.ascontiguousarray(X_train)
            val_target = self._encode_target(y_val)
            if is_classifier(self):
                y_val = self._label_binarizer.inverse_transform(y_val)
            val = (np.ascontiguousarray(X_val), y_val, sw_val, val_target)
        else:
            X_train, y_train, sw_train, val = X, y, sample_weight, None
        target = self._encode_target(y_train)
        if sw_train is not None:
            sw_train = np.ascontiguousarray(sw_train)

        n = X_train.shape[0]
        if self.batch_size == "auto":
            m = min(200, n)
        else:
            if self.batch_size > n:
                warnings.warn("Got `batch_size` less than 1 or larger than sample size. It is "
                              "going to be clipped")
            m = int(np.clip(self.batch_size, 1, n))
        opt = self._optimizer_for_fit(first_pass)
        trainer = self._trainer_for(opt, comm)
        self._network.compile(optimizer=opt)
        data = Batches(X_train, target, sw_train, m, world=trainer.world)
        if comm is not None:
            params = {k: v for k, v in self.get_params().items()
                      if k != "random_state" or v is None or isinstance(v, Integral)}
            trainer.synchronize({"params": repr(sorted(params.items())),
                                 "samples": n, "features": X_train.shape[1],
                                 "targets": (target.shape, target.dtype.str),
                                 "sample weights": sw_train is not None,
                                 "dtype": self._network.dtype.name})
        sample_idx = np.arange(n, dtype=np.int64)
        progress = _Progress(1 if incremental else self.max_iter,
                             type(self).__name__) if self.verbose and rank_zero(comm) else None
        try:
            self.n_iter_ = 0
            for _ in range(self.max_iter):
                started = time.perf_counter()
                order = None
                if self.shuffle:
                    # the draws of sklearn.utils.shuffle, without its per-call validation
                    # (milliseconds: a tenth of an epoch on small data)
                    perm = np.arange(n)
                    self._random_state.shuffle(perm)
                    order = sample_idx = sample_idx[perm]
                try:
                    result = trainer.run_epoch(data, order, epoch=self.n_iter_)
                except TrainingDivergedError as exc:
                    raise ValueError(_NON_FINITE) from exc
                self.n_iter_ += 1
                self.loss_ = result.loss
                self.t_ += n
                self.loss_curve_.append(self.loss_)
                val_score = self._update_no_improvement_count(early_stopping, val, trainer)
                if progress is not None:
                    progress.epoch(self.n_iter_, self.loss_, val_score,
                                   time.perf_counter() - started)
                if self.solver == "sgd" and self.learning_rate == "invscaling":
                    opt.lr = invscaling_rate(self._lr_init, self.t_, self.power_t)
                if self._no_improvement_count > self.n_iter_no_change:
                    if early_stopping:
                        msg = (f"Validation score did not improve more than tol={self.tol:f} "
                               f"for {self.n_iter_no_change} consecutive epochs.")
                    else:
                        msg = (f"Training loss did not improve more than tol={self.tol:f} for "
                               f"{self.n_iter_no_change} consecutive epochs.")
                    if self._trigger_stopping(msg, opt, progress):
                        break
                    self._no_improvement_count = 0
                if incremental:
                    break
                if self.n_iter_ == self.max_iter:
                    warnings.warn(f"Stochastic Optimizer: Maximum iterations ({self.max_iter}) "
                                  f"reached and the optimization hasn't converged yet.",
                                  ConvergenceWarning)
        except KeyboardInterrupt:
            warnings.warn("Training interrupted by user.")
        finally:
            if progress is not None:
                progress.close()
        if early_stopping:
            np.copyto(self._network.params, self._best_params)

    def _trigger_stopping(self, msg, opt, progress) -> bool:
        def say(text):
            if self.verbose:
                progress.message(text) if progress is not None else print(text)

        if self.solver != "sgd" or self.learning_rate != "adaptive":
            say(msg + " Stopping.")
            return True
        if opt.lr <= 1e-6:
            say(msg + " Learning rate too small. Stopping.")
            return True
        opt.lr /= 5.0
        say(msg + f" Setting learning rate to {opt.lr:f}")
        return False

    def _update_no_improvement_count(self, early_stopping, val, trainer):
        if early_stopping:
            X_val, y_val, sw_val, val_target = val
            outputs = trainer.outputs(X_val)
            val_score = self._score_outputs(outputs, y_val, sw_val)
            self.validation_scores_.append(val_score)
            self.validation_loss_curve_.append(self._validation_loss(outputs, val_target,
                                                                     sw_val, trainer))
            if val_score < self.best_validation_score_ + self.tol:
                self._no_improvement_count += 1
            else:
                self._no_improvement_count = 0
            if val_score > self.best_validation_score_:
                self.best_validation_score_ = val_score
                np.copyto(self._best_params, self._network.params)
            return val_score
        if self.loss_curve_[-1] > self.best_loss_ - self.tol:
            self._no_improvement_count += 1
        else:
            self._no_improvement_count = 0
        self.best_loss_ = min(self.best_loss_, self.loss_curve_[-1])
        return None

    def _validation_loss(self, outputs, target, sample_weight, trainer) -> float:
        """The training loss's definition (with the L2 term) on the validation set."""
        if not ops.all_finite(outputs):
            return float("nan")
        value, _ = trainer.loss.value_and_grad(outputs, target, sample_weight=sample_weight,
                                               out=np.empty_like(outputs))
        if trainer.penalty is not None:
            total = float(outputs.shape[0]) if sample_weight is None else float(
                sample_weight.sum(dtype=np.float64))
            value += trainer.penalty.value(total)
        return float(value)

    # ---- prediction ----------------------------------------------------------------------------
    def _outputs(self, X) -> np.ndarray:
        """Raw network outputs (logits for classification) of validated X."""
        X = validate_data(self, X, accept_sparse=["csr", "csc"], dtype=(np.float64, np.float32),
                          reset=False)
        X = self._as_dense(X, self._network.dtype)
        self._sync_coefs()
        with _thread_limit(self.n_threads):
            return self._network(X)

    # ---- pickling ------------------------------------------------------------------------------
    def __getstate__(self):
        if hasattr(self, "_network"):
            self._sync_coefs()
        state = dict(super().__getstate__())
        for key in ("coefs_", "intercepts_", "_coef_views", "_intercept_views", "_trainer"):
            state.pop(key, None)
        return state

    def __setstate__(self, state):
        super().__setstate__(state)
        if "_network" in state:
            self._bind_views()

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        return tags

    # ---- scikit-learn's own MLPs, both ways (pynn.interop.sklearn) -------------------------------
    @classmethod
    def from_sklearn(cls, est):
        """This class's estimator equal to scikit-learn's fitted `est`: copies of its weights,
        its parameters and fitted attributes (classes_, out_activation_, loss_, n_iter_, t_,
        ...), so that predict (and predict_proba) give the same results.

        Parameters
        ----------
        est : sklearn.neural_network.MLPClassifier (MLPRegressor for MLPRegressor.from_sklearn)
            A fitted estimator.

        Returns
        -------
        A fitted estimator of this class (see `pynn.interop.sklearn` for what crosses).
        """
        return cls._from_parts(*interop_sklearn.from_sklearn(cls, est))

    def to_sklearn(self):
        """scikit-learn's own estimator (sklearn.neural_network.MLPClassifier / MLPRegressor)
        equal to this fitted one: copies of the weights, the parameters both have, the fitted
        attributes (see `pynn.interop.sklearn`)."""
        return interop_sklearn.to_sklearn(self)

    @classmethod
    def _from_parts(cls, params, network, attributes, binarizer):
        """A fitted estimator from the parts `pynn.interop.sklearn.from_sklearn` gives."""
        est = cls(**params)
        est._network = network
        est._bind_views()
        est._best_params = network.params.copy()
        est._lr_init = None
        est._no_improvement_count = 0
        if binarizer is not None:
            est._label_binarizer = binarizer
        for key, value in attributes.items():
            setattr(est, key, value)
        return est

    # ---- skl2onnx's hooks: convert_sklearn / to_onnx give pynn.to_onnx's graph -----------------
    def onnx_shape_calculator(self):
        """For skl2onnx: the types of this estimator's ONNX outputs."""
        from ..interop.skl2onnx import shape_calculator

        return shape_calculator

    def onnx_converter(self):
        """For skl2onnx: writes `pynn.to_onnx`'s graph (outputs named as skl2onnx's)."""
        from ..interop.skl2onnx import converter

        return converter


_COMMON_PARAMS_DOC = """
    Parameters
    ----------
    hidden_layer_sizes : array-like of shape (n_layers - 2,), default=(100,)
        The ith element is the number of neurons in the ith hidden layer.
    activation : {'identity', 'logistic', 'tanh', 'relu'}, default='relu'
        Activation of the hidden layers.
    solver : {'sgd', 'adam'}, default='adam'
        'sgd': stochastic gradient descent with (Nesterov) momentum; 'adam': Adam.
    alpha : float, default=0.0001
        Strength of the L2 penalty on the weights (not the biases); divided by the batch's
        sample-weight sum when added to the loss.
    batch_size : int or 'auto', default='auto'
        Minibatch size; 'auto' is min(200, n_samples).
    learning_rate : {'constant', 'invscaling', 'adaptive'}, default='constant'
        Schedule of the SGD learning rate: constant; learning_rate_init / (t + 1)^power_t with t
        the samples seen (updated every epoch); or divided by 5 each time n_iter_no_change
        epochs fail to improve by tol. Only used when solver='sgd'.
    learning_rate_init : float, default=0.001
        The initial learning rate.
    power_t : float, default=0.5
        Exponent of 'invscaling'.
    max_iter : int, default=200
        Maximum number of epochs.
    shuffle : bool, default=True
        Whether to shuffle the samples every epoch.
    random_state : int, RandomState instance or None, default=None
        Seeds the initial weights, the early-stopping split and the shuffling; the same draws
        as scikit-learn's MLP.
    tol : float, default=1e-4
        Improvement of the loss (or validation score) below which an epoch counts as no
        improvement.
    verbose : bool, default=False
        Show a progress bar over epochs (tqdm when installed, else one line per epoch).
    warm_start : bool, default=False
        Continue from the previous fit's weights and optimizer state.
    momentum : float, default=0.9
        SGD momentum, in [0, 1].
    nesterovs_momentum : bool, default=True
        Nesterov's momentum (solver='sgd', momentum > 0).
    early_stopping : bool, default=False
        Hold out validation_fraction of the training data and stop when its score stops
        improving by tol for n_iter_no_change epochs; the best weights are restored.
    validation_fraction : float, default=0.1
        Fraction of the training data held out when early_stopping is on.
    beta_1, beta_2 : float, default=0.9, 0.999
        Adam's decay rates of the first and second moment estimates, in [0, 1).
    epsilon : float, default=1e-8
        Adam's numerical-stability term.
    n_iter_no_change : int, default=10
        Epochs without improvement (by tol) before stopping or lowering the rate.
"""

_PYNN_PARAMS_DOC = """    dtype : {'auto', 'float32', 'float64'}, default='auto'
        Precision of the weights and the computation: 'auto' follows the input (float32 input
        stays float32; other input is float64, as scikit-learn). float32 is the fast path.
    n_threads : int or None, default=None
        Threads for pynn's kernels during fit and predict; None uses pynn's global setting
        (`pynn.set_num_threads`, OMP_NUM_THREADS). Results do not depend on it.
"""

_ATTRIBUTES_DOC = """
    Attributes
    ----------
    loss_ : float
        The loss (data loss + L2 term) of the last epoch.
    best_loss_ : float or None
        The minimum loss reached (None with early_stopping).
    loss_curve_ : list of float
        The loss at every epoch.
    validation_scores_ : list of float or None
        The validation score (accuracy / R²) at every epoch with early_stopping, else None.
    validation_loss_curve_ : list of float or None
        The validation loss at every epoch with early_stopping, else None.
    best_validation_score_ : float or None
        The best validation score (early_stopping), else None.
    t_ : int
        Number of training samples seen.
    coefs_ : list of ndarray
        Weight matrix of each layer (views into the network's parameter buffer).
    intercepts_ : list of ndarray
        Bias vector of each layer (views likewise).
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Names of features seen during fit, when X had string feature names.
    n_iter_ : int
        Epochs run by the last fit.
    n_layers_ : int
        Number of layers (input and output included).
    n_outputs_ : int
        Number of outputs.
    out_activation_ : str
        Output function: 'softmax', 'logistic', 'identity' or 'exp' (loss='poisson').
"""


class MLPClassifier(ClassifierMixin, _BaseMLP):
    __doc__ = ("""Multi-layer perceptron classifier on pynn's kernels (drop-in for
    scikit-learn's MLPClassifier with solver 'sgd' or 'adam').

    Multi-class (softmax output, cross-entropy), binary and multi-label (logistic outputs,
    y as a binary indicator matrix).
""" + _COMMON_PARAMS_DOC + """    class_weight : dict, 'balanced' or None, default=None
        Weights of the classes, multiplied into the sample weights: {label: weight}, or
        'balanced' (n_samples / (n_classes · count)). Not for multi-label y; 'balanced' is not
        available in partial_fit.
""" + _PYNN_PARAMS_DOC + _ATTRIBUTES_DOC + """    classes_ : ndarray or list of ndarray
        Class labels.

    Examples
    --------
    >>> from pynn.sklearn import MLPClassifier
    >>> clf = MLPClassifier((64,), solver="sgd", learning_rate_init=0.05, random_state=0)
    >>> clf.fit(X_train, y_train).score(X_test, y_test)
    """)

    _parameter_constraints: ClassVar[dict] = {
        **_BaseMLP._parameter_constraints,
        "class_weight": [dict, StrOptions({"balanced"}), None],
    }

    def __init__(self, hidden_layer_sizes=(100,), activation="relu", *, solver="adam",
                 alpha=0.0001, batch_size="auto", learning_rate="constant",
                 learning_rate_init=0.001, power_t=0.5, max_iter=200, shuffle=True,
                 random_state=None, tol=1e-4, verbose=False, warm_start=False, momentum=0.9,
                 nesterovs_momentum=True, early_stopping=False, validation_fraction=0.1,
                 beta_1=0.9, beta_2=0.999, epsilon=1e-8, n_iter_no_change=10, max_fun=15000,
                 class_weight=None, dtype="auto", n_threads=None):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.solver = solver
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.learning_rate_init = learning_rate_init
        self.power_t = power_t
        self.max_iter = max_iter
        self.shuffle = shuffle
        self.random_state = random_state
        self.tol = tol
        self.verbose = verbose
        self.warm_start = warm_start
        self.momentum = momentum
        self.nesterovs_momentum = nesterovs_momentum
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.n_iter_no_change = n_iter_no_change
        self.max_fun = max_fun
        self.class_weight = class_weight
        self.dtype = dtype
        self.n_threads = n_threads

    def _output_activation(self) -> str:
        return "softmax" if self._label_binarizer.y_type_ == "multiclass" else "logistic"

    def _validate_input(self, X, y, incremental, reset):
        X, y = validate_data(self, X, y, accept_sparse=["csr", "csc"], multi_output=True,
                             dtype=(np.float64, np.float32), reset=reset)
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        # same rules as scikit-learn for (re)defining classes_
        if (not hasattr(self, "classes_")) or (not self.warm_start and not incremental):
            self._label_binarizer = LabelBinarizer()
            self._label_binarizer.fit(y)
            self.classes_ = self._label_binarizer.classes_
        else:
            classes = unique_labels(y)
            if self.warm_start:
                if set(classes) != set(self.classes_):
                    raise ValueError(
                        "warm_start can only be used where `y` has the same classes as in the "
                        f"previous call to fit. Previously got {self.classes_}, `y` has "
                        f"{classes}")
            elif len(np.setdiff1d(classes, self.classes_, assume_unique=True)):
                raise ValueError(f"`y` has classes not in `self.classes_`. `self.classes_` has "
                                 f"{self.classes_}. 'y' has {classes}.")
        y = self._label_binarizer.transform(y).astype(bool)
        return X, y

    def _with_class_weight(self, y, sample_weight, incremental, dtype):
        if self.class_weight is None:
            return sample_weight
        if self._label_binarizer.y_type_.startswith("multilabel"):
            raise ValueError("class_weight is not supported for multi-label y (a binary "
                             "indicator matrix); pass sample_weight instead")
        if incremental and isinstance(self.class_weight, str):
            raise ValueError("class_weight='balanced' is not supported for partial_fit (the "
                             "class frequencies of all the data are unknown); pass a dict "
                             "{label: weight} computed with "
                             "sklearn.utils.class_weight.compute_class_weight")
        index = y.argmax(axis=1) if y.shape[1] > 1 else y[:, 0].astype(np.intp)
        labels = self.classes_[index]
        if isinstance(self.class_weight, str):
            present = self.classes_[np.unique(index)]
            per_present = compute_class_weight("balanced", classes=present, y=labels)
            per_class = np.ones(len(self.classes_))
            per_class[np.searchsorted(self.classes_, present)] = per_present
        else:
            per_class = compute_class_weight(self.class_weight, classes=self.classes_, y=labels)
        weights = per_class[index].astype(dtype)
        if sample_weight is not None:
            weights *= sample_weight
        return weights

    def _encode_target(self, y_bin) -> np.ndarray:
        if self.out_activation_ == "softmax":
            return np.ascontiguousarray(y_bin.argmax(axis=1), dtype=np.int64)
        return np.ascontiguousarray(y_bin, dtype=self._network.dtype)

    def _labels(self, outputs) -> np.ndarray:
        if self.out_activation_ == "softmax":
            return self.classes_[outputs.argmax(axis=1)]
        indicator = (outputs > 0).astype(np.int64)  # logistic(z) > 0.5 <=> z > 0
        if self.n_outputs_ == 1:
            indicator = indicator.ravel()
        return self._label_binarizer.inverse_transform(indicator)

    def _score_outputs(self, outputs, y, sample_weight) -> float:
        if not ops.all_finite(outputs):
            return np.nan
        return accuracy_score(y, self._labels(outputs), sample_weight=sample_weight)

    def predict(self, X):
        """Predict class labels (an indicator matrix for multi-label).

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)

        Returns
        -------
        y : ndarray of shape (n_samples,) or (n_samples, n_classes)
        """
        check_is_fitted(self)
        return self._labels(self._outputs(X))

    def predict_proba(self, X):
        """Probability of each class (columns ordered as classes_).

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)

        Returns
        -------
        y_prob : ndarray of shape (n_samples, n_classes)
        """
        check_is_fitted(self)
        z = self._outputs(X)
        if self.out_activation_ == "softmax":
            return ops.softmax(z, out=z)
        p = ops.activation("sigmoid", z, out=z)
        if self.n_outputs_ == 1:
            p = p.ravel()
            return np.vstack([1 - p, p]).T
        return p

    def predict_log_proba(self, X):
        """Log of predict_proba, computed stably from the logits (no log(0) = -inf from
        underflowed probabilities).

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)

        Returns
        -------
        log_y_prob : ndarray of shape (n_samples, n_classes)
        """
        check_is_fitted(self)
        z = self._outputs(X)
        if self.out_activation_ == "softmax":
            z -= z.max(axis=1, keepdims=True)
            z -= np.log(np.exp(z).sum(axis=1, keepdims=True))
            return z
        log_p = -np.logaddexp(0, -z)     # log sigmoid(z)
        if self.n_outputs_ == 1:
            log_q = -np.logaddexp(0, z)  # log(1 - sigmoid(z))
            return np.hstack([log_q, log_p])
        return log_p

    def partial_fit(self, X, y, sample_weight=None, classes=None):
        _stochastic_only(self)
        """One epoch over (X, y), continuing from the current state.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
        y : array-like of shape (n_samples,) or (n_samples, n_classes)
        sample_weight : array-like of shape (n_samples,), default=None
        classes : array of shape (n_classes,), default=None
            All the classes; required on the first call (not for multi-label y).

        Returns
        -------
        self : object
        """
        self._validate_params()
        if _check_partial_fit_first_call(self, classes):
            self._label_binarizer = LabelBinarizer()
            if type_of_target(y).startswith("multilabel"):
                self._label_binarizer.fit(y)
            else:
                self._label_binarizer.fit(classes)
        return self._fit(X, y, sample_weight=sample_weight, incremental=True)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        return tags


class MLPRegressor(RegressorMixin, _BaseMLP):
    __doc__ = ("""Multi-layer perceptron regressor on pynn's kernels (drop-in for
    scikit-learn's MLPRegressor with solver 'sgd' or 'adam').

    Squared error (half the mean squared error, as scikit-learn) with an identity output, or
    half the Poisson deviance with an exp output (``loss='poisson'``, for counts and rates
    >= 0); y may have several columns (multi-output).
""" + _COMMON_PARAMS_DOC + """    loss : {'squared_error', 'poisson'}, default='squared_error'
        'poisson': the network predicts ``exp(output)``; y must be >= 0.
""" + _PYNN_PARAMS_DOC + _ATTRIBUTES_DOC + """
    Examples
    --------
    >>> from pynn.sklearn import MLPRegressor
    >>> reg = MLPRegressor((64,), random_state=0, max_iter=500).fit(X_train, y_train)
    >>> reg.score(X_test, y_test)
    """)

    _parameter_constraints: ClassVar[dict] = {
        **_BaseMLP._parameter_constraints,
        "loss": [StrOptions({"squared_error", "poisson"})],
    }

    def __init__(self, loss="squared_error", hidden_layer_sizes=(100,), activation="relu", *,
                 solver="adam", alpha=0.0001, batch_size="auto", learning_rate="constant",
                 learning_rate_init=0.001, power_t=0.5, max_iter=200, shuffle=True,
                 random_state=None, tol=1e-4, verbose=False, warm_start=False, momentum=0.9,
                 nesterovs_momentum=True, early_stopping=False, validation_fraction=0.1,
                 beta_1=0.9, beta_2=0.999, epsilon=1e-8, n_iter_no_change=10, max_fun=15000,
                 dtype="auto", n_threads=None):
        self.loss = loss
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.solver = solver
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.learning_rate_init = learning_rate_init
        self.power_t = power_t
        self.max_iter = max_iter
        self.shuffle = shuffle
        self.random_state = random_state
        self.tol = tol
        self.verbose = verbose
        self.warm_start = warm_start
        self.momentum = momentum
        self.nesterovs_momentum = nesterovs_momentum
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.n_iter_no_change = n_iter_no_change
        self.max_fun = max_fun
        self.dtype = dtype
        self.n_threads = n_threads

    def _output_activation(self) -> str:
        return "exp" if self.loss == "poisson" else "identity"

    def _validate_input(self, X, y, incremental, reset):
        X, y = validate_data(self, X, y, accept_sparse=["csr", "csc"], multi_output=True,
                             y_numeric=True, dtype=(np.float64, np.float32), reset=reset)
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        if self.loss == "poisson" and (y < 0).any():
            raise ValueError(f"y must be >= 0 (counts or rates) for loss='poisson', got a "
                             f"minimum of {y.min()}")
        return X, y

    def _predictions(self, outputs: np.ndarray) -> np.ndarray:
        """The network's outputs through the output function (exp for poisson)."""
        if self.out_activation_ == "exp":
            with np.errstate(over="ignore"):  # a rate beyond the dtype's range is inf
                return np.exp(outputs)
        return outputs

    def _encode_target(self, y) -> np.ndarray:
        return np.ascontiguousarray(y, dtype=self._network.dtype)

    def _score_outputs(self, outputs, y, sample_weight) -> float:
        outputs = self._predictions(outputs)
        if not ops.all_finite(outputs):
            return np.nan
        pred = outputs.ravel() if outputs.shape[1] == 1 else outputs
        return r2_score(y.ravel() if pred.ndim == 1 else y, pred, sample_weight=sample_weight)

    def predict(self, X):
        """Predict using the network.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)

        Returns
        -------
        y : ndarray of shape (n_samples,) or (n_samples, n_outputs)
        """
        check_is_fitted(self)
        y = self._predictions(self._outputs(X))
        return y.ravel() if y.shape[1] == 1 else y

    def partial_fit(self, X, y, sample_weight=None):
        _stochastic_only(self)
        """One epoch over (X, y), continuing from the current state.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
        sample_weight : array-like of shape (n_samples,), default=None

        Returns
        -------
        self : object
        """
        self._validate_params()
        return self._fit(X, y, sample_weight=sample_weight, incremental=True)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        tags.target_tags.positive_only = self.loss == "poisson"
        return tags


_SKLEARN_VERSION = tuple(int(p) for p in sklearn.__version__.split(".")[:2] if p.isdigit())
if _SKLEARN_VERSION < (1, 6):  # pragma: no cover
    raise ImportError(f"pynn.sklearn needs scikit-learn >= 1.6, found {sklearn.__version__}")
