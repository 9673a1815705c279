"""safetensors files: ``pynn.save(model, "m.safetensors")`` writes one and `pynn.load` reads it,
both with the code here (the ``safetensors`` package is not needed; it reads these files, and
files it writes with pynn's names and metadata load).

The format (Hugging Face's): 8 bytes holding the header's length N, a little-endian unsigned
64-bit integer; N bytes of UTF-8 JSON, ``{name: {"dtype": "F32", "shape": [...],
"data_offsets": [begin, end]}, ..., "__metadata__": {str: str}}``; then the tensors' bytes,
little-endian and in C order, the offsets counted from the end of the header.

What pynn stores:

- ``<i>.weight`` (out x in) and ``<i>.bias`` (a BatchNorm adds ``<i>.running_mean``,
  ``<i>.running_var`` and ``<i>.num_batches_tracked``): `Sequential.state_dict()`'s names and layouts,
  which are PyTorch's (those of ``pynn.to_torch(model).state_dict()``);
- ``optimizer.<name>``: the optimizer's state buffers (momentum ``velocity``, Adam's ``m`` and
  ``v``), flat, in the order of ``model.params``;
- ``__metadata__``: the fields of the model file's header (`pynn.io.header`: architecture, loss,
  optimizer configuration, counters, the user's metadata, the generator's state, the checksum),
  one entry each, as JSON text; ``format``, ``pynn_version`` and ``params_sha256`` are plain
  strings; ``optimizer_sha256`` (when there is an optimizer) and ``metadata_sha256`` are
  checksums of the optimizer's state and of the other metadata entries (the .npz archive has
  its CRCs for that).

Reading trusts nothing in the file: the header's length is capped (100 MB, the safetensors
library's own limit) and must fit in the file; the JSON may not repeat a name; every tensor
needs a known dtype, a shape whose size is its byte count, and offsets that tile the data
exactly (no overlap, no gap, nothing after); the tensors must be those the architecture needs,
in its dtype. Anything else is a `ModelFileError` naming the file. The parameter count and the
checksums are checked when present (pynn always writes them; another tool may leave them out).
"""
from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Callable
from typing import BinaryIO

import numpy as np

from ..model import Sequential
from .header import FIELDS, ModelFileError, check_format, describe, rebuild

__all__ = ["MAX_HEADER_BYTES", "is_safetensors_file", "is_safetensors_name", "load", "read",
           "writer"]

#: The longest header read (the safetensors library refuses longer ones too).
MAX_HEADER_BYTES = 100_000_000
SUFFIX = ".safetensors"
_OPTIMIZER = "optimizer."

# safetensors' dtype names -> NumPy's (little-endian); the format's others (BF16, the float8
# kinds) have no NumPy dtype and are refused.
_DTYPES = {"BOOL": "|b1", "U8": "|u1", "I8": "|i1", "U16": "<u2", "I16": "<i2", "F16": "<f2",
           "U32": "<u4", "I32": "<i4", "F32": "<f4", "U64": "<u8", "I64": "<i8", "F64": "<f8"}
_CODES = {np.dtype(numpy_name).name: code for code, numpy_name in _DTYPES.items()}
# header fields stored as they are; the others as JSON text
_TEXT_FIELDS = ("format", "pynn_version", "params_sha256")
# The .npz archive has a CRC per entry. Here the optimizer's state gets a checksum of its own
# (the parameters have the header's), and so do the metadata entries: a flipped byte in the
# JSON could otherwise change the model (an unknown key is a default) without a word.
_OPTIMIZER_DIGEST = "optimizer_sha256"
_METADATA_DIGEST = "metadata_sha256"


def is_safetensors_name(path: str) -> bool:
    return path.lower().endswith(SUFFIX)


def is_safetensors_file(path: str) -> bool:
    """Whether `load` should read `path` as safetensors: by its name, else by its first bytes
    (a length, then the JSON header's ``{``; a zip archive starts with ``PK``)."""
    if is_safetensors_name(path):
        return True
    with open(path, "rb") as f:  # FileNotFoundError / IsADirectoryError pass through as is
        head = f.read(9)
    return len(head) == 9 and head[8:9] == b"{" and not head.startswith(b"PK")


# ---- writing -----------------------------------------------------------------------------------

def _metadata_text(meta: dict) -> dict:
    return {key: value if key in _TEXT_FIELDS else json.dumps(value)
            for key, value in meta.items()}


