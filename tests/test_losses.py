"""pynn.losses: names and instances, target checks, values against plain-NumPy formulas."""
import numpy as np
import pytest

import pynn
from pynn import losses


def _log_softmax(z):
    z = z - z.max(axis=1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=1, keepdims=True))


def test_losses_by_name_and_instance():
    assert isinstance(losses.get("cross_entropy"), pynn.CrossEntropy)
    assert isinstance(losses.get("categorical_crossentropy"), pynn.CrossEntropy)
    assert isinstance(losses.get("mse"), pynn.MSE)
    assert isinstance(losses.get("binary_cross_entropy"), pynn.BinaryCrossEntropy)
    assert isinstance(losses.get("hinge"), pynn.Hinge)
    assert isinstance(losses.get("kl_divergence"), pynn.KLDivergence)
    ce = pynn.CrossEntropy()
    assert losses.get(ce) is ce
    with pytest.raises(ValueError, match="loss must be one of"):
        losses.get("cross_entropyy")
    with pytest.raises(TypeError, match="loss"):
        losses.get(3)


def test_loss_values_match_formulas(rng):
    z = rng.standard_normal((9, 4))
    labels = rng.integers(0, 4, 9)
    ce = -_log_softmax(z)[np.arange(9), labels].mean()
    assert pynn.CrossEntropy()(z, labels) == pytest.approx(ce, rel=1e-12)
    onehot = np.eye(4)[labels]
    assert pynn.CrossEntropy()(z, onehot) == pytest.approx(ce, rel=1e-12)
    t = rng.standard_normal((9, 4))
    assert pynn.MSE()(z, t) == pytest.approx(((z - t) ** 2).mean(), rel=1e-12)
    bt = rng.integers(0, 2, (9, 4))
    bce = np.mean(np.maximum(z, 0) - z * bt + np.log1p(np.exp(-np.abs(z))))
    assert pynn.BinaryCrossEntropy()(z, bt) == pytest.approx(bce, rel=1e-12)
    ht = np.where(bt == 1, 1, -1)
    assert pynn.Hinge()(z, ht) == pytest.approx(np.maximum(0, 1 - ht * z).mean(), rel=1e-12)
    assert pynn.Hinge()(z, bt) == pytest.approx(np.maximum(0, 1 - ht * z).mean(), rel=1e-12)
    p = np.exp(_log_softmax(rng.standard_normal((9, 4))))
    kl = (p * (np.log(p) - _log_softmax(z))).sum() / 9
    assert pynn.KLDivergence()(z, p) == pytest.approx(kl, rel=1e-10)


def test_extreme_logits_give_finite_loss():
    z = np.array([[1010.0, 1000.0, 990.0], [-1000.0, 0.0, 1000.0]])
    value = pynn.CrossEntropy()(z, [0, 0])
    assert np.isfinite(value)
    assert value == pytest.approx((np.log1p(np.exp(-10) + np.exp(-20)) + 2000) / 2, rel=1e-12)


@pytest.mark.parametrize("loss,y,words", [
    ("cross_entropy", [0, 1, 3], "labels must be in \\[0, 3\\)"),
    ("cross_entropy", [0, -1, 2], "labels must be in"),
    ("cross_entropy", [0, 1.5, 2], "integer"),
    ("cross_entropy", [0, 1], "3 labels"),
    ("cross_entropy", np.ones((3, 2)), "shape"),
    ("cross_entropy", ["a", "b", "c"], "numeric"),
    ("cross_entropy", [0, np.nan, 1], "NaN"),
    ("binary_cross_entropy", np.full((3, 3), 2.0), "\\[0, 1\\]"),
    ("mse", np.ones((3, 2)), "shape"),
    ("mse", [[1, 2, np.inf]] * 3, "NaN or inf"),
    ("hinge", np.full((3, 3), 0.5), "-1 or 1"),
])
def test_targets_are_checked(loss, y, words):
    with pytest.raises((ValueError, TypeError), match=words):
        losses.get(loss).prepare_target(y, 3, 3, np.dtype(np.float64))


def test_prepared_targets_have_kernel_form():
    f32 = np.dtype(np.float32)
    labels = losses.get("cross_entropy").prepare_target(np.array([2, 0], np.uint8), 2, 3, f32)
    assert labels.dtype == np.int64 and labels.tolist() == [2, 0]
    assert losses.get("cross_entropy").prepare_target([2.0, 0.0], 2, 3, f32).dtype == np.int64
    col = losses.get("mse").prepare_target([1, 2], 2, 1, f32)
    assert col.shape == (2, 1) and col.dtype == np.float32
    kl = losses.get("kl_divergence").prepare_target([1, 0], 2, 3, f32)
    assert kl.tolist() == [[0, 1, 0], [1, 0, 0]]


def test_predict_and_proba_from_outputs():
    z = np.array([[0.0, 2.0, 1.0], [3.0, -1.0, 0.0]], np.float32)
    assert pynn.CrossEntropy().predict(z).tolist() == [1, 0]
    p = pynn.CrossEntropy().proba(z)
    assert np.allclose(p.sum(axis=1), 1) and p.dtype == np.float32
    b = np.array([[0.5], [-0.5]])
    assert pynn.BinaryCrossEntropy().predict(b).tolist() == [1, 0]
    assert np.allclose(pynn.BinaryCrossEntropy().proba(b), 1 / (1 + np.exp(-b)))
    assert pynn.Hinge().predict(b).tolist() == [1, -1]
    assert pynn.MSE().predict(b).tolist() == [0.5, -0.5]
    with pytest.raises(ValueError, match="predict_proba"):
        pynn.MSE().proba(b)


