"""kernels/cuda/lstm.py against the CPU kernels, the NumPy reference and finite differences.

Tiny shapes: on the simulator every GPU thread is a Python thread, so one
forward and backward here takes about two seconds.
"""
import numpy as np
import pytest

from tests.gradcheck import check_directional
from tests.kernels.cuda.gpu import cuda_or_skip
from tests.reference.lstm import lstm_forward_ref

kc = cuda_or_skip()
import suite.kernels.cuda.lstm as gpu  # noqa: E402
import suite.kernels.lstm as cpu  # noqa: E402

T, B, D, H, P = 4, 3, 2, 3, 2
LENGTHS = np.array([4, 0, 2])  # full, empty and short: reverse rows sit at different time indices

# (peep, proj, cifg)
VARIANTS = {
    "vanilla": (False, False, False),
    "peephole": (True, False, False),
    "cifg": (False, False, True),
    "lstmp": (False, True, False),
    "cifg_peephole_lstmp": (True, True, True),
}


def make_args(variant, dtype, seed=0):
    """Random lstm_forward keyword arguments (NumPy) for one variant."""
    use_peep, use_proj, cifg = VARIANTS[variant]
    rng = np.random.default_rng(seed)
    G = 3 if cifg else 4
    R = P if use_proj else H

    def rand(*shape):
        return (0.5 * rng.standard_normal(shape)).astype(dtype)

    return dict(x=rand(T, B, D), h0=rand(B, R), c0=rand(B, H), W_ih=rand(D, G * H),
                W_hh=rand(R, G * H), b=rand(G * H), peep=rand(3, H) if use_peep else None,
                W_hr=rand(H, P) if use_proj else None, cifg=cifg)


def loss_weights(args, seed=7):
    """dy, dhT, dcT of the loss sum(y * dy) + sum(hT * dhT) + sum(cT * dcT)."""
    rng = np.random.default_rng(seed)
    R, dtype = args["W_hh"].shape[0], args["x"].dtype
    return (rng.standard_normal((T, B, R)).astype(dtype), rng.standard_normal((B, R)).astype(dtype),
            rng.standard_normal((B, H)).astype(dtype))


def host(*arrays):
    return [kc.to_host(a) for a in arrays]


def assert_close(got, want, tol, name):
    assert isinstance(got, np.ndarray) and got.dtype == want.dtype, name
    np.testing.assert_allclose(got, want, rtol=0, atol=tol, err_msg=name)


def compare_with_cpu(variant, reverse, dtype, tol, lengths=LENGTHS):
    """GPU forward and backward against the CPU kernels; returns the GPU results on the host."""
    args = make_args(variant, dtype)
    weights = loss_weights(args)
    y, hT, cT, cache = gpu.lstm_forward(lengths=lengths, reverse=reverse, **args)
    dx, dh0, dc0, grads = gpu.lstm_backward(*weights, cache)
    for a in (y, hT, cT, dx, dh0, dc0, *grads.values()):
        assert kc.is_device(a)  # results stay on the device
    y_c, hT_c, cT_c, cache_c = cpu.lstm_forward(lengths=lengths, reverse=reverse, **args)
    dx_c, dh0_c, dc0_c, grads_c = cpu.lstm_backward(*weights, cache_c)
    out = dict(zip(["y", "hT", "cT", "dx", "dh0", "dc0"], host(y, hT, cT, dx, dh0, dc0)))
    want = dict(y=y_c, hT=hT_c, cT=cT_c, dx=dx_c, dh0=dh0_c, dc0=dc0_c)
    assert set(grads) == set(grads_c)
    for k in grads:
        out["d" + k], want["d" + k] = kc.to_host(grads[k]), grads_c[k]
    for name in want:
        assert_close(out[name], want[name], tol, name)
    return args, out


