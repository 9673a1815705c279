"""Real data sets and the small transforms every MLP needs: IDX files, (Fashion-)MNIST, digits.

Nothing is downloaded at run time. Fashion-MNIST and MNIST are read from IDX files on disk
(`apt-get install dataset-fashion-mnist` puts Fashion-MNIST under
/usr/share/datasets/fashion-mnist); a small real handwritten-digits set ships inside the package.

Bundled digits
--------------
`load_digits()` reads ``pynn/data/digits.npz``: the 1797 8x8 images (pixel counts 0..16) of the
UCI "Optical Recognition of Handwritten Digits" data set (E. Alpaydin and C. Kaynak, 1998; UCI
Machine Learning Repository, CC BY 4.0), the same copy scikit-learn ships as ``load_digits``.
The file holds ``images`` (1797, 64) uint8, ``labels`` (1797,) uint8 and ``is_test`` (1797,) bool.
The split is a stratified 80/20 split fixed once and stored:
``is_test = _stratified_mask(labels, 0.2, seed=0)`` (359 test images, about 36 per class); the
file was made with::

    d = sklearn.datasets.load_digits()
    np.savez_compressed("digits.npz", images=d.data.astype(np.uint8),
                        labels=d.target.astype(np.uint8),
                        is_test=_stratified_mask(d.target, 0.2, seed=0))
"""
from __future__ import annotations

import gzip
import math
import os
import stat
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Union

import numpy as np

__all__ = [
    "DEFAULT_FASHION_MNIST_DIR",
    "FASHION_MNIST_CLASSES",
    "Standardizer",
    "load_digits",
    "load_fashion_mnist",
    "load_mnist",
    "one_hot",
    "read_idx",
    "standardize",
    "train_val_split",
]

PathLike = Union[str, "os.PathLike[str]"]
Split = tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]

DEFAULT_FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"
DATA_ENV = "PYNN_DATA"
DEFAULT_MNIST_DIR = "/usr/share/datasets/mnist"
MNIST_ENV = "PYNN_MNIST"

FASHION_MNIST_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal",
                         "Shirt", "Sneaker", "Bag", "Ankle boot")

# ---------------------------------------------------------------------------------------------
# IDX files (the format of the original MNIST and Fashion-MNIST distributions)
# ---------------------------------------------------------------------------------------------

# IDX header: two zero bytes, a type code, the number of dimensions, then one big-endian uint32
# per dimension; the data follow, big-endian, row-major.
_IDX_DTYPES = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_GZIP_MAGIC = b"\x1f\x8b"


def _check_path(path: object, name: str = "path") -> Path:
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"{name} must be a str or os.PathLike, got {type(path).__name__}")
    return Path(os.fspath(path))


_CHUNK = 1 << 20


def _open_regular(path: Path):
    """Open a regular file for reading; devices, FIFOs and sockets are refused (reading
    /dev/zero never ends, a FIFO blocks until a writer comes)."""
    info = os.stat(path)  # FileNotFoundError passes through as is
    if stat.S_ISDIR(info.st_mode):
        raise IsADirectoryError(f"{path} is a directory, not an IDX file")
    if not stat.S_ISREG(info.st_mode):
        raise ValueError(f"{path} is not a regular file (a device, FIFO or socket); IDX data "
                         f"must be a file")
    return open(path, "rb"), info.st_size


def _read_exact(stream, n: int, path: Path, what: str) -> bytes:
    """n bytes from stream, in chunks (never more than the data that really arrives)."""
    parts, got = [], 0
    while got < n:
        part = stream.read(min(_CHUNK, n - got))
        if not part:
            break
        parts.append(part)
        got += len(part)
    data = b"".join(parts)
    if len(data) < n:
        raise ValueError(f"{path}: IDX file truncated: {what} needs {n} bytes, the file has "
                         f"{len(data)}")
    return data


def read_idx(path: PathLike) -> np.ndarray:
    """Read an IDX file (raw or gzip-compressed) into a NumPy array.

    The header is read first and every later read is bounded by what it promises, so a lying
    header or a gzip that inflates without end is an error after at most the promised bytes.

    Parameters
    ----------
    path : str or os.PathLike
        The file. Compression is detected from the content, not the name.

    Returns
    -------
    numpy.ndarray
        The array with the shape from the header and the header's element type in native byte
        order (uint8, int8, int16, int32, float32 or float64).

    Raises
    ------
    TypeError
        `path` is not a str or path.
    FileNotFoundError
        The file does not exist.
    ValueError
        The file is not a valid IDX file: bad magic, unknown type code, no dimensions, a data
        size that does not match the header (truncated or with trailing bytes), a corrupt gzip
        stream, or not a regular file. The message names the file.
    """
    path = _check_path(path)
    raw, size = _open_regular(path)
    with raw:
        compressed = raw.read(2) == _GZIP_MAGIC
        raw.seek(0)
        stream = gzip.GzipFile(fileobj=raw, mode="rb") if compressed else raw
        try:
            return _read_idx_stream(stream, path, None if compressed else size)
        except (EOFError, OSError, zlib.error) as exc:
            if not compressed:
                raise
            raise ValueError(f"{path}: corrupt or truncated gzip file ({exc})") from None


