"""The generation loop's sampling step on the device: the twin of kernels/sampling.py's sample_logits.

Given (B, C) logits and one uniform u[b] in [0, 1) per row, draw one id per
row with the CPU's rule: softmax of logits / temperature restricted to the
top_k largest logits (top_k = 0, or >= C, means all; ties at the k-th largest
keep the lowest ids, so exactly top_k stay), then the inverse CDF in id order,
``the first kept id whose running sum exceeds u * total`` (the last kept id if
rounding leaves u * total at the end). Weights are exp((x - max) / T) in
float64, with the max itself weighted exactly 1, as on the CPU. Temperature 0
is the argmax (lowest id among ties) and reads no uniform.

The uniforms come from the caller, so a run is reproducible and comparable
with the CPU: ``uniforms(rng, B)`` draws them from the CPU's xoshiro256**
state exactly as B successive ``sample_logits`` calls would, and with those
the ids are the CPU's, row for row.

One block per row, everything in the block's shared memory and registers.
top_k is a selection, not a sort. For rows up to RANK_LIMIT ids each id
counts its own rank in (value descending, id ascending) order, O(C) a id with
no block-wide step, and stays if the rank is below top_k. Longer rows bisect:
floats map to int64 keys that order like the floats (the sign-magnitude flip
of the bits), a bisection over the key range, one block-wide count per
halving (at most 33 for float32, 65 for float64), finds the k-th largest key,
and a second bisection over ids finds how far the ties at that key reach.
For the draw each thread sums the weights of a contiguous segment of ids, a
block scan of the segment sums places each segment, and each thread walks
its segment from there until its running sum passes u * total; the lowest id
so found is the draw (a segment that starts past u * total offers its first
id, which wins only when rounding left u * total in the gap before it).
"""
import math

import numpy as np
from numba import float64, int64

from suite.kernels.cuda import cuda, is_device, simulated, to_device
from suite.kernels.cuda.reduce import block_max, block_min, block_sum
from suite.kernels.sampling import _check_rng, _check_temperature_top_k, _next_uniform

THREADS = 4 if simulated() else 128
"""Threads a block (a power of two, for the reductions and the scan). The simulator
runs each thread as a Python thread; 4 there puts segment edges inside test rows."""

_FLOATS = (np.float32, np.float64)
_INT64_MIN = -(1 << 63)
_INT64_MAX = (1 << 63) - 1

RANK_LIMIT = 1024
"""Rows up to this many ids find their top_k by counting ranks (O(C^2 / THREADS) a
thread, no block-wide step: 8192 comparisons a thread at 1024 ids); longer rows
bisect on keys (O(C / THREADS) a thread per halving, up to 65 halvings, each a
block reduction). Read at each call, not compiled in."""


# ----------------------------------------------------------------------------
# compiled kernels


@cuda.jit(device=True)
def _key(x, bits, flip):
    """An int64 that orders like the float x (bits: its raw bits; flip: all bits but the sign's)."""
    if x == 0.0:
        return int64(0)  # -0.0 == 0.0, as the CPU compares
    k = int64(bits)
    if k < 0:
        k ^= flip  # negative floats: larger magnitude, smaller key
    return k


@cuda.jit(device=True)
def _kept(logits, bits, flip, r, j, top_k, bisect, threshold, cut):
    """Whether id j of row r is among the top_k (ties: lowest ids); top_k = 0 or >= C keeps all."""
    C = logits.shape[1]
    if top_k == 0 or top_k >= C:
        return True
    if bisect:
        key = _key(logits[r, j], bits[r, j], flip)
        return key > threshold or (key == threshold and j <= cut)
    # rank of j in (value descending, id ascending) order, counted: no block-wide step
    x = logits[r, j]
    rank = 0
    for i in range(C):
        y = logits[r, i]
        if y > x or (y == x and i < j):
            rank += 1
            if rank >= top_k:
                return False
    return True


