"""An LSTM layer that reads a text through a soft window (Graves 2013, section 5), forward and backward.

Handwriting synthesis conditions the pen on the characters to write. At step t
the LSTM sees the pen input and the window vector of the step before; its new
hidden state sets K Gaussian bumps over the character positions u:

    (a, b, k) = exp(h_t @ W_win + b_win)             each (K,): weight, sharpness, step
    kappa_t   = kappa_{t-1} + k                      positions only move forward
    phi(t, u) = sum_k a_k exp(-b_k (kappa_t,k - u)^2)
    w_t       = sum_u phi(t, u) onehot(char_u)       (V,): the characters in view

and w_t is both an output (the layers above read it) and part of the next
step's recurrent input, so the window is inside the recurrence: one GEMM a step
over r = [h, w] with a fused (H + V, 4H) matrix, the cell of lstm_cell.py, and
the window in the same loop. Gate order and cell equations are lstm_cell's
(no peepholes, no CIFG, no projection). Sequences run forward only, each to its
own length; padded steps keep their state and produce zeros.
"""
import numpy as np
from numba import njit

from suite.kernels.config import JIT
from suite.kernels.lstm import _cell_backward_row, _matmul_into
from suite.kernels.lstm_cell import lstm_cell_row


@njit(**JIT)
def _window_row(p, kappa_prev, chars, n_chars, act, kappa, phi, w):
    """One row's window: p (3K,) pre-activations -> act (3K,) = (a, b, k) after exp, kappa (K,), phi (U,), w (V,)."""
    K = kappa.shape[0]
    for j in range(3 * K):
        act[j] = np.exp(p[j])
    for k in range(K):
        kappa[k] = kappa_prev[k] + act[2 * K + k]
    w[:] = 0
    phi[:] = 0
    for u in range(n_chars):
        s = 0.0
        for k in range(K):
            d = kappa[k] - u
            s += act[k] * np.exp(-act[K + k] * d * d)
        phi[u] = s
        w[chars[u]] += s


@njit(**JIT)
def _forward(gates, lengths, chars, n_chars, h0, c0, w0, kappa0, W_rec, W_win, b_win,
             y, wout, phis, acts, kappas, cs, r_prev):
    """Run the windowed cell over time, keeping what backward needs.

    gates (T, B, 4H) holds x @ W_x + b on entry and the gate activations on exit.
    y (T, B, H), wout (T, B, V), phis (T, B, U), acts (T, B, 3K), kappas (T, B, K),
    cs (T+1, B, H), r_prev (T, B, H+V) must be zero on entry.
    Returns the final (h, c, w, kappa) as one (B, 2H + V + K) block.
    """
    T, B, GH = gates.shape
    H = c0.shape[1]
    V = w0.shape[1]
    K = kappa0.shape[1]
    r = np.empty((B, H + V), dtype=gates.dtype)    # (B, H+V) recurrent input [h, w] of every row
    r[:, :H] = h0
    r[:, H:] = w0
    kap = kappa0.copy()                            # (B, K)
    rec = np.empty((B, GH), dtype=gates.dtype)     # (B, 4H) r @ W_rec of one step
    p = np.empty((B, 3 * K), dtype=gates.dtype)    # (B, 3K) window pre-activations
    nopeep = np.zeros((3, H), dtype=gates.dtype)   # no peepholes: lstm_cell_row does not read it
    for bi in range(B):
        cs[0, bi] = c0[bi]
    for t in range(T):
        _matmul_into(r, W_rec, rec)
        for bi in range(B):
            if t >= lengths[bi]:
                continue                           # padded step: state frozen
            r_prev[t, bi] = r[bi]
            z = gates[t, bi]
            for k in range(GH):
                z[k] += rec[bi, k]
            lstm_cell_row(z, cs[t, bi], nopeep, False, False, cs[t + 1, bi], y[t, bi])
        _matmul_into(y[t], W_win, p)               # padded rows: garbage, ignored
        for bi in range(B):
            if t >= lengths[bi]:
                cs[t + 1, bi] = cs[t, bi]          # so that cs[T] is the last state of every row
                continue
            for j in range(3 * K):
                p[bi, j] += b_win[j]
            _window_row(p[bi], kap[bi], chars[bi], n_chars[bi], acts[t, bi], kappas[t, bi], phis[t, bi],
                        wout[t, bi])
            kap[bi] = kappas[t, bi]
            r[bi, :H] = y[t, bi]
            r[bi, H:] = wout[t, bi]
    final = np.empty((B, 2 * H + V + K), dtype=gates.dtype)
    for bi in range(B):
        final[bi, :H] = r[bi, :H]
        final[bi, H:2 * H] = cs[T, bi]
        final[bi, 2 * H:2 * H + V] = r[bi, H:]
        final[bi, 2 * H + V:] = kap[bi]
    return final


