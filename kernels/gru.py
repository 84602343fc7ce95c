"""GRU and the plain tanh RNN: forward through time, backward through time, inference.

The GRU (Cho et al. 2014) in torch.nn.GRU's form, gate order r, z, n written
once in ``gru_cell_row``::

    r  = sigmoid(x W_ir + b_ir + h W_hr + b_hr)
    z  = sigmoid(x W_iz + b_iz + h W_hz + b_hz)
    n  = tanh(x W_in + b_in + r * (h W_hn + b_hn))
    h' = (1 - z) * n + z * h

The tanh RNN, the baseline the LSTM is compared against: h' = tanh(x W_ih + h W_hh + b).

Layout of every kernel: one GEMM projects the inputs of all time steps at once;
only the recurrent product h W_hh is a GEMM per step, written by np.dot into a
preallocated buffer; a fused elementwise loop per batch row does the rest.

Steps and times. Step s is the s-th input a sequence consumes. Forward, row b
reads time t = s; with ``reverse`` it reads t = len[b] - 1 - s, so padding stays
at the end as in torch's packed bidirectional reverse direction. Row b is active
at step s while s < len[b]. Inputs and outputs (x, y, dx, dy) are indexed by
time; the saved states and recurrent caches by step, so that one step of the
whole batch is one contiguous (B, .) block for the per-step GEMM.
"""
from typing import NamedTuple

import numpy as np
from numba import njit

from kernels._math import sigmoid, tanh
from kernels.config import JIT

INFER_CHUNK = 16
"""Time steps per input-projection GEMM in inference: memory stays O(B * 3H)
while a GEMM of 16 * B rows is still large enough to run near peak."""


class GRUCache(NamedTuple):
    """What gru_backward needs from gru_forward (holds references to x and the weights)."""
    x: np.ndarray         # (T, B, D)
    lengths: np.ndarray   # (B,) int64
    reverse: bool
    W_ih: np.ndarray      # (D, 3H)
    W_hh: np.ndarray      # (H, 3H)
    states: np.ndarray    # (T+1, B, H) state before step s; states[0] = h0
    gates: np.ndarray     # (T, B, 3H) r, z, n activations at step s
    hn: np.ndarray        # (T, B, H) h W_hn + b_hn at step s (n's recurrent part before r)


class RNNCache(NamedTuple):
    """What rnn_backward needs from rnn_forward (holds references to x and the weights)."""
    x: np.ndarray         # (T, B, D)
    lengths: np.ndarray   # (B,) int64
    reverse: bool
    W_ih: np.ndarray      # (D, H)
    W_hh: np.ndarray      # (H, H)
    states: np.ndarray    # (T+1, B, H) state before step s; states[s+1] is tanh's output


# ---------------------------------------------------------------- the cells

@njit(inline="always", **JIT)
def gru_cell_row(xp, hp, b_hh, h_prev, h_out, hn_out):
    """Advance one batch row of the GRU by one step.

    Parameters
    ----------
    xp : np.ndarray [shape=(3H,)]
        Input projection x W_ih + b_ih.
    hp : np.ndarray [shape=(3H,)]
        Recurrent projection h W_hh without its bias; overwritten with the
        r, z, n activations (what backward needs).
    b_hh : np.ndarray [shape=(3H,)]
    h_prev : np.ndarray [shape=(H,)]
    h_out : np.ndarray [shape=(H,)]
        New state; may be the same array as h_prev.
    hn_out : np.ndarray [shape=(H,)]
        h W_hn + b_hn: n's recurrent term before r scales it.
    """
    H = h_prev.shape[0]
    one = h_prev.dtype.type(1.0)
    # Short loops over separate views, each reading and writing the same index,
    # so that LLVM vectorises them (one fused loop over the three blocks of hp,
    # with symbolic offsets H and 2H between its reads and writes, stays scalar
    # and is 5x slower).
    for k in range(2 * H):  # r and z: sigmoid of input part + recurrent part
        hp[k] = sigmoid(xp[k] + hp[k] + b_hh[k])
    r, z, n = hp[:H], hp[H:2 * H], hp[2 * H:]
    xn, bn = xp[2 * H:], b_hh[2 * H:]
    for j in range(H):
        hn = n[j] + bn[j]  # n's recurrent term, before r scales it
        hn_out[j] = hn
        n[j] = tanh(xn[j] + r[j] * hn)
    for j in range(H):
        h_out[j] = (one - z[j]) * n[j] + z[j] * h_prev[j]


