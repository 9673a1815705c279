"""Activations (forward and backward), softmax and the bias gradient: pynn.ops vs pynn.reference,
every ISA path, 1 vs 2 threads, float64 central differences, extreme values, torch, bad input."""
import warnings

import numpy as np
import pytest

from pynn import ops
from pynn import reference as ref

NAMES = ["identity", "relu", "leaky_relu", "sigmoid", "tanh", "softmax", "step"]
DIFFERENTIABLE = [n for n in NAMES if n != "step"]
SHAPES = [(1, 1), (1, 37), (37, 1), (7,), (33,), (1031,), (5, 17), (3, 4, 9), (64, 130)]
DTYPES = [np.float32, np.float64]
# float32 exp/sigmoid/tanh are our own polynomials (a few ulp); float64 to ~1e-15
TOL = {np.float32: {"rtol": 3e-6, "atol": 1e-7}, np.float64: {"rtol": 1e-14, "atol": 1e-300}}


def _inputs(rng, shape, dtype):
    x = rng.normal(0, 3, size=shape)
    x.flat[:: max(1, x.size // 5)] = 0.0  # exact zeros: relu/step/leaky edges
    return x.astype(dtype)


def _oracle(name, x, alpha=0.01):
    return ref.activation(name, x.astype(np.float64), alpha=alpha)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("name", NAMES)
def test_forward_matches_reference(isa, rng, name, shape, dtype):
    x = _inputs(rng, shape, dtype)
    y = ops.activation(name, x, alpha=0.05)
    assert y.dtype == dtype and y.shape == x.shape
    np.testing.assert_allclose(y, _oracle(name, x, 0.05), **TOL[dtype])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("name", DIFFERENTIABLE)
def test_backward_matches_reference(isa, rng, name, shape, dtype):
    y = _oracle(name, _inputs(rng, shape, dtype), 0.05).astype(dtype)
    dy = rng.normal(size=shape).astype(dtype)
    dx = ops.activation_backward(name, y, dy, alpha=0.05)
    want = ref.activation_backward(name, y.astype(np.float64), dy.astype(np.float64), alpha=0.05)
    np.testing.assert_allclose(dx, want, rtol=TOL[dtype]["rtol"], atol=1e-6 if dtype ==
                               np.float32 else 1e-15)


def _ulps(got, want64):
    """Error in units of the float32 spacing at the true value."""
    want32 = want64.astype(np.float32)
    spacing = np.spacing(np.abs(want32)).astype(np.float64)
    return np.abs(got.astype(np.float64) - want64) / spacing


@pytest.mark.parametrize("name", ["sigmoid", "tanh"])
def test_float32_accuracy_in_ulps(isa, name):
    x = np.concatenate([np.linspace(-30, 30, 400_001), np.geomspace(1e-30, 1, 2000),
                        -np.geomspace(1e-30, 1, 2000)]).astype(np.float32)
    got = ops.activation(name, x)
    want = _oracle(name, x)
    keep = np.abs(want) > 1e-30  # subnormal results: absolute error only
    assert _ulps(got, want)[keep].max() <= 4
    assert np.abs(got - want)[~keep].max(initial=0) < 1e-37


@pytest.mark.parametrize("name", ["sigmoid", "tanh"])
def test_float64_accuracy_in_ulps(isa, name):
    """Our own float64 exp/tanh polynomials against long-double (x87 extended) NumPy."""
    x = np.concatenate([np.linspace(-40, 40, 200_001), np.geomspace(1e-300, 1, 2000),
                        -np.geomspace(1e-300, 1, 2000), [0.25, -0.25, np.nextafter(0.25, 0)]])
    got = ops.activation(name, x)
    xl = x.astype(np.longdouble)
    want = np.tanh(xl) if name == "tanh" else 1 / (1 + np.exp(-xl))
    want64 = want.astype(np.float64)
    keep = np.abs(want64) > 1e-300
    ulps = np.abs(got - want)[keep] / np.spacing(np.abs(want64[keep]))
    assert ulps.max() <= 4


def test_softmax_rows_sum_to_one_and_in_place(isa, rng):
    x = rng.normal(0, 5, size=(33, 257)).astype(np.float32)
    want = ref.softmax(x.astype(np.float64))
    y = ops.softmax(x)
    np.testing.assert_allclose(y.sum(axis=1), 1, rtol=1e-5)
    np.testing.assert_allclose(y, want, rtol=3e-6, atol=1e-9)
    out = ops.softmax(x, out=x)  # in place is allowed
    assert out is x
    np.testing.assert_array_equal(x, y)


def test_in_place_backward_into_dy(rng):
    y = ref.activation("tanh", rng.normal(size=(9, 11)))
    dy = rng.normal(size=(9, 11))
    want = ops.activation_backward("tanh", y, dy)
    assert ops.activation_backward("tanh", y, dy, out=dy) is dy
    np.testing.assert_array_equal(dy, want)


def test_non_contiguous_input_is_copied_not_misread(rng):
    x = rng.normal(size=(20, 30))
    view = x[:, ::3]
    np.testing.assert_array_equal(ops.activation("relu", view), np.maximum(view, 0))
    np.testing.assert_allclose(ops.softmax(x.T), ref.softmax(x.T), rtol=1e-14)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_one_and_two_threads_bitwise_identical(threads, rng, name, dtype):
    x = _inputs(rng, (1500, 203), dtype)  # large enough to start threads; odd row length
    dy = rng.normal(size=x.shape).astype(dtype)
    threads(1)
    y1 = ops.activation(name, x)
    d1 = ops.activation_backward(name, y1, dy) if name != "step" else None
    threads(2)
    y2 = ops.activation(name, x)
    np.testing.assert_array_equal(y1, y2)
    if d1 is not None:
        np.testing.assert_array_equal(d1, ops.activation_backward(name, y2, dy))


@pytest.mark.parametrize("name", DIFFERENTIABLE)
def test_backward_central_differences(rng, name):
    """d/dx sum(act(x) * g) against (f(x+h) - f(x-h)) / 2h, in float64."""
    x = rng.normal(0, 2, size=(4, 6))
    x[np.abs(x) < 0.05] = 0.3  # keep relu/leaky away from the kink
    g = rng.normal(size=x.shape)
    y = ops.activation(name, x, alpha=0.1)
    dx = ops.activation_backward(name, y, g, alpha=0.1)
    h = 1e-6
    num = np.empty_like(x)
    for i in np.ndindex(x.shape):
        xp, xm = x.copy(), x.copy()
        xp[i] += h
        xm[i] -= h
        num[i] = (np.sum(ops.activation(name, xp, alpha=0.1) * g)
                  - np.sum(ops.activation(name, xm, alpha=0.1) * g)) / (2 * h)
    np.testing.assert_allclose(dx, num, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("dtype", DTYPES)
def test_extreme_values_saturate_without_warnings(isa, dtype):
    x = np.array([-np.inf, -1e4, -200.0, -88.0, -20.0, -0.0, 0.0, 20.0, 88.0, 200.0, 1e4,
                  np.inf], dtype=dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        s = ops.activation("sigmoid", x)
        t = ops.activation("tanh", x)
        sm = ops.softmax(np.array([[1010.0, 1000.0, 990.0], [-1e4, 0, 1e4],
                                   [-np.inf, 0.0, 1.0]], dtype=dtype))
    assert s[0] == 0 and s[1] == 0 and s[-1] == 1 and s[-2] == 1
    assert np.all((s >= 0) & (s <= 1))
    np.testing.assert_array_equal(t[[0, 1, 2, -3, -2, -1]], [-1, -1, -1, 1, 1, 1])
    np.testing.assert_allclose(s, _oracle("sigmoid", x), **TOL[dtype])
    np.testing.assert_allclose(t, _oracle("tanh", x), **TOL[dtype])
    np.testing.assert_allclose(sm[0], [9.99954600e-01, 4.53978686e-05, 2.06106005e-09],
                               rtol=1e-6)
    np.testing.assert_array_equal(sm[1], [0, 0, 1])
    assert sm[2, 0] == 0 and np.isfinite(sm).all()


@pytest.mark.parametrize("name", NAMES)
def test_nan_propagates(isa, name):
    x = np.array([[0.5, np.nan, -2.0, 3.0] * 5], dtype=np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        y = ops.activation(name, x)
    if name == "softmax":
        assert np.isnan(y).all()  # the whole row depends on the NaN
    else:
        assert np.isnan(y[0, 1::4]).all() and not np.isnan(y[0, 0::4]).any()


@pytest.mark.parametrize("name", ["relu", "leaky_relu", "sigmoid", "tanh", "softmax"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_matches_torch(rng, name, dtype):
    torch = pytest.importorskip("torch")
    x = rng.normal(0, 4, size=(17, 29)).astype(dtype)
    dy = rng.normal(size=x.shape).astype(dtype)
    fn = {"relu": torch.relu, "leaky_relu": lambda t: torch.nn.functional.leaky_relu(t, 0.01),
          "sigmoid": torch.sigmoid, "tanh": torch.tanh,
          "softmax": lambda t: torch.softmax(t, dim=1)}[name]
    xt = torch.from_numpy(x.copy()).requires_grad_(True)
    yt = fn(xt)
    yt.backward(torch.from_numpy(dy))
    y = ops.activation(name, x)
    tol = {"rtol": 3e-6, "atol": 1e-7} if dtype == np.float32 else {"rtol": 1e-13, "atol": 1e-15}
    np.testing.assert_allclose(y, yt.detach().numpy(), **tol)
    np.testing.assert_allclose(ops.activation_backward(name, y, dy), xt.grad.numpy(),
                               rtol=tol["rtol"] * 4, atol=1e-6 if dtype == np.float32 else 1e-14)


def test_core_exports_the_one_activation_table():
    """pynn._core.ACTIVATIONS is csrc/pynn.h's enum pn_act in order (ids are positions)."""
    from pynn import _core
    assert _core.ACTIVATIONS == tuple(NAMES)
    assert _core.FORWARD_ONLY_ACTIVATIONS == ("step",)
    assert tuple(ops.ACTIVATIONS) == _core.ACTIVATIONS


@pytest.mark.parametrize("n_threads", [1, 2])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", ["relu", "leaky_relu"])
def test_backward_at_the_kink_is_torchs(isa, threads, n_threads, name, dtype, rng):
    """y == 0 exactly: relu' = 0 and leaky_relu' = alpha (PyTorch's threshold_backward and
    leaky_relu_backward test y > 0), as pynn.reference."""
    threads(n_threads)
    y = np.where(rng.random((300, 257)) < 0.3, 0.0, rng.normal(size=(300, 257))).astype(dtype)
    if name == "relu":
        y = np.maximum(y, 0)
    dy = rng.normal(size=y.shape).astype(dtype)
    dx = ops.activation_backward(name, y, dy, alpha=0.25)
    zero = y == 0
    want_at_zero = 0 if name == "relu" else dtype(0.25) * dy[zero]
    np.testing.assert_array_equal(dx[zero], want_at_zero)
    np.testing.assert_array_equal(dx, ref.activation_backward(name, y, dy, alpha=0.25))


# ---- bias_grad ----------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(1, 1), (1, 7), (300, 1), (33, 257), (1000, 10), (5, 600)])
def test_bias_grad_matches_reference(isa, rng, shape, dtype):
    dz = rng.normal(size=shape).astype(dtype)
    db = ops.bias_grad(dz)
    assert db.shape == (shape[1],) and db.dtype == dtype
    np.testing.assert_allclose(db, dz.astype(np.float64).sum(axis=0),
                               rtol=1e-6 if dtype == np.float32 else 1e-13, atol=1e-5)
    out = np.empty(shape[1], dtype)
    assert ops.bias_grad(dz, out=out) is out
    np.testing.assert_array_equal(out, db)


def test_bias_grad_threads_bitwise(threads, rng):
    dz = rng.normal(size=(300, 1500)).astype(np.float32)
    threads(1)
    a = ops.bias_grad(dz)
    threads(2)
    np.testing.assert_array_equal(a, ops.bias_grad(dz))


# ---- bad input ---------------------------------------------------------------------------------

def _bad(exc, match, fn, *args, **kwargs):
    with pytest.raises(exc, match=match):
        fn(*args, **kwargs)


def test_bad_names_and_alpha():
    x = np.ones((2, 3))
    _bad(ValueError, "name must be one of", ops.activation, "gelu", x)
    _bad(TypeError, "name must be a str", ops.activation, 3, x)
    _bad(ValueError, "step.*no backward", ops.activation_backward, "step", x, x)
    _bad(ValueError, "alpha must be in", ops.activation, "leaky_relu", x, alpha=-0.1)
    _bad(ValueError, "alpha must be finite", ops.activation, "relu", x, alpha=np.nan)
    _bad(TypeError, "alpha must be a real number", ops.activation, "relu", x, alpha="a")


def test_bad_arrays():
    x = np.ones((2, 3))
    _bad(TypeError, "x must have dtype float32 or float64, got int64", ops.activation, "relu",
         np.ones((2, 3), dtype=np.int64))
    _bad(TypeError, "x must have dtype float32 or float64, got float16", ops.softmax,
         np.ones(3, np.float16))
    _bad(ValueError, "x must not be empty", ops.activation, "relu", np.ones((0, 3)))
    _bad(ValueError, "at least 1 dimension", ops.activation, "relu", np.float64(1.0))
    _bad(TypeError, r"dy must have dtype float64", ops.activation_backward, "relu", x,
         x.astype(np.float32))
    _bad(ValueError, r"dy must have the shape of y \(2, 3\), got \(3, 2\)",
         ops.activation_backward, "relu", x, x.T.copy())
    _bad(TypeError, "dz must have dtype", ops.bias_grad, np.ones((2, 2), np.int32))
    _bad(ValueError, "dz must be 2-D", ops.bias_grad, np.ones(3))
    _bad(ValueError, "dz must not be empty", ops.bias_grad, np.ones((0, 3)))


def test_bad_out_leaves_it_unchanged():
    x = np.linspace(-1, 1, 6).reshape(2, 3)
    sentinel = np.full((2, 3), 7.0)
    cases = [
        (TypeError, "out must have dtype float64", sentinel.astype(np.float32)),
        (ValueError, r"out must have shape \(2, 3\)", np.full((3, 2), 7.0)),
        (ValueError, "C-contiguous", np.full((3, 2), 7.0).T),
        (TypeError, "out must be a numpy.ndarray", [[7.0] * 3] * 2),
    ]
    for exc, match, out in cases:
        before = np.array(out, copy=True)
        _bad(exc, match, ops.activation, "sigmoid", x, out=out)
        np.testing.assert_array_equal(np.asarray(out), before)
    ro = sentinel.copy()
    ro.flags.writeable = False
    _bad(ValueError, "out must be writeable", ops.activation, "sigmoid", x, out=ro)
    big = np.zeros(12)
    _bad(ValueError, "must not overlap", ops.activation, "relu", big[:6].reshape(2, 3),
         out=big[3:9].reshape(2, 3))
    assert not big.any()
