"""Losses fused with their gradients: pynn.ops vs pynn.reference, every ISA path, 1 vs 2 threads,
float64 central differences of every gradient, extreme values, torch, bad input."""
import functools
import warnings

import numpy as np
import pytest

from pynn import ops
from pynn import reference as ref

DTYPES = [np.float32, np.float64]
LOSS_TOL = {np.float32: 2e-6, np.float64: 1e-13}
GRAD_TOL = {np.float32: {"rtol": 2e-5, "atol": 1e-8}, np.float64: {"rtol": 1e-12, "atol": 1e-17}}
XENT_SHAPES = [(1, 1), (1, 10), (7, 1), (7, 3), (33, 10), (128, 10), (5, 33), (3, 1000),
               (1030, 17)]
ELEMENTWISE_SHAPES = [(1,), (7,), (33,), (1031,), (1, 1), (1, 9), (9, 1), (33, 10), (64, 129)]


def _onehot(labels, c, dtype):
    t = np.zeros((len(labels), c), dtype)
    t[np.arange(len(labels)), labels] = 1
    return t


def _probs(rng, shape, dtype):
    p = rng.random(shape) ** 3
    return (p / p.sum(axis=1, keepdims=True)).astype(dtype)


def _check(got, want, dtype):
    loss, grad = got
    want_loss, want_grad = want
    assert isinstance(loss, float)
    assert grad.dtype == dtype
    np.testing.assert_allclose(loss, want_loss, rtol=LOSS_TOL[dtype], atol=1e-12)
    np.testing.assert_allclose(grad, want_grad, **GRAD_TOL[dtype])


def _f64(*arrays):
    return [None if a is None else np.asarray(a).astype(np.float64)
            if np.asarray(a).dtype.kind == "f" else a for a in arrays]


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", XENT_SHAPES)
def test_softmax_cross_entropy_labels(isa, rng, shape, dtype, weighted):
    n, c = shape
    x = rng.normal(0, 3, size=shape).astype(dtype)
    labels = rng.integers(0, c, size=n)
    w = rng.random(n).astype(dtype) + 0.1 if weighted else None
    got = ops.softmax_cross_entropy(x, labels, sample_weight=w)
    x64, w64 = _f64(x, w)
    _check(got, ref.softmax_cross_entropy(x64, labels, sample_weight=w64), dtype)
    # one-hot targets give the same answer
    _check(ops.softmax_cross_entropy(x, _onehot(labels, c, dtype), sample_weight=w), got, dtype)


@pytest.mark.parametrize("label_dtype", [np.int8, np.uint8, np.int16, np.int32, np.int64,
                                         np.uint64])
def test_any_integer_label_dtype(rng, label_dtype):
    x = rng.normal(size=(9, 5))
    labels = rng.integers(0, 5, size=9)
    want = ops.softmax_cross_entropy(x, labels)
    got = ops.softmax_cross_entropy(x, labels.astype(label_dtype))
    assert got[0] == want[0]
    np.testing.assert_array_equal(got[1], want[1])


@pytest.mark.parametrize("name", ["softmax_cross_entropy", "kl_divergence"])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", XENT_SHAPES)
def test_probability_targets(isa, rng, name, shape, dtype, weighted):
    x = rng.normal(0, 3, size=shape).astype(dtype)
    t = _probs(rng, shape, dtype)
    t[0, 0] = 0  # a zero probability: 0 log 0 = 0
    w = rng.random(shape[0]).astype(dtype) + 0.1 if weighted else None
    got = getattr(ops, name)(x, t, sample_weight=w)
    _check(got, getattr(ref, name)(*_f64(x, t), sample_weight=_f64(w)[0]), dtype)


@pytest.mark.parametrize("name", ["mse", "binary_cross_entropy", "hinge", "mae", "huber",
                                  "huber_delta", "poisson"])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", ELEMENTWISE_SHAPES)
