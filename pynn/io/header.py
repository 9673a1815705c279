"""What a model file says about its model, whatever holds it (.npz or .safetensors).

The header: format name and version, the architecture (layers, dtype, seed), the loss and
optimizer configurations, the counters, the user's metadata, the shuffling generator's state and
a SHA-256 of the flat parameters. `describe` builds it (after `check_saveable` has refused what
`load` could not rebuild); `check_format` and `rebuild` turn a header read back into a model,
every inconsistency a `ModelFileError` naming the file.
"""
from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from typing import Union

import numpy as np

from .._version import __version__
from ..model import Sequential
from ..nn import losses as _losses
from ..nn import optim as _optim

__all__ = ["FIELDS", "FORMAT", "FORMAT_VERSION", "ModelFileError", "PathLike", "as_path",
           "check_format", "check_saveable", "describe", "digest", "rebuild"]

FORMAT = "pynn.Sequential"
FORMAT_VERSION = 1
#: The header's fields, in the order `describe` writes them.
FIELDS = ("format", "version", "pynn_version", "config", "n_params", "params_sha256", "loss",
          "optimizer", "optimizer_epoch", "optimizer_iterations", "epochs_trained", "metadata",
          "rng_state")
PathLike = Union[str, os.PathLike]


class ModelFileError(ValueError):
    """A model file that cannot be loaded: corrupt, truncated, unsafe or inconsistent."""


def as_path(path: object) -> str:
    if not isinstance(path, (str, bytes, os.PathLike)):
        raise TypeError(f"path must be a str, bytes or os.PathLike, got {type(path).__name__}")
    return os.fsdecode(os.fspath(path))


def digest(params: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(params).view(np.uint8)).hexdigest()


def _check_reloadable(model: Sequential) -> None:
    """Refuse, before writing, what `load` could not rebuild: a loss or optimizer that is not
    pynn's own, a learning rate that is not a pynn schedule."""
    loss = model.loss
    if loss is not None:
        try:
            same = type(_losses.get(loss.get_config())) is type(loss)
        except (ValueError, TypeError, KeyError):
            same = False
        if not same:
            raise TypeError(f"the model's loss {loss!r} is not one of pynn's (custom losses "
                            f"cannot be rebuilt by pynn.load); compile the model with a built-in "
                            f"loss before saving, or pickle it")
    opt = model.optimizer
    if opt is not None:
        try:
            config = opt.get_config()  # a plain-callable rate: TypeError saying so
        except NotImplementedError:
            raise TypeError(f"the optimizer's learning-rate schedule {opt.lr!r} cannot be "
                            f"saved (it has no get_config); use a pynn.optim schedule "
                            f"(Constant, StepDecay, Cosine) or pickle the model") from None
        try:
            same = type(_optim.get(config)) is type(opt)
        except (ValueError, TypeError, KeyError):
            same = False
        if not same:
            raise TypeError(f"the model's optimizer {opt!r} is not one of pynn's (it cannot be "
                            f"rebuilt by pynn.load); pickle the model instead")


def check_saveable(model: object) -> None:
    """TypeError for what no model file can hold: not a Sequential, metadata that is not JSON,
    a loss or optimizer `load` could not rebuild."""
    if not isinstance(model, Sequential):
        raise TypeError(f"model must be a pynn.Sequential, got {type(model).__name__}")
    if not isinstance(model.metadata, dict):
        raise TypeError(f"model.metadata must be a dict, got {type(model.metadata).__name__}")
    try:
        json.dumps(model.metadata, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"model.metadata must be JSON-serialisable (str, int, float, bool, "
                        f"None, lists and dicts of them): {exc}") from None
    _check_reloadable(model)


def describe(model: Sequential) -> dict:
    """The header of `model` (a JSON-able dict with the keys of `FIELDS`)."""
    opt = model.optimizer
    return {
        "format": FORMAT, "version": FORMAT_VERSION, "pynn_version": __version__,
        "config": model.get_config(), "n_params": int(model.n_params),
        "params_sha256": digest(model.params),
        "loss": model.loss.get_config() if model.loss is not None else None,
        "optimizer": opt.get_config() if opt is not None else None,
        "optimizer_epoch": opt.epoch if opt is not None else 0,
        "optimizer_iterations": opt.iterations if opt is not None else 0,
        "epochs_trained": model.epochs_trained,
        "metadata": model.metadata,
        "rng_state": model.rng.bit_generator.state,
    }


