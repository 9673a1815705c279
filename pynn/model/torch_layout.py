"""Where each layer's arrays sit in the ``torch.nn.Sequential`` that `pynn.to_torch` builds: the
one table `Sequential.state_dict`, `load_state_dict` and the PyTorch exporter share.

A Dense is a Linear (``weight`` = W.T, out × in) and, unless its activation is identity, an
activation module after it; an Activation is one module (none for identity); a Dropout is one
(no arrays); a BatchNorm is a BatchNorm1d (weight = γ, bias = β, running_mean, running_var,
num_batches_tracked); a LayerNorm a LayerNorm (weight = γ, bias = β).
"""
from __future__ import annotations

from collections.abc import Sequence

from ..nn.layers import Activation, BatchNorm, Dense, LayerNorm

__all__ = ["torch_entries"]


def _modules_and_arrays(layer) -> tuple:
    """(torch modules the layer becomes, [(torch name, pynn array name, transposed)])."""
    if isinstance(layer, Dense):
        return (1 + (layer.activation != "identity"),
                [("weight", "W", True), ("bias", "b", False)])
    if isinstance(layer, BatchNorm):
        return 1, [("weight", "gamma", False), ("bias", "beta", False),
                   ("running_mean", "running_mean", False), ("running_var", "running_var", False)]
    if isinstance(layer, LayerNorm):
        return 1, [("weight", "gamma", False), ("bias", "beta", False)]
    if isinstance(layer, Activation):
        return int(layer.activation != "identity"), []
    return 1, []  # Dropout


def torch_entries(layers: Sequence) -> list:
    """Per layer: (index of its first torch module, [(key, pynn array name, transposed)])."""
    entries, position = [], 0
    for layer in layers:
        used, arrays = _modules_and_arrays(layer)
        entries.append((position, [(f"{position}.{name}", attr, transposed)
                                   for name, attr, transposed in arrays]))
        position += used
    return entries
