"""Slow, obvious NumPy versions of the soft-window LSTM and the mixture density loss
(Graves 2013, eqs. 23-26 and 46-51), one row and one step at a time, float64 throughout.

Written from the paper's equations, not from kernels/window.py or kernels/mdn.py.
"""
import numpy as np


def _sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def window_lstm_ref(x, lengths, chars, n_chars, W_x, b, W_rec, W_win, b_win, state=None):
    """-> y (T, B, H), w (T, B, V), phi (T, B, U), kappa (T, B, K); gates i, f, g, o."""
    x = np.asarray(x, np.float64)
    T, B, _ = x.shape
    H = W_x.shape[1] // 4
    V = W_rec.shape[0] - H
    K = W_win.shape[1] // 3
    U = chars.shape[1]
    y, w, phi, kap = np.zeros((T, B, H)), np.zeros((T, B, V)), np.zeros((T, B, U)), np.zeros((T, B, K))
    for row in range(B):
        if state is None:
            h, c, wv, kappa = np.zeros(H), np.zeros(H), np.zeros(V), np.zeros(K)
        else:
            h, c, wv, kappa = (np.asarray(s[row], np.float64) for s in state)
        for t in range(lengths[row]):
            z = x[t, row] @ W_x + b + np.concatenate([h, wv]) @ W_rec
            i, f, g, o = _sigmoid(z[:H]), _sigmoid(z[H:2 * H]), np.tanh(z[2 * H:3 * H]), _sigmoid(z[3 * H:])
            c = f * c + i * g
            h = o * np.tanh(c)
            p = np.exp(h @ W_win + b_win)
            alpha, beta, kappa = p[:K], p[K:2 * K], kappa + p[2 * K:]
            wv = np.zeros(V)
            for u in range(n_chars[row]):
                phi[t, row, u] = np.sum(alpha * np.exp(-beta * (kappa - u) ** 2))
                wv[chars[row, u]] += phi[t, row, u]
            y[t, row], w[t, row], kap[t, row] = h, wv, kappa
    return y, w, phi, kap


def mdn_nll_ref(out, target, weight):
    """Weighted sum over rows of -log sum_j pi_j N_j(dx, dy) - log Bernoulli(pen_up)."""
    total = 0.0
    M = (out.shape[1] - 1) // 6
    for row, (x1, x2, up), wn in zip(np.asarray(out, np.float64), target, weight):
        if wn == 0:
            continue
        e = _sigmoid(row[0])
        pi = np.exp(row[1:1 + M]) / np.exp(row[1:1 + M]).sum()
        mu1, mu2 = row[1 + M:1 + 2 * M], row[1 + 2 * M:1 + 3 * M]
        s1, s2 = np.exp(row[1 + 3 * M:1 + 4 * M]), np.exp(row[1 + 4 * M:1 + 5 * M])
        rho = np.tanh(row[1 + 5 * M:])
        z = ((x1 - mu1) / s1) ** 2 + ((x2 - mu2) / s2) ** 2 - 2 * rho * (x1 - mu1) * (x2 - mu2) / (s1 * s2)
        n = np.exp(-z / (2 * (1 - rho ** 2))) / (2 * np.pi * s1 * s2 * np.sqrt(1 - rho ** 2))
        total += wn * (-np.log(np.sum(pi * n)) - np.log(e if up else 1 - e))
    return total
