"""The CUDA Adam and gradient clipping against the CPU kernels, step for step."""
import numpy as np
import pytest

from tests.kernels.cuda.gpu import cuda_or_skip

kc = cuda_or_skip()
from suite.kernels import optim as cpu  # noqa: E402
from suite.kernels.cuda.optim import adam_update, clip_grad_norm  # noqa: E402

SHAPES = [(3, 4), (2, 3, 2), (5,), (19,)]  # 19: several simulator blocks of 8, the last partial
TOL = {np.float64: dict(rtol=1e-13, atol=1e-15),
       # the CPU's fastmath reassociates the float32 moment updates, e.g. (1 - beta2) * (g * g):
       # a few ulp of g * g apart (measured 2.5e-7 on v after 5 steps; the device is the closer
       # of the two to a float64 run)
       np.float32: dict(rtol=1e-5, atol=5e-7)}


def _arrays(dtype, seed):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(s).astype(dtype) for s in SHAPES]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("weight_decay", [0.0, 0.05])
def test_adam_matches_cpu_over_steps(dtype, weight_decay):
    params = _arrays(dtype, 0)
    ms = [np.zeros_like(p) for p in params]
    vs = [np.zeros_like(p) for p in params]
    dev = [tuple(kc.to_device(a.copy()) for a in pmv) for pmv in zip(params, ms, vs)]
    hp = dict(lr=0.01, beta1=0.8, beta2=0.99, eps=1e-7, weight_decay=weight_decay)
    for step in range(1, 6):
        for i, g in enumerate(_arrays(dtype, 100 + step)):
            cpu.adam_update(params[i], g, ms[i], vs[i], step, **hp)
            grad = kc.to_device(g) if i % 2 else g  # NumPy and device gradients both work
            adam_update(dev[i][0], grad, dev[i][1], dev[i][2], step, **hp)
    for (p, m, v), want in zip(dev, zip(params, ms, vs)):
        for name, got, w in zip("pmv", (p, m, v), want):
            got = kc.to_host(got)
            assert got.dtype == dtype
            np.testing.assert_allclose(got, w, err_msg=name, **TOL[dtype])


@pytest.mark.parametrize("fraction", [0.3, 0.8, 2.0], ids=["clips", "clips-a-little", "leaves"])
def test_clip_grad_norm_matches_cpu(fraction):
    grads = _arrays(np.float64, 7)
    grads[1] = grads[1].astype(np.float32)  # one list may mix dtypes, as on the CPU
    grads.append(np.zeros((0, 3)))           # and hold empty arrays
    norm0 = np.sqrt(sum(np.sum(np.square(g, dtype=np.float64)) for g in grads))
    max_norm = fraction * norm0              # a factor max_norm / norm of 0.3, 0.8 or none
    dev = [kc.to_device(g.copy()) for g in grads]
    norm = clip_grad_norm(dev, max_norm)
    want = cpu.clip_grad_norm(grads, max_norm)
    assert type(norm) is float and type(want) is float
    assert norm == pytest.approx(want, rel=1e-13) and norm == pytest.approx(norm0, rel=1e-13)
    for g, w in zip(dev, grads):
        got = kc.to_host(g)
        assert got.dtype == w.dtype
        np.testing.assert_allclose(got, w, rtol=1e-6 if w.dtype == np.float32 else 1e-13)
    after = np.sqrt(sum(np.sum(np.square(kc.to_host(g), dtype=np.float64)) for g in dev))
    assert after == pytest.approx(min(max_norm, norm0), rel=1e-5)


def test_clip_grad_norm_of_nothing_is_zero():
    assert clip_grad_norm([], 1.0) == 0.0


def test_adam_rejects_bad_arguments():
    p = kc.to_device(np.zeros((2, 3)))
    m = kc.to_device(np.zeros((2, 3)))
    v = kc.to_device(np.zeros((2, 3)))
    g = np.ones((2, 3))
    for args, match in [
        ((np.zeros((2, 3)), g, m, v, 1), "param must be a device array"),
        ((kc.to_device(np.zeros((2, 3), np.int64)), g, m, v, 1), "param has dtype int64"),
        ((kc.to_device(np.zeros((2, 6)))[:, ::2], g, m, v, 1), "param must be C-contiguous"),
        ((p, np.ones((3, 2)), m, v, 1), r"grad has shape \(3, 2\), expected \(2, 3\)"),
        ((p, np.ones((2, 3), np.float32), m, v, 1), "grad has dtype float32"),
        ((p, g, np.zeros((2, 3)), v, 1), "m must be a device array"),
        ((p, g, m, kc.to_device(np.zeros(6)), 1), r"v has shape \(6,\)"),
        ((p, g, m, kc.to_device(np.zeros((2, 3), np.float32)), 1), "v has dtype float32"),
        ((p, g, m, v, 0), "step is 0"),
    ]:
        with pytest.raises(ValueError, match=match):
            adam_update(*args, lr=0.1)
    with pytest.raises(ValueError, match="betas"):
        adam_update(p, g, m, v, 1, 0.1, beta1=1.0)
    with pytest.raises(ValueError, match="must be >= 0"):
        adam_update(p, g, m, v, 1, -0.1)


def test_clip_grad_norm_rejects_bad_arguments():
    good = kc.to_device(np.ones(3))
    for grads, max_norm, match in [
        ([good, np.ones(3)], 1.0, r"grads\[1\] must be a device array"),
        ([kc.to_device(np.ones(3, np.int32))], 1.0, r"grads\[0\] has dtype int32"),
        ([kc.to_device(np.ones((2, 4)))[:, 1:]], 1.0, r"grads\[0\] must be C-contiguous"),
        ([good], -1.0, "max_norm is -1.0"),
    ]:
        with pytest.raises(ValueError, match=match):
            clip_grad_norm(grads, max_norm)
