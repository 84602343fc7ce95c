"""Small device kernels the layers glue together with: y += a*x, y *= s, bias rows, column sums, row gathers and
scatter-adds (embeddings), masks (dropout), and feature-axis concatenation and splitting (bidirectional layers).

Each is one launch over the elements of its output, a thread an element
(column sums: a thread a column, looping over the rows). Arrays are C-contiguous
device arrays of one float dtype; the public functions check shapes and raise
ValueError with the two shapes.
"""
import math

import numpy as np

from suite.kernels.cuda import blocks, cuda, to_device

THREADS = 128


def _flat(a):
    return a.reshape(a.size)


@cuda.jit
def _axpy(y, x, alpha):
    i = cuda.grid(1)
    if i < y.size:
        y[i] += alpha * x[i]


def axpy(y, x, alpha=1.0):
    """y += alpha * x in place (device arrays of one shape); returns y."""
    x = to_device(x)
    if tuple(y.shape) != tuple(x.shape):
        raise ValueError(f"axpy: y has shape {tuple(y.shape)}, x {tuple(x.shape)}")
    if y.size:
        _axpy[blocks(y.size, THREADS), THREADS](_flat(y), _flat(x), y.dtype.type(alpha))
    return y


@cuda.jit
def _scale(y, s):
    i = cuda.grid(1)
    if i < y.size:
        y[i] *= s


def scale(y, s):
    """y *= s in place (a device array); returns y."""
    if y.size:
        _scale[blocks(y.size, THREADS), THREADS](_flat(y), y.dtype.type(s))
    return y


@cuda.jit
def _mul(out, a, b):
    i = cuda.grid(1)
    if i < out.size:
        out[i] = a[i] * b[i]


def _binary(kernel, name, a, b):
    """kernel(out, a, b) over the flat elements of two arrays of one shape: out, a new device array of a's shape
    and dtype."""
    a, b = to_device(a), to_device(b)
    if tuple(a.shape) != tuple(b.shape):
        raise ValueError(f"{name}: shapes {tuple(a.shape)} and {tuple(b.shape)} differ")
    out = cuda.device_array(tuple(a.shape), a.dtype)
    if a.size:
        kernel[blocks(a.size, THREADS), THREADS](_flat(out), _flat(a), _flat(b))
    return out


def multiply(a, b):
    """a * b elementwise, a new device array (dropout: x times its scaled keep-mask)."""
    return _binary(_mul, "multiply", a, b)


@cuda.jit
def _add_row(y, b):
    i = cuda.grid(1)
    n = b.size
    if i < y.size:
        y[i] += b[i % n]


def add_row(y, b):
    """y (N, C) += b (C,) on every row, in place; returns y."""
    b = to_device(b)
    if y.ndim != 2 or b.shape != (y.shape[1],):
        raise ValueError(f"add_row: y has shape {tuple(y.shape)}, b {tuple(b.shape)}")
    if y.size:
        _add_row[blocks(y.size, THREADS), THREADS](_flat(y), b)
    return y


def col_sum_into(out, x):
    """out (C,) += x (N, C).sum(axis=0), in place; returns out."""
    x = to_device(x)
    if x.ndim != 2 or tuple(out.shape) != (x.shape[1],):
        raise ValueError(f"col_sum_into: out has shape {tuple(out.shape)}, x {tuple(x.shape)}")
    if out.size:
        from suite.kernels.cuda.reduce import column_sums

        sums = cuda.device_array(tuple(out.shape), out.dtype)
        column_sums[blocks(out.size, THREADS), THREADS](x, sums)
        axpy(out, sums)
    return out


@cuda.jit
def _gather_rows(out, table, ids):
    i = cuda.grid(1)
    E = table.shape[1]
    if i < out.shape[0] * E:
        r = i // E
        out[r, i - r * E] = table[ids[r], i - r * E]


def gather_rows(table, ids):
    """table (V, E)[ids (N,)] -> (N, E) device array (an embedding lookup); ids already checked in range."""
    ids = to_device(np.ascontiguousarray(ids, dtype=np.int64)) if not hasattr(ids, "copy_to_host") else ids
    out = cuda.device_array((ids.shape[0], table.shape[1]), table.dtype)
    if out.size:
        _gather_rows[blocks(out.size, THREADS), THREADS](out, table, ids)
    return out


@cuda.jit
def _scatter_add_rows(table, ids, rows):
    i = cuda.grid(1)
    E = table.shape[1]
    if i < rows.shape[0] * E:
        r = i // E
        cuda.atomic.add(table, (ids[r], i - r * E), rows[r, i - r * E])


def scatter_add_rows(table, ids, rows):
    """table[ids[r]] += rows[r] for every r, repeated ids summed (atomics); in place, returns table."""
    ids = to_device(np.ascontiguousarray(ids, dtype=np.int64)) if not hasattr(ids, "copy_to_host") else ids
    rows = to_device(rows)
    if rows.ndim != 2 or rows.shape != (ids.shape[0], table.shape[1]):
        raise ValueError(f"scatter_add_rows: rows has shape {tuple(rows.shape)}, expected "
                         f"({ids.shape[0]}, {table.shape[1]})")
    if rows.size:
        _scatter_add_rows[blocks(rows.size, THREADS), THREADS](table, ids, rows)
    return table


