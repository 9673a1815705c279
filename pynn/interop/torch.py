"""PyTorch: `to_torch(model)` gives a ``torch.nn.Sequential`` with the same weights, and
`from_torch(module)` takes one back. torch is imported only here, when called.

Each Dense becomes a ``Linear`` (weight = W.T, out × in, as PyTorch stores it) followed by its
activation's module; identity adds none::

    relu  ReLU()     leaky_relu  LeakyReLU(alpha)     sigmoid  Sigmoid()
    tanh  Tanh()     softmax     Softmax(dim=-1)      identity (no module)

step (the perceptron's) has no torch.nn module and is refused. The module indices are those of
`Sequential.state_dict()`, so ``to_torch(model).state_dict()`` and ``model.state_dict()`` have
the same keys and values. The parameters are copied in the model's dtype (float32 or float64):
a round trip pynn -> torch -> pynn gives bitwise the same weights, hence the same predictions.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..model import Sequential
from ..nn.layers import Dense
from ._require import require

__all__ = ["from_torch", "to_torch"]

_TORCH_MODULES = {"relu": "ReLU", "leaky_relu": "LeakyReLU", "sigmoid": "Sigmoid",
                  "tanh": "Tanh", "softmax": "Softmax"}
_SUPPORTED = "Linear, ReLU, LeakyReLU, Sigmoid, Tanh, Softmax(dim=-1 or 1), Identity"


def _activation_module(nn: Any, layer: Dense) -> Any:
    if layer.activation == "relu":
        return nn.ReLU()
    if layer.activation == "leaky_relu":
        return nn.LeakyReLU(layer.alpha)
    if layer.activation == "sigmoid":
        return nn.Sigmoid()
    if layer.activation == "tanh":
        return nn.Tanh()
    return nn.Softmax(dim=-1)


def to_torch(model: Sequential) -> Any:
    """A ``torch.nn.Sequential`` computing ``model(X)`` (the raw outputs) with its weights.

    Parameters
    ----------
    model : Sequential
        A built model (fitted, or with its input size known).

    Returns
    -------
    torch.nn.Sequential
        Linear and activation modules in the model's dtype, on the CPU, holding copies of the
        weights. Torch's global random generator is not touched (the Linear modules are created
        without initialisation).

    Raises
    ------
    ImportError
        Without torch (``pip install torch``).
    ValueError
        An unbuilt model, or a layer whose activation torch.nn has no module for (step).
    """
    if not isinstance(model, Sequential):
        raise TypeError(f"model must be a pynn.Sequential, got {type(model).__name__}")
    if not model.built:
        raise ValueError("to_torch needs the model's parameters, which do not exist yet: fit "
                         "it, or give it its input size (model.build(n) or pynn.Input(n))")
    for i, layer in enumerate(model.layers):
        if layer.activation not in _TORCH_MODULES and layer.activation != "identity":
            raise ValueError(f"layers[{i}] has activation {layer.activation!r}, which torch.nn "
                             f"has no module for (it has one for "
                             f"{', '.join(['identity', *_TORCH_MODULES])})")
    torch = require("torch", "torch", "pynn.to_torch")
    nn = torch.nn
    dtype = torch.float64 if model.dtype == np.float64 else torch.float32
    modules = []
    for layer in model.layers:
        modules.append(torch.nn.utils.skip_init(nn.Linear, layer.in_features,
                                                layer.out_features, dtype=dtype))
        if layer.activation != "identity":
            modules.append(_activation_module(nn, layer))
    module = nn.Sequential(*modules)
    module.load_state_dict({k: torch.from_numpy(v) for k, v in model.state_dict().items()})
    return module


def _flatten(torch: Any, module: Any, prefix: str = "") -> list:
    """(name, module) of the leaves of nested Sequentials, in order."""
    if isinstance(module, torch.nn.Sequential):
        return [item for name, child in module.named_children()
                for item in _flatten(torch, child, f"{prefix}{name}.")]
    return [(prefix.rstrip(".") or type(module).__name__, module)]


def _activation_of(torch: Any, name: str, module: Any) -> tuple:
    """(pynn activation, alpha) of a torch activation module, or None for an unsupported one."""
    nn = torch.nn
    if isinstance(module, nn.ReLU):
        return "relu", 0.01
    if isinstance(module, nn.LeakyReLU):
        slope = float(module.negative_slope)
        if not (math.isfinite(slope) and slope >= 0):
            raise ValueError(f"module {name!r} is LeakyReLU(negative_slope={slope}); pynn's "
                             f"leaky_relu takes a finite slope >= 0")
        return "leaky_relu", slope
    if isinstance(module, nn.Sigmoid):
        return "sigmoid", 0.01
    if isinstance(module, nn.Tanh):
        return "tanh", 0.01
    if isinstance(module, nn.Softmax):
        if module.dim not in (1, -1):
            raise ValueError(f"module {name!r} is Softmax(dim={module.dim}); pynn's softmax is "
                             f"over the features of each sample: dim=-1 or dim=1")
        return "softmax", 0.01
    return None


def from_torch(module: Any, *, dtype: str | np.dtype | type | None = None) -> Sequential:
    """A pynn model from a torch ``Linear``, or a ``Sequential`` of Linear and activations.

    Parameters
    ----------
    module : torch.nn.Sequential or torch.nn.Linear
        Linear modules, each optionally followed by one of ReLU, LeakyReLU, Sigmoid, Tanh,
        Softmax (dim=-1 or 1); Identity modules are skipped, nested Sequentials flattened.
        A Linear without bias gets a zero bias.
    dtype : {"float32", "float64"}, optional
        The model's dtype; by default the Linear weights' (float32 or float64; other dtypes need
        it given).

    Returns
    -------
    Sequential
        Built, with copies of the weights (W = weight.T); no loss or optimizer yet (compile or
        fit sets them).

    Raises
    ------
    ValueError
        A module pynn has no layer for, an activation without a Linear before it, or two in a
        row: the error names the module.
    """
    torch = require("torch", "torch", "pynn.from_torch")
    if not isinstance(module, torch.nn.Module):
        raise TypeError(f"module must be a torch.nn.Module, got {type(module).__name__}")
    pending: list = []  # [name, Linear, activation, alpha] per layer
    for name, child in _flatten(torch, module):
        if isinstance(child, torch.nn.Identity):
            continue
        if isinstance(child, torch.nn.Linear):
            pending.append([name, child, "identity", 0.01])
            continue
        activation = _activation_of(torch, name, child)
        if activation is None:
            raise ValueError(f"module {name!r} ({type(child).__name__}) has no pynn layer; "
                             f"from_torch takes {_SUPPORTED}")
        if not pending:
            raise ValueError(f"module {name!r} ({type(child).__name__}) comes before any "
                             f"Linear: pynn applies an activation after a layer's Linear")
        if pending[-1][2] != "identity":
            raise ValueError(f"module {name!r} ({type(child).__name__}) follows another "
                             f"activation ({pending[-1][2]}); a pynn layer has one activation")
        pending[-1][2:] = activation
    if not pending:
        raise ValueError("the module holds no Linear layer")
    if dtype is None:
        found = pending[0][1].weight.dtype
        if found not in (torch.float32, torch.float64):
            raise TypeError(f"module {pending[0][0]!r} holds {found} weights; pynn computes in "
                            f"float32 or float64: pass dtype='float32' or 'float64'")
        dtype = "float64" if found == torch.float64 else "float32"
    layers, weights = [], []
    for name, linear, activation, alpha in pending:
        if layers and linear.in_features != layers[-1].out_features:
            raise ValueError(f"module {name!r} (Linear) takes {linear.in_features} inputs but "
                             f"the Linear before it gives {layers[-1].out_features}")
        layers.append(Dense(linear.in_features, linear.out_features, activation, alpha=alpha))
        weight = linear.weight.detach().cpu()
        bias = None if linear.bias is None else linear.bias.detach().cpu()
        weights.append(_numpy(weight).T)
        weights.append(np.zeros(linear.out_features) if bias is None else _numpy(bias))
    model = Sequential(layers, dtype=dtype)
    model.set_weights(weights)
    return model


def _numpy(tensor: Any) -> np.ndarray:
    try:
        return tensor.numpy()
    except (TypeError, RuntimeError):  # bfloat16 and other dtypes NumPy lacks
        return tensor.double().numpy()
