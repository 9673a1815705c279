"""Reliability, second pass (issue 18): each class of failure, tried as an adversary would, in a
child process where a hang or a crash is possible (tests/harness.py)."""
import gc
import weakref

import numpy as np
import pytest
from harness import run_case

import pynn

TRAINED = """
X = np.random.default_rng(0).random((2048, 300), dtype=np.float32)
y = np.arange(2048) % 10
pynn.set_num_threads(2)
model = pynn.Sequential([pynn.Dense(300, 256, "relu"), pynn.Dense(256, 10)], seed=0)
model.fit(X, y, loss="cross_entropy", epochs=1, batch_size=512)   # threaded kernels ran
ref = model(X)
"""


# ---- fork ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("how", [
    """
import multiprocessing as mp
def work(i):
    return np.array_equal(model(X), ref), pynn.get_num_threads()
with mp.get_context("fork").Pool(2) as pool:
    results = pool.map(work, range(4))
assert results == [(True, 1)] * 4, results
""",
    """
import os
pid = os.fork()
if pid == 0:
    ok = np.array_equal(model(X), ref)
    model.fit(X, y, epochs=1, batch_size=256)   # training in the child too
    os._exit(0 if ok else 3)
assert os.waitpid(pid, 0)[1] == 0
""",
    """
import os, warnings
pid = os.fork()
if pid == 0:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        pynn.set_num_threads(2)          # refused in the child: it would hang
    os._exit(0 if caught and pynn.get_num_threads() == 1 and
             np.array_equal(model(X), ref) else 3)
assert os.waitpid(pid, 0)[1] == 0
""",
], ids=["multiprocessing-fork-pool", "os.fork-train", "child-asks-for-threads"])
def test_forked_children_never_hang(how):
    outcome = run_case(TRAINED + how, timeout=120)
    assert outcome.kind == "clean", outcome


# ---- threads -------------------------------------------------------------------------------------
@pytest.mark.parametrize("n,expect", [(2**70, None), (5000, None), (10**6, None),
                                      (0, "ValueError"), (-3, "ValueError"),
                                      (2.0, "TypeError"), (True, "TypeError"),
                                      ("4", "TypeError")])
def test_thread_counts_are_checked_and_capped(n, expect):
    case = f"""
import warnings
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    pynn.set_num_threads({n!r})
assert pynn.get_num_threads() <= pynn._platform.max_threads()
X = np.ones((512, 512), np.float32)
pynn.ops.matmul(X, X)
"""
    outcome = run_case(case, expect=expect, timeout=60)
    assert outcome.kind == "clean", outcome


@pytest.mark.slow  # limits address space: not under the sanitizers' shadow memory
def test_threads_the_system_refuses_are_an_exception_not_an_abort():
    """With too little address space for the threads' stacks, OpenMP would abort the process;
    set_num_threads raises and the kernels keep running on the threads they had."""
    case = """
import resource
pynn.set_num_threads(1)
vm = int(open("/proc/self/status").read().split("VmSize:")[1].split()[0]) * 1024
resource.setrlimit(resource.RLIMIT_AS, (vm + 12 * 2**20, resource.getrlimit(resource.RLIMIT_AS)[1]))
try:
    pynn.set_num_threads(pynn._platform.max_threads())
except RuntimeError as exc:
    assert "use fewer threads" in str(exc), exc
assert pynn.get_num_threads() >= 1
X = np.ones((64, 64), np.float32)
assert float(pynn.ops.matmul(X, X)[0, 0]) == 64.0
"""
    outcome = run_case(case, timeout=60)
    assert outcome.kind == "clean", outcome


def test_huge_thread_count_warns():
    before = pynn.get_num_threads()
    try:
        with pytest.warns(RuntimeWarning, match="capped"):
            pynn.set_num_threads(10**9)
    finally:
        pynn.set_num_threads(before)


# ---- memory held by reference cycles -------------------------------------------------------------
def test_dropped_models_are_freed_without_the_garbage_collector():
    X = np.random.default_rng(0).random((64, 20))
    y = np.arange(64) % 3
    gc.disable()
    try:
        model = pynn.Sequential([pynn.Dense(20, 8, "relu"), pynn.Dense(8, 3)], seed=0)
        model.fit(X, y, loss="cross_entropy", epochs=2,
                  callbacks=[pynn.EarlyStopping(patience=1)], validation_split=0.25)
        ref = weakref.ref(model)
        history = model.history
        del model
        assert ref() is None, "the model outlived its last reference (a reference cycle)"
        assert history.model is None and len(history.history["loss"]) == 2
    finally:
        gc.enable()


@pytest.mark.slow  # measures memory: not under the sanitizers' allocator
def test_many_dropped_models_do_not_pile_up():
    case = """
import gc
gc.disable()
X = np.random.default_rng(0).random((2000, 500), dtype=np.float32)
y = np.arange(2000) % 10
model = pynn.Sequential([pynn.Dense(500, 500, "relu"), pynn.Dense(500, 10)], seed=0)
model.fit(X, y, loss="cross_entropy", epochs=1, batch_size=500)
del model
"""
    outcome = run_case(case, repeat=12, leak_mb=40, timeout=120)
    assert outcome.kind == "clean", outcome


