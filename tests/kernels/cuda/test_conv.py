"""kernels/cuda/conv.py against the CPU kernels (kernels/conv.py), the NumPy reference and finite differences.

Shapes are tiny: the simulator runs every GPU thread as a Python thread.
"""
import numpy as np
import pytest

from tests.kernels.cuda.gpu import cuda_or_skip

kc = cuda_or_skip()
from suite.kernels import conv as cpu  # noqa: E402
from suite.kernels.cuda import conv as gpu  # noqa: E402
from tests.gradcheck import check_gradients  # noqa: E402
from tests.reference.conv import conv2d_ref  # noqa: E402

TOL = {np.float64: 1e-10, np.float32: 1e-5}

# (B, C, H, W, F, KH, KW, stride, padding): non-square planes, odd sizes that
# leave rows no window reaches, overlapping 3x3 windows at stride 2, a
# rectangular kernel. Small C*KH*KW: each 4-deep step of the simulated GEMM
# costs ~20 ms a block.
CONV_CASES = {
    "s1p0": (2, 3, 3, 4, 2, 2, 2, 1, 0),
    "s1p1": (1, 2, 4, 3, 3, 3, 3, 1, 1),
    "s2p0": (2, 1, 5, 6, 3, 3, 3, 2, 0),
    "s2p1": (1, 1, 5, 4, 2, 3, 3, 2, 1),
    "s2p1_rect": (2, 1, 6, 5, 2, 2, 3, 2, 1),
}


def conv_args(case, dtype, seed=0):
    B, C, H, W, F, KH, KW, s, p = CONV_CASES[case]
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((B, C, H, W)).astype(dtype),
            rng.standard_normal((F, C, KH, KW)).astype(dtype),
            rng.standard_normal(F).astype(dtype), s, p)


def host(a):
    """A device result back on the host, after checking it is one."""
    assert kc.is_device(a), f"expected a device array, got {type(a).__name__}"
    return kc.to_host(a)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("case", CONV_CASES)
def test_conv_forward_matches_cpu(case, dtype):
    x, w, b, s, p = conv_args(case, dtype)
    y = host(gpu.conv2d_forward(x, w, b, s, p))
    want = cpu.conv2d_forward(x, w, b, s, p)
    assert y.dtype == dtype and y.shape == want.shape
    np.testing.assert_allclose(y, want, rtol=0, atol=TOL[dtype])


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("case", CONV_CASES)
def test_conv_backward_matches_cpu(case, dtype):
    x, w, b, s, p = conv_args(case, dtype)
    dy = np.random.default_rng(1).standard_normal(cpu.conv2d_forward(x, w, b, s, p).shape).astype(dtype)
    need_dx = case != "s2p0"  # one case without dx is enough: the rest is the same code
    dx, dw, db = gpu.conv2d_backward(dy, x, w, s, p, need_dx=need_dx)
    want_dx, want_dw, want_db = cpu.conv2d_backward(dy, x, w, s, p)
    if need_dx:
        assert host(dx).dtype == dtype
        np.testing.assert_allclose(host(dx), want_dx, rtol=0, atol=TOL[dtype])
    else:
        assert dx is None
    np.testing.assert_allclose(host(dw), want_dw, rtol=0, atol=TOL[dtype])
    np.testing.assert_allclose(host(db), want_db, rtol=0, atol=TOL[dtype])
    assert host(dw).dtype == dtype and host(db).dtype == dtype


def test_conv_forward_matches_numpy_reference():
    x, w, b, s, p = conv_args("s2p1_rect", np.float64, seed=3)
    np.testing.assert_allclose(host(gpu.conv2d_forward(x, w, b, s, p)), conv2d_ref(x, w, b, s, p),
                               rtol=0, atol=1e-12)


def test_conv_gradients_finite_differences():
    x, w, b, s, p = conv_args("s2p1", np.float64)
    R = np.random.default_rng(2).standard_normal(cpu.conv2d_forward(x, w, b, s, p).shape)

    def loss():
        return float(np.sum(host(gpu.conv2d_forward(x, w, b, s, p)) * R))

    dx, dw, db = (host(g) for g in gpu.conv2d_backward(R, x, w, s, p))
    # sampled: every probe is two forwards on the simulator
    check_gradients(loss, dict(x=x, w=w, b=b), dict(x=dx, w=dw, b=db), rtol=1e-7, atol=1e-8,
                    sample=4, rng=4)


