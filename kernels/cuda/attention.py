"""Additive (Bahdanau) attention on the device: the twin of kernels/attention.py.

The same arguments, results and masking as the CPU kernels (read that module
for the definition)::

    score[t, b, n] = v . tanh(qp[t, b] + keys[b, n])      for n < lengths[b]
    alpha[t, b]    = softmax over n < lengths[b] of score[t, b]  (0 beyond)
    context[t, b]  = sum_n alpha[t, b, n] * values[b, n]

Forward: one block per query row (t, b). Its threads take the source
positions n for the scores (written straight into alpha, no scratch), a block
reduction gives the max and then the sum of the max-shifted softmax, and the
threads then take the feature dims j of the context.

Backward: one block per batch row b, looping over t, so that the block owns
dkeys[b] and dvalues[b] and accumulates them over the T steps without atomics
(deterministic, and no (T, B, N, A) partials). For each t: threads over n
form dalpha[n] = dcontext . values[n] (and add alpha * dcontext into
dvalues[n]), a block sum gives sum_n alpha dalpha, and the softmax gradient
ds[n] goes to a (B, N) scratch; then threads over the attention dims a
recompute tanh (as on the CPU, the (T, B, N, A) activations are never stored)
and accumulate dqp[t, b, a], dkeys[b, :, a] and the row's share of dv. A
second small kernel sums those (B, A) shares into dv.

Arithmetic stays in the array dtype (no float64 detour for float32, which is
slow on most GPUs); float32 results agree with the CPU's to ~1e-6.
"""
import math
from functools import lru_cache
from typing import NamedTuple

import numpy as np
from numba import float32, float64

from suite.kernels.cuda import blocks, cuda, fill, is_device, simulated, to_device, to_host
from suite.kernels.cuda.reduce import block_max, block_sum, column_sums

THREADS = 4 if simulated() else 128
"""Threads a block (a power of two, for the tree reductions). The simulator runs
each thread as a Python thread, so there 4 keeps tests quick and puts the
strided loops' edges inside the tiny test shapes."""

_FLOATS = (np.float32, np.float64)


class AttentionCache(NamedTuple):
    """What additive_attention_backward needs beyond its explicit arguments.

    Opaque to callers. Holds no activations (backward recomputes the tanh),
    only the validated lengths (on the host for backward's check, on the
    device for its kernel) and the shapes, which backward checks so that a
    cache cannot be paired with arrays of another call.
    """

    lengths: np.ndarray  # (B,) int64, host
    device_lengths: object  # (B,) int64, device
    shape: tuple         # (T, B, N, A, V)


# ----------------------------------------------------------------------------
# compiled kernels


@lru_cache(maxsize=None)
def _kernels(threads, dtype):
    """(forward, backward) kernels for one block size and float dtype."""
    nb_type = float32 if dtype == np.float32 else float64

    @cuda.jit
    def forward(qp, keys, values, v, lengths, context, alpha):
        red = cuda.shared.array(threads, nb_type)
        t = cuda.blockIdx.x
        b = cuda.blockIdx.y
        tid = cuda.threadIdx.x
        A = qp.shape[2]
        N = keys.shape[1]
        V = values.shape[2]
        L = lengths[b]
        # scores, threads over source positions; alpha holds them until normalised
        best = nb_type(-math.inf)
        for n in range(tid, L, threads):
            acc = nb_type(0.0)
            for a in range(A):
                acc += v[a] * math.tanh(qp[t, b, a] + keys[b, n, a])
            alpha[t, b, n] = acc
            best = max(best, acc)
        for n in range(L + tid, N, threads):
            alpha[t, b, n] = 0.0  # masked: exactly zero, as on the CPU
        m = block_max(red, best)
        # masked softmax, max-shifted
        part = nb_type(0.0)
        for n in range(tid, L, threads):
            e = math.exp(alpha[t, b, n] - m)
            alpha[t, b, n] = e
            part += e
        inv = nb_type(1.0) / block_sum(red, part)
        for n in range(tid, L, threads):
            alpha[t, b, n] *= inv
        cuda.syncthreads()  # every alpha[t, b, :] written before any thread reads them all
        # context, threads over feature dims
        for j in range(tid, V, threads):
            acc = nb_type(0.0)
            for n in range(L):
                acc += alpha[t, b, n] * values[b, n, j]
            context[t, b, j] = acc

    @cuda.jit
    def backward(dcontext, qp, keys, values, v, lengths, alpha, dqp, dkeys, dvalues, dv_rows, ds):
        red = cuda.shared.array(threads, nb_type)
        b = cuda.blockIdx.x
        tid = cuda.threadIdx.x
        T = qp.shape[0]
        A = qp.shape[2]
        N = keys.shape[1]
        V = values.shape[2]
        L = lengths[b]
        one = nb_type(1.0)
        # zero what this block accumulates, each element by the thread that later adds to it
        for n in range(tid, N, threads):
            for j in range(V):
                dvalues[b, n, j] = 0.0
        for a in range(tid, A, threads):
            dv_rows[b, a] = 0.0
            for n in range(N):
                dkeys[b, n, a] = 0.0
        for t in range(T):
            # backprop through context = sum_n alpha[n] values[n], threads over n
            part = nb_type(0.0)
            for n in range(tid, L, threads):
                al = alpha[t, b, n]
                acc = nb_type(0.0)
                for j in range(V):
                    dc = dcontext[t, b, j]
                    acc += dc * values[b, n, j]
                    dvalues[b, n, j] += al * dc
                ds[b, n] = acc  # dalpha[n] for now
                part += al * acc
            weighted = block_sum(red, part)  # sum_n alpha[n] dalpha[n]
            # backprop through softmax: ds = alpha * (dalpha - sum alpha dalpha)
            for n in range(tid, L, threads):
                ds[b, n] = alpha[t, b, n] * (ds[b, n] - weighted)
            cuda.syncthreads()  # all of ds[b] before threads over a read it
            # backprop through score = v . h and h = tanh(q + k), threads over a
            for a in range(tid, A, threads):
                q = qp[t, b, a]
                va = v[a]
                dq = nb_type(0.0)
                dva = nb_type(0.0)
                for n in range(L):
                    h = math.tanh(q + keys[b, n, a])
                    s = ds[b, n]
                    g = s * va * (one - h * h)
                    dq += g
                    dkeys[b, n, a] += g
                    dva += s * h
                dqp[t, b, a] = dq
                dv_rows[b, a] += dva
            cuda.syncthreads()  # ds[b] read by all before the next t overwrites it

    return forward, backward


