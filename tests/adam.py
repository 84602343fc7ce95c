"""A plain Adam loop for the tests that check a model really learns (the trainer has its own, with schedules)."""
import numpy as np


def adam_steps(model, loss, steps, lr):
    """Run ``steps`` Adam steps on every parameter of ``model``; loss(step) runs a forward and backward (the
    gradients are zeroed before it) and may return the loss. Returns what loss returned, step by step."""
    from suite.kernels.optim import adam_update

    params = list(model.parameters())
    m = [np.zeros_like(p.value) for p in params]
    v = [np.zeros_like(p.value) for p in params]
    out = []
    for step in range(steps):
        model.zero_grad()
        out.append(loss(step))
        for p, mi, vi in zip(params, m, v):
            adam_update(p.value, p.grad, mi, vi, step + 1, lr)
    return out
