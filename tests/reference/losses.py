"""Slow, obvious NumPy versions of kernels/losses.py (float64 throughout)."""
import numpy as np


def log_softmax_ref(logits):
    x = np.asarray(logits, dtype=np.float64)
    m = x.max(axis=-1, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(axis=-1, keepdims=True))


def softmax_cross_entropy_ref(logits, targets, ignore_index=-100):
    """(loss, count, dlogits) by the textbook formulas, row by row."""
    logp = log_softmax_ref(logits)
    N, V = logp.shape
    rows = [n for n in range(N) if targets[n] != ignore_index]
    count = len(rows)
    dlogits = np.zeros((N, V))
    if count == 0:
        return 0.0, 0, dlogits
    loss = -sum(logp[n, targets[n]] for n in rows) / count
    for n in rows:
        onehot = np.zeros(V)
        onehot[targets[n]] = 1.0
        dlogits[n] = (np.exp(logp[n]) - onehot) / count
    return loss, count, dlogits


def mse_ref(pred, target):
    d = np.asarray(pred, dtype=np.float64) - np.asarray(target, dtype=np.float64)
    return float(np.mean(d * d)), 2.0 * d / d.size
