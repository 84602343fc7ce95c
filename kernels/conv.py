"""2D convolution, ReLU and max-pooling over NCHW batches, forward and backward.

Convolution is im2col + GEMM, one image at a time: the image is copied into a
zero-padded buffer, unrolled into a (C*KH*KW, columns) matrix that stays in
cache, and one GEMM W (F, C*KH*KW) @ cols gives the image's F output planes;
the per-image working set (590 KB at 16x32x32, 3x3) is what keeps it fast,
where one GEMM over the whole batch streams tens of MB through memory.

Stride 1 uses "wide" columns: the output is computed on a grid of Ho x Wp
(Wp the padded width, Wp - Wo junk columns per output row, dropped when the
planes are copied out). Then row (c, kh, kw) of cols is one contiguous slice
of the flat padded image, starting at c*Hp*Wp + kh*Wp + kw, so im2col is
C*KH*KW long copies instead of C*KH*KW*Ho short ones (with _copy, im2col of
32 images of 16x32x32 went from 2.5 to 0.18 ms: short rows cost their loop
overhead, not their bytes). Other strides gather exact columns (Ho x Wo)
from the padded image.

A 3x3 kernel at stride 1 with few input channels or few filters
(DIRECT_MAX_CHANNELS) skips the columns in the forward: each output row takes its
nine taps from three rows of the padded image in one vectorised pass (_direct3x3),
faster than a GEMM that small. The backward does the same where it measured faster:
dW with one input channel (_direct3x3_dw), dx with up to 16 filters (the direct
convolution of dy with the flipped kernel).

Backward recomputes each image's columns instead of keeping all of them from
the forward (14 to 20 MB at the sizes the caption app uses): the copy is
cheaper than the memory. The junk columns of dy are zero, so they add nothing
to dW, and W^T @ dy is zero there too, so col2im can add whole slices back.

float32 at stride 1 (TAPS) skips the columns altogether: since row (c, kh, kw)
of the wide columns is a slice of the padded image, our own GEMM
(kernels/simd.py, taps_gemm) reads each tap straight from it by its start, and
dW's product (taps_gemm_t) likewise; dx is the stride-1 convolution of dy,
padded, with the kernel flipped. Where the output width is whole tiles (16)
the products go straight into y's and dx's planes (taps_gemm_planes), the
bias as one more tap over a run of ones. The columns, the direct loops and BLAS serve
float64 (the gradient checks), other strides and 9-tap layers.

All loops are single-threaded; batches of CONV_SPLIT_BATCH images or more run as
two halves side by side where BLAS may use two threads (kernels/halves.py). (A
prange over images with a GEMM inside makes OpenBLAS warn that it may hang, and
Numba's OpenMP workers spin after a parallel region, starving BLAS's threads
on two cores: measured 10x slower.)
"""
from typing import NamedTuple

import numpy as np
from numba import njit

from suite.kernels.config import JIT
from suite.kernels.halves import by_halves
from suite.kernels.halves import halves as _batch_halves
from suite.kernels.scratch import pieces
from suite.kernels.simd import taps_gemm, taps_gemm_planes, taps_gemm_t

_FLOATS = (np.float32, np.float64)


class ConvGeometry(NamedTuple):
    """Sizes of one convolution, computed once by the wrapper."""
    Ho: int     # output height
    Wo: int     # output width
    Hp: int     # padded input height
    Wp: int     # padded input width
    Wq: int     # columns per output row in cols: Wp (stride 1, wide) or Wo


# ----------------------------------------------------------------------------
# compiled kernels


@njit(**JIT)
def _copy(dst, src):
    """dst[:] = src for 1D views. Row copies go through this small function
    rather than a loop inlined in a 2D loop nest: LLVM vectorises it only here
    (measured 8x faster for im2col rows)."""
    for j in range(src.size):
        dst[j] = src[j]


@njit(**JIT)
def _copy_plus(dst, src, c):
    """dst[:] = src + c for 1D views."""
    for j in range(src.size):
        dst[j] = src[j] + c


@njit(**JIT)
def _add(dst, src):
    """dst += src for 1D views."""
    for j in range(src.size):
        dst[j] += src[j]


@njit(**JIT)
def _pad_into(xb, p, Hp, Wp, xp):
    """Copy one image (C, H, W) into the interior of the flat padded buffer xp.

    The border of xp is zero on entry and never written, so it stays zero."""
    C, H, W = xb.shape
    for c in range(C):
        for h in range(H):
            base = c * Hp * Wp + (h + p) * Wp + p
            _copy(xp[base:base + W], xb[c, h])


@njit(**JIT)
def _im2col(xp, C, KH, KW, Hp, Wp, s, Ho, Wq, cols):
    """cols[(c*KH + kh)*KW + kw, oh*Wq + ow] = padded x[c, oh*s + kh, ow*s + kw]."""
    for c in range(C):
        for kh in range(KH):
            for kw in range(KW):
                k = (c * KH + kh) * KW + kw
                if s == 1:
                    # wide columns: the whole row is one slice of the flat image
                    start = c * Hp * Wp + kh * Wp + kw
                    _copy(cols[k], xp[start:start + Ho * Wq])
                else:
                    for oh in range(Ho):
                        base = c * Hp * Wp + (oh * s + kh) * Wp + kw
                        for ow in range(Wq):
                            cols[k, oh * Wq + ow] = xp[base + ow * s]


