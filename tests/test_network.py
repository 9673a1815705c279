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


def _composed_forward(x, Ws, bs, acts):
    """Every layer's output through pynn.ops, one call per layer."""
    outs = []
    for W, b, act in zip(Ws, bs, acts):
        x = ops.linear(x, W, b, activation=act, alpha=0.1)
        outs.append(x)
    return outs


def _check_composed_backward(x, Ws, acts, outs, dy, dWs, dbs, deltas):
    """dWs, dbs and the hidden deltas are bitwise pynn.ops.linear_backward's, layer by layer
    from the top delta dy."""
    for i in range(len(Ws) - 1, -1, -1):
        xin = x if i == 0 else outs[i - 1]
        dx, dW, db = ops.linear_backward(xin, Ws[i], outs[i], dy, activation=acts[i],
                                         alpha=0.1, need_dx=i > 0)
        np.testing.assert_array_equal(dWs[i], dW)
        np.testing.assert_array_equal(dbs[i], db)
        if i > 0:
            np.testing.assert_array_equal(deltas[i - 1], dx)
            dy = dx


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
    want_outs = _composed_forward(x, Ws, bs, acts)
    for got, want in zip(outs, want_outs):
        np.testing.assert_array_equal(got, want)  # the same kernels: bitwise
    deltas[-1][...] = rng.standard_normal(deltas[-1].shape)
    dy = deltas[-1].copy()
    net.backward(x)
    _check_composed_backward(x, Ws, acts, want_outs, dy, dWs, dbs, deltas)


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


# ---- the one-call training step (gather, forward, fused loss, backward) ------------------------

def _loss_case(kind, rng, n, k, dtype):
    """(target in the kernel's form, the same loss through pynn.ops, its parameter)."""
    if kind == "xent_labels":
        return rng.integers(0, k, n), lambda o, t: ops.softmax_cross_entropy(o, t), 0.0
    probs = rng.random((n, k)).astype(dtype)
    probs /= probs.sum(axis=1, keepdims=True)
    cases = {
        "xent_probs": (probs, lambda o, t: ops.softmax_cross_entropy(o, t), 0.0),
        "kl": (probs, lambda o, t: ops.kl_divergence(o, t), 0.0),
        "mse": (rng.standard_normal((n, k)).astype(dtype), ops.mse, 0.0),
        "mae": (rng.standard_normal((n, k)).astype(dtype), ops.mae, 0.0),
        "huber": (rng.standard_normal((n, k)).astype(dtype),
                  lambda o, t: ops.huber(o, t, delta=0.3), 0.3),
        "poisson": (rng.poisson(2.0, (n, k)).astype(dtype), ops.poisson, 0.0),
        "bce": (rng.integers(0, 2, (n, k)).astype(dtype), ops.binary_cross_entropy, 0.0),
        "hinge": (rng.choice([-1.0, 1.0], (n, k)).astype(dtype), ops.hinge, 0.0),
    }
    return cases[kind]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("kind", sorted(_core.LOSS_KINDS))
@pytest.mark.parametrize("gather", [True, False])
@pytest.mark.parametrize("n_threads", [1, 2])
def test_train_step_is_the_composed_step_bitwise(dtype, kind, gather, n_threads, threads, isa,
                                                 rng):
    threads(n_threads)
    rows, sizes, n = 9, [13, 6, 4], 40
    Ws, bs, dWs, dbs, acts, alphas, outs, deltas = _layers(rng, sizes, rows, dtype,
                                                           ["tanh", "identity"])
    X = rng.standard_normal((n, sizes[0])).astype(dtype)
    target, loss_fn, param = _loss_case(kind, rng, n, sizes[-1], dtype)
    idx = rng.permutation(n)[:rows].astype(np.int64) if gather else None
    start = 0 if gather else 17
    x_buf = np.empty((rows, sizes[0]), dtype)
    t_buf = np.empty((rows,) + target.shape[1:], target.dtype)
    net = _core._Network(Ws, bs, dWs, dbs, acts, alphas, outs, deltas)
    value = net.train_step(X, target, idx, start, x_buf, t_buf, _core.LOSS_KINDS[kind], param)

    rows_of = idx if gather else np.arange(start, start + rows)
    xb, tb = X[rows_of], target[rows_of]
    if gather:
        np.testing.assert_array_equal(x_buf, xb)
        np.testing.assert_array_equal(t_buf, tb)
    want_outs = _composed_forward(xb, Ws, bs, acts)
    want_value, dy = loss_fn(want_outs[-1], tb)
    assert value == want_value
    np.testing.assert_array_equal(outs[-1], want_outs[-1])
    np.testing.assert_array_equal(deltas[-1], dy)
    _check_composed_backward(xb, Ws, acts, want_outs, dy, dWs, dbs, deltas)


