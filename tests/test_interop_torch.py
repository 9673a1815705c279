"""pynn.to_torch / pynn.from_torch and Sequential.state_dict / load_state_dict against the real
torch: PyTorch's key names and layouts, round trips bitwise, the torch module computing what
pynn computes, bad modules named, nothing changed by a state_dict that does not fit.

torch is installed by .ci/run; on a developer's machine without it these tests skip, in CI
(CI=true) they fail instead. The state_dict tests need no torch.
"""
import importlib
import os
import sys

import numpy as np
import pytest

import pynn

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
TORCH_ACTIVATIONS = ["identity", "relu", "leaky_relu", "sigmoid", "tanh", "softmax"]


def need_torch():
    try:
        return importlib.import_module("torch")
    except ImportError:
        if IN_CI:
            raise
        pytest.skip("torch is not installed (pip install torch)")


def model_with(activation, dtype, alpha=0.1, seed=0):
    return pynn.Sequential([pynn.Dense(7, 9, activation, alpha=alpha),
                            pynn.Dense(9, 5, activation, alpha=alpha), pynn.Dense(5, 3)],
                           seed=seed, dtype=dtype)


def X_for(model, n=200, seed=1):
    return np.random.default_rng(seed).normal(size=(n, model.in_features)).astype(model.dtype)


# ---- state_dict: PyTorch's names and layouts (no torch needed) ------------------------------

def test_state_dict_keys_count_activation_modules():
    model = pynn.Sequential([pynn.Dense(4, 6, "relu"), pynn.Dense(6, 5), pynn.Dense(5, 3, "tanh"),
                             pynn.Dense(3, 2)], seed=0)
    state = model.state_dict()
    assert list(state) == ["0.weight", "0.bias", "2.weight", "2.bias", "3.weight", "3.bias",
                           "5.weight", "5.bias"]
    for layer, key in zip(model.layers, ["0", "2", "3", "5"]):
        assert state[f"{key}.weight"].shape == (layer.out_features, layer.in_features)
        assert state[f"{key}.weight"].flags.c_contiguous
        np.testing.assert_array_equal(state[f"{key}.weight"], layer.W.T)
        np.testing.assert_array_equal(state[f"{key}.bias"], layer.b)
    state["0.bias"][0] = 99.0  # copies, not views
    assert model.layers[0].b[0] != 99.0


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_load_state_dict_round_trip_is_bitwise(dtype):
    model = model_with("relu", dtype)
    other = pynn.Sequential([pynn.Dense(9, "relu"), pynn.Dense(5, "relu"), pynn.Dense(3)],
                            dtype=dtype)  # unbuilt: the input size comes from "0.weight"
    other.load_state_dict(model.state_dict())
    assert other.built and other.in_features == 7
    assert other.params.tobytes() == model.params.tobytes()
    X = X_for(model)
    assert other(X).tobytes() == model(X).tobytes()


def test_load_state_dict_checks_everything_before_changing_anything():
    model = model_with("tanh", "float32")
    before = model.params.copy()
    good = model_with("tanh", "float32", seed=5).state_dict()
    cases = [
        ({k: v for k, v in good.items() if k != "2.bias"}, ValueError,
         r"missing keys \[.2.bias.\]"),
        ({**good, "7.weight": good["0.weight"]}, ValueError, r"unexpected keys \['7.weight'\]"),
        ({**good, "4.weight": good["4.weight"].T}, ValueError, r"'4.weight'.*shape \(3, 5\)"),
        ({**good, "4.bias": np.array([1.0, np.nan, 2.0])}, ValueError, "'4.bias'.*NaN"),
        ({**good, "4.bias": np.array([1.0, 1e300, 2.0])}, ValueError, r"'4.bias'\] overflows"),
        ({**good, "2.bias": np.array(["a"] * 5)}, TypeError, "'2.bias'.*real numbers"),
    ]
    for state, error, message in cases:
        with pytest.raises(error, match=message):
            model.load_state_dict(state)
        assert model.params.tobytes() == before.tobytes()
    with pytest.raises(TypeError, match="mapping"):
        model.load_state_dict([1, 2])
    with pytest.raises(ValueError, match="parameters"):
        pynn.Sequential([pynn.Dense(3, "relu")]).state_dict()