@njit(**JIT)
def _col2im(dcols, C, KH, KW, Hp, Wp, s, Ho, Wq, dxp):
    """The adjoint of _im2col: add every column entry back where it was read."""
    for c in range(C):
        for kh in range(KH):
            for kw in range(KW):
                k = (c * KH + kh) * KW + kw
                if s == 1:
                    start = c * Hp * Wp + kh * Wp + kw
                    _add(dxp[start:start + Ho * Wq], dcols[k])
                else:
                    for oh in range(Ho):
                        base = c * Hp * Wp + (oh * s + kh) * Wp + kw
                        for ow in range(Wq):
                            dxp[base + ow * s] += dcols[k, oh * Wq + ow]


@njit(**JIT)
def _direct3x3(xp, W2, bias, C, Hp, Wp, yb):
    """yb (F, Ho, Wo) = conv(padded image, W) + b for a 3x3 kernel at stride 1, read straight from the flat padded
    image xp: per filter and channel, each output row gets its nine taps from three input rows, one vectorised
    pass (no columns, no GEMM). W2 is W reshaped (F, C*9)."""
    F, Ho, Wo = yb.shape
    for f in range(F):
        for oh in range(Ho):
            yb[f, oh, :] = bias[f]
        for c in range(C):
            k = c * 9
            w00, w01, w02 = W2[f, k], W2[f, k + 1], W2[f, k + 2]
            w10, w11, w12 = W2[f, k + 3], W2[f, k + 4], W2[f, k + 5]
            w20, w21, w22 = W2[f, k + 6], W2[f, k + 7], W2[f, k + 8]
            plane = xp[c * Hp * Wp:(c + 1) * Hp * Wp].reshape((Hp, Wp))
            for oh in range(Ho):
                r0, r1, r2 = plane[oh], plane[oh + 1], plane[oh + 2]
                o = yb[f, oh]
                for j in range(Wo):
                    o[j] += (w00 * r0[j] + w01 * r0[j + 1] + w02 * r0[j + 2]
                             + w10 * r1[j] + w11 * r1[j + 1] + w12 * r1[j + 2]
                             + w20 * r2[j] + w21 * r2[j + 1] + w22 * r2[j + 2])


@njit(**JIT)
def _direct3x3_dw(xp, dyb, C, Hp, Wp, zero, dW2):
    """dW2 (F, C*9) += the 3x3 weight gradient of one image at stride 1, read straight from the flat padded image
    xp and dyb (F, Ho, Wo): nine dot products of the output plane with shifted input rows per filter and channel
    (no columns, no GEMM). zero: 0 of the arrays' dtype, for the accumulators."""
    F, Ho, Wo = dyb.shape
    for f in range(F):
        for c in range(C):
            plane = xp[c * Hp * Wp:(c + 1) * Hp * Wp].reshape((Hp, Wp))
            a00 = a01 = a02 = a10 = a11 = a12 = a20 = a21 = a22 = zero
            for oh in range(Ho):
                d = dyb[f, oh]
                r0, r1, r2 = plane[oh], plane[oh + 1], plane[oh + 2]
                for j in range(Wo):
                    g = d[j]
                    a00 += g * r0[j]
                    a01 += g * r0[j + 1]
                    a02 += g * r0[j + 2]
                    a10 += g * r1[j]
                    a11 += g * r1[j + 1]
                    a12 += g * r1[j + 2]
                    a20 += g * r2[j]
                    a21 += g * r2[j + 1]
                    a22 += g * r2[j + 2]
            k = c * 9
            dW2[f, k] += a00
            dW2[f, k + 1] += a01
            dW2[f, k + 2] += a02
            dW2[f, k + 3] += a10
            dW2[f, k + 4] += a11
            dW2[f, k + 5] += a12
            dW2[f, k + 6] += a20
            dW2[f, k + 7] += a21
            dW2[f, k + 8] += a22


@njit(**JIT)
def _conv_forward(x, W2, bias, KH, KW, s, p, Hp, Wp, Wq, direct, y, xp, cols, out):
    """y = conv(x, W) + b, one image at a time. W2 is W reshaped (F, C*KH*KW). Workspace (_workspace_sizes, cut by
    conv2d_forward from suite.kernels.scratch): xp (C*Hp*Wp + KW-1,) zeros, the padded image (KW - 1 slack: the
    last wide row reads, for junk columns only, past the last plane); cols (C*KH*KW, Ho*Wq); out (F, Ho*Wq).
    direct: a 3x3 kernel at stride 1 read straight from the padded image (_direct3x3; cols and out unused)."""
    B = x.shape[0]
    F = W2.shape[0]
    Ho, Wo = y.shape[2], y.shape[3]
    C = x.shape[1]
    for b in range(B):
        _pad_into(x[b], p, Hp, Wp, xp)
        if direct:
            _direct3x3(xp, W2, bias, C, Hp, Wp, y[b])
            continue
        _im2col(xp, C, KH, KW, Hp, Wp, s, Ho, Wq, cols)
        np.dot(W2, cols, out)
        for f in range(F):
            for oh in range(Ho):
                _copy_plus(y[b, f, oh], out[f, oh * Wq:oh * Wq + Wo], bias[f])


