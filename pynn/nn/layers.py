"""Layers. A Dense layer is ``y = act(x · W + b)`` with W of shape (in × out); Activation,
Dropout, BatchNorm and LayerNorm keep the width of the layer before them.

A layer on its own only describes itself; a `pynn.Sequential` model owns the numbers: it
allocates one flat parameter buffer and hands each layer views into it (``W``, ``b``; ``gamma``,
``beta``) and into the flat gradient buffer (``dW``, ``db``; ``dgamma``, ``dbeta``). Running
statistics (BatchNorm's) are the layer's own arrays, saved with the model but not trained.
Activations are fused into the matrix-multiply kernel (`pynn.ops.linear`); the backward computes
their derivative from the layer's OUTPUT, so the forward keeps only outputs. The engine
(`pynn.engine.network`) runs each kind of layer forward and backward.
"""
from __future__ import annotations

import math

import numpy as np

from .. import ops
from . import init as _init

__all__ = ["ACTIVATIONS", "HIDDEN_ACTIVATIONS", "LAYERS", "TRAINABLE_ACTIVATIONS", "Activation",
           "BatchNorm", "Dense", "Dropout", "Input", "Layer", "LayerNorm", "layer_from_config"]

#: Activations a Dense layer accepts (the C core's table, `pynn.ops.ACTIVATIONS`). ``step`` (the
#: perceptron's) has no useful derivative and is forward-only: a model containing it predicts
#: but refuses to train.
ACTIVATIONS = ops.ACTIVATIONS
TRAINABLE_ACTIVATIONS = tuple(a for a in ACTIVATIONS if a not in ops.FORWARD_ONLY_ACTIVATIONS)
#: Activations for hidden layers (softmax is an output function, fused into the losses).
HIDDEN_ACTIVATIONS = tuple(a for a in TRAINABLE_ACTIVATIONS if a != "softmax")


