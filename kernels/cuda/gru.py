"""GRU and the plain tanh RNN on the device: the @cuda.jit twins of kernels/gru.py.

Same equations, arguments and results as the CPU kernels (whose docstring has
the GRU in torch.nn.GRU's form, gate order r, z, n, with b_hn inside r's
product), same steps and times: row b reads time t = s at step s, or
t = len[b] - 1 - s with ``reverse``, is active while s < len[b], and y is 0 at
padded times. Inputs may be NumPy or device arrays; results are device arrays.

Layout: one tiled GEMM (kernels/cuda/gemm.py) projects the inputs of all time
steps at once (the bias is added in the cell); per step, one GEMM h W_hh into a
(B, G*H) buffer and one fused elementwise kernel, a thread per (b, j), that
reads its row's own time index from the projection, so reverse rows need no
gather. Everything of a sequence stays on the device; the host only launches.
Backward walks the steps in reverse: a fused kernel per step writes the gate
pre-activation gradients twice, by step (the (B, G*H) block the per-step GEMM
dL/dh_prev and the W_hh gradient need) and by time (zeros at padded times, so
that the W_ih, b_ih and dx GEMMs run over the whole (T*B) sequence as it lies
in x). Inference keeps no per-step caches but still projects all T steps at
once: T * B * 3H of device memory, the size of three y's.
"""
import math
from functools import lru_cache
from typing import NamedTuple

import numpy as np
from numba import float32, float64

from suite.kernels.cuda import blocks, cuda, is_device, simulated, to_device, to_host, zeros
from suite.kernels.cuda.elementwise import copy2d
from suite.kernels.cuda.gemm import gemm
from suite.kernels.cuda.reduce import column_sums

THREADS = 4 if simulated() else 128
"""Threads per block of the elementwise kernels. The simulator runs each thread
as a Python thread (~65 us each), so there small blocks waste few idle threads."""


class GRUCache(NamedTuple):
    """What gru_backward needs from gru_forward: device arrays (x and the weights by reference)."""
    x: object             # (T, B, D)
    lengths: object       # (B,) int64
    n_steps: int          # max(lengths): steps the batch runs
    reverse: bool
    W_ih: object          # (D, 3H)
    W_hh: object          # (H, 3H)
    states: object        # (T+1, B, H) state before step s; states[0] = h0
    gates: object         # (T, B, 3H) r, z, n activations at step s
    hn: object            # (T, B, H) h W_hn + b_hn at step s (n's recurrent part before r)


class RNNCache(NamedTuple):
    """What rnn_backward needs from rnn_forward: device arrays (x and the weights by reference)."""
    x: object             # (T, B, D)
    lengths: object       # (B,) int64
    n_steps: int
    reverse: bool
    W_ih: object          # (D, H)
    W_hh: object          # (H, H)
    states: object        # (T+1, B, H) state before step s; states[s+1] is tanh's output


# ---------------------------------------------------------------- the kernels

class _Kernels(NamedTuple):
    gru_step: object
    gru_back_step: object
    rnn_step: object
    rnn_back_step: object


