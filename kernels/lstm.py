"""The LSTM family through time: training forward, backward (BPTT), inference.

One set of kernels serves every variant of kernels/lstm_cell.py: vanilla,
peephole, CIFG, and LSTMP (recurrent projection r = h @ W_hr, Sak et al. 2014).
The recurrent state fed to the next step and returned as output is r (width
R = P) for LSTMP and h (R = H) otherwise.

The GEMMs are shaped as Appleyard et al. 2016 and thinc do: the input
projection of many steps is one GEMM, only the recurrent GEMM h @ W_hh runs
per step (all batch rows at once, into a preallocated buffer), and the gate
nonlinearities are one fused elementwise pass per row.

Sequences are time-major and padded at the end: row b is valid for t < len[b].
reverse=True reads each row from t = len[b]-1 down to 0 (torch's packed
bidirectional reverse direction), so at one step different rows sit at
different time indices; the kernels index time per row, never flip x.
Everything that depends on time (x, y, stored activations, dx) is stored at
the time index, so padding stays at the end in both directions.
"""
from typing import NamedTuple

import numpy as np
from numba import njit

from suite.kernels._math import tanh
from suite.kernels.config import JIT
from suite.kernels.halves import blas_threads as _blas_threads
from suite.kernels.halves import by_halves as _by_halves
from suite.kernels.halves import halves as _batch_halves
from suite.kernels.lstm_cell import lstm_cell_row, n_gates
from suite.kernels.matmul import SMALL_ROWS
from suite.kernels.matmul import matmul_into as _matmul_into
from suite.kernels.scratch import pieces
from suite.kernels.simd import LANES, gemm_cols

INFER_CHUNK = 32
INFER_ROWS = 256
"""lstm_infer's input projection is one GEMM per chunk of steps: at least
INFER_CHUNK steps and INFER_ROWS rows (steps x batch), so that OpenBLAS's
packing of W_ih, once per call, is spread over enough rows; working memory
stays O(rows * G * H) whatever T is. At B=1, H=192, T=667 (the speech
model's layers, one thread, AVX2 EPYC, 2026-12-07): 12.8 ms a direction with
D=384 at 256 rows against 15.5 ms at 32, and 8.5-9.5 against 9.7 ms with
D=120."""


WIDE_BATCH = 16
WIDE_STEPS = 16
"""lstm_infer runs the batch-minor kernel (_infer_wide) from WIDE_BATCH rows
and WIDE_STEPS steps on. Below, its faster GEMM does not pay for transposing
the weights once per call (~0.35 ms at H=256; measured break-even T ~ 12)."""


SPLIT_BATCH = 32
"""From this many rows (where BLAS may use two or more threads), lstm_forward
and lstm_backward (training) run the two halves of the batch side by side, one
thread each with BLAS on one thread meanwhile. The rows of an LSTM are
independent through time, so each half is a whole layer call on its own
contiguous copy (views of the batch would leave the compiled gate loops unable
to assume unit strides: measured 40 against 28 ms a half); the per-step GEMM
and gate loop, which one BLAS call cannot spread over two cores, then use both.
The halves' weight gradients are summed. lstm_infer runs halves too (since
2026-12-07 night): on the AVX-512 EPYC its batch-minor kernel was no faster by
halves (B=64, 2 layers: 1.23-1.31 x torch against 1.22 whole, 2026-12-06), on
the AVX2 EPYC bench/bench_lstm.py's two-layer case read 1.04 and 1.07 x torch
by halves against 1.12 and 1.09 whole (alternating processes).

On the AVX2 EPYC (2026-12-07 night, after the fix in kernels/halves.py that
makes BLAS's limit reach SciPy's OpenBLAS), training forward+backward T=100, halves / whole
in turns in one process (scratch): B=32 H=256 0.90, B=64 H=256 0.95, B=32
H=128 0.81, B=64 H=128 0.60, B=48 H=192 0.77; bench/bench_lstm.py's H=256 case
0.86 and 0.92 x torch by halves against 0.97 and 1.03 whole. Before that fix
a process whose first LSTM call split ran the halves' GEMMs at two BLAS
threads each, side by side (measured then as 2.08-2.27 x torch by halves
against 1.00-1.05 whole, and the split was confined to AVX-512 CPUs)."""

OWN_GEMM_MAX_COLS = 32
INFER_SPLIT_BATCH = 16
"""_infer_wide's step GEMM is ours (kernels/simd.py) up to OWN_GEMM_MAX_COLS columns while BLAS is held to one
thread (inside a half, or by the caller), BLAS's otherwise; lstm_infer runs halves from INFER_SPLIT_BATCH rows
(SPLIT_BATCH for training), so that both cores run our GEMM. Two layers T=100 H=256, two BLAS threads, old /
new in turns in one process (scratch, AVX2 EPYC, 2026-12-08): B=64 0.88, B=32 0.74, B=20 0.82, B=16 0.84;
ours at 64 columns (B=128 by halves) read 1.12 of BLAS's one-thread GEMM, hence the bound."""