def _positive_int(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < 1:
        raise ValueError(f"{name} must be >= 1, got {value}")
    return int(value)


class Input:
    """The input size, as the first entry of a model (Keras' ``Input(shape=(784,))``):
    ``Sequential([pynn.Input(784), pynn.Dense(64, activation="relu"), pynn.Dense(10)])``."""

    def __init__(self, features: int) -> None:
        self.features = _positive_int(features, "features")

    def __repr__(self) -> str:
        return f"Input({self.features})"


def _finite_at_least_zero(value: object, name: str, where: str) -> float:
    if isinstance(value, (bool, str, bytes)) or not isinstance(value, (int, float, np.integer,
                                                                       np.floating)):
        raise TypeError(f"{where}: {name} must be a real number, got {type(value).__name__}")
    value = float(value)
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{where}: {name} must be a finite number >= 0, got {value}")
    return value


class Layer:
    """Base class: sizes, the views a model binds, and the description save/load uses.

    Subclasses name their trainable arrays in `param_shapes` (views into the model's flat
    buffers, bound in that order) and their other saved arrays in `state_names`.
    """

    #: The layer keeps the width of its input (Activation, Dropout, the normalizations).
    same_width = False

    def __init__(self) -> None:
        self.in_features: int | None = None
        self.out_features: int | None = None
        self._views: dict | None = None

    # -- sizes --------------------------------------------------------------------------------
    def build(self, in_features: int) -> None:
        """Fix the input size (once; a model calls this when it learns it)."""
        in_features = _positive_int(in_features, "in_features")
        if self.in_features is not None and self.in_features != in_features:
            raise ValueError(f"{self!r} takes {self.in_features} inputs, not {in_features}")
        self.in_features = in_features
        if self.same_width:
            self.out_features = in_features

    def param_shapes(self) -> list:
        """(name, shape) of the trainable arrays, in their order in the flat buffer."""
        return []

    @property
    def n_params(self) -> int:
        """Number of trainable parameters."""
        if self.in_features is None:
            raise ValueError(f"{self!r} does not know its input size yet (it comes from the "
                             f"layer before, pynn.Input, or the first data the model sees)")
        return sum(math.prod(shape) for _, shape in self.param_shapes())  # no int64 overflow

    # -- views bound by the owning model ------------------------------------------------------
    @property
    def is_bound(self) -> bool:
        """Whether a model has given this layer its views."""
        return self._views is not None

    def bind(self, params: np.ndarray, grads: np.ndarray, offset: int) -> int:
        """Point the trainable arrays and their gradients at the flat buffers from `offset`;
        returns the next offset. Called by the owning model when it allocates its buffers."""
        views = {}
        for name, shape in self.param_shapes():
            size = math.prod(shape)
            views[name] = params[offset:offset + size].reshape(shape)
            views["d" + name] = grads[offset:offset + size].reshape(shape)
            offset += size
        self._views = views
        self._bind_state(params.dtype)
        return offset

    def _bind_state(self, dtype: np.dtype) -> None:
        """Create the non-trained arrays (none by default)."""

    def reset_parameters(self, rng: np.random.Generator, where: str = "this layer") -> None:
        """Initial values of the trainable arrays (and state); `where` names the layer in
        errors."""

    def _view(self, name: str) -> np.ndarray:
        if self._views is None:
            raise AttributeError(f"this {type(self).__name__} layer holds no parameters yet: "
                                 f"they live in the flat buffer of the Sequential model it is "
                                 f"part of")
        return self._views[name]

    # -- saved state (not trained) ----------------------------------------------------------------
    #: Names of the arrays saved with the model besides the flat parameter buffer.
    state_names: tuple = ()

    def state_arrays(self) -> dict:
        """The non-trained arrays by name (the arrays themselves)."""
        return {name: getattr(self, name) for name in self.state_names}

    def weights(self) -> list:
        """Every array of this layer, trainable first (Keras' get_weights order)."""
        return [self._view(name) for name, _ in self.param_shapes()] + \
            list(self.state_arrays().values())

    # -- description --------------------------------------------------------------------------
    def get_config(self) -> dict:
        raise NotImplementedError

    def __getstate__(self) -> dict:
        # A pickled layer is its description; its numbers travel with the model's buffer.
        state = self.__dict__.copy()
        state["_views"] = None
        return state


class Dense(Layer):
    """A fully connected layer ``act(x · W + b)``.

    Parameters
    ----------
    in_features, out_features : int
        Sizes of the input and output (W has shape (in_features, out_features)). With one size
        (Keras' ``Dense(units)``: ``Dense(64, activation="relu")`` or ``Dense(64, "relu")``) it
        is the output size, and the input size comes from the layer before or, for the first
        layer, from `pynn.Input` or the first data the model sees.
    activation : str or None, default "identity"
        One of identity, relu, leaky_relu, sigmoid, tanh, softmax, step (forward-only); None
        (Keras' spelling) is identity. Fused into the matrix-multiply kernel.
    alpha : float, default 0.01
        Negative slope of leaky_relu.
    init : str, Initializer or callable, optional
        Weight initialiser (``pynn.init``): he_normal by default after relu/leaky_relu,
        glorot_uniform otherwise. Biases start at zero.
    l1, l2 : float, default 0
        Penalties on this layer's weights (not its bias), Keras' kernel regularizers: the loss
        gains ``l1·Σ|W| + l2·ΣW²`` (reported in it) and the gradient ``l1·sign(W) + 2·l2·W``.

    Attributes
    ----------
    W, b : ndarray
        Views into the owning model's flat parameter buffer (assignable: ``layer.W = array``
        copies into the view). Available once the layer is part of a `Sequential`.
    dW, db : ndarray
        The matching views into the model's flat gradient buffer.
    """

    def __init__(self, in_features: int | None = None, out_features: int | str | None = None,
                 activation: str | None = "identity", *, units: int | None = None,
                 alpha: float = 0.01, init: _init.InitLike = None, l1: float = 0.0,
                 l2: float = 0.0) -> None:
        super().__init__()
        if isinstance(out_features, str):  # Dense(64, "relu"): units, then the activation
            if activation != "identity":
                raise TypeError("activation given twice (as the second argument and by name)")
            out_features, activation = None, out_features
        if units is not None:
            if out_features is not None:
                raise TypeError("give the output size once: units= or out_features")
            out_features = units
        elif out_features is None:  # Dense(64): one size is the output size
            in_features, out_features = None, in_features
        if out_features is None:
            raise TypeError("Dense needs its output size: Dense(units) or Dense(in, out)")
        self.in_features = None if in_features is None else _positive_int(in_features,
                                                                           "in_features")
        self.out_features = _positive_int(out_features, "out_features")
        if activation is None:  # Keras' spelling of no activation
            activation = "identity"
        if not isinstance(activation, str):
            raise TypeError(f"activation must be a str, got {type(activation).__name__}")
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {list(ACTIVATIONS)}, "
                             f"got {activation!r}")
        self.activation = activation
        try:
            alpha = float(alpha)
        except (TypeError, ValueError):
            raise TypeError(f"alpha must be a real number, got {type(alpha).__name__}") from None
        if not math.isfinite(alpha) or alpha < 0:
            raise ValueError(f"alpha must be a finite number >= 0, got {alpha}")
        self.alpha = alpha
        self.init = _init.get(init, activation)
        self.l1 = _finite_at_least_zero(l1, "l1", "Dense")
        self.l2 = _finite_at_least_zero(l2, "l2", "Dense")

    # -- sizes and config -------------------------------------------------------------------
    def param_shapes(self) -> list:
        """W (in × out) then b (out)."""
        return [("W", (self.in_features, self.out_features)), ("b", (self.out_features,))]

    def reset_parameters(self, rng: np.random.Generator, where: str = "this layer") -> None:
        """W from the initialiser (drawn from `rng`), b zero."""
        W = np.asarray(self.init(self.in_features, self.out_features, rng))
        if W.shape != self.W.shape:
            raise ValueError(f"{where}'s init returned shape {W.shape}, expected {self.W.shape}")
        with np.errstate(over="ignore", invalid="ignore"):
            self.W[...] = W
        if not ops.all_finite(self.W):
            raise ValueError(f"{where}'s init {self.init!r} gave NaN or inf weights "
                             f"(in {self.W.dtype.name})")
        self.b[...] = 0

    def get_config(self) -> dict:
        """A JSON-able description (used by save/load and repr)."""
        config = {"type": "Dense", "in_features": self.in_features,
                  "out_features": self.out_features, "activation": self.activation}
        if self.activation == "leaky_relu":
            config["alpha"] = self.alpha
        if isinstance(self.init, _init.Initializer):
            config["init"] = self.init.get_config()
        if self.l1:
            config["l1"] = self.l1
        if self.l2:
            config["l2"] = self.l2
        return config

    @classmethod
    def from_config(cls, config: dict) -> Dense:
        config = dict(config)
        kind = config.pop("type", "Dense")
        if kind != "Dense":
            raise ValueError(f"unknown layer type {kind!r}")
        return cls(config.pop("in_features", None), config.pop("out_features"),
                   config.pop("activation", "identity"), alpha=config.pop("alpha", 0.01),
                   init=config.pop("init", None), l1=config.pop("l1", 0.0),
                   l2=config.pop("l2", 0.0))

    def __repr__(self) -> str:
        extra = f", alpha={self.alpha:g}" if self.activation == "leaky_relu" else ""
        extra += f", l1={self.l1:g}" if self.l1 else ""
        extra += f", l2={self.l2:g}" if self.l2 else ""
        sizes = (f"{self.out_features}" if self.in_features is None
                 else f"{self.in_features}, {self.out_features}")
        return f"Dense({sizes}, activation={self.activation!r}{extra})"

    # -- views bound by the owning model ------------------------------------------------------
    @property
    def W(self) -> np.ndarray:
        return self._view("W")

    @W.setter
    def W(self, value: np.ndarray) -> None:
        self._assign(self.W, value, "W")

    @property
    def b(self) -> np.ndarray:
        return self._view("b")

    @b.setter
    def b(self, value: np.ndarray) -> None:
        self._assign(self.b, value, "b")

    @property
    def dW(self) -> np.ndarray:
        return self._view("dW")

    @property
    def db(self) -> np.ndarray:
        return self._view("db")

    @staticmethod
    def _assign(view: np.ndarray, value: object, name: str) -> None:
        arr = np.asarray(value)
        if arr.shape != view.shape:
            raise ValueError(f"{name} must have shape {view.shape}, got {arr.shape}")
        if arr.dtype.kind not in "fiu":
            raise TypeError(f"{name} must be a real numeric array, got dtype {arr.dtype}")
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"{name} must be finite (it contains NaN or inf)")
        with np.errstate(over="ignore"):
            arr = arr.astype(view.dtype)
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"{name} overflows {view.dtype.name}")
        view[...] = arr



