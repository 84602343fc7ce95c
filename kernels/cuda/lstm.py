"""The LSTM family through time on the GPU: the @cuda.jit twins of kernels/lstm.py.

Same variants (vanilla, peephole, CIFG, LSTMP and their combinations), same
arguments and same results as the CPU kernels, with the gate equations of
kernels/lstm_cell.py. Inputs may be NumPy or device arrays; results, and the
cache, are device arrays. Weights and states are on the device for the whole
sequence: no host round trip per step.

The GEMMs are shaped as Appleyard et al. 2016 ("Optimizing performance of
recurrent neural networks on GPUs") shape them: the input projection of all
steps is one GEMM; per step, one GEMM r_prev @ W_hh for all rows at once and
one fused elementwise kernel, a thread per (row, unit), that adds the bias,
applies the cell at the row's own time index and writes c, h, the gate
activations and y (LSTMP: then a GEMM h @ W_hr and a kernel that moves r into
the state). Backward mirrors it: per step one fused kernel for the gate
pre-activation gradients dz, stored at the row's time index, and one GEMM
dz @ W_hh^T for the gradient into the previous state; dW_ih, dW_hh, db and dx
are whole-sequence GEMMs (and reductions) after the loop.

Time is indexed per row exactly as on the CPU: reverse=True reads row b from
t = len[b]-1 down to 0, and everything that depends on time (x, y, stored
activations, dz, dx) is stored at the time index. Every call runs all T
steps, as the CPU does; at a padded step s (s >= len[b]) the row's thread
writes zeros at time index s, which lies in the row's padding in both
directions, so the padding of y, dx and every cached array is exactly 0
without a separate zero fill.
"""
import math
from typing import NamedTuple

import numpy as np

from suite.kernels.cuda import blocks, cuda, is_device, to_device, to_host, zeros
from suite.kernels.cuda.elementwise import copy2d
from suite.kernels.cuda.gemm import gemm
from suite.kernels.cuda.reduce import column_sums
from suite.kernels.lstm_cell import n_gates

THREADS = 256
"""Threads per block of the elementwise kernels (fewer when there are fewer
items: the simulator starts a Python thread for every thread of a block)."""

INFER_CHUNK = 32
"""Time steps per input-projection GEMM in lstm_infer: working memory stays
O(INFER_CHUNK * B * G * H) whatever T is, as on the CPU."""


class LSTMCache(NamedTuple):
    """What lstm_backward needs from lstm_forward: device arrays. Opaque to callers.

    Holds x and the weights as they were passed (device arrays are not
    copied): change them in place only after lstm_backward.
    """

    x: object          # (T, B, D)
    lengths: object    # (B,) int64
    W_ih: object       # (D, G*H)
    W_hh: object       # (R, G*H)
    peep: object       # (3, H), or a (1, 1) placeholder when unused
    W_hr: object       # (H, P), or a (1, 1) placeholder when unused
    gates: object      # (T, B, G*H) gate activations at each time index, 0 at padding
    cs: object         # (T+1, B, H) cell states, slots as in kernels/lstm.py's _forward_train
    r_prev: object     # (T, B, R) recurrent state read at each time index
    h_pre: object      # (T, B, H) pre-projection h (LSTMP), or a (1, 1, 1) placeholder
    use_peep: bool
    cifg: bool
    use_proj: bool
    reverse: bool


def _grid(n):
    """(blocks, threads) for a kernel with one thread per item of n."""
    threads = min(THREADS, max(n, 1))
    return blocks(n, threads), threads


# ----------------------------------------------------------------------------
# device functions and kernels


@cuda.jit(device=True)
def _sigmoid(x, one):
    return one / (one + math.exp(-x))


