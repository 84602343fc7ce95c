"""Optimiser updates on the device, in place: the twins of kernels/optim.py's Adam and clipping.

Same semantics as the CPU (torch.optim.Adam/AdamW, torch.nn.utils.clip_grad_norm_):
the scalars that depend only on the step (bias corrections, the weight decay
factor, 1 - beta) are computed once in Python, in float64, then cast to the
parameter's dtype exactly as the CPU casts them, so the element loop is the
same arithmetic. Kernels see the flat view of each contiguous array: one
launch per parameter, one thread per element.

clip_grad_norm sums the squares in float64 on the device (grid-stride
threads, a shared-memory tree in each block, one partial per block, then one
block summing the partials) and brings back a single float: the norm the
caller gets, and the one host sync the clipping decision needs.
"""
import math

import numpy as np
from numba import float64

from suite.kernels.cuda import blocks, cuda, is_device, simulated, to_device, zeros
from suite.kernels.cuda.reduce import block_sum

THREADS = 8 if simulated() else 256
"""Threads a block (a power of two, for the reduction). The simulator runs each
thread as a Python thread; 8 there still spreads test arrays over several blocks."""

MAX_BLOCKS = 4 if simulated() else 256
"""Blocks of clip_grad_norm's reduction, at most: grid-stride loops cover the rest."""

_FLOATS = (np.float32, np.float64)


# ----------------------------------------------------------------------------
# compiled kernels


@cuda.jit
def _adam(param, grad, m, v, step_size, bias2_sqrt, beta1, one_minus_beta1, beta2, one_minus_beta2, eps, decay):
    k = cuda.grid(1)
    if k < param.size:
        g = grad[k]
        mk = beta1 * m[k] + one_minus_beta1 * g
        vk = beta2 * v[k] + one_minus_beta2 * g * g
        m[k] = mk
        v[k] = vk
        # AdamW decays the weight before the Adam step, independently of the gradient.
        p = param[k] * decay
        param[k] = p - step_size * mk / (math.sqrt(vk) / bias2_sqrt + eps)


@cuda.jit
def _sum_squares(x, partials, row):
    """partials[row, block] = this block's share of sum x**2, in float64."""
    red = cuda.shared.array(THREADS, float64)
    acc = float64(0.0)
    for k in range(cuda.grid(1), x.size, cuda.gridsize(1)):
        xk = float64(x[k])  # square in float64 too: float32 squares lose ~1e-8
        acc += xk * xk
    total = block_sum(red, acc)
    if cuda.threadIdx.x == 0:
        partials[row, cuda.blockIdx.x] = total


@cuda.jit
def _sum_all(partials, out):
    """out[0] = sum of partials (flat), by one block."""
    red = cuda.shared.array(THREADS, float64)
    acc = float64(0.0)
    for k in range(cuda.threadIdx.x, partials.size, THREADS):
        acc += partials[k]
    total = block_sum(red, acc)
    if cuda.threadIdx.x == 0:
        out[0] = total


@cuda.jit
def _scale(x, c):
    k = cuda.grid(1)
    if k < x.size:
        x[k] *= c


# ----------------------------------------------------------------------------
# validation


def _contiguous(a):
    return a.is_c_contiguous() if callable(getattr(a, "is_c_contiguous", None)) else a.flags.c_contiguous


def _in_place(name, a, what):
    """a, checked to be a C-contiguous float device array: a kernel changes it in place
    (``what`` says how, in the messages)."""
    if not is_device(a):
        raise ValueError(f"{name} must be a device array (to_device), got {type(a).__name__}: "
                         f"it is {what} in place")
    if np.dtype(a.dtype) not in _FLOATS:
        raise ValueError(f"{name} has dtype {a.dtype}, expected float32 or float64")
    if not _contiguous(a):
        raise ValueError(f"{name} must be C-contiguous: it is {what} in place")
    return a


def _flat_param(param):
    return _in_place("param", param, "updated").reshape(param.size)


def _flat_state(name, a, ref):
    """Flat view of a device array updated in place: must match ref and be C-contiguous."""
    if not is_device(a):
        raise ValueError(f"{name} must be a device array (to_device), got {type(a).__name__}: "
                         "it is updated in place")
    if tuple(a.shape) != tuple(ref.shape):
        raise ValueError(f"{name} has shape {tuple(a.shape)}, expected {tuple(ref.shape)} (the shape of param)")
    if np.dtype(a.dtype) != np.dtype(ref.dtype):
        raise ValueError(f"{name} has dtype {a.dtype}, expected {ref.dtype} (the dtype of param)")
    if not _contiguous(a):
        raise ValueError(f"{name} must be C-contiguous: it is updated in place")
    return a.reshape(a.size)