@njit(**JIT)
def _conv_backward(dy, x, W2, KH, KW, s, p, Hp, Wp, Wq, need_dx, direct_dw, WF, zero, dx, dW2, db, xp, dxp, cols,
                   dcols, dyw, dW_b, dyp):
    """Gradients of _conv_forward; dx (if need_dx), dW2, db are written, not accumulated. Workspace
    (_workspace_sizes, cut by conv2d_backward from suite.kernels.scratch): xp zeros, the padded image as in
    forward; dxp its gradient; cols and dcols (C*KH*KW, Ho*Wq); dyw (F, Ho*Wq) zeros, dy with its junk columns
    left 0, empty when no GEMM needs it; dW_b (C*KH*KW, F), one image's dW transposed.
    direct_dw: a 3x3 kernel at stride 1: dW read straight from the padded image (_direct3x3_dw).
    WF (C, F*9), non-empty for a 3x3 kernel at stride 1 with padding <= 2: dx as the direct convolution of dy
    padded by 2 - p (dyp, zeros, (F*(Ho+2(2-p))*(Wo+2(2-p)),)) with the kernel flipped and its channels and filters
    swapped: WF[c, f*9 + kh*3 + kw] = W[f, c, 2-kh, 2-kw]."""
    B, C, H, W = x.shape
    F, K = W2.shape
    Ho, Wo = dy.shape[2], dy.shape[3]
    direct_dx = WF.shape[0] > 0
    gemm = dyw.shape[1] > 0                               # dyw (dy with its junk columns) feeds a GEMM
    W2T = np.ascontiguousarray(W2.T)                      # (C*KH*KW, F)
    no_bias = np.zeros(C, dtype=x.dtype)
    q = 2 - p                                             # dy's padding for the direct dx
    dW2[:] = 0
    for f in range(F):
        db[f] = 0
    for b in range(B):
        for f in range(F):
            acc = 0.0                                     # float64 sum over B*Ho*Wo terms
            for oh in range(Ho):
                row = dy[b, f, oh]
                if gemm:
                    _copy(dyw[f, oh * Wq:oh * Wq + Wo], row)
                for ow in range(Wo):
                    acc += row[ow]
            db[f] += acc
        _pad_into(x[b], p, Hp, Wp, xp)
        if direct_dw:
            _direct3x3_dw(xp, dy[b], C, Hp, Wp, zero, dW2)
        else:
            _im2col(xp, C, KH, KW, Hp, Wp, s, Ho, Wq, cols)
            # dW^T = cols @ dy^T: this orientation measured 0.57-0.88 of dy @ cols^T's time (one and two
            # threads, AVX2 EPYC, 2026-12-07, every conv shape of the apps but K = 9, which goes direct)
            np.dot(cols, dyw.T, dW_b)
            for f in range(F):
                for k in range(K):
                    dW2[f, k] += dW_b[k, f]
        if not need_dx:
            continue
        if direct_dx:
            _pad_into(dy[b], q, Ho + 2 * q, Wo + 2 * q, dyp)
            _direct3x3(dyp, WF, no_bias, F, Ho + 2 * q, Wo + 2 * q, dx[b])
            continue
        np.dot(W2T, dyw, dcols)                           # dcols = W^T @ dy
        dxp[:] = 0
        _col2im(dcols, C, KH, KW, Hp, Wp, s, Ho, Wq, dxp)
        for c in range(C):
            for h in range(H):
                base = c * Hp * Wp + (h + p) * Wp + p
                _copy(dx[b, c, h], dxp[base:base + W])


@njit(**JIT)
def _conv_forward_taps(x, W4, offs, p, Hp, Wp, y, xp, z):
    """y = conv(x, W) + b at stride 1, one image at a time, through our GEMM on the taps (kernels/simd.py): W4 is
    [W reshaped (F, C*KH*KW), b] with zero rows up to F4 (a multiple of 4); offs[k] the flat start in xp of tap k =
    (c, kh, kw), and of the bias's tap, a run of ones past the padded image (_forward_into). Rows of whole tiles
    (Wo a multiple of 16) go straight into y's planes (taps_gemm_planes); others through z (F4, N16) on the wide
    grid of Ho x Wp, each output row copied out."""
    for b in range(x.shape[0]):
        _pad_into(x[b], p, Hp, Wp, xp)
        _taps_into(W4, xp, offs, Wp, z, y[b])


@njit(**JIT)
def _taps_into(W4, src, offs, Wp, z, out):
    """out (M, Ho, Wo) = the first M rows of W4 @ the taps of the flat padded input src (row width Wp): straight
    into out's planes where Wo is whole tiles (taps_gemm_planes), else through z on the wide grid, rows copied."""
    M, Ho, Wo = out.shape
    if Wo % 16 == 0:
        taps_gemm_planes(W4, src, offs, out.reshape(M * Ho * Wo), M, Ho, Wo, Wp)
        return
    taps_gemm(W4, src, offs, z)
    for m in range(M):
        for oh in range(Ho):
            _copy(out[m, oh], z[m, oh * Wp:oh * Wp + Wo])