@lru_cache(maxsize=None)
def _kernels(dtype):
    """The elementwise kernels for one float dtype (constants typed to match: no float64 in float32 code)."""
    nb_type = float32 if dtype == np.float32 else float64

    @cuda.jit(device=True)
    def sigmoid(a):
        one = nb_type(1.0)
        return one / (one + math.exp(-a))

    @cuda.jit
    def gru_step(s, lengths, reverse, xp, b_ih, b_hh, h_prev, h_out, act, hn, y):
        """One step of the GRU, a thread per (b, j).

        xp (T, B, 3H) is x W_ih by time, without b_ih; act (B, 3H) enters as
        h_prev W_hh (no b_hh) and leaves as r, z, n for active rows; hn (B, H)
        gets h W_hn + b_hn. h_out may be h_prev (each thread reads and writes
        only its own element).
        """
        B, H = h_prev.shape
        i = cuda.grid(1)
        if i >= B * H:
            return
        b = i // H
        j = i - b * H
        length = lengths[b]
        if s >= length:  # finished rows carry their state to the end
            h_out[b, j] = h_prev[b, j]
            return
        t = length - 1 - s if reverse else s
        one = nb_type(1.0)
        r = sigmoid(xp[t, b, j] + b_ih[j] + act[b, j] + b_hh[j])
        z = sigmoid(xp[t, b, H + j] + b_ih[H + j] + act[b, H + j] + b_hh[H + j])
        rec = act[b, 2 * H + j] + b_hh[2 * H + j]  # n's recurrent term, before r scales it
        n = math.tanh(xp[t, b, 2 * H + j] + b_ih[2 * H + j] + r * rec)
        h = (one - z) * n + z * h_prev[b, j]
        act[b, j] = r
        act[b, H + j] = z
        act[b, 2 * H + j] = n
        hn[b, j] = rec
        h_out[b, j] = h
        y[t, b, j] = h

    @cuda.jit
    def gru_back_step(s, lengths, reverse, dy, has_dy, dh, h_prev, act, hn, dhp, dgx):
        """Backward through one GRU step, a thread per (b, j); the dL/dh_prev GEMM follows.

        dh (B, H) enters as dL/dh' and leaves with the direct path z * dh' only.
        Writes dhp (B, 3H) = dL/d(h W_hh + b_hh) of this step (0 for finished
        rows) and, at the row's time t, dgx[t, b] (3H) = dL/d(x W_ih + b_ih).
        """
        B, H = dh.shape
        i = cuda.grid(1)
        if i >= B * H:
            return
        b = i // H
        j = i - b * H
        length = lengths[b]
        zero = nb_type(0.0)
        if s >= length:  # padded step: the state passed through unchanged, so does dh
            dhp[b, j] = zero
            dhp[b, H + j] = zero
            dhp[b, 2 * H + j] = zero
            return
        t = length - 1 - s if reverse else s
        one = nb_type(1.0)
        g = dh[b, j]
        if has_dy:
            g += dy[t, b, j]  # the output at t is this step's new state
        r = act[b, j]
        z = act[b, H + j]
        n = act[b, 2 * H + j]
        # h' = (1 - z) * n + z * h_prev, n = tanh(a_n), a_n = x W_in + b_in + r * hn
        da_n = g * (one - z) * (one - n * n)  # through h' to n, then through tanh
        da_z = g * (h_prev[b, j] - n) * z * (one - z)  # through h' to z, then z's sigmoid
        da_r = da_n * hn[b, j] * r * (one - r)  # a_n is linear in r (factor hn)
        dhp[b, j] = da_r
        dhp[b, H + j] = da_z
        dhp[b, 2 * H + j] = da_n * r  # and linear in hn (factor r)
        dgx[t, b, j] = da_r
        dgx[t, b, H + j] = da_z
        dgx[t, b, 2 * H + j] = da_n
        dh[b, j] = g * z  # the direct path h_prev -> h' through z * h_prev

    @cuda.jit
    def rnn_step(s, lengths, reverse, xp, bias, hp, h_prev, h_out, y):
        """One step of the tanh RNN, a thread per (b, j): h' = tanh(xp[t] + bias + hp).

        xp (T, B, H) is x W_ih by time; hp (B, H) is h_prev W_hh; h_out may be h_prev.
        """
        B, H = h_prev.shape
        i = cuda.grid(1)
        if i >= B * H:
            return
        b = i // H
        j = i - b * H
        length = lengths[b]
        if s >= length:
            h_out[b, j] = h_prev[b, j]
            return
        t = length - 1 - s if reverse else s
        h = math.tanh(xp[t, b, j] + bias[j] + hp[b, j])
        h_out[b, j] = h
        y[t, b, j] = h

    @cuda.jit
    def rnn_back_step(s, lengths, reverse, dy, has_dy, dh, h_new, da, dax):
        """Backward through one tanh RNN step, a thread per (b, j); the dL/dh_prev GEMM follows.

        Writes da (B, H) = dL/d(x W_ih + h W_hh + b) of this step (0 for
        finished rows) and the same at the row's time, dax[t, b]. dh leaves as 0
        for active rows: h_prev reaches h' only through h_prev W_hh.
        """
        B, H = dh.shape
        i = cuda.grid(1)
        if i >= B * H:
            return
        b = i // H
        j = i - b * H
        length = lengths[b]
        zero = nb_type(0.0)
        if s >= length:  # padded step: dh passes through unchanged
            da[b, j] = zero
            return
        t = length - 1 - s if reverse else s
        one = nb_type(1.0)
        g = dh[b, j]
        if has_dy:
            g += dy[t, b, j]
        h = h_new[b, j]
        a = g * (one - h * h)  # backprop through tanh
        da[b, j] = a
        dax[t, b, j] = a
        dh[b, j] = zero

    return _Kernels(gru_step, gru_back_step, rnn_step, rnn_back_step)


