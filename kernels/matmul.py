"""Matrix products too small for BLAS to be quick: a few rows times a weight matrix.

The per-step products of an LSTM at small batch (5 rows for a beam of 5,
16 for a half of a 32-row training batch) are a few rows of activations
times W (K, N). OpenBLAS runs them as a GEMM that repacks all of W on every
call (the kernels used to call its GEMV once a row below 8 rows, reading all
of W each time). Here four rows of activations share each pass over four rows
of W, in blocks of W that stay in L2 (rows_matmul_acc); one row alone takes
eight rows of W a pass (row_matmul_acc). One row is left to BLAS's GEMV,
which is as quick.

`bench/bench_matmul.py` (one thread, AVX2 AMD EPYC, 2026-12-07, median
microseconds, a training run on the other core), h @ W_hh and dG @ W_hh^T at
H = 192, 256 and 512, ours / OpenBLAS: 2 rows 0.13-0.20, 5 rows 0.22-0.32, 8
rows 0.32-0.53, 16 rows 0.52-0.71, 24 rows 0.72-0.85 (ours / torch.mm 0.44-0.75
at 2 rows, 0.56-1.41 at 16, 0.85-1.41 at 24). One row and 32 rows run BLAS on
both sides, so their 0.99-1.20 and 0.65-1.05 are that run's noise; a scratch
timing of ours at 32-64 rows against BLAS was 0.8-1.7, hence SMALL_ROWS.
"""
import numpy as np
from numba import njit

from suite.kernels.config import JIT

SMALL_ROWS = 24
"""matmul_into uses rows_matmul_acc from 2 rows up to this many, np.dot's BLAS for one row and above."""

W_BLOCK_BYTES = 128 << 10
"""rows_matmul_acc passes over W in blocks of about this many bytes (float32 rows), every row of ``a`` using a
block before the next: W of an H=256 LSTM (1 MiB) does not fit this EPYC's 512 KiB L2, its blocks do."""


@njit(**JIT)
def row_matmul_acc(x, W, z):
    """z += x @ W for one row x (K,), W (K, N): eight rows of W a pass over z, which cuts z's loads and
    stores eightfold (text generation's per-step product: quicker than np.dot's BLAS call and its separate add)."""
    K = x.shape[0]
    N = z.shape[0]
    k = 0
    while k + 8 <= K:
        a0, a1, a2, a3 = x[k], x[k + 1], x[k + 2], x[k + 3]
        a4, a5, a6, a7 = x[k + 4], x[k + 5], x[k + 6], x[k + 7]
        r0, r1, r2, r3 = W[k], W[k + 1], W[k + 2], W[k + 3]
        r4, r5, r6, r7 = W[k + 4], W[k + 5], W[k + 6], W[k + 7]
        for j in range(N):
            z[j] += ((a0 * r0[j] + a1 * r1[j]) + (a2 * r2[j] + a3 * r3[j])) + \
                    ((a4 * r4[j] + a5 * r5[j]) + (a6 * r6[j] + a7 * r7[j]))
        k += 8
    while k < K:
        s = x[k]
        row = W[k]
        for j in range(N):
            z[j] += s * row[j]
        k += 1


GEMV_BLAS_MIN = 1 << 19
"""Weights of at least this many elements make text generation's per-step products go through BLAS's GEMV
(row_matmul_add with a buffer): its two threads split W, where row_matmul_acc runs on one core.
Measured (one row times W (K, 4K), microseconds a product, AVX2 EPYC, 2026-12-07, a scratch loop): two BLAS
threads, ours / GEMV 18.2 / 16.8 at K=256, 42.0 / 27.3 at K=384, 79.8 / 37.4 at K=512; one thread
19.2 / 19.8, 44.6 / 46.0, 71.4 / 77.9 (so at one thread the switch costs up to 9 % from K=384 on). BLAS's sums
can differ with its thread count (363 x 1452 by 3e-5 between one thread and two): a seed's sampled text from a
wide model is repeatable at one thread count, not across them."""


@njit(**JIT)
def row_matmul_add(x, W, z, tmp=None):
    """z += x @ W for one row: BLAS's GEMV into ``tmp`` and an add where tmp is given with z's size, else
    row_matmul_acc (no BLAS call: the same bits whatever BLAS's thread count)."""
    if tmp is not None:
        if tmp.shape[0] == z.shape[0]:
            np.dot(x, W, tmp)
            for j in range(z.shape[0]):
                z[j] += tmp[j]
            return
    row_matmul_acc(x, W, z)


@njit(**JIT)
def rows_matmul_acc(a, W, out):
    """out += a @ W for a (M, K), W (K, N) and out (M, N), rows of W contiguous.

    Four rows of ``a`` at a time take four rows of W a pass: each W element loaded
    serves four rows and each load and store of ``out`` four multiply-adds (16
    products, 8 loads a column); the last M % 4 rows go one at a time (row_matmul_acc).
    """
    M, K = a.shape
    N = out.shape[1]
    M4 = M - M % 4
    KB = max(4, (W_BLOCK_BYTES // (4 * max(N, 1))) // 4 * 4)  # rows of W a block: it stays in L2
    for k0 in range(0, K, KB):
        k1 = min(K, k0 + KB)
        for m in range(0, M4, 4):
            x0, x1, x2, x3 = a[m], a[m + 1], a[m + 2], a[m + 3]
            z0, z1, z2, z3 = out[m], out[m + 1], out[m + 2], out[m + 3]
            k = k0
            while k + 4 <= k1:
                r0, r1, r2, r3 = W[k], W[k + 1], W[k + 2], W[k + 3]
                a00, a01, a02, a03 = x0[k], x0[k + 1], x0[k + 2], x0[k + 3]
                a10, a11, a12, a13 = x1[k], x1[k + 1], x1[k + 2], x1[k + 3]
                a20, a21, a22, a23 = x2[k], x2[k + 1], x2[k + 2], x2[k + 3]
                a30, a31, a32, a33 = x3[k], x3[k + 1], x3[k + 2], x3[k + 3]
                for j in range(N):
                    w0, w1, w2, w3 = r0[j], r1[j], r2[j], r3[j]
                    z0[j] += (a00 * w0 + a01 * w1) + (a02 * w2 + a03 * w3)
                    z1[j] += (a10 * w0 + a11 * w1) + (a12 * w2 + a13 * w3)
                    z2[j] += (a20 * w0 + a21 * w1) + (a22 * w2 + a23 * w3)
                    z3[j] += (a30 * w0 + a31 * w1) + (a32 * w2 + a33 * w3)
                k += 4
            while k < k1:
                row = W[k]
                b0, b1, b2, b3 = x0[k], x1[k], x2[k], x3[k]
                for j in range(N):
                    w = row[j]
                    z0[j] += b0 * w
                    z1[j] += b1 * w
                    z2[j] += b2 * w
                    z3[j] += b3 * w
                k += 1
    m = M4
    while m < M:
        row_matmul_acc(a[m], W, out[m])
        m += 1


@njit(**JIT)
def matmul_into(a, W, out):
    """out = a @ W: rows_matmul_acc for 2 to SMALL_ROWS rows, BLAS otherwise."""
    if 1 < a.shape[0] <= SMALL_ROWS:
        out[:] = 0
        rows_matmul_acc(a, W, out)
    else:
        np.dot(a, W, out)
