"""pynn.save / pynn.load with a .safetensors path: pynn's own reader and writer of the format,
checked against the real `safetensors` package (it reads our files, ours reads its files),
bitwise round trips, training that continues where it stopped, atomic writes, and hostile
files (each a ModelFileError naming the file, never another exception).

safetensors is installed by .ci/run; on a developer's machine without it the tests that use it
skip, in CI (CI=true) they fail instead. The others need nothing but pynn.
"""
import importlib
import json
import os
import struct

import numpy as np
import pytest

import pynn
from pynn.io import ModelFileError
from pynn.io.safetensors import MAX_HEADER_BYTES

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def need(module: str, pip_name: str):
    try:
        return importlib.import_module(module)
    except ImportError:
        if IN_CI:
            raise
        pytest.skip(f"{module} is not installed (pip install {pip_name})")


def data(n=96, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, 5))
    return X, (X[:, 0] > X[:, 1]).astype(int) + (X[:, 2] > 0)


def network(dtype="float64", seed=1):
    return pynn.Sequential([pynn.Dense(5, 8, "leaky_relu", alpha=0.2), pynn.Dense(8, 6, "tanh"),
                            pynn.Dense(6, 3)], seed=seed, dtype=dtype)


OPTIMIZERS = {
    "sgd-nesterov-cosine": lambda: pynn.SGD(pynn.Cosine(0.1, epochs=5), momentum=0.9,
                                            nesterov=True),
    "adam": lambda: pynn.Adam(0.01, weight_decay=1e-4),
    "rmsprop": lambda: pynn.optim.RMSprop(0.01),
    "plain-sgd": lambda: pynn.SGD(0.1),
}


@pytest.fixture
def trained(tmp_path):
    X, y = data()
    model = network("float32")
    model.fit(X.astype(np.float32), y, loss="cross_entropy",
              optimizer=pynn.SGD(0.1, momentum=0.9), epochs=2, verbose=0)
    model.metadata = {"classes": ["a", "b", "c"], "note": "ünïcode"}
    path = tmp_path / "model.safetensors"
    pynn.save(model, path)
    return model, path


def header_and_data(path):
    raw = path.read_bytes()
    n = int.from_bytes(raw[:8], "little")
    return json.loads(raw[8:8 + n]), raw[8 + n:]


def craft(path, header, body, pad=True):
    text = json.dumps(header).encode() if isinstance(header, dict) else header
    if pad:
        text += b" " * (-len(text) % 8)
    path.write_bytes(struct.pack("<Q", len(text)) + text + body)


def load_fails(path, match=None):
    with pytest.raises(ModelFileError, match=match) as info:
        pynn.load(path)
    assert str(path) in str(info.value)  # the message names the file
    return info.value


# ---- round trips -------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("optimizer", sorted(OPTIMIZERS))
def test_round_trip_is_bitwise(tmp_path, dtype, optimizer):
    X, y = data()
    model = network(dtype)
    model.fit(X.astype(dtype), y, loss="cross_entropy", optimizer=OPTIMIZERS[optimizer](),
              epochs=2, verbose=0)
    path = tmp_path / "m.safetensors"
    pynn.save(model, path)
    loaded = pynn.load(path)
    assert loaded.params.tobytes() == model.params.tobytes()
    assert loaded.get_config() == model.get_config() and loaded.layers[0].alpha == 0.2
    assert repr(loaded.optimizer) == repr(model.optimizer)
    assert (loaded.optimizer.epoch, loaded.optimizer.iterations) == (
        model.optimizer.epoch, model.optimizer.iterations)
    for name, buf in model.optimizer.state_arrays().items():
        assert loaded.optimizer.state_arrays()[name].tobytes() == buf.tobytes()
    assert isinstance(loaded.loss, pynn.CrossEntropy)
    assert loaded.epochs_trained == 2
    assert loaded.rng.bit_generator.state == model.rng.bit_generator.state
    np.testing.assert_array_equal(loaded(X.astype(dtype)), model(X.astype(dtype)))
    assert sorted(os.listdir(tmp_path)) == ["m.safetensors"]


@pytest.mark.parametrize("optimizer", sorted(OPTIMIZERS))
def test_fit_two_save_load_fit_one_equals_three_in_one_go(tmp_path, optimizer):
    X, y = data()
    whole = network("float32")
    whole.fit(X, y, loss="cross_entropy", optimizer=OPTIMIZERS[optimizer](), epochs=3,
              batch_size=16, shuffle=False, verbose=0)
    part = network("float32")
    part.fit(X, y, loss="cross_entropy", optimizer=OPTIMIZERS[optimizer](), epochs=2,
             batch_size=16, shuffle=False, verbose=0)
    pynn.save(part, tmp_path / "m.safetensors")
    resumed = pynn.load(tmp_path / "m.safetensors")
    resumed.fit(X, y, epochs=1, batch_size=16, shuffle=False, verbose=0)
    assert resumed.params.tobytes() == whole.params.tobytes()
    assert resumed.epochs_trained == whole.epochs_trained == 3


