"""RMSprop and Adagrad: the fused steps against pynn.reference (every ISA path, odd sizes,
float32/float64), 1 vs 2 threads bitwise, PyTorch's trajectories (ops and a whole model in
float64), the optimizer objects (state, save/load, continue), bad input leaving buffers
unchanged."""
import numpy as np
import pytest

import pynn
from pynn import ops
from pynn import reference as ref

DTYPES = [np.float32, np.float64]
SIZES = [1, 7, 33, 1000, 100_003]
# RMSprop's first steps are ~lr * 10 per entry (g / sqrt(0.01 g^2)): float32 entries of O(10)
# cancel, so the absolute tolerance is a few ulp of 10
TOL = {np.float32: {"rtol": 1e-5, "atol": 2e-5}, np.float64: {"rtol": 1e-13, "atol": 1e-13}}
RMSPROP_CONFIGS = [{}, {"centered": True}, {"momentum": 0.9},
                   {"centered": True, "momentum": 0.5, "weight_decay": 0.01, "alpha": 0.9}]
ADAGRAD_CONFIGS = [{}, {"lr_decay": 0.1, "weight_decay": 0.01}]


def _rmsprop_buffers(p, config):
    v = np.zeros_like(p)
    gavg = np.zeros_like(p) if config.get("centered") else None
    buf = np.zeros_like(p) if config.get("momentum") else None
    return v, gavg, buf


def _rmsprop_kwargs(config):
    return {k: v for k, v in config.items() if k != "centered"}