def _launch(kernel, n, *args):
    """kernel over n threads."""
    kernel[blocks(n, THREADS), THREADS](*args)


def _column_sums(a):
    """Column sums of a 2-D device array, as a new (G,) device array."""
    out = cuda.device_array(a.shape[1], a.dtype)
    _launch(column_sums, a.shape[1], a, out)
    return out


# ---------------------------------------------------------------- validation

def _as_checkable(a):
    return a if is_device(a) else np.asarray(a)


def _float_array(name, a, dtype, shape, what=""):
    """a (NumPy or device) as a device array of dtype and shape, or a ValueError naming it.

    The messages are kernels/gru.py's; device arrays are checked without a copy to the host.
    """
    a = _as_checkable(a)
    if np.dtype(a.dtype) != dtype:
        raise ValueError(f"{name} has dtype {a.dtype}, expected {dtype} (the dtype of x)")
    if tuple(a.shape) != shape:
        raise ValueError(f"{name} has shape {tuple(a.shape)}, expected {shape}{what}")
    return to_device(a)


def _check_common(x, lengths, h0, W_ih, W_hh, n_gates, **biases):
    """Validate x, lengths, h0, the weights and then the biases (name=array, each (n_gates*H,)) as the
    CPU does; return device arrays, max(lengths), H and the biases in the order given."""
    x = _as_checkable(x)
    dtype = np.dtype(x.dtype)
    if dtype not in (np.float32, np.float64):
        raise ValueError(f"x has dtype {x.dtype}, expected float32 or float64")
    if len(x.shape) != 3 or min(x.shape) < 1:
        raise ValueError(f"x has shape {tuple(x.shape)}, expected (T, B, D) with T, B, D >= 1")
    if is_device(x) and not x.is_c_contiguous():
        raise ValueError("x is a non-contiguous device array; pass a C-contiguous one "
                         "(its (T*B, D) view feeds the GEMMs)")
    T, B, D = x.shape
    x = to_device(x)
    W_hh = _as_checkable(W_hh)
    if len(W_hh.shape) != 2 or W_hh.shape[0] < 1:
        raise ValueError(f"W_hh has shape {tuple(W_hh.shape)}, expected (H, {n_gates}H)")
    H = W_hh.shape[0]
    G = n_gates * H
    what = f" for hidden_size={H} (from W_hh) and input_size={D} (from x)"
    W_hh = _float_array("W_hh", W_hh, dtype, (H, G), f" for hidden_size={H}")
    W_ih = _float_array("W_ih", W_ih, dtype, (D, G), what)
    if h0 is None:
        h0 = zeros((B, H), dtype)
    h0 = _float_array("h0", h0, dtype, (B, H), f" for batch={B} and hidden_size={H}")
    if lengths is None:
        lengths = np.full(B, T, np.int64)
    else:
        lengths = np.asarray(to_host(lengths))  # B integers: read on the host for max(lengths)
        if lengths.dtype.kind not in "iu":
            raise ValueError(f"lengths has dtype {lengths.dtype}, expected an integer dtype")
        if lengths.shape != (B,):
            raise ValueError(f"lengths has shape {lengths.shape}, expected ({B},) for batch={B}")
        if lengths.min() < 0 or lengths.max() > T:
            raise ValueError(f"lengths must lie in [0, {T}] (T), "
                             f"got min {lengths.min()} max {lengths.max()}")
    n_steps = int(lengths.max())
    lengths = to_device(np.asarray(lengths, np.int64))
    biases = [_float_array(name, b, dtype, (G,), f" for hidden_size={H}") for name, b in biases.items()]
    return (x, lengths, n_steps, h0, W_ih, W_hh, H, *biases)


