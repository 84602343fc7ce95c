"""Matrix products too small for BLAS to be quick: a few rows times a weight matrix.

The per-step products of an LSTM at small batch (one row when reading or
generating, 5 for a beam, 16 for a half of 32 rows) are a few rows of
activations times W (K, N). OpenBLAS either runs a GEMV per row, reading all
of W each time, or a GEMM that repacks all of W on every call. Here W is
streamed once in blocks of eight rows; each block (8 x N floats, 24-32 KB at
N = 768-1024) stays in L1 while every row of ``a`` uses it, and each pass over
a row of ``out`` does eight multiply-adds per load and store of it.

Measured on the AVX2 AMD EPYC, one thread, 2026-12-07 (scratch timing of
``out = a @ W``, median of 7x300 calls; ours against np.dot inside @njit, the
SciPy OpenBLAS every kernel calls), K = 256, N = 1024: 1 row 17.9 against
20.9 us, 5 rows 77 against 96, 8 rows 116 against 201, 16 rows 163 against
310; from 24 rows on BLAS is as quick or quicker (SMALL_ROWS). The
transposed shape of the backward pass (K = 1024, N = 256): 1 row even, 8 rows
91 against 198 us.
"""
import numpy as np
from numba import njit

from suite.kernels.config import JIT

SMALL_ROWS = 16
"""matmul_into uses rows_matmul_acc up to this many rows, np.dot's BLAS above."""


@njit(**JIT)
def rows_matmul_acc(a, W, out):
    """out += a @ W for a (M, K), W (K, N) and out (M, N), rows of W contiguous."""
    M, K = a.shape
    N = out.shape[1]
    k = 0
    while k + 8 <= K:
        r0, r1, r2, r3 = W[k], W[k + 1], W[k + 2], W[k + 3]
        r4, r5, r6, r7 = W[k + 4], W[k + 5], W[k + 6], W[k + 7]
        for m in range(M):
            x = a[m]
            z = out[m]
            a0, a1, a2, a3 = x[k], x[k + 1], x[k + 2], x[k + 3]
            a4, a5, a6, a7 = x[k + 4], x[k + 5], x[k + 6], x[k + 7]
            for j in range(N):
                z[j] += ((a0 * r0[j] + a1 * r1[j]) + (a2 * r2[j] + a3 * r3[j])) + \
                        ((a4 * r4[j] + a5 * r5[j]) + (a6 * r6[j] + a7 * r7[j]))
        k += 8
    while k < K:
        row = W[k]
        for m in range(M):
            s = a[m, k]
            z = out[m]
            for j in range(N):
                z[j] += s * row[j]
        k += 1


@njit(**JIT)
def matmul_into(a, W, out):
    """out = a @ W: rows_matmul_acc up to SMALL_ROWS rows, BLAS above."""
    if a.shape[0] <= SMALL_ROWS:
        out[:] = 0
        rows_matmul_acc(a, W, out)
    else:
        np.dot(a, W, out)
