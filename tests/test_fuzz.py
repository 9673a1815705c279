"""Property-based fuzzing of every pynn.ops kernel (issue 7).

Random shapes (including 1 and sizes that are not multiples of any vector width), dtypes,
memory layouts (C order, strided, reversed, Fortran) and value ranges (subnormals, +-0, +-inf,
NaN, huge and tiny numbers): each op must either match its NumPy reference (NaN where the
reference gives NaN, the same infinities, finite values within a rounding bound) or raise a
clean TypeError/ValueError — never crash, never write outside its outputs.

CI runs a modest, reproducible number of examples per property (derandomized). A longer,
randomized run for developers::

    PYNN_FUZZ_EXAMPLES=5000 pytest -q tests/test_fuzz.py
"""
from __future__ import annotations

import os

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from pynn import ops
from pynn import reference as ref

_LONG = "PYNN_FUZZ_EXAMPLES" in os.environ
EXAMPLES = int(os.environ.get("PYNN_FUZZ_EXAMPLES", "25"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize=not _LONG, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

DTYPES = st.sampled_from([np.float32, np.float64])
LAYOUTS = st.sampled_from(["c", "strided", "reversed", "fortran"])
EPS = {np.float32: float(np.finfo(np.float32).eps), np.float64: float(np.finfo(np.float64).eps)}
RTOL = {np.float32: 2e-5, np.float64: 1e-12}


def _specials(dtype, huge=True) -> list:
    fi = np.finfo(dtype)
    out = [0.0, -0.0, np.inf, -np.inf, np.nan, float(fi.smallest_subnormal),
           -float(fi.smallest_subnormal), float(fi.tiny), 1.0, -1.0]
    return out + [float(fi.max), -float(fi.max)] if huge else out


@st.composite
def values(draw, dtype, shape, bound=None, specials=True, finite=False):
    """An array of `shape`: finite floats within a drawn scale (or `bound`), mixed with special
    values (+-0, +-inf, NaN, subnormals, the smallest normal, +-1, and +-max unless `bound` is
    given; only the finite ones when `finite`)."""
    width = 32 if dtype == np.float32 else 64
    huge = bound is None
    if bound is None:
        bound = draw(st.sampled_from([1.0, 30.0, 1e4, 1e-30, float(np.finfo(dtype).max)]))
    bound = float(np.asarray(bound, dtype))  # exactly representable in the dtype
    normal = st.floats(-bound, bound, width=width, allow_subnormal=True)
    special = [v for v in _specials(dtype, huge) if not finite or np.isfinite(v)]
    elements = st.one_of(normal, st.sampled_from(special)) if specials else normal
    return draw(hnp.arrays(dtype, shape, elements=elements))


def _layout(arr: np.ndarray, layout: str) -> np.ndarray:
    """The same values in another memory layout."""
    if layout == "strided" and arr.ndim >= 1:
        wide = np.zeros(arr.shape[:-1] + (2 * arr.shape[-1],), arr.dtype)
        wide[..., ::2] = arr
        return wide[..., ::2]
    if layout == "reversed" and arr.ndim >= 1:
        return np.ascontiguousarray(arr[::-1])[::-1]
    if layout == "fortran":
        return np.asfortranarray(arr)
    return arr


def _same_nonfinite(got, want, where=""):
    """NaN exactly where want is NaN; the same infinities."""
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want), err_msg=f"NaN pattern {where}")
    inf = np.isinf(want)
    np.testing.assert_array_equal(got[inf], want[inf], err_msg=f"infinities {where}")
    np.testing.assert_array_equal(np.isinf(got), inf, err_msg=f"unexpected inf {where}")


def _close(got, want, dtype, bound=None, where=""):
    """got == want NaN-aware; finite entries within rtol (or within `bound` elementwise)."""
    _same_nonfinite(got, want, where)
    g, w = np.asarray(got, np.float64), np.asarray(want, np.float64)
    fin = np.isfinite(w)
    with np.errstate(**ERRSTATE):
        tol = RTOL[dtype] * np.abs(w) + float(np.finfo(dtype).tiny) * 16
        if bound is not None:
            tol = tol + np.broadcast_to(bound, w.shape)
        bad = fin & ~(np.abs(g - w) <= tol)
    assert not bad.any(), (f"{where}: {bad.sum()} entries differ, e.g. got {g[bad][:3]} want "
                           f"{w[bad][:3]}")