def _read_idx_stream(stream, path: Path, size: int | None) -> np.ndarray:
    head = stream.read(4)
    if len(head) < 4:
        raise ValueError(f"{path}: not an IDX file: {len(head)} bytes, shorter than the "
                         "4-byte header")
    if head[0] != 0 or head[1] != 0:
        raise ValueError(f"{path}: not an IDX file: magic starts with bytes "
                         f"0x{head[0]:02x} 0x{head[1]:02x}, expected 0x00 0x00")
    type_code, ndim = head[2], head[3]
    if type_code not in _IDX_DTYPES:
        known = ", ".join(f"0x{c:02x}" for c in _IDX_DTYPES)
        raise ValueError(f"{path}: unknown IDX type code 0x{type_code:02x}, expected one of "
                         f"{known}")
    if ndim == 0:
        raise ValueError(f"{path}: IDX header declares 0 dimensions, expected at least 1")
    header_size = 4 + 4 * ndim
    dims = stream.read(4 * ndim)
    if len(dims) < 4 * ndim:
        raise ValueError(f"{path}: truncated IDX header: {ndim} dimensions need "
                         f"{header_size} bytes, the file has {4 + len(dims)}")
    shape = tuple(int(d) for d in np.frombuffer(dims, dtype=">u4"))
    dtype = _IDX_DTYPES[type_code]
    expected = math.prod(shape) * dtype.itemsize  # Python ints: a corrupt header cannot overflow
    if size is not None and size - header_size != expected:
        actual = size - header_size
        what = "truncated" if actual < expected else "has trailing bytes"
        raise ValueError(f"{path}: IDX file {what}: header shape {shape} of {dtype.name} "
                         f"needs {expected} data bytes, the file has {actual}")
    data = _read_exact(stream, expected, path, f"header shape {shape} of {dtype.name}")
    if stream.read(1):
        raise ValueError(f"{path}: IDX file has trailing bytes: header shape {shape} of "
                         f"{dtype.name} needs {expected} data bytes, the file has more")
    array = np.frombuffer(data, dtype=dtype).reshape(shape)
    return array.astype(dtype.newbyteorder("="))


# ---------------------------------------------------------------------------------------------
# MNIST-style data sets: four IDX files in one directory
# ---------------------------------------------------------------------------------------------

# The distributions name their files in a few ways; the first that exists wins.
_IDX_PARTS = {
    "train_images": ("train-images-idx3-ubyte",),
    "train_labels": ("train-labels-idx1-ubyte",),
    "test_images": ("t10k-images-idx3-ubyte",),
    "test_labels": ("t10k-labels-idx1-ubyte",),
}


def _candidates(stem: str) -> list[str]:
    dotted = stem.replace("-idx", ".idx")  # "train-images.idx3-ubyte", as some mirrors name it
    return [stem + ".gz", stem, dotted + ".gz", dotted]


def _find_part(directory: Path, part: str) -> Path | None:
    for name in _candidates(_IDX_PARTS[part][0]):
        if (directory / name).is_file():
            return directory / name
    return None


def _expected_files_text() -> str:
    return ", ".join(stem + "[.gz]" for (stem,) in _IDX_PARTS.values())


