"""2D convolution, ReLU and max-pooling over NCHW batches on the device, forward and backward.

The @cuda.jit twins of kernels/conv.py: same arguments, same shapes, same
weight layout (F, C, KH, KW) and the same argmax encoding (h*W + w in the
plane), so a result of one can be handed to the other. Inputs are NumPy or
device arrays; results are device arrays (``to_host`` brings one back).

Convolution is im2col + GEMM over a chunk of images at once, not one image at
a time as on the CPU: a GPU wants one large GEMM, not B small launches. The
im2col kernel (a thread per column element) fills cols (C*KH*KW, images*Ho*Wo),
with exact columns (no "wide" junk columns: a gather costs the same at any
stride here), the tiled GEMM of kernels/cuda/gemm.py gives out (F, images*Ho*Wo),
and the bias kernel adds b while moving out back to NCHW. Chunks cap cols at
_COLS_BUDGET elements (the whole batch unless that is over 128 MB of float32).

Backward, per chunk: dy moved to the same (F, images*Ho*Wo) layout, the
columns recomputed (as on the CPU: cheaper than keeping them), dW += dy @ cols^T
(GEMM with beta = 1 after the first chunk), then dcols = W^T @ dy written over
cols, whose last reader was that GEMM. col2im is a gather: a thread per dx
element sums the KH*KW/stride^2 column entries read from it, so no two threads
write one place and the sum is the same in every run (atomics would be
neither). db is a per-channel reduction, in float64 like the CPU's.

Max-pool backward scatters each window's gradient to its winner with
cuda.atomic.add: its arguments (as on the CPU) do not say kernel and stride,
so a gather could not know which windows cover an element. Where windows
overlap (stride < kernel) the additions come in any order, so float results
may differ from the CPU's in the last bit; without overlap no element gets two.

No fastmath: NaN and inf propagate as on the CPU (NaN wins its pooling window).
"""
import numpy as np
from numba import float64

from suite.kernels.conv import _geometry, _positive_int, conv_output_size
from suite.kernels.cuda import blocks, cuda, is_device, simulated, to_device, zeros
from suite.kernels.cuda.elementwise import nchw_place
from suite.kernels.cuda.gemm import gemm
from suite.kernels.cuda.reduce import block_sum

_FLOATS = (np.float32, np.float64)

_THREADS = 32 if simulated() else 256
"""Threads per block of the elementwise kernels. The simulator runs each thread
as a Python thread (~65 us), so there small blocks waste little on the last one."""

_REDUCE = 8 if simulated() else 256
"""Threads per block (a power of two) of the bias-gradient reduction: one block per channel."""

_COLS_BUDGET = 1 << 25
"""Most elements of the im2col buffer (and of dy's copy in backward): 128 MB of
float32. A batch whose columns need more is done in chunks of whole images."""


# ----------------------------------------------------------------------------
# compiled kernels


@cuda.jit(device=True)
def _column_place(n, Ho, Wo):
    """(b, oh, ow) of column n of the GEMM layout: images*Ho*Wo columns, image by image, row-major."""
    L = Ho * Wo
    b = n // L
    oh = (n - b * L) // Wo
    return b, oh, n - b * L - oh * Wo


@cuda.jit
def _im2col(x, b0, KH, KW, s, p, Ho, Wo, cols):
    """cols[(c*KH + kh)*KW + kw, b*Ho*Wo + oh*Wo + ow] = x[b0 + b, c, oh*s + kh - p, ow*s + kw - p],
    zero where that falls in the padding. One thread per element of cols."""
    i = cuda.grid(1)
    K, N = cols.shape
    if i < K * N:
        k = i // N
        n = i - k * N
        b, oh, ow = _column_place(n, Ho, Wo)
        c = k // (KH * KW)
        kh = (k - c * KH * KW) // KW
        kw = k - c * KH * KW - kh * KW
        h = oh * s + kh - p
        w = ow * s + kw - p
        if h >= 0 and h < x.shape[2] and w >= 0 and w < x.shape[3]:
            cols[k, n] = x[b0 + b, c, h, w]
        else:
            cols[k, n] = 0


