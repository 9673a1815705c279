"""pynn.ops.matmul / linear / linear_backward against the NumPy reference and the C oracle."""
import numpy as np
import pytest

import pynn
from pynn import ops
from pynn import reference as ref

DTYPES = [np.float32, np.float64]
ACTS = ["identity", "relu", "leaky_relu", "sigmoid", "tanh", "softmax"]
# Edge sizes around the register tiles (generic 4x8/4x4, AVX2 6x16/6x8, AVX-512 8x32/8x16),
# the row-kernel threshold (2 rows), bottom edges of 1-2 rows over 3+ panels (the 3-panel
# edge kernel), the K slices (KC = 256; 320 for AVX2 float32) and, wider than 8 B micro-panels
# per thread (A packed, not read in place), K past the packing's 8 x 8 and 4 x 4 transposes,
# packed B panels of a 4 KiB-multiple size (K slices of 64 or 256), which lie padded apart, and
# a B read in place past 1 MB (its panels prefetched ahead) and B rows 4 KiB apart (read in
# place by the AVX-512 tiles, packed by AVX2's).
SHAPES = [(1, 1, 1), (1, 7, 1), (2, 33, 5), (3, 17, 1), (5, 8, 13), (6, 16, 256), (7, 15, 257),
          (9, 20, 321), (8, 17, 641), (128, 200, 256), (32, 1030, 512), (62, 96, 64),
          (40, 1030, 300), (20, 1024, 70),
          (12, 32, 255), (13, 33, 511), (17, 10, 128), (31, 64, 1), (97, 5, 300), (1, 300, 784),
          (128, 10, 128), (145, 49, 73), (300, 3, 40), (3, 300, 40), (64, 1000, 7),
          (25, 600, 100), (30, 530, 37), (400, 16, 333), (130, 17, 50), (260, 8, 700)]


def _tol(dtype, k):
    eps = np.finfo(dtype).eps
    return 8 * eps * max(k, 1) ** 0.5 + eps


def _check_close(got, want64, a_abs_b_abs, dtype, k):
    """|got - want| <= tol * (|a| @ |b|): the rounding bound of a length-k dot product."""
    bound = _tol(dtype, k) * a_abs_b_abs + np.finfo(dtype).tiny
    diff = np.abs(got.astype(np.float64) - want64)
    assert np.all(diff <= bound), float(np.max(diff / bound))


def _operands(rng, m, n, k, ta, tb, dtype):
    a = rng.standard_normal((k, m) if ta else (m, k)).astype(dtype)
    b = rng.standard_normal((n, k) if tb else (k, n)).astype(dtype)
    return a, b


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("ta,tb", [(False, False), (True, False), (False, True), (True, True)])
def test_matmul_matches_reference(isa, dtype, ta, tb, rng):
    for m, n, k in SHAPES:
        a, b = _operands(rng, m, n, k, ta, tb, dtype)
        got = ops.matmul(a, b, trans_a=ta, trans_b=tb)
        assert got.dtype == dtype and got.shape == (m, n)
        a64, b64 = a.astype(np.float64), b.astype(np.float64)
        want = ref.matmul(a64, b64, trans_a=ta, trans_b=tb)
        absprod = ref.matmul(np.abs(a64), np.abs(b64), trans_a=ta, trans_b=tb)
        _check_close(got, want, absprod, dtype, k)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n_threads", [1, 2])