def test_shuffled_training_continues_as_if_never_saved(tmp_path):
    # each fit call draws its shuffling seed from the model's generator: its state travels too
    X, y = data()
    model = network()
    model.fit(X, y, loss="cross_entropy", optimizer=pynn.Adam(0.01), epochs=2, verbose=0)
    pynn.save(model, tmp_path / "m.safetensors")
    loaded = pynn.load(tmp_path / "m.safetensors")
    model.fit(X, y, epochs=2, verbose=0)
    loaded.fit(X, y, epochs=2, verbose=0)
    assert loaded.params.tobytes() == model.params.tobytes()


def test_untrained_model_and_metadata_round_trip(tmp_path):
    model = network()
    model.metadata = {"classes": ["cat", "dog"], "mean": [0.1, 2.5e-300], "task": None}
    pynn.save(model, tmp_path / "m.safetensors")
    loaded = pynn.load(tmp_path / "m.safetensors")
    assert loaded.loss is None and loaded.optimizer is None
    assert loaded.params.tobytes() == model.params.tobytes()
    assert loaded.metadata == model.metadata


def test_file_layout_is_pytorchs_names_and_aligned_data(trained):
    model, path = trained
    header, body = header_and_data(path)
    meta = header.pop("__metadata__")
    assert sorted(header) == ["0.bias", "0.weight", "2.bias", "2.weight", "4.bias", "4.weight",
                              "optimizer.velocity"]
    assert header["0.weight"]["shape"] == [8, 5] and header["0.weight"]["dtype"] == "F32"
    assert header["optimizer.velocity"]["shape"] == [model.n_params]
    assert (8 + len(path.read_bytes()) - len(body) - 8) % 8 == 0  # data starts 8-byte aligned
    assert meta["format"] == "pynn.Sequential" and json.loads(meta["version"]) == 1
    assert json.loads(meta["config"]) == model.get_config()
    assert json.loads(meta["metadata"]) == model.metadata
    assert all(isinstance(v, str) for v in meta.values())


def test_a_safetensors_file_under_another_name_loads(trained, tmp_path):
    model, path = trained
    other = tmp_path / "weights.bin"
    other.write_bytes(path.read_bytes())
    assert pynn.load(other).params.tobytes() == model.params.tobytes()


def test_model_checkpoint_writes_safetensors(tmp_path):
    X, y = data()
    model = network()
    model.fit(X, y, loss="cross_entropy", epochs=2, verbose=0,
              callbacks=[pynn.ModelCheckpoint(str(tmp_path / "ckpt-{epoch}.safetensors"))])
    assert sorted(os.listdir(tmp_path)) == ["ckpt-1.safetensors", "ckpt-2.safetensors"]
    assert pynn.load(tmp_path / "ckpt-2.safetensors").params.tobytes() == model.params.tobytes()


# ---- the real safetensors package --------------------------------------------------------------

def test_the_safetensors_package_reads_our_file(trained):
    st = need("safetensors.numpy", "safetensors")
    from safetensors import safe_open

    model, path = trained
    tensors = st.load_file(str(path))
    state = model.state_dict()
    assert set(tensors) == set(state) | {"optimizer.velocity"}
    for name, value in state.items():
        assert tensors[name].dtype == value.dtype and tensors[name].tobytes() == value.tobytes()
    velocity = model.optimizer.state_arrays()["velocity"]
    assert tensors["optimizer.velocity"].tobytes() == velocity.tobytes()
    with safe_open(str(path), "np") as f:
        meta = f.metadata()
    assert meta["format"] == "pynn.Sequential" and json.loads(meta["config"]) == model.get_config()


def test_a_file_the_safetensors_package_wrote_loads(trained, tmp_path):
    st = need("safetensors.numpy", "safetensors")
    from safetensors import safe_open

    model, path = trained
    with safe_open(str(path), "np") as f:
        meta = f.metadata()
    theirs = tmp_path / "theirs.safetensors"
    st.save_file(st.load_file(str(path)), str(theirs), metadata=meta)  # its own layout
    loaded = pynn.load(theirs)
    assert loaded.params.tobytes() == model.params.tobytes()
    assert loaded.metadata == model.metadata and repr(loaded.optimizer) == repr(model.optimizer)
    assert (loaded.optimizer.state_arrays()["velocity"].tobytes()
            == model.optimizer.state_arrays()["velocity"].tobytes())