SHAPE_2D = st.tuples(st.integers(1, 9), st.integers(1, 40))
SHAPE_ND = st.one_of(st.tuples(st.integers(1, 70)), SHAPE_2D,
                     st.tuples(st.integers(1, 3), st.integers(1, 4), st.integers(1, 17)))
ACTS = ["identity", "relu", "leaky_relu", "sigmoid", "tanh", "softmax", "step"]
ERRSTATE = {"all": "ignore"}


# ---- activations ---------------------------------------------------------------------------------
@FUZZ
@given(data=st.data(), dtype=DTYPES, shape=SHAPE_ND, name=st.sampled_from(ACTS),
       layout=LAYOUTS, alpha=st.sampled_from([0.0, 0.01, 0.3, 1.0, 5.0]))
def test_activation_forward(data, dtype, shape, name, layout, alpha):
    x = data.draw(values(dtype, shape))
    xl = _layout(x, layout)
    got = ops.activation(name, xl, alpha=alpha)
    with np.errstate(**ERRSTATE):  # (rounded to dtype: alpha * -max overflows to -inf there)
        want = ref.activation(name, x.astype(np.float64), alpha=alpha).astype(dtype)
    _close(got, want, dtype, where=f"{name} {shape} {layout}")
    np.testing.assert_array_equal(xl, x)  # input untouched
    # in place gives the same bits
    inplace = np.ascontiguousarray(x).copy()
    ops.activation(name, inplace, alpha=alpha, out=inplace)
    np.testing.assert_array_equal(inplace, got)


@FUZZ
@given(data=st.data(), dtype=DTYPES, shape=SHAPE_ND, layout=LAYOUTS,
       name=st.sampled_from([a for a in ACTS if a != "step"]))
def test_activation_backward(data, dtype, shape, name, layout):
    y = data.draw(values(dtype, shape))
    dy = data.draw(values(dtype, shape))
    got = ops.activation_backward(name, _layout(y, layout), _layout(dy, layout), alpha=0.1)
    with np.errstate(**ERRSTATE):
        want = ref.activation_backward(name, y, dy, alpha=0.1)  # same dtype: same roundings
    # the softmax backward's row dot product is summed in another order than NumPy's
    bound = None
    if name == "softmax":
        with np.errstate(**ERRSTATE):
            bound = 4 * shape[-1] * EPS[dtype] * np.abs(y) * (
                np.abs(dy * y).sum(axis=-1, keepdims=True) + np.abs(dy))
            if not np.all(np.isfinite(bound)):
                return  # overflowing partial sums: order-dependent, checked for no crash only
    _close(got, want, dtype, bound=bound, where=f"{name} backward {shape}")


@FUZZ
@given(data=st.data(), dtype=DTYPES, shape=SHAPE_2D, layout=LAYOUTS)
def test_bias_grad(data, dtype, shape, layout):
    dz = data.draw(values(dtype, shape, bound=1e6))
    got = ops.bias_grad(_layout(dz, layout))
    with np.errstate(**ERRSTATE):
        want = dz.astype(np.float64).sum(axis=0)  # pynn accumulates in double, rows in order
        _close(got, want.astype(dtype), dtype, where="bias_grad")


# ---- GEMM --------------------------------------------------------------------------------------
def _gemm_bound(a, b, dtype):
    """Rounding bound of a dot product: (k + 2) eps sum |a_ip b_pj|, plus the underflow of each
    product and partial sum in `dtype` (a product of two float32 subnormals is 0 in float32,
    while the float64 oracle keeps it)."""
    with np.errstate(**ERRSTATE):
        mag = np.abs(a.astype(np.float64)) @ np.abs(b.astype(np.float64))
    k = a.shape[1]
    underflow = (k + 2) * float(np.finfo(dtype).smallest_subnormal)
    return (k + 2) * EPS[dtype] * np.where(np.isfinite(mag), mag, 0) + underflow + 1e-300


