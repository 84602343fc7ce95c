"""Slow, obvious NumPy LSTM: one row, one step at a time, float64 throughout.

Written from the equations, not from suite.kernels/lstm_cell.py, so that the two
can disagree. Gate blocks i, f, g, o (CIFG: i, g, o with f = 1 - i);
peepholes: i and f see c_{t-1}, o sees c_t; LSTMP: r = h @ W_hr.
"""
import numpy as np


def _sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def lstm_forward_ref(x, lengths, h0, c0, W_ih, W_hh, b, peep=None, W_hr=None, cifg=False,
                     reverse=False):
    """Returns y (T, B, R), hT (B, R), cT (B, H) in float64."""
    x = np.asarray(x, np.float64)
    T, B, _ = x.shape
    G = 3 if cifg else 4
    H = W_ih.shape[1] // G
    R = H if W_hr is None else W_hr.shape[1]
    lengths = np.full(B, T) if lengths is None else np.asarray(lengths)
    h0 = np.zeros((B, R)) if h0 is None else np.asarray(h0, np.float64)
    c0 = np.zeros((B, H)) if c0 is None else np.asarray(c0, np.float64)
    W_ih, W_hh, b = (np.asarray(a, np.float64) for a in (W_ih, W_hh, b))
    p = np.zeros((3, H)) if peep is None else np.asarray(peep, np.float64)
    y = np.zeros((T, B, R))
    hT = np.zeros((B, R))
    cT = np.zeros((B, H))
    for row in range(B):
        r, c = h0[row].copy(), c0[row].copy()
        times = range(lengths[row])
        if reverse:
            times = reversed(times)
        for t in times:
            z = x[t, row] @ W_ih + r @ W_hh + b
            if cifg:
                zi, zg, zo = z[:H], z[H:2 * H], z[2 * H:]
                i = _sigmoid(zi + p[0] * c)
                f = 1.0 - i
            else:
                zi, zf, zg, zo = z[:H], z[H:2 * H], z[2 * H:3 * H], z[3 * H:]
                i = _sigmoid(zi + p[0] * c)
                f = _sigmoid(zf + p[1] * c)
            g = np.tanh(zg)
            c = f * c + i * g
            o = _sigmoid(zo + p[2] * c)
            h = o * np.tanh(c)
            r = h if W_hr is None else h @ np.asarray(W_hr, np.float64)
            y[t, row] = r
        hT[row], cT[row] = r, c
    return y, hT, cT