@njit(**JIT)
def _backward(dy, dw, lengths, chars, n_chars, W_rec, W_win, gates, acts, kappas, cs, r_prev, dG, dP):
    """Backprop through time from dy (T, B, H) and dw (T, B, V), the gradients of the outputs
    (no gradient reaches the final state). Writes dG (T, B, 4H), the gradient of the gate
    pre-activations (= of x @ W_x + b), and dP (T, B, 3K), of the window pre-activations."""
    T, B, GH = gates.shape
    H = cs.shape[2]
    V = dw.shape[2]
    K = kappas.shape[2]
    U = chars.shape[1]
    dr = np.zeros((B, H + V), dtype=gates.dtype)   # (B, H+V) d loss / d [h_t, w_t] from step t+1
    dc = np.zeros((B, H), dtype=gates.dtype)       # (B, H) d loss / d c_t from step t+1
    dkap = np.zeros((B, K), dtype=gates.dtype)     # (B, K) d loss / d kappa_t from step t+1
    dh = np.empty((B, H), dtype=gates.dtype)
    dr_rec = np.empty((B, H + V), dtype=gates.dtype)
    dphi = np.empty(U, dtype=gates.dtype)
    W_rec_T = np.ascontiguousarray(W_rec.T)        # (4H, H+V)
    W_win_T = np.ascontiguousarray(W_win.T)        # (3K, H)
    dpeep = np.zeros((3, H), dtype=gates.dtype)    # unused: no peepholes
    for t in range(T - 1, -1, -1):
        for bi in range(B):
            if t >= lengths[bi]:
                dP[t, bi] = 0
                continue
            # backprop through w_t = sum_u phi(u) onehot(char_u): each position gets its character's gradient
            n = n_chars[bi]
            for u in range(n):
                dphi[u] = dw[t, bi, chars[bi, u]] + dr[bi, H + chars[bi, u]]
            a = acts[t, bi]
            for k in range(K):
                alpha, beta, kap = a[k], a[K + k], kappas[t, bi, k]
                da = 0.0
                db = 0.0
                dk = 0.0
                for u in range(n):
                    d = kap - u
                    e = alpha * np.exp(-beta * d * d) * dphi[u]   # d loss / d phi times the bump
                    da += e                                       # d bump / d log a = bump
                    db -= e * beta * d * d                        # d bump / d log b
                    dk -= 2.0 * e * beta * d                      # d bump / d kappa
                dkap[bi, k] += dk                  # kappa_t feeds phi_t and kappa_{t+1} (already in dkap)
                dP[t, bi, k] = da
                dP[t, bi, K + k] = db
                dP[t, bi, 2 * K + k] = dkap[bi, k] * a[2 * K + k]  # kappa_t = kappa_{t-1} + exp(p)
        _matmul_into(dP[t], W_win_T, dh)           # backprop through the window's projection
        for bi in range(B):
            if t >= lengths[bi]:
                continue
            for j in range(H):
                dh[bi, j] += dy[t, bi, j] + dr[bi, j]
            _cell_backward_row(gates[t, bi], cs[t, bi], cs[t + 1, bi], dh[bi], dc[bi],
                               dpeep, False, False, dG[t, bi], dpeep)
        _matmul_into(dG[t], W_rec_T, dr_rec)       # padded rows have dG = 0
        for bi in range(B):
            if t < lengths[bi]:
                dr[bi] = dr_rec[bi]


def _check(name, a, dtype, shape):
    if not isinstance(a, np.ndarray) or a.dtype != dtype or a.shape != shape:
        got = f"{a.dtype} {a.shape}" if isinstance(a, np.ndarray) else type(a).__name__
        raise ValueError(f"{name}: expected {np.dtype(dtype).name} {shape}, got {got}")


class WindowCache:
    """What window_lstm_backward needs from the forward pass."""

    def __init__(self, **arrays):
        self.__dict__.update(arrays)