BATCH_MINOR_ROWS = SMALL_ROWS + 1
"""From this many rows (past matmul.SMALL_ROWS, where the step's product is BLAS's anyway) lstm_backward runs each
step's dG @ W_hh^T as W_hh @ dG^T into a (R, B) buffer and transposes that: OpenBLAS runs the batch in the
GEMM's short dimension faster (the same products alone, 100 steps at B=64, two threads: 88-93 against 118-133
ms at H=512), and the transpose of the small result costs less than that saves. The backward alone, B=64
T=100, two threads, AVX2 EPYC, 2026-12-07, in turns (scratch): 0.90-0.92 of before at H=512, 0.88-0.99 at
H=256. The forward's product turned round the same way needs its (G*H, B) result transposed, four times the
bytes, and did not pay (scratch, in the kernel: 0.91-1.05 of the old forward's speed, 0.87-0.95 with the
transpose fused into the gate add)."""


SPLIT_MAX_WEIGHT_BYTES = 2 << 20
"""...and while W_hh fits in 2 MiB: both halves read all of it every step, where
BLAS's two threads on the whole batch read half each; at H=512 (4 MiB) the split
measured no faster (training 1.22-1.34 x torch against 1.15-1.29 whole; at
H=256, 1 MiB, 1.01-1.04 against 1.28-1.42). On the AVX2 EPYC with the BLAS limit
working (2026-12-07 night, bench_lstm.py's H=512 case with the limit lifted,
alternating processes): 0.951 and 0.955 x torch by halves against 0.92 and 0.953
whole: no faster there either."""


def _halves(B, W_hh=None, min_rows=None):
    """[(b0, b1), (b1, B)] row ranges to run side by side (suite.kernels.halves), or None to run the batch whole
    (fewer than min_rows rows, SPLIT_BATCH by default)."""
    if W_hh is not None and W_hh.nbytes > SPLIT_MAX_WEIGHT_BYTES:
        return None
    return _batch_halves(B, SPLIT_BATCH if min_rows is None else min_rows)


class SplitCache(NamedTuple):
    """lstm_forward's cache when the batch ran as halves side by side (SPLIT_BATCH): one LSTMCache a half."""

    halves: list   # [(b0, b1), ...]
    caches: list   # the LSTMCache of each half

    @property
    def cs(self):
        """(T+1, B, H) cell states of the whole batch, as LSTMCache.cs (for looking inside a model)."""
        return np.concatenate([c.cs for c in self.caches], axis=1)


def _joined(parts):
    """The halves' first three results as the whole batch's: (T, B, .) joined on the batch axis, (B, .) on the
    first."""
    return tuple(np.concatenate([p[k] for p in parts], axis=1 if k == 0 else 0) for k in range(3))


def _by_rows(halves, fn, x, lengths, h0, c0, *rest):
    """fn(x, lengths, h0, c0, *rest) on each half's rows (contiguous copies of x's), side by side: (the first three
    results joined, every half's results)."""
    parts = _by_halves(halves, lambda b0, b1: fn(np.ascontiguousarray(x[:, b0:b1]), lengths[b0:b1], h0[b0:b1],
                                                 c0[b0:b1], *rest))
    return _joined(parts), parts


def _split_backward(dy, dhT, dcT, cache):
    """lstm_backward of a SplitCache: each half's backward side by side, dx and the initial-state gradients
    joined, the weight gradients summed."""
    first = cache.caches[0]
    T, dtype = first.x.shape[0], first.x.dtype
    B = cache.halves[-1][1]
    H, R = first.cs.shape[2], first.W_hh.shape[0]
    dy = None if dy is None else _check_float("dy", dy, dtype, (T, B, R))
    dhT = None if dhT is None else _check_float("dhT", dhT, dtype, (B, R))
    dcT = None if dcT is None else _check_float("dcT", dcT, dtype, (B, H))

    def rows(a, b0, b1, axis):
        return None if a is None else np.ascontiguousarray(a[:, b0:b1] if axis else a[b0:b1])

    parts = _by_halves(cache.halves, lambda b0, b1: lstm_backward(
        rows(dy, b0, b1, 1), rows(dhT, b0, b1, 0), rows(dcT, b0, b1, 0), cache.caches[cache.halves.index((b0, b1))]))
    dx, dh0, dc0 = _joined(parts)
    grads = parts[0][3]
    for name in grads:
        grads[name] += parts[1][3][name]
    return dx, dh0, dc0, grads


class LSTMCache(NamedTuple):
    """What lstm_backward needs from lstm_forward. Opaque to callers.

    Holds references to x and the weights (x also copied into xr), not copies:
    change the weights in place only after lstm_backward.
    """

    x: np.ndarray        # (T, B, D)
    lengths: np.ndarray  # (B,) int64
    W_ih: np.ndarray     # (D, G*H)
    W_hh: np.ndarray     # (R, G*H)
    peep: np.ndarray     # (3, H), or (0, 0) when unused
    W_hr: np.ndarray     # (H, P), or (0, 0) when unused
    gates: np.ndarray    # (T, B, G*H) gate activations at each time index
    cs: np.ndarray       # (T+1, B, H) cell states, see _forward_train
    xr: np.ndarray       # (T, B, D+R) x and the recurrent state read at each time index, side by side
    h_pre: np.ndarray    # (T, B, H) pre-projection h (LSTMP), or (0, 0, 0)
    use_peep: bool
    cifg: bool
    use_proj: bool
    reverse: bool

    @property
    def r_prev(self):
        """(T, B, R) the recurrent state read at each time index (a view of xr)."""
        return self.xr[:, :, self.x.shape[2]:]


# ----------------------------------------------------------------------------
# compiled kernels


@njit(**JIT)
def _dot_into(a, W, out):
    np.dot(a, W, out)


