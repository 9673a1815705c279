"""pynn.gradcheck: backprop vs central differences for every activation × loss, in float64."""
import zlib

import numpy as np
import pytest

import pynn

ACTIVATIONS = ["identity", "relu", "leaky_relu", "sigmoid", "tanh", "softmax"]


def _targets(loss, rng, n, k):
    if loss == "cross_entropy":
        return rng.integers(0, k, n)
    if loss == "kl_divergence":
        p = rng.uniform(0.05, 1, (n, k))
        return p / p.sum(axis=1, keepdims=True)
    if loss == "binary_cross_entropy":
        return rng.integers(0, 2, (n, k))
    if loss == "hinge":
        return rng.choice([-1, 1], (n, k))
    if loss == "poisson":
        return rng.poisson(1.5, (n, k))
    return rng.standard_normal((n, k))


def _random_biases(model, rng):
    # zero biases can put a relu exactly on its kink (a sample whose inputs are all 0), where
    # the central difference sees half of each side
    for layer in model.layers:
        layer.b = rng.uniform(-0.5, 0.5, layer.out_features)


@pytest.mark.parametrize("loss", ["cross_entropy", "binary_cross_entropy", "mse", "hinge",
                                  "kl_divergence", "mae", "huber", "poisson"])
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_backprop_matches_central_differences(activation, loss):
    rng = np.random.default_rng(zlib.crc32(f"{activation}-{loss}".encode()))
    n, d, k = 7, 4, 3
    X = rng.standard_normal((n, d))
    y = _targets(loss, rng, n, k)
    # hidden layers use the activation under test; the output layer is the loss's input
    model = pynn.Sequential([pynn.Dense(d, 5, activation, alpha=0.1),
                             pynn.Dense(5, 6, activation, alpha=0.1), pynn.Dense(6, k)],
                            seed=1, dtype="float64")
    _random_biases(model, rng)
    if loss == "hinge":
        # keep every margin away from the hinge's kink (|1 - t*s| > h)
        model.params *= 0.1
    err = pynn.gradcheck(model, X, y, loss=loss)
    assert err < 1e-6, (activation, loss, err)


@pytest.mark.parametrize("delta", [0.05, 0.5, 3.0])
def test_huber_on_both_sides_of_delta(delta):
    rng = np.random.default_rng(5)
    X = rng.standard_normal((9, 4))
    y = rng.standard_normal((9, 2))
    model = pynn.Sequential([pynn.Dense(4, 6, "tanh"), pynn.Dense(6, 2)], seed=3,
                            dtype="float64")
    _random_biases(model, rng)
    assert pynn.gradcheck(model, X, y, loss=pynn.Huber(delta)) < 1e-6


@pytest.mark.parametrize("activation", ["sigmoid", "tanh", "relu"])
def test_output_activation_under_mse(activation):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((6, 3))
    model = pynn.Sequential([pynn.Dense(3, 4, "tanh"), pynn.Dense(4, 2, activation)], seed=2,
                            dtype="float64")
    assert pynn.gradcheck(model, X, rng.uniform(0, 1, (6, 2)), loss="mse") < 1e-6


def test_gradcheck_with_sample_weight_and_float32_model():
    rng = np.random.default_rng(1)
    X = rng.standard_normal((8, 3)).astype(np.float32)
    y = rng.integers(0, 2, 8)
    model = pynn.Sequential([pynn.Dense(3, 4, "relu"), pynn.Dense(4, 2)], seed=0)
    _random_biases(model, rng)
    before = model.params.copy()
    err = pynn.gradcheck(model, X, y, loss="cross_entropy", sample_weight=rng.uniform(0, 2, 8))
    assert err < 1e-6
    assert np.array_equal(model.params, before)   # checked on a float64 copy


def test_gradcheck_detects_a_wrong_backward(monkeypatch):
    """A backward that drops the activation derivative must fail the check."""
    rng = np.random.default_rng(2)
    X = rng.standard_normal((5, 3))
    y = rng.integers(0, 3, 5)
    model = pynn.Sequential([pynn.Dense(3, 4, "tanh"), pynn.Dense(4, 3)], seed=0,
                            dtype="float64")
    real = pynn._core._Network

    class WrongBackward:
        """The real forward; a backward that treats every activation as the identity."""

        def __init__(self, W, b, dW, db, activations, alphas, acts, deltas):
            self.forward = real(W, b, dW, db, activations, alphas, acts, deltas).forward
            self.backward = real(W, b, dW, db, ["identity"] * len(W), alphas, acts,
                                 deltas).backward
    monkeypatch.setattr(pynn._core, "_Network", WrongBackward)
    assert pynn.gradcheck(model, X, y, loss="cross_entropy") > 1e-3


def test_details_and_subset():
    rng = np.random.default_rng(3)
    X = rng.standard_normal((5, 3))
    y = rng.integers(0, 3, 5)
    model = pynn.Sequential([pynn.Dense(3, 4, "sigmoid"), pynn.Dense(4, 3)], seed=0)
    out = pynn.gradcheck(model, X, y, loss="cross_entropy", max_params=6, details=True)
    assert len(out["indices"]) == 6 and out["relative_error"] < 1e-6
    assert out["max_abs_error"] < 1e-8
    with pytest.raises(ValueError, match="forward-only"):
        pynn.gradcheck(pynn.Sequential([pynn.Dense(3, 3, "step")]), X, y, "cross_entropy")
    with pytest.raises(ValueError, match="max_params"):
        pynn.gradcheck(model, X, y, "cross_entropy", max_params=0)
