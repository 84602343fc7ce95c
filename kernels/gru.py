"""GRU and the plain tanh RNN: forward through time, backward through time, inference.

The GRU (Cho et al. 2014) in torch.nn.GRU's form, gate order r, z, n written
once in ``gru_cell_row``::

    r  = sigmoid(x W_ir + b_ir + h W_hr + b_hr)
    z  = sigmoid(x W_iz + b_iz + h W_hz + b_hz)
    n  = tanh(x W_in + b_in + r * (h W_hn + b_hn))
    h' = (1 - z) * n + z * h

The tanh RNN, the baseline the LSTM is compared against: h' = tanh(x W_ih + h W_hh + b).

Layout of every kernel: one GEMM projects the inputs of all time steps at once;
only the recurrent product h W_hh is a GEMM per step, written by matmul_into (kernels/matmul.py) into a
preallocated buffer; short elementwise loops per batch row do the rest.
Backward walks the steps in reverse with one per-step GEMM (dL/dh_prev), keeps
the pre-activation gradients of every step, and then forms the parameter
gradients and dx with big GEMMs over all steps at once.

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

from suite.kernels._math import sigmoid, tanh
from suite.kernels.config import JIT
from suite.kernels.matmul import matmul_into

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
def _gather_steps(x, lengths, s0, reverse, out):
    """out[k, b] = the row x[t, b] that row b reads at step s0 + k; zeros once it has ended."""
    zero = out.dtype.type(0.0)
    for k in range(out.shape[0]):
        s = s0 + k
        for b in range(x.shape[1]):
            if s < lengths[b]:
                out[k, b] = x[_time_of(s, lengths[b], reverse), b]
            else:
                out[k, b] = zero


@njit(**JIT)
def _scatter_steps(a, lengths, reverse, out):
    """Inverse of _gather_steps: out[t, b] = a[s, b] for the step s that reads time t.

    Entries of out at padded times are left as they are (callers pass zeros).
    """
    for b in range(a.shape[1]):
        for s in range(lengths[b]):
            out[_time_of(s, lengths[b], reverse), b] = a[s, b]


# ---------------------------------------------------------------- GRU kernels

@njit(**JIT)
def _gru_forward(x, lengths, reverse, W_ih, W_hh, b_ih, b_hh, y, states, gates, hn):
    """Training forward; writes y (T, B, H) and the caches states, gates, hn."""
    T, B, _ = x.shape
    xp = _input_projection(x, W_ih, b_ih)  # (T, B, 3H)
    for s in range(lengths.max()):
        matmul_into(states[s], W_hh, gates[s])  # (B, 3H), b_hh is added in the cell
        for b in range(B):
            if s < lengths[b]:
                t = _time_of(s, lengths[b], reverse)
                gru_cell_row(xp[t, b], gates[s, b], b_hh, states[s, b], states[s + 1, b], hn[s, b])
                y[t, b] = states[s + 1, b]
            else:  # finished rows carry their state to the end
                states[s + 1, b] = states[s, b]


@njit(**JIT)
def _gru_backward(dy, has_dy, dh, lengths, reverse, W_hh, states, gates, hn, dhp, dan):
    """Backward through time, all steps; the parameter GEMMs come after, in gru_backward.

    dh (B, H) enters as dL/dh_T and leaves as dL/dh_0. Writes, by step,
    dhp (T, B, 3H) = dL/d(h W_hh + b_hh) and dan (T, B, H) = dL/d(n's
    pre-activation), whose input part x W_in + b_in gets the same gradient.
    The input parts of r and z get the same gradients as their recurrent parts,
    so dL/d(x W_ih + b_ih) is [dhp[..., :2H], dan]. Rows of padded steps are 0.
    """
    B, H = dh.shape
    one = dh.dtype.type(1.0)
    zero = dh.dtype.type(0.0)
    W_hhT = np.ascontiguousarray(W_hh.T)  # (3H, H)
    drec = np.empty((B, H), dh.dtype)  # (B, H)
    for s in range(lengths.max() - 1, -1, -1):
        for b in range(B):
            if s >= lengths[b]:
                # padded step: the state passed through unchanged, so does dh
                dhp[s, b] = zero
                dan[s, b] = zero
                continue
            g = dh[b]  # dL/dh' for this step, accumulated in place
            if has_dy:
                t = _time_of(s, lengths[b], reverse)
                for j in range(H):
                    g[j] += dy[t, b, j]  # the output at t is this step's new state
            h_prev = states[s, b]
            hn_s = hn[s, b]
            act = gates[s, b]
            r, z, n = act[:H], act[H:2 * H], act[2 * H:]
            d = dhp[s, b]
            dar, daz, dhn = d[:H], d[H:2 * H], d[2 * H:]
            da_n = dan[s, b]
            # h' = (1 - z) * n + z * h_prev, n = tanh(a_n), a_n = x W_in + b_in + r * hn.
            # Several short loops, each vectorised by LLVM (see gru_cell_row).
            for j in range(H):  # through h' to n, then through tanh
                da_n[j] = g[j] * (one - z[j]) * (one - n[j] * n[j])
            for j in range(H):  # through h' to z, then through z's sigmoid
                daz[j] = g[j] * (h_prev[j] - n[j]) * z[j] * (one - z[j])
            for j in range(H):
                # a_n is linear in r (factor hn), then r's sigmoid
                dar[j] = da_n[j] * hn_s[j] * r[j] * (one - r[j])
                # and linear in hn (factor r)
                dhn[j] = da_n[j] * r[j]
            for j in range(H):  # the direct path h_prev -> h' through z * h_prev
                g[j] *= z[j]
        # the recurrent path h_prev -> h_prev W_hh -> all three gates
        matmul_into(dhp[s], W_hhT, drec)  # (B, H); rows of padded steps are 0
        dh += drec


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
            _gather_steps(x, lengths, s0, reverse, xbuf[:c])
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
            matmul_into(h, W_hh, hp)  # (B, 3H)
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
        matmul_into(states[s], W_hh, hp)  # (B, H)
        for b in range(B):
            if s < lengths[b]:
                t = _time_of(s, lengths[b], reverse)
                rnn_cell_row(xp[t, b], hp[b], states[s + 1, b])
                y[t, b] = states[s + 1, b]
            else:
                states[s + 1, b] = states[s, b]


@njit(**JIT)
def _rnn_backward(dy, has_dy, dh, lengths, reverse, W_hh, states, da):
    """Backward through time, all steps; the parameter GEMMs come after, in rnn_backward.

    dh (B, H) enters as dL/dh_T and leaves as dL/dh_0. Writes da (T, B, H),
    by step: dL/d(x W_ih + h W_hh + b); 0 at padded steps.
    """
    B, H = dh.shape
    one = dh.dtype.type(1.0)
    zero = dh.dtype.type(0.0)
    W_hhT = np.ascontiguousarray(W_hh.T)  # (H, H)
    drec = np.empty((B, H), dh.dtype)  # (B, H)
    for s in range(lengths.max() - 1, -1, -1):
        for b in range(B):
            if s >= lengths[b]:
                da[s, b] = zero  # padded step: dh passes through unchanged
                continue
            g = dh[b]  # dL/dh' for this step
            if has_dy:
                t = _time_of(s, lengths[b], reverse)
                for j in range(H):
                    g[j] += dy[t, b, j]  # the output at t is this step's new state
            h_new = states[s + 1, b]
            a = da[s, b]
            for j in range(H):
                a[j] = g[j] * (one - h_new[j] * h_new[j])  # backprop through tanh
                g[j] = zero  # h_prev reaches h' only through h_prev W_hh (added below)
        matmul_into(da[s], W_hhT, drec)  # (B, H); rows of padded steps are 0
        dh += drec


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
            _gather_steps(x, lengths, s0, reverse, xbuf[:c])
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
            matmul_into(h, W_hh, hp)  # (B, H); h is read whole before any row changes
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
            raise ValueError(f"lengths must lie in [0, {T}] (T), "
                             f"got min {lengths.min()} max {lengths.max()}")
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


def _by_step(x, lengths, reverse, n_steps):
    """x (T, B, D) reordered by step: [s, b] is what row b reads at step s < n_steps."""
    if not reverse:
        return x[:n_steps]  # step s reads time s
    out = np.empty((n_steps,) + x.shape[1:], x.dtype)  # (S, B, D)
    _gather_steps(x, lengths, 0, reverse, out)
    return out


def _by_time(a, lengths, reverse, T):
    """Inverse of _by_step: a (S, B, D) by step -> (T, B, D) by time, zeros at padding."""
    out = np.zeros((T,) + a.shape[1:], a.dtype)  # (T, B, D)
    if not reverse:
        out[:a.shape[0]] = a  # rows of padded steps are already 0
    else:
        _scatter_steps(a, lengths, reverse, out)
    return out


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
    x, lengths, reverse, W_ih = cache.x, cache.lengths, cache.reverse, cache.W_ih
    T, B, D = x.shape
    H = cache.W_hh.shape[0]
    dy, has_dy, dh = _check_grads(dy, dhT, cache, H)
    dhp = np.empty((T, B, 3 * H), x.dtype)  # (T, B, 3H) by step
    dan = np.empty((T, B, H), x.dtype)  # (T, B, H) by step
    _gru_backward(dy, has_dy, dh, lengths, reverse, cache.W_hh, cache.states, cache.gates,
                  cache.hn, dhp, dan)
    # Parameters: big GEMMs over all steps at once (numpy, so that the r, z
    # column block of dhp is used in place: it is also dL/d(x W_ir), dL/d(x W_iz)).
    S = int(lengths.max())
    dhp = dhp[:S].reshape(S * B, 3 * H)  # (S*B, 3H)
    drz = dhp[:, :2 * H]  # (S*B, 2H)
    dan = dan[:S].reshape(S * B, H)  # (S*B, H)
    xs = _by_step(x, lengths, reverse, S).reshape(S * B, D)  # (S*B, D)
    h_prev = cache.states[:S].reshape(S * B, H)  # (S*B, H) state each step started from
    db_hh = dhp.sum(axis=0)  # (3H,) b_hh is added at every step
    grads = {
        "W_ih": np.concatenate([xs.T @ drz, xs.T @ dan], axis=1),  # (D, 3H)
        "W_hh": h_prev.T @ dhp,  # (H, 3H)
        "b_ih": np.concatenate([db_hh[:2 * H], dan.sum(axis=0)]),  # (3H,)
        "b_hh": db_hh,
    }
    dxs = drz @ W_ih[:, :2 * H].T  # (S*B, D)
    dxs += dan @ W_ih[:, 2 * H:].T
    dx = _by_time(dxs.reshape(S, B, D), lengths, reverse, T)  # (T, B, D)
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
    x, lengths, reverse, W_ih = cache.x, cache.lengths, cache.reverse, cache.W_ih
    T, B, D = x.shape
    H = cache.W_hh.shape[0]
    dy, has_dy, dh = _check_grads(dy, dhT, cache, H)
    da = np.empty((T, B, H), x.dtype)  # (T, B, H) by step
    _rnn_backward(dy, has_dy, dh, lengths, reverse, cache.W_hh, cache.states, da)
    # Parameters: one GEMM each over all steps; da is the gradient of the
    # input part, the recurrent part and the bias alike.
    S = int(lengths.max())
    da = da[:S].reshape(S * B, H)  # (S*B, H)
    xs = _by_step(x, lengths, reverse, S).reshape(S * B, D)  # (S*B, D)
    h_prev = cache.states[:S].reshape(S * B, H)  # (S*B, H)
    grads = {"W_ih": xs.T @ da, "W_hh": h_prev.T @ da, "b": da.sum(axis=0)}
    dx = _by_time((da @ W_ih.T).reshape(S, B, D), lengths, reverse, T)  # (T, B, D)
    return dx, dh, grads


def rnn_infer(x, lengths, h0, W_ih, W_hh, b, reverse=False):
    """Tanh RNN forward without caches (wraps ``_rnn_infer``). Returns y (T, B, H), hT (B, H)."""
    x, lengths, h0, W_ih, W_hh, H = _check_common(x, lengths, h0, W_ih, W_hh, 1)
    b = _float_array("b", b, x.dtype, (H,), f" for hidden_size={H}")
    y = np.zeros((x.shape[0], x.shape[1], H), x.dtype)  # (T, B, H)
    h = h0.copy()  # (B, H)
    _rnn_infer(x, lengths, bool(reverse), W_ih, W_hh, b, h, y, INFER_CHUNK)
    return y, h