@cuda.jit(device=True)
def _cell(z, j, H, c_prev, peep, use_peep, cifg):
    """Unit j of lstm_cell_row: overwrites its gate pre-activations in z (one
    row, (G*H,)) with the activations; returns (c, h)."""
    one = z.dtype.type(1.0)  # a Python float literal would widen float32 math to float64
    if cifg:
        zi = z[j]
        if use_peep:
            zi += peep[0, j] * c_prev
        i = _sigmoid(zi, one)
        g = math.tanh(z[H + j])
        c = (one - i) * c_prev + i * g
        zo = z[2 * H + j]
        if use_peep:
            zo += peep[2, j] * c
        o = _sigmoid(zo, one)
        z[j] = i
        z[H + j] = g
        z[2 * H + j] = o
    else:
        zi = z[j]
        zf = z[H + j]
        if use_peep:
            zi += peep[0, j] * c_prev
            zf += peep[1, j] * c_prev
        i = _sigmoid(zi, one)
        f = _sigmoid(zf, one)
        g = math.tanh(z[2 * H + j])
        c = f * c_prev + i * g
        zo = z[3 * H + j]
        if use_peep:
            zo += peep[2, j] * c
        o = _sigmoid(zo, one)
        z[j] = i
        z[H + j] = f
        z[2 * H + j] = g
        z[3 * H + j] = o
    return c, o * math.tanh(c)


@cuda.jit
def _put_c0(c0, lengths, reverse, cs):
    """c0 into the slot before each row's first step: 0 forward, len[b] reverse."""
    i = cuda.grid(1)
    H = c0.shape[1]
    if i < c0.shape[0] * H:
        bi = i // H
        j = i - bi * H
        cs[lengths[bi] if reverse else 0, bi, j] = c0[bi, j]


@cuda.jit
def _take_cT(cs, lengths, reverse, cT):
    """The slot after each row's last step (len[b] forward, 0 reverse; c0 for len 0)."""
    i = cuda.grid(1)
    H = cT.shape[1]
    if i < cT.shape[0] * H:
        bi = i // H
        j = i - bi * H
        cT[bi, j] = cs[0 if reverse else lengths[bi], bi, j]


@cuda.jit
def _step_train(s, lengths, reverse, cifg, use_peep, use_proj, gates, rec, bias, peep,
                r, cs, r_prev, h_pre, h_step, y):
    """Step s of the training forward for unit (row, j).

    gates holds x @ W_ih at every time index on entry; at the row's time index
    it becomes the activations. The state r is the new h unless LSTMP, where
    h goes to h_step for the projection GEMM and _step_project updates r.
    """
    i = cuda.grid(1)
    B = lengths.shape[0]
    H = cs.shape[2]
    R = r.shape[1]
    if i >= B * H:
        return
    bi = i // H
    j = i - bi * H
    G = 3 if cifg else 4
    n = lengths[bi]
    if s >= n:
        # padded step: zero the row's slot s (padding in both directions)
        for q in range(G):
            gates[s, bi, q * H + j] = 0
        cs[s + 1, bi, j] = 0
        if use_proj:
            h_pre[s, bi, j] = 0
            for k in range(j, R, H):
                r_prev[s, bi, k] = 0
        else:
            r_prev[s, bi, j] = 0
            y[s, bi, j] = 0
        return
    t = n - 1 - s if reverse else s
    rev = 1 if reverse else 0
    z = gates[t, bi]
    for q in range(G):
        k = q * H + j
        z[k] = (z[k] + bias[k]) + rec[bi, k]  # the CPU's order: (x @ W_ih + b) + r @ W_hh
    c, h = _cell(z, j, H, cs[t + rev, bi, j], peep, use_peep, cifg)
    cs[t + 1 - rev, bi, j] = c
    if use_proj:
        h_pre[t, bi, j] = h
        h_step[bi, j] = h
        for k in range(j, R, H):  # R = P may exceed H; r is not written in this kernel
            r_prev[t, bi, k] = r[bi, k]
    else:
        r_prev[t, bi, j] = r[bi, j]  # read before the thread's own write: no other thread touches (bi, j)
        r[bi, j] = h
        y[t, bi, j] = h


