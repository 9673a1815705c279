"""pynn.sklearn's estimators and scikit-learn's own MLPs, both ways: `from_sklearn` and
`to_sklearn` keep the weights, the parameters and the fitted attributes, so that predict and
predict_proba agree (float64: to 1e-12, the summation order of the matrix products); iris,
digits, multi-label and regressors with one and two outputs. Bad input names the argument;
skl2onnx on a pynn estimator works or its error names pynn.to_onnx.

scikit-learn (and skl2onnx, onnxruntime) are installed by .ci/run; on a developer's machine
without them these tests skip, in CI (CI=true) they fail instead.
"""
import importlib
import os
import pickle
import warnings

import numpy as np
import pytest

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def need(module: str, pip_name: str):
    try:
        return importlib.import_module(module)
    except ImportError:
        if IN_CI:
            raise
        pytest.skip(f"{module} is not installed (pip install {pip_name})")


@pytest.fixture(autouse=True)
def sklearn_present():
    need("sklearn", "scikit-learn")


def quiet_fit(est, X, y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ConvergenceWarning: a few epochs are enough here
        return est.fit(X, y)


def dataset(name):
    from sklearn import datasets

    if name == "iris":
        X, y = datasets.load_iris(return_X_y=True)
        return X, np.array(["setosa", "versicolor", "virginica"])[y]
    if name == "digits":
        return datasets.load_digits(return_X_y=True)
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 6))
    score = X[:, 0] - 0.5 * X[:, 1] + 0.3 * X[:, 2] * X[:, 3]
    if name == "binary":
        return X, np.where(score > 0, 7, -3)
    if name == "multilabel":
        return X, np.c_[score > 0, X[:, 4] > 0.2, X[:, 5] < 0].astype(int)
    if name == "regression-1":
        return X, score
    if name == "regression-2":
        return X, np.c_[score, X[:, 4] ** 2]
    if name == "counts":
        return X, rng.poisson(np.exp(0.3 * X[:, 0]))
    raise KeyError(name)


CLASSIFICATION = {
    "iris": {"hidden_layer_sizes": (10,), "activation": "tanh", "max_iter": 40},
    "digits": {"hidden_layer_sizes": (32, 16), "max_iter": 15, "solver": "sgd", "momentum": 0.8},
    "binary": {"hidden_layer_sizes": (8,), "activation": "logistic", "max_iter": 30},
    "multilabel": {"hidden_layer_sizes": (12,), "max_iter": 30, "early_stopping": True},
    "iris-lbfgs": {"hidden_layer_sizes": (6,), "solver": "lbfgs", "max_iter": 30},
}
REGRESSION = {
    "regression-1": {"hidden_layer_sizes": (16,), "max_iter": 40},
    "regression-2": {"hidden_layer_sizes": (16, 8), "activation": "identity", "max_iter": 40},
    "counts": {"loss": "poisson", "hidden_layer_sizes": (8,), "max_iter": 30},
}
FITTED = ("n_features_in_", "n_layers_", "n_outputs_", "out_activation_", "loss_", "best_loss_",
          "loss_curve_", "validation_scores_", "best_validation_score_", "n_iter_", "t_")


def estimators(case):
    from sklearn import neural_network

    from pynn import sklearn as pynn_sklearn

    params = {**CLASSIFICATION, **REGRESSION}[case]
    kind = "MLPClassifier" if case in CLASSIFICATION else "MLPRegressor"
    X, y = dataset(case.split("-lbfgs")[0])
    return (getattr(neural_network, kind)(random_state=0, **params),
            getattr(pynn_sklearn, kind)(random_state=0, **params), X, y)


def assert_same_predictions(a, b, X):
    pa, pb = a.predict(X), b.predict(X)
    assert pa.shape == pb.shape and pa.dtype == pb.dtype
    if hasattr(a, "predict_proba"):
        assert (pa == pb).all()
        np.testing.assert_allclose(b.predict_proba(X), a.predict_proba(X), rtol=0, atol=1e-12)
    else:
        np.testing.assert_allclose(pb, pa, rtol=1e-12, atol=1e-12 * np.abs(pa).max())