@cuda.jit
def _col2im(dcols, b0, KH, KW, s, p, Ho, Wo, dx):
    """The adjoint of _im2col as a gather: dx[b0 + b, c, h, w] = the sum of every dcols
    entry _im2col read from there, added in (kh, kw) order as the CPU does.
    One thread per element of dx[b0:b0 + dcols.shape[1] // (Ho*Wo)]."""
    i = cuda.grid(1)
    C, H, W = dx.shape[1], dx.shape[2], dx.shape[3]
    nb = dcols.shape[1] // (Ho * Wo)
    if i < nb * C * H * W:
        b, c, h, w = nchw_place(i, C, H, W)
        acc = dx.dtype.type(0)
        for kh in range(KH):
            hh = h + p - kh                                   # oh*s, if some oh read (h, .) with kh
            if hh < 0:
                break
            oh = hh // s
            if oh * s != hh or oh >= Ho:
                continue
            for kw in range(KW):
                ww = w + p - kw
                if ww < 0:
                    break
                ow = ww // s
                if ow * s != ww or ow >= Wo:
                    continue
                acc += dcols[(c * KH + kh) * KW + kw, (b * Ho + oh) * Wo + ow]
        dx[b0 + b, c, h, w] = acc


@cuda.jit
def _add_bias(out, bias, b0, y):
    """y[b0 + b, f, oh, ow] = out[f, b*Ho*Wo + oh*Wo + ow] + bias[f]: the GEMM's
    (F, images*Ho*Wo) back to NCHW. One thread per element of out."""
    i = cuda.grid(1)
    F, N = out.shape
    if i < F * N:
        f = i // N
        n = i - f * N
        b, oh, ow = _column_place(n, y.shape[2], y.shape[3])
        y[b0 + b, f, oh, ow] = out[f, n] + bias[f]


@cuda.jit
def _to_columns(dy, b0, dyc):
    """dyc[f, b*Ho*Wo + oh*Wo + ow] = dy[b0 + b, f, oh, ow]: NCHW to the GEMM's layout
    (the inverse of _add_bias's move). One thread per element of dyc."""
    i = cuda.grid(1)
    F, N = dyc.shape
    if i < F * N:
        f = i // N
        n = i - f * N
        b, oh, ow = _column_place(n, dy.shape[2], dy.shape[3])
        dyc[f, n] = dy[b0 + b, f, oh, ow]


@cuda.jit
def _bias_grad(dy, db):
    """db[f] = sum of dy[:, f], in float64: block f's _REDUCE threads each sum a
    strided share of the B*Ho*Wo terms, then meet in a shared-memory tree."""
    f = cuda.blockIdx.x
    t = cuda.threadIdx.x
    Ho, Wo = dy.shape[2], dy.shape[3]
    acc = 0.0
    for j in range(t, dy.shape[0] * Ho * Wo, _REDUCE):
        b, oh, ow = _column_place(j, Ho, Wo)
        acc += dy[b, f, oh, ow]
    red = cuda.shared.array(_REDUCE, float64)
    total = block_sum(red, acc)
    if t == 0:
        db[f] = total


@cuda.jit
def _relu_forward(x, y):
    i = cuda.grid(1)
    if i < x.size:
        v = x[i]
        if v <= 0:
            y[i] = 0
        else:
            y[i] = v                                          # NaN propagates, as torch.relu


@cuda.jit
def _relu_backward(dy, y, dx):
    i = cuda.grid(1)
    if i < y.size:
        if y[i] > 0:
            dx[i] = dy[i]
        else:
            dx[i] = 0


@cuda.jit
def _maxpool_forward(x, k, s, y, arg):
    """Max over each k x k window; arg = h*W + w of the winner in its plane. The
    first maximum wins ties, the first NaN wins over any number (the CPU's and
    torch's choices). One thread per element of y."""
    i = cuda.grid(1)
    if i < y.size:
        b, c, oh, ow = nchw_place(i, y.shape[1], y.shape[2], y.shape[3])
        W = x.shape[3]
        h0 = oh * s
        w0 = ow * s
        best = x[b, c, h0, w0]
        where = h0 * W + w0
        for u in range(k):
            for v in range(k):
                val = x[b, c, h0 + u, w0 + v]
                if val > best or (val != val and best == best):
                    best = val
                    where = (h0 + u) * W + w0 + v
        y[b, c, oh, ow] = best
        arg[b, c, oh, ow] = where