def test_conv_in_chunks_of_images(monkeypatch):
    """A column budget of one image: three chunks, dW summed over them, every offset used."""
    x, w, b, s, p = conv_args("s1p0", np.float64)
    x = np.concatenate([x, x[:1] * 0.5])  # B = 3
    dy = np.random.default_rng(5).standard_normal(cpu.conv2d_forward(x, w, b, s, p).shape)
    monkeypatch.setattr(gpu, "_COLS_BUDGET", 1)
    np.testing.assert_allclose(host(gpu.conv2d_forward(x, w, b, s, p)), cpu.conv2d_forward(x, w, b, s, p),
                               rtol=0, atol=1e-12)
    for got, want in zip(gpu.conv2d_backward(dy, x, w, s, p), cpu.conv2d_backward(dy, x, w, s, p)):
        np.testing.assert_allclose(host(got), want, rtol=0, atol=1e-12)


def test_conv_device_inputs_strided_views_and_empty_batch():
    x, w, b, s, p = conv_args("s1p0", np.float32)
    want = cpu.conv2d_forward(x, w, b, s, p)
    big = kc.to_device(np.stack([x, x * 0]))
    y = gpu.conv2d_forward(big[0], kc.to_device(w), kc.to_device(b), s, p)
    np.testing.assert_allclose(host(y), want, rtol=0, atol=1e-5)
    wide = np.zeros(x.shape[:3] + (2 * x.shape[3],), np.float32)
    wide[..., ::2] = x
    y = gpu.conv2d_forward(kc.to_device(wide)[..., ::2], w, b, s, p)  # strided x is read in place
    np.testing.assert_allclose(host(y), want, rtol=0, atol=1e-5)
    y = gpu.conv2d_forward(x[:0], w, b, s, p)
    assert host(y).shape == (0, 2, 2, 3)
    dx, dw, db = gpu.conv2d_backward(y, x[:0], w, s, p)
    assert host(dx).shape == (0, 3, 3, 4) and not host(dw).any() and not host(db).any()


@pytest.mark.parametrize("change,match", [
    (dict(x=np.zeros((2, 3, 4), np.float32)), "x has shape"),
    (dict(x=np.zeros((2, 3, 3, 4), np.int64)), "x has dtype int64"),
    (dict(w=np.zeros((2, 4, 2, 2), np.float32)), r"w has shape .* expected \(F, 3, KH, KW\)"),
    (dict(w=np.zeros((2, 3, 2, 2), np.float64)), "w has dtype float64"),
    (dict(b=np.zeros(4, np.float32)), "b has shape"),
    (dict(b=np.zeros(2, np.float64)), "b has dtype float64"),
    (dict(w=np.zeros((2, 3, 5, 2), np.float32)), "does not fit"),
    (dict(stride=0), "stride must be an integer >= 1"),
    (dict(padding=-1), "padding must be an integer >= 0"),
    (dict(w=kc.to_device(np.zeros((2, 3, 2, 4), np.float32))[..., ::2]), "w is a strided view"),
], ids=lambda v: v if isinstance(v, str) else None)
def test_conv_bad_inputs_raise_value_error(change, match):
    x, w, b, s, p = conv_args("s1p0", np.float32)
    args = dict(x=x, w=w, b=b, stride=s, padding=p)
    args.update(change)
    with pytest.raises(ValueError, match=match):
        gpu.conv2d_forward(**args)


def test_conv_backward_bad_inputs_raise_value_error():
    x, w, b, s, p = conv_args("s1p1", np.float32)
    with pytest.raises(ValueError, match="dy has shape"):
        gpu.conv2d_backward(np.zeros((1, 3, 3, 3), np.float32), x, w, s, p)
    with pytest.raises(ValueError, match="dy has dtype float64"):
        gpu.conv2d_backward(np.zeros((1, 3, 4, 3)), x, w, s, p)


# ---------------------------------------------------------------------------
# ReLU


def test_relu_matches_cpu():
    rng = np.random.default_rng(3)
    for dtype in (np.float32, np.float64):
        x = rng.standard_normal((2, 3, 2, 3)).astype(dtype)
        x[0, 0, 0, :2] = (0.0, np.nan)
        y = host(gpu.relu_forward(kc.to_device(x)))
        assert y.dtype == dtype
        np.testing.assert_array_equal(y, cpu.relu_forward(x))  # NaN in the same place
        assert np.isnan(y[0, 0, 0, 1]) and y[0, 0, 0, 0] == 0
        dy = rng.standard_normal(x.shape).astype(dtype)
        np.testing.assert_array_equal(host(gpu.relu_backward(dy, y)), cpu.relu_backward(dy, y))


