"""Mini-batch helpers (csrc/batch.c, pynn/_loss.pxi): gather_rows, all_finite, argmax_hits,
against pynn.reference."""
import numpy as np
import pytest

from pynn import ops, reference

SHAPES = [(1, 1), (7, 3), (33, 784), (1000, 17)]


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int64, np.uint8])
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("n_threads", [1, 2])
def test_gather_rows_matches_reference(dtype, shape, n_threads, threads, rng):
    threads(n_threads)
    src = (rng.standard_normal(shape) * 100).astype(dtype)
    for n in (0, 1, 5, shape[0], 3 * shape[0] + 1):
        idx = rng.integers(0, shape[0], n).astype(np.int64)
        got = ops.gather_rows(src, idx, np.empty((n,) + shape[1:], dtype))
        want = reference.gather_rows(src, idx, np.empty((n,) + shape[1:], dtype))
        np.testing.assert_array_equal(got, want)


def test_gather_rows_one_dimensional_and_three_dimensional(rng):
    labels = rng.integers(0, 10, 50)
    idx = rng.permutation(50).astype(np.int64)
    np.testing.assert_array_equal(ops.gather_rows(labels, idx, np.empty(50, np.int64)),
                                  labels[idx])
    images = rng.random((20, 4, 5), dtype=np.float32)
    idx = np.array([19, 0, 7, 7], np.int64)
    np.testing.assert_array_equal(ops.gather_rows(images, idx, np.empty((4, 4, 5), np.float32)),
                                  images[idx])


def test_gather_rows_large_batch_uses_threads_and_agrees(threads, rng):
    threads(2)
    src = rng.random((3000, 1000), dtype=np.float32)
    idx = rng.permutation(3000).astype(np.int64)
    np.testing.assert_array_equal(ops.gather_rows(src, idx, np.empty_like(src)), src[idx])


@pytest.mark.parametrize("bad, error, match", [
    (np.array([0, 5], np.int64), IndexError, r"idx\[1\] = 5 is not a row of src"),
    (np.array([-1], np.int64), IndexError, r"idx\[0\] = -1"),
    (np.array([0], np.int32), TypeError, "idx must have dtype int64"),
    (np.array([[0]], np.int64), ValueError, "idx must be a contiguous 1-D array"),
    ([0, 1], TypeError, "idx must be a numpy.ndarray"),
])
def test_gather_rows_rejects_bad_indices(bad, error, match):
    src = np.zeros((5, 3), np.float32)
    out = np.full((np.size(bad), 3), 7, np.float32)
    with pytest.raises(error, match=match):
        ops.gather_rows(src, bad, out)
    assert (out == 7).all()  # nothing written


def test_gather_rows_rejects_bad_arrays():
    src = np.zeros((5, 3), np.float32)
    idx = np.array([1, 2], np.int64)
    with pytest.raises(TypeError, match="out must have the dtype of src"):
        ops.gather_rows(src, idx, np.empty((2, 3), np.float64))
    with pytest.raises(ValueError, match=r"out must have shape \(2, 3\)"):
        ops.gather_rows(src, idx, np.empty((3, 3), np.float32))
    with pytest.raises(ValueError, match="src must be C-contiguous"):
        ops.gather_rows(np.zeros((3, 5), np.float32).T, idx, np.empty((2, 3), np.float32))
    with pytest.raises(ValueError, match="out must be C-contiguous"):
        ops.gather_rows(src, idx, np.empty((3, 2), np.float32).T)
    with pytest.raises(ValueError, match="out must not overlap src"):
        ops.gather_rows(src, idx, src[:2])
    with pytest.raises(TypeError, match="src must be a numpy.ndarray"):
        ops.gather_rows([[1.0]], idx, np.empty((2, 1)))
    with pytest.raises(ValueError, match="at least one dimension"):
        ops.gather_rows(np.array(1.0, np.float32), idx, np.empty(2, np.float32))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n", [0, 1, 7, 33, 1000, 40_000])
@pytest.mark.parametrize("n_threads", [1, 2])
def test_all_finite_finds_every_non_finite_value(dtype, n, n_threads, threads, rng):
    threads(n_threads)
    x = rng.standard_normal(n).astype(dtype)
    assert ops.all_finite(x) is True
    if n == 0:
        return
    info = np.finfo(dtype)
    x[-1] = info.max  # huge and tiny finite values are finite
    x[0] = info.smallest_subnormal
    assert ops.all_finite(x) == reference.all_finite(x) is True
    for bad in (np.nan, np.inf, -np.inf):
        for pos in {0, n // 2, n - 1}:
            y = x.copy()
            y[pos] = bad
            assert ops.all_finite(y) == reference.all_finite(y) is False


def test_all_finite_takes_any_shape_and_layout():
    x = np.ones((6, 5), np.float32)
    x[4, 3] = np.nan
    assert ops.all_finite(x[:, :3]) is True  # strided view: the NaN is outside it
    assert ops.all_finite(x.T) is False
    with pytest.raises(TypeError, match="float32 or float64"):
        ops.all_finite(np.ones(3, np.int32))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n, c", [(1, 1), (7, 3), (33, 10), (1000, 17)])
def test_argmax_hits_matches_reference(dtype, n, c, rng):
    outputs = rng.standard_normal((n, c)).astype(dtype)
    outputs[::3, 0] = outputs[::3, -1] = 5  # ties: the first maximum wins, as np.argmax
    labels = rng.integers(0, c, n)
    probs = rng.random((n, c)).astype(dtype)
    for target in (labels, probs, np.eye(c, dtype=dtype)[labels]):
        assert ops.argmax_hits(outputs, target) == reference.argmax_hits(outputs, target)
    assert ops.argmax_hits(outputs, outputs.argmax(axis=1)) == n


def test_argmax_hits_reads_nan_as_the_maximum_like_numpy():
    outputs = np.array([[0.0, np.nan, 9.0], [np.nan, 1.0, 2.0], [1.0, 3.0, 2.0]], np.float32)
    labels = np.array([1, 0, 1])
    assert ops.argmax_hits(outputs, labels) == reference.argmax_hits(outputs, labels) == 3


def test_argmax_hits_rejects_bad_targets():
    outputs = np.zeros((4, 3), np.float32)
    with pytest.raises(TypeError, match="int64"):
        ops.argmax_hits(outputs, np.zeros(4, np.int32))
    with pytest.raises(ValueError, match=r"target must have shape \(4,\)"):
        ops.argmax_hits(outputs, np.zeros(5, np.int64))
    with pytest.raises(ValueError, match=r"target rows must have shape \(4, 3\)"):
        ops.argmax_hits(outputs, np.zeros((4, 2), np.float32))
    with pytest.raises(TypeError, match="float32"):
        ops.argmax_hits(outputs, np.zeros((4, 3), np.float64))
    with pytest.raises(ValueError, match="outputs must be 2-D"):
        ops.argmax_hits(np.zeros(4, np.float32), np.zeros(4, np.int64))