def check_format(path: str, meta: object) -> dict:
    """`meta` itself when it is a header of this format and version."""
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ModelFileError(f"{path} is not a pynn model file (format "
                             f"{meta.get('format') if isinstance(meta, dict) else None!r})")
    if meta.get("version") != FORMAT_VERSION:
        raise ModelFileError(f"{path} has format version {meta.get('version')!r}; this pynn "
                             f"reads version {FORMAT_VERSION}")
    return meta


def rebuild(path: str, meta: dict, set_params: Callable[[Sequential], None], buffers: dict,
            *, checksum_required: bool = True) -> Sequential:
    """The model `meta` describes, its parameters put in place by ``set_params(model)`` (which
    raises ModelFileError for values that do not fit the architecture), the optimizer's state
    from `buffers` ({name: array}).

    The parameter count and checksum in `meta` are checked; with ``checksum_required=False``
    only when present (a file written by another tool may lack them).
    """
    try:
        return _rebuild(path, meta, set_params, buffers, checksum_required)
    except ModelFileError:
        raise
    except Exception as exc:  # any bad value in the header (found by fuzzing:
        # KeyError, TypeError, ValueError, OverflowError from the generator state, ...)
        raise ModelFileError(f"{path}: inconsistent model description: {exc}") from exc


def _rebuild(path: str, meta: dict, set_params: Callable[[Sequential], None], buffers: dict,
             checksum_required: bool) -> Sequential:
    config = meta["config"]
    dtype = np.dtype(config["dtype"])
    model = Sequential.from_config(config)  # checks the architecture (layer sizes agree)
    n_params = model.n_params
    set_params(model)
    if (checksum_required or "n_params" in meta) and meta.get("n_params") != n_params:
        raise ModelFileError(f"{path}: the header says {meta.get('n_params')} parameters, the "
                             f"architecture has {n_params}")
    if (checksum_required or "params_sha256" in meta) and (
            digest(model.params) != meta.get("params_sha256")):
        raise ModelFileError(f"{path}: the parameters do not match their SHA-256 checksum (the "
                             f"file is corrupt)")
    loss = _losses.get(meta["loss"]) if meta.get("loss") else None
    optimizer = None
    if meta.get("optimizer"):
        optimizer = _optim.get(meta["optimizer"])
        state = {}
        for name in optimizer.state_names:
            buf = buffers.get(name)
            if buf is None or buf.dtype != dtype or buf.shape != (n_params,):
                raise ModelFileError(f"{path}: the optimizer state {name!r} is missing or does "
                                     f"not match the parameters")
            state[name] = buf
        optimizer.load_state_dict({"epoch": meta.get("optimizer_epoch", 0),
                                   "iterations": meta.get("optimizer_iterations", 0),
                                   "buffers": state})
    model.compile(loss=loss, optimizer=optimizer)
    model.epochs_trained = int(meta.get("epochs_trained", 0))
    metadata = meta.get("metadata", {})
    if not isinstance(metadata, dict):
        raise ModelFileError(f"{path}: the 'metadata' entry must be a JSON object")
    model.metadata = metadata
    if meta.get("rng_state"):
        model.rng.bit_generator.state = meta["rng_state"]
    return model


#: The entries of `Sequential.state_dict()` that are layer state, not trained parameters.
_STATE_SUFFIXES = (".running_mean", ".running_var", ".num_batches_tracked")


def layer_states(model: Sequential) -> dict:
    """The layers' saved state (BatchNorm's running statistics and batch count) under the
    names of `Sequential.state_dict()` (PyTorch's)."""
    if not any(layer.state_names for layer in model.layers):
        return {}  # no layer keeps state: skip state_dict's copies of the weights
    return {key: arr for key, arr in model.state_dict().items()
            if key.endswith(_STATE_SUFFIXES)}


def set_layer_states(path: str, model: Sequential, found: dict) -> None:
    """Put the layer states read from a file (`layer_states`' names) into `model`, checked:
    every one present, its shape and dtype, finite values, variances >= 0."""
    needed = layer_states(model)
    if not needed:
        return
    for key, like in needed.items():
        got = found.get(key)
        if got is None:
            raise ModelFileError(f"{path}: the layer state {key!r} is missing")
        if got.shape != like.shape or got.dtype != like.dtype:
            raise ModelFileError(f"{path}: the layer state {key!r} is {got.dtype} of shape "
                                 f"{got.shape}; the architecture needs {like.dtype} of shape "
                                 f"{like.shape}")
    full = model.state_dict()
    full.update({key: found[key] for key in needed})
    try:
        model.load_state_dict(full)
    except (TypeError, ValueError) as exc:
        raise ModelFileError(f"{path}: {exc}") from None