@njit(inline="always", **JIT)
def rnn_cell_row(xp, hp, h_out):
    """Advance one batch row of the tanh RNN: h' = tanh(x W_ih + b + h W_hh).

    xp (H,) holds x W_ih + b, hp (H,) holds h W_hh; h_out (H,) may alias neither.
    """
    for j in range(h_out.shape[0]):
        h_out[j] = tanh(xp[j] + hp[j])


@njit(inline="always", **JIT)
def _time_of(s, length, reverse):
    """Time index a row of this length reads at step s."""
    return length - 1 - s if reverse else s


@njit(**JIT)
def _input_projection(x, W, bias):
    """x W + bias for all time steps in one GEMM: (T, B, D) -> (T, B, G)."""
    T, B, D = x.shape
    G = W.shape[1]
    xp = np.dot(x.reshape(T * B, D), W)  # (T*B, G)
    for k in range(T * B):
        for j in range(G):
            xp[k, j] += bias[j]
    return xp.reshape(T, B, G)  # (T, B, G)


@njit(**JIT)
def _gather_chunk(x, lengths, s0, c, reverse, xbuf):
    """Copy into xbuf[k, b] the input row b reads at step s0 + k (zeros when padded)."""
    zero = xbuf.dtype.type(0.0)
    for k in range(c):
        s = s0 + k
        for b in range(x.shape[1]):
            if s < lengths[b]:
                xbuf[k, b] = x[_time_of(s, lengths[b], reverse), b]
            else:
                xbuf[k, b] = zero


# ---------------------------------------------------------------- GRU kernels

@njit(**JIT)
def _gru_forward(x, lengths, reverse, W_ih, W_hh, b_ih, b_hh, y, states, gates, hn):
    """Training forward; writes y (T, B, H) and the caches states, gates, hn."""
    T, B, _ = x.shape
    xp = _input_projection(x, W_ih, b_ih)  # (T, B, 3H)
    for s in range(lengths.max()):
        np.dot(states[s], W_hh, gates[s])  # (B, 3H), b_hh is added in the cell
        for b in range(B):
            if s < lengths[b]:
                t = _time_of(s, lengths[b], reverse)
                gru_cell_row(xp[t, b], gates[s, b], b_hh, states[s, b], states[s + 1, b], hn[s, b])
                y[t, b] = states[s + 1, b]
            else:  # finished rows carry their state to the end
                states[s + 1, b] = states[s, b]


