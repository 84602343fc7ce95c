"""Connectionist temporal classification (Graves et al. 2006): loss, greedy decoding,
forced alignment.

A target of L labels is aligned over the extended sequence of S = 2L + 1 states
(blank, l1, blank, l2, ..., lL, blank). A path moves, frame by frame, to the same
state, the next one, or skips a blank between two different labels. The loss
runs the forward (alpha) and backward (beta) recursions in log space with
log-sum-exp, in float64 whatever the logits dtype, so long inputs and peaked
softmaxes neither underflow nor lose precision.

Layout follows torch.nn.functional.ctc_loss: logits are (T, B, C), time first.
Unlike torch, the loss takes raw logits and applies log_softmax itself, so the
gradient it returns is the well-known softmax - posterior, w.r.t. the logits.
"""
import math

import numpy as np
from numba import njit

from suite.kernels.config import JIT

_FLOATS = (np.float32, np.float64)


@njit(**JIT)
def _logaddexp(a, b):
    # both -inf would give nan in the shifted form (inf - inf): guard it
    if a < b:
        a, b = b, a
    if b == -np.inf:
        return a
    return a + math.log1p(math.exp(b - a))


@njit(**JIT)
def _frames_needed(target, L):
    """Fewest frames that can carry target[:L]: one per label, plus a blank between repeats."""
    need = L
    for k in range(1, L):
        if target[k] == target[k - 1]:
            need += 1
    return need


