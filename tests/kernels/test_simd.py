"""Our short-N GEMM (kernels/simd.py) against NumPy, every tile path, and its fallbacks to BLAS."""
import numpy as np
import pytest
from numba import njit

from suite.kernels.simd import _gemm_cols_f32, gemm_cols


@njit(cache=True)
def _call(A, u, z):
    gemm_cols(A, u, z)


@pytest.mark.parametrize("M", [1, 3, 4, 7, 16])
@pytest.mark.parametrize("N", [8, 16, 24, 40])
@pytest.mark.parametrize("K", [1, 5, 33])
def test_matches_numpy_every_tile(M, N, K):
    rng = np.random.default_rng(M * 1000 + N * 10 + K)
    A = rng.standard_normal((M, K)).astype(np.float32)
    u = rng.standard_normal((K, N)).astype(np.float32)
    z = np.full((M, N), np.nan, np.float32)  # every element written
    _gemm_cols_f32(A, u, z)
    ref = A.astype(np.float64) @ u.astype(np.float64)
    np.testing.assert_allclose(z, ref, rtol=0, atol=2e-6 * K)


def test_dispatch_falls_back_to_blas():
    """float64, N not whole vectors and non-contiguous arrays go to np.dot, with the same results."""
    rng = np.random.default_rng(0)
    for A, u in ((rng.standard_normal((6, 9)), rng.standard_normal((9, 16))),            # float64
                 (rng.standard_normal((6, 9)).astype(np.float32),
                  rng.standard_normal((9, 12)).astype(np.float32)),                       # N = 12
                 (rng.standard_normal((9, 6)).astype(np.float32).T,
                  rng.standard_normal((9, 16)).astype(np.float32))):                      # A transposed
        z = np.zeros((A.shape[0], u.shape[1]), A.dtype)
        _call(A, u, z)
        np.testing.assert_allclose(z, A @ u, rtol=1e-5, atol=1e-5)
    A = rng.standard_normal((8, 5)).astype(np.float32)
    u = rng.standard_normal((5, 16)).astype(np.float32)
    z = np.zeros((8, 16), np.float32)
    _call(A, u, z)  # the fast path through the dispatcher
    np.testing.assert_allclose(z, A @ u, rtol=0, atol=1e-5)