@njit(**JIT)
def _conv_backward_taps(dy, x, offs, WF4, offs_dx, p, q, Hp, Wp, need_dx, dx, dWT, db, xp, V, dyp, z):
    """Gradients of _conv_forward_taps: db; dWT (K4, F16) += each image's taps @ dy^T (taps_gemm_t; V (Ho*Wp,
    F16) holds dy^T on the wide grid, zeros in the junk rows and the columns past F, on entry); and, if need_dx,
    dx as the stride-1 convolution of dy padded by q = KH - 1 - p (dyp, zeros of F*(Ho+2q)*(Wo+2q) + KW - 1 + 15,
    on entry) with the kernel flipped and its channels and filters swapped (WF4 (C4, F*KH*KW), offs_dx its taps in
    dyp). dWT and db are accumulated; z (C4, N16) is the workspace of dx's product."""
    B = x.shape[0]
    F, Ho, Wo = dy.shape[1], dy.shape[2], dy.shape[3]
    Hq, Wq = Ho + 2 * q, Wo + 2 * q
    for b in range(B):
        for f in range(F):
            acc = 0.0                                     # float64 sum over B*Ho*Wo terms
            for oh in range(Ho):
                row = dy[b, f, oh]
                for ow in range(Wo):
                    v = row[ow]
                    acc += v
                    V[oh * Wp + ow, f] = v
            db[f] += acc
        _pad_into(x[b], p, Hp, Wp, xp)
        taps_gemm_t(xp, offs, V, dWT)
        if need_dx:
            _pad_into(dy[b], q, Hq, Wq, dyp)
            _taps_into(WF4, dyp, offs_dx, Wq, z, dx[b])


@njit(**JIT)
def _relu_forward(x, y):
    for k in range(x.size):
        v = x[k]
        y[k] = 0 if v <= 0 else v                         # NaN propagates, as torch.relu


@njit(**JIT)
def _relu_backward(dy, y, dx):
    for k in range(y.size):
        dx[k] = dy[k] if y[k] > 0 else 0


@njit(**JIT)
def _window_max(xp, top, W, k):
    """(max, index) of the k x k window at flat index top, the careful way: the
    first maximum wins ties, the first NaN wins over any number (torch's choices)."""
    best = xp[top]
    where = top
    for i in range(k):
        for j in range(k):
            v = xp[top + i * W + j]
            if v > best or (v != v and best == best):
                best = v
                where = top + i * W + j
    return best, where


# The pooling loops compare with a plain v > best, which LLVM turns into
# selects, and redo a window with _window_max only when the sum of its values
# is NaN (a NaN, or inf - inf, is in it). Testing for NaN at every comparison
# makes the loop branch on random data: measured 8x slower.


@njit(**JIT)
def _maxpool_plane(xp, W, k, s, Ho, Wo, yp, ap):
    """Pool one flat (H*W,) plane into flat (Ho*Wo,) yp and ap (winner indices)."""
    for oh in range(Ho):
        for ow in range(Wo):
            top = oh * s * W + ow * s
            best = xp[top]
            where = top
            total = xp.dtype.type(0)
            for i in range(k):
                for j in range(k):
                    v = xp[top + i * W + j]
                    total += v
                    if v > best:
                        best = v
                        where = top + i * W + j
            if total != total:
                best, where = _window_max(xp, top, W, k)
            yp[oh * Wo + ow] = best
            ap[oh * Wo + ow] = where


@njit(**JIT)
def _maxpool_forward(x, W, k, s, Ho, Wo, y, arg):
    """Max over each k x k window of every plane; arg holds h*W + w of the winner
    in its plane. x (P, H*W), y and arg (P, Ho*Wo): the B*C planes, flattened."""
    for pl in range(x.shape[0]):
        _maxpool_plane(x[pl], W, k, s, Ho, Wo, y[pl], arg[pl])


@njit(**JIT)
def _maxpool_backward(dy, arg, dx):
    """dx (B, C, H*W) zero on entry; each window's gradient goes to its winner
    (added, because overlapping windows may share one)."""
    B, C, Ho, Wo = dy.shape
    for b in range(B):
        for c in range(C):
            for oh in range(Ho):
                for ow in range(Wo):
                    dx[b, c, arg[b, c, oh, ow]] += dy[b, c, oh, ow]


# ----------------------------------------------------------------------------
# validation


def _float_array(name, a, dtype=None, shape=None, ndim=None):
    """a as a C-contiguous float array, or a ValueError naming what is wrong."""
    a = np.asarray(a)
    if dtype is None:
        if a.dtype not in _FLOATS:
            raise ValueError(f"{name} has dtype {a.dtype}, expected float32 or float64")
    elif a.dtype != dtype:
        raise ValueError(f"{name} has dtype {a.dtype}, expected {np.dtype(dtype)} (the dtype of x); "
                         "all float arrays of one call must share one dtype")
    if ndim is not None and a.ndim != ndim:
        raise ValueError(f"{name} has shape {a.shape}, expected {ndim} dimensions")
    if shape is not None and a.shape != tuple(shape):
        raise ValueError(f"{name} has shape {a.shape}, expected {tuple(shape)}")
    return np.ascontiguousarray(a)


