"""Training from data larger than the memory it may use: memory-mapped inputs are read batch by
batch, never copied whole (RssAnon, the process's own memory, stays far below the file)."""
import subprocess
import sys

import numpy as np
import pytest

import pynn

CHILD = r"""
import sys
import numpy as np
import pynn

def anon_mb():
    for line in open("/proc/self/status"):
        if line.startswith("RssAnon:"):
            return int(line.split()[1]) / 1024

path, dtype, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
X = np.load(path, mmap_mode="r")
y = np.arange(n) % 10
before = anon_mb()
model = pynn.Sequential([pynn.Dense(784, 64, "relu"), pynn.Dense(64, 10)], seed=0)
model.fit(X, y, loss="cross_entropy", optimizer=pynn.SGD(0.01), epochs=1, batch_size=256,
          validation_split=0.1)
scores = model.evaluate(X[:5000], y[:5000])
print(anon_mb() - before, X.nbytes / 2**20, scores["loss"])
"""


@pytest.mark.slow  # measures memory: not under the sanitizers' allocator (plain stage only)
@pytest.mark.parametrize("dtype,n", [("float32", 60000), ("uint8", 60000)])
def test_fit_on_a_memory_map_keeps_anonymous_memory_small(tmp_path, dtype, n):
    path = tmp_path / "X.npy"
    X = np.lib.format.open_memmap(path, mode="w+", dtype=dtype, shape=(n, 784))
    rng = np.random.default_rng(0)
    for start in range(0, n, 10000):
        X[start:start + 10000] = rng.integers(0, 255, (10000, 784)).astype(dtype) / (
            255 if dtype == "float32" else 1)
    X.flush()
    del X
    out = subprocess.run([sys.executable, "-c", CHILD, str(path), dtype, str(n)],
                         capture_output=True, text=True, timeout=300, check=False)
    assert out.returncode == 0, out.stderr[-2000:]
    grew_mb, file_mb, loss = (float(v) for v in out.stdout.split())
    assert np.isfinite(loss)
    # the float32 file is 180 MB: a copy of it would be more than the whole bound
    assert grew_mb < 40, f"RssAnon grew {grew_mb:.0f} MB for a {file_mb:.0f} MB file"


@pytest.mark.parametrize("dtype", ["float32", "uint8", "float64"])
def test_a_memory_map_trains_like_the_array_it_holds(tmp_path, dtype):
    rng = np.random.default_rng(1)
    X = (rng.random((300, 784)) * 255).astype(dtype)
    y = rng.integers(0, 10, 300)
    np.save(tmp_path / "X.npy", X)
    mapped = np.load(tmp_path / "X.npy", mmap_mode="r")
    a = pynn.Sequential([pynn.Dense(784, 16, "relu"), pynn.Dense(16, 10)], seed=0)
    b = pynn.Sequential([pynn.Dense(784, 16, "relu"), pynn.Dense(16, 10)], seed=0)
    for shuffle in (True, False):
        a.fit(X, y, loss="cross_entropy", optimizer=pynn.SGD(1e-4), epochs=2, batch_size=32,
              shuffle=shuffle, seed=3)
        b.fit(mapped, y, loss="cross_entropy", optimizer=pynn.SGD(1e-4), epochs=2,
              batch_size=32, shuffle=shuffle, seed=3)
        assert a.params.tobytes() == b.params.tobytes()
    np.testing.assert_array_equal(a.predict(X), b.predict(mapped))
    bad = np.lib.format.open_memmap(tmp_path / "bad.npy", mode="w+", dtype="float64",
                                    shape=(20000, 784))
    bad[12345, 7] = 1e300  # finite in float64, infinite in the model's float32
    with pytest.raises(ValueError, match="rows 8192 to"):
        a.fit(bad, np.zeros(20000, int), epochs=1)
