"""Slow, obvious NumPy additive attention: one (t, b) at a time, float64."""
import numpy as np


def additive_attention_ref(qp, keys, values, v, lengths=None):
    """Returns context (T, B, V) and alpha (T, B, N) from Bahdanau's definition."""
    qp, keys, values, v = (np.asarray(a, np.float64) for a in (qp, keys, values, v))
    T, B, _ = qp.shape
    N, V = keys.shape[1], values.shape[2]
    lengths = np.full(B, N) if lengths is None else np.asarray(lengths)
    context = np.zeros((T, B, V))
    alpha = np.zeros((T, B, N))
    for t in range(T):
        for b in range(B):
            L = int(lengths[b])
            scores = np.array([v @ np.tanh(qp[t, b] + keys[b, n]) for n in range(L)])
            e = np.exp(scores - scores.max())
            alpha[t, b, :L] = e / e.sum()
            context[t, b] = alpha[t, b, :L] @ values[b, :L]
    return context, alpha