# ---- values that only go wrong after the cast to float32 -----------------------------------------
@pytest.mark.parametrize("case,match", [
    ("m.fit(np.ones((4, 3)), np.array([1e39, 0, 0, 0]), loss='mse')", "y overflows float32"),
    ("m.fit(np.ones((4, 3)), np.zeros(4), loss='mse', sample_weight=[1e39, 1, 1, 1])",
     "sample_weight overflows float32"),
    ("m.fit(np.full((4, 3), 1e39), np.zeros(4), loss='mse')", "X contains NaN or inf"),
    ("m.set_weights([np.full((3, 1), 1e39), np.zeros(1)])", "overflows float32"),
    ("m.layers[0].W = np.full((3, 1), -1e39)", "overflows float32"),
    ("m.fit(np.ones((4, 3)), np.zeros(4), loss='mse', sample_weight=[1e-50] * 4)",
     "underflow"),
])
def test_float64_values_that_overflow_float32_are_refused_before_any_change(case, match):
    m = pynn.Sequential([pynn.Dense(3, 1)], seed=0)
    before = m.params.copy()
    with pytest.raises(ValueError, match=match):
        exec(case, {"m": m, "np": np})  # noqa: S102  (the cases are literals above)
    np.testing.assert_array_equal(m.params, before)


# ---- smaller --------------------------------------------------------------------------------------
def test_an_init_that_gives_nan_is_refused():
    with pytest.raises(ValueError, match=r"layers\[1\]'s init .* NaN or inf"):
        pynn.Sequential([pynn.Dense(3, 4), pynn.Dense(4, 2, init=lambda i, o, r:
                                                          np.full((i, o), np.nan))])
    with pytest.raises(ValueError, match="overflow|NaN or inf"):
        pynn.Sequential([pynn.Dense(3, 4, init=lambda i, o, r: np.full((i, o), 1e300))])


def test_an_optimizer_serves_one_model_even_without_state():
    X, y = np.ones((4, 3)), np.zeros(4)
    opt = pynn.SGD(pynn.StepDecay(0.1, step_size=1))   # no state buffers, but an epoch count
    a = pynn.Sequential([pynn.Dense(3, 1)], seed=0)
    b = pynn.Sequential([pynn.Dense(3, 1)], seed=1)
    a.fit(X, y, loss="mse", optimizer=opt, epochs=3)
    with pytest.raises(ValueError, match="another model"):
        b.fit(X, y, loss="mse", optimizer=opt)


@pytest.mark.parametrize("h,error", [(1e-300, ValueError), (0.0, ValueError), (2.0, ValueError),
                                     ("1e-4", TypeError), (True, TypeError)])
def test_gradcheck_refuses_steps_it_cannot_use(h, error):
    model = pynn.Sequential([pynn.Dense(3, 2)], seed=0)
    with pytest.raises(error, match="h must"):
        pynn.gradcheck(model, np.ones((2, 3)), [0, 1], loss="cross_entropy", h=h)


def test_gradcheck_takes_numpy_floats():
    model = pynn.Sequential([pynn.Dense(3, 2, "tanh"), pynn.Dense(2, 2)], seed=0)
    X = np.random.default_rng(0).random((4, 3))
    assert pynn.gradcheck(model, X, [0, 1, 1, 0], loss="cross_entropy",
                          h=np.float32(1e-5)) < 1e-6


@pytest.mark.parametrize("sizes", [(2**40, 2**40), (2**31, 2**31), (10**6, 10**6)])
def test_impossible_layer_sizes_are_a_memory_error_naming_the_layer(sizes):
    outcome = run_case(f"pynn.Sequential([pynn.Dense(4, {sizes[0]}), "
                       f"pynn.Dense({sizes[0]}, {sizes[1]})])",
                       expect="MemoryError", match=r"layers\[1\]", memory_mb=2048, timeout=60)
    assert outcome.kind == "clean", outcome


# ---- the harness itself tells the kinds apart ----------------------------------------------------
@pytest.mark.parametrize("case,expect,kind", [
    ("pass", None, "clean"),
    ("raise ValueError('x must be 1')", "ValueError", "clean"),
    ("raise KeyError('x')", "ValueError", "wrong-exception"),
    ("pass", "ValueError", "silent"),
    ("import os; os.abort()", None, "crash"),
    ("import time; time.sleep(30)", None, "hang"),
])
def test_harness_classifies(case, expect, kind):
    assert run_case(case, expect=expect, timeout=5).kind == kind


# ---- files that never end, block, or inflate ------------------------------------------------------
def _idx_header(shape, type_code=0x08):
    import struct

    return bytes([0, 0, type_code, len(shape)]) + b"".join(struct.pack(">I", d) for d in shape)


@pytest.mark.parametrize("kind", ["dev-zero", "fifo", "gzip-bomb", "lying-gzip-header",
                                  "lying-raw-header"])