@cuda.jit
def _step_infer(s, k0, lengths, reverse, cifg, use_peep, use_proj, zx, rec, bias, peep,
                r, c, h_step, y):
    """Step s of inference for unit (row, j); zx holds x @ W_ih by step, rows
    (s - k0) * B + b, so a chunk of steps is one GEMM in either direction."""
    i = cuda.grid(1)
    B = lengths.shape[0]
    H = c.shape[1]
    if i >= B * H:
        return
    bi = i // H
    j = i - bi * H
    G = 3 if cifg else 4
    n = lengths[bi]
    if s >= n:
        if not use_proj:
            y[s, bi, j] = 0
        return  # state frozen
    t = n - 1 - s if reverse else s
    z = zx[(s - k0) * B + bi]
    for q in range(G):
        k = q * H + j
        z[k] = (z[k] + bias[k]) + rec[bi, k]
    c_new, h = _cell(z, j, H, c[bi, j], peep, use_peep, cifg)
    c[bi, j] = c_new
    if use_proj:
        h_step[bi, j] = h
    else:
        r[bi, j] = h
        y[t, bi, j] = h


@cuda.jit
def _step_project(s, lengths, reverse, r_step, r, y):
    """LSTMP: r = h @ W_hr (r_step, all rows) into the state and y of the rows still running."""
    i = cuda.grid(1)
    P = r.shape[1]
    if i >= lengths.shape[0] * P:
        return
    bi = i // P
    k = i - bi * P
    n = lengths[bi]
    if s >= n:
        y[s, bi, k] = 0
        return
    v = r_step[bi, k]
    r[bi, k] = v
    y[n - 1 - s if reverse else s, bi, k] = v