@cuda.jit(device=True)
def _weight(logits, bits, flip, r, j, m, temperature, top_k, bisect, threshold, cut):
    """The unnormalised probability of id j of row r: 0 unless kept by top_k."""
    if not _kept(logits, bits, flip, r, j, top_k, bisect, threshold, cut):
        return 0.0
    x = float64(logits[r, j])
    # x == m spelled out, as on the CPU: the max weighs exactly 1 whatever the temperature
    return 1.0 if x == m else math.exp((x - m) / temperature)


@cuda.jit(device=True)
def _threshold(logits, bits, flip, r, top_k, redi):
    """(key of the top_k-th largest logit, last id kept at that key), by bisection: O(C) a thread."""
    tid = cuda.threadIdx.x
    C = logits.shape[1]
    low = int64(_INT64_MAX)
    high = int64(_INT64_MIN)
    for j in range(tid, C, THREADS):
        key = _key(logits[r, j], bits[r, j], flip)
        low = min(low, key)
        high = max(high, key)
    lo = block_min(redi, low)   # count(key >= lo) = C >= top_k
    hi = block_max(redi, high)  # count(key > hi) = 0 < top_k: the answer lies in [lo, hi]
    while lo < hi:
        # the upper mid, floor((lo + hi + 1) / 2), without overflowing int64
        mid = (lo >> 1) + (hi >> 1) + ((lo | hi) & 1)
        n = int64(0)
        for j in range(tid, C, THREADS):
            if _key(logits[r, j], bits[r, j], flip) >= mid:
                n += 1
        if block_sum(redi, n) >= top_k:
            lo = mid
        else:
            hi = mid - 1
    n = int64(0)
    for j in range(tid, C, THREADS):
        if _key(logits[r, j], bits[r, j], flip) > lo:
            n += 1
    ties = top_k - block_sum(redi, n)  # >= 1 ids at the threshold to keep, lowest first
    ilo = int64(0)
    ihi = int64(C - 1)  # the smallest cut with count(key == lo, id <= cut) >= ties
    while ilo < ihi:
        mid = (ilo + ihi) >> 1
        n = int64(0)
        for j in range(tid, mid + 1, THREADS):
            if _key(logits[r, j], bits[r, j], flip) == lo:
                n += 1
        if block_sum(redi, n) >= ties:
            ihi = mid
        else:
            ilo = mid + 1
    return lo, ilo


@cuda.jit
def _sample(logits, bits, flip, temperature, top_k, bisect, u, ids):
    redf = cuda.shared.array(THREADS, float64)
    redi = cuda.shared.array(THREADS, int64)
    r = cuda.blockIdx.x
    tid = cuda.threadIdx.x
    C = logits.shape[1]

    # argmax, lowest id among ties: one tree over (value, id) pairs
    m = float64(-math.inf)
    best = int64(C)
    for j in range(tid, C, THREADS):
        x = float64(logits[r, j])
        if best == C or x > m:  # j rises: the first of equals stays
            m = x
            best = j
    redf[tid] = m
    redi[tid] = best
    cuda.syncthreads()
    s = THREADS // 2
    while s > 0:
        if tid < s:
            y = redf[tid + s]
            k = redi[tid + s]
            if k < C and (redi[tid] == C or y > redf[tid] or (y == redf[tid] and k < redi[tid])):
                redf[tid] = y
                redi[tid] = k
        cuda.syncthreads()
        s //= 2
    m = redf[0]
    best = redi[0]
    cuda.syncthreads()
    if temperature == 0.0:
        if tid == 0:
            ids[r] = best
        return

    threshold = int64(_INT64_MIN)
    cut = int64(C)
    if bisect and 0 < top_k < C:
        threshold, cut = _threshold(logits, bits, flip, r, top_k, redi)

    # each thread's contiguous segment of ids and its sum of weights
    seg = (C + THREADS - 1) // THREADS
    start = min(tid * seg, C)
    stop = min(start + seg, C)
    part = 0.0
    for j in range(start, stop):
        part += _weight(logits, bits, flip, r, j, m, temperature, top_k, bisect, threshold, cut)
    # inclusive scan of the segment sums (Hillis-Steele): where each segment starts
    redf[tid] = part
    cuda.syncthreads()
    off = 1
    while off < THREADS:
        y = redf[tid - off] if tid >= off else 0.0
        cuda.syncthreads()
        redf[tid] += y
        cuda.syncthreads()
        off *= 2
    total = redf[THREADS - 1]
    acc = redf[tid - 1] if tid > 0 else 0.0
    target = u[r] * total
    # inverse CDF: the first kept id whose running sum passes target, walked in the segment that holds it
    found = int64(C)
    last = int64(-1)
    for j in range(start, stop):
        p = _weight(logits, bits, flip, r, j, m, temperature, top_k, bisect, threshold, cut)
        if p > 0.0:
            last = j
            acc += p
            # a segment that starts past target offers its first id: it wins only when rounding
            # left target between the previous segment's own running sum and this start
            if target < acc:
                found = j
                break
    found = block_min(redi, found)
    if found == C:  # target rounded up to total: the last id of positive weight
        found = block_max(redi, last)
    if tid == 0:
        ids[r] = found