def test_read_idx_is_bounded_by_its_header(kind, tmp_path):
    import gzip

    path = tmp_path / "data.idx"
    expect, match = "ValueError", None
    if kind == "dev-zero":
        path, match = "/dev/zero", "not a regular file"
    elif kind == "fifo":
        import os

        os.mkfifo(path)
        match = "not a regular file"
    elif kind == "gzip-bomb":  # 10 promised bytes, then 2 GB of zeros compressed to ~2 MB
        with gzip.open(path, "wb", compresslevel=9) as f:
            f.write(_idx_header((10,)))
            block = bytes(1 << 24)
            for _ in range(128):
                f.write(block)
        match = "trailing bytes"
    elif kind == "lying-gzip-header":  # claims 2**32 x 2**32 bytes, holds 100
        path.write_bytes(gzip.compress(_idx_header((2**32 - 1, 2**32 - 1)) + bytes(100)))
        match = "truncated"
    else:
        path.write_bytes(_idx_header((2**32 - 1, 2**32 - 1)) + bytes(100))
        match = "truncated"
    outcome = run_case(f"pynn.datasets.read_idx({str(path)!r})", expect=expect, match=match,
                       memory_mb=1024, timeout=60)
    assert outcome.kind == "clean", outcome


# ---- model files -----------------------------------------------------------------------------
def _small_model():
    model = pynn.Sequential([pynn.Dense(3, 2)], seed=0)
    model.compile(loss="cross_entropy", optimizer=pynn.SGD(0.1, momentum=0.9))
    return model


@pytest.mark.parametrize("params_dtype", [">f4", "<f2", "<i4", "<f8"])
def test_load_refuses_parameters_of_another_dtype(tmp_path, params_dtype):
    import io
    import json
    import zipfile

    path = tmp_path / "m.npz"
    pynn.save(_small_model(), path)
    with zipfile.ZipFile(path) as z:
        entries = {n[:-4]: np.load(io.BytesIO(z.read(n))) for n in z.namelist()}
    entries["params"] = entries["params"].astype(params_dtype)
    meta = json.loads(entries["meta"].tobytes())
    import hashlib

    meta["params_sha256"] = hashlib.sha256(entries["params"].view(np.uint8)).hexdigest()
    entries["meta"] = np.frombuffer(json.dumps(meta).encode(), np.uint8)
    np.savez(path, **entries)
    with pytest.raises(pynn.ModelFileError, match="do not match the architecture"):
        pynn.load(path)


def test_save_follows_symlinks_keeps_modes_and_refuses_devices(tmp_path):
    import os
    import stat

    model = _small_model()
    target = tmp_path / "real.npz"
    link = tmp_path / "link.npz"
    pynn.save(model, target)
    os.chmod(target, 0o644)
    os.symlink(target, link)
    pynn.save(model, link)
    assert os.path.islink(link), "the link was replaced by a file"
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o644
    old = os.umask(0o022)
    try:
        pynn.save(model, tmp_path / "new.npz")
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(tmp_path / "new.npz").st_mode) == 0o644
    with pytest.raises(ValueError, match="not a regular file"):
        pynn.save(model, "/dev/null")
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with pytest.raises(ValueError, match="not a regular file"):
        pynn.save(model, fifo)
    assert pynn.load(os.fsencode(target)).params.tobytes() == model.params.tobytes()


def test_a_killed_save_leaves_nothing_behind_for_long(tmp_path):
    path = tmp_path / "m.npz"
    case = f"""
import os, signal
model = pynn.Sequential([pynn.Dense(3, 2)], seed=0)
import numpy
real_savez = numpy.savez
def dying_savez(f, **arrays):
    f.write(b"partial")
    f.flush()
    os.kill(os.getpid(), signal.SIGKILL)
numpy.savez = dying_savez
pynn.save(model, {str(path)!r})
"""
    assert run_case(case, timeout=30).kind == "crash"
    assert any(p.name.endswith(".pynn-tmp") for p in tmp_path.iterdir())
    pynn.save(_small_model(), path)  # the next save to the same path cleans up
    assert [p.name for p in tmp_path.iterdir()] == ["m.npz"]


def test_save_refuses_what_load_could_not_rebuild(tmp_path):
    class MyLoss(pynn.CrossEntropy):
        pass

    class MySchedule(pynn.optim.Schedule):
        def __call__(self, epoch):
            return 0.1

    model = pynn.Sequential([pynn.Dense(3, 2)], seed=0)
    model.compile(loss=MyLoss())
    with pytest.raises(TypeError, match="not one of pynn's"):
        pynn.save(model, tmp_path / "a.npz")
    model = pynn.Sequential([pynn.Dense(3, 2)], seed=0)
    model.compile(loss="cross_entropy", optimizer=pynn.SGD(MySchedule()))
    with pytest.raises(TypeError, match="schedule"):
        pynn.save(model, tmp_path / "b.npz")
    assert list(tmp_path.iterdir()) == []