def _load_idx_dataset(directory: Path, dataset: str, where: str, how_to_get: str) -> Split:
    if not directory.is_dir():
        raise FileNotFoundError(f"{dataset} not found: {directory}{where} is not a directory. "
                                f"{how_to_get}")
    paths = {part: _find_part(directory, part) for part in _IDX_PARTS}
    missing = [_IDX_PARTS[p][0] + "[.gz]" for p, found in paths.items() if found is None]
    if missing:
        raise FileNotFoundError(f"{dataset} not found: {directory}{where} lacks "
                                f"{', '.join(missing)}. {how_to_get}")
    arrays = {part: read_idx(path) for part, path in paths.items()}
    out = []
    for split in ("train", "test"):
        images, labels = arrays[f"{split}_images"], arrays[f"{split}_labels"]
        ipath, lpath = paths[f"{split}_images"], paths[f"{split}_labels"]
        if images.dtype != np.uint8 or images.ndim != 3:
            raise ValueError(f"{ipath}: expected uint8 images of shape (n, rows, cols), got "
                             f"{images.dtype} of shape {images.shape}")
        if labels.dtype != np.uint8 or labels.ndim != 1:
            raise ValueError(f"{lpath}: expected uint8 labels of shape (n,), got "
                             f"{labels.dtype} of shape {labels.shape}")
        if len(images) != len(labels):
            raise ValueError(f"{ipath} has {len(images)} images but {lpath} has "
                             f"{len(labels)} labels")
        if labels.size and labels.max() > 9:
            raise ValueError(f"{lpath}: labels must be in 0..9, found {int(labels.max())}")
        X = images.reshape(len(images), images.shape[1] * images.shape[2]).astype(np.float32)
        X *= np.float32(1.0 / 255.0)
        out.append((X, labels.astype(np.int64)))
    return out[0], out[1]


def load_fashion_mnist(path: PathLike | None = None) -> Split:
    """Load Fashion-MNIST (Zalando; 60 000 train / 10 000 test 28x28 images, 10 classes).

    Parameters
    ----------
    path : str or os.PathLike, optional
        Directory with the four original IDX files (``train-images-idx3-ubyte.gz``,
        ``train-labels-idx1-ubyte.gz``, ``t10k-images-idx3-ubyte.gz``,
        ``t10k-labels-idx1-ubyte.gz``; uncompressed works too). Defaults to ``$PYNN_DATA``,
        then ``/usr/share/datasets/fashion-mnist`` (where the Debian package
        ``dataset-fashion-mnist`` installs them).

    Returns
    -------
    (X_train, y_train), (X_test, y_test)
        X float32 of shape (n, 784) scaled to [0, 1]; y int64 class indices 0..9 (names in
        `FASHION_MNIST_CLASSES`).

    Raises
    ------
    FileNotFoundError
        The files are not there; the message says how to install them or where to put them.
    ValueError
        A file is corrupt, truncated or inconsistent with the others (the message names it).
    """
    if path is None:
        env = os.environ.get(DATA_ENV, "").strip()
        directory = Path(env) if env else Path(DEFAULT_FASHION_MNIST_DIR)
        where = f" (from ${DATA_ENV})" if env else ""
    else:
        directory, where = _check_path(path), ""
    how = (f"Install it with `apt-get install dataset-fashion-mnist` (Debian/Ubuntu; it puts "
           f"the files in {DEFAULT_FASHION_MNIST_DIR}), or put {_expected_files_text()} in a "
           f"directory and pass it as path= or set ${DATA_ENV} to it.")
    return _load_idx_dataset(directory, "Fashion-MNIST", where, how)


def load_mnist(path: PathLike | None = None) -> Split:
    """Load MNIST (LeCun, Cortes and Burges) from a directory of its four original IDX files.

    Parameters
    ----------
    path : str or os.PathLike, optional
        Directory with ``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``,
        ``t10k-images-idx3-ubyte`` and ``t10k-labels-idx1-ubyte`` (each raw or ``.gz``).
        Defaults to ``$PYNN_MNIST``, then ``/usr/share/datasets/mnist``.

    Returns
    -------
    (X_train, y_train), (X_test, y_test)
        X float32 of shape (n, 784) scaled to [0, 1]; y int64 digits 0..9.

    Raises
    ------
    FileNotFoundError
        The directory or a file is missing; the message lists the files expected.
    ValueError
        A file is corrupt, truncated or inconsistent with the others (the message names it).
    """
    if path is None:
        env = os.environ.get(MNIST_ENV, "").strip()
        directory = Path(env) if env else Path(DEFAULT_MNIST_DIR)
        where = f" (from ${MNIST_ENV})" if env else ""
    else:
        directory, where = _check_path(path), ""
    how = (f"pynn downloads nothing: put the four MNIST IDX files ({_expected_files_text()}) "
           f"in one directory and pass it as path= or set ${MNIST_ENV} to it.")
    return _load_idx_dataset(directory, "MNIST", where, how)


# ---------------------------------------------------------------------------------------------
# Bundled handwritten digits
# ---------------------------------------------------------------------------------------------

_DIGITS_FILE = Path(__file__).resolve().parent / "digits.npz"