@njit(**JIT)
def _gru_backward(dy, has_dy, dh, lengths, reverse, x, W_ih, W_hh, states, gates, hn,
                  dx, dW_ih, dW_hh, db_ih, db_hh):
    """Backward through time. dh (B, H) enters as dL/dh_T and leaves as dL/dh_0."""
    T, B, D = x.shape
    H = W_hh.shape[0]
    one = x.dtype.type(1.0)
    n_steps = lengths.max()
    W_hhT = np.ascontiguousarray(W_hh.T)  # (3H, H)
    dxp = np.zeros((T, B, 3 * H), x.dtype)  # dL/d(x W_ih + b_ih), by time; padded rows stay 0
    dhp = np.zeros((T, B, 3 * H), x.dtype)  # dL/d(h W_hh + b_hh), by step; padded rows stay 0
    drec = np.empty((B, H), x.dtype)  # (B, H)
    for s in range(n_steps - 1, -1, -1):
        for b in range(B):
            if s >= lengths[b]:
                continue  # padded step: the state passed through unchanged, so does dh
            t = _time_of(s, lengths[b], reverse)
            g = dh[b]  # dL/dh' for this step, accumulated in place
            if has_dy:
                for j in range(H):
                    g[j] += dy[t, b, j]  # the output at t is this step's new state
            h_prev = states[s, b]
            hn_s = hn[s, b]
            act = gates[s, b]
            r, z, n = act[:H], act[H:2 * H], act[2 * H:]
            dx_t = dxp[t, b]
            dar, daz, dan = dx_t[:H], dx_t[H:2 * H], dx_t[2 * H:]
            dh_s = dhp[s, b]
            dhn = dh_s[2 * H:]
            # h' = (1 - z) * n + z * h_prev, n = tanh(a_n); a_n = x W_in + b_in + r * hn.
            # Several short loops (each vectorised by LLVM, see gru_cell_row).
            for j in range(H):  # dL/da_n: through h' to n, then through tanh
                dan[j] = g[j] * (one - z[j]) * (one - n[j] * n[j])
            for j in range(H):  # dL/da_z: through h' to z, then through the sigmoid
                daz[j] = g[j] * (h_prev[j] - n[j]) * z[j] * (one - z[j])
            for j in range(H):
                # a_n is linear in r (factor hn) and in hn (factor r)
                dar[j] = dan[j] * hn_s[j] * r[j] * (one - r[j])  # then r's sigmoid
                dhn[j] = dan[j] * r[j]
            # a_r, a_z are sums of an input and a recurrent part: same gradient
            dh_s[:2 * H] = dx_t[:2 * H]
            for j in range(H):  # the direct path h_prev -> h' through z * h_prev
                g[j] *= z[j]
        # the recurrent path h_prev -> h_prev W_hh -> all three gates
        np.dot(dhp[s], W_hhT, drec)  # (B, H); rows of padded steps are 0
        dh += drec
    # parameters: one GEMM each over every step (padded rows of dxp, dhp are 0)
    dxp2 = dxp.reshape(T * B, 3 * H)  # (T*B, 3H)
    dhp2 = dhp[:n_steps].reshape(n_steps * B, 3 * H)  # (S*B, 3H)
    np.dot(x.reshape(T * B, D).T, dxp2, dW_ih)  # (D, 3H)
    np.dot(states[:n_steps].reshape(n_steps * B, H).T, dhp2, dW_hh)  # (H, 3H)
    np.dot(dxp2, np.ascontiguousarray(W_ih.T), dx.reshape(T * B, D))  # (T*B, D)
    db_ih[:] = dxp2.sum(axis=0)  # b_ih is added to every row of the input projection
    db_hh[:] = dhp2.sum(axis=0)


@njit(**JIT)
def _gru_infer(x, lengths, reverse, W_ih, W_hh, b_ih, b_hh, h, y, chunk):
    """Inference forward; h (B, H) enters as h0 and leaves as hT. No per-step caches."""
    T, B, D = x.shape
    H = W_hh.shape[0]
    n_steps = lengths.max()
    xbuf = np.empty((chunk, B, D), x.dtype)  # (C, B, D) inputs of a chunk of steps
    xp = np.empty((chunk, B, 3 * H), x.dtype)  # (C, B, 3H)
    hp = np.empty((B, 3 * H), x.dtype)  # (B, 3H)
    hn = np.empty(H, x.dtype)  # (H,) the cell's cache output, unused here
    for s0 in range(0, n_steps, chunk):
        c = min(chunk, n_steps - s0)
        if reverse:  # each row reads different times: gather them first
            _gather_chunk(x, lengths, s0, c, reverse, xbuf)
            xc = xbuf[:c]
        else:
            xc = x[s0:s0 + c]
        np.dot(xc.reshape(c * B, D), W_ih, xp.reshape(chunk * B, 3 * H)[:c * B])
        for k in range(c):
            for b in range(B):
                for j in range(3 * H):
                    xp[k, b, j] += b_ih[j]
        for k in range(c):
            s = s0 + k
            np.dot(h, W_hh, hp)  # (B, 3H)
            for b in range(B):
                if s < lengths[b]:
                    gru_cell_row(xp[k, b], hp[b], b_hh, h[b], h[b], hn)
                    y[_time_of(s, lengths[b], reverse), b] = h[b]