def assert_same_fitted(a, b):
    for W, V in zip(a.coefs_, b.coefs_, strict=True):
        assert W.dtype == V.dtype and W.tobytes() == V.tobytes()
    for c, d in zip(a.intercepts_, b.intercepts_, strict=True):
        assert c.dtype == d.dtype and c.tobytes() == d.tobytes()
    for key in FITTED:
        assert hasattr(a, key) == hasattr(b, key), key
        if hasattr(a, key):
            np.testing.assert_equal(getattr(b, key), getattr(a, key), err_msg=key)
    if hasattr(a, "classes_"):
        np.testing.assert_array_equal(b.classes_, a.classes_)
    common = set(a.get_params()) & set(b.get_params())
    assert {k: a.get_params()[k] for k in common} == {k: b.get_params()[k] for k in common}
    assert len(common) >= 23


@pytest.mark.parametrize("case", [*CLASSIFICATION, *REGRESSION])
def test_from_sklearn_predicts_what_sklearn_predicts(case):
    theirs, ours, X, y = estimators(case)
    quiet_fit(theirs, X, y)
    converted = type(ours).from_sklearn(theirs)
    assert type(converted) is type(ours)
    assert_same_fitted(theirs, converted)
    assert_same_predictions(theirs, converted, X)
    assert_same_predictions(theirs, converted, X[:1])


@pytest.mark.parametrize("case", [*CLASSIFICATION, *REGRESSION])
def test_to_sklearn_predicts_what_pynn_predicts(case):
    theirs, ours, X, y = estimators(case)
    quiet_fit(ours, X, y)
    converted = ours.to_sklearn()
    assert type(converted) is type(theirs)
    assert_same_fitted(ours, converted)
    assert_same_predictions(ours, converted, X)
    back = type(ours).from_sklearn(converted)  # and back again: bitwise the same weights
    assert_same_fitted(ours, back)
    assert_same_predictions(ours, back, X)


def test_weights_are_copies():
    theirs, ours, X, y = estimators("iris")
    quiet_fit(theirs, X, y)
    converted = type(ours).from_sklearn(theirs)
    before = theirs.coefs_[0].copy()
    converted.coefs_[0][...] = 0  # pynn's coefs_ are views into its network
    assert theirs.coefs_[0].tobytes() == before.tobytes()
    back = converted.to_sklearn()
    back.coefs_[1][...] = 0
    assert converted.coefs_[1].any()


def test_float32_estimators_stay_float32():
    theirs, ours, X, y = estimators("iris")
    X32 = X.astype(np.float32)
    quiet_fit(theirs, X32, y)
    converted = type(ours).from_sklearn(theirs)
    assert converted.coefs_[0].dtype == np.float32
    assert (converted.predict(X32) == theirs.predict(X32)).all()
    np.testing.assert_allclose(converted.predict_proba(X32), theirs.predict_proba(X32),
                               atol=1e-6)
    assert converted.to_sklearn().coefs_[0].dtype == np.float32


def test_multilabel_and_binary_binarizers_decode_like_sklearn():
    for case in ("multilabel", "binary"):
        _theirs, ours, X, y = estimators(case)
        quiet_fit(ours, X, y)
        converted = ours.to_sklearn()
        assert converted._label_binarizer.y_type_ == ours._label_binarizer.y_type_
        np.testing.assert_array_equal(converted.predict(X), ours.predict(X))


def test_converted_estimators_train_further():
    for case in ("digits", "multilabel", "regression-2"):
        theirs, ours, X, y = estimators(case)
        quiet_fit(theirs, X, y)
        converted = type(ours).from_sklearn(theirs).set_params(warm_start=True, max_iter=3)
        quiet_fit(converted, X, y)
        assert converted.n_iter_ == 3 and len(converted.loss_curve_) == len(theirs.loss_curve_) + 3
        back = converted.to_sklearn().set_params(warm_start=True, max_iter=2)
        quiet_fit(back, X, y)
        assert back.n_iter_ == 2 and back.t_ > converted.t_


def test_class_weight_is_left_behind_with_a_warning():
    _theirs, ours, X, y = estimators("iris")
    quiet_fit(ours.set_params(class_weight="balanced"), X, y)
    with pytest.warns(UserWarning, match="class_weight='balanced' is left behind"):
        converted = ours.to_sklearn()
    assert "class_weight" not in converted.get_params()
    assert (converted.predict(X) == ours.predict(X)).all()