def test_relu_bad_inputs_raise_value_error():
    with pytest.raises(ValueError, match="x has dtype int64"):
        gpu.relu_forward(np.zeros(3, np.int64))
    with pytest.raises(ValueError, match="dy has shape"):
        gpu.relu_backward(np.zeros(3, np.float32), np.zeros(4, np.float32))
    with pytest.raises(ValueError, match="dy has dtype float64"):
        gpu.relu_backward(np.zeros(4), np.zeros(4, np.float32))
    with pytest.raises(ValueError, match="x is a strided view"):
        gpu.relu_forward(kc.to_device(np.zeros((2, 4)))[:, ::2])


# ---------------------------------------------------------------------------
# max-pooling

POOL_CASES = [(2, 2, 4, 6), (2, 2, 5, 3), (3, 2, 5, 5), (2, 1, 3, 4)]  # k, s, H, W


@pytest.mark.parametrize("k,s,H,W", POOL_CASES)
def test_maxpool_matches_cpu(k, s, H, W):
    rng = np.random.default_rng(5)
    for dtype in (np.float32, np.float64):
        x = rng.standard_normal((2, 2, H, W)).astype(dtype)
        x[0, 0, :2, :2] = 0.25  # a tied window
        y, arg = (host(a) for a in gpu.maxpool2d_forward(x, k, s))
        want_y, want_arg = cpu.maxpool2d_forward(x, k, s)
        assert y.dtype == dtype and arg.dtype == np.int64
        np.testing.assert_array_equal(y, want_y)
        np.testing.assert_array_equal(arg, want_arg)
        dy = rng.standard_normal(y.shape).astype(dtype)
        want_dx = cpu.maxpool2d_backward(dy, want_arg, x.shape)
        # atomics add overlapping windows' shares in any order: last-bit differences only
        np.testing.assert_allclose(host(gpu.maxpool2d_backward(dy, arg, x.shape)), want_dx,
                                   rtol=0, atol=TOL[dtype])


def test_maxpool_ties_nan_and_inf_like_the_cpu():
    x = np.zeros((1, 2, 4, 4))
    x[0, 0, 2:, 2:] = 1.0                       # a window of equal values
    x[0, 0, 0, 1] = x[0, 0, 1, 0] = 2.0         # a tie between two maxima: the first wins
    x[0, 1, 0, 1] = 5.0
    x[0, 1, 1, 0], x[0, 1, 1, 1] = np.nan, np.nan  # the first NaN wins its window, over 5
    x[0, 1, 0, 3] = np.inf
    x[0, 1, 1, 2] = -np.inf
    x[0, 1, 2, 0], x[0, 1, 3, 1] = -np.inf, np.inf
    y, arg = (host(a) for a in gpu.maxpool2d_forward(x, 2, 2))
    want_y, want_arg = cpu.maxpool2d_forward(x, 2, 2)
    np.testing.assert_array_equal(arg, want_arg)
    np.testing.assert_array_equal(y, want_y)
    assert arg[0, 0].tolist() == [[1, 2], [8, 10]] and arg[0, 1].tolist() == [[4, 3], [13, 10]]
    dx = host(gpu.maxpool2d_backward(np.ones_like(y), arg, x.shape))
    assert dx.sum() == 8 and dx[0, 0, 0, 1] == 1 and dx[0, 0, 1, 0] == 0


def test_maxpool_argmax_interchanges_with_the_cpu():
    """The CPU's argmax drives the GPU backward and the GPU's the CPU backward."""
    rng = np.random.default_rng(6)
    x = rng.standard_normal((1, 2, 4, 5))
    dy = rng.standard_normal((1, 2, 3, 4))
    _, cpu_arg = cpu.maxpool2d_forward(x, 2, 1)
    _, gpu_arg = gpu.maxpool2d_forward(x, 2, 1)
    want = cpu.maxpool2d_backward(dy, cpu_arg, x.shape)
    got = gpu.maxpool2d_backward(kc.to_device(dy), cpu_arg.astype(np.int32), x.shape)
    np.testing.assert_allclose(host(got), want, rtol=0, atol=1e-12)
    np.testing.assert_allclose(cpu.maxpool2d_backward(dy, host(gpu_arg), x.shape), want, rtol=0, atol=1e-12)