def window_lstm_forward(xg, lengths, chars, n_chars, state, W_rec, W_win, b_win):
    """Forward through time of the windowed LSTM.

    Parameters
    ----------
    xg : np.ndarray [shape=(T, B, 4H)]  x @ W_x + b, the input's share of the gates (not modified)
    lengths : np.ndarray [shape=(B,), int]  steps of each sequence
    chars : np.ndarray [shape=(B, U), int]  character ids (< V), padded
    n_chars : np.ndarray [shape=(B,), int]  characters of each row (<= U)
    state : (h0 (B, H), c0 (B, H), w0 (B, V), kappa0 (B, K))
    W_rec : np.ndarray [shape=(H + V, 4H)]  recurrent weights over [h, w]
    W_win, b_win : np.ndarray [shape=(H, 3K)], [shape=(3K,)]

    Returns y (T, B, H), w (T, B, V), phi (T, B, U), window (T, B, 3K) = (a, b, kappa) per step,
    the final state (h, c, w, kappa) and the cache for backward.
    """
    T, B, GH = xg.shape
    H = GH // 4
    dt = xg.dtype
    h0, c0, w0, kappa0 = state
    V, K = w0.shape[1], kappa0.shape[1]
    U = chars.shape[1]
    for name, a, shape in (("W_rec", W_rec, (H + V, GH)), ("W_win", W_win, (H, 3 * K)), ("b_win", b_win, (3 * K,)),
                           ("h0", h0, (B, H)), ("c0", c0, (B, H)), ("w0", w0, (B, V)), ("kappa0", kappa0, (B, K))):
        _check(name, a, dt, shape)
    lengths = np.ascontiguousarray(lengths, dtype=np.int64)
    chars = np.ascontiguousarray(chars, dtype=np.int64)
    n_chars = np.ascontiguousarray(n_chars, dtype=np.int64)
    if lengths.shape != (B,) or n_chars.shape != (B,) or chars.shape[0] != B:
        raise ValueError(f"lengths, n_chars and chars must have {B} rows")
    if lengths.size and (lengths.min() < 0 or lengths.max() > T):
        raise ValueError(f"lengths must lie in 0..{T}")
    if n_chars.size and (n_chars.min() < 0 or n_chars.max() > U):
        raise ValueError(f"n_chars must lie in 0..{U}")
    if chars.size and (chars.min() < 0 or chars.max() >= V):
        raise ValueError(f"character ids must lie in 0..{V - 1}")
    gates = np.array(xg, dtype=dt, order="C")                       # (T, B, 4H)
    y = np.zeros((T, B, H), dt)
    w = np.zeros((T, B, V), dt)
    phi = np.zeros((T, B, U), dt)
    acts = np.zeros((T, B, 3 * K), dt)                              # (a, b, exp-step) per step
    kappas = np.zeros((T, B, K), dt)
    cs = np.zeros((T + 1, B, H), dt)
    r_prev = np.zeros((T, B, H + V), dt)
    final = _forward(gates, lengths, chars, n_chars, np.ascontiguousarray(h0), np.ascontiguousarray(c0),
                     np.ascontiguousarray(w0), np.ascontiguousarray(kappa0), np.ascontiguousarray(W_rec),
                     np.ascontiguousarray(W_win), np.ascontiguousarray(b_win), y, w, phi, acts, kappas, cs, r_prev)
    window = np.concatenate([acts[:, :, :2 * K], kappas], axis=2)    # (T, B, 3K)
    state = (final[:, :H].copy(), final[:, H:2 * H].copy(), final[:, 2 * H:2 * H + V].copy(),
             final[:, 2 * H + V:].copy())
    cache = WindowCache(lengths=lengths, chars=chars, n_chars=n_chars, W_rec=np.ascontiguousarray(W_rec),
                        W_win=np.ascontiguousarray(W_win), gates=gates, y=y, acts=acts, kappas=kappas, cs=cs,
                        r_prev=r_prev)
    return y, w, phi, window, state, cache


def window_lstm_backward(dy, dw, cache):
    """Gradients from dy (T, B, H) and dw (T, B, V): (dxg (T, B, 4H), grads {W_rec, W_win, b_win}).

    dxg is the gradient of x @ W_x + b; the caller turns it into dx, dW_x, db.
    """
    c = cache
    T, B, GH = c.gates.shape
    K = c.kappas.shape[2]
    dt = c.gates.dtype
    _check("dy", dy, dt, c.y.shape)
    _check("dw", dw, dt, (T, B, c.W_rec.shape[0] - c.y.shape[2]))
    dG = np.zeros((T, B, GH), dt)
    dP = np.zeros((T, B, 3 * K), dt)
    _backward(np.ascontiguousarray(dy), np.ascontiguousarray(dw), c.lengths, c.chars, c.n_chars, c.W_rec, c.W_win,
              c.gates, c.acts, c.kappas, c.cs, c.r_prev, dG, dP)
    flat_g, flat_p = dG.reshape(T * B, GH), dP.reshape(T * B, 3 * K)
    grads = {"W_rec": c.r_prev.reshape(T * B, -1).T @ flat_g,       # (H+V, 4H)
             "W_win": c.y.reshape(T * B, -1).T @ flat_p,            # (H, 3K)
             "b_win": flat_p.sum(axis=0)}
    return dG, grads
