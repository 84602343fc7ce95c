"""Slow, obvious NumPy versions of kernels/optim.py (float64, returning new arrays)."""
import numpy as np


def adam_ref(param, grad, m, v, step, lr, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.0):
    """One Adam/AdamW step as in the paper, with decoupled weight decay: (param, m, v)."""
    p = np.asarray(param, dtype=np.float64) * (1.0 - lr * weight_decay)
    g = np.asarray(grad, dtype=np.float64)
    m = beta1 * m + (1 - beta1) * g
    v = beta2 * v + (1 - beta2) * g * g
    m_hat = m / (1 - beta1 ** step)
    v_hat = v / (1 - beta2 ** step)
    return p - lr * m_hat / (np.sqrt(v_hat) + eps), m, v


def sgd_ref(param, grad, velocity, lr, momentum=0.9, nesterov=False, weight_decay=0.0):
    """One SGD step with (Nesterov) momentum and L2 weight decay: (param, velocity)."""
    g = np.asarray(grad, dtype=np.float64) + weight_decay * param
    if momentum:
        velocity = momentum * velocity + g
        g = g + momentum * velocity if nesterov else velocity
    return param - lr * g, velocity


def clip_ref(grads, max_norm):
    """(norm, clipped grads)."""
    norm = np.sqrt(sum(float(np.sum(np.asarray(g, dtype=np.float64) ** 2)) for g in grads))
    coef = min(1.0, max_norm / (norm + 1e-6))
    return norm, [np.asarray(g, dtype=np.float64) * coef for g in grads]
