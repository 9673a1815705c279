"""pynn._core._Network (a model's layers bound once; a step's forward and backward in one call)
against the per-layer ops it replaces, and its argument checks."""
import numpy as np
import pytest

from pynn import _core, ops

ACTS = ["identity", "relu", "leaky_relu", "sigmoid", "tanh", "softmax"]


def _layers(rng, sizes, rows, dtype, acts):
    Ws = [(rng.standard_normal((i, o)) / np.sqrt(i)).astype(dtype)
          for i, o in zip(sizes[:-1], sizes[1:])]
    bs = [rng.standard_normal(o).astype(dtype) for o in sizes[1:]]
    dWs = [np.empty_like(W) for W in Ws]
    dbs = [np.empty_like(b) for b in bs]
    acts_out = [np.empty((rows, o), dtype) for o in sizes[1:]]
    deltas = [np.empty((rows, o), dtype) for o in sizes[1:]]
    alphas = [0.1] * len(Ws)
    return Ws, bs, dWs, dbs, list(acts), alphas, acts_out, deltas


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("rows, sizes", [(1, [7, 1]), (7, [33, 5, 3]), (33, [13, 17, 9, 4])])
@pytest.mark.parametrize("n_threads", [1, 2])
def test_network_matches_the_per_layer_ops(dtype, rows, sizes, n_threads, threads, isa, rng):
    threads(n_threads)
    acts = [ACTS[(len(sizes) + k) % len(ACTS)] for k in range(len(sizes) - 1)]
    Ws, bs, dWs, dbs, acts, alphas, outs, deltas = _layers(rng, sizes, rows, dtype, acts)
    x = rng.standard_normal((rows, sizes[0])).astype(dtype)
    net = _core._Network(Ws, bs, dWs, dbs, acts, alphas, outs, deltas)
    net.forward(x)
    a = x
    want_outs = []
    for W, b, act in zip(Ws, bs, acts):
        a = ops.linear(a, W, b, activation=act, alpha=0.1)
        want_outs.append(a)
    for got, want in zip(outs, want_outs):
        np.testing.assert_array_equal(got, want)  # the same kernels: bitwise
    deltas[-1][...] = rng.standard_normal(deltas[-1].shape)
    dy = deltas[-1].copy()
    net.backward(x)
    for i in range(len(Ws) - 1, -1, -1):
        xin = x if i == 0 else want_outs[i - 1]
        dx, dW, db = ops.linear_backward(xin, Ws[i], want_outs[i], dy, activation=acts[i],
                                         alpha=0.1, need_dx=i > 0)
        np.testing.assert_array_equal(dWs[i], dW)
        np.testing.assert_array_equal(dbs[i], db)
        if i > 0:
            np.testing.assert_array_equal(deltas[i - 1], dx)
            dy = dx


def test_network_rejects_bad_arguments(rng):
    Ws, bs, dWs, dbs, acts, alphas, outs, deltas = _layers(rng, [4, 3, 2], 5, np.float32,
                                                           ["relu", "identity"])
    good = (Ws, bs, dWs, dbs, acts, alphas, outs, deltas)

    def build(**change):
        args = dict(zip(["Ws", "bs", "dWs", "dbs", "acts", "alphas", "outs", "deltas"], good))
        args.update(change)
        return _core._Network(*args.values())
    with pytest.raises(ValueError, match="one W, b, dW, db"):
        build(bs=bs[:1])
    with pytest.raises(ValueError, match=r"weights\[1\] must have 3 rows"):
        build(Ws=[Ws[0], np.zeros((4, 2), np.float32)])
    with pytest.raises(TypeError, match="float32"):
        build(bs=[bs[0], bs[1].astype(np.float64)])
    with pytest.raises(ValueError, match=r"acts\[0\] must have shape \(5, 3\)"):
        build(outs=[np.zeros((5, 4), np.float32), outs[1]])
    with pytest.raises(ValueError, match="activation must be one of"):
        build(acts=["relu", "swish"])
    with pytest.raises(ValueError, match="C-contiguous"):
        build(dWs=[np.zeros((3, 4), np.float32).T, dWs[1]])
    net = build()
    with pytest.raises(ValueError, match=r"x must have shape \(5, 4\)"):
        net.forward(np.zeros((6, 4), np.float32))
    with pytest.raises(TypeError, match="float32"):
        net.backward(np.zeros((5, 4), np.float64))


def test_a_network_whose_rebuild_failed_refuses_to_run(rng):
    Ws, bs, dWs, dbs, acts, alphas, outs, deltas = _layers(rng, [4, 3], 5, np.float32, ["relu"])
    net = _core._Network(Ws, bs, dWs, dbs, acts, alphas, outs, deltas)
    with pytest.raises(ValueError):
        net.__init__(Ws, bs, dWs, dbs, acts, alphas, [np.zeros((5, 9), np.float32)], deltas)
    with pytest.raises(RuntimeError, match="was not built"):
        net.forward(np.zeros((5, 4), np.float32))