# ---- to_torch / from_torch --------------------------------------------------------------------

@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("activation", TORCH_ACTIVATIONS)
def test_to_torch_computes_what_pynn_computes(activation, dtype):
    torch = need_torch()
    model = model_with(activation, dtype)
    module = pynn.to_torch(model)
    assert isinstance(module, torch.nn.Sequential)
    assert all(p.dtype == (torch.float64 if dtype == "float64" else torch.float32)
               for p in module.parameters())
    state = module.state_dict()
    assert list(state) == list(model.state_dict())
    for key, value in model.state_dict().items():
        assert state[key].numpy().tobytes() == value.tobytes()
    for n in (1, 200):
        X = X_for(model, n)
        with torch.no_grad():
            got = module(torch.from_numpy(X)).numpy()
        want = model(X)
        tol = 1e-12 if dtype == "float64" else 1e-5
        np.testing.assert_allclose(got, want, rtol=tol, atol=tol * np.abs(want).max())


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("activation", TORCH_ACTIVATIONS)
def test_round_trip_through_torch_is_bitwise(activation, dtype):
    need_torch()
    model = model_with(activation, dtype).compile(loss="cross_entropy")
    back = pynn.from_torch(pynn.to_torch(model))
    assert back.dtype == model.dtype
    assert [layer.get_config() for layer in back.layers] == \
        [layer.get_config() for layer in model.layers]
    assert back.params.tobytes() == model.params.tobytes()
    X = X_for(model)
    assert back(X).tobytes() == model(X).tobytes()
    back.compile(loss="cross_entropy")
    assert (back.predict(X) == model.predict(X)).all()


def test_from_torch_reads_a_module_built_in_torch():
    torch = need_torch()
    nn = torch.nn
    gen = torch.Generator().manual_seed(0)
    module = nn.Sequential(nn.Linear(6, 8), nn.LeakyReLU(0.2), nn.Identity(),
                           nn.Sequential(nn.Linear(8, 4, bias=False), nn.Softmax(dim=1)),
                           nn.Linear(4, 2)).double()
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=gen, dtype=torch.float64))
    model = pynn.from_torch(module)
    assert [(d.in_features, d.out_features, d.activation) for d in model.layers] == \
        [(6, 8, "leaky_relu"), (8, 4, "softmax"), (4, 2, "identity")]
    assert model.layers[0].alpha == 0.2 and model.dtype == np.float64
    assert (model.layers[1].b == 0).all()
    X = np.random.default_rng(0).normal(size=(50, 6))
    with torch.no_grad():
        want = module(torch.from_numpy(X)).numpy()
    np.testing.assert_allclose(model(X), want, rtol=1e-12, atol=1e-12)
    # and back: a Sequential laid out as to_torch lays it out takes model.state_dict() as is
    again = nn.Sequential(nn.Linear(6, 8), nn.LeakyReLU(0.2), nn.Linear(8, 4), nn.Softmax(-1),
                          nn.Linear(4, 2)).double()
    again.load_state_dict({k: torch.from_numpy(v) for k, v in model.state_dict().items()})
    with torch.no_grad():
        assert again(torch.from_numpy(X)).numpy().tobytes() == \
            pynn.to_torch(model)(torch.from_numpy(X)).detach().numpy().tobytes()


def test_load_state_dict_takes_torch_tensors():
    torch = need_torch()
    module = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh(), torch.nn.Linear(4, 2))
    model = pynn.Sequential([pynn.Dense(3, 4, "tanh"), pynn.Dense(4, 2)])
    model.load_state_dict(module.state_dict())  # float32 tensors that require grad
    for layer, linear in zip(model.layers, [module[0], module[2]]):
        assert layer.W.tobytes() == linear.weight.detach().numpy().T.copy().tobytes()
    half = {k: v.to(torch.bfloat16) for k, v in module.state_dict().items()}
    model.load_state_dict(half)  # dtypes NumPy lacks are read exactly through float64
    assert model.layers[0].b.tobytes() == \
        half["0.bias"].float().numpy().tobytes()


