"""The one training engine: every front end drives the same loop, with the same guarantees."""
import numpy as np
import pytest

import pynn
from pynn.engine import Batches, Trainer


def _data(n=60, features=6, classes=3, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, features))
    y = rng.integers(0, classes, n)
    return X, y


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_estimator_and_sequential_run_the_same_steps(dtype):
    """MLPClassifier (softmax, alpha 0, SGD momentum) and Sequential.fit with the same initial
    weights and batch order end bitwise equal: one loop, not two."""
    pytest.importorskip("sklearn")
    from sklearn.utils import check_random_state

    from pynn.sklearn import MLPClassifier

    X, y = _data()
    X = X.astype(dtype)
    est = MLPClassifier((8, 5), solver="sgd", learning_rate_init=0.05, momentum=0.9,
                        nesterovs_momentum=False, alpha=0.0, batch_size=16, max_iter=3,
                        shuffle=False, tol=0, n_iter_no_change=100, random_state=0,
                        dtype=dtype)
    with pytest.warns(Warning):  # max_iter reached
        est.fit(X, y)

    sizes = [6, 8, 5, 3]
    model = pynn.Sequential([pynn.Dense(sizes[i], sizes[i + 1],
                                        "relu" if i + 2 < len(sizes) else "identity")
                             for i in range(3)], dtype=dtype)
    rs = check_random_state(0)  # scikit-learn's Glorot draws, in its order
    for layer in model.layers:
        bound = np.sqrt(6.0 / (layer.in_features + layer.out_features))
        layer.W = rs.uniform(-bound, bound, layer.W.shape).astype(dtype)
        layer.b = rs.uniform(-bound, bound, layer.b.shape).astype(dtype)
    history = model.fit(X, y, loss="cross_entropy", optimizer=pynn.SGD(0.05, momentum=0.9),
                        epochs=3, batch_size=16, shuffle=False)
    for layer, coef, intercept in zip(model.layers, est.coefs_, est.intercepts_):
        assert layer.W.tobytes() == coef.tobytes()
        assert layer.b.tobytes() == intercept.tobytes()
    np.testing.assert_allclose(history.history["loss"], est.loss_curve_, rtol=1e-12)


OPTIMIZERS = [lambda: pynn.SGD(1e300), lambda: pynn.SGD(1e30, momentum=0.9, nesterov=True),
              lambda: pynn.Adam(1e30), lambda: pynn.SGD(1e30, weight_decay=1e30)]
LOSSES = {"cross_entropy": lambda y: y % 3, "mse": lambda y: np.eye(3)[y % 3],
          "binary_cross_entropy": lambda y: np.eye(3)[y % 3],
          "hinge": lambda y: 2 * np.eye(3)[y % 3] - 1}


@pytest.mark.parametrize("make_opt", OPTIMIZERS)
@pytest.mark.parametrize("loss", sorted(LOSSES))
@pytest.mark.parametrize("batch_size", [None, 7, 1])
@pytest.mark.parametrize("epochs", [1, 3])
def test_divergence_never_leaves_non_finite_weights(make_opt, loss, batch_size, epochs):
    X, y = _data(n=20)
    model = pynn.Sequential([pynn.Dense(6, 5, "relu"), pynn.Dense(5, 3)], seed=0)
    try:
        model.fit(X, LOSSES[loss](y), loss=loss, optimizer=make_opt(), epochs=epochs,
                  batch_size=batch_size)
    except pynn.TrainingDivergedError as exc:
        assert "diverged at epoch" in str(exc) and exc.history is not None
    assert np.isfinite(model.params).all()
    assert all(np.isfinite(a).all() for a in model.optimizer.state_arrays().values())
    # fitting again never breaks them either (the weights may be too large to train on)
    try:
        model.fit(X, LOSSES[loss](y), optimizer=pynn.SGD(1e-3), epochs=1)
    except pynn.TrainingDivergedError:
        pass
    assert np.isfinite(model.params).all()


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_a_batch_of_zero_weights_contributes_nothing(dtype):
    X, y = _data(n=24)
    weight = np.ones(24)
    weight[:8] = 0.0  # the whole first batch

    def fit(X, y, w):
        model = pynn.Sequential([pynn.Dense(6, 4, "tanh"), pynn.Dense(4, 3)], seed=1,
                                dtype=dtype)
        model.fit(X, y, loss="cross_entropy", optimizer=pynn.SGD(0.1, momentum=0.5),
                  epochs=2, batch_size=8, shuffle=False, sample_weight=w)
        return model

    skipped = fit(X, y, weight)
    without = fit(X[8:], y[8:], None)
    assert skipped.params.tobytes() == without.params.tobytes()
    loss = skipped.evaluate(X, y, sample_weight=weight)["loss"]
    assert loss == pytest.approx(without.evaluate(X[8:], y[8:])["loss"], rel=1e-6)


