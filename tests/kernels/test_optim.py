import numpy as np
import pytest

from suite.kernels.optim import adam_update, clip_grad_norm, sgd_update
from tests.reference.optim import adam_ref, clip_ref, sgd_ref

SHAPES = [(3, 4), (2, 3, 2), (5,)]


def _params(dtype, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(s).astype(dtype) for s in SHAPES]


def _grads(dtype, step):
    return _params(dtype, seed=100 + step)


@pytest.mark.parametrize("weight_decay", [0.0, 0.05])
def test_adam_matches_reference(weight_decay):
    params = _params(np.float64)
    ms = [np.zeros_like(p) for p in params]
    vs = [np.zeros_like(p) for p in params]
    refs = [(p.copy(), m.copy(), v.copy()) for p, m, v in zip(params, ms, vs)]
    for step in range(1, 6):
        for i, g in enumerate(_grads(np.float64, step)):
            adam_update(params[i], g, ms[i], vs[i], step, 0.01, weight_decay=weight_decay)
            refs[i] = adam_ref(*refs[i][:1], g, *refs[i][1:], step, 0.01, weight_decay=weight_decay)
    for p, m, v, (rp, rm, rv) in zip(params, ms, vs, refs):
        np.testing.assert_allclose(p, rp, rtol=1e-12)
        np.testing.assert_allclose(m, rm, rtol=1e-12)
        np.testing.assert_allclose(v, rv, rtol=1e-12)


@pytest.mark.parametrize("weight_decay", [0.0, 0.05])
def test_adam_matches_torch(weight_decay):
    torch = pytest.importorskip("torch")
    params = _params(np.float32)
    t_params = [torch.tensor(p.copy(), requires_grad=True) for p in params]
    cls = torch.optim.AdamW if weight_decay else torch.optim.Adam
    opt = cls(t_params, lr=0.01, betas=(0.8, 0.99), eps=1e-7, weight_decay=weight_decay)
    ms = [np.zeros_like(p) for p in params]
    vs = [np.zeros_like(p) for p in params]
    for step in range(1, 6):
        grads = _grads(np.float32, step)
        for tp, g in zip(t_params, grads):
            tp.grad = torch.tensor(g)
        opt.step()
        for i, g in enumerate(grads):
            adam_update(params[i], g, ms[i], vs[i], step, 0.01, 0.8, 0.99, 1e-7, weight_decay)
    for p, tp in zip(params, t_params):  # float32 kernel vs float32 torch
        np.testing.assert_allclose(p, tp.detach().numpy(), rtol=1e-6, atol=1e-7)


SGD_CASES = [(0.9, False, 0.0), (0.9, True, 0.0), (0.5, True, 0.01), (0.0, False, 0.01)]


@pytest.mark.parametrize("momentum,nesterov,weight_decay", SGD_CASES)
def test_sgd_matches_reference(momentum, nesterov, weight_decay):
    params = _params(np.float64)
    vels = [np.zeros_like(p) for p in params]
    refs = [(p.copy(), v.copy()) for p, v in zip(params, vels)]
    for step in range(1, 6):
        for i, g in enumerate(_grads(np.float64, step)):
            sgd_update(params[i], g, vels[i], 0.1, momentum, nesterov, weight_decay)
            refs[i] = sgd_ref(refs[i][0], g, refs[i][1], 0.1, momentum, nesterov, weight_decay)
    for p, v, (rp, rv) in zip(params, vels, refs):
        np.testing.assert_allclose(p, rp, rtol=1e-12)
        np.testing.assert_allclose(v, rv, rtol=1e-12)


@pytest.mark.parametrize("momentum,nesterov,weight_decay", SGD_CASES)
def test_sgd_matches_torch(momentum, nesterov, weight_decay):
    torch = pytest.importorskip("torch")
    params = _params(np.float32)
    t_params = [torch.tensor(p.copy(), requires_grad=True) for p in params]
    opt = torch.optim.SGD(t_params, lr=0.1, momentum=momentum, nesterov=nesterov, weight_decay=weight_decay)
    vels = [np.zeros_like(p) for p in params]
    for step in range(1, 6):
        grads = _grads(np.float32, step)
        for tp, g in zip(t_params, grads):
            tp.grad = torch.tensor(g)
        opt.step()
        for i, g in enumerate(grads):
            sgd_update(params[i], g, vels[i], 0.1, momentum, nesterov, weight_decay)
    for p, tp in zip(params, t_params):
        np.testing.assert_allclose(p, tp.detach().numpy(), rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("max_norm", [1.0, 100.0])
def test_clip_grad_norm(max_norm):
    grads = [g * 3 for g in _params(np.float32)]
    norm_ref, clipped_ref = clip_ref(grads, max_norm)
    expected = [g.copy() for g in grads]
    norm = clip_grad_norm(grads, max_norm)
    np.testing.assert_allclose(norm, norm_ref, rtol=1e-12)
    for g, r in zip(grads, clipped_ref):
        np.testing.assert_allclose(g, r, rtol=1e-6)
    torch = pytest.importorskip("torch")
    t_params = [torch.zeros(g.shape, requires_grad=True) for g in expected]
    for tp, g in zip(t_params, expected):
        tp.grad = torch.tensor(g)
    t_norm = torch.nn.utils.clip_grad_norm_(t_params, max_norm)
    np.testing.assert_allclose(norm, t_norm.item(), rtol=1e-6)
    for g, tp in zip(grads, t_params):
        np.testing.assert_allclose(g, tp.grad.numpy(), rtol=1e-6)


def test_grad_may_be_non_contiguous():
    p = np.ones((3, 4))
    g = np.arange(12.0).reshape(3, 4)
    g_strided = np.zeros((3, 8))
    g_strided[:, ::2] = g
    sgd_update(p, g_strided[:, ::2], np.zeros_like(p), 0.5, 0.0)
    np.testing.assert_allclose(p, 1 - 0.5 * g)


def test_bad_args():
    p = np.zeros((3, 4), np.float32)
    z = np.zeros_like(p)
    with pytest.raises(ValueError, match="grad has shape"):
        adam_update(p, np.zeros((4, 3), np.float32), z, z.copy(), 1, 0.1)
    with pytest.raises(ValueError, match="grad has dtype"):
        adam_update(p, np.zeros((3, 4)), z, z.copy(), 1, 0.1)
    with pytest.raises(ValueError, match="m has shape"):
        adam_update(p, z, np.zeros(12, np.float32), z.copy(), 1, 0.1)
    with pytest.raises(ValueError, match="v has dtype"):
        adam_update(p, z, z, np.zeros((3, 4)), 1, 0.1)
    with pytest.raises(ValueError, match="step"):
        adam_update(p, z, z, z.copy(), 0, 0.1)
    with pytest.raises(ValueError, match="C-contiguous"):
        adam_update(np.zeros((4, 3), np.float32).T, z, z, z.copy(), 1, 0.1)
    with pytest.raises(ValueError, match="param has dtype"):
        sgd_update(np.zeros(3, np.int64), np.zeros(3, np.int64), np.zeros(3, np.int64), 0.1)
    with pytest.raises(ValueError, match="velocity has shape"):
        sgd_update(p, z, np.zeros((3, 5), np.float32), 0.1)
    with pytest.raises(ValueError, match="grads\\[1\\] has dtype"):
        clip_grad_norm([p, np.zeros(3, np.int32)], 1.0)
