"""solver='lbfgs' in the estimators (against scikit-learn) and pynn.optim.LBFGS in fit."""
import warnings

import pytest

import pynn

datasets = pytest.importorskip("sklearn.datasets")
from sklearn.neural_network import MLPClassifier as SkClassifier
from sklearn.neural_network import MLPRegressor as SkRegressor
from sklearn.preprocessing import StandardScaler

from pynn.sklearn import MLPClassifier, MLPRegressor


def _scaled(loader):
    X, y = loader(return_X_y=True)
    return StandardScaler().fit_transform(X), y


@pytest.mark.parametrize("loader", [datasets.load_breast_cancer, datasets.load_digits])
@pytest.mark.parametrize("seed", [0, 1])
def test_classifier_lbfgs_follows_sklearn(loader, seed):
    X, y = _scaled(loader)
    kw = {"hidden_layer_sizes": (24,), "solver": "lbfgs", "max_iter": 60, "random_state": seed,
              "alpha": 1e-3}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = SkClassifier(**kw).fit(X, y)
        ours = MLPClassifier(**kw).fit(X, y)
    assert ours.n_iter_ == ref.n_iter_
    assert ours.loss_ == pytest.approx(ref.loss_, rel=1e-6)
    assert (ours.predict(X) == ref.predict(X)).mean() > 0.99
    assert not hasattr(ours, "loss_curve_")
    with pytest.raises(AttributeError, match="stochastic"):
        ours.partial_fit(X, y)


def test_regressor_lbfgs_follows_sklearn():
    X, y = _scaled(datasets.load_diabetes)
    kw = {"hidden_layer_sizes": (16,), "solver": "lbfgs", "max_iter": 200, "random_state": 0,
              "max_fun": 150}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = SkRegressor(**kw).fit(X, y)
        ours = MLPRegressor(**kw).fit(X, y)
    assert ours.n_iter_ == ref.n_iter_
    assert ours.loss_ == pytest.approx(ref.loss_, rel=1e-6)
    assert ours.score(X, y) == pytest.approx(ref.score(X, y), abs=1e-6)


def test_sequential_lbfgs_with_history_callbacks_and_files(tmp_path):
    X, y = _scaled(datasets.load_breast_cancer)
    model = pynn.Sequential([pynn.Dense(30, 16, "tanh"), pynn.Dense(16, 2)], seed=0,
                            dtype="float64")
    stop = pynn.EarlyStopping("val_loss", patience=2)
    h = model.fit(X, y, loss="cross_entropy", optimizer=pynn.optim.LBFGS(tol=1e-9), epochs=40,
                  validation_split=0.2, callbacks=[stop])
    assert 1 <= len(h.history["loss"]) <= 40 and model.epochs_trained == len(h.history["loss"])
    assert h.history["loss"][-1] < h.history["loss"][0]
    assert {"accuracy", "val_loss", "val_accuracy"} <= set(h.history)
    pynn.save(model, tmp_path / "m.npz")
    assert repr(pynn.load(tmp_path / "m.npz").optimizer) == repr(model.optimizer)
    with pytest.raises(ValueError, match="tol"):
        pynn.optim.LBFGS(tol=0)