# ---------------------------------------------------------------- RNN kernels

@njit(**JIT)
def _rnn_forward(x, lengths, reverse, W_ih, W_hh, bias, y, states):
    """Training forward; writes y (T, B, H) and states (T+1, B, H)."""
    B = x.shape[1]
    H = W_hh.shape[0]
    xp = _input_projection(x, W_ih, bias)  # (T, B, H)
    hp = np.empty((B, H), x.dtype)  # (B, H)
    for s in range(lengths.max()):
        np.dot(states[s], W_hh, hp)  # (B, H)
        for b in range(B):
            if s < lengths[b]:
                t = _time_of(s, lengths[b], reverse)
                rnn_cell_row(xp[t, b], hp[b], states[s + 1, b])
                y[t, b] = states[s + 1, b]
            else:
                states[s + 1, b] = states[s, b]


@njit(**JIT)
def _rnn_backward(dy, has_dy, dh, lengths, reverse, x, W_ih, W_hh, states,
                  da_step, da_time, dx, dW_ih, dW_hh, db):
    """Backward through time. dh (B, H) enters as dL/dh_T and leaves as dL/dh_0.

    da_step (by step) and da_time (by time) receive dL/d(pre-activation); they
    may be the same zeroed array when not reverse.
    """
    T, B, D = x.shape
    H = W_hh.shape[0]
    one = x.dtype.type(1.0)
    zero = x.dtype.type(0.0)
    n_steps = lengths.max()
    W_hhT = np.ascontiguousarray(W_hh.T)  # (H, H)
    drec = np.empty((B, H), x.dtype)  # (B, H)
    for s in range(n_steps - 1, -1, -1):
        for b in range(B):
            if s >= lengths[b]:
                continue  # padded step: dh passes through unchanged
            t = _time_of(s, lengths[b], reverse)
            g = dh[b]
            h_new = states[s + 1, b]
            for j in range(H):
                gj = g[j] + dy[t, b, j] if has_dy else g[j]  # output at t + the next step's need
                da = gj * (one - h_new[j] * h_new[j])  # backprop through tanh
                da_step[s, b, j] = da
                da_time[t, b, j] = da
                g[j] = zero  # h_prev reaches h' only through h_prev W_hh (added below)
        np.dot(da_step[s], W_hhT, drec)  # (B, H); rows of padded steps are 0
        dh += drec
    da_t = da_time.reshape(T * B, H)  # (T*B, H)
    np.dot(x.reshape(T * B, D).T, da_t, dW_ih)  # (D, H)
    np.dot(states[:n_steps].reshape(n_steps * B, H).T,
           da_step[:n_steps].reshape(n_steps * B, H), dW_hh)  # (H, H)
    np.dot(da_t, np.ascontiguousarray(W_ih.T), dx.reshape(T * B, D))  # (T*B, D)
    db[:] = da_t.sum(axis=0)


