"""Saving and loading models in a safe format: NumPy .npz with a JSON header, never pickle.
(A path ending in ``.safetensors`` is that format instead: `pynn.io.safetensors`, same header.)

File layout (a zip archive, as written by ``numpy.savez``):

- ``meta.npy``: uint8 bytes of a UTF-8 JSON document (`pynn.io.header`): format name and
  version, the architecture (layers, dtype, seed), the loss and optimizer configurations,
  counters, the shuffling generator's state and a SHA-256 of the parameters;
- ``params.npy``: the flat parameter buffer;
- ``opt_<name>.npy``: the optimizer's state buffers (momentum velocity, Adam moments), so a
  loaded model continues training where it stopped;
- ``state_<i>.running_mean.npy`` and the like: the layers' saved state (BatchNorm's running
  statistics and batch count, under `Sequential.state_dict()`'s names).

Loading uses ``allow_pickle=False``: a file that carries pickled objects is refused, not
executed. Every inconsistency (not a zip, truncated, a CRC or checksum mismatch, missing
entries, sizes that do not match the architecture) raises `ModelFileError` naming the file and
the problem. Saving is atomic: the data goes to a temporary file in the same directory, is
flushed to disk, and only then replaces the target, so a crash mid-save leaves any previous
file intact.
"""
from __future__ import annotations

import json
import math
import os
import zipfile
from collections.abc import Callable
from typing import BinaryIO

import numpy as np

from .._atomic import write_atomically
from ..model import Sequential
from . import safetensors
from .header import (
    FORMAT,
    FORMAT_VERSION,
    ModelFileError,
    PathLike,
    as_path,
    check_format,
    check_saveable,
    describe,
    layer_states,
    rebuild,
    set_layer_states,
)

__all__ = ["FORMAT", "FORMAT_VERSION", "ModelFileError", "load", "save"]


def _npz_writer(model: Sequential) -> Callable[[BinaryIO], None]:
    arrays = {"meta": np.frombuffer(json.dumps(describe(model)).encode("utf-8"), dtype=np.uint8),
              "params": model.params}
    if model.optimizer is not None:
        for name, buf in model.optimizer.state_arrays().items():
            arrays["opt_" + name] = buf
    for key, arr in layer_states(model).items():
        arrays["state_" + key] = arr
    return lambda f: np.savez(f, **arrays)


def save(model: Sequential, path: PathLike, *, comm: object = None) -> None:
    """Write `model` (architecture, weights, loss, optimizer state) to `path` atomically.

    Parameters
    ----------
    model : Sequential
    path : str or path-like
        The file to write. A name ending in ``.safetensors`` gets the safetensors format
        (`pynn.io.safetensors`); any other the .npz archive (``.npz`` is the customary suffix;
        none is added).
    comm : mpi4py communicator, optional
        In data-parallel training: rank 0 writes (every rank holds the same model), the others
        wait until the file is in place.

    Raises
    ------
    TypeError
        If `model` is not a Sequential, or the optimizer's learning rate is a plain callable (not JSON-serialisable; use a
        `pynn.optim` schedule, or pickle the model).
    """
    check_saveable(model)
    path = as_path(path)
    if safetensors.is_safetensors_name(path):
        write = safetensors.writer(model)
    else:
        write = _npz_writer(model)

    if comm is None:
        write_atomically(path, write)
        return
    failure = None
    if comm.Get_rank() == 0:
        try:
            write_atomically(path, write)
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
                if name in ("meta", "params") or (name or "").startswith(("opt_", "state_")):
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
    """Read a model written by `save` (.npz, or safetensors: by its name or its first bytes).

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
    path = as_path(path)
    if safetensors.is_safetensors_file(path):
        return safetensors.load(path)
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
    check_format(path, meta)
    params = arrays["params"]

    def set_params(model: Sequential) -> None:
        if params.dtype != model.dtype or params.shape != (model.n_params,):
            raise ModelFileError(f"{path}: the parameters ({params.dtype}, shape "
                                 f"{params.shape}) do not match the architecture "
                                 f"({model.dtype}, {model.n_params} parameters)")
        model.params[...] = params
        set_layer_states(path, model, {name[6:]: buf for name, buf in arrays.items()
                                       if name.startswith("state_")})

    buffers = {name[4:]: buf for name, buf in arrays.items() if name.startswith("opt_")}
    return rebuild(path, meta, set_params, buffers)