def load_digits() -> Split:
    """Load the bundled UCI handwritten digits (8x8 images, 10 classes), fixed 80/20 split.

    1797 real images (Alpaydin and Kaynak, UCI ML repository, CC BY 4.0), shipped inside the
    package: nothing is downloaded and scikit-learn is not needed. The split is stratified and
    fixed (seed 0): 1438 training and 359 test images, every class about 20% test.

    Returns
    -------
    (X_train, y_train), (X_test, y_test)
        X float32 of shape (n, 64), pixel counts 0..16 scaled to [0, 1]; y int64 digits 0..9.
    """
    with np.load(_DIGITS_FILE, allow_pickle=False) as f:
        images, labels, is_test = f["images"], f["labels"], f["is_test"]
    X = images.astype(np.float32) / np.float32(16.0)
    y = labels.astype(np.int64)
    return (X[~is_test], y[~is_test]), (X[is_test], y[is_test])


# ---------------------------------------------------------------------------------------------
# Transforms and splits
# ---------------------------------------------------------------------------------------------

def _int_labels(y: object, name: str = "y") -> np.ndarray:
    y = np.asarray(y)
    if y.ndim != 1:
        raise ValueError(f"{name} must be a 1-D array of class labels, got shape {y.shape}")
    if y.dtype.kind not in "iub":
        if y.dtype.kind == "f" and np.all(np.isfinite(y)) and np.all(y == np.round(y)):
            y = y.astype(np.int64)
        else:
            raise TypeError(f"{name} must hold integer class labels, got dtype {y.dtype}")
    return y.astype(np.int64, copy=False)


def one_hot(y: Sequence[int] | np.ndarray, n_classes: int | None = None,
            dtype: str | np.dtype = "float32") -> np.ndarray:
    """Encode integer class labels as one-hot rows.

    Parameters
    ----------
    y : array-like of int, shape (n,)
        Labels in ``0 .. n_classes-1``.
    n_classes : int, optional
        Number of classes; defaults to ``max(y) + 1``.
    dtype : str or numpy.dtype, default "float32"
        Element type of the result (float32 or float64).

    Returns
    -------
    numpy.ndarray of shape (n, n_classes)
        Row i is 1 at column ``y[i]`` and 0 elsewhere.
    """
    y = _int_labels(y)
    if n_classes is None:
        if y.size == 0:
            raise ValueError("n_classes is required when y is empty")
        n_classes = int(y.max()) + 1
    if isinstance(n_classes, bool) or not isinstance(n_classes, (int, np.integer)):
        raise TypeError(f"n_classes must be an int, got {type(n_classes).__name__}")
    if n_classes < 1:
        raise ValueError(f"n_classes must be >= 1, got {n_classes}")
    if y.size and (y.min() < 0 or y.max() >= n_classes):
        bad = int(y.min()) if y.min() < 0 else int(y.max())
        raise ValueError(f"y must be in 0..{n_classes - 1} for n_classes={n_classes}, "
                         f"found label {bad}")
    dtype = np.dtype(dtype)
    if dtype not in (np.float32, np.float64):
        raise TypeError(f"dtype must be float32 or float64, got {dtype}")
    out = np.zeros((y.size, int(n_classes)), dtype=dtype)
    out[np.arange(y.size), y] = 1
    return out


def _float_matrix(X: object, name: str) -> np.ndarray:
    X = np.asarray(X)
    if X.dtype.kind not in "fiub":
        raise TypeError(f"{name} must be a numeric array, got dtype {X.dtype}")
    if X.ndim != 2:
        raise ValueError(f"{name} must be 2-D (n_samples, n_features), got shape {X.shape}")
    if X.dtype.kind != "f":
        X = X.astype(np.float64)
    if not np.all(np.isfinite(X)):
        raise ValueError(f"{name} contains NaN or infinity")
    return X


