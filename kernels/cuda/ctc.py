"""CTC loss on the device: the @cuda.jit twin of ``ctc_loss`` in kernels/ctc.py.

Same arguments, same results (per-item negative log-likelihood and its
gradient w.r.t. the raw logits), same rules for impossible items, empty
targets and empty inputs; kernels/ctc.py describes the extended label sequence
(blank, l1, blank, ..., lL, blank) and the recursions.

Two launches:

- ``_alpha_beta``: one block per batch item. Its threads first take the
  log-normaliser of the item's frames (a thread per frame, max-shifted), then
  share out the 2L + 1 extended states for the forward (alpha) and backward
  (beta) recursions in log space, with ``cuda.syncthreads()`` between time steps:
  frame t reads only frame t - 1 (t + 1), so the states of one frame are
  independent. alpha and beta live in global memory, (T, B, 2S + 1) each, so
  neither the number of frames nor the target width has a compile-time maximum.
- ``_gradient``: a thread per (t, b, c): softmax minus the posterior occupancy of
  class c, summed over the states that carry c.

As on the CPU, everything is computed in float64 whatever the logits dtype (the
gradient is cast to it at the end), so long inputs and peaked softmaxes neither
underflow nor lose precision. Integer inputs are validated on the host with the
CPU module's own checks (device ones are copied back: B * S + 2B integers), so
both raise the same errors.
"""
import math

import numpy as np
from numba import float64

from suite.kernels.ctc import _check_blank, _check_float, _check_ints, _check_labels
from suite.kernels.cuda import blocks, cuda, is_device, simulated, to_device, to_host

THREADS = 32 if simulated() else 256
"""Most threads per block. ``_alpha_beta`` uses min(THREADS, 2S + 1) for the
states (a thread loops over several when there are more); ``_gradient`` uses
THREADS. The simulator runs each thread as a Python thread, so fewer there."""


@cuda.jit(device=True)
def _logaddexp(a, b):
    # both -inf would give nan in the shifted form (inf - inf): guard it
    if a < b:
        a, b = b, a
    if b == -math.inf:
        return a
    return a + math.log1p(math.exp(b - a))