def _dot(a, W):
    """a @ W on the same BLAS as every other GEMM here (SciPy's, which
    np.dot inside @njit calls): NumPy ships a second OpenBLAS with its own
    thread pool, and two pools would compete for the two cores."""
    out = np.empty((a.shape[0], W.shape[1]), a.dtype)  # (N, G*H)
    _dot_into(a, W, out)
    return out


@njit(**JIT)
def _forward_train(gates, lengths, h0, c0, W_hh, b, peep, use_peep, cifg, W_hr, use_proj,
                   reverse, y, hT, cT, cs, xr, h_pre):
    """Run the cell over time, keeping what backward needs.

    gates holds x @ W_ih on entry (the bias is added here, with the step's
    recurrent product: a pass over all of gates the less) and the gate
    activations on exit (x @ W_ih at padded steps).
    Cell states are kept at T+1 slots so that the state before and after the
    step at time t are cs[t + rev] and cs[t + 1 - rev] in both directions
    (forward: c0 sits at slot 0; reverse: c0 sits at slot len[b]).
    xr (T, B, D+R) holds x in its first D columns; the recurrent state read at
    each time index goes into the rest (so that one GEMM gives the backward
    both weight gradients).
    y, cs, h_pre and xr's state columns may hold anything on entry: every slot
    is written, padded ones with zeros (no zeroed arrays: a memset the less).
    """
    T, B, GH = gates.shape
    H = c0.shape[1]
    D = xr.shape[2] - h0.shape[1]
    rev = 1 if reverse else 0
    r = h0.copy()                                  # (B, R) recurrent state of every row
    rec = np.empty((B, GH), dtype=gates.dtype)     # (B, G*H) r @ W_hh of one step
    h_step = np.zeros((B, H), dtype=gates.dtype)   # (B, H) pre-projection h of one step
    r_step = np.empty((B, r.shape[1]), dtype=gates.dtype)  # (B, P) h_step @ W_hr
    for bi in range(B):
        cs[rev * lengths[bi], bi] = c0[bi]
    for s in range(T):
        # the recurrent GEMM for all rows at once; padded rows' results are ignored
        _matmul_into(r, W_hh, rec)
        for bi in range(B):
            n = lengths[bi]
            if s >= n:                             # padded step: state frozen, slot s (in [n, T)) zeroed
                y[s, bi] = 0
                xr[s, bi, D:] = 0
                cs[s + 1, bi] = 0                  # slots n+1..T in both directions
                if use_proj:
                    h_pre[s, bi] = 0
                continue
            t = n - 1 - s if reverse else s
            xr[t, bi, D:] = r[bi]
            z = gates[t, bi]
            rz = rec[bi]
            for k in range(GH):
                z[k] += rz[k] + b[k]
            # new h goes straight into the state unless it must be projected first
            h_out = h_step[bi] if use_proj else r[bi]
            lstm_cell_row(z, cs[t + rev, bi], peep, use_peep, cifg, cs[t + 1 - rev, bi], h_out)
            if use_proj:
                h_pre[t, bi] = h_out
            else:
                y[t, bi] = h_out
        if use_proj:
            _matmul_into(h_step, W_hr, r_step)     # r = h @ W_hr for all rows at once
            for bi in range(B):
                n = lengths[bi]
                if s < n:
                    t = n - 1 - s if reverse else s
                    r[bi] = r_step[bi]
                    y[t, bi] = r_step[bi]
    hT[:] = r
    for bi in range(B):
        cT[bi] = cs[(1 - rev) * lengths[bi], bi]


@njit(**JIT)
def _infer(x, lengths, h0, c0, W_ih, b, W_hh, peep, use_peep, cifg, W_hr, use_proj,
           reverse, chunk, y, hT, cT):
    """Run the cell over time keeping only the current state.

    The input projection is one GEMM per chunk of steps, so working memory is
    O(chunk * B * G * H) whatever T is. y must be zero on entry.
    """
    T, B, D = x.shape
    GH = W_hh.shape[1]
    H = c0.shape[1]
    r = h0.copy()                                  # (B, R) recurrent state
    c = c0.copy()                                  # (B, H) cell state before the step
    c_next = c0.copy()                             # (B, H) after it (see lstm_cell_row: no aliasing)
    xg = np.zeros((chunk, B, D), dtype=x.dtype)    # (chunk, B, D) reverse: x gathered by step
    zx = np.empty((chunk * B, GH), dtype=x.dtype)  # (chunk*B, G*H) x @ W_ih of a chunk
    rec = np.empty((B, GH), dtype=x.dtype)         # (B, G*H) r @ W_hh of one step
    h_step = np.zeros((B, H), dtype=x.dtype)       # (B, H) pre-projection h
    r_step = np.empty((B, r.shape[1]), dtype=x.dtype)  # (B, P)
    for s0 in range(0, T, chunk):
        m = min(chunk, T - s0)
        if reverse:
            # rows sit at different time indices at one step: gather them
            for k in range(m):
                for bi in range(B):
                    t = lengths[bi] - 1 - (s0 + k)
                    if t >= 0:
                        xg[k, bi] = x[t, bi]
            xs = xg[:m].reshape((m * B, D))
        else:
            xs = x[s0:s0 + m].reshape((m * B, D))
        np.dot(xs, W_ih, zx[:m * B])
        for k in range(m):
            s = s0 + k
            _matmul_into(r, W_hh, rec)
            for bi in range(B):
                n = lengths[bi]
                if s >= n:
                    c_next[bi] = c[bi]             # padded: state carried over the swap
                    continue
                t = n - 1 - s if reverse else s
                z = zx[k * B + bi]
                rz = rec[bi]
                for j in range(GH):
                    z[j] += rz[j] + b[j]
                h_out = h_step[bi] if use_proj else r[bi]
                lstm_cell_row(z, c[bi], peep, use_peep, cifg, c_next[bi], h_out)
                if not use_proj:
                    y[t, bi] = h_out
            c, c_next = c_next, c
            if use_proj:
                _matmul_into(h_step, W_hr, r_step)
                for bi in range(B):
                    n = lengths[bi]
                    if s < n:
                        t = n - 1 - s if reverse else s
                        r[bi] = r_step[bi]
                        y[t, bi] = r_step[bi]
    hT[:] = r
    cT[:] = c