@FUZZ
@given(data=st.data(), dtype=DTYPES, m=st.integers(1, 40), n=st.integers(1, 40),
       k=st.integers(0, 40), trans_a=st.booleans(), trans_b=st.booleans(), layout=LAYOUTS)
def test_matmul(data, dtype, m, n, k, trans_a, trans_b, layout):
    # finite values within +-1e8: no partial sum overflows, so infinities come only from the
    # special values and do not depend on the summation order
    a = data.draw(values(dtype, (m, k), bound=1e8))
    b = data.draw(values(dtype, (k, n), bound=1e8))
    sa = np.ascontiguousarray(a.T) if trans_a else a
    sb = np.ascontiguousarray(b.T) if trans_b else b
    got = ops.matmul(_layout(sa, layout), _layout(sb, layout), trans_a=trans_a, trans_b=trans_b)
    with np.errstate(**ERRSTATE):
        want = a.astype(np.float64) @ b.astype(np.float64)
    assert got.shape == (m, n) and got.dtype == dtype
    _close(got, want, dtype, bound=_gemm_bound(a, b, dtype), where=f"matmul {m}x{k}x{n}")


def _lipschitz_close(got, z, bound, act, dtype, where):
    """got ~ act(z) where z is known to within `bound`: the activation's slope times the bound
    (step: entries whose z is within the bound of 0 may go either way)."""
    with np.errstate(**ERRSTATE):
        want = ref._act_forward(z, act, 0.1)
    if act == "step":
        keep = ~(np.abs(z) <= bound)
        _close(got[keep], want[keep], dtype, where=where)
        return
    if act == "softmax":
        # a row's outputs move by at most 2 max|dz| of that row
        slack = 2 * np.max(bound, axis=1, keepdims=True)
        if not np.all(np.isfinite(z)):
            return _same_nonfinite(got, want, where)
        slack = np.broadcast_to(slack, z.shape)
    else:
        slack = bound * (0.25 if act == "sigmoid" else 1.0)
    _close(got, want, dtype, bound=slack, where=where)


@FUZZ
@given(data=st.data(), dtype=DTYPES, n=st.integers(1, 20), i=st.integers(1, 30),
       o=st.integers(1, 30), act=st.sampled_from(ACTS), bias=st.booleans(), layout=LAYOUTS)
def test_linear(data, dtype, n, i, o, act, bias, layout):
    x = data.draw(values(dtype, (n, i), bound=1e3))
    w = data.draw(values(dtype, (i, o), bound=1e3))
    b = data.draw(values(dtype, (o,), bound=1e3)) if bias else None
    got = ops.linear(_layout(x, layout), _layout(w, layout), b, activation=act, alpha=0.1)
    with np.errstate(**ERRSTATE):
        z = x.astype(np.float64) @ w.astype(np.float64)
        if b is not None:
            z = z + b
    bound = _gemm_bound(x, w, dtype) + (0 if b is None else 2 * EPS[dtype] * np.abs(
        np.where(np.isfinite(b), b, 0)))
    _lipschitz_close(got, z, bound, act, dtype, f"linear {act} {n}x{i}x{o}")


@FUZZ
@given(data=st.data(), dtype=DTYPES, n=st.integers(1, 20), i=st.integers(1, 25),
       o=st.integers(1, 25), act=st.sampled_from(["identity", "relu", "leaky_relu", "sigmoid",
                                                   "tanh", "softmax"]),
       need_dx=st.booleans())