def _check_grads(dy, dhT, cache, H):
    """dy and dhT (NumPy, device or None) validated against the cache; dh is a fresh device array."""
    T, B, _ = cache.x.shape
    dtype = np.dtype(cache.x.dtype)
    if dy is None:
        dy = zeros((1, 1, 1), dtype)  # never read
        has_dy = False
    else:
        dy = _float_array("dy", dy, dtype, (T, B, H), " (the shape of y)")
        has_dy = True
    if dhT is None:
        dh = zeros((B, H), dtype)
    else:
        dh = copy2d(_float_array("dhT", dhT, dtype, (B, H), " (the shape of hT)"))
    return dy, has_dy, dh


def _projection(x, W_ih):
    """x W_ih for all T steps in one GEMM: (T, B, D) -> (T, B, G), bias not added."""
    T, B, D = x.shape
    xp = cuda.device_array((T, B, W_ih.shape[1]), x.dtype)  # (T, B, G)
    gemm(x.reshape(T * B, D), W_ih, xp.reshape(T * B, W_ih.shape[1]))
    return xp


# ---------------------------------------------------------------- public GRU

def gru_forward(x, lengths, h0, W_ih, W_hh, b_ih, b_hh, reverse=False):
    """GRU forward through time on the device, keeping what backward needs.

    Arguments as kernels.gru.gru_forward, each a NumPy or a device array
    (lengths: integers, read on the host).

    Returns
    -------
    y : device array [shape=(T, B, H)]
        y[t, b] is the state after consuming x[t, b]; 0 at padded steps.
    hT : device array [shape=(B, H)]
        State after the row's last consumed input (h0 where len is 0).
    cache : GRUCache
    """
    x, lengths, S, h0, W_ih, W_hh, H, b_ih, b_hh = _check_common(x, lengths, h0, W_ih, W_hh, 3,
                                                                 b_ih=b_ih, b_hh=b_hh)
    dtype = np.dtype(x.dtype)
    T, B, _ = x.shape
    k = _kernels(dtype.type)
    reverse = bool(reverse)
    y = zeros((T, B, H), dtype)  # (T, B, H)
    states = cuda.device_array((T + 1, B, H), dtype)  # (T+1, B, H)
    copy2d(h0, states[0])
    gates = cuda.device_array((T, B, 3 * H), dtype)  # (T, B, 3H)
    hn = cuda.device_array((T, B, H), dtype)  # (T, B, H)
    xp = _projection(x, W_ih)  # (T, B, 3H)
    for s in range(S):
        gemm(states[s], W_hh, gates[s])  # (B, 3H), b_hh is added in the cell
        _launch(k.gru_step, B * H, s, lengths, reverse, xp, b_ih, b_hh,
                states[s], states[s + 1], gates[s], hn[s], y)
    hT = copy2d(states[S])  # every row has stopped changing by then
    return y, hT, GRUCache(x, lengths, S, reverse, W_ih, W_hh, states, gates, hn)