def test_narrow_products_run_the_avx2_tile_on_avx512(dtype, n_threads, threads, rng):
    """On an AVX-512 machine a product whose last micro-panel would be at most half full takes
    the AVX2 tables (always at N <= one AVX2 tile; wider, when AVX2's tile pads N at least 1/16
    less and K >= 32): bitwise the AVX2 path's result, epilogue included (K sliced by AVX2's
    KC); float32 products of K = 300 that keep AVX-512's tile differ from AVX2's (another K
    cut); every result within the rounding bound of the reference."""
    if "avx512" not in pynn.build_info()["isa_supported"]:
        pytest.skip("no AVX-512 on this CPU")
    threads(n_threads)
    nr = 16 if dtype == np.float32 else 8

    def padded(n, width):
        return -(-n // width) * width

    for m, n, k in [(300, 10, 300), (128, nr, 128), (77, 1, 700), (128, nr + 1, 64),
                    (200, 100, 300), (64, 3 * nr, 300), (128, 272, 300), (200, 100, 16),
                    (90, 2 * nr, 300)]:
        x, w = _operands(rng, m, n, k, False, False, dtype)
        b = rng.standard_normal(n).astype(dtype)
        got = {}
        for isa_name in ("avx2", "avx512"):
            pynn.set_isa(isa_name)
            try:
                got[isa_name] = (ops.linear(x, w, b, activation="relu"),
                                 ops.matmul(x, x[:, :n].copy(), trans_a=True))
            finally:
                pynn.set_isa("auto")
        # the forward's depth is k, the dW-shaped product's (x^T x[:, :n]) is m
        for depth, p, q in zip((k, m), got["avx2"], got["avx512"]):
            if n <= nr or (depth >= 32 and 16 * padded(n, nr) < 15 * padded(n, 2 * nr)):
                assert np.array_equal(p, q), (m, n, k, depth)
            elif dtype == np.float32 and depth == 300:
                assert not np.array_equal(p, q), (m, n, k, depth)
        want = ref.linear(x.astype(np.float64), w.astype(np.float64), b.astype(np.float64),
                          activation="relu")
        np.testing.assert_allclose(got["avx512"][0], want, rtol=0, atol=_tol(dtype, k) *
                                   float(np.abs(x).sum(1).max() * np.abs(w).max()) + 1e-30)


@pytest.mark.parametrize("dtype", DTYPES)
def test_matmul_seeded_sweep_against_c_oracle(isa, dtype):
    rng = np.random.default_rng(7)
    for _ in range(40):
        m, n = rng.integers(1, 80, size=2)
        k = int(rng.choice([1, 2, 3, 31, 64, 255, 256, 257, 300, 513]))
        ta, tb = (bool(v) for v in rng.integers(0, 2, size=2))
        a, b = _operands(rng, m, n, k, ta, tb, dtype)
        got = ops.matmul(a, b, trans_a=ta, trans_b=tb)
        naive = pynn._core._matmul_naive(a, b, ta, tb)
        absprod = ref.matmul(np.abs(a.astype(np.float64)), np.abs(b.astype(np.float64)),
                             trans_a=ta, trans_b=tb)
        _check_close(got, naive.astype(np.float64), absprod, dtype, k)


@pytest.mark.slow
@pytest.mark.parametrize("dtype", DTYPES)
def test_matmul_large_blocks(dtype, rng):
    """Several MC/NC blocks and K slices per thread."""
    m, n, k = 700, 4200, 600
    a, b = _operands(rng, m, n, k, False, True, dtype)
    got = ops.matmul(a, b, trans_b=True)
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    _check_close(got, a64 @ b64.T, np.abs(a64) @ np.abs(b64).T, dtype, k)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(0, 5, 3), (4, 0, 3), (4, 5, 0), (0, 0, 0), (1, 1, 0)])
def test_zero_dimensions_follow_numpy(dtype, shape):
    m, n, k = shape
    a, b = np.ones((m, k), dtype), np.ones((k, n), dtype)
    got = ops.matmul(a, b)
    np.testing.assert_array_equal(got, a @ b)
    assert got.shape == (m, n) and got.dtype == dtype
    out = np.full((m, n), 3.0, dtype)
    ops.matmul(a, b, out=out, accumulate=True)
    np.testing.assert_array_equal(out, np.full((m, n), 3.0) + a @ b)
    bias = np.arange(n, dtype=dtype)
    np.testing.assert_array_equal(ops.linear(a, b, bias, activation="relu"),
                                  ref.linear(a, b, bias, activation="relu"))


@pytest.mark.parametrize("dtype", DTYPES)
def test_accumulate_and_out(isa, dtype, rng):
    for m, n, k in [(1, 5, 3), (13, 33, 300), (70, 40, 20)]:
        a, b = _operands(rng, m, n, k, False, False, dtype)
        base = rng.standard_normal((m, n)).astype(dtype)
        out = base.copy()
        res = ops.matmul(a, b, out=out, accumulate=True)
        assert res is out
        np.testing.assert_allclose(out, base + a @ b, rtol=_tol(dtype, k) * 10,
                                   atol=_tol(dtype, k) * 10 * np.sqrt(k))
        out2 = np.empty((m, n), dtype)
        assert ops.matmul(a, b, out=out2) is out2


