"""pynn.SGD / pynn.Adam / schedules: checks, update formulas, state kept across fits."""
import math

import numpy as np
import pytest

import pynn
from pynn import optim
from pynn.gradcheck import analytic_gradient


@pytest.mark.parametrize("make,exc,words", [
    (lambda: pynn.SGD(lr=0), ValueError, "lr must be > 0"),
    (lambda: pynn.SGD(lr=-0.1), ValueError, "lr must be > 0"),
    (lambda: pynn.SGD(lr=float("nan")), ValueError, "lr must be finite"),
    (lambda: pynn.SGD(lr="fast"), TypeError, "lr must be a real number"),
    (lambda: pynn.SGD(0.1, momentum=1.0), ValueError, "momentum must be in \\[0, 1\\)"),
    (lambda: pynn.SGD(0.1, momentum=-0.1), ValueError, "momentum"),
    (lambda: pynn.SGD(0.1, nesterov=True), ValueError, "nesterov"),
    (lambda: pynn.SGD(0.1, weight_decay=-1), ValueError, "weight_decay"),
    (lambda: pynn.Adam(betas=(0.9, 1.0)), ValueError, "betas\\[1\\]"),
    (lambda: pynn.Adam(betas=0.9), TypeError, "betas"),
    (lambda: pynn.Adam(eps=0), ValueError, "eps"),
    (lambda: pynn.Cosine(0.1, epochs=0), ValueError, "epochs"),
    (lambda: pynn.StepDecay(0.1, step_size=0), ValueError, "step_size"),
    (lambda: optim.get("adadelta"), ValueError, "optimizer must be one of"),
])
def test_bad_hyperparameters_are_refused(make, exc, words):
    with pytest.raises(exc, match=words):
        make()


def test_schedules():
    assert [pynn.Constant(0.1)(e) for e in range(3)] == [0.1] * 3
    step = pynn.StepDecay(1.0, step_size=2, gamma=0.5)
    assert [step(e) for e in range(5)] == [1.0, 1.0, 0.5, 0.5, 0.25]
    cos = pynn.Cosine(1.0, epochs=4, min_lr=0.1)
    assert cos(0) == 1.0
    assert cos(2) == pytest.approx(0.1 + 0.9 * 0.5)
    assert cos(10) == cos(3) > 0.1
    assert repr(step) == "StepDecay(lr=1.0, step_size=2, gamma=0.5)"


def _quadratic_model(dtype="float64"):
    model = pynn.Sequential([pynn.Dense(3, 2)], seed=0, dtype=dtype)
    rng = np.random.default_rng(1)
    X = rng.standard_normal((16, 3))
    y = X @ np.array([[1.0, -1.0], [0.5, 2.0], [-1.0, 0.0]]) + 0.3
    return model, X, y


def test_sgd_momentum_update_formula():
    """Two full-batch steps match v <- mu v - lr (g + wd p); p <- p + v computed in NumPy."""
    model, X, y = _quadratic_model()
    lr, mu, wd = 0.1, 0.9, 0.01
    p = model.params.copy()
    v = np.zeros_like(p)
    for _ in range(2):
        model.params[...] = p
        g = analytic_gradient(model, X, y, "mse")
        v = mu * v - lr * (g + wd * p)
        p = p + v
    model.params[...] = _quadratic_model()[0].params
    opt = pynn.SGD(lr, momentum=mu, weight_decay=wd)
    model.fit(X, y, loss="mse", optimizer=opt, epochs=2, batch_size=None, shuffle=False)
    np.testing.assert_allclose(model.params, p, rtol=1e-12, atol=1e-14)
    assert opt.iterations == 2 and opt.epoch == 2


def test_adam_update_formula():
    model, X, y = _quadratic_model()
    lr, b1, b2, eps = 0.01, 0.9, 0.99, 1e-8
    p = model.params.copy()
    m = np.zeros_like(p)
    v = np.zeros_like(p)
    for t in (1, 2, 3):
        model.params[...] = p
        g = analytic_gradient(model, X, y, "mse")
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        p = p - lr * (m / (1 - b1 ** t)) / (np.sqrt(v / (1 - b2 ** t)) + eps)
    model.params[...] = _quadratic_model()[0].params
    model.fit(X, y, loss="mse", optimizer=pynn.Adam(lr, betas=(b1, b2), eps=eps), epochs=3,
              batch_size=None, shuffle=False)
    np.testing.assert_allclose(model.params, p, rtol=1e-10, atol=1e-13)


def test_schedule_is_evaluated_per_epoch_and_continues_across_fits():
    model, X, y = _quadratic_model()
    seen = []

    def lr(epoch):
        seen.append(epoch)
        return 0.1 / (1 + epoch)
    opt = pynn.SGD(lr)
    h1 = model.fit(X, y, loss="mse", optimizer=opt, epochs=2, batch_size=4)
    h2 = model.fit(X, y, epochs=2, batch_size=4)
    assert h1.history["lr"] == [0.1, 0.05]
    assert h2.history["lr"] == pytest.approx([0.1 / 3, 0.1 / 4])
    assert h2.epoch == [2, 3]
    assert set(seen) == {0, 1, 2, 3}


def test_bad_schedule_value_is_reported_before_training():
    model, X, y = _quadratic_model()
    before = model.params.copy()
    with pytest.raises(ValueError, match="schedule returned -1"):
        model.fit(X, y, loss="mse", optimizer=pynn.SGD(lambda e: -1.0), epochs=1)
    assert np.array_equal(model.params, before)


def test_optimizer_cannot_serve_two_models():
    a, X, y = _quadratic_model()
    b = pynn.Sequential([pynn.Dense(3, 2)], seed=1, dtype="float64")
    opt = pynn.SGD(0.1, momentum=0.5)
    a.fit(X, y, loss="mse", optimizer=opt)
    before = b.params.copy()
    with pytest.raises(ValueError, match="another model"):
        b.fit(X, y, loss="mse", optimizer=opt)
    assert np.array_equal(b.params, before)


def test_repr_is_readable():
    assert repr(pynn.SGD(0.05, momentum=0.9)) == "SGD(lr=0.05, momentum=0.9)"
    assert repr(pynn.Adam()) == "Adam(lr=0.001, betas=(0.9, 0.999), eps=1e-08)"
    assert math.isclose(pynn.SGD(pynn.Constant(0.2)).learning_rate(5), 0.2)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_clipnorm_scales_the_gradient_to_its_bound(dtype, threads):
    """clipnorm: a gradient longer than the bound is scaled to it (its direction kept), a
    shorter one is left alone; the norm is the same at 1 and 2 threads."""
    g = np.random.default_rng(0).standard_normal(70_001).astype(dtype)
    norm = float(np.linalg.norm(g.astype(np.float64)))
    tol = {"rtol": 1e-5 if dtype == np.float32 else 1e-12}
    for bound in (norm / 3, norm * 2):
        steps = []
        for n_threads in (1, 2):
            threads(n_threads)
            opt = pynn.SGD(1.0, clipnorm=bound)
            params = np.zeros_like(g)
            opt.step(params, g.copy())
            steps.append(-params)
        np.testing.assert_array_equal(steps[0], steps[1])
        want = g * min(1.0, bound / norm)
        np.testing.assert_allclose(steps[0], want, **tol)
        assert float(np.linalg.norm(steps[0].astype(np.float64))) == \
            pytest.approx(min(bound, norm), rel=tol["rtol"])
