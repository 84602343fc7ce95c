"""Slow, obvious NumPy versions of kernels/gru.py: one row, one step at a time."""
import numpy as np


def _sigmoid(a):
    return 1.0 / (1.0 + np.exp(-a))


def _run(step, x, lengths, h0, H, reverse):
    """Drive a one-row step function over every sequence; padding stays at the end."""
    T, B, _ = x.shape
    lengths = np.full(B, T) if lengths is None else np.asarray(lengths)
    h0 = np.zeros((B, H), x.dtype) if h0 is None else h0
    y = np.zeros((T, B, H), x.dtype)
    hT = np.array(h0, copy=True)
    for b in range(B):
        n = int(lengths[b])
        times = range(n - 1, -1, -1) if reverse else range(n)
        h = h0[b]
        for t in times:
            h = step(x[t, b], h)
            y[t, b] = h
        hT[b] = h
    return y, hT


def gru_reference(x, lengths, h0, W_ih, W_hh, b_ih, b_hh, reverse=False):
    """torch.nn.GRU's equations, gate blocks r, z, n. Returns y (T, B, H), hT (B, H)."""
    H = W_hh.shape[0]

    def step(xt, h):
        gi = xt @ W_ih + b_ih
        gh = h @ W_hh + b_hh
        r = _sigmoid(gi[:H] + gh[:H])
        z = _sigmoid(gi[H:2 * H] + gh[H:2 * H])
        n = np.tanh(gi[2 * H:] + r * gh[2 * H:])
        return (1 - z) * n + z * h

    return _run(step, x, lengths, h0, H, reverse)


def rnn_reference(x, lengths, h0, W_ih, W_hh, b, reverse=False):
    """h' = tanh(x W_ih + h W_hh + b). Returns y (T, B, H), hT (B, H)."""
    H = W_hh.shape[0]
    return _run(lambda xt, h: np.tanh(xt @ W_ih + h @ W_hh + b), x, lengths, h0, H, reverse)
