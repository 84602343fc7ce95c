"""Losses with their gradients: softmax cross-entropy, log-softmax, mean squared error.

Each loss returns its value and the gradient with respect to its input in one
pass, because every caller (the training loop) wants both. Row reductions are
max-shifted (log-sum-exp) so large logits neither overflow nor lose precision,
and sums are accumulated in float64 whatever the array dtype.
"""
import math

import numpy as np
from numba import njit

from suite.kernels.config import JIT

_FLOATS = (np.float32, np.float64)


def _check_float(name, a):
    if a.dtype not in _FLOATS:
        raise ValueError(f"{name} has dtype {a.dtype}, expected float32 or float64")


@njit(**JIT)
def _softmax_xent(logits, targets, ignore_index, count, dlogits):
    """Mean NLL over the rows whose target != ignore_index; writes dlogits."""
    N, V = logits.shape
    dt = logits.dtype.type
    inv = 1.0 / count if count > 0 else 0.0
    total = 0.0
    for n in range(N):
        t = targets[n]
        if t == ignore_index:
            for v in range(V):
                dlogits[n, v] = 0.0
            continue
        row = logits[n]
        m = row[0]
        for v in range(1, V):
            m = max(m, row[v])
        s = 0.0
        for v in range(V):
            e = math.exp(row[v] - m)
            dlogits[n, v] = e  # unnormalised softmax, scaled below
            s += e
        lse = m + math.log(s)
        total += lse - row[t]
        scale = dt(inv / s)
        for v in range(V):
            dlogits[n, v] *= scale
        dlogits[n, t] -= dt(inv)
    return total * inv


@njit(**JIT)
def _log_softmax(x, out):
    N, V = x.shape
    for n in range(N):
        row = x[n]
        m = row[0]
        for v in range(1, V):
            m = max(m, row[v])
        s = 0.0
        for v in range(V):
            s += math.exp(row[v] - m)
        lse = m + math.log(s)
        for v in range(V):
            out[n, v] = row[v] - lse


@njit(**JIT)
def _mse(pred, target, dpred):
    n = pred.size
    scale = 2.0 / n
    total = 0.0
    for k in range(n):
        d = pred[k] - target[k]
        total += d * d
        dpred[k] = scale * d
    return total / n


def softmax_cross_entropy(logits, targets, ignore_index=-100):
    """Softmax cross-entropy (natural log) and its gradient; wraps ``_softmax_xent``.

    Parameters
    ----------
    logits : np.ndarray [shape=(N, V), dtype=float32 or float64]
    targets : np.ndarray [shape=(N,), dtype=int]
        Class ids in [0, V), or ``ignore_index`` for rows that do not count.
    ignore_index : int

    Returns
    -------
    loss : float
        Mean negative log-likelihood over the counted rows (0.0 if none).
    count : int
        Number of counted rows.
    dlogits : np.ndarray [shape=(N, V), dtype=logits.dtype]
        Gradient of ``loss``; rows of ignored targets are 0.
    """
    logits = np.asarray(logits)
    targets = np.asarray(targets)
    _check_float("logits", logits)
    if logits.ndim != 2 or logits.shape[1] == 0:
        raise ValueError(f"logits has shape {logits.shape}, expected (N, V) with V >= 1")
    N, V = logits.shape
    if targets.shape != (N,):
        raise ValueError(f"targets has shape {targets.shape}, expected ({N},) for logits {logits.shape}")
    if targets.dtype.kind not in "iu":
        raise ValueError(f"targets has dtype {targets.dtype}, expected an integer dtype")
    targets = np.ascontiguousarray(targets, dtype=np.int64)
    counted = targets != ignore_index
    bad = counted & ((targets < 0) | (targets >= V))
    if bad.any():
        raise ValueError(f"targets[{int(np.argmax(bad))}] = {targets[bad][0]} is outside [0, {V}) "
                         f"and is not ignore_index={ignore_index}")
    count = int(counted.sum())
    logits = np.ascontiguousarray(logits)
    dlogits = np.empty_like(logits)  # (N, V)
    loss = _softmax_xent(logits, targets, np.int64(ignore_index), count, dlogits)
    return float(loss), count, dlogits


def log_softmax(logits):
    """Log-softmax over the last axis; wraps ``_log_softmax``.

    Parameters
    ----------
    logits : np.ndarray [shape=(..., V), dtype=float32 or float64]

    Returns
    -------
    np.ndarray [shape=logits.shape, dtype=logits.dtype]
    """
    logits = np.asarray(logits)
    _check_float("logits", logits)
    if logits.ndim < 1 or logits.shape[-1] == 0:
        raise ValueError(f"logits has shape {logits.shape}, expected (..., V) with V >= 1")
    x = np.ascontiguousarray(logits).reshape(-1, logits.shape[-1])  # (N, V)
    out = np.empty_like(x)
    _log_softmax(x, out)
    return out.reshape(logits.shape)


def mse_loss(pred, target):
    """Mean squared error over all elements and its gradient; wraps ``_mse``.

    Parameters
    ----------
    pred, target : np.ndarray [same shape, same dtype float32 or float64]

    Returns
    -------
    loss : float
        mean((pred - target) ** 2)
    dpred : np.ndarray [shape=pred.shape, dtype=pred.dtype]
        2 (pred - target) / pred.size
    """
    pred = np.asarray(pred)
    target = np.asarray(target)
    _check_float("pred", pred)
    if target.shape != pred.shape:
        raise ValueError(f"target has shape {target.shape}, expected {pred.shape} (the shape of pred)")
    if target.dtype != pred.dtype:
        raise ValueError(f"target has dtype {target.dtype}, expected {pred.dtype} (the dtype of pred)")
    if pred.size == 0:
        raise ValueError("pred is empty: the mean of zero elements is undefined")
    p = np.ascontiguousarray(pred).reshape(-1)
    t = np.ascontiguousarray(target).reshape(-1)
    dpred = np.empty_like(p)  # (n,)
    loss = _mse(p, t, dpred)
    return float(loss), dpred.reshape(pred.shape)