@pytest.mark.parametrize("dtype", DTYPES)
def test_garbage_in_out_never_leaks(isa, dtype, rng):
    for m, n, k in [(1, 3, 4), (7, 19, 300), (40, 70, 9)]:
        a, b = _operands(rng, m, n, k, False, False, dtype)
        out = np.full((m, n), np.nan, dtype)
        ops.matmul(a, b, out=out)
        assert np.all(np.isfinite(out))
        y = np.full((m, n), np.inf, dtype)
        ops.linear(a, b, np.ones(n, dtype), activation="relu", out=y)
        assert np.all(np.isfinite(y))


@pytest.mark.parametrize("dtype", DTYPES)
def test_nan_inf_propagate_like_numpy(isa, dtype, rng):
    for m, n, k in [(2, 9, 5), (13, 35, 300)]:
        a, b = _operands(rng, m, n, k, False, False, dtype)
        a[0, 1] = np.nan
        a[m - 1, 0] = np.inf
        b[2, n - 1] = -np.inf
        with np.errstate(all="ignore"):
            want = a.astype(np.float64) @ b.astype(np.float64)
        got = ops.matmul(a, b)
        np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
        np.testing.assert_array_equal(np.isposinf(got), np.isposinf(want))
        np.testing.assert_array_equal(np.isneginf(got), np.isneginf(want))
        # relu keeps NaN (as np.maximum does)
        y = ops.linear(a, b, activation="relu")
        assert np.all(np.isnan(y[0]))


def _same_at_1_and_2_threads(threads, compute):
    """compute() (a list of arrays) at 1 and at 2 threads: bitwise equal; the 2-thread list."""
    results = []
    for nt in (1, 2):
        threads(nt)
        results.append(compute())
    for r1, r2 in zip(*results):
        assert r1.tobytes() == r2.tobytes()
    return results[1]


@pytest.mark.parametrize("dtype", DTYPES)
def test_bitwise_identical_at_1_and_2_threads(isa, dtype, threads, rng):
    cases = [(256, 300, 513, False, False), (31, 1000, 257, True, False),
             (128, 200, 70, False, False),
             (1000, 20, 100, False, True), (2, 2000, 300, False, False), (97, 64, 1, True, True)]
    for m, n, k, ta, tb in cases:
        a, b = _operands(rng, m, n, k, ta, tb, dtype)
        bias = rng.standard_normal(n).astype(dtype)
        dy = rng.standard_normal((m, n)).astype(dtype)

        def compute(a=a, b=b, ta=ta, tb=tb, bias=bias, dy=dy):
            r = [ops.matmul(a, b, trans_a=ta, trans_b=tb)]
            if not ta and not tb:
                for act in ("relu", "sigmoid", "softmax"):
                    r.append(ops.linear(a, b, bias, activation=act))
                y = ops.linear(a, b, bias, activation="tanh")
                r.extend(ops.linear_backward(a, b, y, dy, activation="tanh"))
            return r
        _same_at_1_and_2_threads(threads, compute)


@pytest.mark.parametrize("dtype", DTYPES)
def test_a_packed_once_by_both_threads_gives_the_one_thread_result(isa, dtype, threads, rng):
    """Split-N products with A in several blocks: at 2 threads each packs part of A into one
    shared buffer (its spill past a block never reaching the other's); bitwise the 1-thread
    result, and the reference's."""
    cases = [(96, 256, 600, False, False), (96, 256, 600, True, False),  # blocks fill regions
             (128, 256, 784, False, False), (150, 400, 300, True, False),
             (13, 300, 1000, False, False), (145, 512, 257, False, True),
             (300, 700, 530, True, True)]
    for m, n, k, ta, tb in cases:
        a, b = _operands(rng, m, n, k, ta, tb, dtype)
        bias = rng.standard_normal(n).astype(dtype)
        got = _same_at_1_and_2_threads(threads, lambda a=a, b=b, ta=ta, tb=tb, bias=bias: (
            [ops.matmul(a, b, trans_a=ta, trans_b=tb)] +
            ([] if ta or tb else [ops.linear(a, b, bias, activation="relu")])))
        a64, b64 = a.astype(np.float64), b.astype(np.float64)
        _check_close(got[0], ref.matmul(a64, b64, trans_a=ta, trans_b=tb),
                     ref.matmul(np.abs(a64), np.abs(b64), trans_a=ta, trans_b=tb), dtype, k)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("ta", [False, True])
