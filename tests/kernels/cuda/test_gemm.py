"""The tiled GEMM against NumPy: transposes, strided views, beta, tile edges, float32 and float64."""
import numpy as np
import pytest

from tests.kernels.cuda.gpu import cuda_or_skip

kc = cuda_or_skip()
from suite.kernels.cuda import gemm as gemm_module  # noqa: E402
from suite.kernels.cuda.gemm import gemm  # noqa: E402


@pytest.fixture(params=["kernel", "simulator host product"])
def way(request, monkeypatch):
    """Each test twice: the tiled kernel, and the host product the whole-network tests use under the simulator
    (tests/conftest.py host_gemm_in_simulator), which must give the same results, views and beta included."""
    if request.param != "kernel":
        if not kc.simulated():
            pytest.skip("the host product is a simulator-only stand-in")
        monkeypatch.setattr(gemm_module, "SIMULATOR_HOST_PRODUCT", True)
    return request.param


@pytest.mark.parametrize("trans_a", [False, True])
@pytest.mark.parametrize("trans_b", [False, True])
@pytest.mark.parametrize("dtype,tol", [(np.float32, 1e-5), (np.float64, 1e-12)])
def test_gemm_matches_numpy(trans_a, trans_b, dtype, tol, way):
    rng = np.random.default_rng(0)
    M, K, N = 5, 7, 6  # not multiples of the tile: partial tiles on every edge
    A = rng.standard_normal((K, M) if trans_a else (M, K)).astype(dtype)
    B = rng.standard_normal((N, K) if trans_b else (K, N)).astype(dtype)
    C0 = rng.standard_normal((M, N)).astype(dtype)
    want = 0.5 * (A.T if trans_a else A) @ (B.T if trans_b else B) + 2.0 * C0
    C = kc.to_device(C0)
    got = gemm(A, B, C, trans_a=trans_a, trans_b=trans_b, alpha=0.5, beta=2.0)
    np.testing.assert_allclose(kc.to_host(got), want, rtol=tol, atol=tol)


def test_gemm_beta_zero_ignores_nan_output_and_views_work(way):
    rng = np.random.default_rng(1)
    big = np.full((3, 4, 5), np.nan, np.float32)
    dev = kc.to_device(big)
    A = rng.standard_normal((4, 3)).astype(np.float32)
    B = rng.standard_normal((3, 5)).astype(np.float32)
    gemm(A, B, dev[1], beta=0.0)  # a view: one "time step" of a (T, B, N) buffer
    host = kc.to_host(dev)
    np.testing.assert_allclose(host[1], A @ B, rtol=1e-5, atol=1e-5)
    assert np.isnan(host[0]).all() and np.isnan(host[2]).all()


def test_gemm_other_tile_and_new_output():
    rng = np.random.default_rng(2)
    A = rng.standard_normal((3, 9))
    B = rng.standard_normal((9, 2))
    np.testing.assert_allclose(kc.to_host(gemm(A, B, tile=8)), A @ B, rtol=1e-12)


def test_gemm_rejects_bad_shapes():
    with pytest.raises(ValueError, match="op\\(A\\) is 2x3 but op\\(B\\) is 4x2"):
        gemm(np.zeros((2, 3)), np.zeros((4, 2)))
    with pytest.raises(ValueError, match="one dtype"):
        gemm(np.zeros((2, 3), np.float32), np.zeros((3, 2)))


def test_simulator_threads_of_a_block_share_each_call_sites_shared_array():
    """tests/conftest.py makes the simulator's shared-array lookup atomic: threads asking at once from one line
    get one array, and two lines get two (as numba keys them), so the GEMM's tiles are really shared."""
    import threading

    from numba.cuda.simulator import kernelapi

    shared = kernelapi.FakeCUDAShared(0)
    got, start = [], threading.Barrier(8)

    def ask():
        start.wait()
        a = shared.array((2, 2), np.float32)
        b = shared.array((3,), np.float64)  # another line: another array (one line would alias, as in numba)
        got.append((a, b))

    threads = [threading.Thread(target=ask) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len({id(a) for a, _ in got}) == 1 and len({id(b) for _, b in got}) == 1
    a, b = got[0]
    assert a is not b and a.shape == (2, 2) and b.dtype == np.float64
    assert kernelapi.FakeCUDAShared.array.__module__ == "tests.conftest"