def test_converted_estimator_pickles():
    theirs, ours, X, y = estimators("iris")
    quiet_fit(theirs, X, y)
    copy = pickle.loads(pickle.dumps(type(ours).from_sklearn(theirs)))
    assert (copy.predict(X) == theirs.predict(X)).all()


# ---- bad input ---------------------------------------------------------------------------------

def test_unfitted_estimators_are_refused():
    from sklearn.neural_network import MLPClassifier as SkClassifier

    from pynn.sklearn import MLPClassifier, MLPRegressor

    with pytest.raises(ValueError, match="est is not fitted yet.*MLPClassifier.from_sklearn"):
        MLPClassifier.from_sklearn(SkClassifier())
    with pytest.raises(ValueError, match="this MLPRegressor is not fitted yet.*to_sklearn"):
        MLPRegressor().to_sklearn()


def test_an_estimator_of_another_kind_is_refused():
    from sklearn.linear_model import LogisticRegression

    from pynn.sklearn import MLPClassifier, MLPRegressor

    theirs, ours, X, y = estimators("regression-1")
    quiet_fit(theirs, X, y)
    with pytest.raises(TypeError, match="est must be a fitted sklearn.neural_network."
                                        "MLPClassifier, got sklearn.*MLPRegressor"):
        MLPClassifier.from_sklearn(theirs)
    with pytest.raises(TypeError, match="est must be .*MLPRegressor, got .*LogisticRegression"):
        MLPRegressor.from_sklearn(LogisticRegression())
    quiet_fit(ours, X, y)
    with pytest.raises(TypeError, match="got pynn.sklearn.*MLPRegressor"):
        MLPRegressor.from_sklearn(ours)


def test_inconsistent_fitted_attributes_are_named():
    from pynn.sklearn import MLPClassifier

    theirs, _ours, X, y = estimators("digits")
    quiet_fit(theirs, X, y)
    good = theirs.coefs_
    theirs.coefs_ = [good[0], good[1][:5], good[2]]
    with pytest.raises(ValueError, match=r"est.coefs_\[1\] has shape \(5, 16\)"):
        MLPClassifier.from_sklearn(theirs)
    theirs.coefs_ = [good[0], good[1]]
    with pytest.raises(ValueError, match="one array per layer"):
        MLPClassifier.from_sklearn(theirs)
    theirs.coefs_ = [c.copy() for c in good]
    theirs.coefs_[2][0, 0] = np.nan
    with pytest.raises(ValueError, match=r"coefs_\[2\] or intercepts_\[2\] contain NaN"):
        MLPClassifier.from_sklearn(theirs)
    theirs.coefs_ = [c.astype(np.float16) for c in good]
    theirs.intercepts_ = [b.astype(np.float16) for b in theirs.intercepts_]
    with pytest.raises(TypeError, match="float16"):
        MLPClassifier.from_sklearn(theirs)


# ---- skl2onnx on pynn's estimators -------------------------------------------------------------

def test_skl2onnx_converts_a_converted_estimator_or_names_pynn_to_onnx():
    skl2onnx = need("skl2onnx", "skl2onnx")
    ort = need("onnxruntime", "onnxruntime")
    from skl2onnx.common.data_types import FloatTensorType, Int64TensorType

    theirs, ours, X, y = estimators("iris")
    quiet_fit(theirs, X, y)
    est = type(ours).from_sklearn(theirs)
    onx = skl2onnx.convert_sklearn(est, initial_types=[("X", FloatTensorType([None, 4]))])
    session = ort.InferenceSession(onx.SerializeToString(), providers=["CPUExecutionProvider"])
    label, proba = session.run(None, {"X": X.astype(np.float32)})
    assert (label == est.predict(X)).mean() > 0.97  # float32 graph of float64 weights
    np.testing.assert_allclose(proba, est.predict_proba(X), atol=1e-5)
    with pytest.raises(RuntimeError, match="pynn.to_onnx"):
        skl2onnx.convert_sklearn(est, initial_types=[("X", FloatTensorType([None, 4]))],
                                 target_opset=12)
    with pytest.raises(TypeError, match="pynn.to_onnx"):
        skl2onnx.convert_sklearn(est, initial_types=[("X", Int64TensorType([None, 4]))])

