"""Losses on the device: the @cuda.jit twins of ``softmax_cross_entropy`` and
``log_softmax`` in kernels/losses.py.

Same arguments and results as on the CPU, except that arrays come back as device
arrays (the mean loss as a one-element float64 one, so a training loop need not
wait for it). One block per row: its threads stride over the classes, then a
tree reduction in shared memory takes the row's max and the max-shifted sum of
exponentials, so large logits neither overflow nor lose precision. As on the
CPU, the reductions are float64 whatever the array dtype.

The mean over rows is a second, one-block launch that sums the per-row losses in
a fixed order (no atomics), so the loss is the same bit for bit run after run.
Arguments are validated as on the CPU, targets on the host (device targets are copied back: N integers),
because the count of rows that are not ``ignore_index`` scales the gradient.
"""
import math
from functools import lru_cache

import numpy as np
from numba import float64

from suite.kernels.cuda import cuda, fill, is_device, simulated, to_device, to_host
from suite.kernels.cuda.reduce import block_max, block_sum
from suite.kernels.losses import _check_float

THREADS = 4 if simulated() else 128
"""Threads a block, a power of two (the tree reduction halves it). The simulator
runs each thread as a Python thread, so 4 there: fewer than the classes of the
tests, so a thread loops over several and the reduction has two levels."""

@lru_cache(maxsize=None)
def _kernels(threads):
    """The kernels for blocks of ``threads`` (a compile-time shape of their shared memory)."""

    @cuda.jit(device=True)
    def row_lse(x, n, buf, tid):
        """log sum_v exp(x[n, v]) of row n, max-shifted, in float64, to every thread of the block."""
        V = x.shape[1]
        m = -math.inf
        for v in range(tid, V, threads):
            m = max(m, float64(x[n, v]))
        m = block_max(buf, m)
        z = 0.0
        for v in range(tid, V, threads):
            z += math.exp(float64(x[n, v]) - m)
        z = block_sum(buf, z)
        return m + math.log(z)

    @cuda.jit
    def xent_rows(logits, targets, ignore_index, inv, nll, dlogits):
        """Block n: nll[n] = lse - logits[n, t] (0 if ignored); dlogits[n] = (softmax - onehot) * inv."""
        buf = cuda.shared.array(threads, float64)
        n = cuda.blockIdx.x
        tid = cuda.threadIdx.x
        V = logits.shape[1]
        t = targets[n]
        if t == ignore_index:  # the same in every thread of the block
            for v in range(tid, V, threads):
                dlogits[n, v] = 0.0
            if tid == 0:
                nll[n] = 0.0
            return
        lse = row_lse(logits, n, buf, tid)
        for v in range(tid, V, threads):
            g = math.exp(float64(logits[n, v]) - lse)
            if v == t:
                g -= 1.0
            dlogits[n, v] = g * inv
        if tid == 0:
            nll[n] = lse - float64(logits[n, t])

    @cuda.jit
    def mean(values, inv, out):
        """out[0] = sum(values) * inv, by one block."""
        buf = cuda.shared.array(threads, float64)
        tid = cuda.threadIdx.x
        s = 0.0
        for i in range(tid, values.shape[0], threads):
            s += values[i]
        s = block_sum(buf, s)
        if tid == 0:
            out[0] = s * inv

    @cuda.jit
    def log_softmax_rows(x, out):
        """Block n: out[n] = x[n] - log sum exp x[n]."""
        buf = cuda.shared.array(threads, float64)
        n = cuda.blockIdx.x
        tid = cuda.threadIdx.x
        lse = row_lse(x, n, buf, tid)
        for v in range(tid, x.shape[1], threads):
            out[n, v] = float64(x[n, v]) - lse

    return xent_rows, mean, log_softmax_rows


def _threads(threads):
    threads = int(threads or THREADS)
    if threads < 1 or threads & (threads - 1):
        raise ValueError(f"threads = {threads}, expected a power of two (the reduction halves it)")
    return threads


