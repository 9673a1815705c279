"""pynn.datasets: IDX reading, the (Fashion-)MNIST loaders, bundled digits, transforms, splits."""
import gzip
import struct

import numpy as np
import pytest

from pynn import datasets as ds


def idx_bytes(array, type_code=None, dims=None):
    """An IDX file's bytes written by hand (big-endian header and data)."""
    array = np.asarray(array)
    codes = {np.uint8: 0x08, np.int8: 0x09, np.int16: 0x0B, np.int32: 0x0C, np.float32: 0x0D,
             np.float64: 0x0E}
    code = codes[array.dtype.type] if type_code is None else type_code
    dims = array.shape if dims is None else dims
    header = bytes([0, 0, code, len(dims)]) + b"".join(struct.pack(">I", d) for d in dims)
    return header + array.astype(array.dtype.newbyteorder(">")).tobytes()


def write(path, data, compress=False):
    path.write_bytes(gzip.compress(data) if compress else data)
    return path


# --- read_idx ---------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.int16, np.int32, np.float32,
                                   np.float64])
@pytest.mark.parametrize("compress", [False, True])
def test_read_idx_round_trips_every_type(tmp_path, rng, dtype, compress):
    array = (rng.standard_normal((3, 5, 7)) * 50).astype(dtype)
    path = write(tmp_path / "a.idx", idx_bytes(array), compress)
    out = ds.read_idx(path)
    assert out.dtype == np.dtype(dtype) and out.dtype.isnative
    assert out.shape == (3, 5, 7)
    np.testing.assert_array_equal(out, array)


def test_read_idx_detects_gzip_by_content_and_takes_str(tmp_path):
    array = np.arange(12, dtype=np.uint8)
    path = write(tmp_path / "labels-without-gz-suffix", idx_bytes(array), compress=True)
    np.testing.assert_array_equal(ds.read_idx(str(path)), array)


def test_read_idx_one_dimension_and_empty(tmp_path):
    path = write(tmp_path / "e.idx", idx_bytes(np.zeros((0, 4), np.uint8)))
    assert ds.read_idx(path).shape == (0, 4)


def test_read_idx_truncated_data_names_the_file(tmp_path):
    data = idx_bytes(np.arange(100, dtype=np.uint8).reshape(10, 10))
    path = write(tmp_path / "trunc.idx", data[:-7])
    with pytest.raises(ValueError, match=r"trunc\.idx.*truncated.*100 data bytes.*93"):
        ds.read_idx(path)


def test_read_idx_trailing_bytes(tmp_path):
    data = idx_bytes(np.arange(6, dtype=np.int32)) + b"\x00"
    with pytest.raises(ValueError, match="trailing bytes"):
        ds.read_idx(write(tmp_path / "t.idx", data))