@cuda.jit
def _gather_steps(x, lengths, s0, m, xg):
    """reverse inference: xg[k*B + b] = x[len[b]-1-(s0+k), b] (zero past the row's start)."""
    i = cuda.grid(1)
    B = x.shape[1]
    D = x.shape[2]
    if i >= m * B * D:
        return
    k = i // (B * D)
    bi = (i // D) % B
    d = i % D
    t = lengths[bi] - 1 - (s0 + k)
    xg[k * B + bi, d] = x[t, bi, d] if t >= 0 else 0


@cuda.jit
def _step_project_backward(s, lengths, reverse, dy, dhT, dr_rec, dr_step, dR):
    """LSTMP backward: the gradient w.r.t. r = h @ W_hr (the output's plus the
    next step's), by row for the GEMM and by time index for dW_hr."""
    i = cuda.grid(1)
    P = dr_step.shape[1]
    if i >= lengths.shape[0] * P:
        return
    bi = i // P
    k = i - bi * P
    n = lengths[bi]
    if s >= n:
        dr_step[bi, k] = 0
        dR[s, bi, k] = 0
        return
    t = n - 1 - s if reverse else s
    # the row's first step back reads dhT; later ones the previous step's GEMM
    v = dy[t, bi, k] + (dhT[bi, k] if s == n - 1 else dr_rec[bi, k])
    dr_step[bi, k] = v
    dR[t, bi, k] = v


@cuda.jit
def _step_backward(s, lengths, reverse, cifg, use_peep, use_proj, dy, dhT, dr_rec, dh_step,
                   dc, gates, cs, peep, dG, dz_step):
    """Backprop unit (row, j) through step s: _cell_backward_row of kernels/lstm.py.

    Writes dz at the row's time index (dG, for the weight gradients) and by row
    (dz_step, for the GEMM into the previous state; 0 for padded rows), and
    replaces dc with the gradient w.r.t. the cell state before the step.
    """
    i = cuda.grid(1)
    B = lengths.shape[0]
    H = dc.shape[1]
    if i >= B * H:
        return
    bi = i // H
    j = i - bi * H
    G = 3 if cifg else 4
    n = lengths[bi]
    if s >= n:
        for q in range(G):
            dG[s, bi, q * H + j] = 0
            dz_step[bi, q * H + j] = 0
        return                                     # padded: dc passes through untouched
    t = n - 1 - s if reverse else s
    rev = 1 if reverse else 0
    one = dc.dtype.type(1.0)
    if use_proj:
        dh = dh_step[bi, j]
    else:
        # the output and the next step both read h; the row's first step back takes dhT
        dh = (dhT[bi, j] if s == n - 1 else dr_rec[bi, j]) + dy[t, bi, j]
    a = gates[t, bi]
    c_prev = cs[t + rev, bi, j]
    c = cs[t + 1 - rev, bi, j]
    o = a[(G - 1) * H + j]
    tc = math.tanh(c)                              # cheaper to recompute than to store
    do_pre = dh * tc * o * (one - o)               # through h = o * tanh(c), then sigmoid
    dcj = dc[bi, j] + dh * o * (one - tc * tc)     # through tanh(c), plus the future's dc
    if use_peep:
        dcj += peep[2, j] * do_pre                 # o peeked at c_t
    dz = dG[t, bi]
    if cifg:
        ig = a[j]
        g = a[H + j]
        df = dcj * c_prev                          # c = f * c_prev + i * g with f = 1 - i ...
        di_pre = (dcj * g - df) * ig * (one - ig)  # ... so i also gets -df through f
        dg_pre = dcj * ig * (one - g * g)
        dcp = dcj * (one - ig)                     # the forget path
        if use_peep:
            dcp += peep[0, j] * di_pre             # i peeked at c_prev
        dz[j] = di_pre
        dz[H + j] = dg_pre
    else:
        ig = a[j]
        f = a[H + j]
        g = a[2 * H + j]
        di_pre = dcj * g * ig * (one - ig)
        df_pre = dcj * c_prev * f * (one - f)
        dg_pre = dcj * ig * (one - g * g)
        dcp = dcj * f                              # the forget path
        if use_peep:
            dcp += peep[0, j] * di_pre + peep[1, j] * df_pre  # i and f peeked at c_prev
        dz[j] = di_pre
        dz[H + j] = df_pre
        dz[2 * H + j] = dg_pre
    dz[(G - 1) * H + j] = do_pre
    dc[bi, j] = dcp
    for q in range(G):
        dz_step[bi, q * H + j] = dz[q * H + j]


@cuda.jit
def _first_dh(lengths, dhT, dr_rec, dh0):
    """dh0: the last GEMM's gradient for rows that ran, dhT for rows of length 0."""
    i = cuda.grid(1)
    R = dh0.shape[1]
    if i < lengths.shape[0] * R:
        bi = i // R
        k = i - bi * R
        dh0[bi, k] = dr_rec[bi, k] if lengths[bi] > 0 else dhT[bi, k]


@cuda.jit
def _peep_grad(reverse, cifg, dG, cs, dpeep):
    """dpeep, a thread per (gate, unit): i and f peeked at c_prev (slot t + rev),
    o at c_t (slot t + 1 - rev). dG is 0 at padded steps, so they add nothing."""
    i = cuda.grid(1)
    H = dpeep.shape[1]
    if i >= 3 * H:
        return
    q = i // H
    j = i - q * H
    acc = dpeep.dtype.type(0.0)
    if q == 1 and cifg:
        dpeep[q, j] = acc                          # CIFG has no forget gate
        return
    rev = 1 if reverse else 0
    if q == 2:
        col = (2 if cifg else 3) * H + j
        shift = 1 - rev
    else:
        col = q * H + j
        shift = rev
    for t in range(dG.shape[0]):
        for bi in range(dG.shape[1]):
            acc += dG[t, bi, col] * cs[t + shift, bi, j]
    dpeep[q, j] = acc


# ----------------------------------------------------------------------------
# validation


def _check_float(name, a, dtype, shape):
    """a on the device (NumPy copied, device arrays as they are), or ValueError."""
    if not is_device(a):
        a = np.asarray(a)
    if np.dtype(a.dtype) != dtype:
        raise ValueError(f"{name} has dtype {a.dtype}, expected {dtype} (the dtype of x); "
                         "all float arrays of one call must share one dtype")
    if tuple(a.shape) != shape:
        raise ValueError(f"{name} has shape {tuple(a.shape)}, expected {shape}")
    return to_device(a)


def _fresh(a, shape, dtype):
    """A new device array holding a (zeros when None), ours to write."""
    if a is None:
        return zeros(shape, dtype)
    out = cuda.device_array(shape, dtype)
    return copy2d(a, out)


def _placeholder(dtype, ndim=2):
    """A stand-in for an optional array the kernels will not read."""
    return cuda.device_array((1,) * ndim, dtype)


def _validate(x, lengths, h0, c0, W_ih, W_hh, b, peep, W_hr, cifg):
    """kernels/lstm.py's _validate for NumPy or device arrays: the same checks
    and messages; returns device arrays (h0, c0 as given: None or checked) and
    the sizes."""
    if not is_device(x):
        x = np.asarray(x)
    if len(x.shape) != 3:
        raise ValueError(f"x has shape {tuple(x.shape)}, expected (T, B, D)")
    dtype = np.dtype(x.dtype)
    if dtype not in (np.float32, np.float64):
        raise ValueError(f"x has dtype {x.dtype}, expected float32 or float64")
    T, B, D = x.shape
    if D == 0:
        raise ValueError(f"x has shape {tuple(x.shape)}: input size D must be positive")
    if is_device(x) and not x.is_c_contiguous():
        raise ValueError("x is a non-contiguous device array; pass a C-contiguous one")
    G = n_gates(cifg)
    W_shape = tuple(getattr(W_ih, "shape", np.shape(W_ih)))
    if len(W_shape) != 2 or W_shape[0] != D or W_shape[1] == 0 or W_shape[1] % G:
        raise ValueError(f"W_ih has shape {W_shape}, expected ({D}, {G}*H) for input size "
                         f"{D} and {G} gates (cifg={cifg})")
    H = W_shape[1] // G
    W_ih = _check_float("W_ih", W_ih, dtype, (D, G * H))
    if W_hr is not None:
        hr_shape = tuple(getattr(W_hr, "shape", np.shape(W_hr)))
        if len(hr_shape) != 2 or hr_shape[0] != H or hr_shape[1] == 0:
            raise ValueError(f"W_hr has shape {hr_shape}, expected ({H}, P) for hidden_size={H}")
        W_hr = _check_float("W_hr", W_hr, dtype, hr_shape)
    R = W_hr.shape[1] if W_hr is not None else H
    W_hh = _check_float("W_hh", W_hh, dtype, (R, G * H))
    b = _check_float("b", b, dtype, (G * H,))
    if peep is not None:
        peep = _check_float("peep", peep, dtype, (3, H))
    if h0 is not None:
        h0 = _check_float("h0", h0, dtype, (B, R))
    if c0 is not None:
        c0 = _check_float("c0", c0, dtype, (B, H))
    if lengths is None:
        lengths = np.full(B, T, dtype=np.int64)
    else:
        lengths = np.asarray(to_host(lengths))  # B integers: the host copy is cheap
        if lengths.shape != (B,) or not (lengths.dtype.kind in "iu" or lengths.size == 0):
            raise ValueError(f"lengths has shape {lengths.shape} and dtype {lengths.dtype}, "
                             f"expected ({B},) integers")
        if lengths.size and (lengths.min() < 0 or lengths.max() > T):
            raise ValueError(f"lengths must lie in [0, T={T}], got min {lengths.min()} "
                             f"and max {lengths.max()}")
    lengths = to_device(np.ascontiguousarray(lengths, dtype=np.int64))
    return to_device(x), lengths, h0, c0, W_ih, W_hh, b, peep, W_hr, (T, B, D, H, R)


def _grad_in(name, a, dtype, shape):
    """An incoming gradient on the device (zeros when None)."""
    return zeros(shape, dtype) if a is None else _check_float(name, a, dtype, shape)


# ----------------------------------------------------------------------------
# public wrappers


def lstm_forward(x, lengths, h0, c0, W_ih, W_hh, b, peep=None, W_hr=None, cifg=False,
                 reverse=False):
    """LSTM layer forward for training on the device: the twin of kernels/lstm.py's lstm_forward.

    Parameters
    ----------
    x : np.ndarray or device array [shape=(T, B, D), dtype=float32 or float64]
        A device array must be C-contiguous.
    lengths : np.ndarray or device array [shape=(B,), int] or None
        Valid steps per row, 0 <= len <= T; None means all T.
    h0 : [shape=(B, R)] or None (zeros)
    c0 : [shape=(B, H)] or None (zeros)
    W_ih : [shape=(D, G*H)]
        Input weights, gate blocks i, f, g, o (i, g, o for CIFG).
    W_hh : [shape=(R, G*H)]
    b : [shape=(G*H,)]
    peep : [shape=(3, H)] or None
        Peephole weights, rows i, f, o (row f unused for CIFG).
    W_hr : [shape=(H, P)] or None
        LSTMP projection: the recurrent state and output are r = h @ W_hr, R = P.
    cifg : bool
        Coupled input-forget gate (G = 3) instead of G = 4.
    reverse : bool
        Read each row from t = len[b]-1 down to 0.

    Returns
    -------
    y : device array [shape=(T, B, R)]
        State after consuming x[t, b]; zero at padded steps.
    hT : device array [shape=(B, R)]
    cT : device array [shape=(B, H)]
        Final states; the initial states for rows with len = 0.
    cache : LSTMCache
    """
    x, lengths, h0, c0, W_ih, W_hh, b, peep, W_hr, (T, B, D, H, R) = _validate(
        x, lengths, h0, c0, W_ih, W_hh, b, peep, W_hr, cifg)
    dtype = np.dtype(x.dtype)
    use_peep, use_proj, cifg, reverse = peep is not None, W_hr is not None, bool(cifg), bool(reverse)
    peep_k = peep if use_peep else _placeholder(dtype)
    W_hr_k = W_hr if use_proj else _placeholder(dtype)
    GH = W_ih.shape[1]
    r = _fresh(h0, (B, R), dtype)                  # (B, R) the recurrent state of every row
    gates = cuda.device_array((T, B, GH), dtype)   # (T, B, G*H) x @ W_ih, then the activations
    cs = cuda.device_array((T + 1, B, H), dtype)   # (T+1, B, H) every slot written, see the docstring
    r_prev = cuda.device_array((T, B, R), dtype)   # (T, B, R)
    h_pre = cuda.device_array((T, B, H), dtype) if use_proj else _placeholder(dtype, 3)
    y = cuda.device_array((T, B, R), dtype)        # (T, B, R)
    cache = LSTMCache(x, lengths, W_ih, W_hh, peep_k, W_hr_k, gates, cs, r_prev, h_pre,
                      use_peep, cifg, use_proj, reverse)
    if T == 0 or B == 0:
        return zeros((T, B, R), dtype), r, _fresh(c0, (B, H), dtype), cache
    c0 = c0 if c0 is not None else zeros((B, H), dtype)
    _put_c0[_grid(B * H)](c0, lengths, reverse, cs)
    gemm(x.reshape(T * B, D), W_ih, gates.reshape(T * B, GH))  # all steps' input projection at once
    rec = cuda.device_array((B, GH), dtype)        # (B, G*H) r @ W_hh of one step
    h_step = zeros((B, H), dtype) if use_proj else _placeholder(dtype)  # (B, H) h of one step
    r_step = cuda.device_array((B, R), dtype)      # (B, P) LSTMP: h_step @ W_hr
    for s in range(T):
        gemm(r, W_hh, rec)                         # all rows at once; padded rows' results unused
        _step_train[_grid(B * H)](s, lengths, reverse, cifg, use_peep, use_proj, gates, rec, b,
                                  peep_k, r, cs, r_prev, h_pre, h_step, y)
        if use_proj:
            gemm(h_step, W_hr, r_step)
            _step_project[_grid(B * R)](s, lengths, reverse, r_step, r, y)
    cT = cuda.device_array((B, H), dtype)
    _take_cT[_grid(B * H)](cs, lengths, reverse, cT)
    return y, r, cT, cache


def lstm_backward(dy, dhT, dcT, cache):
    """Backprop through time for lstm_forward on the device: the twin of kernels/lstm.py's lstm_backward.

    Parameters
    ----------
    dy : np.ndarray or device array [shape=(T, B, R)] or None
        Gradient w.r.t. y (ignored at padded steps).
    dhT : [shape=(B, R)] or None
    dcT : [shape=(B, H)] or None
    cache : LSTMCache
        From the lstm_forward call (of this module) being differentiated.

    Returns
    -------
    dx : device array [shape=(T, B, D)]
        Zero at padded steps.
    dh0 : device array [shape=(B, R)]
    dc0 : device array [shape=(B, H)]
    grads : dict of device arrays
        'W_ih', 'W_hh', 'b', and 'peep' / 'W_hr' when the forward used them.
    """
    if not isinstance(cache, LSTMCache):
        raise ValueError("cache must be the LSTMCache from suite.kernels.cuda.lstm.lstm_forward, "
                         f"got {type(cache).__module__}.{type(cache).__name__}")
    x, lengths, W_ih, W_hh = cache.x, cache.lengths, cache.W_ih, cache.W_hh
    dtype = np.dtype(x.dtype)
    T, B, D = x.shape
    H = cache.cs.shape[2]
    R, GH = W_hh.shape
    dy = _grad_in("dy", dy, dtype, (T, B, R))
    dhT = _grad_in("dhT", dhT, dtype, (B, R))
    if dcT is not None:
        dcT = _check_float("dcT", dcT, dtype, (B, H))
    dc = _fresh(dcT, (B, H), dtype)                # (B, H) d loss / d c, carried back; returned as dc0
    dG = cuda.device_array((T, B, GH), dtype)      # (T, B, G*H) d loss / d gate pre-activations
    dR = cuda.device_array((T, B, R) if cache.use_proj else (1, 1, 1), dtype)  # (T, B, P) LSTMP: dr by time
    dr_rec = cuda.device_array((B, R), dtype)      # (B, R) dz_step @ W_hh^T: d loss / d r_prev
    dz_step = cuda.device_array((B, GH), dtype)    # (B, G*H) one step's dz by row
    dr_step = cuda.device_array((B, R), dtype)     # (B, P) LSTMP: d loss / d r of one step
    dh_step = cuda.device_array((B, H), dtype) if cache.use_proj else _placeholder(dtype)
    for s in range(T - 1, -1, -1):
        if cache.use_proj:
            _step_project_backward[_grid(B * R)](s, lengths, cache.reverse, dy, dhT, dr_rec,
                                                 dr_step, dR)
            gemm(dr_step, cache.W_hr, dh_step, trans_b=True)  # backprop through the projection
        _step_backward[_grid(B * H)](s, lengths, cache.reverse, cache.cifg, cache.use_peep,
                                     cache.use_proj, dy, dhT, dr_rec, dh_step, dc, cache.gates,
                                     cache.cs, cache.peep, dG, dz_step)
        gemm(dz_step, W_hh, dr_rec, trans_b=True)  # backprop through z = r_prev @ W_hh
    dh0 = cuda.device_array((B, R), dtype)
    if dh0.size:
        _first_dh[_grid(B * R)](lengths, dhT, dr_rec, dh0)
    # the weight gradients of all steps at once, now that dG is complete
    dG2 = dG.reshape(T * B, GH)                    # (T*B, G*H); 0 at padded steps
    grads = {"W_ih": gemm(x.reshape(T * B, D), dG2, trans_a=True),            # (D, G*H)
             "W_hh": gemm(cache.r_prev.reshape(T * B, R), dG2, trans_a=True),  # (R, G*H)
             "b": cuda.device_array(GH, dtype)}
    dx = cuda.device_array((T, B, D), dtype)
    gemm(dG2, W_ih, dx.reshape(T * B, D), trans_b=True)  # (T*B, D)
    column_sums[_grid(GH)](dG2, grads["b"])
    if cache.use_peep:
        grads["peep"] = cuda.device_array((3, H), dtype)
        _peep_grad[_grid(3 * H)](cache.reverse, cache.cifg, dG, cache.cs, grads["peep"])
    if cache.use_proj:
        grads["W_hr"] = gemm(cache.h_pre.reshape(T * B, H), dR.reshape(T * B, R), trans_a=True)  # (H, P)
    return dx, dh0, dc, grads


def lstm_infer(x, lengths, h0, c0, W_ih, W_hh, b, peep=None, W_hr=None, cifg=False,
               reverse=False):
    """LSTM layer forward without a cache on the device: the twin of kernels/lstm.py's lstm_infer.

    Same arguments and first three results as lstm_forward. Working memory
    beyond x and y is O(INFER_CHUNK * B * G * H + weights): the input
    projection is one GEMM per INFER_CHUNK steps (reverse: of x gathered by
    step), the cell state one (B, H) buffer.

    Returns
    -------
    y : device array [shape=(T, B, R)]
    hT : device array [shape=(B, R)]
    cT : device array [shape=(B, H)]
    """
    x, lengths, h0, c0, W_ih, W_hh, b, peep, W_hr, (T, B, D, H, R) = _validate(
        x, lengths, h0, c0, W_ih, W_hh, b, peep, W_hr, cifg)
    dtype = np.dtype(x.dtype)
    use_peep, use_proj, cifg, reverse = peep is not None, W_hr is not None, bool(cifg), bool(reverse)
    r = _fresh(h0, (B, R), dtype)                  # (B, R) recurrent state
    c = _fresh(c0, (B, H), dtype)                  # (B, H) cell state, updated in place
    if T == 0 or B == 0:
        return zeros((T, B, R), dtype), r, c
    peep_k = peep if use_peep else _placeholder(dtype)
    GH = W_ih.shape[1]
    chunk = min(INFER_CHUNK, T)
    y = cuda.device_array((T, B, R), dtype)        # (T, B, R) every slot written
    zx = cuda.device_array((chunk * B, GH), dtype)  # (chunk*B, G*H) x @ W_ih of a chunk, by step
    xg = cuda.device_array((chunk * B, D) if reverse else (1, 1), dtype)  # (chunk*B, D) x by step
    x2 = x.reshape(T * B, D)                       # (T*B, D)
    rec = cuda.device_array((B, GH), dtype)        # (B, G*H) r @ W_hh of one step
    h_step = zeros((B, H), dtype) if use_proj else _placeholder(dtype)
    r_step = cuda.device_array((B, R), dtype)
    for s0 in range(0, T, chunk):
        m = min(chunk, T - s0)
        if reverse:
            # rows sit at different time indices at one step: gather them
            _gather_steps[_grid(m * B * D)](x, lengths, s0, m, xg)
            gemm(xg[:m * B], W_ih, zx[:m * B])
        else:
            gemm(x2[s0 * B:(s0 + m) * B], W_ih, zx[:m * B])
        for s in range(s0, s0 + m):
            gemm(r, W_hh, rec)
            _step_infer[_grid(B * H)](s, s0, lengths, reverse, cifg, use_peep, use_proj, zx, rec,
                                      b, peep_k, r, c, h_step, y)
            if use_proj:
                gemm(h_step, W_hr, r_step)
                _step_project[_grid(B * R)](s, lengths, reverse, r_step, r, y)
    return y, r, c