def softmax_cross_entropy(logits, targets, ignore_index=-100, threads=None):
    """Softmax cross-entropy (natural log) and its gradient, on the device; wraps
    ``xent_rows`` and ``mean``. The twin of ``suite.kernels.losses.softmax_cross_entropy``.

    Parameters
    ----------
    logits : np.ndarray or device array [shape=(N, V), dtype=float32 or float64]
    targets : np.ndarray or device array [shape=(N,), dtype=int]
        Class ids in [0, V), or ``ignore_index`` for rows that do not count.
    ignore_index : int
    threads : int or None
        Threads a block, a power of two (default THREADS).

    Returns
    -------
    loss : device array [shape=(1,), dtype=float64]
        Mean negative log-likelihood over the counted rows (0.0 if none).
    count : int
        Number of counted rows.
    dlogits : device array [shape=(N, V), dtype=logits.dtype]
        Gradient of ``loss``; rows of ignored targets are 0.
    """
    if not is_device(logits):
        logits = np.asarray(logits)
    _check_float("logits", logits)
    shape = tuple(logits.shape)
    if len(shape) != 2 or shape[1] == 0:
        raise ValueError(f"logits has shape {shape}, expected (N, V) with V >= 1")
    N, V = shape
    targets = np.asarray(to_host(targets))
    if targets.shape != (N,):
        raise ValueError(f"targets has shape {targets.shape}, expected ({N},) for logits {shape}")
    if targets.dtype.kind not in "iu":
        raise ValueError(f"targets has dtype {targets.dtype}, expected an integer dtype")
    targets = np.ascontiguousarray(targets, dtype=np.int64)
    counted = targets != ignore_index
    bad = counted & ((targets < 0) | (targets >= V))
    if bad.any():
        raise ValueError(f"targets[{int(np.argmax(bad))}] = {targets[bad][0]} is outside [0, {V}) "
                         f"and is not ignore_index={ignore_index}")
    count = int(counted.sum())
    threads = _threads(threads)
    xent_rows, mean, _ = _kernels(threads)
    inv = 1.0 / count if count > 0 else 0.0

    logits = to_device(logits)
    dlogits = cuda.device_array(shape, logits.dtype)  # (N, V)
    loss = cuda.device_array(1, np.float64)  # (1,)
    if N == 0:
        fill(loss, 0.0)
        return loss, count, dlogits
    nll = cuda.device_array(N, np.float64)  # (N,) per-row loss, 0 where ignored
    xent_rows[N, threads](logits, to_device(targets), np.int64(ignore_index), inv, nll, dlogits)
    mean[1, threads](nll, inv, loss)
    return loss, count, dlogits


def log_softmax(logits, threads=None):
    """Log-softmax over the last axis, on the device; wraps ``log_softmax_rows``.
    The twin of ``suite.kernels.losses.log_softmax``.

    Parameters
    ----------
    logits : np.ndarray or device array [shape=(..., V), dtype=float32 or float64]
        A device array of more than two dimensions must be C-contiguous (it is
        viewed as (N, V) rows without a copy).
    threads : int or None
        Threads a block, a power of two (default THREADS).

    Returns
    -------
    device array [shape=logits.shape, dtype=logits.dtype]
    """
    if not is_device(logits):
        logits = np.ascontiguousarray(logits)
    _check_float("logits", logits)
    shape = tuple(logits.shape)
    if len(shape) < 1 or shape[-1] == 0:
        raise ValueError(f"logits has shape {shape}, expected (..., V) with V >= 1")
    threads = _threads(threads)
    _, _, log_softmax_rows = _kernels(threads)
    logits = to_device(logits)
    if len(shape) != 2 and not logits.is_c_contiguous():
        raise ValueError(f"logits is a non-contiguous {len(shape)}-D device array: "
                         "make it contiguous (or pass it as (N, V))")
    V = shape[-1]
    N = int(np.prod(shape[:-1], dtype=np.int64))
    out = cuda.device_array(shape, logits.dtype)
    if N and len(shape) == 2:
        log_softmax_rows[N, threads](logits, out)
    elif N:
        log_softmax_rows[N, threads](logits.reshape(N, V), out.reshape(N, V))
    return out
