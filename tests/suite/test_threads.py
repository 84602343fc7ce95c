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