def _positive_int(name, value, minimum=1):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) \
            or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def conv_output_size(size, kernel, stride, padding):
    """Output length along one axis: floor((size + 2*padding - kernel) / stride) + 1."""
    return (size + 2 * padding - kernel) // stride + 1


def _geometry(x_shape, w_shape, stride, padding):
    B, C, H, W = x_shape
    F, Cw, KH, KW = w_shape
    if Cw != C:
        raise ValueError(f"w has shape {tuple(w_shape)}, expected (F, {C}, KH, KW) for x with "
                         f"{C} channels")
    if F == 0 or KH == 0 or KW == 0 or C == 0:
        raise ValueError(f"w has shape {tuple(w_shape)}: F, C, KH and KW must be positive")
    Ho = conv_output_size(H, KH, stride, padding)
    Wo = conv_output_size(W, KW, stride, padding)
    if Ho < 1 or Wo < 1:
        raise ValueError(f"a {KH}x{KW} kernel does not fit in x of {H}x{W} with padding "
                         f"{padding}: use a smaller kernel or more padding")
    Hp, Wp = H + 2 * padding, W + 2 * padding
    return ConvGeometry(Ho, Wo, Hp, Wp, Wp if stride == 1 else Wo)


# ----------------------------------------------------------------------------
# public wrappers


DIRECT_MAX_CHANNELS = 16
"""The forward of a 3x3 kernel at stride 1 reads the padded image directly (_direct3x3) when its input channels
or its filters are at most this many, and goes through columns and a GEMM otherwise (the GEMM's rows are the
filters, its inner dimension C*9: small either way, it runs below its speed). One thread, AVX2 EPYC, 2026-12-07,
the forward alone in turns with the GEMM's (scratch A/Bs, medians of per-turn ratios): 3x64x64 -> 16 0.58-0.66,
5x64x64 -> 24 0.71-0.93, 16x32x32 -> 32 0.90, 32x32x32 -> 16 0.62, handwriting batches 1 x 32 x 800 -> 16 0.65 and
16 x 16 x 400 -> 32 0.82-0.85; but 24x32x32 -> 48 1.14 and 32 x 16 x 400 -> 64 1.12."""
DIRECT_DW_MAX_CHANNELS = 1
"""dW of a 3x3 kernel at stride 1 straight from the padded image (_direct3x3_dw) up to this many input channels.
Forward and backward in turns with the GEMM path (same machine and day): with one input channel 0.80 of the
GEMM path's time against 0.88 with the direct forward alone; with 3 channels 0.91 against 0.87, with 5 1.09
against 0.92, with 16 1.42 against 0.96: nine dot products a filter and channel lose to the GEMM beyond one."""
DIRECT_DX_MAX_FILTERS = 16
"""dx of a 3x3 kernel at stride 1 (padding <= 2) as the direct convolution of dy with the flipped kernel, up to
this many filters (the input channels of that convolution). Same runs: 3 -> 16 0.79 of the GEMM path against
0.87 without it, 1 -> 16 0.76 against 0.88, 16 -> 16 0.87 either way."""


CONV_SPLIT_BATCH = 16
"""conv2d_forward and conv2d_backward run the two halves of the batch side by side (suite.kernels.halves), one
thread each with BLAS on one thread, from CONV_SPLIT_BATCH images, where BLAS may use two threads: the taps' GEMM,
the direct loops and the unrolling run on one core otherwise. Each half writes its rows of y and dx in place
(joining the halves' arrays cost a copy of the whole output). AVX2 EPYC, 2026-12-08, forward and backward, 3x3
padding 1, halves / whole in turns (scratch): 3x64x64 -> 16 B=32 0.90 (1.06-1.16 while the halves' outputs were
joined), 16x32x32 -> 32 B=32 0.79, the handwriting model's 1x32x800 -> 16 and 16x16x400 -> 32 at B=24 0.64 and
0.56."""


def _workspace_sizes(g, C, KH, KW):
    """(padded, K, N) of a convolution's temporaries: the flat padded image's length (C*Hp*Wp plus KW - 1 slack),
    the unrolled columns' rows C*KH*KW and their columns Ho*Wq."""
    return C * g.Hp * g.Wp + KW - 1, C * KH * KW, g.Ho * g.Wq


def _conv_halves(B):
    """Row ranges of the batch to run side by side, or None (CONV_SPLIT_BATCH)."""
    return _batch_halves(B, CONV_SPLIT_BATCH)