def gru_backward(dy, dhT, cache):
    """GRU backward through time on the device.

    dy (T, B, H) and dhT (B, H) as kernels.gru.gru_backward, each NumPy, device
    or None; cache from gru_forward (x and the weights unchanged since).
    Returns dx (T, B, D), dh0 (B, H) and grads 'W_ih' (D, 3H), 'W_hh' (H, 3H),
    'b_ih' (3H,), 'b_hh' (3H,), all device arrays.
    """
    x, lengths, S, reverse = cache.x, cache.lengths, cache.n_steps, cache.reverse
    T, B, D = x.shape
    H = cache.W_hh.shape[0]
    dtype = np.dtype(x.dtype)
    k = _kernels(dtype.type)
    dy, has_dy, dh = _check_grads(dy, dhT, cache, H)
    dhp = cuda.device_array((T, B, 3 * H), dtype)  # (T, B, 3H) by step
    dgx = zeros((T, B, 3 * H), dtype)  # (T, B, 3H) by time, 0 at padded times
    for s in range(S - 1, -1, -1):
        _launch(k.gru_back_step, B * H, s, lengths, reverse, dy, has_dy, dh,
                cache.states[s], cache.gates[s], cache.hn[s], dhp[s], dgx)
        # the recurrent path h_prev -> h_prev W_hh -> all three gates
        gemm(dhp[s], cache.W_hh, dh, trans_b=True, beta=1.0)  # rows of finished rows are 0
    # Parameters and dx: whole-sequence GEMMs.
    dgx2 = dgx.reshape(T * B, 3 * H)  # (T*B, 3H)
    grads = {"W_ih": gemm(x.reshape(T * B, D), dgx2, trans_a=True)}  # (D, 3H)
    if S > 0:
        dhp2 = dhp[:S].reshape(S * B, 3 * H)  # (S*B, 3H)
        h_prev = cache.states[:S].reshape(S * B, H)  # (S*B, H) state each step started from
        grads["W_hh"] = gemm(h_prev, dhp2, trans_a=True)  # (H, 3H)
        db_hh = _column_sums(dhp2)  # (3H,) b_hh is added at every step
    else:
        grads["W_hh"] = zeros((H, 3 * H), dtype)
        db_hh = zeros(3 * H, dtype)
    grads["b_ih"] = _column_sums(dgx2)  # (3H,)
    grads["b_hh"] = db_hh
    dx = gemm(dgx2, cache.W_ih, trans_b=True).reshape(T, B, D)  # (T, B, D), 0 at padded times
    return dx, dh, grads


def gru_infer(x, lengths, h0, W_ih, W_hh, b_ih, b_hh, reverse=False):
    """GRU forward on the device without per-step caches. Arguments as gru_forward; returns y, hT."""
    x, lengths, S, h0, W_ih, W_hh, H, b_ih, b_hh = _check_common(x, lengths, h0, W_ih, W_hh, 3,
                                                                 b_ih=b_ih, b_hh=b_hh)
    dtype = np.dtype(x.dtype)
    T, B, _ = x.shape
    k = _kernels(dtype.type)
    reverse = bool(reverse)
    y = zeros((T, B, H), dtype)  # (T, B, H)
    h = copy2d(h0)  # (B, H) updated in place, step by step
    act = cuda.device_array((B, 3 * H), dtype)  # (B, 3H)
    hn = cuda.device_array((B, H), dtype)  # (B, H) the cell's cache output, unused here
    xp = _projection(x, W_ih)  # (T, B, 3H)
    for s in range(S):
        gemm(h, W_hh, act)  # (B, 3H): h is read whole before the cell changes it
        _launch(k.gru_step, B * H, s, lengths, reverse, xp, b_ih, b_hh, h, h, act, hn, y)
    return y, h


# ---------------------------------------------------------------- public RNN