@cuda.jit
def _copy_cols(dst, src, offset):
    i = cuda.grid(1)
    n = src.shape[1]
    if i < src.shape[0] * n:
        r = i // n
        dst[r, offset + i - r * n] = src[r, i - r * n]


@cuda.jit
def _take_cols(dst, src, offset):
    i = cuda.grid(1)
    n = dst.shape[1]
    if i < dst.shape[0] * n:
        r = i // n
        dst[r, i - r * n] = src[r, offset + i - r * n]


def concat_last(parts):
    """Device arrays (..., F_k) of one leading shape -> (..., sum F_k), joined on the last axis."""
    lead = tuple(parts[0].shape)[:-1]
    widths = [tuple(p.shape)[-1] for p in parts]
    out = cuda.device_array(lead + (sum(widths),), parts[0].dtype)
    rows = int(np.prod(lead, dtype=np.int64))
    flat_out = out.reshape(rows, sum(widths))
    offset = 0
    for p, w in zip(parts, widths):
        if tuple(p.shape)[:-1] != lead:
            raise ValueError(f"concat_last: shapes {tuple(parts[0].shape)} and {tuple(p.shape)} do not join")
        if rows * w:
            _copy_cols[blocks(rows * w, THREADS), THREADS](flat_out, p.reshape(rows, w), offset)
        offset += w
    return out


def take_last(a, start, stop):
    """a[..., start:stop] as a new C-contiguous device array."""
    lead = tuple(a.shape)[:-1]
    rows = int(np.prod(lead, dtype=np.int64))
    out = cuda.device_array(lead + (stop - start,), a.dtype)
    if rows * (stop - start):
        _take_cols[blocks(rows * (stop - start), THREADS), THREADS](
            out.reshape(rows, stop - start), a.reshape(rows, tuple(a.shape)[-1]), start)
    return out


@cuda.jit(device=True)
def nchw_place(i, C, H, W):
    """(b, c, h, w) of element i of a C-contiguous (B, C, H, W) array (any 4-D array: (k0, k1, k2, k3))."""
    w = i % W
    r = i // W
    h = r % H
    r = r // H
    return r // C, r % C, h, w


@cuda.jit
def _permute4(out, a, p0, p1, p2, p3):
    i = cuda.grid(1)
    if i < out.size:
        k0, k1, k2, k3 = nchw_place(i, out.shape[1], out.shape[2], out.shape[3])
        src = cuda.local.array(4, np.int64)
        src[p0] = k0
        src[p1] = k1
        src[p2] = k2
        src[p3] = k3
        out[k0, k1, k2, k3] = a[src[0], src[1], src[2], src[3]]


def permute(a, axes):
    """np.transpose(a, axes) of a 4-D device array, as a new C-contiguous device array (e.g. conv features
    (B, C, R, T) -> (T, B, C, R) for a recurrent layer, and back)."""
    axes = tuple(int(k) for k in axes)
    if a.ndim != 4 or sorted(axes) != [0, 1, 2, 3]:
        raise ValueError(f"permute takes a 4-D array and a permutation of (0, 1, 2, 3), got {a.ndim}-D, {axes}")
    shape = tuple(a.shape)
    out = cuda.device_array(tuple(shape[k] for k in axes), a.dtype)
    if out.size:
        _permute4[blocks(out.size, THREADS), THREADS](out, a, *axes)
    return out