@cuda.jit(device=True)
def _label(targets, b, s, blank):
    """Class of extended state s of item b: blank at even s, target label s // 2 at odd s."""
    return blank if s % 2 == 0 else targets[b, s // 2]


@cuda.jit
def _alpha_beta(logits, targets, input_lengths, target_lengths, blank, zero_infinity,
                lse, alpha, beta, loglik, nll):
    """Block b: lse[:Tb, b], alpha/beta[:Tb, b, :2L+1], loglik[b] (-inf: no gradient), nll[b]."""
    b = cuda.blockIdx.x
    tid = cuda.threadIdx.x
    step = cuda.blockDim.x
    C = logits.shape[2]
    Tb = input_lengths[b]
    L = target_lengths[b]
    S = 2 * L + 1
    # fewest frames that carry the target: one per label, plus a blank between repeats.
    # Every thread computes it, so the early returns below are taken by the whole block.
    need = L
    for k in range(1, L):
        if targets[b, k] == targets[b, k - 1]:
            need += 1
    if Tb < need or Tb == 0:
        # no alignment exists (this includes Tb == 0 with L > 0); or an empty input with
        # an empty target, probability one
        if tid == 0:
            loglik[b] = -math.inf
            nll[b] = math.inf if Tb < need and not zero_infinity else 0.0
        return

    # log-normaliser of each frame, a thread per frame
    for t in range(tid, Tb, step):
        m = float64(logits[t, b, 0])
        for c in range(1, C):
            m = max(m, float64(logits[t, b, c]))
        z = 0.0
        for c in range(C):
            z += math.exp(float64(logits[t, b, c]) - m)
        lse[t, b] = m + math.log(z)
    cuda.syncthreads()

    # forward: alpha[t, s] = log p(prefix of the path ends in state s at frame t)
    for s in range(tid, S, step):
        a = -math.inf
        if s <= 1:
            a = float64(logits[0, b, _label(targets, b, s, blank)]) - lse[0, b]
        alpha[0, b, s] = a
    cuda.syncthreads()
    for t in range(1, Tb):
        for s in range(tid, S, step):
            label = _label(targets, b, s, blank)
            a = alpha[t - 1, b, s]
            if s >= 1:
                a = _logaddexp(a, alpha[t - 1, b, s - 1])
            # skip the blank between two different labels
            if s >= 2 and label != blank and label != targets[b, s // 2 - 1]:
                a = _logaddexp(a, alpha[t - 1, b, s - 2])
            if a != -math.inf:
                a += float64(logits[t, b, label]) - lse[t, b]
            alpha[t, b, s] = a
        cuda.syncthreads()
    total = alpha[Tb - 1, b, S - 1]
    if S > 1:
        total = _logaddexp(total, alpha[Tb - 1, b, S - 2])
    if total == -math.inf:  # e.g. -inf logits on every path; the same in every thread
        if tid == 0:
            loglik[b] = -math.inf
            nll[b] = 0.0 if zero_infinity else math.inf
        return
    if tid == 0:
        loglik[b] = total
        nll[b] = -total

    # backward: beta[t, s] = log p(rest of the path | state s at frame t), emission included
    for s in range(tid, S, step):
        a = -math.inf
        if s >= S - 2:
            a = float64(logits[Tb - 1, b, _label(targets, b, s, blank)]) - lse[Tb - 1, b]
        beta[Tb - 1, b, s] = a
    cuda.syncthreads()
    for t in range(Tb - 2, -1, -1):
        for s in range(tid, S, step):
            label = _label(targets, b, s, blank)
            a = beta[t + 1, b, s]
            if s + 1 < S:
                a = _logaddexp(a, beta[t + 1, b, s + 1])
            if s + 2 < S and label != blank and label != targets[b, s // 2 + 1]:
                a = _logaddexp(a, beta[t + 1, b, s + 2])
            if a != -math.inf:
                a += float64(logits[t, b, label]) - lse[t, b]
            beta[t, b, s] = a
        cuda.syncthreads()


@cuda.jit
def _gradient(logits, targets, input_lengths, target_lengths, blank, lse, alpha, beta, loglik,
              dlogits):
    """dlogits[t, b, c] = softmax - posterior occupancy of c; 0 past Tb and for items without one."""
    T, B, C = logits.shape
    i = cuda.grid(1)
    if i >= T * B * C:
        return
    t = i // (B * C)
    b = (i // C) % B
    c = i % C
    total = loglik[b]
    if t >= input_lengths[b] or total == -math.inf:
        dlogits[t, b, c] = 0.0
        return
    emit = float64(logits[t, b, c]) - lse[t, b]  # every state that carries c emits this
    g = math.exp(emit)
    # alpha and beta both hold frame t's emission, so one is taken off;
    # blank sits on the even states, label k on state 2k + 1
    L = target_lengths[b]
    for s in range(2 * L + 1):
        if (s % 2 == 0 and c == blank) or (s % 2 == 1 and targets[b, s // 2] == c):
            ab = alpha[t, b, s] + beta[t, b, s]
            if ab != -math.inf:
                g -= math.exp(ab - emit - total)
    dlogits[t, b, c] = g


def _host_ints(name, a, shape=None):
    """A NumPy int64 copy of ``a`` (device arrays are copied back), checked as on the CPU."""
    a = np.asarray(to_host(a))
    return _check_ints(name, a, a.shape if shape is None else shape)


def ctc_loss(logits, targets, input_lengths, target_lengths, blank=0, zero_infinity=True,
             threads=None):
    """CTC negative log-likelihood per batch item and its gradient, on the device;
    wraps ``_alpha_beta`` and ``_gradient``. The twin of ``suite.kernels.ctc.ctc_loss``.

    Parameters
    ----------
    logits : np.ndarray or device array [shape=(T, B, C), dtype=float32 or float64]
        Unnormalised scores; log_softmax over C is applied inside.
    targets : np.ndarray or device array [shape=(B, S), dtype=int]
        Label ids, row b valid up to target_lengths[b] (the rest is padding, ignored).
    input_lengths : np.ndarray or device array [shape=(B,), dtype=int]
        Frames of each item, in [0, T].
    target_lengths : np.ndarray or device array [shape=(B,), dtype=int]
        Labels of each item, in [0, S].
    blank : int
        The blank class id, in [0, C).
    zero_infinity : bool
        An item with no possible alignment gets loss 0 instead of inf; its gradient
        is 0 either way.
    threads : int or None
        Most threads a block (default THREADS); tests pass few to make a thread
        loop over several states.

    Returns
    -------
    nll : device array [shape=(B,), dtype=float64]
        -log p(target_b | x_b).
    dlogits : device array [shape=(T, B, C), dtype=logits.dtype]
        d(sum_b nll_b) / d logits: softmax minus posterior occupancy; 0 at t >= input_lengths[b].
    """
    if not is_device(logits):
        logits = np.asarray(logits)
    dtype = np.dtype(logits.dtype)
    _check_float("logits", logits)
    shape = tuple(logits.shape)
    if len(shape) != 3 or shape[2] == 0:
        raise ValueError(f"logits has shape {shape}, expected (T, B, C) with C >= 1")
    T, B, C = shape
    targets = np.asarray(to_host(targets))
    if targets.ndim != 2 or targets.shape[0] != B:
        raise ValueError(f"targets has shape {targets.shape}, expected ({B}, S) for logits {shape}")
    targets = _host_ints("targets", targets)
    input_lengths = _host_ints("input_lengths", input_lengths, (B,))
    target_lengths = _host_ints("target_lengths", target_lengths, (B,))
    blank = _check_blank(blank, C)
    if B and (input_lengths.min() < 0 or input_lengths.max() > T):
        raise ValueError(f"input_lengths must lie in [0, {T}] (T of logits), got "
                         f"[{input_lengths.min()}, {input_lengths.max()}]")
    S = targets.shape[1]
    if B and (target_lengths.min() < 0 or target_lengths.max() > S):
        raise ValueError(f"target_lengths must lie in [0, {S}] (the width of targets), got "
                         f"[{target_lengths.min()}, {target_lengths.max()}]")
    used = np.arange(S) < target_lengths[:, None]  # (B, S) the real labels, not padding
    _check_labels("targets", targets[used], C, blank)
    threads = int(threads or THREADS)
    if threads < 1:
        raise ValueError(f"threads = {threads}, expected at least 1")

    logits = to_device(logits)
    nll = cuda.device_array(B, np.float64)  # (B,)
    dlogits = cuda.device_array(shape, dtype)  # (T, B, C)
    if B == 0:
        return nll, dlogits
    states = 2 * S + 1
    lse = cuda.device_array((T, B), np.float64)  # (T, B) log-normaliser of each frame
    alpha = cuda.device_array((T, B, states), np.float64)  # (T, B, 2S+1)
    beta = cuda.device_array((T, B, states), np.float64)  # (T, B, 2S+1)
    loglik = cuda.device_array(B, np.float64)  # (B,) log p(target); -inf: no gradient
    d_targets = to_device(targets)
    d_inputs = to_device(input_lengths)
    d_lengths = to_device(target_lengths)
    _alpha_beta[B, min(threads, states)](
        logits, d_targets, d_inputs, d_lengths, np.int64(blank), bool(zero_infinity),
        lse, alpha, beta, loglik, nll)
    n = T * B * C
    if n:
        _gradient[blocks(n, threads), threads](
            logits, d_targets, d_inputs, d_lengths, np.int64(blank), lse, alpha, beta, loglik, dlogits)
    return nll, dlogits