@njit(**JIT)
def _transpose_into(a, out):
    """out[:] = a.T for 2D arrays, in 16 x 16 tiles that stay in L1."""
    n, m = a.shape
    for i0 in range(0, n, 16):
        for j0 in range(0, m, 16):
            for j in range(j0, min(j0 + 16, m)):
                for i in range(i0, min(i0 + 16, n)):
                    out[j, i] = a[i, j]


@njit(**JIT)
def _wide_cols(B, own_gemm):
    """Columns of _infer_wide's batch-minor state: B, rounded up to whole vectors for our GEMM (kernels/simd.py)."""
    return -(-B // LANES) * LANES if own_gemm else B


@njit(**JIT)
def _infer_wide(x, lengths, h0, c0, W_ih, b, W_hh, peep_b, use_peep, cifg, W_hr, use_proj,
                reverse, own_gemm, y, hT, cT):
    """Inference with batch-minor state, for wide batches.

    One GEMM per step, z^T = [W_ih; W_hh; b]^T @ [x_t^T; r^T; 1], puts the
    batch in the GEMM's short dimension, the shape OpenBLAS runs fastest
    (measured 190 vs 160 GFLOP/s at B=64, H=256), and folds the input
    projection and the bias into it. Stored (G*H, B), z flattened is again
    G blocks, of H*N values each, so lstm_cell_row advances the whole batch
    in one call with H*N in the role of H (peep_b is peep repeated N times).
    own_gemm (float32): the step's GEMM is ours (kernels/simd.py, OWN_GEMM_MAX_COLS),
    whose state has N = _wide_cols(B, True) columns, B rounded up to whole
    vectors (the columns past B run on zeros); else BLAS's, N = B.
    Rows past their length keep computing on zero input; their final states
    were captured when they ended. y must be zero on entry.
    """
    T, B, D = x.shape
    GH = W_hh.shape[1]
    H = c0.shape[1]
    R = h0.shape[1]
    K = D + R + 1
    N = _wide_cols(B, own_gemm)
    W_cat_T = np.empty((GH, K), dtype=x.dtype)     # (G*H, D+R+1) [W_ih; W_hh; b]^T
    _transpose_into(W_ih, W_cat_T[:, :D])
    _transpose_into(W_hh, W_cat_T[:, D:D + R])
    W_cat_T[:, K - 1] = b
    W_hr_T = np.ascontiguousarray(W_hr.T)          # (P, H)
    u = np.zeros((K, N), dtype=x.dtype)            # (D+R+1, N) GEMM input [x_t^T; r^T; 1]
    u[K - 1] = 1
    _transpose_into(h0, u[D:D + R, :B])
    r = u[D:D + R]                                 # (R, N) the recurrent state, in place in u
    c = np.zeros((H, N), dtype=x.dtype)            # (H, N) cell state before the step
    _transpose_into(c0, c[:, :B])
    c_next = np.empty((H, N), dtype=x.dtype)       # (H, N) after it (no aliasing, see lstm_cell_row)
    z = np.empty((GH, N), dtype=x.dtype)           # (G*H, N) gate pre-activations
    h_pre = np.empty((H, N), dtype=x.dtype)        # (H, N) LSTMP: h before the projection
    h_out = h_pre if use_proj else r
    hT[:] = h0                                     # rows with len 0 keep their initial states
    cT[:] = c0
    for s in range(T):
        for bi in range(B):
            n = lengths[bi]
            if s < n:
                t = n - 1 - s if reverse else s
                for d in range(D):
                    u[d, bi] = x[t, bi, d]
            elif s == n:
                for d in range(D):
                    u[d, bi] = 0                   # ended: keep its (unused) state finite
        if own_gemm:
            gemm_cols(W_cat_T, u, z)
        else:
            np.dot(W_cat_T, u, z)
        lstm_cell_row(z.reshape(GH * N), c.reshape(H * N), peep_b, use_peep, cifg,
                      c_next.reshape(H * N), h_out.reshape(H * N))
        c, c_next = c_next, c
        if use_proj:
            np.dot(W_hr_T, h_pre, r)               # r^T = W_hr^T h^T
        for bi in range(B):
            n = lengths[bi]
            if s < n:
                t = n - 1 - s if reverse else s
                for k in range(R):
                    y[t, bi, k] = r[k, bi]
                if s == n - 1:
                    hT[bi] = y[t, bi]
                    for k in range(H):
                        cT[bi, k] = c[k, bi]


@njit(**JIT)  # not inlined, for the reason given at lstm_cell_row
def _cell_backward_row(a, c_prev, c, dh, dc, peep, use_peep, cifg, dz, dpeep):
    """Backprop one row through one step of lstm_cell_row.

    a : (G*H,) gate activations; c_prev, c : (H,) cell state before and after;
    dh : (H,) gradient w.r.t. the step's (pre-projection) h; dc : (H,) gradient
    w.r.t. c from later steps, overwritten with the gradient w.r.t. c_prev;
    dz : (G*H,) receives the gradient w.r.t. the gate pre-activations;
    dpeep : (3, H) peephole gradient, accumulated.
    """
    H = c.shape[0]
    one = a.dtype.type(1.0)
    if cifg:
        gi, gg, go = 0, H, 2 * H
        for j in range(H):
            i = a[gi + j]
            g = a[gg + j]
            o = a[go + j]
            tc = tanh(c[j])                          # cheaper to recompute than to store
            do = dh[j] * tc                          # backprop through h = o * tanh(c)
            do_pre = do * o * (one - o)              # backprop through sigmoid
            dcj = dc[j] + dh[j] * o * (one - tc * tc)  # backprop through tanh(c), plus the future's dc
            if use_peep:
                dcj += peep[2, j] * do_pre           # o peeked at c_t, so c_t gets o's gradient too
            df = dcj * c_prev[j]                     # c = f * c_prev + i * g with f = 1 - i ...
            di = dcj * g - df                        # ... so i also gets -df through f
            di_pre = di * i * (one - i)              # backprop through sigmoid
            dg_pre = dcj * i * (one - g * g)         # backprop through tanh
            dcp = dcj * (one - i)                    # the forget path: dc_prev = dc * f
            if use_peep:
                dcp += peep[0, j] * di_pre           # i peeked at c_prev
                dpeep[0, j] += di_pre * c_prev[j]
                dpeep[2, j] += do_pre * c[j]
            dz[gi + j] = di_pre
            dz[gg + j] = dg_pre
            dz[go + j] = do_pre
            dc[j] = dcp
    else:
        gi, gf, gg, go = 0, H, 2 * H, 3 * H
        for j in range(H):
            i = a[gi + j]
            f = a[gf + j]
            g = a[gg + j]
            o = a[go + j]
            tc = tanh(c[j])                          # cheaper to recompute than to store
            do = dh[j] * tc                          # backprop through h = o * tanh(c)
            do_pre = do * o * (one - o)              # backprop through sigmoid
            dcj = dc[j] + dh[j] * o * (one - tc * tc)  # backprop through tanh(c), plus the future's dc
            if use_peep:
                dcj += peep[2, j] * do_pre           # o peeked at c_t, so c_t gets o's gradient too
            di_pre = dcj * g * i * (one - i)         # c = f * c_prev + i * g; then sigmoid
            df_pre = dcj * c_prev[j] * f * (one - f)  # same for f
            dg_pre = dcj * i * (one - g * g)         # backprop through tanh
            dcp = dcj * f                            # the forget path: dc_prev = dc * f
            if use_peep:
                dcp += peep[0, j] * di_pre + peep[1, j] * df_pre  # i and f peeked at c_prev
                dpeep[0, j] += di_pre * c_prev[j]
                dpeep[1, j] += df_pre * c_prev[j]
                dpeep[2, j] += do_pre * c[j]
            dz[gi + j] = di_pre
            dz[gf + j] = df_pre
            dz[gg + j] = dg_pre
            dz[go + j] = do_pre
            dc[j] = dcp


@njit(**JIT)
def _backward(dy, dhT, dcT, xr, lengths, W_ih, W_hh, peep, use_peep, cifg, W_hr, use_proj,
              reverse, gates, cs, h_pre, dx, dh0, dc0, dW, db, dpeep, dW_hr, dG, batch_minor):
    """Backprop through time. Outputs (dx ... dW_hr) are written, not accumulated; dW is [dW_ih; dW_hh] (D+R, G*H).
    dG: (T, B, G*H), any contents, the workspace of d loss / d gate pre-activations (padded slots are zeroed
    here). batch_minor: each step's dG @ W_hh^T as (W_hh dG^T)^T (BATCH_MINOR_ROWS) where a step's rows share one
    time index."""
    T, B, GH = gates.shape
    D = W_ih.shape[0]
    H = cs.shape[2]
    R = dhT.shape[1]
    rev = 1 if reverse else 0
    dr = dhT.copy()                                # (B, R) d loss / d recurrent state, carried back
    dc = dcT.copy()                                # (B, H) d loss / d cell state, carried back
    dr_rec = np.empty((B, R), dtype=gates.dtype)   # (B, R) dG_step @ W_hh^T
    dr_T = np.empty((R, B), dtype=gates.dtype)     # (R, B) the same, batch-minor
    dh_step = np.empty((B, H), dtype=gates.dtype)  # (B, H) LSTMP: dr_step @ W_hr^T
    dr_step = np.zeros((B, R), dtype=gates.dtype)  # (B, R) LSTMP: dr of one step, 0 for padded rows
    dR = np.zeros((T if use_proj else 0, B, R), dtype=gates.dtype)  # (T, B, P) LSTMP: dr by time
    dG_step = np.zeros((B, GH), dtype=gates.dtype)  # (B, G*H) reverse with mixed lengths: gathered dG
    # one step's rows share one time index (so dG[t] is the step's (B, G*H)
    # block for the GEMM) unless reverse with mixed lengths: then gather them
    uniform = True
    if reverse:
        for bi in range(B):
            if lengths[bi] != T:
                uniform = False
    dpeep[:] = 0
    db[:] = 0
    # C-contiguous transposes: 1 MiB copied once, and the per-step GEMM runs as
    # NN, measured ~8% faster than NT with OpenBLAS at B=64, H=256 (not needed batch-minor)
    W_hh_T = np.ascontiguousarray(W_hh.T[:0] if uniform and batch_minor else W_hh.T)  # (G*H, R)
    W_hr_T = np.ascontiguousarray(W_hr.T)          # (P, H)
    for s in range(T - 1, -1, -1):
        if use_proj:
            # the output and the next step both read r = h @ W_hr
            for bi in range(B):
                n = lengths[bi]
                if s < n:
                    t = n - 1 - s if reverse else s
                    for k in range(R):
                        dr_step[bi, k] = dy[t, bi, k] + dr[bi, k]
                    dR[t, bi] = dr_step[bi]
                else:
                    dr_step[bi] = 0
            _matmul_into(dr_step, W_hr_T, dh_step)  # backprop through the projection
        for bi in range(B):
            n = lengths[bi]
            if s >= n:
                dG[s, bi] = 0                      # padded: slot s (in [n, T)) gets no gradient
                continue                           # and dr, dc pass through untouched
            t = n - 1 - s if reverse else s
            if use_proj:
                dh = dh_step[bi]
            else:
                dh = dr[bi]
                for k in range(R):
                    dh[k] += dy[t, bi, k]          # the output and the next step both read h
            dz = dG[t, bi]
            _cell_backward_row(gates[t, bi], cs[t + rev, bi], cs[t + 1 - rev, bi], dh, dc[bi],
                               peep, use_peep, cifg, dz, dpeep)
            for j in range(GH):
                db[j] += dz[j]                     # while dz is in cache: no pass over all of dG after
        # backprop through the recurrent GEMM z = r_prev @ W_hh (padded rows have dG = 0)
        if uniform and batch_minor:
            np.dot(W_hh, dG[T - 1 - s if reverse else s].T, dr_T)  # OpenBLAS's quicker shape, then transposed
            _transpose_into(dr_T, dr_rec)
        elif uniform:
            _matmul_into(dG[T - 1 - s if reverse else s], W_hh_T, dr_rec)
        else:
            for bi in range(B):
                n = lengths[bi]
                if s < n:
                    dG_step[bi] = dG[n - 1 - s, bi]
                else:
                    dG_step[bi] = 0
            _matmul_into(dG_step, W_hh_T, dr_rec)
        for bi in range(B):
            if s < lengths[bi]:
                dr[bi] = dr_rec[bi]
    dh0[:] = dr
    dc0[:] = dc
    # the weight gradients of all steps at once, now that dG is complete
    dG2 = dG.reshape((T * B, GH))                  # (T*B, G*H)
    np.dot(xr.reshape((T * B, D + R)).T, dG2, dW)  # (D+R, G*H): [dW_ih; dW_hh] in one GEMM
    np.dot(dG2, W_ih.T, dx.reshape((T * B, D)))    # (T*B, D); padded rows of dG are 0
    if use_proj:
        np.dot(h_pre.reshape((T * B, H)).T, dR.reshape((T * B, R)), dW_hr)  # (H, P)


# ----------------------------------------------------------------------------
# validation


def _check_float(name, a, dtype, shape):
    """Return a as a C-contiguous array of dtype, or raise ValueError."""
    a = np.asarray(a)
    if a.dtype != dtype:
        raise ValueError(f"{name} has dtype {a.dtype}, expected {dtype} (the dtype of x); "
                         "all float arrays of one call must share one dtype")
    if a.shape != shape:
        raise ValueError(f"{name} has shape {a.shape}, expected {shape}")
    return np.ascontiguousarray(a)


def _validate(x, lengths, h0, c0, W_ih, W_hh, b, peep, W_hr, cifg):
    """Check every argument; return contiguous arrays and the sizes."""
    x = np.asarray(x)
    if x.ndim != 3:
        raise ValueError(f"x has shape {x.shape}, expected (T, B, D)")
    if x.dtype not in (np.float32, np.float64):
        raise ValueError(f"x has dtype {x.dtype}, expected float32 or float64")
    dtype = x.dtype
    T, B, D = x.shape
    if D == 0:
        raise ValueError(f"x has shape {x.shape}: input size D must be positive")
    G = n_gates(cifg)
    W_ih = np.asarray(W_ih)
    if W_ih.ndim != 2 or W_ih.shape[0] != D or W_ih.shape[1] == 0 or W_ih.shape[1] % G:
        raise ValueError(f"W_ih has shape {W_ih.shape}, expected ({D}, {G}*H) for input size "
                         f"{D} and {G} gates (cifg={cifg})")
    H = W_ih.shape[1] // G
    W_ih = _check_float("W_ih", W_ih, dtype, (D, G * H))
    if W_hr is not None:
        W_hr = np.asarray(W_hr)
        if W_hr.ndim != 2 or W_hr.shape[0] != H or W_hr.shape[1] == 0:
            raise ValueError(f"W_hr has shape {W_hr.shape}, expected ({H}, P) for hidden_size={H}")
        W_hr = _check_float("W_hr", W_hr, dtype, W_hr.shape)
    R = W_hr.shape[1] if W_hr is not None else H
    W_hh = _check_float("W_hh", W_hh, dtype, (R, G * H))
    b = _check_float("b", b, dtype, (G * H,))
    if peep is not None:
        peep = _check_float("peep", peep, dtype, (3, H))
    h0 = np.zeros((B, R), dtype) if h0 is None else _check_float("h0", h0, dtype, (B, R))
    c0 = np.zeros((B, H), dtype) if c0 is None else _check_float("c0", c0, dtype, (B, H))
    if lengths is None:
        lengths = np.full(B, T, dtype=np.int64)
    else:
        lengths = np.asarray(lengths)
        if lengths.shape != (B,) or not (lengths.dtype.kind in "iu" or lengths.size == 0):
            raise ValueError(f"lengths has shape {lengths.shape} and dtype {lengths.dtype}, "
                             f"expected ({B},) integers")
        if lengths.size and (lengths.min() < 0 or lengths.max() > T):
            raise ValueError(f"lengths must lie in [0, T={T}], got min {lengths.min()} "
                             f"and max {lengths.max()}")
        lengths = np.ascontiguousarray(lengths, dtype=np.int64)
    x = np.ascontiguousarray(x)
    return x, lengths, h0, c0, W_ih, W_hh, b, peep, W_hr, (T, B, D, H, R)


def _unused(dtype, ndim=2):
    """A placeholder for an optional array the kernel will not read."""
    return np.zeros((0,) * ndim, dtype)


# ----------------------------------------------------------------------------
# public wrappers


def lstm_forward(x, lengths, h0, c0, W_ih, W_hh, b, peep=None, W_hr=None, cifg=False,
                 reverse=False):
    """LSTM layer forward for training: wraps the compiled ``_forward_train``.

    Parameters
    ----------
    x : np.ndarray [shape=(T, B, D), dtype=float32 or float64]
    lengths : np.ndarray [shape=(B,), int] or None
        Valid steps per row, 0 <= len <= T; None means all T.
    h0 : np.ndarray [shape=(B, R)] or None (zeros)
    c0 : np.ndarray [shape=(B, H)] or None (zeros)
    W_ih : np.ndarray [shape=(D, G*H)]
        Input weights, gate blocks i, f, g, o (i, g, o for CIFG).
    W_hh : np.ndarray [shape=(R, G*H)]
    b : np.ndarray [shape=(G*H,)]
    peep : np.ndarray [shape=(3, H)] or None
        Peephole weights, rows i, f, o (row f unused for CIFG).
    W_hr : np.ndarray [shape=(H, P)] or None
        LSTMP projection: the recurrent state and output are r = h @ W_hr, R = P.
    cifg : bool
        Coupled input-forget gate (G = 3) instead of G = 4.
    reverse : bool
        Read each row from t = len[b]-1 down to 0.

    Returns
    -------
    y : np.ndarray [shape=(T, B, R)]
        State after consuming x[t, b]; zero at padded steps.
    hT : np.ndarray [shape=(B, R)]
    cT : np.ndarray [shape=(B, H)]
        Final states (after x[len-1] forward, after x[0] reverse); the initial
        states for rows with len = 0.
    cache : LSTMCache
    """
    x, lengths, h0, c0, W_ih, W_hh, b, peep, W_hr, (T, B, D, H, R) = _validate(
        x, lengths, h0, c0, W_ih, W_hh, b, peep, W_hr, cifg)
    halves = _halves(B, W_hh) if T else None
    if halves is not None:
        (y, hT, cT), parts = _by_rows(halves, lstm_forward, x, lengths, h0, c0, W_ih, W_hh, b, peep, W_hr, cifg,
                                      reverse)
        return y, hT, cT, SplitCache(halves, [p[3] for p in parts])
    dtype = x.dtype
    use_peep, use_proj = peep is not None, W_hr is not None
    peep_k = peep if use_peep else _unused(dtype)
    W_hr_k = W_hr if use_proj else _unused(dtype)
    if T == 0 or B == 0:
        y = np.zeros((T, B, R), dtype)
        cs = np.zeros((T + 1, B, H), dtype)
        xr = np.zeros((T, B, D + R), dtype)
        h_pre = np.zeros((T, B, H), dtype) if use_proj else _unused(dtype, 3)
        gates = np.zeros((T, B, W_ih.shape[1]), dtype)
        hT, cT = h0.copy(), c0.copy()
    else:
        y = np.empty((T, B, R), dtype)             # the kernel writes every slot
        cs = np.empty((T + 1, B, H), dtype)
        xr = np.empty((T, B, D + R), dtype)
        xr[:, :, :D] = x
        h_pre = np.empty((T, B, H), dtype) if use_proj else _unused(dtype, 3)
        gates = _dot(x.reshape(T * B, D), W_ih).reshape(T, B, -1)  # (T, B, G*H); b added per step
        hT = np.empty((B, R), dtype)
        cT = np.empty((B, H), dtype)
        _forward_train(gates, lengths, h0, c0, W_hh, b, peep_k, use_peep, bool(cifg), W_hr_k,
                       use_proj, bool(reverse), y, hT, cT, cs, xr, h_pre)
    cache = LSTMCache(x, lengths, W_ih, W_hh, peep_k, W_hr_k, gates, cs, xr, h_pre,
                      use_peep, bool(cifg), use_proj, bool(reverse))
    return y, hT, cT, cache


def lstm_backward(dy, dhT, dcT, cache):
    """Backprop through time for lstm_forward: wraps the compiled ``_backward``.

    Parameters
    ----------
    dy : np.ndarray [shape=(T, B, R)] or None
        Gradient w.r.t. y (ignored at padded steps).
    dhT : np.ndarray [shape=(B, R)] or None
    dcT : np.ndarray [shape=(B, H)] or None
    cache : LSTMCache
        From the lstm_forward call being differentiated.

    Returns
    -------
    dx : np.ndarray [shape=(T, B, D)]
        Zero at padded steps.
    dh0 : np.ndarray [shape=(B, R)]
    dc0 : np.ndarray [shape=(B, H)]
    grads : dict
        'W_ih', 'W_hh', 'b', and 'peep' / 'W_hr' when the forward used them
        ('W_ih' and 'W_hh' are the two row blocks of one array).
    """
    if isinstance(cache, SplitCache):
        return _split_backward(dy, dhT, dcT, cache)
    if not isinstance(cache, LSTMCache):
        raise ValueError(f"cache must be the LSTMCache from lstm_forward, got {type(cache).__name__}")
    x = cache.x
    dtype = x.dtype
    T, B, D = x.shape
    H = cache.cs.shape[2]
    R = cache.W_hh.shape[0]
    GH = cache.W_hh.shape[1]
    dy = np.zeros((T, B, R), dtype) if dy is None else _check_float("dy", dy, dtype, (T, B, R))
    dhT = np.zeros((B, R), dtype) if dhT is None else _check_float("dhT", dhT, dtype, (B, R))
    dcT = np.zeros((B, H), dtype) if dcT is None else _check_float("dcT", dcT, dtype, (B, H))
    dx = np.empty((T, B, D), dtype) if T and B else np.zeros((T, B, D), dtype)  # the kernel writes all of it
    dW = np.zeros((D + R, GH), dtype)                # [dW_ih; dW_hh], one GEMM's result
    grads = {"W_ih": dW[:D], "W_hh": dW[D:], "b": np.zeros(GH, dtype)}
    dpeep = np.zeros((3, H), dtype) if cache.use_peep else _unused(dtype)
    dW_hr = np.zeros(cache.W_hr.shape, dtype) if cache.use_proj else _unused(dtype)
    if T == 0 or B == 0:
        dh0, dc0 = dhT.copy(), dcT.copy()
    else:
        dh0 = np.empty((B, R), dtype)
        dc0 = np.empty((B, H), dtype)
        _backward(dy, dhT, dcT, cache.xr, cache.lengths, cache.W_ih, cache.W_hh, cache.peep,
                  cache.use_peep, cache.cifg, cache.W_hr, cache.use_proj, cache.reverse,
                  cache.gates, cache.cs, cache.h_pre,
                  dx, dh0, dc0, dW, grads["b"], dpeep, dW_hr,
                  pieces(dtype, (T, B, GH))[0],  # dG on memory this thread keeps (suite.kernels.scratch)
                  B >= BATCH_MINOR_ROWS)
    if cache.use_peep:
        grads["peep"] = dpeep
    if cache.use_proj:
        grads["W_hr"] = dW_hr
    return dx, dh0, dc0, grads


def lstm_infer(x, lengths, h0, c0, W_ih, W_hh, b, peep=None, W_hr=None, cifg=False,
               reverse=False):
    """LSTM layer forward without a cache: wraps the compiled ``_infer``.

    Same arguments and first three results as lstm_forward. Working memory
    beyond x and y is O(B * G * H + weights). Wide, long batches (WIDE_BATCH,
    WIDE_STEPS) run batch-minor (_infer_wide: one fused GEMM per step); others
    run per row (_infer: the input projection INFER_CHUNK steps per GEMM).

    Returns
    -------
    y : np.ndarray [shape=(T, B, R)]
    hT : np.ndarray [shape=(B, R)]
    cT : np.ndarray [shape=(B, H)]
    """
    x, lengths, h0, c0, W_ih, W_hh, b, peep, W_hr, (T, B, D, H, R) = _validate(
        x, lengths, h0, c0, W_ih, W_hh, b, peep, W_hr, cifg)
    halves = _halves(B, W_hh, INFER_SPLIT_BATCH) if T else None
    if halves is not None:
        return _by_rows(halves, lstm_infer, x, lengths, h0, c0, W_ih, W_hh, b, peep, W_hr, cifg, reverse)[0]
    dtype = x.dtype
    use_peep, use_proj = peep is not None, W_hr is not None
    y = np.zeros((T, B, R), dtype)
    if T == 0 or B == 0:
        return y, h0.copy(), c0.copy()
    hT = np.empty((B, R), dtype)
    cT = np.empty((B, H), dtype)
    W_hr_k = W_hr if use_proj else _unused(dtype)
    if B >= WIDE_BATCH and T >= WIDE_STEPS:
        own_gemm = dtype == np.float32 and _wide_cols(B, True) <= OWN_GEMM_MAX_COLS and _blas_threads() == 1
        peep_b = np.repeat(peep, _wide_cols(B, own_gemm), axis=1) if use_peep else _unused(dtype)  # (3, H*N)
        _infer_wide(x, lengths, h0, c0, W_ih, b, W_hh, peep_b, use_peep, bool(cifg), W_hr_k,
                    use_proj, bool(reverse), own_gemm, y, hT, cT)
    else:
        chunk = min(max(INFER_CHUNK, -(-INFER_ROWS // B)), T)
        _infer(x, lengths, h0, c0, W_ih, b, W_hh, peep if use_peep else _unused(dtype), use_peep,
               bool(cifg), W_hr_k, use_proj, bool(reverse), chunk, y, hT, cT)
    return y, hT, cT