def test_linear_backward(data, dtype, n, i, o, act, need_dx):
    x = data.draw(values(dtype, (n, i), bound=1e3))
    w = data.draw(values(dtype, (i, o), bound=1e3))
    y = data.draw(values(dtype, (n, o), bound=1.0))
    dy = data.draw(values(dtype, (n, o), bound=1e3))
    dx, dw, db = ops.linear_backward(x, w, y, dy, activation=act, alpha=0.1, need_dx=need_dx)
    with np.errstate(**ERRSTATE):
        dz = ref._act_backward(y.astype(np.float64), dy.astype(np.float64), act, 0.1)
        dz_mag = ref._act_backward(np.abs(y.astype(np.float64)), np.abs(dy.astype(np.float64)),
                                   act if act != "softmax" else "tanh", 0.1)
        if not np.all(np.isfinite(dz)) or not np.all(np.isfinite(dz_mag)) or \
                not np.all(np.isfinite(x)) or not np.all(np.isfinite(w)):
            # non-finite operands: the result's NaN/inf pattern depends on which products the
            # blocked kernel forms; the property here is "no crash, right shapes"
            assert dw.shape == (i, o) and db.shape == (o,)
            return
        # dz itself is rounded in `dtype` before the GEMMs: bound that too
        dz_err = 4 * EPS[dtype] * (np.abs(dz) + np.abs(dz_mag) * (o if act == "softmax" else 1))
        want_dw = x.astype(np.float64).T @ dz
        bound_dw = _gemm_bound(x.T, dz, dtype) + np.abs(x.T.astype(np.float64)) @ dz_err
        _close(dw, want_dw, dtype, bound=bound_dw, where=f"dw {act}")
        _close(db, dz.sum(axis=0), dtype, bound=(n + 2) * EPS[dtype] * np.abs(dz).sum(axis=0)
               + dz_err.sum(axis=0), where=f"db {act}")
        if need_dx:
            want_dx = dz @ w.astype(np.float64).T
            bound_dx = _gemm_bound(dz, w.T, dtype) + dz_err @ np.abs(w.T.astype(np.float64))
            _close(dx, want_dx, dtype, bound=bound_dx, where=f"dx {act}")
        else:
            assert dx is None


# ---- losses --------------------------------------------------------------------------------------
# Rounding bounds: every loss and gradient entry is a short formula in `dtype`; its error is a few
# eps times the magnitude of the terms it adds (not of the result, which may cancel to ~0).
def _loss_close(got, want, dtype, where, loss_scale, grad_scale):
    loss, grad = got
    want_loss, want_grad = want
    assert isinstance(loss, float)
    if np.isnan(want_loss):
        assert np.isnan(loss), f"{where}: loss {loss} should be NaN"
    elif np.isinf(want_loss):
        assert loss == want_loss, f"{where}: loss {loss} != {want_loss}"
    else:
        tol = RTOL[dtype] * abs(want_loss) + 16 * EPS[dtype] * loss_scale + 1e-300
        assert abs(loss - want_loss) <= tol, (where, loss, want_loss, tol)
    with np.errstate(**ERRSTATE):
        _close(grad, want_grad, dtype, where=f"{where} gradient",
               bound=16 * EPS[dtype] * np.where(np.isfinite(grad_scale), grad_scale, 0))


def _row_weights(sw, n):
    w = np.ones(n) if sw is None else sw.astype(np.float64)
    return w / w.sum()


@FUZZ
@given(data=st.data(), dtype=DTYPES, shape=SHAPE_2D, labels=st.booleans(),
       weighted=st.booleans(), layout=LAYOUTS, kl=st.booleans())
def test_softmax_cross_entropy_and_kl(data, dtype, shape, labels, weighted, layout, kl):
    n, c = shape
    labels = labels and not kl
    x = data.draw(values(dtype, shape, bound=1e4))
    if labels:
        target = data.draw(hnp.arrays(np.int64, (n,), elements=st.integers(0, c - 1)))
        t64 = np.zeros(shape)
        t64[np.arange(n), target] = 1
    else:
        target = np.abs(data.draw(values(dtype, shape, bound=1.0, specials=False)))
        t64 = target.astype(np.float64)
    sw = np.abs(data.draw(values(dtype, (n,), bound=10.0, specials=False))) if weighted else None
    name = "kl_divergence" if kl else "softmax_cross_entropy"
    fn = getattr(ops, name)
    if sw is not None and not sw.sum(dtype=np.float64) > 0:
        with pytest.raises(ValueError, match="sample_weight"):
            fn(x, target, sample_weight=sw)
        return
    got = fn(_layout(x, layout), target, sample_weight=sw)
    with np.errstate(**ERRSTATE):
        want = getattr(ref, name)(x.astype(np.float64), target if labels else t64,
                                  sample_weight=None if sw is None else sw.astype(np.float64))
        w = _row_weights(sw, n)
        xmax = np.max(np.abs(x.astype(np.float64)), axis=1)
        tsum = t64.sum(axis=1)
        term = w * tsum * (2 * xmax + np.log(c) + 1 + 40 * kl)
        loss_scale = float(np.sum(np.where(np.isfinite(term), term, 0)))
        p = np.exp(ref.log_softmax(x.astype(np.float64)))
        # the row sum of exp carries up to c roundings
        grad_scale = (p * tsum[:, None] * (c + 1) + t64) * w[:, None]
    _loss_close(got, want, dtype, f"{name} {shape}", loss_scale, grad_scale)