def test_a_read_in_place_gives_the_packed_result(isa, dtype, ta, rng):
    """A product with few columns reads A in place (the strided micro-kernel); the same columns
    inside a wider product come from packed A: bitwise the same (the epilogue too)."""
    for m, k, n in [(128, 784, 96), (37, 300, 64), (250, 129, 128)]:
        a, b = _operands(rng, m, n, k, ta, False, dtype)
        wide = np.hstack([b, rng.standard_normal((k, 600)).astype(dtype)])
        narrow, full = ops.matmul(a, b, trans_a=ta), ops.matmul(a, wide, trans_a=ta)
        assert narrow.tobytes() == np.ascontiguousarray(full[:, :n]).tobytes()
        if not ta:
            bias = rng.standard_normal(n + 600).astype(dtype)
            y1 = ops.linear(a, b, bias[:n], activation="tanh")
            y2 = ops.linear(a, wide, bias, activation="tanh")
            assert y1.tobytes() == np.ascontiguousarray(y2[:, :n]).tobytes()


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("nt", [1, 2])
def test_b_read_in_place_gives_the_packed_result(isa, dtype, nt, threads, rng):
    """A short product (at most MC rows per block) reads B's full micro-panels in place and
    packs A; the same rows inside a tall product pack B: bitwise the same (the epilogue too)."""
    threads(nt)
    for m, k, n in [(32, 784, 256), (7, 300, 45), (128, 257, 1000), (20, 33, 31)]:
        a = rng.standard_normal((m, k)).astype(dtype)
        b = rng.standard_normal((k, n)).astype(dtype)
        tall = np.vstack([a, rng.standard_normal((900, k)).astype(dtype)])
        short, full = ops.matmul(a, b), ops.matmul(tall, b)
        assert short.tobytes() == np.ascontiguousarray(full[:m]).tobytes()
        bias = rng.standard_normal(n).astype(dtype)
        y1 = ops.linear(a, b, bias, activation="relu")
        y2 = ops.linear(tall, b, bias, activation="relu")
        assert y1.tobytes() == np.ascontiguousarray(y2[:m]).tobytes()
        want = ref.matmul(a.astype(np.float64), b.astype(np.float64))
        _check_close(short, want, ref.matmul(np.abs(a), np.abs(b)).astype(np.float64), dtype, k)


# ---- linear ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("act", ACTS + ["step"])
def test_linear_matches_reference(isa, dtype, act, rng):
    for n, i, o in [(1, 784, 256), (2, 5, 3), (5, 7, 33), (128, 128, 10), (37, 300, 17),
                    (128, 64, 50), (31, 20, 100)]:
        x = rng.standard_normal((n, i)).astype(dtype)
        w = (rng.standard_normal((i, o)) / np.sqrt(i)).astype(dtype)
        b = rng.standard_normal(o).astype(dtype)
        for bias in (b, None):
            got = ops.linear(x, w, bias, activation=act, alpha=0.1)
            want = ref.linear(x.astype(np.float64), w.astype(np.float64),
                              None if bias is None else bias.astype(np.float64),
                              activation=act, alpha=0.1)
            assert got.dtype == dtype
            if act == "step":  # the threshold flips under rounding only exactly at 0
                z = ref.linear(x.astype(np.float64), w.astype(np.float64),
                               None if bias is None else bias.astype(np.float64))
                sure = np.abs(z) > 1e-4
                np.testing.assert_array_equal(got[sure], want[sure])
            else:
                np.testing.assert_allclose(got, want, rtol=_tol(dtype, i) * 50,
                                           atol=_tol(dtype, i) * 50)


@pytest.mark.parametrize("dtype", DTYPES)
def test_linear_out_and_reuse(dtype, rng):
    x = rng.standard_normal((9, 4)).astype(dtype)
    w = rng.standard_normal((4, 6)).astype(dtype)
    out = np.empty((9, 6), dtype)
    assert ops.linear(x, w, activation="relu", out=out) is out
    np.testing.assert_allclose(out, np.maximum(x @ w, 0), rtol=1e-5)


def test_softmax_rows_sum_to_one_with_huge_logits():
    x = np.array([[1010.0, 1000.0, 990.0], [0.0, 1.0, 2.0]], np.float32)
    y = ops.linear(x, np.eye(3, dtype=np.float32), activation="softmax")
    assert np.all(np.isfinite(y))
    np.testing.assert_allclose(y.sum(axis=1), 1.0, rtol=1e-6)