@pytest.mark.parametrize("reverse", [False, True], ids=["fwd", "rev"])
@pytest.mark.parametrize("variant", ["vanilla", "peephole", "cifg", "lstmp"])
def test_forward_backward_match_cpu_float64(variant, reverse):
    args, out = compare_with_cpu(variant, reverse, np.float64, 1e-10)
    # and the forward against the slow NumPy reference, written from the equations
    y_ref, hT_ref, cT_ref = lstm_forward_ref(lengths=LENGTHS, reverse=reverse, **args)
    np.testing.assert_allclose(out["y"], y_ref, rtol=0, atol=1e-10)
    np.testing.assert_allclose(out["hT"], hT_ref, rtol=0, atol=1e-10)
    np.testing.assert_allclose(out["cT"], cT_ref, rtol=0, atol=1e-10)
    for row, n in enumerate(LENGTHS):
        assert not out["y"][n:, row].any() and not out["dx"][n:, row].any()  # exactly 0 when padded
        if n == 0:  # no step taken: states and their gradients pass through
            np.testing.assert_array_equal(out["hT"][row], args["h0"][row])
            np.testing.assert_array_equal(out["cT"][row], args["c0"][row])
    assert np.abs(out["dW_hh"]).max() > 1e-3  # a real gradient, not zeros on both sides


def test_all_variants_combined_float32():
    """CIFG + peepholes + LSTMP, reverse, in float32: every result stays float32."""
    args, out = compare_with_cpu("cifg_peephole_lstmp", True, np.float32, 1e-5)
    assert not out["dpeep"][1].any()  # CIFG has no forget peephole
    assert set(out) >= {"dpeep", "dW_hr"}


@pytest.mark.parametrize("variant,reverse", [("vanilla", False), ("cifg_peephole_lstmp", True)])
def test_infer_matches_forward(variant, reverse, monkeypatch):
    """Chunks of 3 steps over T = 4: a full chunk and a partial one (reverse: x gathered by step)."""
    monkeypatch.setattr(gpu, "INFER_CHUNK", 3)
    args = make_args(variant, np.float64, seed=1)
    want = host(*gpu.lstm_forward(lengths=LENGTHS, reverse=reverse, **args)[:3])
    got = gpu.lstm_infer(lengths=kc.to_device(LENGTHS), reverse=reverse, **args)
    assert all(kc.is_device(a) for a in got)
    for name, g, w in zip(["y", "hT", "cT"], host(*got), want):
        np.testing.assert_allclose(g, w, rtol=0, atol=1e-14, err_msg=name)  # same GEMM, same cell
    y_ref = lstm_forward_ref(lengths=LENGTHS, reverse=reverse, **args)[0]
    np.testing.assert_allclose(host(got[0])[0], y_ref, rtol=0, atol=1e-10)


def test_gradients_finite_differences():
    """Every gradient at once: one central difference of the GPU forward's loss
    along a random direction of all inputs and weights, packed in one vector."""
    args = make_args("cifg_peephole_lstmp", np.float64, seed=2)
    names = ["x", "h0", "c0", "W_ih", "W_hh", "b", "peep", "W_hr"]
    theta = np.concatenate([args[k].ravel() for k in names])  # (N,) float64
    views, start = {}, 0
    for k in names:  # the arguments become views into theta, so perturbing theta moves them
        views[k] = theta[start:start + args[k].size].reshape(args[k].shape)
        start += args[k].size
    wy, wh, wc = loss_weights(args)

    def loss():
        y, hT, cT, _ = gpu.lstm_forward(lengths=LENGTHS, reverse=True, cifg=True, **views)
        y, hT, cT = host(y, hT, cT)
        return np.sum(y * wy) + np.sum(hT * wh) + np.sum(cT * wc)

    _, _, _, cache = gpu.lstm_forward(lengths=LENGTHS, reverse=True, cifg=True, **views)
    dx, dh0, dc0, grads = gpu.lstm_backward(wy, wh, wc, cache)
    analytic = dict(x=dx, h0=dh0, c0=dc0, **grads)
    grad = np.concatenate([kc.to_host(analytic[k]).ravel() for k in names])
    check_directional(loss, theta, grad, np.random.default_rng(0), "all inputs", rtol=1e-7)


