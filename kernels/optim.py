"""Optimiser updates, in place, on parameters of any shape.

The kernels see the flat contiguous view of each array, so one compiled loop
serves every parameter shape. Semantics follow torch.optim (Adam, AdamW, SGD)
and torch.nn.utils.clip_grad_norm_ so that training runs can be compared with
PyTorch step for step. Scalars that depend only on the step (bias corrections)
are computed once in Python, in float64, as torch does.
"""
import math

import numpy as np
from numba import njit

from suite.kernels.config import JIT

_FLOATS = (np.float32, np.float64)


@njit(**JIT)
def _adam(param, grad, m, v, step_size, bias2_sqrt, beta1, beta2, eps, decay):
    one = param.dtype.type(1.0)
    for k in range(param.size):
        g = grad[k]
        mk = beta1 * m[k] + (one - beta1) * g
        vk = beta2 * v[k] + (one - beta2) * g * g
        m[k] = mk
        v[k] = vk
        # AdamW decays the weight before the Adam step, independently of the gradient.
        p = param[k] * decay
        param[k] = p - step_size * mk / (np.sqrt(vk) / bias2_sqrt + eps)


@njit(**JIT)
def _sgd(param, grad, velocity, lr, momentum, nesterov, weight_decay):
    for k in range(param.size):
        g = grad[k] + weight_decay * param[k]
        if momentum != 0.0:
            buf = momentum * velocity[k] + g
            velocity[k] = buf
            g = g + momentum * buf if nesterov else buf
        param[k] -= lr * g


@njit(**JIT)
def _sum_squares(x):
    s = 0.0
    for k in range(x.size):
        xk = np.float64(x[k])  # square in float64 too: float32 squares lose ~1e-8
        s += xk * xk
    return s


@njit(**JIT)
def _scale(x, c):
    for k in range(x.size):
        x[k] *= c


def _flat_state(name, a, ref):
    """Flat view of an array updated in place: must match ref and be C-contiguous."""
    if not isinstance(a, np.ndarray):
        raise ValueError(f"{name} must be a numpy array, got {type(a).__name__}")
    if a.shape != ref.shape:
        raise ValueError(f"{name} has shape {a.shape}, expected {ref.shape} (the shape of param)")
    if a.dtype != ref.dtype:
        raise ValueError(f"{name} has dtype {a.dtype}, expected {ref.dtype} (the dtype of param)")
    if not a.flags.c_contiguous:
        raise ValueError(f"{name} must be C-contiguous: it is updated in place")
    return a.reshape(-1)


def _flat_param(param):
    if not isinstance(param, np.ndarray):
        raise ValueError(f"param must be a numpy array, got {type(param).__name__}")
    if param.dtype not in _FLOATS:
        raise ValueError(f"param has dtype {param.dtype}, expected float32 or float64")
    if not param.flags.c_contiguous:
        raise ValueError("param must be C-contiguous: it is updated in place")
    return param.reshape(-1)


def _flat_grad(grad, param):
    grad = np.asarray(grad)
    if grad.shape != param.shape:
        raise ValueError(f"grad has shape {grad.shape}, expected {param.shape} (the shape of param)")
    if grad.dtype != param.dtype:
        raise ValueError(f"grad has dtype {grad.dtype}, expected {param.dtype} (the dtype of param)")
    return np.ascontiguousarray(grad).reshape(-1)


def adam_update(param, grad, m, v, step, lr, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.0):
    """One Adam step in place (AdamW when weight_decay > 0); wraps ``_adam``.

    Parameters
    ----------
    param : np.ndarray [any shape, dtype=float32 or float64, C-contiguous]
        Updated in place.
    grad : np.ndarray [shape=param.shape, dtype=param.dtype]
    m, v : np.ndarray [shape=param.shape, dtype=param.dtype, C-contiguous]
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
    dt = param.dtype.type
    step_size = lr / (1.0 - beta1 ** step)
    bias2_sqrt = math.sqrt(1.0 - beta2 ** step)
    decay = 1.0 - lr * weight_decay
    _adam(p, g, mf, vf, dt(step_size), dt(bias2_sqrt), dt(beta1), dt(beta2), dt(eps), dt(decay))


def sgd_update(param, grad, velocity, lr, momentum=0.9, nesterov=False, weight_decay=0.0):
    """One SGD step in place, torch.optim.SGD semantics (dampening 0); wraps ``_sgd``.

    g = grad + weight_decay * param; velocity = momentum * velocity + g;
    param -= lr * (g + momentum * velocity if nesterov else velocity).
    With velocity zeros before the first step this equals torch, which starts
    its buffer at g.

    Parameters
    ----------
    param : np.ndarray [any shape, dtype=float32 or float64, C-contiguous]
        Updated in place.
    grad : np.ndarray [shape=param.shape, dtype=param.dtype]
    velocity : np.ndarray [shape=param.shape, dtype=param.dtype, C-contiguous]
        Momentum buffer, updated in place (untouched when momentum == 0).
    lr, momentum, weight_decay : float
    nesterov : bool
    """
    p = _flat_param(param)
    g = _flat_grad(grad, param)
    vel = _flat_state("velocity", velocity, param)
    if lr < 0 or momentum < 0 or weight_decay < 0:
        raise ValueError(f"lr={lr}, momentum={momentum}, weight_decay={weight_decay} must be >= 0")
    if nesterov and momentum == 0:
        raise ValueError("nesterov momentum needs momentum > 0")
    dt = param.dtype.type
    _sgd(p, g, vel, dt(lr), dt(momentum), bool(nesterov), dt(weight_decay))


def clip_grad_norm(grads, max_norm):
    """Clip a list of gradients by their global L2 norm, in place.

    torch.nn.utils.clip_grad_norm_ semantics: every grad is multiplied by
    max_norm / (norm + 1e-6) when that factor is below 1.

    Parameters
    ----------
    grads : list of np.ndarray [any shapes, float32 or float64, C-contiguous]
    max_norm : float

    Returns
    -------
    float
        The global norm before clipping (squares summed in float64).
    """
    if max_norm < 0:
        raise ValueError(f"max_norm is {max_norm}, expected >= 0")
    flats = []
    for i, g in enumerate(grads):
        if not isinstance(g, np.ndarray):
            raise ValueError(f"grads[{i}] must be a numpy array, got {type(g).__name__}")
        if g.dtype not in _FLOATS:
            raise ValueError(f"grads[{i}] has dtype {g.dtype}, expected float32 or float64")
        if not g.flags.c_contiguous:
            raise ValueError(f"grads[{i}] must be C-contiguous: it is scaled in place")
        flats.append(g.reshape(-1))
    total = math.sqrt(sum(_sum_squares(f) for f in flats))
    coef = max_norm / (total + 1e-6)
    if coef < 1.0:
        for f in flats:
            _scale(f, f.dtype.type(coef))
    return total
