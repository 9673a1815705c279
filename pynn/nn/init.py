"""Weight initialisers: seeded draws of a layer's (in × out) weight matrix.

Every initialiser is a small callable object ``init(fan_in, fan_out, rng) -> ndarray`` drawing
float64 values from a NumPy Generator (never global state), so a model's seed fixes its weights
whatever its dtype. Biases start at zero.

- ``he_normal``: N(0, 2 / fan_in) — keeps the activation variance through ReLU layers
  (He et al. 2015); the default after relu and leaky_relu.
- ``glorot_uniform``: U(±sqrt(6 / (fan_in + fan_out))) (Glorot & Bengio 2010); the default
  otherwise.
- ``normal(std)``: N(0, std²), the source material's small Gaussian (std 0.01).
"""
from __future__ import annotations

from typing import Callable, Union

import numpy as np

__all__ = [
    "GlorotUniform",
    "HeNormal",
    "Initializer",
    "Normal",
    "default_for",
    "get",
    "glorot_uniform",
    "he_normal",
    "normal",
]


class Initializer:
    """Base class: ``init(fan_in, fan_out, rng)`` returns a float64 (fan_in, fan_out) array."""

    name = "initializer"

    def __call__(self, fan_in: int, fan_out: int, rng: np.random.Generator) -> np.ndarray:
        raise NotImplementedError

    def get_config(self) -> dict:
        return {"name": self.name}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items() if k != "name")
        return f"{self.name}({args})"

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other) and self.get_config() == other.get_config()

    def __hash__(self) -> int:
        return hash(tuple(sorted(self.get_config().items())))


class HeNormal(Initializer):
    """He normal: N(0, 2 / fan_in)."""

    name = "he_normal"

    def __call__(self, fan_in: int, fan_out: int, rng: np.random.Generator) -> np.ndarray:
        return rng.standard_normal((fan_in, fan_out)) * np.sqrt(2.0 / fan_in)


class GlorotUniform(Initializer):
    """Glorot (Xavier) uniform: U(-a, a) with a = sqrt(6 / (fan_in + fan_out))."""

    name = "glorot_uniform"

    def __call__(self, fan_in: int, fan_out: int, rng: np.random.Generator) -> np.ndarray:
        limit = np.sqrt(6.0 / (fan_in + fan_out))
        return rng.uniform(-limit, limit, size=(fan_in, fan_out))


class Normal(Initializer):
    """Plain Gaussian N(0, std²); std 0.01 is the source material's "small Gaussian"."""

    name = "normal"

    def __init__(self, std: float = 0.01) -> None:
        std = float(std)
        if not np.isfinite(std) or std <= 0:
            raise ValueError(f"std must be a finite number > 0, got {std!r}")
        self.std = std

    def __call__(self, fan_in: int, fan_out: int, rng: np.random.Generator) -> np.ndarray:
        return rng.standard_normal((fan_in, fan_out)) * self.std

    def get_config(self) -> dict:
        return {"name": self.name, "std": self.std}


def he_normal() -> HeNormal:
    """He normal initialiser (N(0, 2 / fan_in))."""
    return HeNormal()


def glorot_uniform() -> GlorotUniform:
    """Glorot uniform initialiser (U(±sqrt(6 / (fan_in + fan_out))))."""
    return GlorotUniform()


def normal(std: float = 0.01) -> Normal:
    """Gaussian initialiser N(0, std²)."""
    return Normal(std)


_BY_NAME = {"he_normal": HeNormal, "glorot_uniform": GlorotUniform, "normal": Normal}

InitLike = Union[None, str, Initializer, Callable[[int, int, np.random.Generator], np.ndarray]]


def default_for(activation: str) -> Initializer:
    """He normal after relu/leaky_relu (their half-zeroed outputs need the factor 2), else Glorot."""
    return HeNormal() if activation in ("relu", "leaky_relu") else GlorotUniform()


def get(init: InitLike, activation: str = "identity"):
    """An initialiser from a name, an instance, a callable, or None (the default for activation).

    Raises
    ------
    ValueError
        For an unknown name.
    TypeError
        For anything that is neither a name nor a callable.
    """
    if init is None:
        return default_for(activation)
    if isinstance(init, str):
        try:
            return _BY_NAME[init]()
        except KeyError:
            raise ValueError(f"init must be one of {sorted(_BY_NAME)} or a callable, "
                             f"got {init!r}") from None
    if isinstance(init, dict):
        config = dict(init)
        name = config.pop("name", None)
        if name not in _BY_NAME:
            raise ValueError(f"init: unknown initialiser {name!r}")
        return _BY_NAME[name](**config)
    if callable(init):
        return init
    raise TypeError(f"init must be a name, an Initializer or a callable "
                    f"(fan_in, fan_out, rng) -> array, got {type(init).__name__}")