@njit(**JIT)
def _rnn_infer(x, lengths, reverse, W_ih, W_hh, bias, h, y, chunk):
    """Inference forward; h (B, H) enters as h0 and leaves as hT."""
    T, B, D = x.shape
    H = W_hh.shape[0]
    n_steps = lengths.max()
    xbuf = np.empty((chunk, B, D), x.dtype)  # (C, B, D)
    xp = np.empty((chunk, B, H), x.dtype)  # (C, B, H)
    hp = np.empty((B, H), x.dtype)  # (B, H)
    for s0 in range(0, n_steps, chunk):
        c = min(chunk, n_steps - s0)
        if reverse:
            _gather_chunk(x, lengths, s0, c, reverse, xbuf)
            xc = xbuf[:c]
        else:
            xc = x[s0:s0 + c]
        np.dot(xc.reshape(c * B, D), W_ih, xp.reshape(chunk * B, H)[:c * B])
        for k in range(c):
            for b in range(B):
                for j in range(H):
                    xp[k, b, j] += bias[j]
        for k in range(c):
            s = s0 + k
            np.dot(h, W_hh, hp)  # (B, H); h is read whole before any row changes
            for b in range(B):
                if s < lengths[b]:
                    rnn_cell_row(xp[k, b], hp[b], h[b])
                    y[_time_of(s, lengths[b], reverse), b] = h[b]


# ---------------------------------------------------------------- validation

def _float_array(name, a, dtype, shape, what=""):
    """a as a C-contiguous array of dtype and shape, or a ValueError naming it."""
    a = np.asarray(a)
    if a.dtype != dtype:
        raise ValueError(f"{name} has dtype {a.dtype}, expected {dtype} (the dtype of x)")
    if a.shape != shape:
        raise ValueError(f"{name} has shape {a.shape}, expected {shape}{what}")
    return np.ascontiguousarray(a)


def _check_common(x, lengths, h0, W_ih, W_hh, n_gates):
    """Validate x, lengths, h0 and the two weight matrices; return them contiguous, plus H."""
    x = np.asarray(x)
    if x.dtype not in (np.float32, np.float64):
        raise ValueError(f"x has dtype {x.dtype}, expected float32 or float64")
    if x.ndim != 3 or min(x.shape) < 1:
        raise ValueError(f"x has shape {x.shape}, expected (T, B, D) with T, B, D >= 1")
    T, B, D = x.shape
    x = np.ascontiguousarray(x)
    W_hh = np.asarray(W_hh)
    if W_hh.ndim != 2 or W_hh.shape[0] < 1:
        raise ValueError(f"W_hh has shape {W_hh.shape}, expected (H, {n_gates}H)")
    H = W_hh.shape[0]
    G = n_gates * H
    what = f" for hidden_size={H} (from W_hh) and input_size={D} (from x)"
    W_hh = _float_array("W_hh", W_hh, x.dtype, (H, G), f" for hidden_size={H}")
    W_ih = _float_array("W_ih", W_ih, x.dtype, (D, G), what)
    if h0 is None:
        h0 = np.zeros((B, H), x.dtype)
    h0 = _float_array("h0", h0, x.dtype, (B, H), f" for batch={B} and hidden_size={H}")
    if lengths is None:
        lengths = np.full(B, T, np.int64)
    else:
        lengths = np.asarray(lengths)
        if lengths.dtype.kind not in "iu":
            raise ValueError(f"lengths has dtype {lengths.dtype}, expected an integer dtype")
        if lengths.shape != (B,):
            raise ValueError(f"lengths has shape {lengths.shape}, expected ({B},) for batch={B}")
        if lengths.min() < 0 or lengths.max() > T:
            raise ValueError(f"lengths must lie in [0, {T}] (T), got min {lengths.min()} max {lengths.max()}")
        lengths = np.ascontiguousarray(lengths, dtype=np.int64)
    return x, lengths, h0, W_ih, W_hh, H


def _check_grads(dy, dhT, cache, H):
    """dy and dhT validated against the cache; None becomes a flag / zeros."""
    T, B, _ = cache.x.shape
    dtype = cache.x.dtype
    if dy is None:
        dy = np.zeros((1, 1, 1), dtype)  # never read
        has_dy = False
    else:
        dy = _float_array("dy", dy, dtype, (T, B, H), " (the shape of y)")
        has_dy = True
    if dhT is None:
        dh = np.zeros((B, H), dtype)
    else:
        dh = _float_array("dhT", dhT, dtype, (B, H), " (the shape of hT)").copy()
    return dy, has_dy, dh


