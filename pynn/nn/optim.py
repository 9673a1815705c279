"""Optimizers over one flat parameter buffer, and learning-rate schedules.

A model's weights and biases are views into one contiguous buffer, and so are its gradients;
an optimizer keeps its state (momentum velocity, Adam moments) as buffers of the same size, so
each step is a single fused kernel call (`pynn.ops.sgd_step` / `pynn.ops.adam_step`) over all
parameters at once.

The learning rate is a number or a schedule: any callable ``lr(epoch) -> float`` of the epoch
index (0-based, counted over every `fit` call with this optimizer), e.g. `Cosine`, `StepDecay`,
or a plain function. It is evaluated once per epoch.
"""
from __future__ import annotations

import math
import weakref
from typing import Callable, Union

import numpy as np

from .. import ops

__all__ = ["LBFGS", "SGD", "Adagrad", "Adam", "Constant", "Cosine", "Optimizer", "RMSprop",
           "Schedule", "StepDecay", "Warmup", "get"]

LearningRate = Union[float, Callable[[int], float]]


def _real(value: object, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    return value


def _positive(value: object, name: str) -> float:
    value = _real(value, name)
    if value <= 0:
        raise ValueError(f"{name} must be > 0, got {value:g}")
    return value


def _unit_interval(value: object, name: str) -> float:
    value = _real(value, name)
    if not 0.0 <= value < 1.0:
        raise ValueError(f"{name} must be in [0, 1), got {value:g}")
    return value


def _non_negative(value: object, name: str) -> float:
    value = _real(value, name)
    if value < 0:
        raise ValueError(f"{name} must be >= 0, got {value:g}")
    return value


def _per(per: object) -> str:
    if per not in ("epoch", "step"):
        raise ValueError(f"per must be 'epoch' or 'step', got {per!r}")
    return per


# ---- schedules ---------------------------------------------------------------------------------
class Schedule:
    """A learning rate as a function of the epoch index (0-based), or of the step index when
    ``per == "step"`` (then evaluated before every update)."""

    per = "epoch"

    def __call__(self, epoch: int) -> float:
        raise NotImplementedError

    def get_config(self) -> dict:
        raise NotImplementedError

    def __repr__(self) -> str:
        try:
            config = self.get_config()
        except NotImplementedError:  # a user's schedule without a config
            return f"{type(self).__name__}()"
        args = ", ".join(f"{k}={v!r}" for k, v in config.items() if k != "name")
        return f"{type(self).__name__}({args})"

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other) and self.get_config() == other.get_config()

    def __hash__(self) -> int:
        return hash(repr(self))


class Constant(Schedule):
    """The same learning rate every epoch."""

    def __init__(self, lr: float) -> None:
        self.lr = _positive(lr, "lr")

    def __call__(self, epoch: int) -> float:
        return self.lr

    def get_config(self) -> dict:
        return {"name": "constant", "lr": self.lr}


