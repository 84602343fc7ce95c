"""The shared block reductions and column sums against NumPy, in each dtype they serve."""
import numpy as np
import pytest

from tests.kernels.cuda.gpu import cuda_or_skip

kc = cuda_or_skip()
from numba import float32, float64, int64  # noqa: E402

from suite.kernels.cuda.reduce import block_max, block_min, block_sum, column_sums  # noqa: E402

cuda = kc.cuda
THREADS = 8  # a power of two; the tests give each thread several items, and several blocks
_NB = {np.float64: float64, np.float32: float32, np.int64: int64}


def _reduce_kernel(nb_type):
    @cuda.jit
    def kernel(x, out):
        """Block b reduces its row x[b] three ways through one shared array, reused at once."""
        red = cuda.shared.array(THREADS, nb_type)
        b = cuda.blockIdx.x
        tid = cuda.threadIdx.x
        s = x[b, tid]
        hi = x[b, tid]
        lo = x[b, tid]
        for k in range(tid + THREADS, x.shape[1], THREADS):
            s += x[b, k]
            hi = max(hi, x[b, k])
            lo = min(lo, x[b, k])
        total = block_sum(red, s)
        top = block_max(red, hi)
        bottom = block_min(red, lo)
        if tid == THREADS - 1:  # any thread: every thread gets the results
            out[b, 0] = total
            out[b, 1] = top
            out[b, 2] = bottom
    return kernel


@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.int64])
def test_block_reductions_match_numpy(dtype):
    rng = np.random.default_rng(0)
    x = (rng.standard_normal((3, 21)) * 100).astype(dtype)  # 21: the last stride is partial
    out = kc.to_device(np.zeros((3, 3), dtype))
    _reduce_kernel(_NB[dtype])[3, THREADS](kc.to_device(x), out)
    got = kc.to_host(out)
    tol = dict(rtol=1e-5) if dtype == np.float32 else dict(rtol=1e-12)
    np.testing.assert_allclose(got[:, 0], x.sum(axis=1), **tol)
    np.testing.assert_array_equal(got[:, 1], x.max(axis=1))
    np.testing.assert_array_equal(got[:, 2], x.min(axis=1))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_column_sums_add_rows_in_order(dtype):
    a = np.random.default_rng(1).standard_normal((7, 5)).astype(dtype)
    want = np.zeros(5, dtype)
    for row in a:  # the kernel's order, so the sums agree to the bit
        want += row
    out = kc.cuda.device_array(5, dtype)
    column_sums[kc.blocks(5, 4), 4](kc.to_device(a), out)
    np.testing.assert_array_equal(kc.to_host(out), want)
