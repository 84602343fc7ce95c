import numpy as np
import pytest

from suite.threads import single_blas_thread


def test_single_blas_thread_limits_every_blas_and_restores_it():
    threadpoolctl = pytest.importorskip("threadpoolctl")
    import scipy.linalg  # noqa: F401 - loads SciPy's BLAS, the one numba's np.dot calls

    np.dot(np.ones((4, 4)), np.ones((4, 4)))
    before = {m["filepath"]: m["num_threads"] for m in threadpoolctl.threadpool_info() if m["user_api"] == "blas"}
    assert before, "no BLAS found to limit"
    with single_blas_thread():
        inside = [m["num_threads"] for m in threadpoolctl.threadpool_info() if m["user_api"] == "blas"]
        assert inside and set(inside) == {1}
    after = {m["filepath"]: m["num_threads"] for m in threadpoolctl.threadpool_info() if m["user_api"] == "blas"}
    assert after == before


def test_training_blas_threads_one_unless_the_user_named_a_count(monkeypatch):
    threadpoolctl = pytest.importorskip("threadpoolctl")
    import scipy.linalg  # noqa: F401

    from suite.threads import training_blas_threads

    def blas_threads():
        return {m["num_threads"] for m in threadpoolctl.threadpool_info() if m["user_api"] == "blas"}

    with threadpoolctl.threadpool_limits(limits=2, user_api="blas"):  # as on a 2-core machine by default
        for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            monkeypatch.delenv(name, raising=False)
        with training_blas_threads(True):
            assert blas_threads() == {1}
        assert blas_threads() == {2}
        with training_blas_threads(False):
            assert blas_threads() == {2}
        monkeypatch.setenv("OPENBLAS_NUM_THREADS", "2")  # the user's choice wins
        with training_blas_threads(True):
            assert blas_threads() == {2}


def test_single_blas_thread_reaches_the_kernels_blas_before_any_kernel_ran():
    """In a new process no kernel has loaded SciPy's OpenBLAS (numba's np.dot calls it) when the block starts: the
    limit must reach it all the same (it used to stay at two threads inside the block)."""
    pytest.importorskip("threadpoolctl")
    import os
    import subprocess
    import sys

    code = """
import numpy as np
import threadpoolctl
from suite.kernels.lstm import _dot
from suite.threads import single_blas_thread
with single_blas_thread():
    _dot(np.ones((64, 64), np.float32), np.ones((64, 64), np.float32))
    threads = {m["prefix"] + m["version"]: m["num_threads"] for m in threadpoolctl.threadpool_info()
               if m["user_api"] == "blas"}
assert set(threads.values()) == {1}, threads
"""
    env = dict(os.environ, OPENBLAS_NUM_THREADS="2")
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