class StepDecay(Schedule):
    """lr · gamma^(epoch // step_size): divide the rate every `step_size` epochs."""

    def __init__(self, lr: float, step_size: int, gamma: float = 0.1, per: str = "epoch") -> None:
        self.per = _per(per)
        self.lr = _positive(lr, "lr")
        if isinstance(step_size, bool) or not isinstance(step_size, (int, np.integer)):
            raise TypeError(f"step_size must be an int, got {type(step_size).__name__}")
        if step_size < 1:
            raise ValueError(f"step_size must be >= 1, got {step_size}")
        self.step_size = int(step_size)
        self.gamma = _positive(gamma, "gamma")

    def __call__(self, epoch: int) -> float:
        return self.lr * self.gamma ** (epoch // self.step_size)

    def get_config(self) -> dict:
        config = {"name": "step", "lr": self.lr, "step_size": self.step_size,
                  "gamma": self.gamma}
        if self.per != "epoch":
            config["per"] = self.per
        return config


class Cosine(Schedule):
    """Cosine annealing from lr towards min_lr over `epochs` epochs.

    lr(e) = min_lr + (lr - min_lr) · (1 + cos(π · e / epochs)) / 2 for e < epochs; later epochs
    keep the last value lr(epochs - 1) (so the rate never reaches an invalid 0).
    """

    def __init__(self, lr: float, epochs: int, min_lr: float = 0.0, per: str = "epoch") -> None:
        self.per = _per(per)
        self.lr = _positive(lr, "lr")
        if isinstance(epochs, bool) or not isinstance(epochs, (int, np.integer)):
            raise TypeError(f"epochs must be an int, got {type(epochs).__name__}")
        if epochs < 1:
            raise ValueError(f"epochs must be >= 1, got {epochs}")
        self.epochs = int(epochs)
        self.min_lr = _non_negative(min_lr, "min_lr")
        if self.min_lr > self.lr:
            raise ValueError(f"min_lr must be <= lr, got min_lr={self.min_lr:g} > "
                             f"lr={self.lr:g}")

    def __call__(self, epoch: int) -> float:
        epoch = min(epoch, self.epochs - 1)
        return self.min_lr + (self.lr - self.min_lr) * 0.5 * (1 + math.cos(math.pi * epoch
                                                                           / self.epochs))

    def get_config(self) -> dict:
        config = {"name": "cosine", "lr": self.lr, "epochs": self.epochs, "min_lr": self.min_lr}
        if self.per != "epoch":
            config["per"] = self.per
        return config


class Warmup(Schedule):
    """Linear warm-up over the first `steps` updates, then `after` (a number, or a schedule of
    the step index): ``lr(t) = after(t) * (start + (1 - start) * (t + 1) / steps)`` for
    t < steps. Evaluated per step.

    Parameters
    ----------
    after : float or Schedule
        The rate once warm (a per-step schedule, e.g. ``Cosine(0.1, epochs=10000, per="step")``,
        is read at the same step index).
    steps : int
        Updates the warm-up lasts (>= 1).
    start : float, default 0
        Fraction of the rate at which it starts, in [0, 1).
    """

    per = "step"

    def __init__(self, after: float | Schedule, steps: int, start: float = 0.0) -> None:
        if isinstance(after, Schedule):
            if after.per != "step":
                raise ValueError("Warmup runs per step: give it a number or a schedule with "
                                 "per='step'")
            self.after = after
        else:
            self.after = _positive(after, "after")
        if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 1:
            raise ValueError(f"steps must be an int >= 1, got {steps!r}")
        self.steps = int(steps)
        self.start = _unit_interval(start, "start")

    def __call__(self, step: int) -> float:
        base = self.after(step) if callable(self.after) else self.after
        if step >= self.steps:
            return base
        return base * (self.start + (1.0 - self.start) * (step + 1) / self.steps)

    def get_config(self) -> dict:
        after = self.after.get_config() if isinstance(self.after, Schedule) else self.after
        return {"name": "warmup", "after": after, "steps": self.steps, "start": self.start}


_SCHEDULES = {"constant": Constant, "step": StepDecay, "cosine": Cosine, "warmup": Warmup}


def schedule_from_config(config: dict) -> Schedule:
    config = dict(config)
    name = config.pop("name", None)
    if name not in _SCHEDULES:
        raise ValueError(f"unknown learning-rate schedule {name!r}")
    if isinstance(config.get("after"), dict):
        config["after"] = schedule_from_config(config["after"])
    return _SCHEDULES[name](**config)


def _learning_rate(lr: object) -> LearningRate:
    if callable(lr):
        return lr
    return _positive(lr, "lr")


# ---- optimizers --------------------------------------------------------------------------------
class Optimizer:
    """Base class: state buffers bound to one model's flat parameter buffer.

    Every optimizer takes ``clipnorm=`` (scale the whole gradient to an L2 norm of at most
    this, the norm over the flat buffer) and ``clipvalue=`` (clip each entry to
    [-clipvalue, clipvalue]), applied before its update, clipvalue first; both > 0.

    Attributes
    ----------
    epoch : int
        Epochs completed with this optimizer (the schedule's argument); kept across `fit` calls.
    iterations : int
        Steps taken.
    """

    name = "optimizer"
    _state_names: tuple[str, ...] = ()

    def __init__(self, lr: LearningRate) -> None:
        self.lr = _learning_rate(lr)
        self.epoch = 0
        self.iterations = 0
        self._state: dict[str, np.ndarray] = {}
        self._owner: weakref.ref | None = None
        self._current_lr: float | None = None

    # -- binding to a model's buffers -------------------------------------------------------
    @property
    def state_names(self) -> tuple[str, ...]:
        """Names of the state buffers (each the size of the flat parameter buffer)."""
        return self._state_names

    def bind(self, owner: object, n_params: int, dtype: np.dtype) -> None:
        """Hold state for `owner`'s flat parameter buffer of `n_params` entries of `dtype`.

        State already bound to `owner`, or loaded (`load_state_dict`) with the same layout, is
        kept; an optimizer bound to another live model raises ValueError.
        """
        current = self._owner() if self._owner is not None else None
        if current is not None and current is not owner:
            # even without state buffers: the epoch count (the schedule's argument) and the
            # step count are one model's
            raise ValueError("this optimizer already serves another model; give each model "
                             "its own optimizer instance")
        if self._state:
            first = next(iter(self._state.values()))
            if first.shape == (n_params,) and first.dtype == dtype:
                self._owner = weakref.ref(owner)
                return
        self._state = {name: np.zeros(n_params, dtype=dtype) for name in self._state_names}
        self._owner = weakref.ref(owner)

    def release(self) -> None:
        """Forget the owning model (its state arrays are kept): a copy may bind elsewhere."""
        self._owner = None

    # -- checkpoints (the engine's divergence guard) -------------------------------------------
    def save_checkpoint(self) -> None:
        """Copy the state into preallocated buffers (no allocation after the first call)."""
        ckpt = getattr(self, "_checkpoint", None)
        if ckpt is None or ckpt.keys() != self._state.keys() or any(
                ckpt[k].shape != v.shape or ckpt[k].dtype != v.dtype
                for k, v in self._state.items()):
            ckpt = self._checkpoint = {k: np.empty_like(v) for k, v in self._state.items()}
        for k, v in self._state.items():
            np.copyto(ckpt[k], v)
        self._checkpoint_iterations = self.iterations

    def restore_checkpoint(self) -> None:
        """Back to the state of the last `save_checkpoint`."""
        for k, v in self._state.items():
            np.copyto(v, self._checkpoint[k])
        self.iterations = self._checkpoint_iterations

    def state_finite(self) -> bool:
        """No NaN or inf in the state buffers."""
        return all(ops.all_finite(v) for v in self._state.values())

    def reset(self) -> None:
        """Zero the state (momentum, moments) and the step counter; the epoch count is kept."""
        for buf in self._state.values():
            buf.fill(0)
        self.iterations = 0

    # -- learning rate -----------------------------------------------------------------------
    @property
    def per_step(self) -> bool:
        """Whether the learning rate is a schedule of the step index (evaluated every step)."""
        return getattr(self.lr, "per", "epoch") == "step"

    def learning_rate(self, epoch: int | None = None) -> float:
        """The learning rate at `epoch` (default: the current epoch; for a per-step schedule,
        the step index, default the next step), validated."""
        if epoch is None:
            epoch = self.iterations if self.per_step else self.epoch
        if not callable(self.lr):
            return self.lr
        value = self.lr(epoch)
        try:
            value = float(value)
        except (TypeError, ValueError):
            raise TypeError(f"the learning-rate schedule returned {type(value).__name__} at "
                            f"epoch {epoch}; it must return a number") from None
        if not math.isfinite(value) or value <= 0:
            raise ValueError(f"the learning-rate schedule returned {value} at epoch {epoch}; "
                             f"it must be a finite number > 0")
        return value

    def begin_epoch(self) -> float:
        """Fix the learning rate of the epoch about to run (the schedule's value); returns it.
        A per-step schedule is read again before every step (this is its first value)."""
        self._current_lr = None if self.per_step else self.learning_rate(self.epoch)
        return self.learning_rate()

    def _step_lr(self) -> float:
        return self._current_lr if self._current_lr is not None else self.learning_rate()

    def end_epoch(self) -> None:
        self.epoch += 1

    # -- the step ----------------------------------------------------------------------------
    def step(self, params: np.ndarray, grads: np.ndarray) -> None:
        """One in-place update of the flat `params` from the flat `grads`."""
        raise NotImplementedError

    # -- gradient clipping (clipnorm=, clipvalue= of every optimizer) --------------------------
    clipnorm: float | None = None
    clipvalue: float | None = None

    def _set_clipping(self, clipnorm: object, clipvalue: object) -> None:
        self.clipnorm = None if clipnorm is None else _positive(clipnorm, "clipnorm")
        self.clipvalue = None if clipvalue is None else _positive(clipvalue, "clipvalue")

    def _clip(self, grads: np.ndarray) -> np.ndarray:
        """`grads` clipped in place: each entry to [-clipvalue, clipvalue], then the whole
        buffer scaled to an L2 norm of at most clipnorm (the norm from a fixed-order C
        reduction: the same at any thread count)."""
        if self.clipvalue is not None:
            np.clip(grads, -self.clipvalue, self.clipvalue, out=grads)
        if self.clipnorm is not None:
            norm = math.sqrt(ops.l2_penalty(grads))
            if norm > self.clipnorm:  # a NaN norm is left to the divergence guard
                grads *= grads.dtype.type(self.clipnorm / norm)
        return grads

    def _clip_config(self) -> dict:
        config = {}
        if self.clipnorm is not None:
            config["clipnorm"] = self.clipnorm
        if self.clipvalue is not None:
            config["clipvalue"] = self.clipvalue
        return config

    # -- config and state (save/load, pickling) ---------------------------------------------
    def get_config(self) -> dict:
        lr = self.lr.get_config() if isinstance(self.lr, Schedule) else self.lr
        if callable(lr):
            raise TypeError("this optimizer's learning rate is a plain callable, which cannot "
                             "be saved as JSON; use a pynn.optim schedule (Constant, StepDecay, "
                             "Cosine) or pickle the model")
        return {"name": self.name, "lr": lr}

    def state_arrays(self) -> dict[str, np.ndarray]:
        """The state buffers by name (the arrays themselves, not copies)."""
        return dict(self._state)

    def state_dict(self) -> dict:
        """The training state: ``{"epoch", "iterations", "buffers": {name: copy}}``."""
        return {"epoch": self.epoch, "iterations": self.iterations,
                "buffers": {k: v.copy() for k, v in self._state.items()}}

    def load_state_dict(self, state: dict) -> None:
        """Restore what `state_dict` returned (checked first; nothing changes on error).

        The buffers are bound to the model this optimizer is next used with (same layout).
        """
        if not isinstance(state, dict):
            raise TypeError(f"state must be a dict from state_dict(), got {type(state).__name__}")
        missing = {"epoch", "iterations", "buffers"} - state.keys()
        if missing:
            raise ValueError(f"state is missing {sorted(missing)}")
        epoch, iterations, buffers = state["epoch"], state["iterations"], state["buffers"]
        for name, value in (("epoch", epoch), ("iterations", iterations)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
                raise ValueError(f"state[{name!r}] must be an int >= 0, got {value!r}")
        if not isinstance(buffers, dict) or set(buffers) != set(self._state_names):
            raise ValueError(f"state['buffers'] must hold {list(self._state_names)}, got "
                             f"{sorted(buffers) if isinstance(buffers, dict) else buffers!r}")
        arrays = {name: np.array(buffers[name]) for name in self._state_names}
        shapes = {a.shape for a in arrays.values()}
        dtypes = {a.dtype for a in arrays.values()}
        if arrays and (len(shapes) != 1 or len(dtypes) != 1 or len(next(iter(shapes))) != 1
                       or next(iter(dtypes)) not in (np.float32, np.float64)):
            raise ValueError("state['buffers'] must be 1-D float32 or float64 arrays of one "
                             "size and dtype")
        for name, a in arrays.items():
            if not ops.all_finite(a):
                raise ValueError(f"state['buffers'][{name!r}] contains NaN or inf")
        current = self._owner() if self._owner is not None else None
        if arrays and current is not None:
            live = next(iter(self._state.values()), None)
            if live is None or live.shape != next(iter(shapes)) or live.dtype != next(iter(dtypes)):
                raise ValueError("state['buffers'] do not match the parameters of the model "
                                 "this optimizer is bound to")
        self._state = arrays
        self.epoch, self.iterations = int(epoch), int(iterations)

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_owner"] = None  # re-bound by the model that unpickles it
        state.pop("_checkpoint", None)
        return state

    def __repr__(self) -> str:
        config = {k: v for k, v in self._public_config().items()}
        return f"{type(self).__name__}(" + ", ".join(f"{k}={v!r}" for k, v in
                                                     config.items()) + ")"

    def _public_config(self) -> dict:
        return {"lr": self.lr}


class SGD(Optimizer):
    """Stochastic gradient descent with classical momentum.

    ``v ← momentum·v − lr·(g + weight_decay·θ);  θ ← θ + v`` (momentum 0 is plain SGD;
    the source material's ``Δθ ← αΔθ − η∇L(θ); θ ← θ + Δθ``). With ``nesterov=True`` the
    update looks ahead: ``θ ← θ + momentum·v − lr·g``.

    Parameters
    ----------
    lr : float or callable
        Learning rate > 0, or a schedule ``lr(epoch)``.
    momentum : float, default 0
        In [0, 1).
    nesterov : bool, default False
        Nesterov momentum (needs momentum > 0).
    weight_decay : float, default 0
        L2 penalty coefficient (>= 0), applied to every parameter, biases included.
    """

    name = "sgd"

    def __init__(self, lr: LearningRate = 0.01, momentum: float = 0.0, nesterov: bool = False,
                 weight_decay: float = 0.0, *, clipnorm: float | None = None,
                 clipvalue: float | None = None) -> None:
        super().__init__(lr)
        self._set_clipping(clipnorm, clipvalue)
        self.momentum = _unit_interval(momentum, "momentum")
        if not isinstance(nesterov, (bool, np.bool_)):
            raise TypeError(f"nesterov must be a bool, got {type(nesterov).__name__}")
        if nesterov and self.momentum == 0:
            raise ValueError("nesterov=True needs momentum > 0")
        self.nesterov = bool(nesterov)
        self.weight_decay = _non_negative(weight_decay, "weight_decay")

    @property
    def _state_names(self) -> tuple[str, ...]:
        return ("velocity",) if self.momentum > 0 else ()

    def step(self, params: np.ndarray, grads: np.ndarray) -> None:
        lr = self._step_lr()
        grads = self._clip(grads)
        ops.sgd_step(params, grads, self._state.get("velocity"), lr=lr,
                     momentum=self.momentum, nesterov=self.nesterov,
                     weight_decay=self.weight_decay)
        self.iterations += 1

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(momentum=self.momentum, nesterov=self.nesterov,
                      weight_decay=self.weight_decay)
        config.update(self._clip_config())
        return config

    def _public_config(self) -> dict:
        config = {"lr": self.lr, "momentum": self.momentum}
        if self.nesterov:
            config["nesterov"] = True
        if self.weight_decay:
            config["weight_decay"] = self.weight_decay
        config.update(self._clip_config())
        return config


class Adam(Optimizer):
    """Adam (Kingma & Ba 2015) with bias correction.

    Parameters
    ----------
    lr : float or callable, default 1e-3
        Learning rate > 0, or a schedule ``lr(epoch)``.
    betas : (float, float), default (0.9, 0.999)
        Decay rates of the first and second moment estimates, each in [0, 1).
    eps : float, default 1e-8
        Added to the denominator (> 0).
    weight_decay : float, default 0
        Decoupled weight decay (AdamW, >= 0): ``θ ← θ − lr·weight_decay·θ`` besides the Adam
        step, as in `pynn.ops.adam_step`.
    epsilon_hat : bool, default False
        Where eps sits. False: PyTorch's (and Algorithm 1 of the paper) ``m̂ / (sqrt(v̂) + eps)``.
        True: the paper's ε̂ of its section 2, as TensorFlow/Keras and scikit-learn's MLP put
        it: ``lr·sqrt(1−β2^t)/(1−β1^t) · m / (sqrt(v) + eps)``, i.e. PyTorch's update with
        ``eps / sqrt(1−β2^t)``.
    """

    name = "adam"
    _state_names = ("m", "v")

    def __init__(self, lr: LearningRate = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.0,
                 epsilon_hat: bool = False, *, clipnorm: float | None = None,
                 clipvalue: float | None = None) -> None:
        super().__init__(lr)
        self._set_clipping(clipnorm, clipvalue)
        if not isinstance(epsilon_hat, (bool, np.bool_)):
            raise TypeError(f"epsilon_hat must be a bool, got {type(epsilon_hat).__name__}")
        self.epsilon_hat = bool(epsilon_hat)
        try:
            beta1, beta2 = betas
        except (TypeError, ValueError):
            raise TypeError(f"betas must be a pair (beta1, beta2), got {betas!r}") from None
        self.betas = (_unit_interval(beta1, "betas[0]"), _unit_interval(beta2, "betas[1]"))
        self.eps = _positive(eps, "eps")
        self.weight_decay = _non_negative(weight_decay, "weight_decay")

    def step(self, params: np.ndarray, grads: np.ndarray) -> None:
        lr = self._step_lr()
        grads = self._clip(grads)
        self.iterations += 1
        eps = self.eps
        if self.epsilon_hat:
            eps /= math.sqrt(1.0 - self.betas[1] ** self.iterations)
        ops.adam_step(params, grads, self._state["m"], self._state["v"], step=self.iterations,
                      lr=lr, beta1=self.betas[0], beta2=self.betas[1], eps=eps,
                      weight_decay=self.weight_decay)

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(betas=list(self.betas), eps=self.eps, weight_decay=self.weight_decay)
        if self.epsilon_hat:
            config["epsilon_hat"] = True
        config.update(self._clip_config())
        return config

    def _public_config(self) -> dict:
        config = {"lr": self.lr, "betas": self.betas, "eps": self.eps}
        if self.weight_decay:
            config["weight_decay"] = self.weight_decay
        if self.epsilon_hat:
            config["epsilon_hat"] = True
        config.update(self._clip_config())
        return config


class RMSprop(Optimizer):
    """RMSprop (Hinton), PyTorch's definition (``torch.optim.RMSprop``), one fused pass.

    ``g ← ∇L + weight_decay·θ;  v ← α·v + (1−α)·g²;  θ ← θ − lr·g / (sqrt(v) + eps)``; with
    ``centered=True`` the variance ``v − ḡ²`` (ḡ the running mean of g) replaces v, and with
    momentum the step goes through a buffer ``b ← μ·b + g / (sqrt(v) + eps); θ ← θ − lr·b``.

    Parameters
    ----------
    lr : float or callable, default 1e-2
        Learning rate > 0, or a schedule.
    alpha : float, default 0.99
        Smoothing constant of the squared-gradient average, in [0, 1).
    eps : float, default 1e-8
        Added to the denominator (> 0).
    weight_decay : float, default 0
        L2 penalty added to the gradient (>= 0).
    momentum : float, default 0
        In [0, 1).
    centered : bool, default False
        Normalise by the gradient's estimated variance instead of its second moment.
    """

    name = "rmsprop"

    def __init__(self, lr: LearningRate = 1e-2, alpha: float = 0.99, eps: float = 1e-8,
                 weight_decay: float = 0.0, momentum: float = 0.0,
                 centered: bool = False, *, clipnorm: float | None = None,
                 clipvalue: float | None = None) -> None:
        super().__init__(lr)
        self._set_clipping(clipnorm, clipvalue)
        self.alpha = _unit_interval(alpha, "alpha")
        self.eps = _positive(eps, "eps")
        self.weight_decay = _non_negative(weight_decay, "weight_decay")
        self.momentum = _unit_interval(momentum, "momentum")
        if not isinstance(centered, (bool, np.bool_)):
            raise TypeError(f"centered must be a bool, got {type(centered).__name__}")
        self.centered = bool(centered)

    @property
    def _state_names(self) -> tuple[str, ...]:
        return (("square_avg",) + (("grad_avg",) if self.centered else ())
                + (("momentum_buffer",) if self.momentum > 0 else ()))

    def step(self, params: np.ndarray, grads: np.ndarray) -> None:
        lr = self._step_lr()
        grads = self._clip(grads)
        ops.rmsprop_step(params, grads, self._state["square_avg"], self._state.get("grad_avg"),
                         self._state.get("momentum_buffer"), lr=lr, alpha=self.alpha,
                         eps=self.eps, weight_decay=self.weight_decay, momentum=self.momentum)
        self.iterations += 1

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(alpha=self.alpha, eps=self.eps, weight_decay=self.weight_decay,
                      momentum=self.momentum, centered=self.centered)
        config.update(self._clip_config())
        return config

    def _public_config(self) -> dict:
        config = {"lr": self.lr, "alpha": self.alpha, "eps": self.eps}
        for name, default in (("weight_decay", 0.0), ("momentum", 0.0), ("centered", False)):
            if getattr(self, name) != default:
                config[name] = getattr(self, name)
        config.update(self._clip_config())
        return config


class Adagrad(Optimizer):
    """Adagrad (Duchi et al.), PyTorch's definition (``torch.optim.Adagrad``), one fused pass.

    ``g ← ∇L + weight_decay·θ;  s ← s + g²;  θ ← θ − lr_t·g / (sqrt(s) + eps)`` with
    ``lr_t = lr / (1 + (t−1)·lr_decay)`` at step t; s starts at ``initial_accumulator_value``.

    Parameters
    ----------
    lr : float or callable, default 1e-2
        Learning rate > 0, or a schedule.
    lr_decay : float, default 0
        >= 0.
    weight_decay : float, default 0
        L2 penalty added to the gradient (>= 0).
    initial_accumulator_value : float, default 0
        >= 0.
    eps : float, default 1e-10
        Added to the denominator (> 0).
    """

    name = "adagrad"
    _state_names = ("sum",)

    def __init__(self, lr: LearningRate = 1e-2, lr_decay: float = 0.0,
                 weight_decay: float = 0.0, initial_accumulator_value: float = 0.0,
                 eps: float = 1e-10, *, clipnorm: float | None = None,
                 clipvalue: float | None = None) -> None:
        super().__init__(lr)
        self._set_clipping(clipnorm, clipvalue)
        self.lr_decay = _non_negative(lr_decay, "lr_decay")
        self.weight_decay = _non_negative(weight_decay, "weight_decay")
        self.initial_accumulator_value = _non_negative(initial_accumulator_value,
                                                       "initial_accumulator_value")
        self.eps = _positive(eps, "eps")

    def bind(self, owner: object, n_params: int, dtype: np.dtype) -> None:
        before = self._state.get("sum")
        super().bind(owner, n_params, dtype)
        if self._state["sum"] is not before:  # new buffers (kept or loaded ones stay)
            self._state["sum"].fill(self.initial_accumulator_value)

    def reset(self) -> None:
        super().reset()
        for buf in self._state.values():
            buf.fill(self.initial_accumulator_value)

    def step(self, params: np.ndarray, grads: np.ndarray) -> None:
        lr = self._step_lr()
        grads = self._clip(grads)
        self.iterations += 1
        ops.adagrad_step(params, grads, self._state["sum"], step=self.iterations, lr=lr,
                         lr_decay=self.lr_decay, eps=self.eps, weight_decay=self.weight_decay)

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(lr_decay=self.lr_decay, weight_decay=self.weight_decay,
                      initial_accumulator_value=self.initial_accumulator_value, eps=self.eps)
        config.update(self._clip_config())
        return config

    def _public_config(self) -> dict:
        config = {"lr": self.lr}
        for name, default in (("lr_decay", 0.0), ("weight_decay", 0.0),
                              ("initial_accumulator_value", 0.0)):
            if getattr(self, name) != default:
                config[name] = getattr(self, name)
        config["eps"] = self.eps
        config.update(self._clip_config())
        return config


class LBFGS(Optimizer):
    """Full-batch L-BFGS (scipy's L-BFGS-B, as scikit-learn's ``solver="lbfgs"``).

    ``model.fit(X, y, optimizer=pynn.optim.LBFGS(), epochs=N)`` runs up to N iterations over the
    whole data (batch_size and shuffle do not apply); every iteration is an "epoch" for the
    history and the callbacks.

    Parameters
    ----------
    tol : float, default 1e-5
        Stop when the largest gradient component falls below it (scipy's ``gtol``).
    max_fun : int, default 15000
        Most evaluations of the loss and its gradient (one forward and backward each).
    """

    name = "lbfgs"

    def __init__(self, tol: float = 1e-5, max_fun: int = 15000) -> None:
        super().__init__(1.0)
        self.tol = _positive(tol, "tol")
        if isinstance(max_fun, bool) or not isinstance(max_fun, (int, np.integer)) \
                or max_fun < 1:
            raise ValueError(f"max_fun must be an int >= 1, got {max_fun!r}")
        self.max_fun = int(max_fun)

    def step(self, params: np.ndarray, grads: np.ndarray) -> None:
        raise TypeError("L-BFGS takes whole full-batch fits, not single steps: pass it to "
                        "fit(optimizer=...)")

    def get_config(self) -> dict:
        return {"name": self.name, "tol": self.tol, "max_fun": self.max_fun}

    def _public_config(self) -> dict:
        return {"tol": self.tol, "max_fun": self.max_fun}


OPTIMIZERS = {"sgd": SGD, "adam": Adam, "rmsprop": RMSprop, "adagrad": Adagrad, "lbfgs": LBFGS}


def get(optimizer: str | Optimizer | dict) -> Optimizer:
    """An Optimizer from a name ("sgd", "adam": default hyperparameters), config or instance."""
    if isinstance(optimizer, Optimizer):
        return optimizer
    if isinstance(optimizer, str):
        if optimizer.lower() in OPTIMIZERS:
            return OPTIMIZERS[optimizer.lower()]()
        raise ValueError(f"optimizer must be one of {sorted(OPTIMIZERS)} or a pynn.Optimizer, "
                         f"got {optimizer!r}")
    if isinstance(optimizer, dict):
        config = dict(optimizer)
        name = config.pop("name", None)
        if name not in OPTIMIZERS:
            raise ValueError(f"unknown optimizer {name!r}")
        if isinstance(config.get("lr"), dict):
            config["lr"] = schedule_from_config(config["lr"])
        if "betas" in config:
            config["betas"] = tuple(config["betas"])
        return OPTIMIZERS[name](**config)
    raise TypeError(f"optimizer must be a name or a pynn.Optimizer instance, got "
                    f"{type(optimizer).__name__}")