def test_training_continues_in_torch_and_comes_back():
    torch = need_torch()
    rng = np.random.default_rng(0)
    X = rng.normal(size=(64, 5))
    y = (X[:, 0] > 0).astype(np.int64)
    model = pynn.Sequential([pynn.Dense(5, 8, "relu"), pynn.Dense(8, 2)], seed=0,
                            dtype="float64")
    model.fit(X, y, loss="cross_entropy", epochs=2, batch_size=16)
    module = pynn.to_torch(model)
    opt = torch.optim.SGD(module.parameters(), lr=0.1)
    loss = torch.nn.functional.cross_entropy(module(torch.from_numpy(X)), torch.from_numpy(y))
    loss.backward()
    opt.step()
    back = pynn.from_torch(module)
    with torch.no_grad():
        want = module(torch.from_numpy(X)).numpy()
    np.testing.assert_allclose(back(X), want, rtol=1e-12, atol=1e-12)


def test_to_torch_refuses_what_torch_cannot_express():
    need_torch()
    model = pynn.Sequential([pynn.Dense(4, 3, "step"), pynn.Dense(3, 2)], seed=0)
    with pytest.raises(ValueError, match=r"layers\[0\].*'step'"):
        pynn.to_torch(model)
    with pytest.raises(ValueError, match="parameters"):
        pynn.to_torch(pynn.Sequential([pynn.Dense(3, "relu")]))
    with pytest.raises(TypeError, match="pynn.Sequential"):
        pynn.to_torch("model")


def test_from_torch_names_the_module_it_cannot_take():
    torch = need_torch()
    nn = torch.nn
    cases = [
        (nn.Sequential(nn.Linear(3, 4), nn.GELU()), "'1' \\(GELU\\) has no pynn layer"),
        (nn.Sequential(nn.Linear(3, 4), nn.Softmax(dim=0)), "Softmax\\(dim=0\\)"),
        (nn.Sequential(nn.Linear(3, 4), nn.Linear(5, 2)), "'1' \\(Linear\\) takes 5 inputs"),
        (nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(5)), "'1' \\(BatchNorm\\) takes 5"),
        (nn.Sequential(nn.Sequential(nn.Linear(3, 4), nn.ELU())), "'0.1' \\(ELU\\)"),
        (nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4, momentum=None)), "momentum=None"),
        (nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4, affine=False)), "affine=False"),
        (nn.Sequential(nn.LayerNorm((2, 2))), "LayerNorm\\(\\(2, 2\\)"),
        (nn.Sequential(nn.ReLU(), nn.Dropout(0.5)), "unknown width"),
        (nn.Sequential(), "no layer"),
    ]
    for module, message in cases:
        with pytest.raises(ValueError, match=message):
            pynn.from_torch(module)
    with pytest.raises(TypeError, match="float32 or float64"):
        pynn.from_torch(nn.Linear(3, 2).half())
    assert pynn.from_torch(nn.Linear(3, 2).half(), dtype="float32").dtype == np.float32
    with pytest.raises(TypeError, match="torch.nn.Module"):
        pynn.from_torch([nn.Linear(3, 2)])


def test_to_torch_leaves_torch_global_generator_alone():
    torch = need_torch()
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    pynn.to_torch(model_with("relu", "float32"))
    assert torch.equal(torch.rand(3), expected)


def test_missing_torch_names_the_pip_package(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)
    with pytest.raises(ImportError, match="pip install torch") as info:
        pynn.to_torch(model_with("relu", "float32"))
    assert "pynn[" not in str(info.value)
    with pytest.raises(ImportError, match="pip install torch"):
        pynn.from_torch(object())