def test_trainer_api_one_epoch_and_gradients():
    X, y = _data(n=32)
    model = pynn.Sequential([pynn.Dense(6, 4, "relu"), pynn.Dense(4, 3)], seed=0,
                            dtype="float64")
    loss = pynn.CrossEntropy()
    target = loss.prepare_target(y, 32, 3, model.dtype)
    trainer = Trainer(model, loss, pynn.SGD(0.1))
    value = trainer.forward_backward(X, target)
    assert value == pytest.approx(trainer.loss_value(X, target))
    grads = model.grads.copy()
    before = model.params.copy()
    result = trainer.run_epoch(Batches(X, target, None, None))  # one full-batch step
    np.testing.assert_allclose(model.params, before - 0.1 * grads, rtol=1e-14, atol=1e-16)
    assert result.loss == pytest.approx(value) and 0 <= result.accuracy <= 1
    assert trainer.evaluate(X, target)["loss"] < value


class _Composed:
    """A loss that wraps another and overrides value_and_grad: the engine then composes the
    step in Python (gather, forward, loss, backward as separate calls)."""

    @staticmethod
    def wrap(loss):
        base = type(loss)

        class Composed(base):
            def value_and_grad(self, outputs, target, *, sample_weight=None, out=None):
                return base.value_and_grad(self, outputs, target, sample_weight=sample_weight,
                                           out=out)
        composed = Composed.__new__(Composed)
        composed.__dict__.update(loss.__dict__)
        return composed


@pytest.mark.parametrize("loss", [pynn.losses.CrossEntropy(), pynn.losses.Huber(0.5),
                                  pynn.losses.BinaryCrossEntropy(), pynn.losses.Poisson()])
@pytest.mark.parametrize("shuffle", [True, False])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_the_one_call_step_trains_bitwise_like_the_composed_step(loss, shuffle, dtype,
                                                                 monkeypatch):
    """A Dense-only model's step runs as one C call (gather, forward, loss, backward); the same
    kernels composed from Python give bitwise the same weights and history."""
    from pynn.engine.network import Network
    one_calls = []
    real = Network.train_step
    monkeypatch.setattr(Network, "train_step",
                        lambda self, *args: one_calls.append(1) or real(self, *args))
    X, y = _data(n=70, features=6, classes=3)
    X = np.abs(X) if isinstance(loss, pynn.losses.Poisson) else X
    target = y if isinstance(loss, pynn.losses.CrossEntropy) else np.eye(3)[y]
    assert loss.step_kernel(np.asarray(target) if target.ndim == 2 else y) is not None
    assert _Composed.wrap(loss).step_kernel(target) is None
    results = []
    for the_loss in (loss, _Composed.wrap(loss)):
        model = pynn.Sequential([pynn.Dense(6, 9, "tanh"), pynn.Dense(9, 3)], dtype=dtype,
                                seed=3)
        history = model.fit(X.astype(dtype), target, loss=the_loss,
                            optimizer=pynn.SGD(0.05, momentum=0.9), epochs=3, batch_size=16,
                            shuffle=shuffle, seed=1,
                            metrics=None if loss.has_accuracy else ["mae"])
        results.append((model.get_weights(), history.history))
        assert len(one_calls) == (15 if the_loss is loss else 0)  # 5 batches x 3 epochs
        one_calls.clear()
    for a, b in zip(results[0][0], results[1][0]):
        assert a.tobytes() == b.tobytes()
    assert results[0][1] == results[1][1]