class _SameWidth(Layer):
    """A layer whose output has its input's width (`features`, optional: it comes from the
    layer before)."""

    same_width = True

    def __init__(self, features: int | None = None) -> None:
        super().__init__()
        if features is not None:
            self.in_features = self.out_features = _positive_int(features, "features")

    def build(self, in_features: int) -> None:
        in_features = _positive_int(in_features, "in_features")
        if self.in_features is not None and self.in_features != in_features:
            raise ValueError(f"{self!r} has {self.in_features} features but the layer before "
                             f"gives {in_features}")
        super().build(in_features)

    def _sizes(self) -> str:
        return "" if self.in_features is None else str(self.in_features)


class Activation(_SameWidth):
    """An activation on its own (Keras' ``Activation``): ``Dense(64), BatchNorm(),
    Activation("relu")``.

    Parameters
    ----------
    activation : str
        One of identity, relu, leaky_relu, sigmoid, tanh, softmax (row-wise).
    alpha : float, default 0.01
        Negative slope of leaky_relu.
    """

    def __init__(self, activation: str, *, alpha: float = 0.01,
                 features: int | None = None) -> None:
        super().__init__(features)
        if not isinstance(activation, str):
            raise TypeError(f"Activation: activation must be a str, got "
                            f"{type(activation).__name__}")
        if activation not in TRAINABLE_ACTIVATIONS:
            raise ValueError(f"Activation: activation must be one of "
                             f"{list(TRAINABLE_ACTIVATIONS)}, got {activation!r}")
        self.activation = activation
        self.alpha = _finite_at_least_zero(alpha, "alpha", "Activation")

    def get_config(self) -> dict:
        config = {"type": "Activation", "activation": self.activation,
                  "features": self.in_features}
        if self.activation == "leaky_relu":
            config["alpha"] = self.alpha
        return config

    def __repr__(self) -> str:
        extra = f", alpha={self.alpha:g}" if self.activation == "leaky_relu" else ""
        return f"Activation({self.activation!r}{extra})"