def _metadata_digest(metadata: dict) -> str:
    """SHA-256 of the other entries, as compact JSON with sorted keys (the library rewrites the
    metadata in its own order)."""
    others = {key: value for key, value in metadata.items() if key != _METADATA_DIGEST}
    text = json.dumps(others, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(text.encode("ascii")).hexdigest()


def _optimizer_digest(optimizer: object) -> str:
    """SHA-256 of the optimizer's state buffers, one after another in `state_names` order."""
    sha = hashlib.sha256()
    buffers = optimizer.state_arrays()
    for name in optimizer.state_names:
        sha.update(np.ascontiguousarray(buffers[name]).view(np.uint8))
    return sha.hexdigest()


def _layout(tensors: dict, metadata: dict) -> tuple[bytes, list]:
    """(the header's bytes, the arrays to write after it, little-endian and C-contiguous)."""
    header: dict = {"__metadata__": metadata}
    arrays, offset = [], 0
    for name, arr in tensors.items():
        code = _CODES.get(arr.dtype.name)
        if code is None:
            raise TypeError(f"tensor {name!r} has dtype {arr.dtype}, which safetensors has no "
                            f"name for")
        data = np.asarray(arr, dtype=arr.dtype.newbyteorder("<"), order="C")  # 0-d stays 0-d
        header[name] = {"dtype": code, "shape": list(data.shape),
                        "data_offsets": [offset, offset + data.nbytes]}
        offset += data.nbytes
        arrays.append(data.reshape(-1).view(np.uint8))
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    # spaces up to a multiple of 8, as the library pads: the data starts 8-byte aligned
    return text + b" " * (-len(text) % 8), arrays


def writer(model: Sequential) -> Callable[[BinaryIO], None]:
    """A function writing `model` as safetensors to a binary file (for `write_atomically`);
    everything is laid out, and every problem raised, before the first byte is written."""
    tensors = model.state_dict()
    metadata = _metadata_text(describe(model))
    if model.optimizer is not None:
        tensors.update({_OPTIMIZER + name: buf
                        for name, buf in model.optimizer.state_arrays().items()})
        metadata[_OPTIMIZER_DIGEST] = _optimizer_digest(model.optimizer)
    metadata[_METADATA_DIGEST] = _metadata_digest(metadata)
    header, arrays = _layout(tensors, metadata)

    def write(f: BinaryIO) -> None:
        f.write(len(header).to_bytes(8, "little"))
        f.write(header)
        f.writelines(arrays)
    return write


# ---- reading -----------------------------------------------------------------------------------

def _unique_names(pairs: list) -> dict:
    names = [name for name, _ in pairs]
    if len(set(names)) != len(names):
        twice = next(n for n in names if names.count(n) > 1)
        raise ValueError(f"the name {twice!r:.80} appears twice")
    return dict(pairs)


def _parse_header(path: str, raw: bytes) -> dict:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ModelFileError(f"{path}: the safetensors header is not UTF-8 text: {exc}") from None
    if not text.startswith("{"):
        raise ModelFileError(f"{path} is not a valid safetensors file (its header is not a "
                             f"JSON object; corrupt or not safetensors?)")
    try:
        header = json.loads(text, object_pairs_hook=_unique_names)
    except (ValueError, RecursionError) as exc:
        raise ModelFileError(f"{path}: the safetensors header is not valid JSON: "
                             f"{str(exc)[:200]}") from None
    if not isinstance(header, dict):  # "{} x" style tails are caught by json.loads already
        raise ModelFileError(f"{path}: the safetensors header is not a JSON object")
    return header


def _spans(path: str, header: dict, data_size: int) -> list:
    """(begin, end, name, dtype, shape) of every tensor, checked, in the header's order."""
    spans = []
    for name, info in header.items():
        where = f"{path}: tensor {name!r:.80}"
        if not isinstance(info, dict) or set(info) != {"dtype", "shape", "data_offsets"}:
            raise ModelFileError(f"{where} must be described by exactly dtype, shape and "
                                 f"data_offsets, got {str(info)[:120]}")
        code, shape, offsets = info["dtype"], info["shape"], info["data_offsets"]
        if not isinstance(code, str) or code not in _DTYPES:
            raise ModelFileError(f"{where} has dtype {str(code)[:40]!r}, which pynn does not "
                                 f"read (it reads {', '.join(_DTYPES)})")
        if not isinstance(shape, list) or not all(type(d) is int and d >= 0 for d in shape):
            raise ModelFileError(f"{where} has shape {str(shape)[:80]}; a shape is a list of "
                                 f"integers >= 0")
        if not (isinstance(offsets, list) and len(offsets) == 2
                and all(type(o) is int for o in offsets) and 0 <= offsets[0] <= offsets[1]):
            raise ModelFileError(f"{where} has data_offsets {str(offsets)[:80]}; they must be "
                                 f"[begin, end] with 0 <= begin <= end")
        begin, end = offsets
        dtype = np.dtype(_DTYPES[code])
        nbytes = math.prod(shape) * dtype.itemsize
        if nbytes != end - begin:
            raise ModelFileError(f"{where} is {code} of shape {tuple(shape)} ({nbytes} bytes) "
                                 f"but its data_offsets span {end - begin} bytes")
        if end > data_size:
            raise ModelFileError(f"{where} ends at byte {end} of the data, which has "
                                 f"{data_size} bytes (truncated or corrupt)")
        spans.append((begin, end, name, dtype, shape))
    position = 0
    for begin, end, name, _dtype, _shape in sorted(spans, key=lambda s: (s[0], s[1])):
        if begin != position:
            raise ModelFileError(f"{path}: tensor {name!r:.80} starts at byte {begin} of the "
                                 f"data where {position} was expected (tensors overlap or leave "
                                 f"a gap: corrupt or hostile)")
        position = end
    if position != data_size:
        raise ModelFileError(f"{path}: the tensors cover {position} bytes but the data has "
                             f"{data_size} (bytes no tensor owns: corrupt or hostile)")
    return spans


def read(path: str) -> tuple[dict, dict]:
    """(tensors {name: array}, metadata {str: str}) of a safetensors file, every part checked.

    The arrays are native-endian copies (a file of N bytes never makes this allocate much more
    than N).
    """
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        if size < 8:
            raise ModelFileError(f"{path} is not a valid safetensors file: {size} bytes, fewer "
                                 f"than the 8 of the header's length (truncated?)")
        n = int.from_bytes(f.read(8), "little")
        if n > MAX_HEADER_BYTES:
            raise ModelFileError(f"{path}: the safetensors header claims {n:,} bytes, more "
                                 f"than the {MAX_HEADER_BYTES:,} pynn reads (corrupt or "
                                 f"hostile)")
        if n > size - 8:
            raise ModelFileError(f"{path}: the safetensors header claims {n:,} bytes but the "
                                 f"file has {size - 8:,} after its length (truncated or "
                                 f"corrupt)")
        raw = f.read(n)
        data = f.read(size - 8 - n)
    if len(raw) != n or len(data) != size - 8 - n:
        raise ModelFileError(f"{path} changed size while being read (truncated?)")
    header = _parse_header(path, raw)
    metadata = header.pop("__metadata__", None)
    if metadata is None:
        metadata = {}
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise ModelFileError(f"{path}: the safetensors __metadata__ must map names to strings")
    tensors = {}
    for begin, _end, name, dtype, shape in _spans(path, header, len(data)):
        flat = np.frombuffer(data, dtype=dtype, count=math.prod(shape), offset=begin)
        tensors[name] = flat.astype(dtype.newbyteorder("=")).reshape(tuple(shape))
    return tensors, metadata


def _header_fields(path: str, metadata: dict) -> dict:
    """The model file's header from the ``__metadata__`` entries (see the module's docstring)."""
    if "format" not in metadata:
        raise ModelFileError(f"{path} is a safetensors file without pynn's metadata (format, "
                             f"version, config): pynn.load reads the files pynn.save writes. "
                             f"For the weights alone: model.load_state_dict("
                             f"safetensors.numpy.load_file(path)) on a model of that shape")
    meta = {}
    for key in FIELDS:
        if key not in metadata:
            continue
        if key in _TEXT_FIELDS:
            meta[key] = metadata[key]
            continue
        try:
            meta[key] = json.loads(metadata[key])
        except (ValueError, RecursionError) as exc:
            raise ModelFileError(f"{path}: the metadata entry {key!r} is not valid JSON: "
                                 f"{str(exc)[:200]}") from None
    return meta


def load(path: str) -> Sequential:
    """The model in the safetensors file `path` (see `pynn.load`)."""
    tensors, metadata = read(path)
    if _METADATA_DIGEST in metadata and _metadata_digest(metadata) != metadata[_METADATA_DIGEST]:
        raise ModelFileError(f"{path}: the metadata do not match their SHA-256 checksum (the "
                             f"file is corrupt, or was edited: an edited file must leave out "
                             f"{_METADATA_DIGEST!r})")
    meta = check_format(path, _header_fields(path, metadata))

    def set_params(model: Sequential) -> None:
        needed = model.state_dict()  # the names and shapes of this architecture
        missing = [name for name in needed if name not in tensors]
        if missing:
            raise ModelFileError(f"{path}: the tensors {missing} are missing (the file has "
                                 f"{sorted(tensors)[:12]})")
        for name, like in needed.items():
            got = tensors[name]
            if got.dtype != like.dtype or got.shape != like.shape:
                raise ModelFileError(f"{path}: tensor {name!r} is {got.dtype} of shape "
                                     f"{got.shape}; the architecture needs {like.dtype} of "
                                     f"shape {like.shape}")
        try:
            model.load_state_dict({name: tensors[name] for name in needed})
        except (TypeError, ValueError) as exc:
            raise ModelFileError(f"{path}: {exc}") from None

    buffers = {name[len(_OPTIMIZER):]: tensor for name, tensor in tensors.items()
               if name.startswith(_OPTIMIZER)}
    model = rebuild(path, meta, set_params, buffers, checksum_required=False)
    state_names = model.optimizer.state_names if model.optimizer is not None else ()
    known = set(model.state_dict()) | {_OPTIMIZER + name for name in state_names}
    unexpected = sorted(set(tensors) - known)
    if unexpected:
        raise ModelFileError(f"{path}: unexpected tensors {unexpected[:12]} (this architecture "
                             f"and optimizer have {sorted(known)})")
    if _OPTIMIZER_DIGEST in metadata and (model.optimizer is None or _optimizer_digest(
            model.optimizer) != metadata[_OPTIMIZER_DIGEST]):
        raise ModelFileError(f"{path}: the optimizer state does not match its SHA-256 checksum "
                             f"(the file is corrupt)")
    return model