@cuda.jit
def _maxpool_backward(dy, arg, dx):
    """dx (B, C, H*W) zero on entry: each window's gradient added to its winner,
    atomically (overlapping windows may share one). A winner index outside the
    plane is skipped rather than written out of bounds. One thread per element of dy."""
    i = cuda.grid(1)
    if i < dy.size:
        b, c, oh, ow = nchw_place(i, dy.shape[1], dy.shape[2], dy.shape[3])
        a = arg[b, c, oh, ow]
        if a >= 0 and a < dx.shape[2]:
            cuda.atomic.add(dx, (b, c, a), dy[b, c, oh, ow])


# ----------------------------------------------------------------------------
# validation


def _float_array(name, a, dtype=None, shape=None, ndim=None):
    """a as a device array (NumPy input copied over), or a ValueError naming what is
    wrong; the checks and messages of kernels/conv.py's _float_array."""
    if not is_device(a):
        a = np.asarray(a)
    found = np.dtype(a.dtype)
    if dtype is None:
        if found not in _FLOATS:
            raise ValueError(f"{name} has dtype {found}, expected float32 or float64")
    elif found != dtype:
        raise ValueError(f"{name} has dtype {found}, expected {np.dtype(dtype)} (the dtype of x); "
                         "all float arrays of one call must share one dtype")
    if ndim is not None and a.ndim != ndim:
        raise ValueError(f"{name} has shape {tuple(a.shape)}, expected {ndim} dimensions")
    if shape is not None and tuple(a.shape) != tuple(shape):
        raise ValueError(f"{name} has shape {tuple(a.shape)}, expected {tuple(shape)}")
    return to_device(a)


def _contiguous(name, a):
    """a, which is about to be reshaped (a device array cannot be reshaped unless C-contiguous)."""
    if not a.is_c_contiguous():
        raise ValueError(f"{name} is a strided view of a device array: pass a C-contiguous device "
                         "array or a NumPy array")
    return a


def _conv_args(x, w, stride, padding):
    """x and w as device arrays, stride, padding and their _geometry: conv2d_forward's and
    conv2d_backward's common checks, in kernels/conv.py's order."""
    x = _float_array("x", x, ndim=4)
    w = _float_array("w", w, x.dtype, ndim=4)
    stride = _positive_int("stride", stride)
    padding = _positive_int("padding", padding, 0)
    return x, w, stride, padding, _geometry(x.shape, w.shape, stride, padding)