class Dropout(_SameWidth):
    """Inverted dropout: in `fit`, each unit is zeroed with probability `rate` and the kept ones
    are scaled by ``1 / (1 - rate)``; in `predict`, `evaluate` and calls, the identity.

    The mask of every step comes from a counter-based hash of (the fit's seed, the layer's
    position, the step, the element): a fit is bitwise the same at any thread count and from
    the same seed, and the backward regenerates the mask instead of storing it.

    Parameters
    ----------
    rate : float
        The fraction of units dropped, in [0, 1).
    """

    def __init__(self, rate: float, *, features: int | None = None) -> None:
        super().__init__(features)
        rate = _finite_at_least_zero(rate, "rate", "Dropout")
        if rate >= 1:
            raise ValueError(f"Dropout: rate must be in [0, 1), got {rate}")
        self.rate = rate

    def get_config(self) -> dict:
        return {"type": "Dropout", "rate": self.rate, "features": self.in_features}

    def __repr__(self) -> str:
        return f"Dropout({self.rate:g})"


def _norm_eps(eps: object, where: str) -> float:
    eps = _finite_at_least_zero(eps, "eps", where)
    if eps <= 0:
        raise ValueError(f"{where}: eps must be > 0, got {eps}")
    return eps


class _Normalization(_SameWidth):
    """Shared by BatchNorm and LayerNorm: a scale γ (ones) and shift β (zeros) per feature."""

    def param_shapes(self) -> list:
        return [("gamma", (self.in_features,)), ("beta", (self.in_features,))]

    def reset_parameters(self, rng: np.random.Generator, where: str = "this layer") -> None:
        self.gamma[...] = 1
        self.beta[...] = 0

    @property
    def gamma(self) -> np.ndarray:
        return self._view("gamma")

    @gamma.setter
    def gamma(self, value: np.ndarray) -> None:
        Dense._assign(self.gamma, value, "gamma")

    @property
    def beta(self) -> np.ndarray:
        return self._view("beta")

    @beta.setter
    def beta(self, value: np.ndarray) -> None:
        Dense._assign(self.beta, value, "beta")

    @property
    def dgamma(self) -> np.ndarray:
        return self._view("dgamma")

    @property
    def dbeta(self) -> np.ndarray:
        return self._view("dbeta")