def test_elementwise_losses(isa, rng, name, shape, dtype, weighted):
    p = rng.normal(0, 2, size=shape).astype(dtype)
    if name == "hinge":
        t = rng.choice([-1.0, 0.0, 1.0], size=shape).astype(dtype)
    elif name == "binary_cross_entropy":
        t = rng.random(shape).astype(dtype)
    elif name == "poisson":
        t = rng.poisson(2.0, size=shape).astype(dtype)
    else:
        t = rng.normal(size=shape).astype(dtype)
    w = rng.random(shape[0]).astype(dtype) + 0.1 if weighted else None
    got = _loss_fn(name)(p, t, sample_weight=w)
    _check(got, _loss_fn(name, ref)(*_f64(p, t), sample_weight=_f64(w)[0]), dtype)


def test_out_receives_gradient_without_allocating(rng):
    x = rng.normal(size=(16, 10)).astype(np.float32)
    labels = rng.integers(0, 10, size=16)
    out = np.empty_like(x)
    loss, d = ops.softmax_cross_entropy(x, labels, out=out)
    assert d is out
    again = ops.softmax_cross_entropy(x, labels)
    assert loss == again[0]
    np.testing.assert_array_equal(d, again[1])
    for name in ["mse", "binary_cross_entropy"]:
        out = np.empty_like(x)
        assert getattr(ops, name)(x, x * 0.5, out=out)[1] is out


def test_integer_weights_and_uniform_weights_equal_the_mean(rng):
    x = rng.normal(size=(20, 4))
    labels = rng.integers(0, 4, size=20)
    plain = ops.softmax_cross_entropy(x, labels)
    uniform = ops.softmax_cross_entropy(x, labels, sample_weight=np.full(20, 3))
    np.testing.assert_allclose(uniform[0], plain[0], rtol=1e-15)
    np.testing.assert_allclose(uniform[1], plain[1], rtol=1e-15)
    # weight 2 on a row == that row twice
    w = np.ones(20)
    w[3] = 2
    twice = ops.softmax_cross_entropy(np.vstack([x, x[3:4]]), np.append(labels, labels[3]))
    np.testing.assert_allclose(ops.softmax_cross_entropy(x, labels, sample_weight=w)[0],
                               twice[0], rtol=1e-14)


CASES = {
    "softmax_cross_entropy": lambda rng, n, c: rng.integers(0, c, size=n),
    "softmax_cross_entropy_probs": lambda rng, n, c: _probs(rng, (n, c), np.float64),
    "kl_divergence": lambda rng, n, c: _probs(rng, (n, c), np.float64),
    "mse": lambda rng, n, c: rng.normal(size=(n, c)),
    "binary_cross_entropy": lambda rng, n, c: rng.random((n, c)),
    "hinge": lambda rng, n, c: rng.choice([-1.0, 1.0], size=(n, c)),
    "mae": lambda rng, n, c: rng.normal(size=(n, c)),
    "huber": lambda rng, n, c: rng.normal(size=(n, c)),
    "huber_delta": lambda rng, n, c: rng.normal(size=(n, c)),
    "poisson": lambda rng, n, c: rng.poisson(1.5, size=(n, c)).astype(np.float64),
}


def _loss_fn(name, module=ops):
    """The loss function a case name stands for (huber_delta: huber with delta 0.3)."""
    if name == "huber_delta":
        return functools.partial(module.huber, delta=0.3)
    return getattr(module, name.replace("_probs", ""))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", list(CASES))
