"""A tiled shared-memory GEMM of our own: C = alpha * op(A) @ op(B) + beta * C on the device.

Each block computes a TILE x TILE tile of C; its threads load one tile of
op(A) and one of op(B) into shared memory a step along K, synchronise, and
accumulate the tile product in a register (the textbook scheme, as in the
CUDA programming guide's shared-memory matrix multiply). Transposes are read
in place (no copy), and A, B, C may be strided views of larger device arrays
(e.g. one time step of a (T, B, G*H) buffer). beta = 0 never reads C, so an
uninitialised output is fine.

Used by the recurrent kernels for the input projection of all steps at once
and for the recurrent step, and by conv (im2col) and Linear layers.
"""
from functools import lru_cache

import numpy as np
from numba import float32, float64

from suite.kernels.cuda import blocks, cuda, simulated, to_device

TILE = 4 if simulated() else 16
"""Tile edge: 16 x 16 threads a block on a GPU. The simulator runs each thread
as a Python thread (~65 us each), so there a 4 x 4 tile keeps tests quick and
puts tile edges inside the tiny test shapes."""


SIMULATOR_HOST_PRODUCT = False
"""For tests of whole networks only (tests/suite/test_device*.py turn it on): under numba's simulator, gemm
computes its product with NumPy on the simulator's arrays instead of launching the tiled kernel, whose Python
threads (16 a 4 x 4 tile, two barriers a K-step) took 85 % of those tests' time. The kernel itself stays under
test on its own (tests/kernels/cuda/test_gemm.py) and in every kernel's tests (tests/kernels/cuda/). Ignored on
a GPU: only simulated() reads it."""


@lru_cache(maxsize=None)
def _kernel(tile, dtype):
    nb_type = float32 if dtype == np.float32 else float64

    @cuda.jit
    def gemm_kernel(A, B, C, trans_a, trans_b, alpha, beta, M, N, K):
        sa = cuda.shared.array((tile, tile), nb_type)
        sb = cuda.shared.array((tile, tile), nb_type)
        tx = cuda.threadIdx.x
        ty = cuda.threadIdx.y
        row = cuda.blockIdx.y * tile + ty
        col = cuda.blockIdx.x * tile + tx
        acc = nb_type(0.0)
        for k0 in range(0, K, tile):
            ka = k0 + tx
            if row < M and ka < K:
                sa[ty, tx] = A[ka, row] if trans_a else A[row, ka]
            else:
                sa[ty, tx] = 0.0
            kb = k0 + ty
            if kb < K and col < N:
                sb[ty, tx] = B[col, kb] if trans_b else B[kb, col]
            else:
                sb[ty, tx] = 0.0
            cuda.syncthreads()
            for k in range(tile):
                acc += sa[ty, k] * sb[k, tx]
            cuda.syncthreads()
        if row < M and col < N:
            if beta == 0.0:
                C[row, col] = alpha * acc
            else:
                C[row, col] = alpha * acc + beta * C[row, col]

    return gemm_kernel


def gemm(A, B, C=None, trans_a=False, trans_b=False, alpha=1.0, beta=0.0, tile=None):
    """C = alpha * op(A) @ op(B) + beta * C, on the device; returns C (a new device array when None).

    A : (M, K), or (K, M) with trans_a;  B : (K, N), or (N, K) with trans_b;
    C : (M, N) device array of the same float dtype, or None (then beta is 0).
    NumPy inputs are copied to the device first.
    """
    A, B = to_device(A), to_device(B)
    if A.ndim != 2 or B.ndim != 2:
        raise ValueError(f"gemm takes 2-D arrays, got {A.ndim}-D and {B.ndim}-D")
    M, K = (A.shape[1], A.shape[0]) if trans_a else A.shape
    K2, N = (B.shape[1], B.shape[0]) if trans_b else B.shape
    if K != K2:
        raise ValueError(f"gemm: op(A) is {M}x{K} but op(B) is {K2}x{N}")
    dtype = np.dtype(A.dtype)
    if dtype not in (np.float32, np.float64) or np.dtype(B.dtype) != dtype:
        raise ValueError(f"gemm takes float32 or float64 arrays of one dtype, got {A.dtype} and {B.dtype}")
    if C is None:
        C = cuda.device_array((M, N), dtype)
        beta = 0.0
    elif tuple(C.shape) != (M, N) or np.dtype(C.dtype) != dtype:
        raise ValueError(f"gemm: C must be {M}x{N} {dtype}, got {tuple(C.shape)} {C.dtype}")
    if M == 0 or N == 0:
        return C
    if SIMULATOR_HOST_PRODUCT and simulated():
        a, b = A.copy_to_host(), B.copy_to_host()
        product = dtype.type(alpha) * ((a.T if trans_a else a) @ (b.T if trans_b else b))
        C[:, :] = product if beta == 0.0 else product + dtype.type(beta) * C.copy_to_host()
        return C
    tile = tile or TILE
    kernel = _kernel(tile, dtype.type)
    kernel[(blocks(N, tile), blocks(M, tile)), (tile, tile)](
        A, B, C, bool(trans_a), bool(trans_b), dtype.type(alpha), dtype.type(beta), M, N, K)
    return C
