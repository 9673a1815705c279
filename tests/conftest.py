"""Shared fixtures: run a test on every ISA path this CPU supports, and at 1 and 2 threads."""
import os

import numpy as np
import pytest

import pynn

SUPPORTED_ISAS = pynn._core.isa_supported()


@pytest.fixture(params=SUPPORTED_ISAS)
def isa(request):
    """Each supported SIMD path in turn (the best one is restored afterwards)."""
    pynn.set_isa(request.param)
    yield request.param
    pynn.set_isa("auto")


@pytest.fixture
def threads():
    """Call threads(n) to run the rest of the test at n threads; restored afterwards."""
    before = pynn.get_num_threads()
    yield pynn.set_num_threads
    pynn.set_num_threads(before)


@pytest.fixture
def rng():
    return np.random.default_rng(12345)


@pytest.fixture
def fashion_mnist(monkeypatch):
    """The real Fashion-MNIST, loaded from its default place ($PYNN_DATA ignored).

    Skips when it is not installed, except in CI (CI=true), where that is a failure: .ci/run
    installs it, so missing data there means the accuracy bars silently went untested.
    """
    from pynn import datasets

    monkeypatch.delenv("PYNN_DATA", raising=False)
    try:
        return datasets.load_fashion_mnist()
    except FileNotFoundError as exc:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"CI must have Fashion-MNIST: {exc}")
        pytest.skip(str(exc))


# Subprocesses started by tests (python -c ..., python -m pynn ...) must import the installed
# pynn, never the uncompiled source tree in the current directory: PYTHONSAFEPATH (Python 3.11+)
# keeps the current directory off their sys.path.
os.environ.setdefault("PYTHONSAFEPATH", "1")