# ---- linear_backward ------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("act", ACTS)
def test_linear_backward_matches_reference(isa, dtype, act, rng):
    for n, i, o in [(1, 3, 2), (5, 7, 33), (128, 64, 10), (33, 300, 17)]:
        x = rng.standard_normal((n, i)).astype(dtype)
        w = (rng.standard_normal((i, o)) / np.sqrt(i)).astype(dtype)
        b = rng.standard_normal(o).astype(dtype)
        y = ops.linear(x, w, b, activation=act, alpha=0.1)
        dy = rng.standard_normal((n, o)).astype(dtype)
        dx, dw, db = ops.linear_backward(x, w, y, dy, activation=act, alpha=0.1)
        f = lambda v: v.astype(np.float64)
        rdx, rdw, rdb = ref.linear_backward(f(x), f(w), f(y), f(dy), activation=act, alpha=0.1)
        tol = _tol(dtype, max(n, o)) * 50
        np.testing.assert_allclose(dx, rdx, rtol=tol, atol=tol)
        np.testing.assert_allclose(dw, rdw, rtol=tol, atol=tol * np.sqrt(n))
        np.testing.assert_allclose(db, rdb, rtol=tol, atol=tol * np.sqrt(n))
        none_dx, dw2, db2 = ops.linear_backward(x, w, y, dy, activation=act, alpha=0.1,
                                                need_dx=False)
        assert none_dx is None
        assert dw2.tobytes() == dw.tobytes() and db2.tobytes() == db.tobytes()


def _outputs_with_kinks(rng, n, o, act, dtype):
    """A layer output y holding exact zeros (the relu/leaky_relu kink) among positive and, for
    leaky_relu and identity, negative values; a row-stochastic y for softmax, (0, 1) for sigmoid."""
    z = rng.standard_normal((n, o))
    z.flat[::3] = 0.0
    y = {"relu": np.maximum(z, 0), "sigmoid": 1 / (1 + np.exp(-z)), "tanh": np.tanh(z),
         "softmax": ref.softmax(z)}.get(act, z)
    return y.astype(dtype)


KINK_SHAPES = [(1, 3, 2), (7, 5, 33), (33, 17, 130), (300, 9, 257)]


@pytest.mark.parametrize("n_threads", [1, 2])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("act", ACTS)
def test_linear_backward_and_activation_backward_share_one_derivative(isa, threads, n_threads,
                                                                      act, dtype, rng):
    """Outputs exactly 0 through both paths: ops.linear_backward's fused dz pass and
    ops.activation_backward run the one derivative (PyTorch's convention at the kinks: relu' = 0,
    leaky_relu' = alpha at y == 0), and the one bias-gradient reduction: bitwise equal, and equal
    to the reference."""
    threads(n_threads)
    for n, i, o in KINK_SHAPES:
        x = rng.standard_normal((n, i)).astype(dtype)
        w = rng.standard_normal((i, o)).astype(dtype)
        y = _outputs_with_kinks(rng, n, o, act, dtype)
        dy = rng.standard_normal((n, o)).astype(dtype)
        dx, dw, db = ops.linear_backward(x, w, y, dy, activation=act, alpha=0.1)
        dz = ops.activation_backward(act, y, dy, alpha=0.1)
        np.testing.assert_array_equal(dx, ops.matmul(dz, w, trans_b=True))
        np.testing.assert_array_equal(dw, ops.matmul(x, dz, trans_a=True))
        np.testing.assert_array_equal(db, ops.bias_grad(dz))
        want = ref.activation_backward(act, y, dy, alpha=0.1)
        if act in ("identity", "relu", "leaky_relu"):  # exact arithmetic: bitwise
            np.testing.assert_array_equal(dz, want)
        else:
            np.testing.assert_allclose(dz, want, rtol=_tol(dtype, o), atol=_tol(dtype, o))
        f = lambda v: v.astype(np.float64)
        rdx, rdw, rdb = ref.linear_backward(f(x), f(w), f(y), f(dy), activation=act, alpha=0.1)
        tol = _tol(dtype, max(n, o)) * 50
        np.testing.assert_allclose(dx, rdx, rtol=tol, atol=tol * np.sqrt(o))
        np.testing.assert_allclose(dw, rdw, rtol=tol, atol=tol * np.sqrt(n))
        np.testing.assert_allclose(db, rdb, rtol=tol, atol=tol * np.sqrt(n))