def test_batch_accuracy_uses_scratch_buffers():
    ce = pynn.CrossEntropy()
    z = np.array([[0.0, 2.0], [3.0, -1.0], [1.0, 0.0]])
    bufs = ce.accuracy_buffers(3, 2)
    assert ce.batch_accuracy(z, np.array([1, 0, 1]), bufs) == pytest.approx(2 / 3)
    assert ce.batch_accuracy(z, np.eye(2)[[1, 0, 1]], bufs) == pytest.approx(2 / 3)
    bce = pynn.BinaryCrossEntropy()
    bufs = bce.accuracy_buffers(3, 2)
    assert bce.batch_accuracy(z, np.array([[0, 1], [1, 0], [1, 1]], float), bufs) == \
        pytest.approx(5 / 6)


def test_sample_weights_are_checked():
    with pytest.raises(ValueError, match="sample_weight must have shape"):
        losses.prepare_sample_weight([1, 2], 3, np.dtype(np.float64))
    with pytest.raises(ValueError, match=">= 0"):
        losses.prepare_sample_weight([1, -2, 1], 3, np.dtype(np.float64))
    with pytest.raises(ValueError, match="all zero"):
        losses.prepare_sample_weight([0, 0, 0], 3, np.dtype(np.float64))


# ---- regression losses: mae, huber, poisson ------------------------------------------------------

def test_regression_losses_by_name_alias_and_config():
    assert isinstance(losses.get("mean_absolute_error"), pynn.MAE)
    assert isinstance(losses.get("l1"), pynn.MAE)
    assert losses.get("huber") == pynn.Huber(1.0)
    assert losses.get({"name": "huber", "delta": 0.25}) == pynn.Huber(0.25)
    assert losses.get({"name": "huber", "delta": 0.25}) != pynn.Huber(0.5)
    assert isinstance(losses.get("poisson"), pynn.Poisson)
    with pytest.raises(ValueError, match="loss config"):
        losses.get({"name": "mse", "delta": 1.0})
    with pytest.raises(TypeError, match="needs a 'name'"):
        losses.get({"delta": 1.0})
    for bad in (0, -1.0, float("inf"), float("nan")):
        with pytest.raises(ValueError, match="Huber: delta must be finite and > 0"):
            pynn.Huber(bad)
    for bad in ("1", True, None):
        with pytest.raises(TypeError, match="Huber: delta must be a real number"):
            pynn.Huber(bad)


def test_regression_loss_values_match_formulas(rng):
    out = rng.normal(size=(6, 2))
    y = rng.normal(size=(6, 2))
    e = out - y
    assert np.isclose(pynn.MAE()(out, y), np.abs(e).mean())
    d = 0.4
    huber = np.where(np.abs(e) <= d, 0.5 * e ** 2, d * (np.abs(e) - d / 2)).mean()
    assert np.isclose(pynn.Huber(d)(out, y), huber)
    counts = rng.poisson(2.0, size=(6, 2))
    assert np.isclose(pynn.Poisson()(out, counts), (np.exp(out) - counts * out).mean())


def test_poisson_predicts_rates_and_refuses_negative_targets(rng):
    loss = pynn.Poisson()
    out = rng.normal(size=(5, 1))
    np.testing.assert_allclose(loss.predict(out), np.exp(out[:, 0]))
    with pytest.raises(ValueError, match="poisson targets must be counts or rates >= 0"):
        loss.prepare_target(np.array([1.0, -0.5, 2.0]), 3, 1, np.float64)
    with pytest.raises(ValueError, match="contains NaN"):
        loss.prepare_target(np.array([1.0, np.nan, 2.0]), 3, 1, np.float64)


@pytest.mark.parametrize("loss", ["mae", pynn.Huber(0.3), "poisson"])
def test_regression_losses_train_save_and_load(tmp_path, rng, loss):
    X = rng.normal(size=(400, 3))
    rate = np.exp(0.8 * X[:, 0] + 0.2)
    y = rng.poisson(rate).astype(float)
    model = pynn.Sequential([pynn.Dense(3, 16, "relu"), pynn.Dense(16, 1)], seed=0,
                            dtype="float64")
    history = model.fit(X, y, loss=loss, optimizer=pynn.Adam(0.01), epochs=30, batch_size=50,
                        verbose=0, metrics=["mae", "r2"])
    scores = model.evaluate(X, y, metrics=["mae", "r2"])
    assert scores["r2"] > 0.3, scores  # the signal is learnt
    pred = model.predict(X)
    # metrics compare predictions in the targets' units (poisson: the rate)
    np.testing.assert_allclose(scores["mae"], np.abs(pred - y).mean(), rtol=1e-12)
    assert history.history["loss"][-1] < history.history["loss"][0]
    path = tmp_path / "m.npz"
    pynn.save(model, path)
    again = pynn.load(path)
    assert again.loss == model.loss
    np.testing.assert_array_equal(again.predict(X), pred)
