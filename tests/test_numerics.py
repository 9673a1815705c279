"""Numerical edge cases (issue 7): saturation at +-1e4 with warnings as errors, NaN/inf in fit
data rejected like scikit-learn, and a diverging run stopped with a clear error."""
from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

import pynn
from pynn import ops

DTYPES = [np.float32, np.float64]
EXTREMES = [-1e4, -1e3, -100.0, -30.0, 0.0, 30.0, 100.0, 1e3, 1e4]


@pytest.fixture(autouse=True)
def _warnings_are_errors():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with np.errstate(all="raise"):  # NumPy's own floating-point warnings too
            yield


@pytest.mark.parametrize("dtype", DTYPES)
def test_activations_saturate_cleanly(isa, dtype):
    x = np.array([EXTREMES], dtype)
    sig = ops.activation("sigmoid", x)[0]
    assert sig[0] == 0 and sig[-1] == 1 and sig[4] == 0.5
    assert np.all(np.diff(sig) >= 0)
    th = ops.activation("tanh", x)[0]
    assert th[0] == -1 and th[-1] == 1 and th[4] == 0
    sm = ops.softmax(x)[0]
    assert sm[-1] == 1 and np.all(sm[:-1] >= 0) and math.isclose(sm.sum(), 1, rel_tol=1e-6)
    # the same through the GEMM's fused epilogues
    eye = np.eye(len(EXTREMES), dtype=dtype)
    for act, want in (("sigmoid", sig), ("tanh", th), ("softmax", sm)):
        np.testing.assert_array_equal(ops.linear(x, eye, activation=act)[0], want)
    # and the backward from saturated outputs is exactly 0 where the curve is flat
    assert ops.activation_backward("sigmoid", sig, np.ones_like(sig))[[0, -1]].tolist() == [0, 0]
    assert ops.activation_backward("tanh", th, np.ones_like(th))[[0, -1]].tolist() == [0, 0]


@pytest.mark.parametrize("dtype", DTYPES)
def test_losses_at_huge_logits_are_finite_and_exact(isa, dtype):
    x = np.array([[1e4, -1e4, 0.0], [-1e4, 1e4, 1e4]], dtype)
    loss, grad = ops.softmax_cross_entropy(x, np.array([1, 0]))
    # row 0: -log softmax = 1e4 - (-1e4) = 2e4; row 1: 1e4 - (-1e4) + log 2
    assert math.isclose(loss, (2e4 + 2e4 + math.log(2)) / 2, rel_tol=1e-6)
    assert np.all(np.isfinite(grad))
    loss, grad = ops.binary_cross_entropy(np.array([1e4, -1e4], dtype),
                                          np.array([0.0, 1.0], dtype))
    assert math.isclose(loss, 1e4, rel_tol=1e-6) and np.all(np.isfinite(grad))
    loss, grad = ops.kl_divergence(x, np.full_like(x, 1 / 3))
    assert math.isfinite(loss) and np.all(np.isfinite(grad))


def _data(n=64, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, 4)).astype(np.float32)
    return X, (X[:, 0] > 0).astype(np.int64), X @ np.arange(4, dtype=np.float32)


@pytest.mark.parametrize("where", ["X", "y"])
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_fit_rejects_non_finite_data_like_scikit_learn(where, bad):
    X, _labels, target = _data()
    model = pynn.Sequential([pynn.Dense(4, 8, "tanh"), pynn.Dense(8, 1)], seed=0)
    before = model.params.copy()
    X, target = X.copy(), target.copy()
    (X if where == "X" else target)[3] = bad
    X_copy, t_copy = X.copy(), target.copy()
    with pytest.raises(ValueError, match=r"\b(X|y)\b.*(NaN|inf|finite)"):
        model.fit(X, target, loss="mse", epochs=1)
    np.testing.assert_array_equal(model.params, before)  # untouched
    np.testing.assert_array_equal(X, X_copy)
    np.testing.assert_array_equal(target, t_copy)


def test_diverging_training_stops_with_a_clear_error():
    X, _labels, target = _data(256)
    X = X * 100
    model = pynn.Sequential([pynn.Dense(4, 32, "relu"), pynn.Dense(32, 1)], seed=0)
    with np.errstate(all="ignore"), pytest.raises(pynn.TrainingDivergedError) as info:
        model.fit(X, target * 1e3, loss="mse", optimizer=pynn.SGD(10.0, momentum=0.9),
                  epochs=50, batch_size=32)
    err = info.value
    assert isinstance(err, FloatingPointError)
    assert "diverged" in str(err) and "learning rate" in str(err)
    assert np.all(np.isfinite(model.params))  # left at the last finite step
    assert f"epoch {err.epoch}, batch {err.batch}/" in str(err)