class Standardizer:
    """Per-feature standardisation ``(X - mean_) / scale_``, like scikit-learn's StandardScaler.

    Fit it on training data only, then apply the same statistics to validation and test data.

    Attributes
    ----------
    mean_ : numpy.ndarray of shape (n_features,)
    scale_ : numpy.ndarray of shape (n_features,)
        The standard deviation; features that are constant in the training data get 1, so
        they map to 0 instead of dividing by zero.
    """

    def __init__(self) -> None:
        self.mean_: np.ndarray | None = None
        self.scale_: np.ndarray | None = None

    def __repr__(self) -> str:
        fitted = "unfitted" if self.mean_ is None else f"n_features={self.mean_.shape[0]}"
        return f"Standardizer({fitted})"

    def fit(self, X: np.ndarray) -> Standardizer:
        """Compute the mean and scale of each column of `X` (n_samples >= 1); returns self."""
        X = _float_matrix(X, "X")
        if X.shape[0] == 0:
            raise ValueError("X must have at least one sample to fit a Standardizer")
        # statistics in float64: float32 sums over 60 000 rows lose digits
        mean = X.mean(axis=0, dtype=np.float64)
        std = X.std(axis=0, dtype=np.float64)
        self.mean_ = mean
        self.scale_ = np.where(std > 0, std, 1.0)
        return self

    def _fitted(self, X: np.ndarray, name: str) -> np.ndarray:
        if self.mean_ is None or self.scale_ is None:
            raise ValueError("this Standardizer is not fitted yet: call fit(X_train) first")
        X = _float_matrix(X, name)
        if X.shape[1] != self.mean_.shape[0]:
            raise ValueError(f"{name} has {X.shape[1]} features, the Standardizer was fitted "
                             f"on {self.mean_.shape[0]}")
        return X

    def transform(self, X: np.ndarray) -> np.ndarray:
        """Standardise `X` with the fitted statistics; keeps X's float dtype."""
        X = self._fitted(X, "X")
        return ((X - self.mean_) / self.scale_).astype(X.dtype, copy=False)

    def fit_transform(self, X: np.ndarray) -> np.ndarray:
        """`fit` on `X`, then `transform` it."""
        return self.fit(X).transform(X)

    def inverse_transform(self, Z: np.ndarray) -> np.ndarray:
        """Undo `transform`."""
        Z = self._fitted(Z, "Z")
        return (Z * self.scale_ + self.mean_).astype(Z.dtype, copy=False)


def standardize(X_train: np.ndarray, X_test: np.ndarray | None = None
                ) -> tuple[np.ndarray, np.ndarray | None, Standardizer]:
    """Standardise features with statistics from the training data only.

    Parameters
    ----------
    X_train : array of shape (n, d)
        Data the mean and standard deviation are computed on.
    X_test : array of shape (m, d), optional
        Data transformed with the training statistics (never refitted: that would leak).

    Returns
    -------
    X_train_std, X_test_std, standardizer
        The transformed arrays (``X_test_std`` is None when `X_test` is None) and the fitted
        `Standardizer` to apply to new data later.
    """
    scaler = Standardizer().fit(X_train)
    Xtr = scaler.transform(X_train)
    Xte = None if X_test is None else scaler.transform(X_test)
    return Xtr, Xte, scaler


def _stratified_mask(labels: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """Boolean mask choosing round(fraction * count) samples of every class at random."""
    rng = np.random.default_rng(seed)
    mask = np.zeros(len(labels), dtype=bool)
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        mask[rng.permutation(members)[:round(fraction * len(members))]] = True
    return mask


def train_val_split(X: np.ndarray, y: np.ndarray, val_fraction: float = 0.1, *,
                    seed: int = 0, stratify: bool = True) -> Split:
    """Hold out a validation set.

    Parameters
    ----------
    X : array of shape (n, ...)
    y : array of shape (n,) or (n, k)
    val_fraction : float, default 0.1
        Fraction of the samples held out, strictly between 0 and 1.
    seed : int, default 0
        Seed of the random choice.
    stratify : bool, default True
        Hold out the same fraction of every class (needs 1-D integer labels `y`); otherwise a
        uniformly random subset.

    Returns
    -------
    (X_train, y_train), (X_val, y_val)
        Both parts keep the original order of the samples.
    """
    X, y = np.asarray(X), np.asarray(y)
    if X.ndim < 1 or len(X) != len(y):
        raise ValueError(f"X and y must have the same number of samples, got {X.shape} and "
                         f"{y.shape}")
    if isinstance(val_fraction, bool) or not isinstance(val_fraction, (float, int)):
        raise TypeError(f"val_fraction must be a float, got {type(val_fraction).__name__}")
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"seed must be an int, got {type(seed).__name__}")
    if stratify:
        mask = _stratified_mask(_int_labels(y), val_fraction, int(seed))
    else:
        rng = np.random.default_rng(int(seed))
        mask = np.zeros(len(y), dtype=bool)
        mask[rng.permutation(len(y))[:round(val_fraction * len(y))]] = True
    if mask.all() or not mask.any():
        raise ValueError(f"val_fraction={val_fraction} of {len(y)} samples leaves an empty "
                         "training or validation set")
    return (X[~mask], y[~mask]), (X[mask], y[mask])