@FUZZ
@given(data=st.data(), dtype=DTYPES, shape=st.one_of(st.tuples(st.integers(1, 70)), SHAPE_2D),
       name=st.sampled_from(["mse", "binary_cross_entropy", "hinge"]), weighted=st.booleans(),
       layout=LAYOUTS)
def test_elementwise_losses(data, dtype, shape, name, weighted, layout):
    p = data.draw(values(dtype, shape, bound=1e4))
    if name == "hinge":
        t = data.draw(hnp.arrays(dtype, shape, elements=st.sampled_from([-1.0, 0.0, 1.0])))
    else:
        t = data.draw(values(dtype, shape, bound=1e4 if name == "mse" else 1.0))
    sw = np.abs(data.draw(values(dtype, shape[:1], bound=10.0, specials=False))) \
        if weighted else None
    fn = getattr(ops, name)
    if sw is not None and not sw.sum(dtype=np.float64) > 0:
        with pytest.raises(ValueError, match="sample_weight"):
            fn(p, t, sample_weight=sw)
        return
    got = fn(_layout(p, layout), _layout(t, layout), sample_weight=sw)
    with np.errstate(**ERRSTATE):
        p64, t64 = p.astype(np.float64), t.astype(np.float64)
        want = getattr(ref, name)(p64, t64,
                                  sample_weight=None if sw is None else sw.astype(np.float64))
        k = 1 if p.ndim == 1 else shape[1]
        w = _row_weights(sw, shape[0]) / k
        w = w if p.ndim == 1 else w[:, None]
        mag = np.abs(p64) + np.abs(t64) + 1
        term = {"mse": mag * mag, "binary_cross_entropy": mag * mag, "hinge": mag}[name]
        loss_scale = float(np.sum(np.where(np.isfinite(term), term, 0) * w))
        grad_scale = mag * w * (2 if name == "mse" else 1)
    _loss_close(got, want, dtype, f"{name} {shape}", loss_scale, grad_scale)


# ---- optimizer steps -----------------------------------------------------------------------------
@FUZZ
@given(data=st.data(), dtype=DTYPES, size=st.integers(1, 300),
       momentum=st.sampled_from([0.0, 0.5, 0.9]), nesterov=st.booleans(),
       lr=st.sampled_from([0.0, 1e-3, 0.1, 10.0]), wd=st.sampled_from([0.0, 1e-4, 0.5]))
def test_sgd_step(data, dtype, size, momentum, nesterov, lr, wd):
    nesterov = nesterov and momentum > 0
    # finite parameters: with an infinite one, `theta - lr (g + 0 * theta)` is NaN in the fused
    # kernel where NumPy's reference (which skips weight_decay=0) keeps inf; training stops
    # before parameters overflow, so this is documented rather than special-cased
    p = data.draw(values(dtype, (size,), bound=1e4, finite=True))
    g = data.draw(values(dtype, (size,), bound=1e4))
    v = data.draw(values(dtype, (size,), bound=1e4)) if momentum else None
    p2, v2 = p.copy(), None if v is None else v.copy()
    ops.sgd_step(p, g, v, lr=lr, momentum=momentum, nesterov=nesterov, weight_decay=wd)
    with np.errstate(**ERRSTATE):
        ref.sgd_step(p2, g, v2, lr=lr, momentum=momentum, nesterov=nesterov, weight_decay=wd)
    # the kernel may contract a*b+c into one FMA: a few roundings of the operands' size
    with np.errstate(**ERRSTATE):
        scale = np.abs(p2) + lr * (np.abs(g) + wd * np.abs(p2)) + (0 if v is None else np.abs(v2))
    _close(p, p2, dtype, bound=4 * EPS[dtype] * np.where(np.isfinite(scale), scale, 0),
           where="sgd params")
    if v is not None:
        _close(v, v2, dtype, bound=4 * EPS[dtype] * np.where(np.isfinite(scale), scale, 0),
               where="sgd velocity")