# ----------------------------------------------------------------------------
# validation


def _array(a):
    """A device array as it is, anything else as a NumPy array (validated before any copy)."""
    return a if is_device(a) else np.asarray(a)


def _float_array(name, a, dtype, shape):
    """a on the device, or a ValueError naming the problem."""
    a = _array(a)
    if np.dtype(a.dtype) != dtype:
        raise ValueError(f"{name} has dtype {a.dtype}, expected {np.dtype(dtype)} (the dtype of "
                         "qp); all float arrays of one call must share one dtype")
    if tuple(a.shape) != tuple(shape):
        raise ValueError(f"{name} has shape {tuple(a.shape)}, expected {tuple(shape)}")
    return to_device(a)


def _host_lengths(lengths, B, N):
    """The lengths as a validated (B,) int64 host array (a copy back when given on the device)."""
    if lengths is None:
        return np.full(B, N, dtype=np.int64)
    lengths = to_host(lengths) if is_device(lengths) else np.asarray(lengths)
    if lengths.shape != (B,) or not (lengths.dtype.kind in "iu" or lengths.size == 0):
        raise ValueError(f"lengths has shape {lengths.shape} and dtype {lengths.dtype}, "
                         f"expected ({B},) integers")
    if lengths.size and (lengths.min() < 1 or lengths.max() > N):
        raise ValueError(f"lengths must lie in [1, N={N}] (softmax over no items is "
                         f"undefined), got min {lengths.min()} and max {lengths.max()}")
    return np.ascontiguousarray(lengths, dtype=np.int64)


def _validate(qp, keys, values, v):
    """The four arrays on the device and (T, B, N, A, V); the CPU module's checks and messages."""
    qp = _array(qp)
    dtype = np.dtype(qp.dtype)
    if dtype not in _FLOATS:
        raise ValueError(f"qp has dtype {qp.dtype}, expected float32 or float64")
    if len(qp.shape) != 3:
        raise ValueError(f"qp has shape {tuple(qp.shape)}, expected (T, B, A)")
    T, B, A = qp.shape
    if A == 0:
        raise ValueError(f"qp has shape {tuple(qp.shape)}: the attention size A must be positive")
    keys = _array(keys)
    if len(keys.shape) != 3 or keys.shape[0] != B or keys.shape[2] != A or keys.shape[1] == 0:
        raise ValueError(f"keys has shape {tuple(keys.shape)}, expected ({B}, N, {A}) with N >= 1 "
                         f"for qp of shape {tuple(qp.shape)}")
    N = keys.shape[1]
    keys = _float_array("keys", keys, dtype, keys.shape)
    values = _array(values)
    if len(values.shape) != 3 or tuple(values.shape[:2]) != (B, N):
        raise ValueError(f"values has shape {tuple(values.shape)}, expected ({B}, {N}, V) to match "
                         f"keys of shape {tuple(keys.shape)}")
    V = values.shape[2]
    values = _float_array("values", values, dtype, values.shape)
    v = _float_array("v", v, dtype, (A,))
    return to_device(qp), keys, values, v, (T, B, N, A, V)


