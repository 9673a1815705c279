"""Keras conveniences: Dense(units), input size from the data or pynn.Input, model.add,
predict(batch_size=...), fit(class_weight=...)."""
import numpy as np
import pytest

import pynn


def _data(n=40, features=5, classes=3, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, features)).astype(np.float32), rng.integers(0, classes, n)


def _explicit(seed=0):
    return pynn.Sequential([pynn.Dense(5, 8, "relu"), pynn.Dense(8, 3)], seed=seed)


def test_units_only_layers_take_their_input_size_from_the_data():
    X, y = _data()
    model = pynn.Sequential([pynn.Dense(8, activation="relu"), pynn.Dense(3)], seed=0)
    assert not model.built and model.layers[1].in_features == 8
    lines = []
    model.summary(print_fn=lines.append)
    assert any("?" in line for line in lines)
    with pytest.raises(AttributeError, match="does not exist yet"):
        _ = model.params
    with pytest.raises(ValueError, match="needs the model's parameters"):
        model.get_weights()
    model.fit(X, y, loss="cross_entropy", epochs=2, batch_size=8, seed=1)
    reference = _explicit()
    reference.fit(X, y, loss="cross_entropy", epochs=2, batch_size=8, seed=1)
    assert model.built and model.in_features == 5
    assert model.params.tobytes() == reference.params.tobytes()


@pytest.mark.parametrize("build", ["input", "add", "add_input", "predict", "build"])
def test_every_way_to_give_the_input_size_draws_the_same_weights(build):
    X, _ = _data()
    if build == "input":
        model = pynn.Sequential([pynn.Input(5), pynn.Dense(8, "relu"), pynn.Dense(3)], seed=0)
    elif build in ("add", "add_input"):
        model = pynn.Sequential(seed=0)
        if build == "add_input":
            model.add(pynn.Input(5))
            model.add(pynn.Dense(8, activation="relu"))
        else:
            model.add(pynn.Dense(5, 8, "relu"))
        model.add(pynn.Dense(units=3))
    else:
        model = pynn.Sequential([pynn.Dense(8, activation="relu"), pynn.Dense(3)], seed=0)
        if build == "predict":
            model(X)
        else:
            model.build(5)
    assert model.built
    assert model.params.tobytes() == _explicit().params.tobytes()
    assert repr(model.layers[0]) == "Dense(5, 8, activation='relu')"


def test_add_to_a_trained_model_keeps_its_weights():
    X, y = _data()
    model = _explicit()
    model.fit(X, y, loss="cross_entropy", epochs=1)
    before = [w.copy() for w in model.get_weights()]
    model.add(pynn.Dense(4, activation="tanh"))
    for old, new in zip(before, model.get_weights()):
        np.testing.assert_array_equal(old, new)
    assert model.layers[-1].in_features == 3 and model.out_features == 4
    model.fit(X, y, epochs=1)  # the optimizer's state starts afresh for the new size
    assert np.isfinite(model.params).all()


def test_layer_errors():
    with pytest.raises(TypeError, match="output size"):
        pynn.Dense()
    with pytest.raises(ValueError, match="in_features"):
        pynn.Dense(0, 3)
    with pytest.raises(ValueError, match="takes 5 inputs but the Input gives 4"):
        pynn.Sequential([pynn.Input(4), pynn.Dense(5, 3)])
    with pytest.raises(TypeError, match="Input goes first"):
        pynn.Sequential([pynn.Dense(2, 3), pynn.Input(3)])
    with pytest.raises(ValueError, match="no layers"):
        pynn.Sequential().fit(np.ones((2, 2)), [0, 1], loss="cross_entropy")
    model = pynn.Sequential([pynn.Dense(3)])
    with pytest.raises(ValueError, match="2-D"):
        model(np.ones(4))
    assert not model.built  # a bad first input builds nothing


def test_predict_in_batches_is_the_same():
    X, y = _data(n=50)
    model = _explicit()
    model.fit(X, y, loss="cross_entropy", epochs=1)
    for batch_size in (1, 7, 50, 1000):
        np.testing.assert_array_equal(model.predict(X, batch_size=batch_size), model.predict(X))
        np.testing.assert_array_equal(model.predict_proba(X, batch_size=batch_size),
                                      model.predict_proba(X))
    with pytest.raises(ValueError, match="batch_size"):
        model.predict(X, batch_size=0)


def test_class_weight_is_sample_weight_by_class():
    X, y = _data(n=60)
    weights = {0: 2.0, 2: 0.5}
    a, b = _explicit(), _explicit()
    a.fit(X, y, loss="cross_entropy", epochs=2, batch_size=8, seed=3, class_weight=weights)
    per_sample = np.array([weights.get(int(c), 1.0) for c in y])
    b.fit(X, y, loss="cross_entropy", epochs=2, batch_size=8, seed=3, sample_weight=per_sample)
    assert a.params.tobytes() == b.params.tobytes()

    c, d = _explicit(), _explicit()
    c.fit(X, y, loss="cross_entropy", epochs=1, seed=3, class_weight="balanced")
    counts = np.bincount(y)
    d.fit(X, y, loss="cross_entropy", epochs=1, seed=3,
          sample_weight=(len(y) / (3 * counts))[y])
    assert c.params.tobytes() == d.params.tobytes()


def test_class_weight_errors():
    X, y = _data()
    model = _explicit()
    before = model.params.copy()
    with pytest.raises(ValueError, match="class indices"):
        model.fit(X, y, loss="cross_entropy", class_weight={3: 1.0})
    with pytest.raises(ValueError, match=">= 0"):
        model.fit(X, y, loss="cross_entropy", class_weight={0: -1.0})
    with pytest.raises(ValueError, match="one class per sample"):
        model.fit(X, np.eye(3)[y], loss="mse", class_weight="balanced")
    with pytest.raises(ValueError, match="'balanced'"):
        model.fit(X, y, loss="cross_entropy", class_weight="equal")
    np.testing.assert_array_equal(model.params, before)


def test_activation_none_is_identity():
    X, y = _data()
    model = pynn.Sequential([pynn.Dense(5, 8, "relu"), pynn.Dense(8, 3, activation=None)], seed=0)
    assert model.layers[1].activation == "identity"
    model.fit(X, y, loss="cross_entropy", epochs=2, batch_size=8, seed=1)
    reference = _explicit()
    reference.fit(X, y, loss="cross_entropy", epochs=2, batch_size=8, seed=1)
    assert model.params.tobytes() == reference.params.tobytes()