def test_maxpool_overlapping_windows_add_up():
    x = np.zeros((1, 1, 3, 3))
    x[0, 0, 1, 1] = 1.0  # the centre wins all four 2x2 windows at stride 1
    y, arg = gpu.maxpool2d_forward(x, 2, 1)
    assert (host(arg) == 4).all()
    dx = host(gpu.maxpool2d_backward(np.full(y.shape, 0.5), arg, x.shape))
    assert dx[0, 0, 1, 1] == 2.0 and dx.sum() == 2.0


def test_maxpool_bad_inputs_raise_value_error():
    x = np.zeros((1, 2, 4, 4), np.float32)
    with pytest.raises(ValueError, match="x has shape"):
        gpu.maxpool2d_forward(np.zeros((2, 4, 4), np.float32))
    with pytest.raises(ValueError, match="larger than"):
        gpu.maxpool2d_forward(x, 5, 1)
    with pytest.raises(ValueError, match="kernel must be"):
        gpu.maxpool2d_forward(x, 0, 1)
    with pytest.raises(ValueError, match="stride must be"):
        gpu.maxpool2d_forward(x, 2, 0)
    y, arg = cpu.maxpool2d_forward(x)
    with pytest.raises(ValueError, match="argmax has shape"):
        gpu.maxpool2d_backward(y, arg[:, :1], x.shape)
    with pytest.raises(ValueError, match="argmax has shape"):
        gpu.maxpool2d_backward(y, kc.to_device(arg.astype(np.float32)), x.shape)
    with pytest.raises(ValueError, match="argmax values must lie"):
        gpu.maxpool2d_backward(y, arg + 16, x.shape)
    with pytest.raises(ValueError, match="does not match dy"):
        gpu.maxpool2d_backward(y, arg, (1, 3, 4, 4))
    with pytest.raises(ValueError, match="x_shape must be"):
        gpu.maxpool2d_backward(y, arg, None)
    with pytest.raises(ValueError, match="dy has dtype int64"):
        gpu.maxpool2d_backward(arg, arg, x.shape)


def test_maxpool_backward_skips_device_argmax_out_of_range():
    """A device argmax is not copied back to be checked, but a bad entry writes nothing."""
    dy = np.ones((1, 1, 1, 2))
    arg = kc.to_device(np.array([[[[3, 99]]]]))
    dx = host(gpu.maxpool2d_backward(dy, arg, (1, 1, 2, 2)))
    assert dx.ravel().tolist() == [0, 0, 0, 1]


@pytest.mark.parametrize("k", [2, 3])
def test_avg_pool_and_its_backward_match_numpy(k):
    """elementwise.avg_pool (the caption encoder's initial-state pooling, any k x k blocks) and its backward."""
    from suite.kernels.cuda.elementwise import avg_pool, avg_pool_backward_into

    rng = np.random.default_rng(k)
    x = rng.standard_normal((2, 3, 2 * k, 2 * k))
    want = x.reshape(2, 3, 2, k, 2, k).mean(axis=(3, 5))
    np.testing.assert_allclose(host(avg_pool(kc.to_device(x), k)), want, rtol=1e-12, atol=1e-12)
    dy = rng.standard_normal((2, 3, 2, 2))
    dx0 = rng.standard_normal(x.shape)
    got = host(avg_pool_backward_into(kc.to_device(dx0), dy, k))
    np.testing.assert_allclose(got, dx0 + np.repeat(np.repeat(dy, k, axis=2), k, axis=3) / k ** 2, rtol=1e-12)
    with pytest.raises(ValueError, match="multiples of 3"):
        avg_pool(kc.to_device(np.zeros((1, 1, 4, 4))), 3)


def test_zero_past_zeroes_each_rows_columns_past_its_width():
    from suite.kernels.cuda.elementwise import zero_past

    x = np.random.default_rng(2).standard_normal((3, 2, 2, 5))
    got = host(zero_past(kc.to_device(x), [5, 2, 0]))
    want = x.copy()
    want[1, :, :, 2:] = 0
    want[2] = 0
    np.testing.assert_array_equal(got, want)
