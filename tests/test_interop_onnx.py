"""pynn.to_onnx against the real runtime: onnx's checker, then onnxruntime's outputs against
pynn's for every activation, every loss's output function, float32/float64, batch 1 and 1000;
the estimators' graphs (skl2onnx's output names); bad input; nothing half-written on disk.

onnx, onnxruntime and skl2onnx are installed by .ci/run; on a developer's machine without them
these tests skip, in CI (CI=true) they fail instead.
"""
import importlib
import os
import subprocess
import sys

import numpy as np
import pytest

import pynn

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def need(module: str, pip_name: str):
    try:
        return importlib.import_module(module)
    except ImportError:
        if IN_CI:
            raise
        pytest.skip(f"{module} is not installed (pip install {pip_name})")


ACTIVATIONS = ["identity", "relu", "leaky_relu", "sigmoid", "tanh", "softmax", "step"]


def run_onnx(proto, X):
    ort = need("onnxruntime", "onnxruntime")
    session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {"X": X})


def assert_close(got, want, rtol=1e-5):
    """Within `rtol` relative to the output's scale (an element near zero after cancellation
    cannot be held to a relative bound of its own)."""
    assert got.shape == want.shape and got.dtype == want.dtype
    scale = float(np.max(np.abs(want))) or 1.0
    np.testing.assert_allclose(got, want, rtol=rtol, atol=rtol * scale)


def model_with(activation, dtype, loss="cross_entropy", seed=0, alpha=0.01):
    layers = [pynn.Dense(12, 16, activation, alpha=alpha), pynn.Dense(16, 8, activation,
                                                                          alpha=alpha),
              pynn.Dense(8, 4)]
    return pynn.Sequential(layers, seed=seed, dtype=dtype).compile(loss=loss)