class BatchNorm(_Normalization):
    """Batch normalization over the batch's rows, per feature (PyTorch's ``BatchNorm1d``).

    In `fit` each feature is normalized with the batch's mean and (biased) variance, then
    scaled by γ and shifted by β; the running statistics follow PyTorch's momentum:
    ``running = (1 − momentum)·running + momentum·batch`` (the unbiased variance). In `predict`
    and `evaluate` the running statistics are used. Training on a batch of one row is an error.

    Parameters
    ----------
    features : int, optional
        The width (default: the layer before's).
    momentum : float, default 0.1
        In (0, 1].
    eps : float, default 1e-5
        Added to the variance (> 0).

    Attributes
    ----------
    gamma, beta : ndarray
        Views into the model's flat parameter buffer.
    running_mean, running_var : ndarray
        Saved with the model (zeros and ones before training).
    batches_tracked : int
        Training batches seen (PyTorch's ``num_batches_tracked``).
    """

    state_names = ("running_mean", "running_var")

    def __init__(self, features: int | None = None, *, momentum: float = 0.1,
                 eps: float = 1e-5) -> None:
        super().__init__(features)
        momentum = _finite_at_least_zero(momentum, "momentum", "BatchNorm")
        if not 0 < momentum <= 1:
            raise ValueError(f"BatchNorm: momentum must be in (0, 1], got {momentum}")
        self.momentum = momentum
        self.eps = _norm_eps(eps, "BatchNorm")
        self.running_mean: np.ndarray | None = None
        self.running_var: np.ndarray | None = None
        self.batches_tracked = 0

    def _bind_state(self, dtype: np.dtype) -> None:
        if self.running_mean is None or self.running_mean.shape != (self.in_features,) or \
                self.running_mean.dtype != dtype:
            self.running_mean = np.zeros(self.in_features, dtype)
            self.running_var = np.ones(self.in_features, dtype)

    def reset_parameters(self, rng: np.random.Generator, where: str = "this layer") -> None:
        super().reset_parameters(rng, where)
        self.running_mean[...] = 0
        self.running_var[...] = 1
        self.batches_tracked = 0

    def get_config(self) -> dict:
        return {"type": "BatchNorm", "features": self.in_features, "momentum": self.momentum,
                "eps": self.eps}

    def __repr__(self) -> str:
        sizes = f"{self._sizes()}, " if self._sizes() else ""
        return f"BatchNorm({sizes}momentum={self.momentum:g}, eps={self.eps:g})"


class LayerNorm(_Normalization):
    """Layer normalization over each row's features (PyTorch's ``LayerNorm``), the same in
    training and inference, with a scale γ and shift β per feature.

    Parameters
    ----------
    features : int, optional
        The width (default: the layer before's).
    eps : float, default 1e-5
        Added to the variance (> 0).
    """

    def __init__(self, features: int | None = None, *, eps: float = 1e-5) -> None:
        super().__init__(features)
        self.eps = _norm_eps(eps, "LayerNorm")

    def get_config(self) -> dict:
        return {"type": "LayerNorm", "features": self.in_features, "eps": self.eps}

    def __repr__(self) -> str:
        sizes = f"{self._sizes()}, " if self._sizes() else ""
        return f"LayerNorm({sizes}eps={self.eps:g})"


#: Every layer type by the name its config carries.
LAYERS = {"Dense": Dense, "Activation": Activation, "Dropout": Dropout, "BatchNorm": BatchNorm,
          "LayerNorm": LayerNorm}


def layer_from_config(config: dict) -> Layer:
    """A new layer from the dict its `get_config` returned."""
    if not isinstance(config, dict):
        raise TypeError(f"a layer config must be a dict, got {type(config).__name__}")
    kind = config.get("type", "Dense")
    if kind not in LAYERS:
        raise ValueError(f"unknown layer type {kind!r} (pynn has {sorted(LAYERS)})")
    if kind == "Dense":
        return Dense.from_config(config)
    options = {k: v for k, v in config.items() if k != "type"}
    if kind == "Activation":
        return Activation(options.pop("activation"), **options)
    if kind == "Dropout":
        return Dropout(options.pop("rate"), **options)
    return LAYERS[kind](**options)
