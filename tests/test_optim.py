"""Fused optimizer steps: pynn.ops vs pynn.reference, every ISA path, 1 vs 2 threads, PyTorch's
SGD and Adam(W) trajectories, bad input (which must leave every buffer unchanged)."""
import numpy as np
import pytest

from pynn import ops
from pynn import reference as ref

DTYPES = [np.float32, np.float64]
SIZES = [1, 7, 33, 1000, 100_003]
# float32 entries are O(1) but may cancel to ~1e-3: an absolute tolerance of a few ulp of 1
TOL = {np.float32: {"rtol": 2e-6, "atol": 1e-6}, np.float64: {"rtol": 1e-14, "atol": 1e-15}}
SGD_CONFIGS = [{"momentum": 0.0}, {"momentum": 0.9}, {"momentum": 0.9, "nesterov": True},
               {"momentum": 0.5, "weight_decay": 1e-2}, {"momentum": 0.0, "weight_decay": 0.1}]


def _buffers(rng, size, dtype, count):
    return [rng.normal(size=size).astype(dtype) for _ in range(count)]


@pytest.mark.parametrize("config", SGD_CONFIGS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("size", SIZES)
def test_sgd_matches_reference(isa, rng, size, dtype, config):
    p, g, v = _buffers(rng, size, dtype, 3)
    p_ref, v_ref = p.copy(), v.copy()
    for _ in range(3):
        ops.sgd_step(p, g, v, lr=0.05, **config)
        ref.sgd_step(p_ref, g, v_ref, lr=0.05, **config)
    np.testing.assert_allclose(p, p_ref, **TOL[dtype])
    np.testing.assert_allclose(v, v_ref, **TOL[dtype])


@pytest.mark.parametrize("dtype", DTYPES)
def test_sgd_without_velocity_is_plain_sgd(rng, dtype):
    p, g = _buffers(rng, 37, dtype, 2)
    want = p - dtype(0.1) * (g + dtype(0.01) * p)
    ops.sgd_step(p, g, None, lr=0.1, weight_decay=0.01)
    np.testing.assert_allclose(p, want, **TOL[dtype])


@pytest.mark.parametrize("weight_decay", [0.0, 0.05])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("size", SIZES)
def test_adam_matches_reference(isa, rng, size, dtype, weight_decay):
    p, g = _buffers(rng, size, dtype, 2)
    m, v = np.zeros_like(p), np.zeros_like(p)
    p_ref, m_ref, v_ref = p.copy(), m.copy(), v.copy()
    for step in range(1, 4):
        ops.adam_step(p, g, m, v, step=step, lr=1e-2, weight_decay=weight_decay)
        ref.adam_step(p_ref, g, m_ref, v_ref, step=step, lr=1e-2, weight_decay=weight_decay)
    for got, want in [(p, p_ref), (m, m_ref), (v, v_ref)]:
        np.testing.assert_allclose(got, want, rtol=TOL[dtype]["rtol"] * 4,
                                   atol=TOL[dtype]["atol"])


@pytest.mark.parametrize("dtype", DTYPES)
def test_one_and_two_threads_bitwise_identical(threads, rng, dtype):
    size = (1 << 20) + 3
    p, g, v = _buffers(rng, size, dtype, 3)
    results = []
    for n in (1, 2):
        threads(n)
        pp, vv = p.copy(), v.copy()
        ops.sgd_step(pp, g, vv, lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-3)
        pa, ma, va = p.copy(), np.abs(v), v * v
        ops.adam_step(pa, g, ma, va, step=7, weight_decay=1e-2)
        results.append((pp, vv, pa, ma, va))
    for a, b in zip(*results):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("config", SGD_CONFIGS[1:])
def test_sgd_follows_torch(rng, config):
    """PyTorch's b = mu b + g; p -= lr b is ours with velocity = -lr b (constant lr)."""
    torch = pytest.importorskip("torch")
    p0 = rng.normal(size=50)
    grads = [rng.normal(size=50) for _ in range(5)]
    pt = torch.tensor(p0, requires_grad=True)
    opt = torch.optim.SGD([pt], lr=0.05, momentum=config["momentum"],
                          nesterov=config.get("nesterov", False),
                          weight_decay=config.get("weight_decay", 0.0))
    p, v = p0.copy(), np.zeros(50)
    for g in grads:
        pt.grad = torch.tensor(g)
        opt.step()
        ops.sgd_step(p, g, v, lr=0.05, **config)
    np.testing.assert_allclose(p, pt.detach().numpy(), rtol=1e-13, atol=1e-14)


@pytest.mark.parametrize("weight_decay", [0.0, 0.1])
@pytest.mark.parametrize("dtype", DTYPES)
def test_adam_follows_torch(rng, dtype, weight_decay):
    torch = pytest.importorskip("torch")
    p0 = rng.normal(size=64).astype(dtype)
    grads = [rng.normal(size=64).astype(dtype) for _ in range(6)]
    pt = torch.tensor(p0, requires_grad=True)
    opt = torch.optim.AdamW([pt], lr=1e-2, betas=(0.8, 0.99), eps=1e-6,
                            weight_decay=weight_decay)
    p, m, v = p0.copy(), np.zeros_like(p0), np.zeros_like(p0)
    for step, g in enumerate(grads, start=1):
        pt.grad = torch.tensor(g)
        opt.step()
        ops.adam_step(p, g, m, v, step=step, lr=1e-2, beta1=0.8, beta2=0.99, eps=1e-6,
                      weight_decay=weight_decay)
    tol = {"rtol": 1e-5, "atol": 1e-6} if dtype == np.float32 else {"rtol": 1e-13, "atol": 1e-14}
    np.testing.assert_allclose(p, pt.detach().numpy(), **tol)


# ---- bad input: a ValueError/TypeError, and every buffer unchanged ------------------------------

def _unchanged_after(exc, match, fn, buffers, *args, **kwargs):
    before = [b.copy() for b in buffers]
    with pytest.raises(exc, match=match):
        fn(*args, **kwargs)
    for b, was in zip(buffers, before):
        np.testing.assert_array_equal(b, was)


def test_bad_sgd_arguments(rng):
    p, g, v = _buffers(rng, 10, np.float32, 3)
    bufs = [p, g, v]
    sgd = ops.sgd_step
    _unchanged_after(ValueError, r"lr must be in \[0", sgd, bufs, p, g, v, lr=-0.1)
    _unchanged_after(ValueError, "lr must be finite", sgd, bufs, p, g, v, lr=np.nan)
    _unchanged_after(ValueError, r"momentum must be in \[0", sgd, bufs, p, g, v, lr=0.1,
                     momentum=-0.5)
    _unchanged_after(ValueError, "velocity must be an array when momentum", sgd, bufs, p, g,
                     None, lr=0.1, momentum=0.9)
    _unchanged_after(ValueError, "nesterov=True needs momentum > 0", sgd, bufs, p, g, v, lr=0.1,
                     nesterov=True)
    _unchanged_after(TypeError, "grads must have dtype float32", sgd, bufs, p,
                     g.astype(np.float64), v, lr=0.1)
    _unchanged_after(ValueError, "grads must have the shape of params", sgd, bufs, p, g[:5], v,
                     lr=0.1)
    _unchanged_after(TypeError, "velocity must have the dtype of params", sgd, bufs, p, g,
                     v.astype(np.float64), lr=0.1, momentum=0.9)
    _unchanged_after(ValueError, "velocity must have the shape of params", sgd, bufs, p, g,
                     v[:9], lr=0.1, momentum=0.9)
    _unchanged_after(ValueError, "params and velocity must not overlap", sgd, bufs, p, g, p,
                     lr=0.1, momentum=0.9)
    _unchanged_after(TypeError, "params must be a numpy.ndarray", sgd, bufs, list(p), g, v,
                     lr=0.1)
    _unchanged_after(TypeError, "params must have dtype float32 or float64", sgd, bufs,
                     np.zeros(10, np.int32), g, v, lr=0.1)
    _unchanged_after(ValueError, "params must not be empty", sgd, bufs, np.zeros(0), g, v,
                     lr=0.1)
    strided = np.zeros(20, np.float32)[::2]
    _unchanged_after(ValueError, "params must be C-contiguous", sgd, bufs, strided, g, v, lr=0.1)
    ro = p.copy()
    ro.flags.writeable = False
    _unchanged_after(ValueError, "params must be writeable", sgd, bufs, ro, g, v, lr=0.1)
    _unchanged_after(TypeError, "nesterov must be a bool", sgd, bufs, p, g, v, lr=0.1,
                     momentum=0.9, nesterov="yes")


def test_bad_adam_arguments(rng):
    p, g, m, v = _buffers(rng, 10, np.float64, 4)
    bufs = [p, g, m, v]
    adam = ops.adam_step
    _unchanged_after(ValueError, "step must be >= 1", adam, bufs, p, g, m, v, step=0)
    _unchanged_after(TypeError, "step must be an int", adam, bufs, p, g, m, v, step=1.0)
    _unchanged_after(ValueError, r"beta1 and beta2 must be in \[0, 1\)", adam, bufs, p, g, m, v,
                     step=1, beta1=1.0)
    _unchanged_after(ValueError, r"lr must be in \[0", adam, bufs, p, g, m, v, step=1, lr=-1e-3)
    _unchanged_after(ValueError, "m and v must not overlap", adam, bufs, p, g, m, m, step=1)
    _unchanged_after(ValueError, "v must have the shape of params", adam, bufs, p, g, m,
                     v[:3], step=1)


# ---- subnormals: flushed inside the optimizer kernels, nowhere else --------------------------

@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n_threads", [1, 2])
def test_momentum_of_a_zero_gradient_decays_to_zero_not_to_a_stuck_subnormal(isa, threads,
                                                                           n_threads, dtype):
    """v = 0.9 v with v = 4 ulp of the subnormal range rounds back to 4 ulp in IEEE arithmetic:
    it would stay subnormal forever (a microcode assist per entry and step on Intel cores).
    The kernels flush it to 0."""
    threads(n_threads)
    size = 100_000  # enough for both threads
    tiny = np.finfo(dtype).smallest_subnormal
    p = np.ones(size, dtype)
    v = np.full(size, 4 * tiny, dtype)
    g = np.zeros(size, dtype)
    ops.sgd_step(p, g, v, lr=0.1, momentum=0.9)
    assert not v.any() and (p == 1).all()
    # Adam: the square of a small gradient (1e-20 ** 2 in float32) lands in the subnormal range
    g = np.full(size, 1e-20 if dtype == np.float32 else 1e-160, dtype)
    m, s = np.zeros(size, dtype), np.zeros(size, dtype)
    ops.adam_step(p, g, m, s, step=1, lr=1e-3)
    assert not s.any() and np.isfinite(p).all() and (m != 0).all()


def test_the_flush_is_undone_after_the_step(threads, dtype=np.float32):
    """After an optimizer step on 1 or 2 threads, every other computation still has IEEE
    subnormals (the flush is set and restored around the kernel on each thread)."""
    tiny = np.finfo(dtype).smallest_subnormal
    for n_threads in (1, 2):
        threads(n_threads)
        p, g, v = np.ones(100_000, dtype), np.zeros(100_000, dtype), np.zeros(100_000, dtype)
        ops.sgd_step(p, g, v, lr=0.1, momentum=0.9)
        assert np.float32(tiny) * np.float32(3) == 3 * tiny  # NumPy, this thread
        a = np.full((300, 300), 1e-23, dtype)  # each product 1e-46 rounds to 0 or 1 ulp...
        b = np.full((300, 300), 1e-19, dtype)  # ...1e-42: a subnormal, on every thread
        c = ops.matmul(a, b)
        assert (c > 0).all() and (c < np.finfo(dtype).tiny).all()


# ---- the L2 penalty's pass: sum of squares and grads += coef * w ------------------------------

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("size", SIZES + [3 * 8192 + 5, (1 << 21) + 7])
def test_l2_penalty_matches_reference(isa, rng, size, dtype):
    w, g = _buffers(rng, size, dtype, 2)
    g_ref = g.copy()
    got = ops.l2_penalty(w, g, coef=0.3)
    want = ref.l2_penalty(w, g_ref, coef=0.3)
    assert got == pytest.approx(want, rel=1e-12)  # float64 sums of squares
    np.testing.assert_allclose(g, g_ref, **TOL[dtype])
    g_before = g.copy()
    assert ops.l2_penalty(w) == got  # the sum alone, the same order
    assert ops.l2_penalty(w.reshape(-1, 1)) == got  # any shape: the flat buffer
    np.testing.assert_array_equal(g, g_before)


@pytest.mark.parametrize("dtype", DTYPES)
def test_l2_penalty_bitwise_at_1_and_2_threads(threads, rng, dtype):
    w, g = _buffers(rng, (1 << 20) + 3, dtype, 2)
    results = []
    for n in (1, 2):
        threads(n)
        gg = g.copy()
        results.append((ops.l2_penalty(w, gg, coef=1e-3), gg))
    assert results[0][0] == results[1][0]
    np.testing.assert_array_equal(results[0][1], results[1][1])


def test_bad_l2_penalty_arguments(rng):
    w, g = _buffers(rng, 10, np.float32, 2)
    bufs = [w, g]
    l2 = ops.l2_penalty
    _unchanged_after(ValueError, "coef must be finite", l2, bufs, w, g, coef=np.inf)
    _unchanged_after(TypeError, "coef must be a real number", l2, bufs, w, g, coef="0.1")
    _unchanged_after(TypeError, "grads must have the dtype of weights", l2, bufs, w,
                     g.astype(np.float64), coef=0.1)
    _unchanged_after(ValueError, "grads must have the shape of weights", l2, bufs, w, g[:5],
                     coef=0.1)
    _unchanged_after(ValueError, "weights and grads must not overlap", l2, bufs, w, w, coef=0.1)
    _unchanged_after(TypeError, "weights must have dtype float32 or float64", l2, bufs,
                     np.zeros(10, np.int32), g, coef=0.1)
    ro = g.copy()
    ro.flags.writeable = False
    _unchanged_after(ValueError, "grads must be writeable", l2, bufs, w, ro, coef=0.1)
    assert l2(np.zeros(0, np.float32)) == 0.0