@njit(**JIT)
def _ctc_loss(logits, targets, input_lengths, target_lengths, blank, zero_infinity,
              nll, dlogits):
    """Per-item CTC negative log-likelihood into nll and its gradient into dlogits."""
    T, B, C = logits.shape
    S_max = 2 * targets.shape[1] + 1
    lse = np.empty(T)  # (T,) log-normaliser of each frame
    emit = np.empty((T, S_max))  # (T, S) log p(state label) per frame
    alpha = np.empty((T, S_max))  # (T, S)
    beta = np.empty((T, S_max))  # (T, S)
    labels = np.empty(S_max, np.int64)  # (S,) the extended label sequence
    row = np.empty(C)  # (C,) one frame of the gradient, accumulated in float64
    for b in range(B):
        Tb = input_lengths[b]
        L = target_lengths[b]
        S = 2 * L + 1
        for t in range(T):
            for c in range(C):
                dlogits[t, b, c] = 0.0
        target = targets[b]
        if Tb < _frames_needed(target, L):
            # no alignment exists (this includes Tb == 0 with L > 0)
            nll[b] = 0.0 if zero_infinity else np.inf
            continue
        if Tb == 0:  # empty input, empty target: probability one
            nll[b] = 0.0
            continue
        for s in range(S):
            labels[s] = blank if s % 2 == 0 else target[s // 2]
        for t in range(Tb):
            m = logits[t, b, 0]
            for c in range(1, C):
                m = max(m, logits[t, b, c])
            z = 0.0
            for c in range(C):
                z += math.exp(logits[t, b, c] - m)
            lse[t] = m + math.log(z)
            for s in range(S):
                emit[t, s] = logits[t, b, labels[s]] - lse[t]

        # forward: alpha[t, s] = log p(prefix of the path ends in state s at frame t)
        for s in range(S):
            alpha[0, s] = -np.inf
        alpha[0, 0] = emit[0, 0]
        if S > 1:
            alpha[0, 1] = emit[0, 1]
        for t in range(1, Tb):
            for s in range(S):
                a = alpha[t - 1, s]
                if s >= 1:
                    a = _logaddexp(a, alpha[t - 1, s - 1])
                # skip the blank between two different labels
                if s >= 2 and labels[s] != blank and labels[s] != labels[s - 2]:
                    a = _logaddexp(a, alpha[t - 1, s - 2])
                alpha[t, s] = a + emit[t, s] if a != -np.inf else -np.inf
        loglik = alpha[Tb - 1, S - 1]
        if S > 1:
            loglik = _logaddexp(loglik, alpha[Tb - 1, S - 2])
        if loglik == -np.inf:  # e.g. -inf logits on every path
            nll[b] = 0.0 if zero_infinity else np.inf
            continue
        nll[b] = -loglik

        # backward: beta[t, s] = log p(rest of the path | state s at frame t), emission included
        for s in range(S):
            beta[Tb - 1, s] = -np.inf
        beta[Tb - 1, S - 1] = emit[Tb - 1, S - 1]
        if S > 1:
            beta[Tb - 1, S - 2] = emit[Tb - 1, S - 2]
        for t in range(Tb - 2, -1, -1):
            for s in range(S):
                a = beta[t + 1, s]
                if s + 1 < S:
                    a = _logaddexp(a, beta[t + 1, s + 1])
                if s + 2 < S and labels[s] != blank and labels[s] != labels[s + 2]:
                    a = _logaddexp(a, beta[t + 1, s + 2])
                beta[t, s] = a + emit[t, s] if a != -np.inf else -np.inf

        # gradient: softmax minus the posterior occupancy of each label
        # (alpha and beta both hold frame t's emission, so one is taken off)
        for t in range(Tb):
            for c in range(C):
                row[c] = math.exp(logits[t, b, c] - lse[t])
            for s in range(S):
                g = alpha[t, s] + beta[t, s]
                if g != -np.inf:
                    row[labels[s]] -= math.exp(g - emit[t, s] - loglik)
            for c in range(C):
                dlogits[t, b, c] = row[c]


@njit(**JIT)
def _ctc_greedy(logits, lengths, blank, tokens, frames, counts):
    """Best label per frame, repeats collapsed, blanks dropped, into tokens/frames rows."""
    T, B, C = logits.shape
    for b in range(B):
        n = 0
        previous = -1
        for t in range(lengths[b]):
            best = 0
            for c in range(1, C):
                if logits[t, b, c] > logits[t, b, best]:
                    best = c
            if best != blank and best != previous:
                tokens[b, n] = best
                frames[b, n] = t
                n += 1
            previous = best
        counts[b] = n


@njit(**JIT)
def _ctc_align(log_probs, target, blank, starts, ends):
    """Viterbi path over the extended states; first/last frame of each label. False if none."""
    T, C = log_probs.shape
    L = target.shape[0]
    S = 2 * L + 1
    labels = np.empty(S, np.int64)  # (S,)
    for s in range(S):
        labels[s] = blank if s % 2 == 0 else target[s // 2]
    score = np.full(S, -np.inf)  # (S,) best log score ending in state s at this frame
    previous = np.empty(S)  # (S,)
    back = np.zeros((T, S), np.int8)  # (T, S) steps taken into s: 0 stay, 1 advance, 2 skip
    score[0] = log_probs[0, labels[0]]
    if S > 1:
        score[1] = log_probs[0, labels[1]]
    for t in range(1, T):
        previous[:] = score
        for s in range(S):
            # ties prefer staying, so a label starts as late as the best score allows
            best = previous[s]
            step = 0
            if s >= 1 and previous[s - 1] > best:
                best = previous[s - 1]
                step = 1
            if (s >= 2 and labels[s] != blank and labels[s] != labels[s - 2]
                    and previous[s - 2] > best):
                best = previous[s - 2]
                step = 2
            score[s] = best + log_probs[t, labels[s]] if best != -np.inf else -np.inf
            back[t, s] = step
    s = S - 1
    if S > 1 and score[S - 2] > score[S - 1]:
        s = S - 2
    if score[s] == -np.inf:
        return False
    for k in range(L):
        starts[k] = -1
    for t in range(T - 1, -1, -1):
        if s % 2 == 1:
            k = s // 2
            if starts[k] == -1:
                ends[k] = t
            starts[k] = t  # walking backwards: the last write is the first frame
        s -= back[t, s]
    return True


# ---------------------------------------------------------------- public wrappers

def _check_float(name, a):
    if a.dtype not in _FLOATS:
        raise ValueError(f"{name} has dtype {a.dtype}, expected float32 or float64")


def _check_ints(name, a, shape):
    if a.shape != shape:
        raise ValueError(f"{name} has shape {a.shape}, expected {shape}")
    if a.dtype.kind not in "iu":
        raise ValueError(f"{name} has dtype {a.dtype}, expected an integer dtype")
    return np.ascontiguousarray(a, dtype=np.int64)


def _check_blank(blank, C):
    if not 0 <= int(blank) < C:
        raise ValueError(f"blank = {blank} is outside [0, {C}), the class range of the scores")
    return int(blank)


def _check_labels(name, labels, C, blank):
    """labels: 1-D int64; every id in [0, C) and not blank."""
    bad = (labels < 0) | (labels >= C)
    if bad.any():
        raise ValueError(f"{name} holds id {labels[bad][0]} outside [0, {C})")
    if (labels == blank).any():
        raise ValueError(f"{name} holds the blank id {blank}: targets must be real labels only")


def ctc_loss(logits, targets, input_lengths, target_lengths, blank=0, zero_infinity=True):
    """CTC negative log-likelihood per batch item and its gradient; wraps ``_ctc_loss``.

    Parameters
    ----------
    logits : np.ndarray [shape=(T, B, C), dtype=float32 or float64]
        Unnormalised scores; log_softmax over C is applied inside.
    targets : np.ndarray [shape=(B, S), dtype=int]
        Label ids, row b valid up to target_lengths[b] (the rest is padding, ignored).
    input_lengths : np.ndarray [shape=(B,), dtype=int]
        Frames of each item, in [0, T].
    target_lengths : np.ndarray [shape=(B,), dtype=int]
        Labels of each item, in [0, S].
    blank : int
        The blank class id, in [0, C).
    zero_infinity : bool
        An item with no possible alignment (too few frames for its labels and the
        blanks its repeats need) gets loss 0 instead of inf; its gradient is 0 either way.

    Returns
    -------
    nll : np.ndarray [shape=(B,), dtype=float64]
        -log p(target_b | x_b).
    dlogits : np.ndarray [shape=(T, B, C), dtype=logits.dtype]
        d(sum_b nll_b) / d logits: softmax minus posterior occupancy; 0 at t >= input_lengths[b].
    """
    logits = np.asarray(logits)
    targets = np.asarray(targets)
    _check_float("logits", logits)
    if logits.ndim != 3 or logits.shape[2] == 0:
        raise ValueError(f"logits has shape {logits.shape}, expected (T, B, C) with C >= 1")
    T, B, C = logits.shape
    if targets.ndim != 2 or targets.shape[0] != B:
        raise ValueError(f"targets has shape {targets.shape}, expected ({B}, S) for logits {logits.shape}")
    targets = _check_ints("targets", targets, targets.shape)
    input_lengths = _check_ints("input_lengths", np.asarray(input_lengths), (B,))
    target_lengths = _check_ints("target_lengths", np.asarray(target_lengths), (B,))
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
    logits = np.ascontiguousarray(logits)
    nll = np.empty(B)  # (B,)
    dlogits = np.empty_like(logits)  # (T, B, C)
    _ctc_loss(logits, targets, input_lengths, target_lengths, np.int64(blank),
              bool(zero_infinity), nll, dlogits)
    return nll, dlogits


def ctc_greedy(logits, lengths, blank=0):
    """Best-path decoding: argmax per frame, repeats collapsed, blanks dropped.

    Parameters
    ----------
    logits : np.ndarray [shape=(T, B, C), dtype=float32 or float64]
        Scores or log-probabilities (the argmax is the same).
    lengths : np.ndarray [shape=(B,), dtype=int]
        Frames of each item, in [0, T].
    blank : int

    Returns
    -------
    list of B pairs (tokens, frames)
        tokens : np.ndarray [shape=(N_b,), dtype=int32] the emitted labels.
        frames : np.ndarray [shape=(N_b,), dtype=int32] the first frame of each.
    """
    logits = np.asarray(logits)
    _check_float("logits", logits)
    if logits.ndim != 3 or logits.shape[2] == 0:
        raise ValueError(f"logits has shape {logits.shape}, expected (T, B, C) with C >= 1")
    T, B, C = logits.shape
    lengths = _check_ints("lengths", np.asarray(lengths), (B,))
    if B and (lengths.min() < 0 or lengths.max() > T):
        raise ValueError(f"lengths must lie in [0, {T}] (T of logits), "
                         f"got [{lengths.min()}, {lengths.max()}]")
    blank = _check_blank(blank, C)
    tokens = np.empty((B, T), np.int32)  # (B, T) at most one label per frame
    frames = np.empty((B, T), np.int32)  # (B, T)
    counts = np.empty(B, np.int64)  # (B,)
    _ctc_greedy(np.ascontiguousarray(logits), lengths, np.int64(blank), tokens, frames, counts)
    return [(tokens[b, :counts[b]].copy(), frames[b, :counts[b]].copy()) for b in range(B)]


def ctc_align(log_probs, target, blank=0):
    """Viterbi forced alignment of one utterance to its known labels; wraps ``_ctc_align``.

    Parameters
    ----------
    log_probs : np.ndarray [shape=(T, C), dtype=float32 or float64]
        Per-frame log-probabilities (unnormalised scores give the same path).
    target : np.ndarray [shape=(L,), dtype=int]
        Label ids in [0, C), none of them blank.
    blank : int

    Returns
    -------
    starts, ends : np.ndarray [shape=(L,), dtype=int32]
        First and last frame the best path spends on each label (inclusive).
    """
    log_probs = np.asarray(log_probs)
    target = np.asarray(target)
    _check_float("log_probs", log_probs)
    if log_probs.ndim != 2 or log_probs.shape[1] == 0:
        raise ValueError(f"log_probs has shape {log_probs.shape}, expected (T, C) with C >= 1")
    T, C = log_probs.shape
    if target.ndim != 1:
        raise ValueError(f"target has shape {target.shape}, expected (L,)")
    target = _check_ints("target", target, target.shape)
    blank = _check_blank(blank, C)
    _check_labels("target", target, C, blank)
    L = len(target)
    starts = np.zeros(L, np.int32)  # (L,)
    ends = np.zeros(L, np.int32)  # (L,)
    need = int(_frames_needed(target, L))
    if T < need:
        raise ValueError(f"cannot align {L} labels to {T} frames: they need at least {need} "
                         f"(one per label and a blank between repeats)")
    if T == 0:
        return starts, ends
    if not _ctc_align(np.ascontiguousarray(log_probs), target, np.int64(blank), starts, ends):
        raise ValueError("no alignment has a finite score: log_probs is -inf on every path")
    return starts, ends
