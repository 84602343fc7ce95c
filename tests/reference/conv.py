"""Slow, obvious NumPy versions of kernels/conv.py: nested loops over every
output element, float64 throughout, written from the definitions (no im2col)."""
import numpy as np


def conv2d_ref(x, w, b, stride=1, padding=0):
    """y[b, f, i, j] = b[f] + sum_{c,u,v} w[f, c, u, v] * xpad[b, c, i*s + u, j*s + v]."""
    x, w, b = (np.asarray(a, np.float64) for a in (x, w, b))
    B, C, H, W = x.shape
    F, _, KH, KW = w.shape
    xp = np.zeros((B, C, H + 2 * padding, W + 2 * padding))
    xp[:, :, padding:padding + H, padding:padding + W] = x
    Ho = (H + 2 * padding - KH) // stride + 1
    Wo = (W + 2 * padding - KW) // stride + 1
    y = np.zeros((B, F, Ho, Wo))
    for n in range(B):
        for f in range(F):
            for i in range(Ho):
                for j in range(Wo):
                    total = b[f]
                    for c in range(C):
                        for u in range(KH):
                            for v in range(KW):
                                total += w[f, c, u, v] * xp[n, c, i * stride + u, j * stride + v]
                    y[n, f, i, j] = total
    return y


def relu_ref(x):
    x = np.asarray(x, np.float64)
    return np.where(x > 0, x, 0.0)


def maxpool2d_ref(x, kernel=2, stride=2):
    """(y, argmax): each window's maximum and its flat index h*W + w in the
    plane; the first maximum in row-major order on ties."""
    x = np.asarray(x, np.float64)
    B, C, H, W = x.shape
    Ho = (H - kernel) // stride + 1
    Wo = (W - kernel) // stride + 1
    y = np.zeros((B, C, Ho, Wo))
    arg = np.zeros((B, C, Ho, Wo), np.int64)
    for n in range(B):
        for c in range(C):
            for i in range(Ho):
                for j in range(Wo):
                    best, where = -np.inf, -1
                    for u in range(kernel):
                        for v in range(kernel):
                            h, w_ = i * stride + u, j * stride + v
                            if where < 0 or x[n, c, h, w_] > best:
                                best, where = x[n, c, h, w_], h * W + w_
                    y[n, c, i, j] = best
                    arg[n, c, i, j] = where
    return y, arg
