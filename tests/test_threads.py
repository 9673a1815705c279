"""Thread safety (issue 7): pynn releases the GIL around every kernel, so Python threads really
run kernels at the same time. What is safe, and what fails loudly:

- the same model predicted from several threads at once: every thread gets exactly the serial
  result (the model's cached inference buffers are used by one thread at a time; the others
  allocate their own);
- any ops called from several threads at once on their own (or shared read-only) arrays;
- fitting one model from two threads at once is refused with a RuntimeError (it would
  interleave updates of the same parameter and optimizer buffers); the running fit is unharmed.
"""
from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import pynn
from pynn import ops

N_THREADS = 4


def _model(seed=0, dtype="float32"):
    return pynn.Sequential([pynn.Dense(32, 64, "relu"), pynn.Dense(64, 48, "tanh"),
                            pynn.Dense(48, 5)], seed=seed, dtype=dtype)


def _data(n=600, seed=1):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, 32)).astype(np.float32)
    y = (X[:, :5].argmax(axis=1)).astype(np.int64)
    return X, y


def _run_threads(fn, n=N_THREADS):
    """fn(i) in n threads released together; returns the results in thread order."""
    barrier = threading.Barrier(n)

    def start(i):
        barrier.wait()
        return fn(i)

    with ThreadPoolExecutor(n) as pool:
        return list(pool.map(start, range(n)))


def test_predict_from_many_threads_matches_serial():
    X, y = _data()
    model = _model()
    model.fit(X, y, loss="cross_entropy", epochs=1, batch_size=64, seed=0)
    # several batch sizes: cached buffers per size, private ones when another thread holds them
    sizes = [600, 1, 37, 600, 256, 600]
    want = {n: (model.predict(X[:n]), model(X[:n])) for n in set(sizes)}

    def work(i):
        out = []
        for k in range(12):
            n = sizes[(i + k) % len(sizes)]
            out.append((n, model.predict(X[:n]), model(X[:n])))
        return out

    for results in _run_threads(work):
        for n, labels, raw in results:
            np.testing.assert_array_equal(labels, want[n][0])
            np.testing.assert_array_equal(raw, want[n][1])  # bitwise


def _flat(result) -> list:
    """An op's result as a list of arrays (losses return (float, grad); backward a triple)."""
    items = result if isinstance(result, tuple) else (result,)
    return [np.asarray(r) for r in items if r is not None]


OPS_CALLS = {
    "matmul": lambda a, b, rng: ops.matmul(a, b),
    "linear": lambda a, b, rng: ops.linear(a, b, b[0], activation="sigmoid"),
    "linear_backward": lambda a, b, rng: ops.linear_backward(a, b, np.tanh(a @ b), a @ b,
                                                             activation="tanh"),
    "softmax": lambda a, b, rng: ops.softmax(a),
    "softmax_cross_entropy": lambda a, b, rng: ops.softmax_cross_entropy(
        a, np.arange(len(a)) % a.shape[1]),
    "bias_grad": lambda a, b, rng: ops.bias_grad(a),
}


@pytest.mark.parametrize("name", sorted(OPS_CALLS))
def test_concurrent_ops_calls_are_safe(name):
    """Every thread works on its own arrays and on one shared read-only array."""
    rng = np.random.default_rng(5)
    shared = rng.standard_normal((300, 300)).astype(np.float32)
    shared.setflags(write=False)
    own = [rng.standard_normal((300, 300)).astype(np.float32) for _ in range(N_THREADS)]
    call = OPS_CALLS[name]
    want_own = [call(a, shared, rng) for a in own]
    want_shared = call(shared, shared, rng)

    def work(i):
        return [(call(own[i], shared, rng), call(shared, shared, rng)) for _ in range(5)]

    for i, results in enumerate(_run_threads(work)):
        for got_own, got_shared in results:
            for g, w in zip(_flat(got_own), _flat(want_own[i])):
                np.testing.assert_array_equal(g, w)
            for g, w in zip(_flat(got_shared), _flat(want_shared)):
                np.testing.assert_array_equal(g, w)


def test_in_place_optimizer_steps_on_separate_buffers():
    rng = np.random.default_rng(6)
    params = [rng.standard_normal(50_000).astype(np.float32) for _ in range(N_THREADS)]
    grads = [rng.standard_normal(50_000).astype(np.float32) for _ in range(N_THREADS)]
    want = [p.copy() for p in params]
    for p, g in zip(want, grads):
        for step in range(1, 11):
            ops.adam_step(p, g, np.zeros_like(p), np.zeros_like(p), step=step)
    got = [p.copy() for p in params]

    def work(i):
        for step in range(1, 11):
            ops.adam_step(got[i], grads[i], np.zeros_like(got[i]), np.zeros_like(got[i]),
                          step=step)

    _run_threads(work)
    for g, w in zip(got, want):
        np.testing.assert_array_equal(g, w)


def test_fitting_one_model_from_two_threads_fails_loudly():
    X, y = _data()
    model = _model()
    twin = _model()
    started, proceed = threading.Event(), threading.Event()

    def hold(epoch, logs=None):
        started.set()
        assert proceed.wait(30)

    result = {}

    def first_fit():
        result["history"] = model.fit(
            X, y, loss="cross_entropy", epochs=2, batch_size=100, seed=3,
            callbacks=[pynn.LambdaCallback(on_epoch_begin=hold)])

    thread = threading.Thread(target=first_fit)
    thread.start()
    try:
        assert started.wait(30)
        with pytest.raises(RuntimeError, match="fit is already running on this model"):
            model.fit(X, y, loss="cross_entropy", epochs=1, seed=4)
    finally:
        proceed.set()
        thread.join(60)
    assert not thread.is_alive() and "history" in result
    # the running fit was not disturbed: the same as an undisturbed fit
    twin.fit(X, y, loss="cross_entropy", epochs=2, batch_size=100, seed=3)
    np.testing.assert_array_equal(model.params, twin.params)
    # and the model can be fitted again afterwards
    model.fit(X, y, epochs=1, seed=4)


def test_fit_called_from_its_own_callback_is_refused():
    X, y = _data(100)
    model = _model()
    errors = []

    def reenter(epoch, logs=None):
        try:
            model.fit(X, y, loss="cross_entropy", epochs=1)
        except RuntimeError as exc:
            errors.append(exc)

    model.fit(X, y, loss="cross_entropy", epochs=1,
              callbacks=[pynn.LambdaCallback(on_epoch_end=reenter)])
    assert len(errors) == 1 and "already running" in str(errors[0])


def test_separate_models_train_concurrently_and_match_serial():
    X, y = _data()
    serial = []
    for i in range(N_THREADS):
        m = _model(seed=i)
        m.fit(X, y, loss="cross_entropy", epochs=2, batch_size=50, seed=i)
        serial.append(m.params.copy())
    models = [_model(seed=i) for i in range(N_THREADS)]

    def work(i):
        models[i].fit(X, y, loss="cross_entropy", epochs=2, batch_size=50, seed=i)

    _run_threads(work)
    for m, want in zip(models, serial):
        np.testing.assert_array_equal(m.params, want)