@cuda.jit
def _copy2d(src, dst):
    i = cuda.grid(1)
    n = src.shape[1]
    if i < src.shape[0] * n:
        dst[i // n, i % n] = src[i // n, i % n]


def copy2d(a, out=None):
    """out[:] = a for 2-D device arrays of one shape, either possibly a strided view; out None: a new array."""
    if out is None:
        out = cuda.device_array(tuple(a.shape), a.dtype)
    elif tuple(out.shape) != tuple(a.shape):
        raise ValueError(f"copy2d: a has shape {tuple(a.shape)}, out {tuple(out.shape)}")
    if a.size:
        _copy2d[blocks(a.size, THREADS), THREADS](a, out)
    return out


@cuda.jit
def _tanh(out, x):
    i = cuda.grid(1)
    if i < out.size:
        out[i] = math.tanh(x[i])


def tanh(x):
    """np.tanh(x) of a device array, a new device array."""
    out = cuda.device_array(tuple(x.shape), x.dtype)
    if x.size:
        _tanh[blocks(x.size, THREADS), THREADS](_flat(out), _flat(x))
    return out


@cuda.jit
def _tanh_backward(out, a, g):
    i = cuda.grid(1)
    if i < out.size:
        out[i] = g[i] * (1.0 - a[i] * a[i])


def tanh_backward(g, a):
    """g * (1 - a * a): the gradient through a = tanh(z), a new device array (a's dtype)."""
    return _binary(_tanh_backward, "tanh_backward", a, g)


@cuda.jit
def _avg_pool(out, x, k):
    i = cuda.grid(1)
    if i < out.size:
        b, c, h, w = nchw_place(i, out.shape[1], out.shape[2], out.shape[3])
        acc = out.dtype.type(0.0)  # out is uninitialised: never read it
        for dh in range(k):
            for dw in range(k):
                acc += x[b, c, k * h + dh, k * w + dw]
        out[b, c, h, w] = acc / (k * k)


@cuda.jit
def _avg_pool_backward(dx, dy, k):
    i = cuda.grid(1)
    if i < dx.size:
        b, c, h, w = nchw_place(i, dx.shape[1], dx.shape[2], dx.shape[3])
        dx[b, c, h, w] += dy[b, c, h // k, w // k] / (k * k)


def avg_pool(x, k=2):
    """(B, C, H, W) -> (B, C, H/k, W/k): the mean of each k x k block (H, W multiples of k)."""
    B, C, H, W = tuple(x.shape)
    if k < 1 or H % k or W % k:
        raise ValueError(f"avg_pool with {k}x{k} blocks needs H and W multiples of {k}, got {tuple(x.shape)}")
    out = cuda.device_array((B, C, H // k, W // k), x.dtype)
    if out.size:
        _avg_pool[blocks(out.size, THREADS), THREADS](out, x, k)
    return out


def avg_pool_backward_into(dx, dy, k=2):
    """dx (B, C, H, W) += each k x k block's share (1/k^2) of dy (B, C, H/k, W/k), in place; returns dx."""
    if dx.size:
        _avg_pool_backward[blocks(dx.size, THREADS), THREADS](dx, to_device(dy), k)
    return dx


@cuda.jit
def _zero_past(x, widths):
    i = cuda.grid(1)
    if i < x.size:
        b, c, h, w = nchw_place(i, x.shape[1], x.shape[2], x.shape[3])
        if w >= widths[b]:
            x[b, c, h, w] = 0


def zero_past(x, widths):
    """x (B, C, H, W) with x[b, :, :, widths[b]:] set to zero, in place; returns x."""
    if x.size:
        _zero_past[blocks(x.size, THREADS), THREADS](x, to_device(np.asarray(widths, np.int64)))
    return x


@cuda.jit
def _time_mean(out, y, lengths):
    i = cuda.grid(1)
    F = out.shape[1]
    if i < out.size:
        b = i // F
        f = i - b * F
        acc = out.dtype.type(0.0)  # out is uninitialised: never read it
        for t in range(y.shape[0]):
            acc += y[t, b, f]
        out[b, f] = acc / lengths[b]


def time_mean(y, lengths):
    """(T, B, F) outputs, zero past each row's length -> (B, F): each row's mean over its own steps."""
    T, B, F = tuple(y.shape)
    out = cuda.device_array((B, F), y.dtype)
    if out.size:
        _time_mean[blocks(out.size, THREADS), THREADS](out, y, to_device(np.asarray(lengths, np.int64)))
    return out


@cuda.jit
def _batch_major_plus(out, dmemory, drow, lengths):
    i = cuda.grid(1)
    if i < out.size:
        F = out.shape[2]
        B = out.shape[1]
        f = i % F
        b = (i // F) % B
        t = i // (F * B)
        out[t, b, f] = dmemory[b, t, f] + drow[b, f] / lengths[b]


def batch_major_plus(dmemory, drow, lengths):
    """(B, T, F) dmemory -> (T, B, F) time-major, plus drow[b] / lengths[b] at every step of row b (the gradient
    of a per-row mean over time; steps past a row's length are ignored by the recurrent kernels)."""
    B, T, F = tuple(dmemory.shape)
    out = cuda.device_array((T, B, F), dmemory.dtype)
    if out.size:
        _batch_major_plus[blocks(out.size, THREADS), THREADS](out, dmemory, to_device(drow),
                                                             to_device(np.asarray(lengths, np.int64)))
    return out


@cuda.jit
def _smooth_labels(dlogits, targets, pad, low, high):
    i = cuda.grid(1)
    V = dlogits.shape[1]
    if i < dlogits.size:
        r = i // V
        t = targets[r]
        if t != pad:
            v = i - r * V
            dlogits[r, v] -= low
            if v == t:
                dlogits[r, v] += high


def smooth_labels(dlogits, targets, pad, eps, count):
    """Label smoothing's share of the gradient, in place on (N, V) dlogits: on rows whose target is not ``pad``,
    -eps / V / count everywhere and +eps / count at the target."""
    N, V = tuple(dlogits.shape)
    if dlogits.size:
        _smooth_labels[blocks(dlogits.size, THREADS), THREADS](
            dlogits, to_device(np.asarray(targets, np.int64)), int(pad), dlogits.dtype.type(eps / V / count),
            dlogits.dtype.type(eps / count))
    return dlogits