# ---------------------------------------------------------------- public GRU

def gru_forward(x, lengths, h0, W_ih, W_hh, b_ih, b_hh, reverse=False):
    """GRU forward through time, keeping what backward needs (wraps ``_gru_forward``).

    Parameters
    ----------
    x : np.ndarray [shape=(T, B, D), dtype=float32 or float64]
    lengths : np.ndarray [shape=(B,), integer] or None
        Valid steps per row, 0 <= len <= T; None means all T.
    h0 : np.ndarray [shape=(B, H)] or None
        Initial state; None means zeros.
    W_ih : np.ndarray [shape=(D, 3H)]
        Input weights, column blocks r, z, n (torch's weight_ih_l0 transposed).
    W_hh : np.ndarray [shape=(H, 3H)]
    b_ih, b_hh : np.ndarray [shape=(3H,)]
    reverse : bool
        Consume each row from t = len - 1 down to 0.

    Returns
    -------
    y : np.ndarray [shape=(T, B, H)]
        y[t, b] is the state after consuming x[t, b]; 0 at padded steps.
    hT : np.ndarray [shape=(B, H)]
        State after the row's last consumed input (h0 where len is 0).
    cache : GRUCache
    """
    x, lengths, h0, W_ih, W_hh, H = _check_common(x, lengths, h0, W_ih, W_hh, 3)
    b_ih = _float_array("b_ih", b_ih, x.dtype, (3 * H,), f" for hidden_size={H}")
    b_hh = _float_array("b_hh", b_hh, x.dtype, (3 * H,), f" for hidden_size={H}")
    T, B, _ = x.shape
    y = np.zeros((T, B, H), x.dtype)  # (T, B, H)
    states = np.empty((T + 1, B, H), x.dtype)  # (T+1, B, H)
    states[0] = h0
    gates = np.empty((T, B, 3 * H), x.dtype)  # (T, B, 3H)
    hn = np.empty((T, B, H), x.dtype)  # (T, B, H)
    _gru_forward(x, lengths, bool(reverse), W_ih, W_hh, b_ih, b_hh, y, states, gates, hn)
    hT = states[lengths.max()].copy()  # every row has stopped changing by then
    return y, hT, GRUCache(x, lengths, bool(reverse), W_ih, W_hh, states, gates, hn)


def gru_backward(dy, dhT, cache):
    """GRU backward through time (wraps ``_gru_backward``).

    Parameters
    ----------
    dy : np.ndarray [shape=(T, B, H)] or None
        dL/dy; entries at padded steps are ignored.
    dhT : np.ndarray [shape=(B, H)] or None
        dL/dhT.
    cache : GRUCache
        From gru_forward; x and the weights must not have changed since.

    Returns
    -------
    dx : np.ndarray [shape=(T, B, D)]
        0 at padded steps.
    dh0 : np.ndarray [shape=(B, H)]
    grads : dict
        'W_ih' (D, 3H), 'W_hh' (H, 3H), 'b_ih' (3H,), 'b_hh' (3H,).
    """
    x, W_ih, W_hh = cache.x, cache.W_ih, cache.W_hh
    D, H = x.shape[2], W_hh.shape[0]
    dy, has_dy, dh = _check_grads(dy, dhT, cache, H)
    dx = np.empty_like(x)  # (T, B, D)
    grads = {
        "W_ih": np.empty((D, 3 * H), x.dtype),
        "W_hh": np.empty((H, 3 * H), x.dtype),
        "b_ih": np.empty(3 * H, x.dtype),
        "b_hh": np.empty(3 * H, x.dtype),
    }
    _gru_backward(dy, has_dy, dh, cache.lengths, cache.reverse, x, W_ih, W_hh,
                  cache.states, cache.gates, cache.hn,
                  dx, grads["W_ih"], grads["W_hh"], grads["b_ih"], grads["b_hh"])
    return dx, dh, grads