@FUZZ
@given(data=st.data(), dtype=DTYPES, size=st.integers(1, 300), step=st.integers(1, 10**6),
       lr=st.sampled_from([1e-4, 1e-3, 0.1]), wd=st.sampled_from([0.0, 0.01]))
def test_adam_step(data, dtype, size, step, lr, wd):
    p = data.draw(values(dtype, (size,), bound=1e3))
    g = data.draw(values(dtype, (size,), bound=1e3))
    m = data.draw(values(dtype, (size,), bound=1e3, specials=False))
    v = np.abs(data.draw(values(dtype, (size,), bound=1e3, specials=False)))
    p2, m2, v2 = p.copy(), m.copy(), v.copy()
    ops.adam_step(p, g, m, v, step=step, lr=lr, weight_decay=wd)
    with np.errstate(**ERRSTATE):
        ref.adam_step(p2, g, m2, v2, step=step, lr=lr, weight_decay=wd)
    for got, want, name in ((m, m2, "m"), (v, v2, "v")):
        _close(got, want, dtype, bound=8 * EPS[dtype] * np.abs(np.where(np.isfinite(want),
                                                                         want, 0)), where=name)
    # the update is lr-sized: bounded relative to lr as well as to params
    _close(p, p2, dtype, bound=8 * EPS[dtype] * (np.abs(np.where(np.isfinite(p2), p2, 0)) +
                                                  lr * 1e3), where="adam params")


# ---- garbage of any type never crashes -----------------------------------------------------------
ANYTHING = st.one_of(
    st.none(), st.integers(), st.floats(), st.text(max_size=3), st.binary(max_size=3),
    st.lists(st.floats(), max_size=4),
    hnp.arrays(hnp.scalar_dtypes(), hnp.array_shapes(min_dims=0, max_dims=3, max_side=4)))

CALLS = {
    "matmul": lambda a, b: ops.matmul(a, b),
    "linear": lambda a, b: ops.linear(a, b, activation="relu"),
    "linear_backward": lambda a, b: ops.linear_backward(a, b, a, b),
    "activation": lambda a, b: ops.activation("sigmoid", a, out=b),
    "activation_backward": lambda a, b: ops.activation_backward("tanh", a, b),
    "softmax": lambda a, b: ops.softmax(a),
    "bias_grad": lambda a, b: ops.bias_grad(a, out=b),
    "softmax_cross_entropy": lambda a, b: ops.softmax_cross_entropy(a, b),
    "kl_divergence": lambda a, b: ops.kl_divergence(a, b),
    "mse": lambda a, b: ops.mse(a, b),
    "binary_cross_entropy": lambda a, b: ops.binary_cross_entropy(a, b, sample_weight=b),
    "hinge": lambda a, b: ops.hinge(a, b),
    "sgd_step": lambda a, b: ops.sgd_step(a, b, None, lr=0.1),
    "adam_step": lambda a, b: ops.adam_step(a, b, a, b, step=1),
}


@FUZZ
@given(name=st.sampled_from(sorted(CALLS)), a=ANYTHING, b=ANYTHING)
def test_any_argument_types(name, a, b):
    """Arbitrary objects and arrays of every dtype: a result or TypeError/ValueError."""
    try:
        with np.errstate(**ERRSTATE):
            CALLS[name](a, b)
    except (TypeError, ValueError):
        pass