@pytest.mark.parametrize("config", RMSPROP_CONFIGS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("size", SIZES)
def test_rmsprop_matches_reference(isa, rng, size, dtype, config):
    p = rng.normal(size=size).astype(dtype)
    p_ref = p.copy()
    state, state_ref = _rmsprop_buffers(p, config), _rmsprop_buffers(p, config)
    for _ in range(3):
        g = rng.normal(size=size).astype(dtype)
        ops.rmsprop_step(p, g, *state, lr=0.01, **_rmsprop_kwargs(config))
        ref.rmsprop_step(p_ref, g, *state_ref, lr=0.01, **_rmsprop_kwargs(config))
    np.testing.assert_allclose(p, p_ref, **TOL[dtype])
    for got, want in zip(state, state_ref):
        if got is not None:
            np.testing.assert_allclose(got, want, **TOL[dtype])


@pytest.mark.parametrize("config", ADAGRAD_CONFIGS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("size", SIZES)
def test_adagrad_matches_reference(isa, rng, size, dtype, config):
    p = rng.normal(size=size).astype(dtype)
    s = np.full_like(p, 0.1)
    p_ref, s_ref = p.copy(), s.copy()
    for step in range(1, 4):
        g = rng.normal(size=size).astype(dtype)
        ops.adagrad_step(p, g, s, step=step, lr=0.05, **config)
        ref.adagrad_step(p_ref, g, s_ref, step=step, lr=0.05, **config)
    np.testing.assert_allclose(p, p_ref, **TOL[dtype])
    np.testing.assert_allclose(s, s_ref, **TOL[dtype])


@pytest.mark.parametrize("dtype", DTYPES)
def test_one_and_two_threads_bitwise_identical(threads, rng, dtype):
    size = (1 << 20) + 3
    p0 = rng.normal(size=size).astype(dtype)
    g = rng.normal(size=size).astype(dtype)
    results = []
    for n in (1, 2):
        threads(n)
        p, (v, gavg, buf) = p0.copy(), _rmsprop_buffers(p0, {"centered": True, "momentum": 0.9})
        ops.rmsprop_step(p, g, v, gavg, buf, lr=0.01, momentum=0.9, weight_decay=1e-3)
        q, s = p0.copy(), np.abs(p0)
        ops.adagrad_step(q, g, s, step=3, lr=0.1, lr_decay=0.01)
        results.append((p, v, gavg, buf, q, s))
    for a, b in zip(*results):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("config", RMSPROP_CONFIGS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_rmsprop_follows_torch(rng, dtype, config):
    torch = pytest.importorskip("torch")
    p0 = rng.normal(size=64).astype(dtype)
    pt = torch.tensor(p0, requires_grad=True)
    opt = torch.optim.RMSprop([pt], lr=0.01, **config)
    p, state = p0.copy(), _rmsprop_buffers(p0, config)
    for _ in range(6):
        g = rng.normal(size=64).astype(dtype)
        pt.grad = torch.tensor(g)
        opt.step()
        ops.rmsprop_step(p, g, *state, lr=0.01, **_rmsprop_kwargs(config))
    tol = {"rtol": 1e-5, "atol": 1e-6} if dtype == np.float32 else {"rtol": 1e-13, "atol": 1e-14}
    np.testing.assert_allclose(p, pt.detach().numpy(), **tol)


@pytest.mark.parametrize("config", ADAGRAD_CONFIGS + [{"initial_accumulator_value": 0.3}])
@pytest.mark.parametrize("dtype", DTYPES)
def test_adagrad_follows_torch(rng, dtype, config):
    torch = pytest.importorskip("torch")
    p0 = rng.normal(size=64).astype(dtype)
    pt = torch.tensor(p0, requires_grad=True)
    opt = torch.optim.Adagrad([pt], lr=0.05, **config)
    kwargs = dict(config)
    s = np.full_like(p0, kwargs.pop("initial_accumulator_value", 0.0))
    p = p0.copy()
    for step in range(1, 7):
        g = rng.normal(size=64).astype(dtype)
        pt.grad = torch.tensor(g)
        opt.step()
        ops.adagrad_step(p, g, s, step=step, lr=0.05, **kwargs)
    tol = {"rtol": 1e-5, "atol": 1e-6} if dtype == np.float32 else {"rtol": 1e-13, "atol": 1e-14}
    np.testing.assert_allclose(p, pt.detach().numpy(), **tol)


# ---- the optimizer objects on a whole model -----------------------------------------------------

def _data(rng):
    X = rng.normal(size=(96, 5))
    return X, (X[:, 0] + X[:, 1] > 0).astype(np.int64) + (X[:, 2] > 1)


def _model():
    return pynn.Sequential([pynn.Dense(5, 8, "tanh"), pynn.Dense(8, 3)], seed=4, dtype="float64")


@pytest.mark.parametrize("make", [
    lambda: (pynn.RMSprop(0.01, momentum=0.5, centered=True, weight_decay=1e-3),
             "RMSprop", {"lr": 0.01, "momentum": 0.5, "centered": True, "weight_decay": 1e-3}),
    lambda: (pynn.RMSprop(0.02), "RMSprop", {"lr": 0.02}),
    lambda: (pynn.Adagrad(0.1, lr_decay=0.01, initial_accumulator_value=0.2), "Adagrad",
             {"lr": 0.1, "lr_decay": 0.01, "initial_accumulator_value": 0.2}),
])
def test_model_training_follows_torch(rng, make):
    """Same weights, same batches: pynn's fit and torch's loop end at the same weights."""
    torch = pytest.importorskip("torch")
    ours, torch_name, config = make()
    X, y = _data(rng)
    model = _model()
    net = pynn.to_torch(model)
    opt = getattr(torch.optim, torch_name)(net.parameters(), **config)
    model.fit(X, y, loss="cross_entropy", optimizer=ours, epochs=3, batch_size=32,
              shuffle=False, verbose=0)
    for _ in range(3):
        for lo in range(0, 96, 32):
            opt.zero_grad()
            out = net(torch.from_numpy(X[lo:lo + 32]))
            torch.nn.functional.cross_entropy(out, torch.from_numpy(y[lo:lo + 32])).backward()
            opt.step()
    theirs = pynn.from_torch(net)
    np.testing.assert_allclose(model.params, theirs.params, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("make", [lambda: pynn.RMSprop(0.01, momentum=0.9, centered=True),
                                  lambda: pynn.Adagrad(0.05, initial_accumulator_value=0.1)])
def test_save_load_and_pickle_continue_bitwise(tmp_path, rng, make):
    import pickle

    X, y = _data(rng)
    model = _model()
    model.fit(X, y, loss="cross_entropy", optimizer=make(), epochs=2, batch_size=16, verbose=0)
    pynn.save(model, tmp_path / "m.npz")
    loaded = pynn.load(tmp_path / "m.npz")
    assert type(loaded.optimizer) is type(model.optimizer)
    assert loaded.optimizer.get_config() == model.optimizer.get_config()
    unpickled = pickle.loads(pickle.dumps(model))
    model.fit(X, y, epochs=2, batch_size=16, verbose=0)
    for again in (loaded, unpickled):
        again.fit(X, y, epochs=2, batch_size=16, verbose=0)
        assert again.params.tobytes() == model.params.tobytes()


def test_by_name_and_repr():
    assert isinstance(pynn.optim.get("rmsprop"), pynn.RMSprop)
    assert isinstance(pynn.optim.get("adagrad"), pynn.Adagrad)
    assert repr(pynn.RMSprop(0.01, centered=True)) == \
        "RMSprop(lr=0.01, alpha=0.99, eps=1e-08, centered=True)"
    assert repr(pynn.Adagrad()) == "Adagrad(lr=0.01, eps=1e-10)"
    assert pynn.optim.get(pynn.RMSprop(0.3, momentum=0.2).get_config()).get_config() == \
        pynn.RMSprop(0.3, momentum=0.2).get_config()


# ---- bad input ------------------------------------------------------------------------------------

@pytest.mark.parametrize("make,exc,words", [
    (lambda: pynn.RMSprop(0.0), ValueError, "lr must be > 0"),
    (lambda: pynn.RMSprop(alpha=1.0), ValueError, r"alpha must be in \[0, 1\)"),
    (lambda: pynn.RMSprop(eps=0.0), ValueError, "eps must be > 0"),
    (lambda: pynn.RMSprop(momentum=-0.1), ValueError, r"momentum must be in \[0, 1\)"),
    (lambda: pynn.RMSprop(centered=1), TypeError, "centered must be a bool"),
    (lambda: pynn.RMSprop(weight_decay="0.1"), TypeError, "weight_decay must be a real number"),
    (lambda: pynn.Adagrad(lr_decay=-1.0), ValueError, "lr_decay must be >= 0"),
    (lambda: pynn.Adagrad(initial_accumulator_value=float("nan")), ValueError,
     "initial_accumulator_value"),
    (lambda: pynn.Adagrad(eps=-1.0), ValueError, "eps must be > 0"),
])
def test_bad_hyperparameters(make, exc, words):
    with pytest.raises(exc, match=words):
        make()


def _unchanged_after(exc, match, fn, buffers, *args, **kwargs):
    before = [b.copy() for b in buffers]
    with pytest.raises(exc, match=match):
        fn(*args, **kwargs)
    for b, was in zip(buffers, before):
        np.testing.assert_array_equal(b, was)


def test_bad_step_arguments(rng):
    p, g, v, a, b = (rng.normal(size=10) for _ in range(5))
    bufs = [p, g, v, a, b]
    rms = ops.rmsprop_step
    _unchanged_after(ValueError, "buf must be an array when momentum", rms, bufs, p, g, v,
                     momentum=0.5)
    _unchanged_after(ValueError, "v and gavg must not overlap", rms, bufs, p, g, v, v)
    _unchanged_after(ValueError, "gavg must have the shape of params", rms, bufs, p, g, v, a[:3])
    _unchanged_after(ValueError, r"alpha must be in \[0, 1\]", rms, bufs, p, g, v, alpha=1.5)
    _unchanged_after(ValueError, "eps must be in", rms, bufs, p, g, v, eps=0.0)
    _unchanged_after(TypeError, "v must have the dtype of params", rms, bufs, p, g,
                     v.astype(np.float32))
    ada = ops.adagrad_step
    _unchanged_after(ValueError, "step must be >= 1", ada, bufs, p, g, v, step=0)
    _unchanged_after(TypeError, "step must be an int", ada, bufs, p, g, v, step=2.0)
    _unchanged_after(ValueError, "lr_decay must be in", ada, bufs, p, g, v, step=1, lr_decay=-1)
    _unchanged_after(ValueError, "params and state_sum must not overlap", ada, bufs, p, g, p,
                     step=1)
