"""The compiled core: build facts, ISA dispatch and thread control."""
import os
import subprocess
import sys

import pytest

import pynn


def test_build_info_has_every_field():
    info = pynn.build_info()
    for key in ("version", "compiler", "openmp", "openmp_version", "isa_built", "isa_supported",
                "isa_selected", "num_threads"):
        assert key in info
    assert info["version"] == pynn.__version__
    assert "generic" in info["isa_built"]
    assert info["isa_selected"] in info["isa_supported"]
    assert info["num_threads"] >= 1


def test_best_isa_selected_by_default():
    pynn.set_isa("auto")
    assert pynn.get_isa() == pynn._core.best_isa()


@pytest.mark.parametrize("isa", pynn._core.isa_supported())
def test_set_isa_switches_path(isa):
    try:
        pynn.set_isa(isa)
        assert pynn.get_isa() == isa
    finally:
        pynn.set_isa("auto")


def test_set_isa_rejects_unknown_and_unsupported():
    with pytest.raises(ValueError, match="isa must be one of"):
        pynn.set_isa("sse9")
    unsupported = [i for i in ("avx2", "avx512") if i not in pynn._core.isa_supported()]
    for isa in unsupported:
        with pytest.raises(ValueError, match="not supported"):
            pynn.set_isa(isa)


def _run_python(code, **env):
    full_env = dict(os.environ)
    full_env.update(env)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=full_env, cwd=os.path.dirname(__file__))


def test_env_var_forces_generic_path():
    result = _run_python("import pynn; print(pynn.get_isa())", PYNN_ISA="generic")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "generic"


def test_env_var_unknown_value_is_a_clear_error():
    result = _run_python("import pynn", PYNN_ISA="mmx")
    assert result.returncode != 0
    assert "PYNN_ISA" in result.stderr and "isa must be one of" in result.stderr


def test_omp_num_threads_is_honoured():
    result = _run_python("import pynn; print(pynn.get_num_threads())", OMP_NUM_THREADS="1")
    assert result.stdout.strip() == "1", result.stderr


OPENMP = pynn.build_info()["openmp"]


def test_set_and_get_num_threads():
    before = pynn.get_num_threads()
    try:
        pynn.set_num_threads(1)
        assert pynn.get_num_threads() == 1
        pynn.set_num_threads(2)
        # a build without OpenMP is serial whatever is asked (its CMake step warns loudly)
        assert pynn.get_num_threads() == (2 if OPENMP else 1)
    finally:
        pynn.set_num_threads(before)


@pytest.mark.parametrize("bad, exc", [(0, ValueError), (-3, ValueError), (1.5, TypeError),
                                      ("2", TypeError), (True, TypeError)])
def test_set_num_threads_rejects_bad_values(bad, exc):
    with pytest.raises(exc, match="n must be"):
        pynn.set_num_threads(bad)


@pytest.mark.skipif(not OPENMP, reason="built without OpenMP: no thread pool to limit")
def test_threadpoolctl_limits_pynn():
    threadpoolctl = pytest.importorskip("threadpoolctl")
    before = pynn.get_num_threads()
    pynn.set_num_threads(2)
    try:
        with threadpoolctl.threadpool_limits(1):
            assert pynn.get_num_threads() == 1
        assert pynn.get_num_threads() == 2
        apis = {lib["internal_api"] for lib in threadpoolctl.threadpool_info()}
        assert "openmp" in apis  # pynn's OpenMP runtime is linked dynamically and visible
    finally:
        pynn.set_num_threads(before)


def test_info_command_prints_build_info():
    result = subprocess.run([sys.executable, "-m", "pynn", "info"], capture_output=True,
                            text=True, cwd=os.path.dirname(__file__))
    assert result.returncode == 0, result.stderr
    assert "isa_selected" in result.stdout and "openmp" in result.stdout