def inputs_for(model, n, seed=1):
    """n rows; for step, only rows whose pre-activations keep clear of the jump at 0 (pynn's
    GEMM and onnxruntime's may round a pre-activation of 1e-8 to opposite signs)."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(4 * n + 64, model.in_features)).astype(model.dtype)
    if model.layers[0].activation == "step":
        h, keep = X.astype(np.float64), np.ones(len(X), bool)
        for layer in model.layers[:-1]:
            z = h @ layer.W.astype(np.float64) + layer.b
            keep &= (np.abs(z) > 1e-3).all(axis=1)
            h = (z > 0).astype(np.float64)
        X = X[keep]
    assert len(X) >= n
    return np.ascontiguousarray(X[:n])


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_every_activation_matches_onnxruntime(activation, dtype):
    model = model_with(activation, dtype)
    proto = pynn.to_onnx(model)
    for n in (1, 1000):
        X = inputs_for(model, n)
        (got,) = run_onnx(proto, X)
        assert_close(got, model(X))


@pytest.mark.parametrize("alpha", [0.01, 0.25, 1.7])
def test_leaky_relu_alpha_exact_in_float64(alpha):
    # ONNX's LeakyRelu takes alpha as a float32: 0.01 must not become 0.0099999998
    model = model_with("leaky_relu", "float64", alpha=alpha)
    X = inputs_for(model, 300)
    (got,) = run_onnx(pynn.to_onnx(model), X)
    assert_close(got, model(X), rtol=1e-12)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("loss", ["cross_entropy", "kl_divergence", "binary_cross_entropy"])
def test_probabilities_apply_the_loss_output_function(loss, dtype):
    model = model_with("tanh", dtype, loss=loss)
    proto = pynn.to_onnx(model, output="probabilities")
    assert [o.name for o in proto.graph.output] == ["probabilities"]
    for n in (1, 1000):
        X = inputs_for(model, n)
        (got,) = run_onnx(proto, X)
        assert_close(got, model.predict_proba(X))


@pytest.mark.parametrize("loss", ["mse", "hinge"])
def test_losses_without_probabilities(loss):
    need("onnx", "onnx")
    model = model_with("relu", "float32", loss=loss)
    with pytest.raises(ValueError, match=f"probabilistic loss.*{loss}"):
        pynn.to_onnx(model, output="probabilities")
    X = inputs_for(model, 50)
    (got,) = run_onnx(pynn.to_onnx(model), X)   # their output function is the identity
    assert_close(got, model(X))


def test_graph_is_checker_clean_with_a_dynamic_batch_and_the_documented_opset():
    onnx = need("onnx", "onnx")
    proto = pynn.to_onnx(model_with("relu", "float32"))
    onnx.checker.check_model(proto, full_check=True)
    assert [(o.domain, o.version) for o in proto.opset_import] == [("", pynn.interop.onnx.OPSET)]
    assert pynn.interop.onnx.OPSET == 17 and proto.ir_version == 8
    (inp,) = proto.graph.input
    dims = inp.type.tensor_type.shape.dim
    assert inp.name == "X" and dims[0].dim_param == "N" and dims[1].dim_value == 12
    assert inp.type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    proto64 = pynn.to_onnx(model_with("relu", "float64"))
    assert proto64.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.DOUBLE
    assert proto.producer_name == "pynn"


def test_written_file_is_the_returned_graph(tmp_path):
    onnx = need("onnx", "onnx")
    model = model_with("sigmoid", "float32")
    path = tmp_path / "m.onnx"
    proto = pynn.to_onnx(model, path, output="probabilities")
    assert onnx.load(str(path)) == proto
    X = inputs_for(model, 20)
    ort = need("onnxruntime", "onnxruntime")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert_close(session.run(["probabilities"], {"X": X})[0], model.predict_proba(X))
    assert sorted(os.listdir(tmp_path)) == ["m.onnx"]


def test_bad_input_names_the_part_and_writes_nothing(tmp_path):
    need("onnx", "onnx")
    path = tmp_path / "m.onnx"
    unbuilt = pynn.Sequential([pynn.Dense(8, "relu"), pynn.Dense(2)])
    with pytest.raises(ValueError, match="parameters.*do not exist"):
        pynn.to_onnx(unbuilt, path)
    with pytest.raises(ValueError, match="needs the model's loss"):
        pynn.to_onnx(pynn.Sequential([pynn.Dense(3, 2)]), path, output="probabilities")
    with pytest.raises(ValueError, match="output must be"):
        pynn.to_onnx(model_with("relu", "float32"), path, output="labels")
    with pytest.raises(TypeError, match="pynn.Sequential"):
        pynn.to_onnx(object(), path)
    with pytest.raises(TypeError, match="path"):
        pynn.to_onnx(model_with("relu", "float32"), 3.5)
    assert os.listdir(tmp_path) == []


def test_existing_file_untouched_when_export_fails(tmp_path):
    need("onnx", "onnx")
    path = tmp_path / "m.onnx"
    path.write_bytes(b"old")
    with pytest.raises(ValueError):
        pynn.to_onnx(pynn.Sequential([pynn.Dense(8, "relu")]), path)
    assert path.read_bytes() == b"old" and os.listdir(tmp_path) == ["m.onnx"]


def test_missing_onnx_names_the_pip_package(monkeypatch):
    monkeypatch.setitem(sys.modules, "onnx", None)  # import onnx -> ImportError
    with pytest.raises(ImportError, match="pip install onnx") as info:
        pynn.to_onnx(model_with("relu", "float32"))
    assert "pynn[" not in str(info.value)


def test_import_pynn_loads_no_optional_package():
    code = ("import sys, pynn, pynn.interop; print(sorted(m for m in ('onnx', 'onnxruntime', "
            "'torch', 'safetensors', 'sklearn', 'skl2onnx') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[]"


# ---- scikit-learn estimators: skl2onnx's output names ---------------------------------------

def fitted(kind, y_kind, dtype="float64", seed=0):
    need("sklearn", "scikit-learn")
    from pynn.sklearn import MLPClassifier, MLPRegressor

    rng = np.random.default_rng(seed)
    X = rng.normal(size=(240, 6)).astype(dtype)
    score = X[:, 0] - 0.5 * X[:, 1] + 0.3 * X[:, 2] * X[:, 3]
    if kind == "regressor":
        y = score if y_kind == "single" else np.c_[score, X[:, 4] ** 2]
        est = MLPRegressor(hidden_layer_sizes=(10, 7), activation="tanh", max_iter=30, random_state=seed)
    else:
        if y_kind == "multiclass":
            y = np.array(["cat", "dog", "emu"])[np.digitize(score, [-0.5, 0.5])]
        elif y_kind == "binary":
            y = np.where(score > 0, 7, -3)
        else:  # multi-label indicator matrix
            y = np.c_[score > 0, X[:, 4] > 0.2, X[:, 5] < 0].astype(int)
        est = MLPClassifier((10,), activation="logistic", max_iter=30, random_state=seed)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ConvergenceWarning: 30 epochs are enough here
        est.fit(X, y)
    return est, X


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("y_kind", ["multiclass", "binary", "multilabel"])
def test_classifier_graph_outputs_label_and_probabilities(y_kind, dtype):
    est, X = fitted("classifier", y_kind, dtype)
    proto = pynn.to_onnx(est)
    assert [o.name for o in proto.graph.output] == ["label", "probabilities"]
    for n in (1, 240):
        label, proba = run_onnx(proto, X[:n])
        want = est.predict(X[:n])
        assert label.shape == want.shape and (label == want).all()
        assert_close(proba, est.predict_proba(X[:n]).astype(dtype))


@pytest.mark.parametrize("y_kind", ["single", "multi"])
def test_regressor_graph_outputs_variable(y_kind):
    est, X = fitted("regressor", y_kind)
    proto = pynn.to_onnx(est)
    assert [o.name for o in proto.graph.output] == ["variable"]
    (got,) = run_onnx(proto, X)
    assert_close(got, est.predict(X).reshape(len(X), -1))


def test_unfitted_estimator_is_refused():
    need("onnx", "onnx")
    need("sklearn", "scikit-learn")
    from pynn.sklearn import MLPClassifier

    with pytest.raises(ValueError, match="MLPClassifier is not fitted"):
        pynn.to_onnx(MLPClassifier())
    with pytest.raises(ValueError, match="output="):
        pynn.to_onnx(fitted("classifier", "binary")[0], output="probabilities")


def test_scikit_learns_own_mlp_exports_too():
    need("onnx", "onnx")
    sk = need("sklearn.neural_network", "scikit-learn")
    est, X = fitted("classifier", "multiclass")
    theirs = sk.MLPClassifier((10,), activation="logistic", max_iter=30, random_state=0)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs.fit(X, est.predict(X))
    label, proba = run_onnx(pynn.to_onnx(theirs), X)
    assert (label == theirs.predict(X)).all()
    assert_close(proba, theirs.predict_proba(X))


# ---- skl2onnx on pynn's estimators (its onnx_converter hook) ---------------------------------

@pytest.mark.parametrize("input_type", ["FloatTensorType", "DoubleTensorType"])
@pytest.mark.parametrize("kind, y_kind", [("classifier", "multiclass"), ("classifier", "binary"),
                                          ("classifier", "multilabel"), ("regressor", "multi")])
def test_skl2onnx_converts_pynn_estimators(kind, y_kind, input_type):
    skl2onnx = need("skl2onnx", "skl2onnx")
    from skl2onnx.common import data_types

    est, X = fitted(kind, y_kind)
    dtype = np.float32 if input_type == "FloatTensorType" else np.float64
    onx = skl2onnx.convert_sklearn(
        est, initial_types=[("input", getattr(data_types, input_type)([None, X.shape[1]]))])
    ort = need("onnxruntime", "onnxruntime")
    session = ort.InferenceSession(onx.SerializeToString(), providers=["CPUExecutionProvider"])
    outputs = session.run(None, {"input": X.astype(dtype)})
    if kind == "regressor":
        assert [o.name for o in onx.graph.output] == ["variable"]
        assert_close(outputs[0], est.predict(X).astype(dtype), rtol=1e-5)
    else:
        assert [o.name for o in onx.graph.output] == ["label", "probabilities"]
        assert (outputs[0] == est.predict(X)).all()
        assert_close(outputs[1], est.predict_proba(X).astype(dtype), rtol=1e-5)


def test_skl2onnx_converts_a_pipeline_ending_in_a_pynn_estimator():
    skl2onnx = need("skl2onnx", "skl2onnx")
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from pynn.sklearn import MLPClassifier

    est, X = fitted("classifier", "multiclass")
    pipe = make_pipeline(StandardScaler(), MLPClassifier((9,), max_iter=5, random_state=0))
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pipe.fit(X * 3 + 1, est.predict(X))
    onx = skl2onnx.to_onnx(pipe, (X * 3 + 1)[:1])
    label, proba = run_onnx_named(onx, X * 3 + 1)
    assert (label == pipe.predict(X * 3 + 1)).all()
    assert_close(proba, pipe.predict_proba(X * 3 + 1))


def run_onnx_named(proto, X):
    ort = need("onnxruntime", "onnxruntime")
    session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: X})