def test_weights_from_another_tool_with_only_the_architecture_load(tmp_path):
    """The checksum and counters are pynn's; a file with the weights and the three fields that
    describe the model (format, version, config) is enough."""
    st = need("safetensors.numpy", "safetensors")
    model = network()
    path = tmp_path / "w.safetensors"
    st.save_file(model.state_dict(), str(path), metadata={
        "format": "pynn.Sequential", "version": "1", "config": json.dumps(model.get_config())})
    loaded = pynn.load(path)
    assert loaded.params.tobytes() == model.params.tobytes() and loaded.optimizer is None
    plain = tmp_path / "plain.safetensors"
    st.save_file(model.state_dict(), str(plain))
    load_fails(plain, "without pynn's metadata.*load_state_dict")
    restored = network(seed=9)
    restored.load_state_dict(st.load_file(str(plain)))  # the way the message gives
    assert restored.params.tobytes() == model.params.tobytes()


def test_torch_loads_our_weights_into_to_torch_module(trained):
    torch = need("torch", "torch")
    st = need("safetensors.torch", "safetensors")
    model, path = trained
    module = pynn.to_torch(model)
    weights = {k: v for k, v in st.load_file(str(path)).items() if not k.startswith("optimizer.")}
    module.load_state_dict(weights)
    X = data()[0].astype(np.float32)
    np.testing.assert_allclose(module(torch.from_numpy(X)).detach().numpy(), model(X),
                               rtol=1e-5, atol=1e-6)


# ---- writing: what cannot be saved, atomicity --------------------------------------------------

def test_what_cannot_be_saved_is_refused_and_nothing_is_written(tmp_path):
    path = tmp_path / "m.safetensors"
    with pytest.raises(ValueError, match="parameters"):
        pynn.save(pynn.Sequential([pynn.Dense(4, "relu"), pynn.Dense(2)]), path)
    model = network()
    model.compile(loss="mse", optimizer=pynn.SGD(lambda epoch: 0.1))
    with pytest.raises(TypeError, match="plain callable"):
        pynn.save(model, path)
    model = network()
    model.metadata = {"bad": np.float32(1.0)}
    with pytest.raises(TypeError, match="metadata must be JSON"):
        pynn.save(model, path)
    with pytest.raises(TypeError, match="Sequential"):
        pynn.save("model", path)
    assert os.listdir(tmp_path) == []


def test_a_failed_write_leaves_the_old_file_and_no_temporary(trained, monkeypatch):
    model, path = trained
    good = path.read_bytes()

    def crash(fd):
        raise OSError("disk full")
    monkeypatch.setattr(os, "fsync", crash)
    model.params[:] = 0
    with pytest.raises(OSError, match="disk full"):
        pynn.save(model, path)
    assert path.read_bytes() == good
    assert os.listdir(path.parent) == [path.name]


# ---- hostile and broken files ------------------------------------------------------------------

