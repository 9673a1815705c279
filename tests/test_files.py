"""Hostile model files (issue 7): pynn.load raises a clear ModelFileError (a ValueError) and
executes nothing, allocates nothing out of proportion to the file, and leaves no trace.

tests/test_io.py covers the round trip, atomic saves, truncation, flipped bytes and inconsistent
headers; here are the files an attacker would craft: pickles whose unpickling runs code, .npy
headers that lie about their shape, decompression bombs, oversized and malformed headers, and
every truncation length of a real file.
"""
from __future__ import annotations

import io
import json
import os
import pickle
import resource
import zipfile

import numpy as np
import pytest

import pynn
from pynn.io import ModelFileError


class _Payload:
    """Unpickling this writes a marker file: proof that code ran."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.fixture
def saved(tmp_path):
    model = pynn.Sequential([pynn.Dense(4, 6, "relu"), pynn.Dense(6, 3)], seed=0)
    rng = np.random.default_rng(0)
    X = rng.standard_normal((40, 4)).astype(np.float32)
    model.fit(X, np.arange(40) % 3, loss="cross_entropy", optimizer=pynn.SGD(0.1, momentum=0.9))
    path = tmp_path / "model.npz"
    pynn.save(model, path)
    return model, path


def _npy(arr=None, header=None, data=b"") -> bytes:
    buf = io.BytesIO()
    if arr is not None:
        np.save(buf, arr, allow_pickle=True)
    else:
        np.lib.format.write_array_header_1_0(buf, header)
        buf.write(data)
    return buf.getvalue()


def _entries(path) -> dict:
    with zipfile.ZipFile(path) as zf:
        return {n: zf.read(n) for n in zf.namelist()}


def _write_zip(path, entries: dict, compression=zipfile.ZIP_STORED):
    with zipfile.ZipFile(path, "w", compression=compression) as zf:
        for name, data in entries.items():
            zf.writestr(name, data)


def _load_fails(path, match=None):
    with pytest.raises(ModelFileError, match=match or None) as info:
        pynn.load(path)
    assert str(path) in str(info.value)  # the message names the file
    return info.value


def test_pickle_file_executes_nothing(tmp_path):
    marker = tmp_path / "pwned"
    evil = tmp_path / "model.npz"
    evil.write_bytes(pickle.dumps(_Payload(marker)))
    _load_fails(evil, "pickle")
    assert not marker.exists()
    # the same payload really runs when unpickled (the test would prove nothing otherwise)
    pickle.loads(evil.read_bytes()).close()
    assert marker.exists()


@pytest.mark.parametrize("entry", ["params.npy", "meta.npy", "opt_velocity.npy"])
def test_pickled_entry_executes_nothing(saved, tmp_path, entry):
    _model, path = saved
    marker = tmp_path / "pwned"
    entries = _entries(path)
    entries[entry] = _npy(np.array([_Payload(marker)], dtype=object))
    _write_zip(path, entries)
    _load_fails(path, "pickled Python objects")
    assert not marker.exists()


def test_pickle_inside_an_extra_entry_is_never_read(saved, tmp_path):
    model, path = saved
    marker = tmp_path / "pwned"
    entries = _entries(path)
    entries["zz_extra.npy"] = _npy(np.array([_Payload(marker)], dtype=object))
    _write_zip(path, entries)
    loaded = pynn.load(path)  # unknown entries are ignored, never unpickled
    assert loaded.params.tobytes() == model.params.tobytes()
    assert not marker.exists()


@pytest.mark.parametrize("shape", [(2**34,), (2**62,), (2**20, 2**20)])
def test_header_claiming_a_huge_shape_allocates_nothing(saved, shape):
    _model, path = saved
    entries = _entries(path)
    entries["params.npy"] = _npy(header={"descr": "<f4", "fortran_order": False,
                                         "shape": shape}, data=b"\0" * 256)
    _write_zip(path, entries)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    _load_fails(path, "claims shape")
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 100_000  # KiB


def test_decompression_bomb_is_refused_before_unpacking(saved):
    _model, path = saved
    entries = _entries(path)
    n = 2**24  # 64 MiB of float32 zeros: about 64 KiB compressed
    entries["params.npy"] = _npy(header={"descr": "<f4", "fortran_order": False,
                                         "shape": (n,)}, data=bytes(4 * n))
    _write_zip(path, entries, compression=zipfile.ZIP_DEFLATED)
    assert os.path.getsize(path) < 4 * n // 100
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    _load_fails(path, "more than the whole file holds")
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 100_000  # KiB


def test_oversized_and_malformed_npy_headers(saved):
    _model, path = saved
    good = _entries(path)
    bad_headers = {
        # numpy refuses headers over 10000 bytes (a literal_eval of attacker text)
        "huge": b"\x93NUMPY\x01\x00" + (60000).to_bytes(2, "little") + b"{" + b" " * 59999,
        "code, not a dict": b"\x93NUMPY\x01\x00" + (16).to_bytes(2, "little")
        + b"__import__('os')",
        "bad version": b"\x93NUMPY\x09\x00" + (10).to_bytes(2, "little") + b"{}        ",
        "negative dim": _npy(header={"descr": "<f4", "fortran_order": False, "shape": (-1,)}),
        "strange dtype": _npy(header={"descr": "<U8", "fortran_order": False, "shape": (1,)},
                              data=b"x" * 32),
    }
    for data in bad_headers.values():
        entries = dict(good, **{"params.npy": data})
        _write_zip(path, entries)
        with pytest.raises(ModelFileError):
            pynn.load(path)


def test_huge_json_header_is_refused_cleanly(saved):
    _model, path = saved
    entries = _entries(path)
    meta = json.loads(np.load(io.BytesIO(entries["meta.npy"])).tobytes())
    meta["config"]["layers"] = meta["config"]["layers"] * 20_000  # 40k layers, 3 MB of JSON
    entries["meta.npy"] = _npy(np.frombuffer(json.dumps(meta).encode(), np.uint8))
    _write_zip(path, entries)
    _load_fails(path, "")


@pytest.mark.parametrize("mutate,match", [
    (lambda m: m.update(version=2), "format version 2"),
    (lambda m: m.update(version="1"), "format version '1'"),
    (lambda m: m["optimizer"].update(name="__import__"), ""),
    (lambda m: m.update(loss={"name": "os.system"}), ""),
    (lambda m: m["config"]["layers"][0].update(in_features=-4), ""),
    (lambda m: m["config"]["layers"][0].update(in_features=2**40), ""),
    (lambda m: m["config"].update(dtype="object"), ""),
    (lambda m: m.update(rng_state={"bit_generator": "MT19937", "state": {}}), ""),
    (lambda m: m.update(epochs_trained="many"), ""),
])
def test_hostile_meta_values(saved, mutate, match):
    _model, path = saved
    entries = _entries(path)
    meta = json.loads(np.load(io.BytesIO(entries["meta.npy"])).tobytes())
    mutate(meta)
    entries["meta.npy"] = _npy(np.frombuffer(json.dumps(meta).encode(), np.uint8))
    _write_zip(path, entries)
    _load_fails(path, match)


def test_every_truncation_of_a_real_file_is_a_clear_error(saved):
    _model, path = saved
    data = path.read_bytes()
    cuts = sorted(set(range(0, len(data), max(1, len(data) // 150))) | {len(data) - 1})
    for cut in cuts:
        path.write_bytes(data[:cut])
        with pytest.raises(ModelFileError):
            pynn.load(path)


def test_every_single_byte_flip_is_detected_or_harmless(saved):
    """A flipped byte anywhere: either a ModelFileError, or (in bytes no reader looks at, e.g.
    zip timestamps) a model bitwise equal to the saved one — never a wrong model."""
    model, path = saved
    data = path.read_bytes()
    rng = np.random.default_rng(0)
    for pos in rng.choice(len(data), size=min(len(data), 250), replace=False):
        flipped = bytearray(data)
        flipped[pos] ^= 0x5A
        path.write_bytes(bytes(flipped))
        try:
            loaded = pynn.load(path)
        except ModelFileError:
            continue
        assert loaded.params.tobytes() == model.params.tobytes(), f"byte {pos}"
        assert loaded.get_config() == model.get_config(), f"byte {pos}"


def test_directory_and_missing_paths(tmp_path):
    with pytest.raises(FileNotFoundError):
        pynn.load(tmp_path / "nope.npz")
    with pytest.raises((IsADirectoryError, PermissionError)):
        pynn.load(tmp_path)


def _leaves(obj, path=()):
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _leaves(v, path + (k,))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from _leaves(v, path + (i,))
    else:
        yield path


ODD_VALUES = [None, -1, 0, 2**70, -(2**70), 1e308, float("nan"), "x", "", [], {}, [1, 2],
              {"a": 1}, True]


def test_every_meta_field_with_odd_values(saved):
    """Each field of the JSON header replaced by odd values: a model equal to the saved one
    (the field is informational) or a ModelFileError — never another exception."""
    model, path = saved
    entries = _entries(path)
    meta = json.loads(np.load(io.BytesIO(entries["meta.npy"])).tobytes())
    tried = 0
    for leaf in list(_leaves(meta)):
        for value in ODD_VALUES:
            changed = json.loads(json.dumps(meta))
            node = changed
            for key in leaf[:-1]:
                node = node[key]
            if leaf:
                node[leaf[-1]] = value
            entries["meta.npy"] = _npy(np.frombuffer(json.dumps(changed).encode(), np.uint8))
            _write_zip(path, entries)
            tried += 1
            try:
                loaded = pynn.load(path)
            except ModelFileError:
                continue
            assert loaded.params.tobytes() == model.params.tobytes(), (leaf, value)
    assert tried > 100
