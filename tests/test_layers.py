"""pynn.Dense and pynn.init: construction, checks, views into the model's flat buffers."""
import numpy as np
import pytest

import pynn
from pynn import init


def test_dense_describes_itself():
    layer = pynn.Dense(784, 256, activation="relu")
    assert (layer.in_features, layer.out_features, layer.activation) == (784, 256, "relu")
    assert layer.n_params == 784 * 256 + 256
    assert repr(layer) == "Dense(784, 256, activation='relu')"
    assert "alpha=0.2" in repr(pynn.Dense(3, 4, "leaky_relu", alpha=0.2))
    assert isinstance(layer.init, init.HeNormal)          # default after relu
    assert isinstance(pynn.Dense(3, 4, "tanh").init, init.GlorotUniform)
    assert isinstance(pynn.Dense(3, 4).init, init.GlorotUniform)
    assert isinstance(pynn.Dense(3, 4, "leaky_relu").init, init.HeNormal)


@pytest.mark.parametrize("args,kwargs,exc,words", [
    ((0, 3), {}, ValueError, "in_features"),
    ((3, -1), {}, ValueError, "out_features"),
    ((3.0, 2), {}, TypeError, "in_features"),
    ((True, 2), {}, TypeError, "in_features"),
    ((3, 2, "swish"), {}, ValueError, "activation"),
    ((3, 2, 5), {}, TypeError, "activation"),
    ((3, 2, "leaky_relu"), {"alpha": -0.1}, ValueError, "alpha"),
    ((3, 2, "leaky_relu"), {"alpha": float("nan")}, ValueError, "alpha"),
    ((3, 2), {"init": "xavier_magic"}, ValueError, "init"),
    ((3, 2), {"init": 3}, TypeError, "init"),
])
def test_dense_rejects_bad_arguments(args, kwargs, exc, words):
    with pytest.raises(exc, match=words):
        pynn.Dense(*args, **kwargs)


def test_weights_are_views_into_one_flat_buffer():
    model = pynn.Sequential([pynn.Dense(3, 4, "relu"), pynn.Dense(4, 2)], seed=0)
    l0, l1 = model.layers
    assert model.params.shape == (3 * 4 + 4 + 4 * 2 + 2,)
    assert model.params.ctypes.data % 64 == 0
    for layer in model.layers:
        assert np.shares_memory(layer.W, model.params)
        assert np.shares_memory(layer.dW, model.grads)
        assert layer.W.flags.c_contiguous and layer.W.shape == (layer.in_features,
                                                                 layer.out_features)
    # layout: W0, b0, W1, b1 back to back
    assert np.array_equal(model.params[:12], l0.W.ravel())
    assert np.array_equal(model.params[12:16], l0.b)
    assert np.array_equal(model.params[16:24], l1.W.ravel())
    model.params[12:16] = [1, 2, 3, 4]
    assert np.array_equal(l0.b, [1, 2, 3, 4])
    l1.W = np.ones((4, 2))
    assert np.array_equal(model.params[16:24], np.ones(8))
    assert np.all(l0.b == [1, 2, 3, 4])


def test_weight_assignment_is_checked():
    model = pynn.Sequential([pynn.Dense(3, 4)], seed=0)
    before = model.params.copy()
    with pytest.raises(ValueError, match="shape"):
        model.layers[0].W = np.ones((4, 3))
    with pytest.raises(ValueError, match="NaN"):
        model.layers[0].b = [0, np.nan, 0, 0]
    with pytest.raises(TypeError, match="numeric"):
        model.layers[0].b = ["a", "b", "c", "d"]
    assert np.array_equal(model.params, before)


def test_unbound_layer_says_where_its_weights_live():
    with pytest.raises(AttributeError, match="Sequential"):
        _ = pynn.Dense(3, 4).W


def test_layer_cannot_join_two_models():
    layer = pynn.Dense(3, 4)
    pynn.Sequential([layer])
    with pytest.raises(ValueError, match="another model"):
        pynn.Sequential([layer])


def test_initialisers_have_the_documented_statistics():
    rng = np.random.default_rng(0)
    he = init.he_normal()(400, 300, rng)
    assert he.shape == (400, 300)
    assert abs(he.std() - np.sqrt(2 / 400)) < 0.01 * np.sqrt(2 / 400) * 3
    assert abs(he.mean()) < 3 * np.sqrt(2 / 400) / np.sqrt(he.size)
    gl = init.glorot_uniform()(400, 300, rng)
    limit = np.sqrt(6 / 700)
    assert gl.min() >= -limit and gl.max() <= limit
    assert abs(gl.std() - limit / np.sqrt(3)) < 0.01 * limit
    small = init.normal(0.01)(400, 300, rng)
    assert abs(small.std() - 0.01) < 0.0002
    with pytest.raises(ValueError, match="std"):
        init.normal(0)


def test_initialisation_is_seeded_and_dtype_independent():
    def make(seed, dtype="float32"):
        return pynn.Sequential([pynn.Dense(5, 7, "relu"), pynn.Dense(7, 3, init="normal")],
                               seed=seed, dtype=dtype)
    a, b, c = make(1), make(1), make(2)
    assert np.array_equal(a.params, b.params)
    assert not np.array_equal(a.params, c.params)
    d = make(1, "float64")
    assert np.array_equal(d.params.astype(np.float32), a.params)
    for layer in a.layers:
        assert np.all(layer.b == 0)
    assert a.layers[1].W.std() < 0.05  # the small Gaussian


def test_custom_init_callable():
    def ones(fan_in, fan_out, rng):
        return np.ones((fan_in, fan_out))
    model = pynn.Sequential([pynn.Dense(2, 3, init=ones)], seed=0)
    assert np.all(model.layers[0].W == 1)
