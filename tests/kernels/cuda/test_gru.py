"""kernels/cuda/gru.py against the CPU kernels, the NumPy reference and finite differences.

Tiny shapes: the simulator runs each GPU thread as a Python thread, and every
step launches a GEMM. Row lengths [T, 0, 2] put a full row, an empty row and a
partial one (padding at the end, also in reverse) in every case.
"""
import numpy as np
import pytest

from tests.kernels.cuda.gpu import cuda_or_skip

kc = cuda_or_skip()
from suite.kernels import gru as cpu  # noqa: E402
from suite.kernels.cuda import gru as dev  # noqa: E402
from tests.gradcheck import check_directional  # noqa: E402
from tests.reference.gru import gru_reference, rnn_reference  # noqa: E402

T, B, D, H = 4, 3, 2, 3
LENGTHS = np.array([T, 0, 2])
SHAPES = {
    "gru": lambda: {"W_ih": (D, 3 * H), "W_hh": (H, 3 * H), "b_ih": (3 * H,), "b_hh": (3 * H,)},
    "rnn": lambda: {"W_ih": (D, H), "W_hh": (H, H), "b": (H,)},
}
REFERENCE = {"gru": gru_reference, "rnn": rnn_reference}


def make_case(kind, dtype, seed=0):
    """Random x (T, B, D), h0 (B, H), parameters (gates not saturated), dy (T, B, H), dhT (B, H)."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((T, B, D)).astype(dtype)
    h0 = (0.5 * rng.standard_normal((B, H))).astype(dtype)
    params = {name: (0.5 * rng.standard_normal(shape)).astype(dtype)
              for name, shape in SHAPES[kind]().items()}
    dy = rng.standard_normal((T, B, H)).astype(dtype)  # also at padded steps: they must be ignored
    dhT = rng.standard_normal((B, H)).astype(dtype)
    return x, h0, params, dy, dhT


def fn(kind, what, module=dev):
    return getattr(module, f"{kind}_{what}")


def host(a):
    out = kc.to_host(a)
    assert isinstance(out, np.ndarray)
    return out


def assert_close(got, want, tol, name):
    np.testing.assert_allclose(host(got), want, rtol=0, atol=tol, err_msg=name)


@pytest.mark.parametrize("kind,reverse,dtype", [
    ("gru", False, np.float64), ("gru", True, np.float64),
    ("rnn", False, np.float64), ("rnn", True, np.float64),
    ("gru", True, np.float32), ("rnn", False, np.float32),
])
def test_forward_backward_infer_match_cpu(kind, reverse, dtype):
    tol = 1e-10 if dtype == np.float64 else 1e-5
    x, h0, params, dy, dhT = make_case(kind, dtype)
    y, hT, cache = fn(kind, "forward")(x, LENGTHS, h0, *params.values(), reverse=reverse)
    y_c, hT_c, cache_c = fn(kind, "forward", cpu)(x, LENGTHS, h0, *params.values(), reverse=reverse)
    assert kc.is_device(y) and kc.is_device(hT) and host(y).dtype == dtype
    assert_close(y, y_c, tol, "y")
    assert_close(hT, hT_c, tol, "hT")
    yh = host(y)
    assert np.all(yh[:, 1] == 0) and np.array_equal(host(hT)[1], h0[1])  # len 0: h0 passes through
    assert np.all(yh[2:, 2] == 0) and np.all(yh[:2, 2] != 0)  # padding at the end, also in reverse
    if dtype == np.float64:
        y_r, hT_r = REFERENCE[kind](x, LENGTHS, h0, *params.values(), reverse=reverse)
        assert_close(y, y_r, tol, "y vs reference")
        assert_close(hT, hT_r, tol, "hT vs reference")

    dx, dh0, grads = fn(kind, "backward")(dy, dhT, cache)
    dx_c, dh0_c, grads_c = fn(kind, "backward", cpu)(dy, dhT, cache_c)
    assert set(grads) == set(grads_c)
    assert_close(dx, dx_c, tol, "dx")
    assert_close(dh0, dh0_c, tol, "dh0")
    for name in grads_c:
        assert_close(grads[name], grads_c[name], tol, name)
    dxh = host(dx)
    assert np.all(dxh[:, 1] == 0) and np.all(dxh[2:, 2] == 0)

    y_i, hT_i = fn(kind, "infer")(x, LENGTHS, h0, *params.values(), reverse=reverse)
    assert_close(y_i, yh, tol, "infer y")
    assert_close(hT_i, host(hT), tol, "infer hT")


def test_device_inputs_none_defaults_and_nothing_modified():
    """Device arrays in, dy on the device, dhT None; h0 and the cache survive infer and backward."""
    x, h0, params, dy, _ = make_case("gru", np.float64, seed=1)
    dev_in = [kc.to_device(a) for a in (x, h0, *params.values())]
    y, hT, cache = dev.gru_forward(dev_in[0], None, dev_in[1], *dev_in[2:], reverse=True)
    y_c, hT_c, cache_c = cpu.gru_forward(x, None, h0, *params.values(), reverse=True)
    assert_close(y, y_c, 1e-10, "y")
    y_i, hT_i = dev.gru_infer(*dev_in[:1], None, *dev_in[1:], reverse=True)
    assert_close(hT_i, hT_c, 1e-10, "infer hT")
    np.testing.assert_array_equal(host(dev_in[1]), h0)  # infer works on a copy of h0
    dy_dev = kc.to_device(dy)
    for _ in range(2):  # the cache and dy survive a backward
        dx, dh0, grads = dev.gru_backward(dy_dev, None, cache)
        dx_c, dh0_c, grads_c = cpu.gru_backward(dy, None, cache_c)
        assert_close(dx, dx_c, 1e-10, "dx")
        assert_close(dh0, dh0_c, 1e-10, "dh0")
        assert_close(grads["W_hh"], grads_c["W_hh"], 1e-10, "W_hh")
    np.testing.assert_array_equal(host(dy_dev), dy)
    # default h0 is zeros
    y0, _, _ = dev.rnn_forward(x[:, :, :1].copy(), LENGTHS, None, np.ones((1, 2)), np.eye(2), np.zeros(2))
    y0_c, _, _ = cpu.rnn_forward(x[:, :, :1].copy(), LENGTHS, None, np.ones((1, 2)), np.eye(2), np.zeros(2))
    assert_close(y0, y0_c, 1e-12, "rnn y with h0=None")


def test_all_rows_empty():
    """lengths all 0: no step runs, hT = h0, y and every gradient but dh0 = dhT are zero."""
    x, h0, params, dy, dhT = make_case("rnn", np.float64, seed=2)
    lengths = np.zeros(B, np.int64)
    y, hT, cache = dev.rnn_forward(x, lengths, h0, *params.values(), reverse=True)
    assert not host(y).any()
    np.testing.assert_array_equal(host(hT), h0)
    dx, dh0, grads = dev.rnn_backward(dy, dhT, cache)
    np.testing.assert_array_equal(host(dh0), dhT)
    assert not host(dx).any() and not any(host(g).any() for g in grads.values())


def test_gru_gradients_match_finite_differences():
    """The device backward against directional differences of the device forward, float64, reverse."""
    x, h0, params, R, S = make_case("gru", np.float64, seed=3)
    y, hT, cache = dev.gru_forward(x, LENGTHS, h0, *params.values(), reverse=True)
    dx, dh0, grads = dev.gru_backward(R, S, cache)
    analytic = dict(x=host(dx), h0=host(dh0), **{k: host(v) for k, v in grads.items()})

    def loss():
        y, hT, _ = dev.gru_forward(x, LENGTHS, h0, *params.values(), reverse=True)
        return float(np.sum(host(y) * R) + np.sum(host(hT) * S))

    rng = np.random.default_rng(4)
    for name, array in dict(x=x, W_hh=params["W_hh"], b_hh=params["b_hh"]).items():
        check_directional(loss, array, analytic[name], rng, name, rtol=1e-6)


def test_bad_shapes_and_dtypes_raise():
    x, h0, params, dy, _ = make_case("gru", np.float64)
    p = list(params.values())
    with pytest.raises(ValueError, match=r"W_ih has shape \(3, 9\), expected \(2, 9\)"):
        dev.gru_forward(x, None, h0, np.zeros((3, 9)), *p[1:])
    with pytest.raises(ValueError, match=r"b_hh has shape \(3,\), expected \(9,\)"):
        dev.gru_forward(x, None, h0, *p[:3], np.zeros(3))
    with pytest.raises(ValueError, match="h0 has dtype float32"):
        dev.gru_infer(x, None, kc.to_device(h0.astype(np.float32)), *p)
    with pytest.raises(ValueError, match="x has dtype int64"):
        dev.rnn_forward(np.zeros((T, B, D), np.int64), None, None, np.zeros((D, H)),
                        np.zeros((H, H)), np.zeros(H))
    with pytest.raises(ValueError, match=r"lengths must lie in \[0, 4\]"):
        dev.gru_forward(x, np.array([5, 1, 1]), h0, *p)
    with pytest.raises(ValueError, match="non-contiguous"):
        dev.gru_forward(kc.to_device(np.zeros((T, B, 2 * D)))[:, :, ::2], None, None, *p)
    _, _, cache = dev.gru_forward(x, np.array([1, 0, 1]), h0, *p)
    with pytest.raises(ValueError, match=r"dy has shape \(4, 3, 9\), expected \(4, 3, 3\)"):
        dev.gru_backward(np.zeros((T, B, 3 * H)), None, cache)