def test_subnormal_weights_weigh_like_any_others(rng, name, dtype):
    """Weights whose sum is subnormal (1 / sum overflows) give the unit weights' loss and
    gradient: only the weights' ratios count."""
    n, c = 6, 5
    x = rng.normal(size=(n, c)).astype(dtype)
    t = CASES[name](rng, n, c)
    t = t.astype(dtype) if t.dtype.kind == "f" else t
    unit = np.ones(n, dtype)
    unit[0] = 0
    fn = _loss_fn(name)
    want = fn(x, t, sample_weight=unit)
    for tiny in (np.finfo(dtype).smallest_subnormal, np.finfo(dtype).tiny / 64):
        loss, grad = fn(x, t, sample_weight=unit * dtype(tiny))
        assert np.isfinite(loss) and np.all(np.isfinite(grad)), tiny
        np.testing.assert_allclose(loss, want[0], rtol=LOSS_TOL[dtype])
        np.testing.assert_allclose(grad, want[1], **GRAD_TOL[dtype])


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("name", list(CASES))
def test_gradient_central_differences(rng, name, weighted):
    n, c = 4, 5
    x = rng.normal(0, 2, size=(n, c))
    t = CASES[name](rng, n, c)
    if name == "hinge":  # keep margins away from the kink at 1 - t x = 0
        x = np.where(np.abs(1 - t * x) < 0.05, x + 0.2, x)
    if name == "mae":  # and mae's at x = t
        x = np.where(np.abs(x - t) < 0.05, x + 0.2, x)
    w = rng.random(n) + 0.5 if weighted else None
    fn = _loss_fn(name)
    _, grad = fn(x, t, sample_weight=w)
    h = 1e-6
    num = np.empty_like(x)
    for i in np.ndindex(x.shape):
        xp, xm = x.copy(), x.copy()
        xp[i] += h
        xm[i] -= h
        num[i] = (fn(xp, t, sample_weight=w)[0] - fn(xm, t, sample_weight=w)[0]) / (2 * h)
    np.testing.assert_allclose(grad, num, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("name", list(CASES))
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n,c", [(20011, 10), (300, 1001)])
def test_one_and_two_threads_bitwise_identical(threads, rng, name, dtype, n, c):
    x = rng.normal(0, 3, size=(n, c)).astype(dtype)
    t = CASES[name](rng, n, c)
    t = t.astype(dtype) if t.dtype.kind == "f" else t
    w = (rng.random(n) + 0.1).astype(dtype)
    fn = _loss_fn(name)
    for weights in (None, w):
        threads(1)
        l1, d1 = fn(x, t, sample_weight=weights)
        threads(2)
        l2, d2 = fn(x, t, sample_weight=weights)
        assert l1 == l2
        np.testing.assert_array_equal(d1, d2)


@pytest.mark.parametrize("dtype", DTYPES)
def test_one_and_two_threads_bitwise_1d(threads, rng, dtype):
    p = rng.normal(size=300_007).astype(dtype)
    t = rng.normal(size=p.size).astype(dtype)
    threads(1)
    a = ops.mse(p, t)
    threads(2)
    b = ops.mse(p, t)
    assert a[0] == b[0]
    np.testing.assert_array_equal(a[1], b[1])


@pytest.mark.parametrize("dtype", DTYPES)
def test_cross_entropy_extreme_logits(isa, dtype):
    big = np.array([[1e4, -1e4, 0.0], [-1e4, 1e4, 0.0], [0.0, 0.0, 0.0]], dtype=dtype)
    scaled = (np.array([[0.3, -0.2, 0.1], [1.0, 2.0, -3.0]]) * 1e8).astype(dtype)
    minus_inf = np.array([[-np.inf, 1.0, 2.0], [0.5, -np.inf, -np.inf]], dtype=dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        lb, db = ops.softmax_cross_entropy(big, np.array([1, 1, 2]))
        ls, ds = ops.softmax_cross_entropy(scaled, np.array([2, 0]))
        li, di = ops.softmax_cross_entropy(minus_inf, np.array([2, 0]))
        for got, x, t in [((lb, db), big, [1, 1, 2]), ((ls, ds), scaled, [2, 0]),
                          ((li, di), minus_inf, [2, 0])]:
            _check(got, ref.softmax_cross_entropy(x.astype(np.float64), np.array(t)), dtype)
        # BCE / KL with huge logits stay finite
        lbce, dbce = ops.binary_cross_entropy(np.array([1e4, -1e4, 1e4], dtype),
                                              np.array([1.0, 1.0, 0.0], dtype))
    np.testing.assert_allclose(lb, (2e4 + 0 + np.log(3)) / 3, rtol=1e-6)
    np.testing.assert_allclose(ls, (0.2e8 + 0.0) / 2 + (0.0 + 1e8) / 2, rtol=1e-6)
    assert np.isfinite(li) and np.isfinite(di).all() and di[0, 0] == 0
    np.testing.assert_allclose(lbce, 2e4 / 3, rtol=1e-6)
    np.testing.assert_allclose(dbce, np.array([0, -1, 1]) / 3, atol=1e-7)


@pytest.mark.parametrize("name", list(CASES))
def test_nan_propagates_to_the_loss(isa, rng, name):
    x = rng.normal(size=(6, 4)).astype(np.float32)
    x[2, 1] = np.nan
    t = CASES[name](rng, 6, 4)
    t = t.astype(np.float32) if t.dtype.kind == "f" else t
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loss, grad = _loss_fn(name)(x, t)
    assert np.isnan(loss)
    assert np.isfinite(grad[[0, 1, 3, 4, 5]]).all()  # other rows are untouched by the NaN


# ---- torch as a second oracle -------------------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES)
def test_matches_torch(rng, dtype):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    n, c = 37, 11
    x = rng.normal(0, 3, size=(n, c)).astype(dtype)
    labels = rng.integers(0, c, size=n)
    probs = _probs(rng, (n, c), dtype)
    w = (rng.random(n) + 0.1).astype(dtype)
    tol = {"rtol": 2e-5, "atol": 1e-7} if dtype == np.float32 else {"rtol": 1e-12, "atol": 1e-15}

    def torch_loss(fn, target):
        xt = torch.from_numpy(x.copy()).requires_grad_(True)
        loss = fn(xt, target)
        loss.backward()
        return loss.item(), xt.grad.numpy()

    def compare(ours, theirs):
        np.testing.assert_allclose(ours[0], theirs[0], **tol)
        np.testing.assert_allclose(ours[1], theirs[1], **tol)

    lt = torch.from_numpy(labels)
    pt = torch.from_numpy(probs)
    wt = torch.from_numpy(w)
    compare(ops.softmax_cross_entropy(x, labels), torch_loss(F.cross_entropy, lt))
    compare(ops.softmax_cross_entropy(x, probs), torch_loss(F.cross_entropy, pt))
    compare(ops.softmax_cross_entropy(x, labels, sample_weight=w),
            torch_loss(lambda a, t: (F.cross_entropy(a, t, reduction="none") * wt).sum()
                       / wt.sum(), lt))
    compare(ops.kl_divergence(x, probs),
            torch_loss(lambda a, t: F.kl_div(F.log_softmax(a, 1), t, reduction="batchmean"), pt))
    compare(ops.mse(x, probs), torch_loss(F.mse_loss, pt))
    compare(ops.binary_cross_entropy(x, probs),
            torch_loss(F.binary_cross_entropy_with_logits, pt))
    compare(ops.mae(x, probs), torch_loss(F.l1_loss, pt))
    compare(ops.huber(x, probs), torch_loss(F.huber_loss, pt))
    compare(ops.huber(x, probs, delta=0.4), torch_loss(lambda a, t: F.huber_loss(a, t, delta=0.4),
                                                       pt))
    counts = rng.poisson(2.0, size=(n, c)).astype(dtype)
    x_small = x / 3  # rates up to e^3: float32's exp and torch's agree to rounding
    x[...] = x_small
    compare(ops.poisson(x, counts),
            torch_loss(lambda a, t: F.poisson_nll_loss(a, t, log_input=True, full=False),
                       torch.from_numpy(counts)))
    compare(ops.poisson(x, counts, sample_weight=w),
            torch_loss(lambda a, t: (F.poisson_nll_loss(a, t, log_input=True, full=False,
                                                        reduction="none").mean(1) * wt).sum()
                       / wt.sum(), torch.from_numpy(counts)))


# ---- bad input ---------------------------------------------------------------------------------

def _bad(exc, match, fn, *args, **kwargs):
    with pytest.raises(exc, match=match):
        fn(*args, **kwargs)


def test_bad_cross_entropy_targets():
    x = np.zeros((3, 4))
    sce = ops.softmax_cross_entropy
    _bad(ValueError, r"labels must be in \[0, 4\) for 4 classes; row 1 holds 4", sce, x,
         np.array([0, 4, 1]))
    _bad(ValueError, r"labels must be in \[0, 4\).*row 1 holds -1", sce, x, np.array([0, -1, 1]))
    _bad(ValueError, r"labels\) must have shape \(3,?\), got \(2,?\)", sce, x, np.array([0, 1]))
    _bad(ValueError, r"target must be probabilities or one-hot of shape \(3, 4\)", sce, x,
         np.zeros((3, 5)))
    _bad(TypeError, "target must have dtype float64", sce, x, np.zeros((3, 4), np.float32))
    _bad(TypeError, "target must be integer labels", sce, x, np.array(["a", "b", "c"]))
    _bad(TypeError, "target must be integer labels", sce, x, np.array([True, False, True]))
    _bad(ValueError, r"logits must be 2-D with shape \(n, c\)", sce, np.zeros(4), np.array([1]))
    _bad(ValueError, "logits must not be empty", sce, np.zeros((0, 4)),
         np.zeros(0, np.int64))
    _bad(TypeError, "logits must have dtype float32 or float64", sce, np.zeros((3, 4), int),
         np.array([0, 1, 2]))
    _bad(ValueError, "target must hold probabilities >= 0", ops.kl_divergence, x,
         np.full((3, 4), -0.25))


def test_bad_elementwise_targets():
    p = np.zeros((3, 2))
    _bad(ValueError, r"target must have the shape of pred \(3, 2\), got \(2, 3\)", ops.mse, p,
         np.zeros((2, 3)))
    _bad(TypeError, "target must have dtype float64", ops.mse, p, np.zeros((3, 2), np.float32))
    _bad(ValueError, "pred must be 1-D", ops.mse, np.zeros((2, 2, 2)), np.zeros((2, 2, 2)))
    _bad(ValueError, "target must hold -1 or 1.*got 0.5", ops.hinge, p, np.full((3, 2), 0.5))
    _bad(ValueError, "target must hold counts or rates >= 0.*got -1", ops.poisson, p,
         np.full((3, 2), -1.0))
    _bad(ValueError, "target must hold counts or rates >= 0.*got nan", ops.poisson, p,
         np.full((3, 2), np.nan))
    for delta in (0, -1.0):
        _bad(ValueError, r"delta must be in \(0, ", ops.huber, p, p, delta=delta)
    for delta in (np.inf, np.nan):
        _bad(ValueError, "delta must be finite", ops.huber, p, p, delta=delta)
    _bad(TypeError, "delta must be a real number", ops.huber, p, p, delta="1")
    _bad(ValueError, "logits must not be empty", ops.binary_cross_entropy, np.zeros(0),
         np.zeros(0))


def test_bad_sample_weight_and_out_write_nothing():
    x = np.zeros((3, 4))
    labels = np.array([0, 1, 2])
    sce = ops.softmax_cross_entropy
    _bad(ValueError, r"sample_weight must have shape \(3,?\)", sce, x, labels,
         sample_weight=np.ones(4))
    _bad(ValueError, "sample_weight must be >= 0", sce, x, labels,
         sample_weight=np.array([1.0, -1.0, 1.0]))
    _bad(ValueError, "sample_weight must be finite", sce, x, labels,
         sample_weight=np.array([1.0, np.nan, 1.0]))
    _bad(ValueError, "positive sum", sce, x, labels, sample_weight=np.zeros(3))
    _bad(TypeError, "sample_weight must hold real numbers", sce, x, labels,
         sample_weight=np.array(["a", "b", "c"]))
    out = np.full((3, 4), 7.0)
    _bad(ValueError, r"out must have shape \(3, 4\)", sce, x, labels, out=np.zeros((4, 3)))
    _bad(TypeError, "out must have dtype float64", sce, x, labels, out=out.astype(np.float32))
    _bad(ValueError, "positive sum", sce, x, labels, sample_weight=np.zeros(3), out=out)
    assert (out == 7).all()
    _bad(ValueError, "out must not overlap", sce, x, labels, out=x)
    _bad(ValueError, "out must not overlap", ops.mse, x, out, out=out)
    assert (out == 7).all()


@pytest.mark.parametrize("dtype", DTYPES)
def test_bce_per_element_accuracy(isa, dtype):
    """Each element's loss (our own vectorised log1p(exp(-|x|))) against float64 NumPy."""
    x = np.concatenate([np.linspace(-40, 40, 801), [-1e-6, 1e-7, 0.0]]).astype(dtype)
    t = np.linspace(0, 1, x.size).astype(dtype)
    got = np.array([ops.binary_cross_entropy(x[i:i + 1], t[i:i + 1])[0] for i in range(x.size)])
    x64, t64 = x.astype(np.float64), t.astype(np.float64)
    want = np.maximum(x64, 0) - x64 * t64 + np.log1p(np.exp(-np.abs(x64)))
    # float32: the terms are rounded to float32 before they are added (as the reference does)
    rtol = 4e-7 if dtype == np.float32 else 1e-15
    scale = np.maximum(np.abs(x64), 1)
    assert np.all(np.abs(got - want) <= rtol * 4 * scale)


@pytest.mark.parametrize("dtype", DTYPES)
def test_cross_entropy_per_row_accuracy(isa, rng, dtype):
    """log(sum) through our own vectorised log: per-row losses (one row per call) within a few
    ulp of float64 NumPy, for row sums from 1 to 1000."""
    c = 1000
    x = (rng.normal(size=(60, c)) * np.linspace(0, 30, 60)[:, None]).astype(dtype)
    labels = rng.integers(0, c, size=60)
    got = np.array([ops.softmax_cross_entropy(x[i:i + 1], labels[i:i + 1])[0]
                    for i in range(60)])
    want = -ref.log_softmax(x.astype(np.float64))[np.arange(60), labels]
    eps = np.finfo(dtype).eps
    np.testing.assert_allclose(got, want, rtol=8 * eps, atol=8 * eps * np.abs(x).max())


# ---- subnormals: exp-based losses flush them (csrc/flush.h), sample weights keep theirs ---------

@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_confident_logits_agree_with_the_reference_despite_the_flush(dtype, rng):
    """Logit gaps of hundreds make softmax's exps subnormal (flushed to 0 in the kernel, which
    would otherwise take a microcode assist per element on Intel cores): every value stays within
    a few smallest-normal units of the float64 reference."""
    x = (rng.standard_normal((64, 50)) * 100).astype(dtype)
    labels = rng.integers(0, 50, 64)
    loss, d = ops.softmax_cross_entropy(x, labels)
    want_loss, want_d = ref.softmax_cross_entropy(x.astype(np.float64), labels)
    assert loss == pytest.approx(want_loss, rel=1e-5 if dtype == np.float32 else 1e-12)
    # p - 1 at the label rounds at eps / n (no flush involved); the flush adds < 4 tiny
    info = np.finfo(dtype)
    np.testing.assert_allclose(d, want_d, rtol=1e-5 if dtype == np.float32 else 1e-12,
                               atol=8 * float(info.eps) / 64 + 4 * float(info.tiny))


def test_a_subnormal_sample_weight_is_honoured_exactly():
    """With a subnormal weight, w_i (p - t) is subnormal too: the kernel then keeps IEEE
    arithmetic (a flush would zero the whole gradient)."""
    loss, d = ops.binary_cross_entropy(np.array([0.0]), np.array([0.0]),
                                       sample_weight=np.array([1.11253693e-308]))
    assert loss == pytest.approx(np.log(2)) and d[0] == 0.5