TAPS = True
TAPS_MIN = 16
"""float32 convolutions at stride 1 with at least TAPS_MIN taps (C*KH*KW) run through our GEMM on the taps
(kernels/simd.py: no unrolled columns, no BLAS): forward, dW, and dx where the kernel is square and padding < its
size. Others (float64, other strides, one input channel of a 3x3 kernel) keep the columns, the direct loops and
BLAS below. Forward and backward, 3x3 padding 1, taps / before in turns in one process (scratch, AVX2 EPYC,
2026-12-08), one BLAS thread (as the apps run): 3x64x64 -> 16 B=32 0.77, 16x32x32 -> 32 B=32 0.74, 32x16x16 ->
64 0.87, the handwriting model's 16x16x400 -> 32 B=24 0.76, but its first layer 1x32x800 -> 16 (9 taps, no dx)
1.40; two threads (halves then from 16 input channels only): 0.70, 1.00, 1.04, 1.01."""


def _by_taps(dtype, stride, taps):
    return TAPS and dtype == np.float32 and stride == 1 and taps >= TAPS_MIN


def _up(n, m):
    """n rounded up to a multiple of m."""
    return -(-n // m) * m


def _rows_up(a, m):
    """a (R, K) as a C-contiguous (R rounded up to m, K) array, zeros in the added rows."""
    out = np.zeros((_up(a.shape[0], m), a.shape[1]), a.dtype)
    out[:a.shape[0]] = a
    return out


def _tap_starts(C, KH, KW, Hp, Wp, n=None):
    """Flat starts in a padded (C, Hp, Wp) buffer of the taps (c, kh, kw) in that order, padded with 0 to n."""
    starts = (np.arange(C)[:, None, None] * (Hp * Wp) + np.arange(KH)[None, :, None] * Wp
              + np.arange(KW)[None, None, :]).reshape(-1)
    return np.concatenate([starts, np.zeros(n - starts.size, starts.dtype)]) if n else starts


def _backward_taps(dy, x, w, padding, g, need_dx, dx, dW2, db):
    """conv2d_backward through _conv_backward_taps: fills dx (if need_dx), dW2 and db."""
    F, C, KH, KW = w.shape
    K = C * KH * KW
    K4, F16 = _up(K, 4), _up(F, 16)
    q = KH - 1 - padding
    Hq, Wq = g.Ho + 2 * q, g.Wo + 2 * q
    if need_dx:
        WF4 = _rows_up(np.ascontiguousarray(w[:, :, ::-1, ::-1].transpose(1, 0, 2, 3)).reshape(C, F * KH * KW), 4)
        offs_dx = _tap_starts(F, KH, KW, Hq, Wq)
    else:
        WF4, offs_dx = np.zeros((0, 0), x.dtype), np.zeros(0, np.int64)
    padded = _workspace_sizes(g, C, KH, KW)[0] + 15  # the taps' last tiles read up to 15 past the slack
    xp, V, dyp, z, dWT = pieces(x.dtype, (padded,), (g.Ho * g.Wp, F16),
                                (F * Hq * Wq + KW - 1 + 15 if need_dx else 0,),
                                (WF4.shape[0], _up(x.shape[2] * Wq, 16) if need_dx else 0), (K4, F16))
    for a in (xp, V, dyp, dWT):
        a.fill(0)
    db64 = np.zeros(F)
    _conv_backward_taps(dy, x, _tap_starts(C, KH, KW, g.Hp, g.Wp, K4), WF4, offs_dx, padding, q, g.Hp, g.Wp,
                        need_dx, dx, dWT, db64, xp, V, dyp, z)
    dW2[:] = dWT[:K, :F].T
    db[:] = db64


def conv2d_forward(x, w, b, stride=1, padding=0):
    """2D convolution (cross-correlation, as torch's conv2d); wraps ``_conv_forward``.

    Parameters
    ----------
    x : np.ndarray [shape=(B, C, H, W), dtype=float32 or float64]
    w : np.ndarray [shape=(F, C, KH, KW), dtype=x.dtype]
    b : np.ndarray [shape=(F,), dtype=x.dtype]
    stride : int >= 1
    padding : int >= 0
        Zeros added on every side of every plane.

    Returns
    -------
    y : np.ndarray [shape=(B, F, Ho, Wo), dtype=x.dtype]
        Ho = (H + 2 padding - KH) // stride + 1, Wo likewise.
    """
    x = _float_array("x", x, ndim=4)
    w = _float_array("w", w, x.dtype, ndim=4)
    stride = _positive_int("stride", stride)
    padding = _positive_int("padding", padding, 0)
    g = _geometry(x.shape, w.shape, stride, padding)
    F, C, KH, KW = w.shape
    b = _float_array("b", b, x.dtype, (F,))
    y = np.empty((x.shape[0], F, g.Ho, g.Wo), x.dtype)  # (B, F, Ho, Wo)
    halves = _conv_halves(x.shape[0])
    if halves is not None:  # each half writes its rows of y
        by_halves(halves, lambda b0, b1: _forward_into(x[b0:b1], w, b, stride, padding, g, y[b0:b1]))
    elif x.shape[0]:
        _forward_into(x, w, b, stride, padding, g, y)
    return y


def _forward_into(x, w, b, stride, padding, g, y):
    """conv2d_forward of validated arrays into y (B, F, Ho, Wo), B >= 1."""
    F, C, KH, KW = w.shape
    if _by_taps(x.dtype, stride, C * KH * KW):
        padded, K, _ = _workspace_sizes(g, C, KH, KW)
        N16 = _up(g.Ho * g.Wp, 16)
        ones = padded + 15                         # the bias's tap: a run of ones past the image and its slack
        xp, z = pieces(x.dtype, (ones + N16,), (_up(F, 4), N16))
        xp[:ones] = 0
        xp[ones:] = 1
        W4 = _rows_up(np.concatenate([w.reshape(F, K), b[:, None]], axis=1), 4)
        offs = np.append(_tap_starts(C, KH, KW, g.Hp, g.Wp), ones)
        _conv_forward_taps(x, W4, offs, padding, g.Hp, g.Wp, y, xp, z)
        return
    padded, K, N = _workspace_sizes(g, C, KH, KW)
    direct = KH == KW == 3 and stride == 1 and min(C, F) <= DIRECT_MAX_CHANNELS
    if direct:
        K = N = 0  # no columns
    xp, cols, out = pieces(x.dtype, (padded,), (K, N), (F, N))
    xp.fill(0)
    _conv_forward(x, w.reshape(F, C * KH * KW), b, KH, KW, stride, padding, g.Hp, g.Wp,
                  g.Wq, direct, y, xp, cols, out)


def conv2d_backward(dy, x, w, stride=1, padding=0, need_dx=True):
    """Gradients of conv2d_forward; wraps ``_conv_backward``.

    Parameters
    ----------
    dy : np.ndarray [shape=(B, F, Ho, Wo), dtype=x.dtype]
        Gradient w.r.t. y.
    x, w, stride, padding :
        As given to conv2d_forward.
    need_dx : bool
        False skips dx (a network's first layer, whose input is the data):
        one GEMM and the col2im fewer.

    Returns
    -------
    dx : np.ndarray [shape=(B, C, H, W)] or None (need_dx=False)
    dw : np.ndarray [shape=(F, C, KH, KW)]
    db : np.ndarray [shape=(F,)]
    """
    x = _float_array("x", x, ndim=4)
    w = _float_array("w", w, x.dtype, ndim=4)
    stride = _positive_int("stride", stride)
    padding = _positive_int("padding", padding, 0)
    g = _geometry(x.shape, w.shape, stride, padding)
    F, C, KH, KW = w.shape
    B = x.shape[0]
    dy = _float_array("dy", dy, x.dtype, (B, F, g.Ho, g.Wo))
    dx = np.zeros(x.shape if need_dx else (0, 0, 0, 0), x.dtype)  # (B, C, H, W)
    halves = _conv_halves(B)
    if halves is not None:  # each half writes its rows of dx; the weight gradients are summed
        parts = by_halves(halves, lambda b0, b1: _backward_into(dy[b0:b1], x[b0:b1], w, stride, padding, g,
                                                               need_dx, dx[b0:b1] if need_dx else dx))
        dW2, db = parts[0][0] + parts[1][0], parts[0][1] + parts[1][1]
    elif B:
        dW2, db = _backward_into(dy, x, w, stride, padding, g, need_dx, dx)
    else:
        dW2, db = np.zeros((F, C * KH * KW), x.dtype), np.zeros(F, x.dtype)
    return (dx if need_dx else None), dW2.reshape(w.shape), db


def _backward_into(dy, x, w, stride, padding, g, need_dx, dx):
    """conv2d_backward of validated arrays, B >= 1: dx written into dx (if need_dx); returns (dW2 (F, C*KH*KW),
    db)."""
    F, C, KH, KW = w.shape
    dW2 = np.zeros((F, C * KH * KW), x.dtype)  # (F, C*KH*KW)
    db = np.zeros(F, x.dtype)              # (F,)
    if _by_taps(x.dtype, stride, C * KH * KW) and (not need_dx or (KH == KW and padding < KH)):
        _backward_taps(dy, x, w, padding, g, bool(need_dx), dx, dW2, db)
        return dW2, db
    padded, K, N = _workspace_sizes(g, C, KH, KW)
    three = KH == KW == 3 and stride == 1
    direct_dw = three and C <= DIRECT_DW_MAX_CHANNELS
    direct_dx = bool(need_dx) and three and padding <= 2 and F <= DIRECT_DX_MAX_FILTERS
    q = 2 - padding
    WF = (np.ascontiguousarray(w[:, :, ::-1, ::-1].transpose(1, 0, 2, 3)).reshape(C, F * 9) if direct_dx
          else np.zeros((0, 0), x.dtype))
    gemm = not direct_dw or (need_dx and not direct_dx)
    n_cols = 0 if direct_dw else N            # the columns feed dW's GEMM only
    n_dcols = N if need_dx and not direct_dx else 0
    xp, dxp, cols, dcols, dyw, dW_b, dyp = pieces(
        x.dtype, (padded,), (padded if n_dcols else 0,), (K, n_cols), (K, n_dcols), (F, N if gemm else 0),
        (K, F), (F * (g.Ho + 2 * q) * (g.Wo + 2 * q) if direct_dx else 0,))
    xp.fill(0)
    dyw.fill(0)
    dyp.fill(0)
    _conv_backward(dy, x, w.reshape(F, C * KH * KW), KH, KW, stride, padding, g.Hp, g.Wp,
                   g.Wq, bool(need_dx), direct_dw, WF, x.dtype.type(0), dx, dW2, db, xp, dxp, cols, dcols, dyw,
                   dW_b, dyp)
    return dW2, db


def relu_forward(x):
    """max(x, 0) elementwise (NaN stays NaN); wraps ``_relu_forward``.

    Parameters
    ----------
    x : np.ndarray [any shape, dtype=float32 or float64]

    Returns
    -------
    y : np.ndarray [shape=x.shape, dtype=x.dtype]
    """
    x = _float_array("x", x)
    y = np.empty_like(x)
    _relu_forward(x.reshape(-1), y.reshape(-1))
    return y


def relu_backward(dy, y):
    """Gradient of relu_forward from its output: dx = dy where y > 0, else 0.

    Parameters
    ----------
    dy : np.ndarray [shape=y.shape, dtype=y.dtype]
    y : np.ndarray
        The output of relu_forward.

    Returns
    -------
    dx : np.ndarray [shape=y.shape, dtype=y.dtype]
    """
    y = _float_array("y", y)
    dy = _float_array("dy", dy, y.dtype, y.shape)
    dx = np.empty_like(y)
    _relu_backward(dy.reshape(-1), y.reshape(-1), dx.reshape(-1))
    return dx


def maxpool2d_forward(x, kernel=2, stride=2):
    """Max over kernel x kernel windows, no padding, floor mode; wraps ``_maxpool_forward``.

    Parameters
    ----------
    x : np.ndarray [shape=(B, C, H, W), dtype=float32 or float64]
    kernel : int >= 1
    stride : int >= 1

    Returns
    -------
    y : np.ndarray [shape=(B, C, Ho, Wo), dtype=x.dtype]
        Ho = (H - kernel) // stride + 1, Wo likewise.
    argmax : np.ndarray [shape=(B, C, Ho, Wo), dtype=int64]
        Index h * W + w of each window's maximum within its (H, W) plane (the
        first one on ties), as torch's return_indices.
    """
    x = _float_array("x", x, ndim=4)
    kernel = _positive_int("kernel", kernel)
    stride = _positive_int("stride", stride)
    B, C, H, W = x.shape
    if kernel > H or kernel > W:
        raise ValueError(f"pooling kernel {kernel} is larger than x's {H}x{W} planes: "
                         "use a smaller kernel")
    Ho, Wo = conv_output_size(H, kernel, stride, 0), conv_output_size(W, kernel, stride, 0)
    y = np.empty((B, C, Ho, Wo), x.dtype)        # (B, C, Ho, Wo)
    argmax = np.empty((B, C, Ho, Wo), np.int64)  # (B, C, Ho, Wo)
    if B * C:
        _maxpool_forward(x.reshape(B * C, H * W), W, kernel, stride, Ho, Wo,
                         y.reshape(B * C, Ho * Wo), argmax.reshape(B * C, Ho * Wo))
    return y, argmax


def maxpool2d_backward(dy, argmax, x_shape):
    """Gradient of maxpool2d_forward; wraps ``_maxpool_backward``.

    Parameters
    ----------
    dy : np.ndarray [shape=(B, C, Ho, Wo), dtype=float32 or float64]
    argmax : np.ndarray [shape=(B, C, Ho, Wo), int]
        From maxpool2d_forward.
    x_shape : tuple (B, C, H, W)
        Shape of the pooled input.

    Returns
    -------
    dx : np.ndarray [shape=x_shape, dtype=dy.dtype]
        Each window's gradient at its maximum, zero elsewhere.
    """
    dy = _float_array("dy", dy, ndim=4)
    try:
        x_shape = tuple(int(n) for n in x_shape)
    except TypeError:
        raise ValueError(f"x_shape must be a tuple (B, C, H, W), got {x_shape!r}") from None
    if len(x_shape) != 4 or min(x_shape) < 0 or x_shape[:2] != dy.shape[:2]:
        raise ValueError(f"x_shape {x_shape} does not match dy of shape {dy.shape}: "
                         "expected (B, C, H, W) with dy's B and C")
    argmax = np.asarray(argmax)
    if argmax.shape != dy.shape or argmax.dtype.kind not in "iu":
        raise ValueError(f"argmax has shape {argmax.shape} and dtype {argmax.dtype}, expected "
                         f"{dy.shape} integers (the argmax from maxpool2d_forward)")
    B, C, H, W = x_shape
    if argmax.size and (argmax.min() < 0 or argmax.max() >= H * W):
        raise ValueError(f"argmax values must lie in [0, H*W={H * W}), got [{argmax.min()}, "
                         f"{argmax.max()}]: pass the argmax and x shape of one forward")
    argmax = np.ascontiguousarray(argmax, dtype=np.int64)
    dx = np.zeros((B, C, H * W), dy.dtype)  # (B, C, H*W)
    _maxpool_backward(dy, argmax, dx)
    return dx.reshape(x_shape)
