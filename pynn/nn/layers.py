"""Layers. A Dense layer is ``y = act(x · W + b)`` with W of shape (in × out).

A layer on its own only describes itself; a `pynn.Sequential` model owns the numbers: it
allocates one flat parameter buffer and hands each layer views into it (``W``, ``b``) and into
the flat gradient buffer (``dW``, ``db``). Activations are fused into the matrix-multiply kernel
(`pynn.ops.linear`); the backward computes their derivative from the layer's OUTPUT, so the
forward keeps only outputs.
"""
from __future__ import annotations

import math

import numpy as np

from .. import ops
from . import init as _init

__all__ = ["ACTIVATIONS", "HIDDEN_ACTIVATIONS", "TRAINABLE_ACTIVATIONS", "Dense", "Input"]

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


class Dense:
    """A fully connected layer ``act(x · W + b)``.

    Parameters
    ----------
    in_features, out_features : int
        Sizes of the input and output (W has shape (in_features, out_features)). With one size
        (Keras' ``Dense(units)``: ``Dense(64, activation="relu")`` or ``Dense(64, "relu")``) it
        is the output size, and the input size comes from the layer before or, for the first
        layer, from `pynn.Input` or the first data the model sees.
    activation : str, default "identity"
        One of identity, relu, leaky_relu, sigmoid, tanh, softmax, step (forward-only).
        Fused into the matrix-multiply kernel.
    alpha : float, default 0.01
        Negative slope of leaky_relu.
    init : str, Initializer or callable, optional
        Weight initialiser (``pynn.init``): he_normal by default after relu/leaky_relu,
        glorot_uniform otherwise. Biases start at zero.

    Attributes
    ----------
    W, b : ndarray
        Views into the owning model's flat parameter buffer (assignable: ``layer.W = array``
        copies into the view). Available once the layer is part of a `Sequential`.
    dW, db : ndarray
        The matching views into the model's flat gradient buffer.
    """

    def __init__(self, in_features: int | None = None, out_features: int | str | None = None,
                 activation: str = "identity", *, units: int | None = None,
                 alpha: float = 0.01, init: _init.InitLike = None) -> None:
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
        self._W: np.ndarray | None = None
        self._b: np.ndarray | None = None
        self._dW: np.ndarray | None = None
        self._db: np.ndarray | None = None

    # -- sizes and config -------------------------------------------------------------------
    @property
    def n_params(self) -> int:
        """Number of parameters: in·out weights + out biases."""
        if self.in_features is None:
            raise ValueError(f"{self!r} does not know its input size yet (it comes from the "
                             f"layer before, pynn.Input, or the first data the model sees)")
        return self.in_features * self.out_features + self.out_features

    def build(self, in_features: int) -> None:
        """Fix the input size (once; a model calls this when it learns it)."""
        in_features = _positive_int(in_features, "in_features")
        if self.in_features is not None and self.in_features != in_features:
            raise ValueError(f"{self!r} takes {self.in_features} inputs, not {in_features}")
        self.in_features = in_features

    def get_config(self) -> dict:
        """A JSON-able description (used by save/load and repr)."""
        config = {"type": "Dense", "in_features": self.in_features,
                  "out_features": self.out_features, "activation": self.activation}
        if self.activation == "leaky_relu":
            config["alpha"] = self.alpha
        if isinstance(self.init, _init.Initializer):
            config["init"] = self.init.get_config()
        return config

    @classmethod
    def from_config(cls, config: dict) -> Dense:
        config = dict(config)
        kind = config.pop("type", "Dense")
        if kind != "Dense":
            raise ValueError(f"unknown layer type {kind!r}")
        return cls(config.pop("in_features", None), config.pop("out_features"),
                   config.pop("activation", "identity"), alpha=config.pop("alpha", 0.01),
                   init=config.pop("init", None))

    def __repr__(self) -> str:
        extra = f", alpha={self.alpha:g}" if self.activation == "leaky_relu" else ""
        sizes = (f"{self.out_features}" if self.in_features is None
                 else f"{self.in_features}, {self.out_features}")
        return f"Dense({sizes}, activation={self.activation!r}{extra})"

    # -- views bound by the owning model ------------------------------------------------------
    @property
    def is_bound(self) -> bool:
        """Whether a model has given this layer its views (W, b, dW, db)."""
        return self._W is not None

    def bind(self, params: np.ndarray, grads: np.ndarray, offset: int) -> int:
        """Point W, b, dW, db at the flat buffers starting at `offset`; returns the next offset.

        Called by the owning model when it allocates its buffers.
        """
        n_w = self.in_features * self.out_features
        shape = (self.in_features, self.out_features)
        self._W = params[offset:offset + n_w].reshape(shape)
        self._dW = grads[offset:offset + n_w].reshape(shape)
        offset += n_w
        self._b = params[offset:offset + self.out_features]
        self._db = grads[offset:offset + self.out_features]
        return offset + self.out_features

    def _unbound(self) -> AttributeError:
        return AttributeError("this Dense layer holds no parameters yet: its W and b live in "
                              "the flat buffer of the Sequential model it is part of")

    @property
    def W(self) -> np.ndarray:
        if self._W is None:
            raise self._unbound()
        return self._W

    @W.setter
    def W(self, value: np.ndarray) -> None:
        self._assign(self.W, value, "W")

    @property
    def b(self) -> np.ndarray:
        if self._b is None:
            raise self._unbound()
        return self._b

    @b.setter
    def b(self, value: np.ndarray) -> None:
        self._assign(self.b, value, "b")

    @property
    def dW(self) -> np.ndarray:
        if self._dW is None:
            raise self._unbound()
        return self._dW

    @property
    def db(self) -> np.ndarray:
        if self._db is None:
            raise self._unbound()
        return self._db

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

    def __getstate__(self) -> dict:
        # A pickled layer is its description; its numbers travel with the model's buffer.
        state = self.__dict__.copy()
        for key in ("_W", "_b", "_dW", "_db"):
            state[key] = None
        return state