def test_train_step_skips_the_backward_of_a_non_finite_loss(rng):
    Ws, bs, dWs, dbs, acts, alphas, outs, deltas = _layers(rng, [3, 2], 4, np.float64,
                                                           ["identity"])
    X = rng.standard_normal((4, 3))
    X[2, 0] = np.nan
    net = _core._Network(Ws, bs, dWs, dbs, acts, alphas, outs, deltas)
    for d in dWs:
        d.fill(7.0)
    value = net.train_step(X, rng.standard_normal((4, 2)), None, 0, None, None,
                           _core.LOSS_KINDS["mse"])
    assert np.isnan(value)
    assert (dWs[0] == 7.0).all()  # untouched


def test_train_step_rejects_bad_arguments(rng):
    Ws, bs, dWs, dbs, acts, alphas, outs, deltas = _layers(rng, [4, 3], 5, np.float32,
                                                           ["relu"])
    net = _core._Network(Ws, bs, dWs, dbs, acts, alphas, outs, deltas)
    X = rng.standard_normal((20, 4)).astype(np.float32)
    labels = rng.integers(0, 3, 20)
    rows_t = rng.standard_normal((20, 3)).astype(np.float32)
    xb, lb = np.empty((5, 4), np.float32), np.empty(5, np.int64)
    idx = np.arange(5, dtype=np.int64)
    xent, mse = _core.LOSS_KINDS["xent_labels"], _core.LOSS_KINDS["mse"]
    with pytest.raises(ValueError, match="loss_kind"):
        net.train_step(X, labels, idx, 0, xb, lb, 99)
    with pytest.raises(ValueError, match="x must be"):
        net.train_step(X.astype(np.float64), labels, idx, 0, xb, lb, xent)
    with pytest.raises(ValueError, match="x must be"):
        net.train_step(X[:, :3].copy(), labels, idx, 0, xb, lb, xent)
    with pytest.raises(ValueError, match="target must be int64 labels"):
        net.train_step(X, rows_t, idx, 0, xb, lb, xent)
    with pytest.raises(ValueError, match="target must be rows"):
        net.train_step(X, labels, idx, 0, xb, lb, mse)
    with pytest.raises(ValueError, match="one per row of x"):
        net.train_step(X, labels[:19], idx, 0, xb, lb, xent)
    with pytest.raises(IndexError, match="not a row of src"):
        net.train_step(X, labels, np.array([0, 1, 2, 3, 20]), 0, xb, lb, xent)
    with pytest.raises(IndexError, match="not a row of src"):
        net.train_step(X, labels, np.array([0, 1, -2, 3, 4]), 0, xb, lb, xent)
    with pytest.raises(ValueError, match="idx must hold 5 rows"):
        net.train_step(X, labels, idx[:4], 0, xb, lb, xent)
    with pytest.raises(ValueError, match="rows 16:21"):
        net.train_step(X, labels, None, 16, None, None, xent)
    with pytest.raises(ValueError, match="rows -1:4"):
        net.train_step(X, labels, None, -1, None, None, xent)
    with pytest.raises(ValueError, match=r"x_buf must have shape \(5, 4\)"):
        net.train_step(X, labels, idx, 0, np.empty((4, 4), np.float32), lb, xent)
    with pytest.raises(ValueError, match="target_buf must be int64"):
        net.train_step(X, labels, idx, 0, xb, np.empty(5, np.int32), xent)
    with pytest.raises(ValueError, match="x_buf must not overlap"):
        net.train_step(X, labels, idx, 0, X[:5], lb, xent)
    with pytest.raises(ValueError, match="must be C-contiguous"):
        net.train_step(np.asfortranarray(X), labels, idx, 0, xb, lb, xent)
    assert np.isfinite(net.train_step(X, labels, idx, 0, xb, lb, xent))


def test_every_loss_with_a_c_kernel_names_one_of_the_kinds():
    from pynn.nn import losses
    for cls in losses.LOSSES.values():
        assert cls.kernel_kind in _core.LOSS_KINDS, cls