def _flat_grad(grad, param):
    grad = grad if is_device(grad) else np.asarray(grad)
    if tuple(grad.shape) != tuple(param.shape):
        raise ValueError(f"grad has shape {tuple(grad.shape)}, expected {tuple(param.shape)} (the shape of param)")
    if np.dtype(grad.dtype) != np.dtype(param.dtype):
        raise ValueError(f"grad has dtype {grad.dtype}, expected {param.dtype} (the dtype of param)")
    if is_device(grad) and not _contiguous(grad):
        raise ValueError("grad must be C-contiguous when on the device")
    grad = to_device(grad)
    return grad.reshape(grad.size)


# ----------------------------------------------------------------------------
# public wrappers


def adam_update(param, grad, m, v, step, lr, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.0):
    """One Adam step in place on the device (AdamW when weight_decay > 0); wraps ``_adam``.

    Parameters
    ----------
    param : device array [any shape, dtype=float32 or float64, C-contiguous]
        Updated in place.
    grad : np.ndarray or device array [shape=param.shape, dtype=param.dtype]
    m, v : device array [shape=param.shape, dtype=param.dtype, C-contiguous]
        First and second moment estimates, zeros before step 1; updated in place.
    step : int
        1-based step number, for the bias corrections 1 - beta**step.
    lr, beta1, beta2, eps : float
    weight_decay : float
        Decoupled (AdamW, Loshchilov & Hutter 2019): param *= 1 - lr * weight_decay
        before the Adam step; the gradient is not touched.
    """
    p = _flat_param(param)
    g = _flat_grad(grad, param)
    mf = _flat_state("m", m, param)
    vf = _flat_state("v", v, param)
    if int(step) != step or step < 1:
        raise ValueError(f"step is {step}, expected an integer >= 1 (it is 1-based)")
    if not (0.0 <= beta1 < 1.0 and 0.0 <= beta2 < 1.0):
        raise ValueError(f"betas ({beta1}, {beta2}) must lie in [0, 1)")
    if lr < 0 or eps < 0 or weight_decay < 0:
        raise ValueError(f"lr={lr}, eps={eps}, weight_decay={weight_decay} must be >= 0")
    if p.size == 0:
        return
    dt = np.dtype(param.dtype).type
    step_size = lr / (1.0 - beta1 ** step)
    bias2_sqrt = math.sqrt(1.0 - beta2 ** step)
    decay = 1.0 - lr * weight_decay
    # 1 - beta in the dtype, as the CPU loop computes it (one - beta1 with both cast first)
    _adam[blocks(p.size, THREADS), THREADS](
        p, g, mf, vf, dt(step_size), dt(bias2_sqrt), dt(beta1), dt(1.0) - dt(beta1),
        dt(beta2), dt(1.0) - dt(beta2), dt(eps), dt(decay))


def clip_grad_norm(grads, max_norm):
    """Clip a list of device gradients by their global L2 norm, in place; wraps ``_sum_squares``.

    torch.nn.utils.clip_grad_norm_ semantics: every grad is multiplied by
    max_norm / (norm + 1e-6) when that factor is below 1.

    Parameters
    ----------
    grads : list of device arrays [any shapes, float32 or float64, C-contiguous]
    max_norm : float

    Returns
    -------
    float
        The global norm before clipping (squares summed in float64), as a Python float.
    """
    if max_norm < 0:
        raise ValueError(f"max_norm is {max_norm}, expected >= 0")
    flats = []
    for i, g in enumerate(grads):
        _in_place(f"grads[{i}]", g, "scaled")
        if g.size:
            flats.append(g.reshape(g.size))
    if not flats:
        return 0.0
    partials = zeros((len(flats), MAX_BLOCKS), np.float64)  # (R, MAX_BLOCKS) one per block
    for row, f in enumerate(flats):
        _sum_squares[min(blocks(f.size, THREADS), MAX_BLOCKS), THREADS](f, partials, row)
    out = cuda.device_array(1, np.float64)
    _sum_all[1, THREADS](partials.reshape(partials.size), out)
    total = math.sqrt(float(out.copy_to_host()[0]))
    coef = max_norm / (total + 1e-6)
    if coef < 1.0:
        for f in flats:
            _scale[blocks(f.size, THREADS), THREADS](f, np.dtype(f.dtype).type(coef))
    return total
