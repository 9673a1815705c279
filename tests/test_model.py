"""pynn.Sequential: training loop, predictions, checks, determinism, allocation, callbacks."""
import copy
import gc
import math
import multiprocessing
import pickle
import tracemalloc

import numpy as np
import pytest

import pynn


def blobs(n=240, d=6, classes=3, seed=0, dtype=np.float32):
    """Separable-ish synthetic classification data from a fixed random linear teacher
    (`seed` draws other samples of the same problem)."""
    teacher = np.random.default_rng(1234).standard_normal((d, classes))
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d)).astype(dtype)
    y = np.argmax(X @ teacher + 0.1 * rng.standard_normal((n, classes)), axis=1)
    return X, y


def mlp(d=6, hidden=16, out=3, seed=0, dtype="float32", activation="relu"):
    return pynn.Sequential([pynn.Dense(d, hidden, activation), pynn.Dense(hidden, hidden,
                                                                          activation),
                            pynn.Dense(hidden, out)], seed=seed, dtype=dtype)


# ---- construction and description ---------------------------------------------------------------
def test_layers_must_chain():
    with pytest.raises(ValueError, match=r"layers\[1\] takes 5 inputs but layers\[0\] gives 4"):
        pynn.Sequential([pynn.Dense(3, 4), pynn.Dense(5, 2)])
    with pytest.raises(ValueError, match="at least one"):
        pynn.Sequential([])
    with pytest.raises(TypeError, match=r"layers\[0\]"):
        pynn.Sequential(["dense"])
    with pytest.raises(ValueError, match="dtype"):
        pynn.Sequential([pynn.Dense(3, 4)], dtype="float16")
    with pytest.raises(TypeError, match="seed"):
        pynn.Sequential([pynn.Dense(3, 4)], seed=-1)


def test_repr_and_summary_count_parameters():
    model = pynn.Sequential([pynn.Dense(784, 256, "relu"), pynn.Dense(256, 128, "relu"),
                             pynn.Dense(128, 10)], seed=0)
    assert model.n_params == 784 * 256 + 256 + 256 * 128 + 128 + 128 * 10 + 10 == 235146
    text = repr(model)
    assert "params=235,146" in text and "(2): Dense(128, 10, activation='identity')" in text
    lines = []
    model.summary(print_fn=lines.append)
    table = "\n".join(lines)
    assert "200,960" in table and "Total params: 235,146" in table and "relu" in table


# ---- fitting ------------------------------------------------------------------------------------
def test_fit_learns_and_records_history():
    X, y = blobs()
    Xv, yv = blobs(seed=1)
    model = mlp()
    history = model.fit(X, y, loss="cross_entropy", optimizer=pynn.SGD(0.1, momentum=0.9),
                        epochs=15, batch_size=32, validation_data=(Xv, yv), seed=0)
    h = history.history
    assert set(h) == {"loss", "accuracy", "val_loss", "val_accuracy", "lr"}
    assert len(h["loss"]) == 15 and history.epoch == list(range(15))
    assert h["loss"][-1] < 0.5 * h["loss"][0]
    assert h["accuracy"][-1] > 0.9 and h["val_accuracy"][-1] > 0.8
    assert model.history is history
    scores = model.evaluate(Xv, yv)
    assert set(scores) == {"loss", "accuracy"}
    assert scores["loss"] == pytest.approx(h["val_loss"][-1], rel=1e-5)
    assert scores["accuracy"] == pytest.approx(h["val_accuracy"][-1])
    labels = model.predict(Xv)
    assert labels.shape == (len(Xv),) and labels.dtype.kind == "i"
    assert np.mean(labels == yv) == pytest.approx(scores["accuracy"])
    proba = model.predict_proba(Xv)
    assert proba.shape == (len(Xv), 3) and np.allclose(proba.sum(axis=1), 1, atol=1e-5)
    logits = model(Xv)
    assert np.array_equal(np.argmax(logits, axis=1), labels)