def test_read_idx_truncated_gzip_names_the_file(tmp_path):
    data = gzip.compress(idx_bytes(np.arange(5000, dtype=np.int32)))
    path = write(tmp_path / "cut.gz", data[: len(data) // 2])
    with pytest.raises(ValueError, match=r"cut\.gz.*gzip"):
        ds.read_idx(path)


def test_read_idx_bad_magic(tmp_path):
    data = b"\x01\x02" + idx_bytes(np.zeros(3, np.uint8))[2:]
    with pytest.raises(ValueError, match=r"bad\.idx.*not an IDX file.*0x01 0x02"):
        ds.read_idx(write(tmp_path / "bad.idx", data))


def test_read_idx_unknown_type_code(tmp_path):
    data = idx_bytes(np.zeros(3, np.uint8), type_code=0x07)
    with pytest.raises(ValueError, match="unknown IDX type code 0x07"):
        ds.read_idx(write(tmp_path / "c.idx", data))


def test_read_idx_header_dims_disagree_with_size(tmp_path):
    data = idx_bytes(np.zeros((4, 4), np.uint8), dims=(4, 5))
    with pytest.raises(ValueError, match=r"shape \(4, 5\).*20 data bytes.*16"):
        ds.read_idx(write(tmp_path / "d.idx", data))


def test_read_idx_huge_declared_size_is_an_error_not_an_allocation(tmp_path):
    data = idx_bytes(np.zeros(4, np.uint8), dims=(2**32 - 1, 2**32 - 1))[:12] + b"\x00" * 4
    with pytest.raises(ValueError, match="truncated"):
        ds.read_idx(write(tmp_path / "h.idx", data))


@pytest.mark.parametrize("data, message", [
    (b"", "shorter than the 4-byte header"),
    (b"\x00\x00\x08", "shorter than the 4-byte header"),
    (b"\x00\x00\x08\x00", "0 dimensions"),
    (b"\x00\x00\x08\x03\x00\x00\x00\x01", "truncated IDX header"),
])
def test_read_idx_short_headers(tmp_path, data, message):
    with pytest.raises(ValueError, match=message):
        ds.read_idx(write(tmp_path / "s.idx", data))


def test_read_idx_argument_errors(tmp_path):
    with pytest.raises(TypeError, match="path must be a str or os.PathLike, got int"):
        ds.read_idx(3)
    with pytest.raises(FileNotFoundError):
        ds.read_idx(tmp_path / "missing.idx")


# --- MNIST-style directories --------------------------------------------------------------------

def make_mnist_dir(directory, rng, n_train=30, n_test=10, compress=True, names=None):
    directory.mkdir(exist_ok=True)
    parts = {}
    for split, n in (("train", n_train), ("t10k", n_test)):
        images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        labels = rng.integers(0, 10, size=n, dtype=np.uint8)
        parts[split] = (images, labels)
        suffix = ".gz" if compress else ""
        write(directory / f"{split}-images-idx3-ubyte{suffix}", idx_bytes(images), compress)
        write(directory / f"{split}-labels-idx1-ubyte{suffix}", idx_bytes(labels), compress)
    return parts


@pytest.mark.parametrize("compress", [True, False])
def test_load_mnist_from_idx_directory(tmp_path, rng, compress):
    parts = make_mnist_dir(tmp_path / "m", rng, compress=compress)
    (Xtr, ytr), (Xte, yte) = ds.load_mnist(tmp_path / "m")
    assert Xtr.shape == (30, 784) and Xte.shape == (10, 784)
    assert Xtr.dtype == np.float32 and ytr.dtype == np.int64
    np.testing.assert_allclose(Xtr, parts["train"][0].reshape(30, 784) / 255.0, rtol=1e-6)
    np.testing.assert_array_equal(yte, parts["t10k"][1])
    assert 0.0 <= Xtr.min() and Xtr.max() <= 1.0


def test_load_fashion_mnist_uses_env_then_argument(tmp_path, rng, monkeypatch):
    make_mnist_dir(tmp_path / "f", rng, n_train=5, n_test=3)
    monkeypatch.setenv("PYNN_DATA", str(tmp_path / "f"))
    (Xtr, _), (Xte, _) = ds.load_fashion_mnist()
    assert len(Xtr) == 5 and len(Xte) == 3
    make_mnist_dir(tmp_path / "g", rng, n_train=4, n_test=2)
    (Xtr, _), _ = ds.load_fashion_mnist(str(tmp_path / "g"))
    assert len(Xtr) == 4


def test_missing_fashion_mnist_says_how_to_get_it(tmp_path, monkeypatch):
    monkeypatch.setenv("PYNN_DATA", str(tmp_path / "nowhere"))
    with pytest.raises(FileNotFoundError) as info:
        ds.load_fashion_mnist()
    text = str(info.value)
    assert "apt-get install dataset-fashion-mnist" in text
    assert "$PYNN_DATA" in text and str(tmp_path / "nowhere") in text
    assert "train-images-idx3-ubyte" in text and "t10k-labels-idx1-ubyte" in text


def test_missing_file_in_directory_is_listed(tmp_path, rng):
    make_mnist_dir(tmp_path / "m", rng)
    (tmp_path / "m" / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(FileNotFoundError, match=r"lacks t10k-labels-idx1-ubyte\[\.gz\]\."):
        ds.load_mnist(tmp_path / "m")
    with pytest.raises(FileNotFoundError, match="apt-get install dataset-fashion-mnist"):
        ds.load_fashion_mnist(tmp_path / "m")


def test_mismatched_counts_and_bad_labels(tmp_path, rng):
    make_mnist_dir(tmp_path / "m", rng, n_train=6)
    write(tmp_path / "m" / "train-labels-idx1-ubyte.gz", idx_bytes(np.zeros(5, np.uint8)), True)
    with pytest.raises(ValueError, match="has 6 images but .*train-labels.* has 5 labels"):
        ds.load_mnist(tmp_path / "m")
    write(tmp_path / "m" / "train-labels-idx1-ubyte.gz",
          idx_bytes(np.full(6, 12, np.uint8)), True)
    with pytest.raises(ValueError, match=r"labels must be in 0\.\.9, found 12"):
        ds.load_mnist(tmp_path / "m")


def test_images_file_of_wrong_kind(tmp_path, rng):
    make_mnist_dir(tmp_path / "m", rng, n_test=4)
    write(tmp_path / "m" / "t10k-images-idx3-ubyte.gz", idx_bytes(np.zeros((4, 784), np.int32)),
          True)
    with pytest.raises(ValueError, match=r"t10k-images.*expected uint8 images"):
        ds.load_mnist(tmp_path / "m")


def test_corrupt_file_in_directory_names_it(tmp_path, rng):
    make_mnist_dir(tmp_path / "m", rng, compress=False)
    path = tmp_path / "m" / "train-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:-1])
    with pytest.raises(ValueError, match="train-images-idx3-ubyte: IDX file truncated"):
        ds.load_mnist(tmp_path / "m")


def test_real_fashion_mnist(fashion_mnist):
    (Xtr, ytr), (Xte, yte) = fashion_mnist
    assert Xtr.shape == (60000, 784) and Xte.shape == (10000, 784)
    assert Xtr.dtype == np.float32 and ytr.dtype == np.int64
    assert Xtr.min() == 0.0 and Xtr.max() == 1.0
    np.testing.assert_array_equal(np.bincount(ytr), [6000] * 10)
    np.testing.assert_array_equal(np.bincount(yte), [1000] * 10)
    assert len(ds.FASHION_MNIST_CLASSES) == 10


# --- bundled digits -----------------------------------------------------------------------------

def test_load_digits_shapes_ranges_and_split():
    (Xtr, ytr), (Xte, yte) = ds.load_digits()
    assert Xtr.shape == (1438, 64) and Xte.shape == (359, 64)
    assert Xtr.dtype == np.float32 and ytr.dtype == np.int64
    assert Xtr.min() == 0.0 and Xtr.max() == 1.0 and Xte.max() <= 1.0
    assert set(np.unique(ytr)) == set(range(10)) == set(np.unique(yte))
    # stratified: every class has 20% (rounded) of its images in the test set
    counts = np.bincount(ytr, minlength=10) + np.bincount(yte, minlength=10)
    np.testing.assert_array_equal(np.bincount(yte), np.round(0.2 * counts).astype(int))
    # deterministic: a second load is identical
    (Xtr2, _), (_, yte2) = ds.load_digits()
    np.testing.assert_array_equal(Xtr, Xtr2)
    np.testing.assert_array_equal(yte, yte2)


def test_bundled_digits_are_the_uci_copy_with_the_documented_split():
    sklearn_datasets = pytest.importorskip("sklearn.datasets")
    ref = sklearn_datasets.load_digits()
    with np.load(ds._DIGITS_FILE, allow_pickle=False) as f:
        images, labels, is_test = f["images"], f["labels"], f["is_test"]
    np.testing.assert_array_equal(images, ref.data)
    np.testing.assert_array_equal(labels, ref.target)
    np.testing.assert_array_equal(is_test, ds._stratified_mask(ref.target, 0.2, seed=0))


# --- one_hot ------------------------------------------------------------------------------------

def test_one_hot_values_and_defaults():
    out = ds.one_hot([2, 0, 1, 2])
    np.testing.assert_array_equal(out, [[0, 0, 1], [1, 0, 0], [0, 1, 0], [0, 0, 1]])
    assert out.dtype == np.float32
    out = ds.one_hot(np.array([1, 0], np.uint8), 4, dtype="float64")
    assert out.shape == (2, 4) and out.dtype == np.float64
    assert ds.one_hot(np.array([], np.int64), 3).shape == (0, 3)


def test_one_hot_errors():
    with pytest.raises(ValueError, match=r"y must be in 0\.\.2 for n_classes=3, found label 3"):
        ds.one_hot([0, 3], 3)
    with pytest.raises(ValueError, match="found label -1"):
        ds.one_hot([0, -1], 3)
    with pytest.raises(ValueError, match="1-D"):
        ds.one_hot([[0, 1]], 3)
    with pytest.raises(TypeError, match="integer class labels"):
        ds.one_hot([0.5, 1.0], 3)
    with pytest.raises(TypeError, match="n_classes must be an int"):
        ds.one_hot([0, 1], 2.0)
    with pytest.raises(ValueError, match="n_classes must be >= 1"):
        ds.one_hot([], 0)
    with pytest.raises(ValueError, match="n_classes is required"):
        ds.one_hot(np.array([], np.int64))
    with pytest.raises(TypeError, match="dtype must be float32 or float64"):
        ds.one_hot([0], 2, dtype="int32")


# --- standardize --------------------------------------------------------------------------------

def test_standardize_fits_on_train_only(rng):
    Xtr = rng.normal(5.0, 3.0, size=(500, 4)).astype(np.float32)
    Xtr[:, 2] = 7.0  # a constant feature maps to 0, not to NaN
    Xte = rng.normal(5.0, 3.0, size=(50, 4)).astype(np.float32)
    Ztr, Zte, scaler = ds.standardize(Xtr, Xte)
    assert Ztr.dtype == np.float32 and Zte.dtype == np.float32
    np.testing.assert_allclose(Ztr.mean(axis=0), 0.0, atol=1e-5)
    np.testing.assert_allclose(Ztr[:, [0, 1, 3]].std(axis=0), 1.0, rtol=1e-5)
    assert np.all(Ztr[:, 2] == 0.0) and scaler.scale_[2] == 1.0
    expected = (Xte.astype(np.float64) - Xtr.mean(axis=0, dtype=np.float64)) / scaler.scale_
    np.testing.assert_allclose(Zte, expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(scaler.inverse_transform(Zte), Xte, rtol=1e-5, atol=1e-5)
    assert ds.standardize(Xtr)[1] is None
    assert "n_features=4" in repr(scaler)


def test_standardizer_errors():
    with pytest.raises(ValueError, match="not fitted"):
        ds.Standardizer().transform(np.zeros((2, 2)))
    scaler = ds.Standardizer().fit(np.ones((3, 2)))
    with pytest.raises(ValueError, match="X has 3 features, the Standardizer was fitted on 2"):
        scaler.transform(np.zeros((1, 3)))
    with pytest.raises(ValueError, match="2-D"):
        ds.standardize(np.zeros(5))
    with pytest.raises(ValueError, match="NaN or infinity"):
        ds.standardize(np.array([[1.0], [np.nan]]))
    with pytest.raises(TypeError, match="numeric"):
        ds.standardize(np.array([["a"]]))
    with pytest.raises(ValueError, match="at least one sample"):
        ds.standardize(np.zeros((0, 3)))
    np.testing.assert_allclose(ds.Standardizer().fit_transform(np.array([[1], [3]])), [[-1], [1]])


# --- train_val_split ----------------------------------------------------------------------------

def test_train_val_split_stratified_and_seeded(rng):
    X = rng.standard_normal((200, 3))
    y = np.repeat(np.arange(4), 50)
    (Xa, ya), (Xv, yv) = ds.train_val_split(X, y, 0.2, seed=1)
    assert len(Xa) == 160 and len(Xv) == 40
    np.testing.assert_array_equal(np.bincount(ya), [40] * 4)
    np.testing.assert_array_equal(np.bincount(yv), [10] * 4)
    # the two parts partition the rows and keep their order
    rows = {tuple(r) for r in np.vstack([Xa, Xv])}
    assert len(rows) == 200
    (Xa2, _), _ = ds.train_val_split(X, y, 0.2, seed=1)
    np.testing.assert_array_equal(Xa, Xa2)
    (Xa3, _), _ = ds.train_val_split(X, y, 0.2, seed=2)
    assert not np.array_equal(Xa, Xa3)
    (_, _), (Xv4, yv4) = ds.train_val_split(X, y.astype(float).reshape(-1, 1), 0.1,
                                            stratify=False)
    assert len(Xv4) == 20 and yv4.shape == (20, 1)


def test_train_val_split_errors():
    X, y = np.zeros((10, 2)), np.zeros(10, np.int64)
    with pytest.raises(ValueError, match="same number of samples"):
        ds.train_val_split(X, y[:9])
    with pytest.raises(ValueError, match=r"val_fraction must be in \(0, 1\), got 1.5"):
        ds.train_val_split(X, y, 1.5)
    with pytest.raises(TypeError, match="val_fraction must be a float"):
        ds.train_val_split(X, y, "0.1")
    with pytest.raises(TypeError, match="seed must be an int"):
        ds.train_val_split(X, y, 0.1, seed=0.5)
    with pytest.raises(ValueError, match="empty"):
        ds.train_val_split(X[:2], y[:2], 0.1)
