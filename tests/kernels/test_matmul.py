"""kernels/matmul.py: small-row products against NumPy in float64, on both sides of SMALL_ROWS."""
import numpy as np
import pytest

from suite.kernels.matmul import SMALL_ROWS, matmul_into, row_matmul_add, rows_matmul_acc


@pytest.mark.parametrize("M", [1, 2, 4, 5, 7, 9, SMALL_ROWS, SMALL_ROWS + 1, 40])
@pytest.mark.parametrize("K", [1, 7, 8, 19, 64])
def test_matmul_into_matches_numpy(M, K):
    rng = np.random.default_rng(M * 100 + K)
    a = rng.standard_normal((M, K)).astype(np.float32)
    W = rng.standard_normal((K, 24)).astype(np.float32)
    out = np.full((M, 24), np.nan, np.float32)  # overwritten, not added to
    matmul_into(a, W, out)
    ref = a.astype(np.float64) @ W.astype(np.float64)
    np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-5 * np.sqrt(K))


def test_rows_matmul_acc_adds_to_out_in_float64_exactly_enough():
    rng = np.random.default_rng(0)
    a = rng.standard_normal((7, 21))  # a group of four rows and three alone
    W = rng.standard_normal((21, 10))
    out = rng.standard_normal((7, 10))
    start = out.copy()
    rows_matmul_acc(a, W, out)
    np.testing.assert_allclose(out, start + a @ W, rtol=1e-12, atol=1e-12)


def test_strided_rows_and_a_transposed_weight_view():
    """The backward pass hands in rows of a bigger array and, in tests, transposed views."""
    rng = np.random.default_rng(1)
    big = rng.standard_normal((6, 6, 33))
    a = big[2, :, :]                 # rows of a 3-D array
    W = rng.standard_normal((12, 33)).T  # (33, 12), not C-contiguous
    out = np.empty((6, 12))
    matmul_into(a, W, out)
    np.testing.assert_allclose(out, a @ W, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("through_blas", [False, True])
def test_row_matmul_add_adds_one_row_with_or_without_blas(through_blas):
    rng = np.random.default_rng(2)
    x = rng.standard_normal(19)
    W = rng.standard_normal((19, 12))
    z = rng.standard_normal(12)
    start = z.copy()
    tmp = np.full(12, np.nan)  # overwritten by the GEMV, never read first
    if through_blas:
        row_matmul_add(x, W, z, tmp)
        assert not np.isnan(tmp).any()
    else:
        row_matmul_add(x, W, z)
    np.testing.assert_allclose(z, start + x @ W, rtol=1e-12, atol=1e-12)
