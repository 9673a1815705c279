"""pynn.save / pynn.load: exact round trips, atomic writes, and clear errors on bad files."""
import io
import json
import os
import pickle
import zipfile

import numpy as np
import pytest

import pynn
from pynn.io import ModelFileError


@pytest.fixture
def trained():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((120, 5)).astype(np.float32)
    y = (X[:, 0] > X[:, 1]).astype(int) + (X[:, 2] > 0)
    model = pynn.Sequential([pynn.Dense(5, 12, "leaky_relu", alpha=0.1),
                             pynn.Dense(12, 6, "tanh"), pynn.Dense(6, 3)], seed=3)
    model.fit(X, y, loss="cross_entropy", optimizer=pynn.SGD(0.1, momentum=0.9), epochs=2)
    return model, X, y


def test_round_trip_is_bitwise_exact(trained, tmp_path):
    model, X, _y = trained
    path = tmp_path / "model.npz"
    pynn.save(model, path)
    loaded = pynn.load(path)
    assert loaded.params.tobytes() == model.params.tobytes()
    assert loaded.dtype == model.dtype and loaded.params.ctypes.data % 64 == 0
    assert [repr(a) for a in loaded.layers] == [repr(a) for a in model.layers]
    assert loaded.layers[0].alpha == 0.1
    assert isinstance(loaded.loss, pynn.CrossEntropy)
    assert repr(loaded.optimizer) == repr(model.optimizer)
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
    np.testing.assert_array_equal(loaded(X), model(X))
    # the model layer's public description rebuilds the same architecture (io uses it)
    rebuilt = pynn.Sequential.from_config(model.get_config())
    assert rebuilt.get_config() == model.get_config()
    rebuilt.params[...] = model.params
    np.testing.assert_array_equal(rebuilt(X), model(X))


@pytest.mark.parametrize("optimizer", [lambda: pynn.SGD(0.05, momentum=0.9, nesterov=True),
                                       lambda: pynn.Adam(0.01, weight_decay=1e-4),
                                       lambda: pynn.SGD(pynn.Cosine(0.1, epochs=5))])
def test_training_continues_identically_after_load(trained, tmp_path, optimizer):
    _, X, y = trained
    model = pynn.Sequential([pynn.Dense(5, 8, "relu"), pynn.Dense(8, 3)], seed=1,
                            dtype="float64")
    model.fit(X, y, loss="cross_entropy", optimizer=optimizer(), epochs=2)
    pynn.save(model, tmp_path / "m.npz")
    loaded = pynn.load(tmp_path / "m.npz")
    model.fit(X, y, epochs=2)
    loaded.fit(X, y, epochs=2)
    assert loaded.params.tobytes() == model.params.tobytes()
    assert loaded.epochs_trained == model.epochs_trained == 4


def test_untrained_model_round_trips(tmp_path):
    model = pynn.Sequential([pynn.Dense(3, 2)], seed=0, dtype="float64")
    pynn.save(model, tmp_path / "m.npz")
    loaded = pynn.load(tmp_path / "m.npz")
    assert loaded.loss is None and loaded.optimizer is None
    assert loaded.params.tobytes() == model.params.tobytes()


def test_save_is_atomic(trained, tmp_path, monkeypatch):
    model, _X, _ = trained
    path = tmp_path / "model.npz"
    pynn.save(model, path)
    good = path.read_bytes()

    def crash(*args, **kwargs):
        raise OSError("disk full")
    monkeypatch.setattr(np, "savez", crash)
    model.params[:] = 0
    with pytest.raises(OSError, match="disk full"):
        pynn.save(model, path)
    assert path.read_bytes() == good
    assert sorted(os.listdir(tmp_path)) == ["model.npz"]  # no temporary left behind


def test_truncated_file(trained, tmp_path):
    path = tmp_path / "model.npz"
    pynn.save(trained[0], path)
    data = path.read_bytes()
    for cut in (10, len(data) // 2, len(data) - 30):
        path.write_bytes(data[:cut])
        with pytest.raises(ModelFileError, match="not a valid pynn model file"):
            pynn.load(path)


def test_corrupted_bytes_are_detected(trained, tmp_path):
    path = tmp_path / "model.npz"
    pynn.save(trained[0], path)
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo("params.npy")
    # flip a byte inside the stored parameter data (after the local header and .npy header)
    pos = info.header_offset + 30 + len(info.filename) + 200
    data[pos] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ModelFileError, match="corrupt"):
        pynn.load(path)