# ----------------------------------------------------------------------------
# public wrappers


def sample_logits(logits, temperature, top_k, u):
    """One id per row of logits, drawn with the uniforms u; wraps ``_sample``.

    The CPU's ``sample_logits`` for a batch of rows, with the uniform draws
    passed in instead of an rng state (``uniforms`` makes them from one).

    Parameters
    ----------
    logits : np.ndarray or device array [shape=(B, C), dtype=float32 or float64]
        Device rows may be a strided view (e.g. one step of a (T, B, C) buffer).
    temperature : float
        >= 0; 0 means argmax (lowest id among ties) and reads no uniform.
    top_k : int
        >= 0; keep the top_k largest logits (ties keep the lowest ids); 0 means all.
    u : np.ndarray or device array [shape=(B,), dtype=float64]
        One uniform in [0, 1) per row.

    Returns
    -------
    device array [shape=(B,), dtype=int64]
    """
    logits = logits if is_device(logits) else np.asarray(logits)
    dtype = np.dtype(logits.dtype)
    if dtype not in _FLOATS:
        raise ValueError(f"logits has dtype {logits.dtype}, expected float32 or float64")
    if len(logits.shape) != 2 or logits.shape[1] == 0:
        raise ValueError(f"logits has shape {tuple(logits.shape)}, expected (B, C) with C >= 1")
    B = logits.shape[0]
    temperature, top_k = _check_temperature_top_k(temperature, top_k)
    if not is_device(u):
        u = np.asarray(u)
        if u.dtype.kind == "f":
            u = u.astype(np.float64)
            if u.size and not (u.min() >= 0.0 and u.max() <= 1.0):
                raise ValueError(f"u must hold uniforms in [0, 1], got min {u.min()} and max {u.max()}")
    if tuple(u.shape) != (B,) or np.dtype(u.dtype) != np.float64:
        raise ValueError(f"u has shape {tuple(u.shape)} and dtype {u.dtype}, expected ({B},) float64 "
                         f"(one uniform per row of logits)")
    ids = cuda.device_array(B, np.int64)  # (B,)
    if B == 0:
        return ids
    logits = to_device(logits)
    # the same memory read as ints: the keys that order like the floats
    bits = logits.view(np.int32 if dtype == np.float32 else np.int64)
    flip = (1 << 31) - 1 if dtype == np.float32 else (1 << 63) - 1
    bisect = logits.shape[1] > RANK_LIMIT
    _sample[B, THREADS](logits, bits, flip, temperature, top_k, bisect, to_device(u), ids)
    return ids


def uniforms(rng, n):
    """n uniforms in [0, 1) from a CPU rng state, as n successive CPU ``sample_logits`` calls draw them.

    Parameters
    ----------
    rng : np.ndarray [shape=(4,), dtype=uint64]
        From ``suite.kernels.sampling.new_rng``; advanced in place by n draws.
    n : int

    Returns
    -------
    np.ndarray [shape=(n,), dtype=float64]
    """
    _check_rng(rng)
    if isinstance(n, (bool, np.bool_)) or int(n) != n or n < 0:
        raise ValueError(f"n is {n}, expected an int >= 0")
    return np.array([_next_uniform(rng) for _ in range(int(n))], dtype=np.float64)