@pytest.mark.parametrize("n_threads", [1, 2])
@pytest.mark.parametrize("dtype", DTYPES)
def test_bias_grad_is_linear_backwards_db_bitwise(isa, threads, n_threads, dtype, rng):
    """One bias-gradient reduction: ops.bias_grad(dz) is the db of ops.linear_backward (identity:
    dz = dy), bitwise; with accumulate, db + bias_grad(dz) rounded once."""
    threads(n_threads)
    for n, i, o in KINK_SHAPES + [(5, 3, 2100), (1001, 2, 70)]:
        x = rng.standard_normal((n, i)).astype(dtype)
        w = rng.standard_normal((i, o)).astype(dtype)
        dz = rng.standard_normal((n, o)).astype(dtype)
        _, _, db = ops.linear_backward(x, w, dz, dz, need_dx=False)
        assert db.tobytes() == ops.bias_grad(dz).tobytes()
        db0 = rng.standard_normal(o).astype(dtype)
        acc = db0.copy()
        ops.linear_backward(x, w, dz, dz, need_dx=False, dw=np.zeros((i, o), dtype), db=acc,
                            accumulate=True)
        assert acc.tobytes() == (db0 + ops.bias_grad(dz)).tobytes()


@pytest.mark.parametrize("act", ACTS)
def test_linear_backward_central_differences(act):
    """float64 gradients of L = sum(g * linear(x, w, b)) against (f(v+h) - f(v-h)) / 2h."""
    rng = np.random.default_rng(3)
    n, i, o, h = 4, 5, 3, 1e-6
    x, w = rng.standard_normal((n, i)), rng.standard_normal((i, o))
    b, g = rng.standard_normal(o), rng.standard_normal((n, o))
    if act in ("relu", "leaky_relu"):  # keep pre-activations away from the kink
        z = x @ w + b
        b += np.where(np.abs(z) < 0.05, 0.2, 0).max(axis=0)

    def loss():
        return float(np.sum(g * ops.linear(x, w, b, activation=act, alpha=0.1)))

    y = ops.linear(x, w, b, activation=act, alpha=0.1)
    dx, dw, db = ops.linear_backward(x, w, y, g, activation=act, alpha=0.1)
    for param, grad in ((x, dx), (w, dw), (b, db)):
        num = np.zeros_like(param)
        for idx in np.ndindex(param.shape):
            old = param[idx]
            param[idx] = old + h
            up = loss()
            param[idx] = old - h
            down = loss()
            param[idx] = old
            num[idx] = (up - down) / (2 * h)
        np.testing.assert_allclose(grad, num, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("dtype", DTYPES)
def test_linear_backward_in_place_and_accumulate(isa, dtype, rng):
    n, i, o = 20, 30, 40
    x = rng.standard_normal((n, i)).astype(dtype)
    w = rng.standard_normal((i, o)).astype(dtype)
    y = ops.linear(x, w, activation="sigmoid")
    dy = rng.standard_normal((n, o)).astype(dtype)
    dx, dw, db = (np.full(s, np.nan, dtype) for s in ((n, i), (i, o), (o,)))
    res = ops.linear_backward(x, w, y, dy, activation="sigmoid", dx=dx, dw=dw, db=db)
    assert res[0] is dx and res[1] is dw and res[2] is db
    rdx, rdw, rdb = ref.linear_backward(x, w, y, dy, activation="sigmoid")
    tol = 1e-4 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(dx, rdx, rtol=tol, atol=tol)
    dw0, db0 = dw.copy(), db.copy()
    ops.linear_backward(x, w, y, dy, activation="sigmoid", need_dx=False, dw=dw, db=db,
                        accumulate=True)
    np.testing.assert_allclose(dw, dw0 + rdw, rtol=tol, atol=tol)
    np.testing.assert_allclose(db, db0 + rdb, rtol=tol, atol=tol)


# ---- bad inputs -----------------------------------------------------------------------------------

def test_bad_inputs_raise_before_c_runs():
    f32, f64 = np.ones((3, 4), np.float32), np.ones((4, 5), np.float64)
    a, b = np.ones((3, 4), np.float32), np.ones((4, 5), np.float32)
    with pytest.raises(TypeError, match="b must have dtype float32"):
        ops.matmul(f32, f64)
    with pytest.raises(TypeError, match="a must have dtype"):
        ops.matmul(np.ones((3, 4), np.int64), b)
    with pytest.raises(ValueError, match="inner dimensions"):
        ops.matmul(a, a)
    with pytest.raises(ValueError, match="a must be 2-D"):
        ops.matmul(np.ones(4, np.float32), b)
    with pytest.raises(ValueError, match="accumulate=True needs out"):
        ops.matmul(a, b, accumulate=True)
    with pytest.raises(ValueError, match="out must have shape"):
        ops.matmul(a, b, out=np.empty((3, 4), np.float32))
    with pytest.raises(TypeError, match="out must have dtype"):
        ops.matmul(a, b, out=np.empty((3, 5), np.float64))
    with pytest.raises(ValueError, match="C-contiguous"):
        ops.matmul(a, b, out=np.empty((5, 3), np.float32).T)
    sq = np.ones((4, 4), np.float32)
    for out in (sq, sq[:, :]):
        before = sq.copy()
        with pytest.raises(ValueError, match="must not overlap"):
            ops.matmul(sq, sq, out=out)
        np.testing.assert_array_equal(sq, before)
    ro = np.empty((3, 5), np.float32)
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="writeable"):
        ops.matmul(a, b, out=ro)
    with pytest.raises(ValueError, match=r"b must have shape \(5,\)"):
        ops.linear(a, b, np.ones(4, np.float32))
    with pytest.raises(TypeError, match="b must have dtype float32"):
        ops.linear(a, b, np.ones(5, np.float64))
    with pytest.raises(ValueError, match="w must have shape"):
        ops.linear(a, np.ones((3, 5), np.float32))
    with pytest.raises(ValueError, match="activation must be one of"):
        ops.linear(a, b, activation="gelu")
    with pytest.raises(TypeError, match="activation must be a str"):
        ops.linear(a, b, activation=1)
    with pytest.raises(ValueError, match="alpha must be finite"):
        ops.linear(a, b, activation="leaky_relu", alpha=float("nan"))
    y = np.ones((3, 5), np.float32)
    with pytest.raises(ValueError, match="'step' has no backward: it is forward-only"):
        ops.linear_backward(a, b, y, y, activation="step")
    with pytest.raises(ValueError, match=r"dy must have shape \(3, 5\)"):
        ops.linear_backward(a, b, y, np.ones((3, 4), np.float32))
    with pytest.raises(ValueError, match=r"y must have shape \(3, 5\)"):
        ops.linear_backward(a, b, np.ones((2, 5), np.float32), y)
    with pytest.raises(TypeError, match="dy must have dtype float32"):
        ops.linear_backward(a, b, y, y.astype(np.float64))
    with pytest.raises(ValueError, match="accumulate=True needs dw"):
        ops.linear_backward(a, b, y, y, accumulate=True)
    with pytest.raises(ValueError, match="need_dx=False"):
        ops.linear_backward(a, b, y, y, need_dx=False, dx=np.empty((3, 4), np.float32))
    dw = np.empty((4, 5), np.float32)
    with pytest.raises(ValueError, match="db must not overlap"):
        ops.linear_backward(a, b, y, y, dw=dw, db=dw[0])
    with pytest.raises(ValueError, match="dw must not overlap"):
        ops.linear_backward(a, b, y, y, dw=b)


def test_non_contiguous_inputs_are_copied(rng):
    a = rng.standard_normal((10, 6)).astype(np.float32)
    b = rng.standard_normal((20, 7)).astype(np.float32)
    at, bs = a.T, b[::2]  # (6, 10) F-ordered and (10, 7) strided
    assert not at.flags.c_contiguous and not bs.flags.c_contiguous
    np.testing.assert_allclose(ops.matmul(at, bs), at @ bs, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(ops.linear(a[:, ::2], b[:3]), a[:, ::2] @ b[:3], rtol=1e-5,
                               atol=1e-5)
    y = ops.linear(at, bs, activation="tanh")
    g = ops.linear_backward(at, bs, y[:, ::-1][:, ::-1], y, activation="tanh")
    want = ref.linear_backward(at, bs, y, y, activation="tanh")
    for p, q in zip(g, want):
        np.testing.assert_allclose(p, q, rtol=1e-5, atol=1e-5)


def test_release_buffers_then_reuse(rng):
    a = rng.standard_normal((50, 60)).astype(np.float32)
    first = ops.matmul(a, a.T.copy())
    pynn._core._gemm_release_buffers()
    assert ops.matmul(a, a.T.copy()).tobytes() == first.tobytes()
