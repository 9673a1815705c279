"""Metrics in fit and evaluate, against scikit-learn's definitions."""
import numpy as np
import pytest

import pynn
from pynn.nn import metrics as M

sklearn_metrics = pytest.importorskip("sklearn.metrics")


def _classifier(classes=4, n=120, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, 6))
    y = (X[:, :classes].argmax(axis=1) + (rng.random(n) < 0.2)) % classes
    model = pynn.Sequential([pynn.Dense(6, 10, "relu"), pynn.Dense(10, classes)], seed=0,
                            dtype="float64")
    return model, X, y


def test_classification_metrics_match_sklearn():
    model, X, y = _classifier()
    h = model.fit(X, y, loss="cross_entropy", optimizer=pynn.SGD(0.1, momentum=0.9),
                  epochs=3, batch_size=16, metrics=["f1", M.TopKAccuracy(k=2), "accuracy"],
                  validation_data=(X[:40], y[:40]))
    assert {"f1", "top_k_accuracy", "val_f1", "val_top_k_accuracy", "accuracy"} <= \
        set(h.history)
    scores = model.evaluate(X, y, metrics=["f1", M.TopKAccuracy(k=2)])
    logits = model(X)
    pred = logits.argmax(axis=1)
    assert scores["f1"] == pytest.approx(sklearn_metrics.f1_score(y, pred, average="macro"))
    assert scores["top_k_accuracy"] == pytest.approx(
        sklearn_metrics.top_k_accuracy_score(y, logits, k=2))
    assert h.history["val_f1"][-1] == pytest.approx(
        sklearn_metrics.f1_score(y[:40], model(X[:40]).argmax(axis=1), average="macro"))


@pytest.mark.parametrize("loss,outputs", [("binary_cross_entropy", 1), ("cross_entropy", 2)])
def test_auc_matches_sklearn_with_ties(loss, outputs):
    rng = np.random.default_rng(1)
    X = np.round(rng.standard_normal((200, 3)), 1)  # ties in the scores
    y = (X[:, 0] + 0.5 * rng.standard_normal(200) > 0).astype(int)
    model = pynn.Sequential([pynn.Dense(3, outputs)], seed=0, dtype="float64")
    model.fit(X, y, loss=loss, epochs=2, optimizer=pynn.SGD(0.1))
    auc = model.evaluate(X, y, metrics=["auc"])["auc"]
    z = model(X)
    score = z[:, 0] if outputs == 1 else z[:, 1] - z[:, 0]
    assert auc == pytest.approx(sklearn_metrics.roc_auc_score(y, score))


def test_regression_metrics_match_sklearn():
    rng = np.random.default_rng(2)
    X = rng.standard_normal((100, 4))
    Y = X @ rng.standard_normal((4, 2)) + 0.1 * rng.standard_normal((100, 2))
    model = pynn.Sequential([pynn.Dense(4, 2)], seed=0, dtype="float64")
    h = model.fit(X, Y, loss="mse", epochs=5, batch_size=10, optimizer=pynn.SGD(0.05),
                  metrics=["mae", "mse", "r2"])
    assert set(h.history) >= {"mae", "mse", "r2"}
    scores = model.evaluate(X, Y, metrics=["mae", "mse", "r2"])
    P = model(X)
    assert scores["mae"] == pytest.approx(sklearn_metrics.mean_absolute_error(Y, P))
    assert scores["mse"] == pytest.approx(sklearn_metrics.mean_squared_error(Y, P))
    assert scores["r2"] == pytest.approx(sklearn_metrics.r2_score(Y, P))
    assert scores["mse"] == pytest.approx(scores["loss"])  # pynn's mse loss is the same mean


def test_metric_errors_come_before_training():
    model, X, y = _classifier()
    with pytest.raises(ValueError, match="unknown metric 'precision'"):
        model.fit(X, y, loss="cross_entropy", metrics=["precision"])
    with pytest.raises(ValueError, match="needs a classification loss"):
        model.fit(X, np.eye(4)[y], loss="mse", metrics=["f1"])
    with pytest.raises(ValueError, match="binary"):
        model.fit(X, y, loss="cross_entropy", metrics=["auc"])
    with pytest.raises(TypeError, match="metric"):
        model.fit(X, y, loss="cross_entropy", metrics=[3])
    assert model.epochs_trained == 0
    with pytest.raises(ValueError, match="'val_f1'"):
        model.fit(X, y, loss="cross_entropy", metrics=["f1"],
                  callbacks=[pynn.EarlyStopping("val_f1")])
