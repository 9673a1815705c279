"""PyTorch: `to_torch(model)` gives a ``torch.nn.Sequential`` with the same weights, and
`from_torch(module)` takes one back. torch is imported only here, when called.

Each Dense becomes a ``Linear`` (weight = W.T, out × in, as PyTorch stores it) followed by its
activation's module; identity adds none::

    relu  ReLU()     leaky_relu  LeakyReLU(alpha)     sigmoid  Sigmoid()
    tanh  Tanh()     softmax     Softmax(dim=-1)      identity (no module)

An Activation layer is its module alone, a Dropout ``Dropout(rate)``, a BatchNorm
``BatchNorm1d`` (γ, β, running statistics, momentum and eps; it predicts like pynn in
``eval()`` mode), a LayerNorm ``LayerNorm``. step (the perceptron's) has no torch.nn module and is
refused. The module indices are those of `Sequential.state_dict()`
(`pynn.model.torch_layout`), so ``to_torch(model).state_dict()`` and ``model.state_dict()`` have
the same keys and values. The parameters are copied in the model's dtype (float32 or float64):
a round trip pynn -> torch -> pynn gives bitwise the same weights, hence the same predictions.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..model import Sequential
from ..nn.layers import Activation, BatchNorm, Dense, Dropout, LayerNorm
from ._require import require

__all__ = ["from_torch", "to_torch"]

_TORCH_MODULES = {"relu": "ReLU", "leaky_relu": "LeakyReLU", "sigmoid": "Sigmoid",
                  "tanh": "Tanh", "softmax": "Softmax"}
_SUPPORTED = ("Linear, ReLU, LeakyReLU, Sigmoid, Tanh, Softmax(dim=-1 or 1), Identity, Dropout, "
              "BatchNorm1d, LayerNorm")


def _activation_module(nn: Any, layer: Dense | Activation) -> Any:
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
        activation = getattr(layer, "activation", "identity")
        if activation not in _TORCH_MODULES and activation != "identity":
            raise ValueError(f"layers[{i}] has activation {activation!r}, which torch.nn "
                             f"has no module for (it has one for "
                             f"{', '.join(['identity', *_TORCH_MODULES])})")
    torch = require("torch", "torch", "pynn.to_torch")
    nn = torch.nn
    dtype = torch.float64 if model.dtype == np.float64 else torch.float32
    modules = []
    for layer in model.layers:
        if isinstance(layer, Dense):
            modules.append(torch.nn.utils.skip_init(nn.Linear, layer.in_features,
                                                    layer.out_features, dtype=dtype))
        elif isinstance(layer, Dropout):
            modules.append(nn.Dropout(layer.rate))
        elif isinstance(layer, BatchNorm):
            modules.append(nn.BatchNorm1d(layer.in_features, eps=layer.eps,
                                          momentum=layer.momentum, dtype=dtype))
        elif isinstance(layer, LayerNorm):
            modules.append(nn.LayerNorm(layer.in_features, eps=layer.eps, dtype=dtype))
        if getattr(layer, "activation", "identity") != "identity":
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
        Linear, Dropout, BatchNorm1d (with momentum, affine, running statistics), LayerNorm
        (one feature axis, affine) and the activations ReLU, LeakyReLU, Sigmoid, Tanh, Softmax
        (dim=-1 or 1): an activation right after a Linear joins its Dense layer, elsewhere it
        is an Activation layer. Identity modules are skipped, nested Sequentials flattened. A
        Linear without bias gets a zero bias.
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
    layers, arrays, names = [], [], []  # arrays: per layer, {pynn array name: numpy array}
    first_weights = None
    for name, child in _flatten(torch, module):
        if isinstance(child, torch.nn.Identity):
            continue
        if isinstance(child, torch.nn.Linear):
            weight = _numpy(child.weight.detach().cpu())
            bias = np.zeros(child.out_features) if child.bias is None else \
                _numpy(child.bias.detach().cpu())
            first_weights = child.weight.dtype if first_weights is None else first_weights
            layers.append(Dense(child.in_features, child.out_features))
            arrays.append({"W": weight.T, "b": bias})
            names.append(name)
        elif isinstance(child, torch.nn.Dropout):
            layers.append(Dropout(float(child.p)))
            arrays.append({})
            names.append(name)
        elif isinstance(child, torch.nn.BatchNorm1d):
            layers.append(_batchnorm_of(name, child))
            arrays.append(_norm_arrays(child, running=True))
            names.append(name)
        elif isinstance(child, torch.nn.LayerNorm):
            layers.append(_layernorm_of(name, child))
            arrays.append(_norm_arrays(child, running=False))
            names.append(name)
        else:
            activation = _activation_of(torch, name, child)
            if activation is None:
                raise ValueError(f"module {name!r} ({type(child).__name__}) has no pynn layer; "
                                 f"from_torch takes {_SUPPORTED}")
            last = layers[-1] if layers else None
            if isinstance(last, Dense) and last.activation == "identity":
                last.activation, last.alpha = activation  # fused into the Linear's layer
            else:
                layers.append(Activation(activation[0], alpha=activation[1]))
                arrays.append({})
                names.append(name)
    if not layers:
        raise ValueError("the module holds no layer pynn can take")
    if dtype is None:
        found = first_weights if first_weights is not None else torch.get_default_dtype()
        if found not in (torch.float32, torch.float64):
            raise TypeError(f"the module holds {found} weights; pynn computes in float32 or "
                            f"float64: pass dtype='float32' or 'float64'")
        dtype = "float64" if found == torch.float64 else "float32"
    _chain(layers, names)
    for layer in layers:  # re-derive each Dense's default initialiser for its activation
        if isinstance(layer, Dense):
            layer.init = _init_for(layer.activation)
    model = Sequential(layers, dtype=dtype)
    if not model.built:
        raise ValueError("the module starts with a layer of unknown width: put a Linear, "
                         "BatchNorm1d or LayerNorm first")
    model.set_weights([a for layer, named in zip(layers, arrays) for a in
                       [named[n] for n, _ in layer.param_shapes()] +
                       [named[n] for n in layer.state_names]])
    for layer, named in zip(layers, arrays):
        if "batches_tracked" in named:
            layer.batches_tracked = named["batches_tracked"]
    return model


def _chain(layers: list, names: list) -> None:
    """Check that the widths agree, naming the modules that do not."""
    width = None
    for layer, name in zip(layers, names):
        if width is not None and layer.in_features is not None and layer.in_features != width:
            kind = "Linear" if isinstance(layer, Dense) else type(layer).__name__
            raise ValueError(f"module {name!r} ({kind}) takes {layer.in_features} inputs but "
                             f"the module before it gives {width}")
        width = layer.out_features if layer.out_features is not None else width


def _init_for(activation: str):
    from ..nn import init as _init

    return _init.default_for(activation)


def _batchnorm_of(name: str, child: Any) -> BatchNorm:
    if child.momentum is None or not child.affine or not child.track_running_stats:
        raise ValueError(f"module {name!r} is BatchNorm1d(momentum={child.momentum}, "
                         f"affine={child.affine}, track_running_stats="
                         f"{child.track_running_stats}); pynn's BatchNorm has a momentum, "
                         f"gamma and beta, and running statistics")
    return BatchNorm(child.num_features, momentum=float(child.momentum), eps=float(child.eps))


def _layernorm_of(name: str, child: Any) -> LayerNorm:
    shape = tuple(child.normalized_shape)
    if len(shape) != 1 or not child.elementwise_affine or child.bias is None:
        raise ValueError(f"module {name!r} is LayerNorm({shape}, elementwise_affine="
                         f"{child.elementwise_affine}); pynn's LayerNorm normalizes one "
                         f"feature axis with gamma and beta")
    return LayerNorm(shape[0], eps=float(child.eps))


def _norm_arrays(child: Any, running: bool) -> dict:
    named = {"gamma": _numpy(child.weight.detach().cpu()),
             "beta": _numpy(child.bias.detach().cpu())}
    if running:
        named["running_mean"] = _numpy(child.running_mean.detach().cpu())
        named["running_var"] = _numpy(child.running_var.detach().cpu())
        named["batches_tracked"] = int(child.num_batches_tracked)
    return named


def _numpy(tensor: Any) -> np.ndarray:
    try:
        return tensor.numpy()
    except (TypeError, RuntimeError):  # bfloat16 and other dtypes NumPy lacks
        return tensor.double().numpy()