def _images_per_chunk(B, per_image):
    """How many images' columns fit in _COLS_BUDGET elements (at least one)."""
    return max(1, min(B, _COLS_BUDGET // max(per_image, 1)))


# ----------------------------------------------------------------------------
# public wrappers


def conv2d_forward(x, w, b, stride=1, padding=0):
    """2D convolution (cross-correlation, as torch's conv2d); wraps ``_im2col``, ``gemm`` and ``_add_bias``.

    Parameters
    ----------
    x : np.ndarray or device array [shape=(B, C, H, W), dtype=float32 or float64]
    w : np.ndarray or device array [shape=(F, C, KH, KW), dtype=x.dtype]
    b : np.ndarray or device array [shape=(F,), dtype=x.dtype]
    stride : int >= 1
    padding : int >= 0
        Zeros added on every side of every plane.

    Returns
    -------
    y : device array [shape=(B, F, Ho, Wo), dtype=x.dtype]
        Ho = (H + 2 padding - KH) // stride + 1, Wo likewise.
    """
    x, w, stride, padding, g = _conv_args(x, w, stride, padding)
    F, C, KH, KW = w.shape
    b = _float_array("b", b, x.dtype, (F,))
    B = x.shape[0]
    y = cuda.device_array((B, F, g.Ho, g.Wo), x.dtype)      # (B, F, Ho, Wo)
    if B == 0:
        return y
    K, L = C * KH * KW, g.Ho * g.Wo
    w2 = _contiguous("w", w).reshape(F, K)                  # (F, C*KH*KW)
    per = _images_per_chunk(B, K * L)
    cols_buf = cuda.device_array(K * per * L, x.dtype)      # (C*KH*KW * images*Ho*Wo,)
    out_buf = cuda.device_array(F * per * L, x.dtype)       # (F * images*Ho*Wo,)
    for b0 in range(0, B, per):
        n = min(per, B - b0) * L
        cols = cols_buf[:K * n].reshape(K, n)               # (C*KH*KW, images*Ho*Wo)
        out = out_buf[:F * n].reshape(F, n)                 # (F, images*Ho*Wo)
        _im2col[blocks(K * n, _THREADS), _THREADS](x, b0, KH, KW, stride, padding, g.Ho, g.Wo, cols)
        gemm(w2, cols, out)
        _add_bias[blocks(F * n, _THREADS), _THREADS](out, b, b0, y)
    return y


def conv2d_backward(dy, x, w, stride=1, padding=0, need_dx=True):
    """Gradients of conv2d_forward; wraps ``_bias_grad``, ``_to_columns``, ``_im2col``, ``gemm``
    and ``_col2im``.

    Parameters
    ----------
    dy : np.ndarray or device array [shape=(B, F, Ho, Wo), dtype=x.dtype]
        Gradient w.r.t. y.
    x, w, stride, padding :
        As given to conv2d_forward.
    need_dx : bool
        False skips dx (a network's first layer, whose input is the data):
        one GEMM and the col2im fewer.

    Returns
    -------
    dx : device array [shape=(B, C, H, W)] or None (need_dx=False)
    dw : device array [shape=(F, C, KH, KW)]
    db : device array [shape=(F,)]
    """
    x, w, stride, padding, g = _conv_args(x, w, stride, padding)
    F, C, KH, KW = w.shape
    B = x.shape[0]
    dy = _float_array("dy", dy, x.dtype, (B, F, g.Ho, g.Wo))
    need_dx = bool(need_dx)
    K, L = C * KH * KW, g.Ho * g.Wo
    w2 = _contiguous("w", w).reshape(F, K)                  # (F, C*KH*KW)
    dx = cuda.device_array(x.shape, x.dtype) if need_dx else None  # (B, C, H, W), every element written
    if B == 0:
        return dx, zeros(w.shape, x.dtype), zeros(F, x.dtype)
    dW2 = cuda.device_array((F, K), x.dtype)                # (F, C*KH*KW)
    db = cuda.device_array(F, x.dtype)                      # (F,)
    _bias_grad[F, _REDUCE](dy, db)
    per = _images_per_chunk(B, max(K, F) * L)
    cols_buf = cuda.device_array(K * per * L, x.dtype)      # columns, then their gradient
    dyc_buf = cuda.device_array(F * per * L, x.dtype)       # dy in the GEMM's layout
    for b0 in range(0, B, per):
        n = min(per, B - b0) * L
        cols = cols_buf[:K * n].reshape(K, n)               # (C*KH*KW, images*Ho*Wo)
        dyc = dyc_buf[:F * n].reshape(F, n)                 # (F, images*Ho*Wo)
        _to_columns[blocks(F * n, _THREADS), _THREADS](dy, b0, dyc)
        _im2col[blocks(K * n, _THREADS), _THREADS](x, b0, KH, KW, stride, padding, g.Ho, g.Wo, cols)
        gemm(dyc, cols, dW2, trans_b=True, beta=0.0 if b0 == 0 else 1.0)  # dW (+)= dy @ cols^T
        if need_dx:
            gemm(w2, dyc, cols, trans_a=True)               # dcols = W^T @ dy, over the spent columns
            _col2im[blocks(C * x.shape[2] * x.shape[3] * (n // L), _THREADS), _THREADS](
                cols, b0, KH, KW, stride, padding, g.Ho, g.Wo, dx)
    return dx, dW2.reshape(w.shape), db


def relu_forward(x):
    """max(x, 0) elementwise (NaN stays NaN); wraps ``_relu_forward``.

    Parameters
    ----------
    x : np.ndarray or C-contiguous device array [any shape, dtype=float32 or float64]

    Returns
    -------
    y : device array [shape=x.shape, dtype=x.dtype]
    """
    x = _contiguous("x", _float_array("x", x))
    y = cuda.device_array(x.shape, x.dtype)
    if x.size:
        _relu_forward[blocks(x.size, _THREADS), _THREADS](x.reshape(x.size), y.reshape(y.size))
    return y


def relu_backward(dy, y):
    """Gradient of relu_forward from its output: dx = dy where y > 0, else 0; wraps ``_relu_backward``.

    Parameters
    ----------
    dy : np.ndarray or C-contiguous device array [shape=y.shape, dtype=y.dtype]
    y : np.ndarray or C-contiguous device array
        The output of relu_forward.

    Returns
    -------
    dx : device array [shape=y.shape, dtype=y.dtype]
    """
    y = _contiguous("y", _float_array("y", y))
    dy = _contiguous("dy", _float_array("dy", dy, y.dtype, y.shape))
    dx = cuda.device_array(y.shape, y.dtype)
    if y.size:
        _relu_backward[blocks(y.size, _THREADS), _THREADS](dy.reshape(dy.size), y.reshape(y.size),
                                                           dx.reshape(dx.size))
    return dx


def maxpool2d_forward(x, kernel=2, stride=2):
    """Max over kernel x kernel windows, no padding, floor mode; wraps ``_maxpool_forward``.

    Parameters
    ----------
    x : np.ndarray or device array [shape=(B, C, H, W), dtype=float32 or float64]
    kernel : int >= 1
    stride : int >= 1

    Returns
    -------
    y : device array [shape=(B, C, Ho, Wo), dtype=x.dtype]
        Ho = (H - kernel) // stride + 1, Wo likewise.
    argmax : device array [shape=(B, C, Ho, Wo), dtype=int64]
        Index h * W + w of each window's maximum within its (H, W) plane (the
        first one on ties), as the CPU kernel and torch's return_indices.
    """
    x = _float_array("x", x, ndim=4)
    kernel = _positive_int("kernel", kernel)
    stride = _positive_int("stride", stride)
    B, C, H, W = x.shape
    if kernel > H or kernel > W:
        raise ValueError(f"pooling kernel {kernel} is larger than x's {H}x{W} planes: "
                         "use a smaller kernel")
    Ho, Wo = conv_output_size(H, kernel, stride, 0), conv_output_size(W, kernel, stride, 0)
    y = cuda.device_array((B, C, Ho, Wo), x.dtype)         # (B, C, Ho, Wo)
    argmax = cuda.device_array((B, C, Ho, Wo), np.int64)   # (B, C, Ho, Wo)
    if y.size:
        _maxpool_forward[blocks(y.size, _THREADS), _THREADS](x, kernel, stride, y, argmax)
    return y, argmax


def maxpool2d_backward(dy, argmax, x_shape):
    """Gradient of maxpool2d_forward; wraps ``_maxpool_backward``.

    Parameters
    ----------
    dy : np.ndarray or device array [shape=(B, C, Ho, Wo), dtype=float32 or float64]
    argmax : np.ndarray or device array [shape=(B, C, Ho, Wo), int]
        From maxpool2d_forward (this one's or the CPU's). A NumPy argmax is
        checked to lie in [0, H*W) as on the CPU; a device one is not (that
        would copy it back), but out-of-range entries are skipped, never written.
    x_shape : tuple (B, C, H, W)
        Shape of the pooled input.

    Returns
    -------
    dx : device array [shape=x_shape, dtype=dy.dtype]
        Each window's gradient at its maximum, zero elsewhere.
    """
    dy = _float_array("dy", dy, ndim=4)
    try:
        x_shape = tuple(int(n) for n in x_shape)
    except TypeError:
        raise ValueError(f"x_shape must be a tuple (B, C, H, W), got {x_shape!r}") from None
    if len(x_shape) != 4 or min(x_shape) < 0 or x_shape[:2] != tuple(dy.shape[:2]):
        raise ValueError(f"x_shape {x_shape} does not match dy of shape {tuple(dy.shape)}: "
                         "expected (B, C, H, W) with dy's B and C")
    if not is_device(argmax):
        argmax = np.asarray(argmax)
    if tuple(argmax.shape) != tuple(dy.shape) or np.dtype(argmax.dtype).kind not in "iu":
        raise ValueError(f"argmax has shape {tuple(argmax.shape)} and dtype {argmax.dtype}, expected "
                         f"{tuple(dy.shape)} integers (the argmax from maxpool2d_forward)")
    B, C, H, W = x_shape
    if not is_device(argmax):
        if argmax.size and (argmax.min() < 0 or argmax.max() >= H * W):
            raise ValueError(f"argmax values must lie in [0, H*W={H * W}), got [{argmax.min()}, "
                             f"{argmax.max()}]: pass the argmax and x shape of one forward")
        argmax = to_device(argmax, np.int64)
    dx = zeros((B, C, H * W), dy.dtype)                     # (B, C, H*W)
    if dy.size:
        _maxpool_backward[blocks(dy.size, _THREADS), _THREADS](dy, argmax, dx)
    return dx.reshape(x_shape)