def test_evaluate_matches_a_direct_computation():
    X, y = blobs(n=50)
    model = mlp()
    model.compile(loss="cross_entropy")
    z = model(X).astype(np.float64)
    z -= z.max(axis=1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    want = -logp[np.arange(50), y].mean()
    scores = model.evaluate(X, y)
    assert scores["loss"] == pytest.approx(want, rel=1e-5)
    assert scores["accuracy"] == pytest.approx(np.mean(np.argmax(z, axis=1) == y))


@pytest.mark.parametrize("batch_size", [1, 7, 64, None, 10_000])
def test_batch_regimes(batch_size):
    """Online (1), mini-batch with a partial last batch (7), full batch (None, or larger)."""
    X, y = blobs(n=64)
    model = mlp()
    seen = []
    cb = pynn.LambdaCallback(on_batch_end=lambda b, logs: seen.append(logs["size"]))
    h = model.fit(X, y, loss="cross_entropy", optimizer=pynn.SGD(0.05), epochs=2,
                  batch_size=batch_size, callbacks=[cb])
    m = 64 if batch_size is None else min(batch_size, 64)
    per_epoch = [m] * (64 // m) + ([64 % m] if 64 % m else [])
    assert seen == per_epoch * 2
    assert h.params["batches"] == len(per_epoch)
    assert np.isfinite(model.params).all()


def test_one_hot_targets_train_like_labels():
    X, y = blobs()
    a, b = mlp(), mlp()
    a.fit(X, y, loss="cross_entropy", optimizer=pynn.SGD(0.1), epochs=2, seed=3)
    b.fit(X, np.eye(3)[y], loss="cross_entropy", optimizer=pynn.SGD(0.1), epochs=2, seed=3)
    np.testing.assert_allclose(a.params, b.params, rtol=1e-5, atol=1e-6)


def test_regression_with_mse():
    rng = np.random.default_rng(0)
    X = rng.uniform(-1, 1, (256, 2))
    y = np.sin(2 * X[:, 0]) + X[:, 1] ** 2
    model = pynn.Sequential([pynn.Dense(2, 32, "tanh"), pynn.Dense(32, 1)], seed=0,
                            dtype="float64")
    h = model.fit(X, y, loss="mse", optimizer=pynn.Adam(0.01), epochs=60, batch_size=32)
    assert "accuracy" not in h.history
    assert h.history["loss"][-1] < 0.02
    pred = model.predict(X)
    assert pred.shape == (256,) and pred.dtype == np.float64
    assert model.evaluate(X, y) == {"loss": pytest.approx(np.mean((pred - y) ** 2), rel=1e-9)}
    with pytest.raises(ValueError, match="predict_proba"):
        model.predict_proba(X)


def test_binary_cross_entropy_single_and_multi_output():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((200, 4)).astype(np.float32)
    y = (X[:, 0] + X[:, 1] > 0).astype(int)
    model = pynn.Sequential([pynn.Dense(4, 8, "relu"), pynn.Dense(8, 1)], seed=0)
    h = model.fit(X, y, loss="binary_cross_entropy", optimizer=pynn.SGD(0.2, momentum=0.9),
                  epochs=20, batch_size=20)
    assert h.history["accuracy"][-1] > 0.93
    assert model.predict(X).shape == (200,)
    p = model.predict_proba(X)
    assert p.shape == (200, 1) and np.all((p >= 0) & (p <= 1))
    multi = np.stack([y, 1 - y, (X[:, 2] > 0).astype(int)], axis=1)
    model = pynn.Sequential([pynn.Dense(4, 8, "relu"), pynn.Dense(8, 3)], seed=0)
    model.fit(X, multi, loss="binary_cross_entropy", optimizer=pynn.Adam(0.02), epochs=20)
    assert model.predict(X).shape == (200, 3)
    assert model.evaluate(X, multi)["accuracy"] > 0.9


def test_loss_instance_and_output_activation_conflicts():
    X, y = blobs(n=32)
    model = pynn.Sequential([pynn.Dense(6, 3, "softmax")], seed=0)
    with pytest.raises(ValueError, match="applies softmax itself"):
        model.fit(X, y, loss=pynn.CrossEntropy())
    model = pynn.Sequential([pynn.Dense(6, 1, "sigmoid")], seed=0)
    with pytest.raises(ValueError, match="applies sigmoid itself"):
        model.fit(X, y % 2, loss="binary_cross_entropy")
    # sigmoid outputs with mse are fine (no double application)
    model.fit(X, (y % 2).astype(float), loss="mse", optimizer=pynn.SGD(0.1))


def test_step_activation_predicts_but_refuses_training():
    X, y = blobs(n=32)
    model = pynn.Sequential([pynn.Dense(6, 4, "step"), pynn.Dense(4, 3)], seed=0)
    out = model(X)
    assert out.shape == (32, 3)
    hidden = (X @ model.layers[0].W + model.layers[0].b > 0).astype(np.float32)
    np.testing.assert_allclose(out, hidden @ model.layers[1].W + model.layers[1].b, rtol=1e-5,
                               atol=1e-6)
    with pytest.raises(ValueError, match="forward-only"):
        model.fit(X, y, loss="cross_entropy")


def test_predict_needs_a_loss():
    model = mlp()
    X, _ = blobs(n=4)
    with pytest.raises(ValueError, match="compile"):
        model.predict(X)
    model.compile(loss="cross_entropy")
    assert model.predict(X).shape == (4,)


# ---- bad inputs leave the model unchanged ---------------------------------------------------------
@pytest.mark.parametrize("change,exc,words", [
    (lambda X, y: (X[:, :5], y), ValueError, "6 features"),
    (lambda X, y: (X[0], y), ValueError, "reshape"),
    (lambda X, y: (X.astype(complex), y), TypeError, "real numbers"),
    (lambda X, y: (np.where(np.arange(len(X))[:, None] == 3, np.nan, X), y), ValueError,
     "X contains NaN"),
    (lambda X, y: (X[:0], y[:0]), ValueError, "at least one sample"),
    (lambda X, y: (X, y[:-1]), ValueError, "labels"),
    (lambda X, y: (X, y + 1), ValueError, r"labels must be in \[0, 3\)"),
    (lambda X, y: (X, y.astype(float) + 0.5), ValueError, "integer"),
])
def test_bad_data_is_refused_before_any_change(change, exc, words):
    X, y = blobs(n=40)
    model = mlp()
    before = model.params.copy()
    Xb, yb = change(X, y)
    with pytest.raises(exc, match=words):
        model.fit(Xb, yb, loss="cross_entropy", optimizer=pynn.SGD(0.1))
    assert np.array_equal(model.params, before)
    assert model.loss is None and model.optimizer is None and model.history is None


@pytest.mark.parametrize("kwargs,exc,words", [
    ({"batch_size": 0}, ValueError, "batch_size must be >= 1"),
    ({"batch_size": 2.5}, TypeError, "batch_size"),
    ({"epochs": -1}, ValueError, "epochs must be >= 0"),
    ({"loss": "crossentropy"}, ValueError, "loss must be one of"),
    ({"optimizer": "adadelta"}, ValueError, "optimizer must be one of"),
    ({"validation_split": 1.0}, ValueError, "validation_split"),
    ({"validation_data": ([1, 2],)}, TypeError, "validation_data"),
    ({"validation_data": (np.zeros((4, 6)), [0, 1, 2, 5])}, ValueError, r"y_val.*labels"),
    ({"callbacks": [print]}, TypeError, r"callbacks\[0\]"),
    ({"shuffle": "yes"}, TypeError, "shuffle"),
    ({"sample_weight": np.ones(3)}, ValueError, "sample_weight"),
    ({"seed": 1.5}, TypeError, "seed"),
])
def test_bad_arguments_are_refused_before_any_change(kwargs, exc, words):
    X, y = blobs(n=40)
    model = mlp()
    before = model.params.copy()
    args = {"loss": "cross_entropy", "optimizer": pynn.SGD(0.1)}
    args.update(kwargs)
    with pytest.raises(exc, match=words):
        model.fit(X, y, **args)
    assert np.array_equal(model.params, before)


def test_inputs_of_other_dtypes_are_converted():
    X, y = blobs(n=40, dtype=np.float64)
    model = mlp()
    model.fit(X, y, loss="cross_entropy", optimizer=pynn.SGD(0.1))
    assert model(X).dtype == np.float32
    assert model.predict((X * 100).astype(np.int32)).shape == (40,)
    np.testing.assert_array_equal(model(np.asfortranarray(X)), model(X))


# ---- validation split, sample weights ---------------------------------------------------------
def test_validation_split_holds_out_the_last_samples():
    X, y = blobs(n=100)
    model = mlp()
    h = model.fit(X, y, loss="cross_entropy", optimizer=pynn.SGD(0.1), epochs=2,
                  validation_split=0.2, batch_size=16)
    assert h.params["samples"] == 80
    assert h.history["val_loss"][-1] == pytest.approx(model.evaluate(X[80:], y[80:])["loss"],
                                                      rel=1e-5)


def test_sample_weight_zero_ignores_samples():
    X, y = blobs(n=60)
    w = np.r_[np.ones(30), np.zeros(30)]
    a, b = mlp(dtype="float64"), mlp(dtype="float64")
    a.fit(X, y, loss="cross_entropy", optimizer=pynn.SGD(0.1), sample_weight=w,
          batch_size=None, epochs=3)
    b.fit(X[:30], y[:30], loss="cross_entropy", optimizer=pynn.SGD(0.1), batch_size=None,
          epochs=3)
    np.testing.assert_allclose(a.params, b.params, rtol=1e-12, atol=1e-14)


# ---- the hand-worked step -----------------------------------------------------------------------
def _scalar_ce_gradients(X, Y, W1, b1, W2, b2):
    """Backprop of a 2-2-2 relu/softmax net by scalar arithmetic only (no NumPy)."""
    n = len(X)
    H = [[max(0.0, X[s][0] * W1[0][j] + X[s][1] * W1[1][j] + b1[j]) for j in range(2)]
         for s in range(n)]
    Z = [[H[s][0] * W2[0][k] + H[s][1] * W2[1][k] + b2[k] for k in range(2)] for s in range(n)]
    P = [[math.exp(Z[s][k]) / (math.exp(Z[s][0]) + math.exp(Z[s][1])) for k in range(2)]
         for s in range(n)]
    dZ = [[(P[s][k] - (Y[s] == k)) / n for k in range(2)] for s in range(n)]
    dW2 = [[sum(H[s][j] * dZ[s][k] for s in range(n)) for k in range(2)] for j in range(2)]
    db2 = [sum(dZ[s][k] for s in range(n)) for k in range(2)]
    dA = [[sum(dZ[s][k] * W2[j][k] for k in range(2)) * (H[s][j] > 0) for j in range(2)]
          for s in range(n)]
    dW1 = [[sum(X[s][i] * dA[s][j] for s in range(n)) for j in range(2)] for i in range(2)]
    db1 = [sum(dA[s][j] for s in range(n)) for j in range(2)]
    return dW1, db1, dW2, db2


def test_hand_worked_sgd_momentum_steps():
    """A 2-2-2 network (relu hidden, softmax cross-entropy), full batch of two samples,
    SGD lr 0.5 momentum 0.9: every number of the first step is worked out by hand below."""
    X = [[1.0, 2.0], [-1.0, 0.5]]
    Y = [0, 1]
    W1, b1 = [[0.1, -0.2], [0.3, 0.4]], [0.0, 0.1]
    W2, b2 = [[0.5, -0.5], [0.2, 0.3]], [0.1, -0.1]
    model = pynn.Sequential([pynn.Dense(2, 2, "relu"), pynn.Dense(2, 2)], dtype="float64")
    model.set_weights([W1, b1, W2, b2])

    # Forward by hand. Hidden pre-activations: sample 1: 1*0.1 + 2*0.3 + 0 = 0.7,
    # 1*(-0.2) + 2*0.4 + 0.1 = 0.7; sample 2: -0.1 + 0.15 = 0.05, 0.2 + 0.2 + 0.1 = 0.5 (all > 0).
    # Logits: s1: 0.7*0.5 + 0.7*0.2 + 0.1 = 0.59, 0.7*(-0.5) + 0.7*0.3 - 0.1 = -0.24;
    #         s2: 0.05*0.5 + 0.5*0.2 + 0.1 = 0.225, 0.05*(-0.5) + 0.5*0.3 - 0.1 = 0.025.
    p1 = 1 / (1 + math.exp(-(0.59 + 0.24)))        # softmax of s1, class 0 (its label)
    p2 = 1 / (1 + math.exp(-(0.225 - 0.025)))      # softmax of s2, class 0 (label is 1)
    loss = (-math.log(p1) - math.log(1 - p2)) / 2
    assert loss == pytest.approx(0.5800173306847848, abs=1e-15)
    # dZ = (softmax - onehot) / 2
    dz1 = [(p1 - 1) / 2, (1 - p1) / 2]
    dz2 = [p2 / 2, (1 - p2 - 1) / 2]
    dW2 = [[0.7 * dz1[0] + 0.05 * dz2[0], 0.7 * dz1[1] + 0.05 * dz2[1]],
           [0.7 * dz1[0] + 0.5 * dz2[0], 0.7 * dz1[1] + 0.5 * dz2[1]]]
    db2 = [dz1[0] + dz2[0], dz1[1] + dz2[1]]
    # back through W2 (dH = dZ · W2ᵀ), relu passes it unchanged (all hidden units active)
    dh1 = [dz1[0] * 0.5 + dz1[1] * (-0.5), dz1[0] * 0.2 + dz1[1] * 0.3]
    dh2 = [dz2[0] * 0.5 + dz2[1] * (-0.5), dz2[0] * 0.2 + dz2[1] * 0.3]
    dW1 = [[1 * dh1[0] + (-1) * dh2[0], 1 * dh1[1] + (-1) * dh2[1]],
           [2 * dh1[0] + 0.5 * dh2[0], 2 * dh1[1] + 0.5 * dh2[1]]]
    db1 = [dh1[0] + dh2[0], dh1[1] + dh2[1]]
    assert dW2[0][0] == pytest.approx(-0.09252992462884609, abs=1e-15)
    assert dW1[0][0] == pytest.approx(-0.4267395337443219, abs=1e-15)
    assert db1[1] == pytest.approx(-0.01230944635681559, abs=1e-15)

    # Step 1: v = 0.9*0 - 0.5*g, θ += v
    flat = lambda W1, b1, W2, b2: [*W1[0], *W1[1], *b1, *W2[0], *W2[1], *b2]
    theta0 = flat([[0.1, -0.2], [0.3, 0.4]], [0.0, 0.1], [[0.5, -0.5], [0.2, 0.3]], [0.1, -0.1])
    g1 = flat(dW1, db1, dW2, db2)
    v1 = [-0.5 * g for g in g1]
    theta1 = [t + v for t, v in zip(theta0, v1)]

    opt = pynn.SGD(lr=0.5, momentum=0.9)
    h = model.fit(np.array(X), np.array(Y), loss="cross_entropy", optimizer=opt, epochs=1,
                  batch_size=None, shuffle=False)
    assert h.history["loss"][0] == pytest.approx(loss, abs=1e-15)
    np.testing.assert_allclose(model.params, theta1, rtol=0, atol=1e-15)

    # Step 2 uses the velocity: v = 0.9*v1 - 0.5*g2 (g2 by the scalar backprop above)
    W1_, b1_, W2_, b2_ = [theta1[0:2], theta1[2:4]], theta1[4:6], [theta1[6:8], theta1[8:10]], \
        theta1[10:12]
    g2 = flat(*_scalar_ce_gradients(X, Y, W1_, b1_, W2_, b2_))
    theta2 = [t + (0.9 * v - 0.5 * g) for t, v, g in zip(theta1, v1, g2)]
    model.fit(np.array(X), np.array(Y), epochs=1, batch_size=None, shuffle=False)
    np.testing.assert_allclose(model.params, theta2, rtol=0, atol=1e-14)
    # the scalar backprop agrees with the hand-derived first step too
    np.testing.assert_allclose(flat(*_scalar_ce_gradients(X, Y, W1, b1, W2, b2)), g1,
                               atol=1e-15)


# ---- determinism and allocation -----------------------------------------------------------------
def _train_float32(threads_n, threads):
    threads(threads_n)
    rng = np.random.default_rng(5)
    # big enough that every GEMM and the optimizer step really run on 2 threads
    X = rng.standard_normal((1100, 128)).astype(np.float32)
    y = rng.integers(0, 10, 1100)
    model = pynn.Sequential([pynn.Dense(128, 512, "relu"), pynn.Dense(512, 256, "tanh"),
                             pynn.Dense(256, 10)], seed=11)
    assert model.n_params > 4 * 32768
    model.fit(X, y, loss="cross_entropy", optimizer=pynn.SGD(0.05, momentum=0.9), epochs=2,
              batch_size=128, seed=4)
    return model.params.copy()


def test_training_is_bitwise_reproducible_at_1_and_2_threads(threads):
    one = _train_float32(1, threads)
    two = _train_float32(2, threads)
    again = _train_float32(2, threads)
    assert one.tobytes() == two.tobytes()
    assert two.tobytes() == again.tobytes()


def test_training_step_allocates_nothing_after_the_first_batch():
    """Peak traced memory during a later epoch stays far below the size of any batch buffer."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((4096 * 3 + 100, 64)).astype(np.float32)
    y = rng.integers(0, 8, len(X))
    model = pynn.Sequential([pynn.Dense(64, 64, "relu"), pynn.Dense(64, 8)], seed=0)
    opt = pynn.SGD(0.01, momentum=0.9)
    peaks = []

    class Probe(pynn.Callback):
        def on_batch_end(self, batch, logs=None):
            current, peak = tracemalloc.get_traced_memory()
            peaks.append(peak - current)
            tracemalloc.reset_peak()

    model.fit(X, y, loss="cross_entropy", optimizer=opt, epochs=1, batch_size=4096)  # warm up
    gc.collect()
    tracemalloc.start()
    try:
        model.fit(X, y, epochs=2, batch_size=4096, callbacks=[Probe()])
    finally:
        tracemalloc.stop()
    # smallest per-step buffer: the int64 labels of the 100-row last batch = 800 B; the
    # float32 logits of a full batch = 128 KiB. A step's transient Python objects stay < 2 KiB.
    assert len(peaks) == 8
    assert max(peaks[1:]) < 2048, peaks


# ---- continuing, interrupting, diverging --------------------------------------------------------
def test_fit_again_continues_with_the_optimizer_state():
    X, y = blobs()
    a, b = mlp(dtype="float64"), mlp(dtype="float64")
    a.fit(X, y, loss="cross_entropy", optimizer=pynn.SGD(0.05, momentum=0.9), epochs=4,
          batch_size=None, shuffle=False)
    b.fit(X, y, loss="cross_entropy", optimizer=pynn.SGD(0.05, momentum=0.9), epochs=2,
          batch_size=None, shuffle=False)
    velocity = b.optimizer._state["velocity"].copy()
    assert np.any(velocity != 0)
    h = b.fit(X, y, epochs=2, batch_size=None, shuffle=False)
    np.testing.assert_array_equal(a.params, b.params)
    assert h.epoch == [2, 3] and b.epochs_trained == 4


def test_keyboard_interrupt_stops_cleanly_and_keeps_history():
    X, y = blobs()
    model = mlp()

    class CtrlC(pynn.Callback):
        def on_batch_end(self, batch, logs=None):
            if self.model.epochs_trained == 2 and batch == 3:
                raise KeyboardInterrupt

    h = model.fit(X, y, loss="cross_entropy", optimizer=pynn.SGD(0.1, momentum=0.9),
                  epochs=10, batch_size=16, callbacks=[CtrlC()])
    assert h.interrupted
    assert len(h.history["loss"]) == 2 and h.epoch == [0, 1]
    assert np.isfinite(model.params).all()
    h2 = model.fit(X, y, epochs=1, batch_size=16)   # the interrupted epoch is redone
    assert not h2.interrupted and h2.epoch == [2]


_SIGINT_SCRIPT = """
import os, signal, threading, numpy as np, pynn
rng = np.random.default_rng(0)
X = rng.standard_normal((4000, 64)).astype(np.float32)
y = rng.integers(0, 5, 4000)
model = pynn.Sequential([pynn.Dense(64, 128, "relu"), pynn.Dense(128, 5)], seed=0)
def ctrl_c(epoch, logs):
    if epoch == 1:  # a real SIGINT, delivered while the next epoch's batches run
        threading.Timer(0.05, os.kill, (os.getpid(), signal.SIGINT)).start()
h = model.fit(X, y, loss="cross_entropy", optimizer=pynn.SGD(0.01), epochs=100000,
              batch_size=8, callbacks=[pynn.LambdaCallback(on_epoch_end=ctrl_c)])
assert h.interrupted and 2 <= len(h.epoch) < 100000, h.epoch
assert np.isfinite(model.params).all()
h2 = model.fit(X[:64], y[:64], epochs=1)
print("OK", len(h.epoch), h2.epoch)
"""


def test_real_sigint_stops_training_cleanly():
    import subprocess
    import sys
    proc = subprocess.run([sys.executable, "-c", _SIGINT_SCRIPT], capture_output=True,
                          text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.startswith("OK")
    assert "Training interrupted" in proc.stderr


def test_divergence_names_epoch_and_batch_and_keeps_finite_weights():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((64, 4)).astype(np.float32) * 10
    y = rng.standard_normal(64) * 100
    model = pynn.Sequential([pynn.Dense(4, 8, "relu"), pynn.Dense(8, 1)], seed=0)
    snapshots = [model.params.copy()]
    cb = pynn.LambdaCallback(on_batch_end=lambda b, logs: snapshots.append(model.params.copy()))
    with pytest.raises(pynn.TrainingDivergedError, match=r"epoch \d+, batch \d+/8") as info:
        model.fit(X, y, loss="mse", optimizer=pynn.SGD(lr=5.0, momentum=0.9), epochs=50,
                  batch_size=8, callbacks=[cb])
    err = info.value
    assert "learning rate" in str(err)
    assert (err.epoch - 1) * 8 + err.batch == len(snapshots)   # the failing batch, 1-based
    assert len(err.history.epoch) == err.epoch - 1
    # no update from the failing batch; the weights are those of the last finite step
    finite = [s for s in snapshots if np.isfinite(s).all()]
    np.testing.assert_array_equal(model.params, finite[-1])
    assert np.isfinite(model.optimizer._state["velocity"]).all()


def test_divergence_from_an_overflowing_update_replays_to_the_last_finite_step():
    """An lr beyond float32's range turns the weights to inf in one update while that batch's
    loss was finite: they must come back from the epoch checkpoint by a bitwise replay."""
    X, y = blobs(n=64)
    model = mlp()
    model.fit(X, y, loss="cross_entropy", optimizer=pynn.SGD(0.01, momentum=0.5), epochs=1,
              batch_size=16)
    opt = model.optimizer
    start, velocity = model.params.copy(), opt._state["velocity"].copy()
    iterations = opt.iterations
    opt.lr = pynn.StepDecay(0.01, step_size=1, gamma=1e300)   # epoch 1 (this fit): 1e298
    with pytest.raises(pynn.TrainingDivergedError, match="batch 2/4"):
        model.fit(X, y, epochs=1, batch_size=16, shuffle=False)
    # the first update of this epoch overflowed: back to where the epoch started
    np.testing.assert_array_equal(model.params, start)
    np.testing.assert_array_equal(opt._state["velocity"], velocity)
    assert opt.iterations == iterations


# ---- early stopping -----------------------------------------------------------------------------
def test_early_stopping_with_restore_best_weights():
    X, y = blobs(n=120)
    Xv, yv = blobs(n=60, seed=7)
    model = mlp()
    # a monitored value that rises after epoch 2: training stops 2 epochs later
    fake = iter([0.5, 0.4, 0.3, 0.35, 0.36, 0.2])
    saved = {}

    class Fake(pynn.Callback):
        def on_epoch_end(self, epoch, logs=None):
            logs["score"] = next(fake)
            saved[epoch] = self.model.params.copy()

    stop = pynn.EarlyStopping(monitor="score", patience=1, restore_best_weights=True)
    h = model.fit(X, y, loss="cross_entropy", optimizer=pynn.SGD(0.1), epochs=6,
                  validation_data=(Xv, yv), callbacks=[Fake(), stop])
    assert h.epoch == [0, 1, 2, 3, 4] and h.stopped_early
    assert stop.best_epoch == 2 and stop.stopped_epoch == 4 and stop.best == 0.3
    np.testing.assert_array_equal(model.params, saved[2])


def test_early_stopping_on_real_val_loss_and_missing_key():
    X, y = blobs(n=80)
    model = mlp()
    stop = pynn.EarlyStopping(patience=0)
    h = model.fit(X, y, loss="cross_entropy", optimizer=pynn.SGD(5.0), epochs=30,
                  validation_data=blobs(n=40, seed=3), callbacks=[stop])
    assert len(h.epoch) < 30
    with pytest.raises(ValueError, match="validation_data"):
        model.fit(X, y, epochs=1, callbacks=[pynn.EarlyStopping()])


# ---- verbose output, plots ----------------------------------------------------------------------
@pytest.mark.parametrize("verbose", [1, 2])
def test_progress_output(verbose, capsys):
    X, y = blobs(n=64)
    mlp().fit(X, y, loss="cross_entropy", optimizer=pynn.SGD(0.1), epochs=2, batch_size=16,
              verbose=verbose, validation_split=0.25)
    err = capsys.readouterr().err
    assert "loss=" in err and "val_accuracy=" in err and "2/2" in err


def test_history_plot(tmp_path):
    pytest.importorskip("matplotlib")
    X, y = blobs(n=64)
    h = mlp().fit(X, y, loss="cross_entropy", optimizer=pynn.SGD(0.1), epochs=3,
                  validation_split=0.25)
    path = tmp_path / "curves.png"
    fig = h.plot(path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(fig.axes) == 2
    assert [t.get_text() for t in fig.axes[0].get_legend().get_texts()] == ["training",
                                                                           "validation"]
    with pytest.raises(ValueError, match="empty"):
        pynn.History().plot()


# ---- copies and pickling -------------------------------------------------------------------------
def _predict_in_child(model, X):
    return model.predict(X)


def test_models_pickle_copy_and_keep_training_state():
    X, y = blobs()
    model = mlp()
    model.fit(X, y, loss="cross_entropy", optimizer=pynn.SGD(0.1, momentum=0.9), epochs=2)
    for clone in (pickle.loads(pickle.dumps(model)), copy.deepcopy(model)):
        assert clone.params.tobytes() == model.params.tobytes()
        assert not np.shares_memory(clone.params, model.params)
        assert np.shares_memory(clone.layers[1].W, clone.params)
        np.testing.assert_array_equal(clone.predict(X), model.predict(X))
        assert np.array_equal(clone.optimizer._state["velocity"],
                              model.optimizer._state["velocity"])
    a, b = pickle.loads(pickle.dumps(model)), pickle.loads(pickle.dumps(model))
    a.fit(X, y, epochs=1, seed=9)
    b.fit(X, y, epochs=1, seed=9)
    assert a.params.tobytes() == b.params.tobytes()
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        # a timeout: Pool.apply waits forever if the worker dies while unpickling
        child = pool.apply_async(_predict_in_child, (model, X[:20])).get(timeout=120)
    np.testing.assert_array_equal(child, model.predict(X[:20]))


def test_shallow_copy_is_independent():
    X, y = blobs()
    model = mlp()
    model.fit(X, y, loss="cross_entropy", optimizer=pynn.SGD(0.1, momentum=0.9), epochs=1)
    before = model.params.copy()
    clone = copy.copy(model)
    clone.fit(X, y, epochs=1)
    assert np.array_equal(model.params, before)
    assert np.array_equal(model.layers[0].W.ravel(), before[:model.layers[0].W.size])
    model.fit(X, y, epochs=1)   # its optimizer is still its own


def test_concurrent_predictions_from_threads_agree():
    from concurrent.futures import ThreadPoolExecutor
    X, _y = blobs(n=200)
    model = mlp()
    model.compile(loss="cross_entropy")
    want = model(X[:50])
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: model(X[:50]), range(40)))
    for got in results:
        np.testing.assert_array_equal(got, want)


def test_large_predict_is_chunked_consistently():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((9000, 6)).astype(np.float32)
    model = mlp()
    out = model(X)
    np.testing.assert_allclose(out[4096:4100], model(X[4096:4100]), rtol=1e-5, atol=1e-6)
    assert out.shape == (9000, 3)
    assert model(X[:0]).shape == (0, 3)
