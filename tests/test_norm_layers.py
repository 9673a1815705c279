"""Activation, Dropout, BatchNorm, LayerNorm layers, Dense l1/l2 and gradient clipping: the C
kernels against pynn.reference (float32/float64, odd shapes, every ISA path, 1 vs 2 threads
bitwise), gradcheck in every position, PyTorch parity in float64 (forward, gradients, running
statistics after SGD steps), dropout statistics and determinism, save/load/pickle, bad input."""
import copy
import pickle

import numpy as np
import pytest

import pynn
from pynn import ops
from pynn import reference as ref

DTYPES = [np.float32, np.float64]
SHAPES = [(2, 1), (3, 7), (17, 33), (128, 10), (64, 513)]
TOL = {np.float32: {"rtol": 2e-5, "atol": 2e-5}, np.float64: {"rtol": 1e-12, "atol": 1e-12}}


def _close(got, want, dtype):
    np.testing.assert_allclose(got, want, **TOL[dtype])


# ---- kernels against the NumPy reference ---------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
def test_batchnorm_kernels_match_reference(isa, rng, shape, dtype):
    x = (rng.normal(size=shape) * 3 + 1).astype(dtype)
    gamma = rng.uniform(0.5, 2, shape[1]).astype(dtype)
    beta = rng.normal(size=shape[1]).astype(dtype)
    y, xhat, mean, var, invstd = ops.batchnorm_forward(x, gamma, beta, eps=1e-3)
    want = ref.batchnorm_forward(x, gamma, beta, 1e-3)
    for got, expected in zip((y, xhat, mean, var, invstd), want):
        _close(got, expected, dtype)
    dy = rng.normal(size=shape).astype(dtype)
    for got, expected in zip(ops.batchnorm_backward(dy, xhat, gamma, invstd),
                             ref.batchnorm_backward(dy, xhat, gamma, invstd)):
        _close(got, expected, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
def test_layernorm_kernels_match_reference(isa, rng, shape, dtype):
    x = (rng.normal(size=shape) * 3 - 2).astype(dtype)
    gamma = rng.uniform(0.5, 2, shape[1]).astype(dtype)
    beta = rng.normal(size=shape[1]).astype(dtype)
    y, xhat, invstd = ops.layernorm_forward(x, gamma, beta)
    want = ref.layernorm_forward(x, gamma, beta)
    for got, expected in zip((y, xhat, invstd), want):
        _close(got, expected, dtype)
    dy = rng.normal(size=shape).astype(dtype)
    for got, expected in zip(ops.layernorm_backward(dy, xhat, gamma, invstd),
                             ref.layernorm_backward(dy, xhat, gamma, invstd)):
        _close(got, expected, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("rate", [0.0, 0.1, 0.5, 0.9])
def test_dropout_kernel_matches_reference(isa, rng, dtype, rate):
    x = rng.normal(size=(37, 129)).astype(dtype)
    got = ops.dropout(x, rate, key=12345, counter=7)
    np.testing.assert_array_equal(got, ref.dropout(x, rate, 12345, 7))
    # the mask changes with the counter and the key, not with anything else
    assert rate == 0 or not np.array_equal(got, ops.dropout(x, rate, key=12345, counter=8))
    assert rate == 0 or not np.array_equal(got, ops.dropout(x, rate, key=12346, counter=7))


@pytest.mark.parametrize("rate", [0.1, 0.5, 0.8])
def test_dropout_kept_fraction_within_statistical_bounds(rate):
    n = 1_000_000
    kept = pynn._core.dropout_kept(n, rate, 99, 3)
    sd = np.sqrt(n * rate * (1 - rate))
    assert abs(kept - n * (1 - rate)) < 5 * sd
    y = ops.dropout(np.ones(n), rate, key=99, counter=3)
    assert np.count_nonzero(y) == kept
    np.testing.assert_allclose(y[y != 0], 1 / (1 - rate))


@pytest.mark.parametrize("dtype", DTYPES)
def test_kernels_bitwise_at_one_and_two_threads(threads, rng, dtype):
    x = rng.normal(size=(1031, 257)).astype(dtype)
    gamma, beta = np.ones(257, dtype), np.zeros(257, dtype)
    dy = rng.normal(size=x.shape).astype(dtype)
    results = []
    for n in (1, 2):
        threads(n)
        bn = ops.batchnorm_forward(x, gamma, beta)
        bnb = ops.batchnorm_backward(dy, bn[1], gamma, bn[4])
        ln = ops.layernorm_forward(x, gamma, beta)
        lnb = ops.layernorm_backward(dy, ln[1], gamma, ln[2])
        results.append(list(bn) + list(bnb) + list(ln) + list(lnb)
                       + [ops.dropout(x, 0.3, key=1, counter=2)])
    for a, b in zip(*results):
        np.testing.assert_array_equal(a, b)


def test_kernel_bad_input():
    x = np.zeros((4, 3))
    with pytest.raises(ValueError, match=r"gamma must have shape \(3,\)"):
        ops.batchnorm_forward(x, np.ones(2), np.zeros(3))
    with pytest.raises(TypeError, match="gamma must have dtype float64"):
        ops.layernorm_forward(x, np.ones(3, np.float32), np.zeros(3))
    with pytest.raises(ValueError, match=r"rate must be in \[0, 1\)"):
        ops.dropout(x, 1.0, key=0, counter=0)
    with pytest.raises(ValueError, match="key must be in"):
        ops.dropout(x, 0.5, key=-1, counter=0)
    with pytest.raises(ValueError, match="eps must be"):
        ops.batchnorm_forward(x, np.ones(3), np.zeros(3), eps=0.0)
    with pytest.raises(ValueError, match="invstd must have shape"):
        ops.batchnorm_backward(x, x, np.ones(3), np.ones(4))


# ---- gradcheck in every position ------------------------------------------------------------------

def _layers(kind):
    if kind == "batchnorm":
        return pynn.BatchNorm(momentum=0.3)
    if kind == "layernorm":
        return pynn.LayerNorm(eps=1e-3)
    if kind == "activation":
        return pynn.Activation("tanh")
    return pynn.Dropout(0.4)


@pytest.mark.parametrize("kind", ["batchnorm", "layernorm", "activation", "dropout"])
@pytest.mark.parametrize("position", ["first", "middle", "before_output"])
def test_gradcheck_in_every_position(rng, kind, position):
    X = rng.normal(size=(11, 5))
    y = rng.integers(0, 3, 11)
    if position == "first":
        layers = [pynn.Input(5), _layers(kind), pynn.Dense(5, 7, "tanh"), pynn.Dense(7, 3)]
    elif position == "middle":
        layers = [pynn.Dense(5, 7), _layers(kind), pynn.Dense(7, 6, "sigmoid"),
                  pynn.Dense(6, 3)]
    else:
        layers = [pynn.Dense(5, 7, "tanh"), pynn.Dense(7, 6), _layers(kind), pynn.Dense(6, 3)]
    model = pynn.Sequential(layers, seed=3, dtype="float64")
    for layer in model.layers:  # non-trivial gamma and beta
        if isinstance(layer, (pynn.BatchNorm, pynn.LayerNorm)):
            layer.gamma = rng.uniform(0.5, 1.5, layer.in_features)
            layer.beta = rng.normal(size=layer.in_features) * 0.1
    assert pynn.gradcheck(model, X, y, loss="cross_entropy") < 1e-6


def test_gradcheck_l1_l2_penalties(rng):
    X = rng.normal(size=(9, 4))
    y = rng.normal(size=(9, 2))
    model = pynn.Sequential([pynn.Dense(4, 6, "tanh", l1=0.01, l2=0.02),
                             pynn.Dense(6, 2, l2=0.5)], seed=2, dtype="float64")
    assert pynn.gradcheck(model, X, y, loss="mse") < 1e-6
    # and the penalty is in the reported loss (Keras' definition)
    plain = pynn.Sequential([pynn.Dense(4, 6, "tanh"), pynn.Dense(6, 2)], seed=2,
                            dtype="float64")
    penalty = (0.01 * np.abs(model.layers[0].W).sum() + 0.02 * (model.layers[0].W ** 2).sum()
               + 0.5 * (model.layers[1].W ** 2).sum())
    grad_model = pynn.model.gradcheck.analytic_gradient(model, X, y, "mse")
    grad_plain = pynn.model.gradcheck.analytic_gradient(plain, X, y, "mse")
    W0 = model.layers[0].W
    extra = (grad_model - grad_plain)[:W0.size].reshape(W0.shape)
    np.testing.assert_allclose(extra, 0.01 * np.sign(W0) + 0.04 * W0, rtol=1e-10, atol=1e-12)
    history = model.fit(X, y, loss="mse", optimizer=pynn.SGD(1e-12), epochs=1, batch_size=9)
    base = plain.evaluate(X, y, loss="mse")["loss"]
    np.testing.assert_allclose(history.history["loss"][0], base + penalty, rtol=1e-9)


# ---- PyTorch parity in float64 ----------------------------------------------------------------

@pytest.mark.parametrize("norm", ["batchnorm", "layernorm"])
def test_training_matches_torch(rng, norm):
    torch = pytest.importorskip("torch")
    X = rng.normal(size=(96, 6)) * 2 + 0.5
    y = rng.integers(0, 4, 96)
    layer = pynn.BatchNorm(momentum=0.2) if norm == "batchnorm" else pynn.LayerNorm()
    model = pynn.Sequential([pynn.Dense(6, 10), layer, pynn.Activation("relu"),
                             pynn.Dense(10, 4)], seed=1, dtype="float64")
    model.layers[1].gamma = rng.uniform(0.5, 1.5, 10)
    model.layers[1].beta = rng.normal(size=10) * 0.2
    net = pynn.to_torch(model)
    net.train()
    # one forward and backward (on a copy: torch's forward moves the running statistics)
    probe = copy.deepcopy(net)
    xt = torch.from_numpy(X[:32])
    loss = torch.nn.functional.cross_entropy(probe(xt), torch.from_numpy(y[:32]))
    loss.backward()
    grads = pynn.model.gradcheck.analytic_gradient(model, X[:32], y[:32], "cross_entropy")
    theirs = np.concatenate([p.grad.numpy().T.ravel() if p.ndim == 2 else p.grad.numpy()
                             for p in probe.parameters()])
    np.testing.assert_allclose(grads, theirs, rtol=1e-10, atol=1e-12)
    # SGD with momentum over three epochs: weights and running statistics
    opt = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9)
    for _ in range(3):
        for lo in range(0, 96, 32):
            opt.zero_grad()
            torch.nn.functional.cross_entropy(net(torch.from_numpy(X[lo:lo + 32])),
                                              torch.from_numpy(y[lo:lo + 32])).backward()
            opt.step()
    model.fit(X, y, loss="cross_entropy", optimizer=pynn.SGD(0.05, momentum=0.9), epochs=3,
              batch_size=32, shuffle=False)
    back = pynn.from_torch(net)
    for ours, torch_side in zip(model.get_weights(), back.get_weights()):
        np.testing.assert_allclose(ours, torch_side, rtol=1e-10, atol=1e-12)
    net.eval()
    np.testing.assert_allclose(model(X), net(torch.from_numpy(X)).detach().numpy(),
                               rtol=1e-10, atol=1e-12)
    if norm == "batchnorm":
        assert model.layers[1].batches_tracked == 9 == int(net[1].num_batches_tracked)


def test_dropout_matches_torch_with_the_same_mask(rng):
    """With torch given pynn's mask, one step is the same: the scaling and the backward."""
    torch = pytest.importorskip("torch")
    X = rng.normal(size=(16, 5))
    y = rng.integers(0, 3, 16)
    model = pynn.Sequential([pynn.Dense(5, 8, "relu"), pynn.Dropout(0.5), pynn.Dense(8, 3)],
                            seed=0, dtype="float64")
    net = pynn.to_torch(model)
    trainer = pynn.engine.Trainer(model, pynn.losses.get("cross_entropy"))
    trainer.seed_dropout(77)
    grads_before = None
    value = trainer.forward_backward(X, y, None)
    grads = model.grads.copy()
    key = (77 * 0x9E3779B97F4A7C15 + 2) & ((1 << 64) - 1)  # the layer at position 1
    mask = ops.dropout(np.ones((16, 8)), 0.5, key=key, counter=0)
    h = torch.relu(net[0](torch.from_numpy(X))) * torch.from_numpy(mask)
    out = net[3](h)
    loss = torch.nn.functional.cross_entropy(out, torch.from_numpy(y))
    loss.backward()
    assert grads_before is None
    np.testing.assert_allclose(value, loss.item(), rtol=1e-12)
    theirs = np.concatenate([net[0].weight.grad.numpy().T.ravel(), net[0].bias.grad.numpy(),
                             net[3].weight.grad.numpy().T.ravel(), net[3].bias.grad.numpy()])
    np.testing.assert_allclose(grads, theirs, rtol=1e-10, atol=1e-12)


# ---- behaviour in fit / predict ----------------------------------------------------------------

def _data(rng, n=200):
    X = rng.normal(size=(n, 8))
    return X, ((X[:, 0] + X[:, 1] * X[:, 2]) > 0).astype(np.int64)


def _net(dtype="float32", seed=0):
    return pynn.Sequential([pynn.Dense(8, 32), pynn.BatchNorm(), pynn.Activation("relu"),
                            pynn.Dropout(0.3), pynn.Dense(32, 16, "tanh"), pynn.LayerNorm(),
                            pynn.Dense(16, 2, l2=1e-3)], seed=seed, dtype=dtype)


def test_dropout_is_identity_in_predict_and_evaluate(rng):
    X, y = _data(rng)
    model = pynn.Sequential([pynn.Dense(8, 16, "relu"), pynn.Dropout(0.9), pynn.Dense(16, 2)],
                            seed=0, dtype="float64")
    model.compile(loss="cross_entropy")
    no_dropout = pynn.Sequential([pynn.Dense(8, 16, "relu"), pynn.Dense(16, 2)], seed=0,
                                 dtype="float64")
    no_dropout.params[...] = model.params
    np.testing.assert_array_equal(model(X), no_dropout(X))
    np.testing.assert_array_equal(model(X), model(X))
    last = pynn.Sequential([pynn.Dense(8, 2), pynn.Dropout(0.5)], seed=0, dtype="float64")
    np.testing.assert_allclose(last(X), X @ last.layers[0].W + last.layers[0].b, rtol=1e-12)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_fit_bitwise_across_runs_and_thread_counts(threads, rng, dtype):
    X, y = _data(rng)
    results = []
    for n in (1, 2, 1):
        threads(n)
        model = _net(dtype)
        model.fit(X, y, loss="cross_entropy", optimizer=pynn.Adam(0.01, clipnorm=1.0),
                  epochs=3, batch_size=32, seed=11)
        results.append([model.params.copy()] + [a.copy() for a in model.get_weights()])
    for other in results[1:]:
        for a, b in zip(results[0], other):
            np.testing.assert_array_equal(a, b)
    model = _net(dtype)
    model.fit(X, y, loss="cross_entropy", optimizer=pynn.Adam(0.01), epochs=3, batch_size=32,
              seed=12)
    assert not np.array_equal(model.params, results[0][0])  # another seed, other masks


def test_fit_learns_and_uses_running_statistics(rng):
    X, y = _data(rng, 400)
    model = _net("float64")
    history = model.fit(X, y, loss="cross_entropy", optimizer=pynn.Adam(0.01), epochs=15,
                        batch_size=32, validation_data=(X, y))
    assert history.history["val_accuracy"][-1] > 0.9
    bn = model.layers[1]
    assert bn.batches_tracked == 15 * 13
    assert not np.allclose(bn.running_mean, 0) and not np.allclose(bn.running_var, 1)
    # predict normalizes with the running statistics: a batch of one row works
    np.testing.assert_allclose(model(X[:1]), model(X)[:1], rtol=1e-12)


@pytest.mark.parametrize("suffix", ["npz", "safetensors"])
def test_save_load_pickle_and_continue(tmp_path, rng, suffix):
    X, y = _data(rng)
    model = _net()
    model.fit(X, y, loss="cross_entropy", optimizer=pynn.SGD(0.05, momentum=0.9,
                                                             clipvalue=0.5),
              epochs=2, batch_size=32)
    path = tmp_path / f"m.{suffix}"
    pynn.save(model, path)
    copies = [pynn.load(path), pickle.loads(pickle.dumps(model))]
    for other in copies:
        assert [repr(a) for a in other.layers] == [repr(a) for a in model.layers]
        for a, b in zip(other.get_weights(), model.get_weights()):
            np.testing.assert_array_equal(a, b)
        assert other.layers[1].batches_tracked == model.layers[1].batches_tracked
        np.testing.assert_array_equal(other.predict(X), model.predict(X))
    model.fit(X, y, epochs=1, batch_size=32, seed=4)
    for other in copies:
        other.fit(X, y, epochs=1, batch_size=32, seed=4)
        assert other.params.tobytes() == model.params.tobytes()
        np.testing.assert_array_equal(other.layers[1].running_var, model.layers[1].running_var)


def test_summary_config_and_keras_order(rng, capsys):
    model = pynn.Sequential([pynn.Input(8), pynn.Dense(16), pynn.BatchNorm(),
                             pynn.Activation("relu"), pynn.Dropout(0.25), pynn.Dense(2)],
                            seed=0)
    model.summary()
    out = capsys.readouterr().out
    for words in ("BatchNorm(16, momentum=0.1, eps=1e-05)", "Activation('relu')",
                  "Dropout(0.25)", "Total params: 210"):
        assert words in out
    again = pynn.Sequential.from_config(model.get_config())
    assert [repr(a) for a in again.layers] == [repr(a) for a in model.layers]
    weights = model.get_weights()
    assert [w.shape for w in weights] == [(8, 16), (16,), (16,), (16,), (16,), (16,), (16, 2),
                                          (2,)]
    weights[4][...] = 3.0  # running_mean
    model.set_weights(weights)
    np.testing.assert_array_equal(model.layers[1].running_mean, 3.0)


def test_exports_onnx(rng):
    ort = pytest.importorskip("onnxruntime")
    X, y = _data(rng)
    model = _net("float64")
    model.fit(X, y, loss="cross_entropy", epochs=2, batch_size=32)
    session = ort.InferenceSession(pynn.to_onnx(model, output="probabilities")
                                   .SerializeToString())
    got = session.run(None, {"X": X})[0]
    np.testing.assert_allclose(got, model.predict_proba(X), rtol=1e-9, atol=1e-12)


# ---- bad input ----------------------------------------------------------------------------------

@pytest.mark.parametrize("make,exc,words", [
    (lambda: pynn.Dropout(1.0), ValueError, r"Dropout: rate must be in \[0, 1\)"),
    (lambda: pynn.Dropout(-0.1), ValueError, "Dropout: rate must be a finite number >= 0"),
    (lambda: pynn.Dropout("0.5"), TypeError, "Dropout: rate must be a real number"),
    (lambda: pynn.BatchNorm(momentum=float("nan")), ValueError, "BatchNorm: momentum"),
    (lambda: pynn.BatchNorm(momentum=0.0), ValueError, r"momentum must be in \(0, 1\]"),
    (lambda: pynn.BatchNorm(eps=float("inf")), ValueError, "BatchNorm: eps"),
    (lambda: pynn.LayerNorm(eps=0.0), ValueError, "LayerNorm: eps must be > 0"),
    (lambda: pynn.Dense(3, 2, l1=-1.0), ValueError, "Dense: l1 must be a finite number >= 0"),
    (lambda: pynn.Dense(3, 2, l2=float("nan")), ValueError, "Dense: l2"),
    (lambda: pynn.Activation("step"), ValueError, "Activation: activation must be one of"),
    (lambda: pynn.SGD(0.1, clipnorm=0.0), ValueError, "clipnorm must be > 0"),
    (lambda: pynn.Adam(clipvalue=-1.0), ValueError, "clipvalue must be > 0"),
    (lambda: pynn.Sequential([pynn.Dense(3, 4), pynn.BatchNorm(5)]), ValueError,
     r"layers\[1\] BatchNorm has 5 features but layers\[0\] gives 4 outputs"),
    (lambda: pynn.Sequential([pynn.Dense(3, 4), pynn.LayerNorm(3), pynn.Dense(3, 2)]),
     ValueError, r"layers\[1\] LayerNorm has 3 features"),
])
def test_bad_arguments(make, exc, words):
    with pytest.raises(exc, match=words):
        make()


def test_batchnorm_refuses_batches_of_one_row_before_training(rng):
    X, y = _data(rng, 33)
    model = _net()
    before = model.params.copy()
    with pytest.raises(ValueError, match=r"layers\[1\] BatchNorm needs more than one row"):
        model.fit(X, y, loss="cross_entropy", epochs=1, batch_size=32)  # 33 = 32 + 1
    with pytest.raises(ValueError, match="more than one row"):
        model.fit(X, y, loss="cross_entropy", epochs=1, batch_size=1)
    np.testing.assert_array_equal(model.params, before)
    model.fit(X[:32], y[:32], loss="cross_entropy", epochs=1, batch_size=16)  # fine
