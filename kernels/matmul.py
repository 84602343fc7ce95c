"""Matrix products too small for BLAS to be quick: a few rows times a weight matrix.

The per-step products of an LSTM at small batch (5 rows for a beam of 5,
16 for a half of a 32-row training batch) are a few rows of activations
times W (K, N). OpenBLAS either runs a GEMV per row, reading all
of W each time, or a GEMM that repacks all of W on every call. Here W is
streamed once in blocks of eight rows; each block (8 x N floats, 24-32 KB at
N = 768-1024) stays in L1 while every row of ``a`` uses it, and each pass over
a row of ``out`` does eight multiply-adds per load and store of it.

`bench/bench_matmul.py` (one thread, AVX2 AMD EPYC, 2026-12-07, median
microseconds; another job on the other core), h @ W_hh at H = 256: 2 rows 29
against OpenBLAS's GEMM 192 (and about 33 for the GEMV a row the kernels ran
before for 2 to 7 rows), 5 rows 68 against 243, 8 rows 123 against 197, 16
rows 220 against 241; at H = 192, 16 rows 112 against 173 (a half of a
32-row batch when training splits it). One row is BLAS's GEMV, as quick as
ours (1.03-1.24 x), so it stays BLAS; from about 16 rows up BLAS is as quick or
quicker (H = 512: 16 rows 1059 against 964), hence SMALL_ROWS. torch's own
GEMM is quicker than both from 16 rows up (the GEMM floor of bench_lstm.py).
"""
import numpy as np
from numba import njit

from suite.kernels.config import JIT

SMALL_ROWS = 16
"""matmul_into uses rows_matmul_acc from 2 rows up to this many, np.dot's BLAS for one row and above."""


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
    """out = a @ W: rows_matmul_acc for 2 to SMALL_ROWS rows, BLAS otherwise."""
    if 1 < a.shape[0] <= SMALL_ROWS:
        out[:] = 0
        rows_matmul_acc(a, W, out)
    else:
        np.dot(a, W, out)
