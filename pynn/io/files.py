"""Saving and loading models in a safe format: NumPy .npz with a JSON header, never pickle.

File layout (a zip archive, as written by ``numpy.savez``):

- ``meta.npy``: uint8 bytes of a UTF-8 JSON document: format name and version, the
  architecture (layers, dtype, seed), the loss and optimizer configurations, counters, the
  shuffling generator's state and a SHA-256 of the parameters;
- ``params.npy``: the flat parameter buffer;
- ``opt_<name>.npy``: the optimizer's state buffers (momentum velocity, Adam moments), so a
  loaded model continues training where it stopped.

Loading uses ``allow_pickle=False``: a file that carries pickled objects is refused, not
executed. Every inconsistency (not a zip, truncated, a CRC or checksum mismatch, missing
entries, sizes that do not match the architecture) raises `ModelFileError` naming the file and
the problem. Saving is atomic: the data goes to a temporary file in the same directory, is
flushed to disk, and only then replaces the target, so a crash mid-save leaves any previous
file intact.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import zipfile
from typing import Union

import numpy as np

from .._version import __version__
from ..model import Sequential
from ..nn import losses as _losses
from ..nn import optim as _optim
from .atomic import write_atomically

__all__ = ["FORMAT", "FORMAT_VERSION", "ModelFileError", "load", "save"]

FORMAT = "pynn.Sequential"
FORMAT_VERSION = 1
PathLike = Union[str, os.PathLike]


class ModelFileError(ValueError):
    """A model file that cannot be loaded: corrupt, truncated, unsafe or inconsistent."""


def _as_path(path: object) -> str:
    if not isinstance(path, (str, bytes, os.PathLike)):
        raise TypeError(f"path must be a str, bytes or os.PathLike, got {type(path).__name__}")
    return os.fsdecode(os.fspath(path))


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


def _digest(params: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(params).view(np.uint8)).hexdigest()


def save(model: Sequential, path: PathLike, *, comm: object = None) -> None:
    """Write `model` (architecture, weights, loss, optimizer state) to `path` atomically.

    Parameters
    ----------
    model : Sequential
    path : str or path-like
        The file to write (``.npz`` is the customary suffix; none is added).
    comm : mpi4py communicator, optional
        In data-parallel training: rank 0 writes (every rank holds the same model), the others
        wait until the file is in place.

    Raises
    ------
    TypeError
        If `model` is not a Sequential, or the optimizer's learning rate is a plain callable (not JSON-serialisable; use a
        `pynn.optim` schedule, or pickle the model).
    """
    if not isinstance(model, Sequential):
        raise TypeError(f"model must be a pynn.Sequential, got {type(model).__name__}")
    if not isinstance(model.metadata, dict):
        raise TypeError(f"model.metadata must be a dict, got {type(model.metadata).__name__}")
    try:
        json.dumps(model.metadata, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"model.metadata must be JSON-serialisable (str, int, float, bool, "
                        f"None, lists and dicts of them): {exc}") from None
    path = _as_path(path)
    opt = model.optimizer
    _check_reloadable(model)
    meta = {
        "format": FORMAT, "version": FORMAT_VERSION, "pynn_version": __version__,
        "config": model.get_config(), "n_params": int(model.n_params),
        "params_sha256": _digest(model.params),
        "loss": model.loss.get_config() if model.loss is not None else None,
        "optimizer": opt.get_config() if opt is not None else None,
        "optimizer_epoch": opt.epoch if opt is not None else 0,
        "optimizer_iterations": opt.iterations if opt is not None else 0,
        "epochs_trained": model.epochs_trained,
        "metadata": model.metadata,
        "rng_state": model.rng.bit_generator.state,
    }
    arrays = {"meta": np.frombuffer(json.dumps(meta).encode("utf-8"), dtype=np.uint8),
              "params": model.params}
    if opt is not None:
        for name, buf in opt.state_arrays().items():
            arrays["opt_" + name] = buf

    if comm is None:
        write_atomically(path, lambda f: np.savez(f, **arrays))
        return
    failure = None
    if comm.Get_rank() == 0:
        try:
            write_atomically(path, lambda f: np.savez(f, **arrays))
        except (OSError, ValueError, TypeError) as exc:  # every rank learns of the failure
            failure = f"{type(exc).__name__}: {exc}"
    failure = comm.bcast(failure, root=0)
    if failure is not None:
        raise OSError(f"rank 0 could not save {path}: {failure}")


_ZIP_MAGIC = b"PK\x03\x04"
_NPY_MAGIC = b"\x93NUMPY"


def _read_arrays(path: str) -> dict:
    with open(path, "rb") as f:  # FileNotFoundError / IsADirectoryError pass through as is
        magic = f.read(6)
    if magic.startswith(_NPY_MAGIC):
        raise ModelFileError(f"{path} is a single .npy array, not a pynn model file "
                             f"(pynn.save writes a .npz archive)")
    if magic[:1] == b"\x80":
        raise ModelFileError(f"{path} is a Python pickle; pynn.load never unpickles (it could "
                             f"run arbitrary code). Only files written by pynn.save can be "
                             f"loaded (unpickle trusted files yourself with pickle.load)")
    if not magic.startswith(_ZIP_MAGIC):
        raise ModelFileError(f"{path} is not a valid pynn model file (not a .npz archive; "
                             f"corrupt or truncated?)")
    try:
        with zipfile.ZipFile(path) as archive:
            # Only pynn's own entries are read, and together they may unpack to no more than
            # the file's own size: a small hostile archive (a "zip bomb", or a .npy header that
            # claims a huge shape) cannot make load allocate gigabytes.
            budget = os.path.getsize(path) + 65536
            arrays = {}
            for info in archive.infolist():
                name = info.filename[:-4] if info.filename.endswith(".npy") else None
                if name in ("meta", "params") or (name or "").startswith("opt_"):
                    arrays[name] = _read_entry(archive, info, path, budget)
                    budget -= info.file_size
            return arrays
    except ModelFileError:
        raise
    except Exception as exc:  # whatever zipfile, zlib or numpy raise on a bad file
        # (BadZipFile, zlib.error, EOFError, ValueError, NotImplementedError for an unknown
        # compression method, RuntimeError for an encrypted entry, ...)
        raise ModelFileError(f"{path} is not a valid pynn model file (corrupt or truncated?): "
                             f"{exc}") from exc


def _read_entry(archive: zipfile.ZipFile, info: zipfile.ZipInfo, path: str,
                budget: int) -> np.ndarray:
    """One .npy entry, checked before its data is allocated: a plain numeric dtype (never
    pickled objects) and a shape that matches the bytes the entry really holds."""
    name = info.filename[:-4]
    if info.file_size > budget:
        raise ModelFileError(f"{path}: the entry {name!r} unpacks to {info.file_size} bytes, "
                             f"more than the whole file holds (a corrupt or hostile archive)")
    with archive.open(info) as f:
        version = np.lib.format.read_magic(f)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
        elif version == (2, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
        else:
            raise ModelFileError(f"{path}: the entry {name!r} has .npy format version "
                                 f"{version}, which pynn does not read")
        if dtype.hasobject:
            raise ModelFileError(f"{path} contains pickled Python objects (entry {name!r}); "
                                 f"pynn.load never unpickles (it could run arbitrary code). "
                                 f"Only files written by pynn.save can be loaded")
        nbytes = math.prod(shape) * dtype.itemsize
        if nbytes != info.file_size - f.tell():
            raise ModelFileError(f"{path}: the entry {name!r} claims shape {shape} "
                                 f"({nbytes} bytes) but holds {info.file_size - f.tell()} "
                                 f"bytes of data (corrupt or hostile)")
        data = f.read(nbytes)
        f.read(1)  # reach the end of the entry: zipfile checks its CRC there
    if len(data) != nbytes:
        raise ModelFileError(f"{path}: the entry {name!r} is truncated")
    return np.frombuffer(data, dtype=dtype).reshape(shape, order="F" if fortran else "C").copy()


def load(path: PathLike) -> Sequential:
    """Read a model written by `save`.

    Returns
    -------
    Sequential
        Same architecture, bitwise-identical weights, the loss and optimizer (with its state)
        restored, so `fit` continues training.

    Raises
    ------
    FileNotFoundError
        If there is no such file.
    ModelFileError
        (a ValueError) if the file is not a pynn model, is corrupt or truncated, carries pickled
        objects, or its contents do not match its own architecture.
    """
    path = _as_path(path)
    arrays = _read_arrays(path)
    for key in ("meta", "params"):
        if key not in arrays:
            raise ModelFileError(f"{path} is not a pynn model file: the entry {key!r} is "
                                 f"missing (entries: {sorted(arrays)})")
    raw = arrays["meta"]
    if raw.dtype != np.uint8 or raw.ndim != 1:
        raise ModelFileError(f"{path}: the 'meta' entry must be UTF-8 JSON bytes")
    try:
        meta = json.loads(raw.tobytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelFileError(f"{path}: the 'meta' entry is not valid JSON: {exc}") from exc
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ModelFileError(f"{path} is not a pynn model file (format "
                             f"{meta.get('format') if isinstance(meta, dict) else None!r})")
    if meta.get("version") != FORMAT_VERSION:
        raise ModelFileError(f"{path} has format version {meta.get('version')!r}; this pynn "
                             f"reads version {FORMAT_VERSION}")
    try:
        return _build(path, meta, arrays)
    except ModelFileError:
        raise
    except Exception as exc:  # any bad value in the header (found by fuzzing:
        # KeyError, TypeError, ValueError, OverflowError from the generator state, ...)
        raise ModelFileError(f"{path}: inconsistent model description: {exc}") from exc


def _build(path: str, meta: dict, arrays: dict) -> Sequential:
    config = meta["config"]
    dtype = np.dtype(config["dtype"])
    model = Sequential.from_config(config)  # checks the architecture (layer sizes agree)
    n_params = model.n_params
    params = arrays["params"]
    if params.dtype != dtype or params.shape != (n_params,):
        raise ModelFileError(f"{path}: the parameters ({params.dtype}, shape {params.shape}) do "
                             f"not match the architecture ({dtype}, {n_params} parameters)")
    if meta.get("n_params") != n_params:
        raise ModelFileError(f"{path}: the header says {meta.get('n_params')} parameters, the "
                             f"architecture has {n_params}")
    if _digest(params) != meta.get("params_sha256"):
        raise ModelFileError(f"{path}: the parameters do not match their SHA-256 checksum "
                             f"(the file is corrupt)")
    model.params[...] = params
    loss = _losses.get(meta["loss"]) if meta.get("loss") else None
    optimizer = None
    if meta.get("optimizer"):
        optimizer = _optim.get(meta["optimizer"])
        buffers = {}
        for name in optimizer.state_names:
            buf = arrays.get("opt_" + name)
            if buf is None or buf.dtype != dtype or buf.shape != (n_params,):
                raise ModelFileError(f"{path}: the optimizer state {name!r} is missing or does "
                                     f"not match the parameters")
            buffers[name] = buf
        optimizer.load_state_dict({"epoch": meta.get("optimizer_epoch", 0),
                                   "iterations": meta.get("optimizer_iterations", 0),
                                   "buffers": buffers})
    model.compile(loss=loss, optimizer=optimizer)
    model.epochs_trained = int(meta.get("epochs_trained", 0))
    metadata = meta.get("metadata", {})
    if not isinstance(metadata, dict):
        raise ModelFileError(f"{path}: the 'metadata' entry must be a JSON object")
    model.metadata = metadata
    if meta.get("rng_state"):
        model.rng.bit_generator.state = meta["rng_state"]
    return model