def _rewrite(path, change_meta=None, drop=None, replace=None):
    with np.load(path) as npz:
        arrays = {k: npz[k] for k in npz.files}
    meta = json.loads(arrays["meta"].tobytes())
    if change_meta:
        change_meta(meta)
    arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), np.uint8)
    for key in drop or ():
        del arrays[key]
    arrays.update(replace or {})
    with open(path, "wb") as f:
        np.savez(f, **arrays)


@pytest.mark.parametrize("edit,words", [
    ({"change_meta": lambda m: m["config"]["layers"][2].update(out_features=7)},
     "do not match the architecture"),
    ({"change_meta": lambda m: m["config"]["layers"][1].update(out_features=7)},
     "layers\\[2\\] takes 6 inputs"),
    ({"change_meta": lambda m: m["config"].update(dtype="float64")},
     "do not match the architecture"),
    ({"change_meta": lambda m: m.update(version=99)}, "format version 99"),
    ({"change_meta": lambda m: m.update(format="keras")}, "not a pynn model file"),
    ({"change_meta": lambda m: m.update(params_sha256="0" * 64)}, "checksum"),
    ({"change_meta": lambda m: m["config"]["layers"][0].update(activation="gelu")},
     "inconsistent model description"),
    ({"drop": ["params"]}, "'params' is missing"),
    ({"drop": ["opt_velocity"]}, "optimizer state 'velocity'"),
    ({"replace": {"params": np.zeros(5, np.float32)}}, "do not match the architecture"),
])
def test_mismatched_contents_raise_clear_errors(trained, tmp_path, edit, words):
    path = tmp_path / "model.npz"
    pynn.save(trained[0], path)
    _rewrite(path, **edit)
    with pytest.raises(ModelFileError, match=words):
        pynn.load(path)


def test_pickle_payloads_are_never_unpickled(trained, tmp_path):
    model = trained[0]
    raw = tmp_path / "model.pkl"
    raw.write_bytes(pickle.dumps(model))
    with pytest.raises(ModelFileError):
        pynn.load(raw)
    # an .npz whose entry is a pickled object array
    path = tmp_path / "evil.npz"
    pynn.save(model, path)
    _rewrite(path, replace={"params": np.array([{"x": 1}], dtype=object)})
    with pytest.raises(ModelFileError, match="pickled"):
        pynn.load(path)
    # a lone .npy file
    npy = tmp_path / "params.npy"
    np.save(npy, model.params)
    with pytest.raises(ModelFileError, match="single .npy"):
        pynn.load(npy)


def test_not_a_model_file(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("hello")
    with pytest.raises(ModelFileError, match="not a valid pynn model file"):
        pynn.load(path)
    with pytest.raises(FileNotFoundError):
        pynn.load(tmp_path / "missing.npz")
    buf = io.BytesIO()
    np.savez(buf, something=np.zeros(3))
    (tmp_path / "other.npz").write_bytes(buf.getvalue())
    with pytest.raises(ModelFileError, match="'meta' is missing"):
        pynn.load(tmp_path / "other.npz")


def test_plain_callable_learning_rate_cannot_be_saved(tmp_path):
    model = pynn.Sequential([pynn.Dense(3, 2)], seed=0)
    model.compile(loss="mse", optimizer=pynn.SGD(lambda epoch: 0.1))
    with pytest.raises(TypeError, match="plain callable"):
        pynn.save(model, tmp_path / "m.npz")
    assert not os.listdir(tmp_path)
    with pytest.raises(TypeError, match="Sequential"):
        pynn.save("model", tmp_path / "m.npz")


def test_metadata_round_trips_and_must_be_json(tmp_path):
    model = pynn.Sequential([pynn.Dense(3, 2)], seed=0)
    assert model.metadata == {}
    model.metadata = {"classes": ["cat", "dog"], "mean": [0.1, 2.5e-300], "task": None}
    pynn.save(model, tmp_path / "m.npz")
    assert pynn.load(tmp_path / "m.npz").metadata == model.metadata
    model.metadata = {"bad": np.float32(1.0)}
    with pytest.raises(TypeError, match="metadata must be JSON"):
        pynn.save(model, tmp_path / "bad.npz")
    assert not (tmp_path / "bad.npz").exists()