def rnn_forward(x, lengths, h0, W_ih, W_hh, b, reverse=False):
    """Plain tanh RNN forward through time on the device: h' = tanh(x W_ih + h W_hh + b).

    W_ih (D, H), W_hh (H, H), b (H,); the other arguments and the returns
    (y, hT, cache; device arrays) as gru_forward.
    """
    x, lengths, S, h0, W_ih, W_hh, H, b = _check_common(x, lengths, h0, W_ih, W_hh, 1, b=b)
    dtype = np.dtype(x.dtype)
    T, B, _ = x.shape
    k = _kernels(dtype.type)
    reverse = bool(reverse)
    y = zeros((T, B, H), dtype)  # (T, B, H)
    states = cuda.device_array((T + 1, B, H), dtype)  # (T+1, B, H)
    copy2d(h0, states[0])
    hp = cuda.device_array((B, H), dtype)  # (B, H)
    xp = _projection(x, W_ih)  # (T, B, H)
    for s in range(S):
        gemm(states[s], W_hh, hp)  # (B, H)
        _launch(k.rnn_step, B * H, s, lengths, reverse, xp, b, hp, states[s], states[s + 1], y)
    hT = copy2d(states[S])
    return y, hT, RNNCache(x, lengths, S, reverse, W_ih, W_hh, states)


def rnn_backward(dy, dhT, cache):
    """Tanh RNN backward through time on the device.

    Returns dx (T, B, D), dh0 (B, H) and grads 'W_ih' (D, H), 'W_hh' (H, H),
    'b' (H,), all device arrays; arguments as gru_backward.
    """
    x, lengths, S, reverse = cache.x, cache.lengths, cache.n_steps, cache.reverse
    T, B, D = x.shape
    H = cache.W_hh.shape[0]
    dtype = np.dtype(x.dtype)
    k = _kernels(dtype.type)
    dy, has_dy, dh = _check_grads(dy, dhT, cache, H)
    da = cuda.device_array((T, B, H), dtype)  # (T, B, H) by step
    dax = zeros((T, B, H), dtype)  # (T, B, H) by time, 0 at padded times
    for s in range(S - 1, -1, -1):
        _launch(k.rnn_back_step, B * H, s, lengths, reverse, dy, has_dy, dh,
                cache.states[s + 1], da[s], dax)
        gemm(da[s], cache.W_hh, dh, trans_b=True, beta=1.0)  # rows of finished rows are 0
    # da is the gradient of the input part, the recurrent part and the bias alike.
    dax2 = dax.reshape(T * B, H)  # (T*B, H)
    grads = {"W_ih": gemm(x.reshape(T * B, D), dax2, trans_a=True)}  # (D, H)
    if S > 0:
        h_prev = cache.states[:S].reshape(S * B, H)  # (S*B, H)
        grads["W_hh"] = gemm(h_prev, da[:S].reshape(S * B, H), trans_a=True)  # (H, H)
    else:
        grads["W_hh"] = zeros((H, H), dtype)
    grads["b"] = _column_sums(dax2)  # (H,)
    dx = gemm(dax2, cache.W_ih, trans_b=True).reshape(T, B, D)  # (T, B, D)
    return dx, dh, grads


def rnn_infer(x, lengths, h0, W_ih, W_hh, b, reverse=False):
    """Tanh RNN forward on the device without per-step caches. Returns y (T, B, H), hT (B, H)."""
    x, lengths, S, h0, W_ih, W_hh, H, b = _check_common(x, lengths, h0, W_ih, W_hh, 1, b=b)
    dtype = np.dtype(x.dtype)
    T, B, _ = x.shape
    k = _kernels(dtype.type)
    reverse = bool(reverse)
    y = zeros((T, B, H), dtype)  # (T, B, H)
    h = copy2d(h0)  # (B, H)
    hp = cuda.device_array((B, H), dtype)  # (B, H)
    xp = _projection(x, W_ih)  # (T, B, H)
    for s in range(S):
        gemm(h, W_hh, hp)  # (B, H); h is read whole before any row changes
        _launch(k.rnn_step, B * H, s, lengths, reverse, xp, b, hp, h, h, y)
    return y, h