# ----------------------------------------------------------------------------
# public wrappers


def additive_attention_forward(qp, keys, values, v, lengths=None):
    """Additive attention of every query step over the memory, on the device; wraps ``forward``.

    Parameters
    ----------
    qp : np.ndarray or device array [shape=(T, B, A), dtype=float32 or float64]
        Projected queries (query @ Wq).
    keys : np.ndarray or device array [shape=(B, N, A), dtype=qp.dtype]
        Projected memory (memory @ Wk + bk).
    values : np.ndarray or device array [shape=(B, N, V), dtype=qp.dtype]
        What the context averages (usually the memory itself).
    v : np.ndarray or device array [shape=(A,), dtype=qp.dtype]
        Scoring vector.
    lengths : np.ndarray or device array [shape=(B,), int] or None
        Valid memory items per row, 1 <= len <= N; None means all N. A device
        array is copied back once, to check the range.

    Returns
    -------
    context : device array [shape=(T, B, V)]
    alpha : device array [shape=(T, B, N)]
        Attention weights; each row sums to 1 over n < len[b] and is 0 beyond.
    cache : AttentionCache
    """
    qp, keys, values, v, (T, B, N, A, V) = _validate(qp, keys, values, v)
    host = _host_lengths(lengths, B, N)
    dtype = np.dtype(qp.dtype)
    lengths = to_device(host)
    context = cuda.device_array((T, B, V), dtype)  # (T, B, V)
    alpha = cuda.device_array((T, B, N), dtype)    # (T, B, N)
    if T and B:
        forward, _ = _kernels(THREADS, dtype.type)
        forward[(T, B), THREADS](qp, keys, values, v, lengths, context, alpha)
    return context, alpha, AttentionCache(host, lengths, (T, B, N, A, V))


def additive_attention_backward(dcontext, qp, keys, values, v, lengths, alpha, cache):
    """Gradients of additive_attention_forward, on the device; wraps ``backward``.

    Parameters
    ----------
    dcontext : np.ndarray or device array [shape=(T, B, V)]
        Gradient w.r.t. context.
    qp, keys, values, v, lengths :
        As given to additive_attention_forward.
    alpha : np.ndarray or device array [shape=(T, B, N)]
        From that forward.
    cache : AttentionCache
        From that forward.

    Returns
    -------
    dqp : device array [shape=(T, B, A)]
    dkeys : device array [shape=(B, N, A)]
        Zero for n >= len[b].
    dvalues : device array [shape=(B, N, V)]
        Zero for n >= len[b].
    dv : device array [shape=(A,)]
    """
    if not isinstance(cache, AttentionCache):
        raise ValueError("cache must be the AttentionCache from the CUDA additive_attention_forward, "
                         f"got {type(cache).__name__}")
    qp, keys, values, v, shape = _validate(qp, keys, values, v)
    T, B, N, A, V = shape
    # The forward's own device lengths need no copy back to be checked.
    same = lengths is cache.device_lengths or lengths is cache.lengths
    host = cache.lengths if same else _host_lengths(lengths, B, N)
    if shape != cache.shape or not np.array_equal(host, cache.lengths):
        raise ValueError(f"arrays of shape (T, B, N, A, V) = {shape} and their lengths do not "
                         f"match the cache's {cache.shape}: pass those of one forward call")
    dtype = np.dtype(qp.dtype)
    dcontext = _float_array("dcontext", dcontext, dtype, (T, B, V))
    alpha = _float_array("alpha", alpha, dtype, (T, B, N))
    dqp = cuda.device_array((T, B, A), dtype)      # (T, B, A)
    dkeys = cuda.device_array((B, N, A), dtype)    # (B, N, A)
    dvalues = cuda.device_array((B, N, V), dtype)  # (B, N, V)
    dv = cuda.device_array(A, dtype)               # (A,)
    if B == 0:
        fill(dv, 0.0)
        return dqp, dkeys, dvalues, dv
    dv_rows = cuda.device_array((B, A), dtype)  # (B, A) each row's share of dv
    ds = cuda.device_array((B, N), dtype)       # (B, N) softmax gradient of the current step
    _, backward = _kernels(THREADS, dtype.type)
    backward[B, THREADS](dcontext, qp, keys, values, v, cache.device_lengths, alpha,
                         dqp, dkeys, dvalues, dv_rows, ds)
    column_sums[blocks(A, THREADS), THREADS](dv_rows, dv)
    return dqp, dkeys, dvalues, dv