def test_every_truncation_is_a_clear_error(trained):
    _model, path = trained
    raw = path.read_bytes()
    for cut in sorted(set(range(0, len(raw), max(1, len(raw) // 200))) | {len(raw) - 1}):
        path.write_bytes(raw[:cut])
        load_fails(path)


def test_every_single_byte_flip_is_detected_or_harmless(trained):
    """Anywhere in the file: a ModelFileError or (JSON spacing, a digit of an unused counter
    copy...) a model bitwise equal to the saved one, never a wrong model."""
    model, path = trained
    raw = path.read_bytes()
    rng = np.random.default_rng(0)
    for pos in rng.choice(len(raw), size=min(len(raw), 300), replace=False):
        flipped = bytearray(raw)
        flipped[pos] ^= 0x5A
        path.write_bytes(bytes(flipped))
        try:
            loaded = pynn.load(path)
        except ModelFileError:
            continue
        assert loaded.params.tobytes() == model.params.tobytes(), f"byte {pos}"
        assert loaded.get_config() == model.get_config(), f"byte {pos}"
        velocity = loaded.optimizer.state_arrays()["velocity"]
        assert velocity.tobytes() == model.optimizer.state_arrays()["velocity"].tobytes()


@pytest.mark.parametrize("length, match", [
    (2**64 - 1, "more than the"),
    (MAX_HEADER_BYTES + 1, "more than the"),
    (10**6, "truncated or corrupt"),
])
def test_header_length_larger_than_the_file_or_absurd(trained, length, match):
    _model, path = trained
    raw = path.read_bytes()
    path.write_bytes(struct.pack("<Q", length) + raw[8:])
    load_fails(path, match)


@pytest.mark.parametrize("text, match", [
    (b"not json at all", "not a JSON object"),
    (b"{\"a\": ", "not valid JSON"),
    (b"\xff\xfe{}", "not UTF-8"),
    (b"[1, 2, 3]", "not a JSON object"),
    (b"{" * 100000 + b"}" * 100000, "not valid JSON"),
    (b'{"__metadata__": {"format": "x"}, "__metadata__": {}}', "appears twice"),
])
def test_broken_headers(tmp_path, text, match):
    path = tmp_path / "m.safetensors"
    craft(path, text, b"")
    load_fails(path, match)


def _edit(path, change, keep_checksum=False):
    """`change(header, body)` applied to the file; edited metadata lose their checksum (as an
    edited file must), so that the checks behind it are reached."""
    header, body = header_and_data(path)
    before = json.dumps(header["__metadata__"], sort_keys=True)
    body = change(header, bytearray(body))
    meta = header.get("__metadata__")
    if isinstance(meta, dict) and json.dumps(meta, sort_keys=True) != before and not keep_checksum:
        meta.pop("metadata_sha256", None)
    craft(path, header, bytes(body))


def test_edited_metadata_with_the_old_checksum_are_refused(trained):
    _model, path = trained
    _edit(path, lambda h, b: h["__metadata__"].update(epochs_trained="7") or b,
          keep_checksum=True)
    load_fails(path, "metadata do not match their SHA-256 checksum.*leave out 'metadata_sha256'")
    _edit(path, lambda h, b: h["__metadata__"].pop("metadata_sha256") and b)
    assert pynn.load(path).epochs_trained == 7


@pytest.mark.parametrize("change, match", [
    # the tensors' descriptions
    (lambda h, b: h["0.bias"].update(dtype="BF16") or b, "dtype 'BF16'"),
    (lambda h, b: h["0.bias"].update(dtype="F128") or b, "does not read"),
    (lambda h, b: h["0.bias"].update(dtype=7) or b, "does not read"),
    (lambda h, b: h["0.bias"].update(shape=[-8]) or b, "integers >= 0"),
    (lambda h, b: h["0.bias"].update(shape=[True] * 3) or b, "integers >= 0"),
    (lambda h, b: h["0.bias"].update(shape="8") or b, "integers >= 0"),
    (lambda h, b: h["0.bias"].update(shape=[4]) or b, "16 bytes.*span 32"),
    (lambda h, b: h["0.bias"].update(shape=[2**40, 2**40]) or b, "span 32"),
    (lambda h, b: h["0.bias"].update(data_offsets=[5]) or b, "begin, end"),
    (lambda h, b: h["0.bias"].update(data_offsets=[40, 8]) or b, "begin, end"),
    (lambda h, b: h["0.bias"].update(data_offsets=[1.5, 33.5]) or b, "begin, end"),
    (lambda h, b: h["0.bias"].update(extra=1) or b, "exactly dtype, shape and data_offsets"),
    (lambda h, b: h.update(stray=[1, 2]) or b, "exactly dtype"),
    # offsets that do not tile the data
    (lambda h, b: h["0.bias"].update(data_offsets=[0, 32]) or b, "overlap or leave a gap"),
    (lambda h, b: h["0.bias"].update(
        data_offsets=[len(b) + 8, len(b) + 40]) or b, "ends at byte"),
    (lambda h, b: b + b"\0" * 8, "bytes no tensor owns"),
    (lambda h, b: b[:-8], "ends at byte"),
    # tensors that do not fit the architecture
    (lambda h, b: h.update({"9.weight": dict(h["0.bias"])}) or b, "overlap"),
    (lambda h, b: h["0.weight"].update(shape=[5, 8]) or b,
     "architecture needs float32 of shape \\(8, 5\\)"),
    (lambda h, b: h["0.weight"].update(dtype="I32") or b, "architecture needs float32"),
    # the metadata
    (lambda h, b: h.update(__metadata__=[1]) or b, "map names to strings"),
    (lambda h, b: h["__metadata__"].update(version=1) or b, "map names to strings"),
    (lambda h, b: h["__metadata__"].update(config="{oops") or b, "'config' is not valid JSON"),
    (lambda h, b: h["__metadata__"].update(config="[" * 50000) or b, "not valid JSON"),
    (lambda h, b: h["__metadata__"].update(version="2") or b, "format version 2"),
    (lambda h, b: h["__metadata__"].update(version='"1"') or b, "format version '1'"),
    (lambda h, b: h["__metadata__"].update(format="pt") or b, "not a pynn model file"),
    (lambda h, b: h["__metadata__"].pop("format") and b, "without pynn's metadata"),
    (lambda h, b: h["__metadata__"].update(params_sha256="0" * 64) or b, "checksum"),
    (lambda h, b: h["__metadata__"].update(n_params="7") or b, "header says 7 parameters"),
    (lambda h, b: h["__metadata__"].update(loss='{"name": "os.system"}') or b, "inconsistent"),
    (lambda h, b: h["__metadata__"].update(optimizer='{"name": "__import__"}') or b,
     "inconsistent"),
    (lambda h, b: h["__metadata__"].update(
        rng_state='{"bit_generator": "MT19937", "state": {}}') or b, "inconsistent"),
    (lambda h, b: h["__metadata__"].update(epochs_trained='"many"') or b, "inconsistent"),
    (lambda h, b: h["__metadata__"].update(metadata="[1]") or b, "JSON object"),
    (lambda h, b: h["__metadata__"].update(config=json.dumps(
        {"layers": [{"type": "Dense", "in_features": 2**40, "out_features": 2**40}],
         "dtype": "float32", "seed": 0})) or b, "inconsistent"),
    (lambda h, b: h["__metadata__"].update(config=json.dumps(
        {"layers": [], "dtype": "object", "seed": 0})) or b, "inconsistent"),
])
def test_lying_and_hostile_contents(trained, change, match):
    _model, path = trained
    _edit(path, change)
    load_fails(path, match)


def write_file(path, tensors, metadata):
    """A safetensors file written here, independently of pynn's writer."""
    header, body = {"__metadata__": metadata}, b""
    for name, arr in tensors.items():
        raw = np.ascontiguousarray(arr).astype(arr.dtype.newbyteorder("<")).tobytes()
        code = {"float32": "F32", "float64": "F64", "int32": "I32", "uint8": "U8"}[arr.dtype.name]
        header[name] = {"dtype": code, "shape": list(arr.shape),
                        "data_offsets": [len(body), len(body) + len(raw)]}
        body += raw
    craft(path, header, body)


@pytest.mark.parametrize("change, match", [
    (lambda t: t.pop("2.weight"), "tensors \\['2.weight'\\] are missing"),
    (lambda t: t.pop("optimizer.velocity"), "optimizer state 'velocity'"),
    (lambda t: t.update({"optimizer.extra": np.zeros(1, np.uint8)}),
     "unexpected tensors \\['optimizer.extra'\\]"),
    (lambda t: t.update({"6.weight": np.zeros((2, 3), np.float32)}),
     "unexpected tensors \\['6.weight'\\]"),
    (lambda t: t.update({"optimizer.velocity": t["optimizer.velocity"][:-1]}),
     "optimizer state 'velocity'"),
    (lambda t: t["optimizer.velocity"].__setitem__(0, 1.0), "optimizer state does not match its SHA-256"),
    (lambda t: t.update({k: v.astype(np.float64) for k, v in t.items()}),
     "is float64 of shape .* needs float32"),
])
def test_tensors_that_do_not_fit_the_model(trained, change, match):
    _model, path = trained
    tensors, metadata = pynn.io.safetensors.read(str(path))
    change(tensors)
    write_file(path, tensors, metadata)
    load_fails(path, match)


def test_not_a_model_file_and_missing_paths(tmp_path):
    path = tmp_path / "notes.safetensors"
    path.write_text("hello")
    load_fails(path, "fewer than the 8")
    with pytest.raises(FileNotFoundError):
        pynn.load(tmp_path / "missing.safetensors")
    with pytest.raises((IsADirectoryError, PermissionError)):
        pynn.load(tmp_path)


ODD_VALUES = [None, -1, 0, 2**70, 1e308, float("nan"), "x", "", [], {}, [1, 2], {"a": 1}, True]


def test_every_metadata_entry_with_odd_values(trained):
    """Each entry of __metadata__ replaced by odd JSON values, or text that is not JSON: a model
    equal to the saved one (the entry is informational) or a ModelFileError, nothing else."""
    model, path = trained
    header, body = header_and_data(path)
    tried = 0
    for key in header["__metadata__"]:
        for value in [*(json.dumps(v) for v in ODD_VALUES), "{not json", "\u0000"]:
            changed = json.loads(json.dumps(header))
            changed["__metadata__"][key] = value
            changed["__metadata__"].pop("metadata_sha256", None)
            craft(path, changed, body)
            tried += 1
            try:
                loaded = pynn.load(path)
            except ModelFileError:
                continue
            assert loaded.params.tobytes() == model.params.tobytes(), (key, value)
    assert tried > 100