def gru_infer(x, lengths, h0, W_ih, W_hh, b_ih, b_hh, reverse=False):
    """GRU forward without caches, working memory O(B * 3H) (wraps ``_gru_infer``).

    Arguments as gru_forward. Returns y (T, B, H) and hT (B, H).
    """
    x, lengths, h0, W_ih, W_hh, H = _check_common(x, lengths, h0, W_ih, W_hh, 3)
    b_ih = _float_array("b_ih", b_ih, x.dtype, (3 * H,), f" for hidden_size={H}")
    b_hh = _float_array("b_hh", b_hh, x.dtype, (3 * H,), f" for hidden_size={H}")
    y = np.zeros((x.shape[0], x.shape[1], H), x.dtype)  # (T, B, H)
    h = h0.copy()  # (B, H)
    _gru_infer(x, lengths, bool(reverse), W_ih, W_hh, b_ih, b_hh, h, y, INFER_CHUNK)
    return y, h


# ---------------------------------------------------------------- public RNN

def rnn_forward(x, lengths, h0, W_ih, W_hh, b, reverse=False):
    """Plain tanh RNN forward through time (wraps ``_rnn_forward``).

    h' = tanh(x W_ih + h W_hh + b). W_ih (D, H), W_hh (H, H), b (H,); the other
    arguments and the returns (y, hT, cache) as gru_forward.
    """
    x, lengths, h0, W_ih, W_hh, H = _check_common(x, lengths, h0, W_ih, W_hh, 1)
    b = _float_array("b", b, x.dtype, (H,), f" for hidden_size={H}")
    T, B, _ = x.shape
    y = np.zeros((T, B, H), x.dtype)  # (T, B, H)
    states = np.empty((T + 1, B, H), x.dtype)  # (T+1, B, H)
    states[0] = h0
    _rnn_forward(x, lengths, bool(reverse), W_ih, W_hh, b, y, states)
    hT = states[lengths.max()].copy()
    return y, hT, RNNCache(x, lengths, bool(reverse), W_ih, W_hh, states)


def rnn_backward(dy, dhT, cache):
    """Tanh RNN backward through time (wraps ``_rnn_backward``).

    Returns dx (T, B, D), dh0 (B, H) and grads 'W_ih' (D, H), 'W_hh' (H, H), 'b' (H,).
    """
    x, W_ih, W_hh = cache.x, cache.W_ih, cache.W_hh
    T, B, D = x.shape
    H = W_hh.shape[0]
    dy, has_dy, dh = _check_grads(dy, dhT, cache, H)
    da_step = np.zeros((T, B, H), x.dtype)  # (T, B, H)
    # forward, step s reads time s: one array serves both indexings
    da_time = np.zeros((T, B, H), x.dtype) if cache.reverse else da_step
    dx = np.empty_like(x)  # (T, B, D)
    grads = {
        "W_ih": np.empty((D, H), x.dtype),
        "W_hh": np.empty((H, H), x.dtype),
        "b": np.empty(H, x.dtype),
    }
    _rnn_backward(dy, has_dy, dh, cache.lengths, cache.reverse, x, W_ih, W_hh, cache.states,
                  da_step, da_time, dx, grads["W_ih"], grads["W_hh"], grads["b"])
    return dx, dh, grads


def rnn_infer(x, lengths, h0, W_ih, W_hh, b, reverse=False):
    """Tanh RNN forward without caches (wraps ``_rnn_infer``). Returns y (T, B, H), hT (B, H)."""
    x, lengths, h0, W_ih, W_hh, H = _check_common(x, lengths, h0, W_ih, W_hh, 1)
    b = _float_array("b", b, x.dtype, (H,), f" for hidden_size={H}")
    y = np.zeros((x.shape[0], x.shape[1], H), x.dtype)  # (T, B, H)
    h = h0.copy()  # (B, H)
    _rnn_infer(x, lengths, bool(reverse), W_ih, W_hh, b, h, y, INFER_CHUNK)
    return y, h