def test_device_inputs_none_gradients_and_full_lengths():
    """Device arrays in (dhT too); None for the default lengths (all T) and for dy, dcT."""
    args = make_args("peephole", np.float64, seed=3)
    dev = {k: kc.to_device(v) if isinstance(v, np.ndarray) else v for k, v in args.items()}
    wy, wh, wc = loss_weights(args)
    y, hT, cT, cache = gpu.lstm_forward(lengths=None, **dev)
    dx, dh0, dc0, grads = gpu.lstm_backward(None, kc.to_device(wh), None, cache)
    y_c, hT_c, cT_c, cache_c = cpu.lstm_forward(lengths=None, **args)
    dx_c, dh0_c, dc0_c, grads_c = cpu.lstm_backward(None, wh, None, cache_c)
    for name, g, w in zip(["y", "hT", "cT", "dx", "dh0", "dc0"], host(y, hT, cT, dx, dh0, dc0),
                          [y_c, hT_c, cT_c, dx_c, dh0_c, dc0_c]):
        assert_close(g, w, 1e-10, name)
    for k in grads_c:
        assert_close(kc.to_host(grads[k]), grads_c[k], 1e-10, k)
    # the input state is copied, not written: the device h0 still holds h0
    np.testing.assert_array_equal(kc.to_host(dev["h0"]), args["h0"])


def test_no_steps():
    """T = 0: the initial states come back; their gradients pass through; weights get zeros."""
    args = make_args("lstmp", np.float64)
    args["x"] = np.zeros((0, B, D))
    y, hT, cT, cache = gpu.lstm_forward(lengths=np.zeros(B, int), **args)
    assert kc.to_host(y).shape == (0, B, P)
    np.testing.assert_array_equal(kc.to_host(hT), args["h0"])
    np.testing.assert_array_equal(kc.to_host(cT), args["c0"])
    dhT, dcT = np.ones((B, P)), np.full((B, H), 2.0)
    _, dh0, dc0, grads = gpu.lstm_backward(None, dhT, dcT, cache)
    np.testing.assert_array_equal(kc.to_host(dh0), dhT)
    np.testing.assert_array_equal(kc.to_host(dc0), dcT)
    assert not any(kc.to_host(g).any() for g in grads.values())


def test_bad_inputs_raise_value_error():
    args = make_args("vanilla", np.float64)
    with pytest.raises(ValueError, match=r"W_hh has shape \(2, 12\), expected \(3, 12\)"):
        gpu.lstm_forward(lengths=None, **dict(args, W_hh=np.zeros((2, 12))))
    with pytest.raises(ValueError, match=r"W_ih has shape \(2, 10\), expected \(2, 4\*H\)"):
        gpu.lstm_infer(lengths=None, **dict(args, W_ih=np.zeros((2, 10))))
    with pytest.raises(ValueError, match="h0 has dtype float32, expected float64"):
        gpu.lstm_forward(lengths=None, **dict(args, h0=args["h0"].astype(np.float32)))
    with pytest.raises(ValueError, match=r"c0 has shape \(3, 2\), expected \(3, 3\)"):
        gpu.lstm_forward(lengths=None, **dict(args, c0=kc.to_device(np.zeros((3, 2)))))
    with pytest.raises(ValueError, match=r"lengths must lie in \[0, T=4\]"):
        gpu.lstm_forward(lengths=np.array([5, 1, 1]), **args)
    with pytest.raises(ValueError, match="x has dtype int64"):
        gpu.lstm_forward(lengths=None, **dict(args, x=np.zeros((T, B, D), np.int64)))
    with pytest.raises(ValueError, match="cache must be the LSTMCache"):
        gpu.lstm_backward(None, None, None, cpu.lstm_forward(lengths=None, **args)[3])
