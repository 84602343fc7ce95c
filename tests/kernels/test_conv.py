"""kernels/conv.py against the nested-loop NumPy reference, finite differences
and torch.nn.functional (conv2d, relu, max_pool2d)."""
import numpy as np
import pytest

from suite.kernels.conv import (conv2d_backward, conv2d_forward, maxpool2d_backward, maxpool2d_forward,
                                relu_backward, relu_forward)
from tests.gradcheck import check_gradients
from tests.reference.conv import conv2d_ref, maxpool2d_ref, relu_ref

# (B, C, H, W, F, KH, KW, stride, padding): stride 1 takes the wide-column path (3x3 kernels the direct one,
# few channels here; test_conv_direct_3x3_* run them through the columns too), other strides the exact gather;
# odd sizes leave rows no window reaches
CONV_CASES = {
    "s1p0": (2, 2, 5, 6, 3, 3, 3, 1, 0),
    "s1p1": (2, 2, 5, 6, 3, 3, 3, 1, 1),
    "s2p0": (2, 2, 7, 6, 3, 3, 3, 2, 0),
    "s2p1": (2, 2, 6, 7, 3, 3, 3, 2, 1),
    "s1p2_rect": (1, 3, 4, 5, 2, 2, 3, 1, 2),
    "s3p1_rect": (2, 1, 8, 7, 2, 3, 2, 3, 1),
    "1x1": (2, 3, 3, 4, 4, 1, 1, 1, 0),
}


def conv_args(case, dtype, seed=0):
    B, C, H, W, F, KH, KW, s, p = CONV_CASES[case]
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((B, C, H, W)).astype(dtype),
            rng.standard_normal((F, C, KH, KW)).astype(dtype),
            rng.standard_normal(F).astype(dtype), s, p)


@pytest.mark.parametrize("case", CONV_CASES)
def test_conv_forward_matches_reference(case):
    for dtype, tol in ((np.float64, 1e-12), (np.float32, 1e-5)):
        x, w, b, s, p = conv_args(case, dtype)
        y = conv2d_forward(x, w, b, s, p)
        assert y.dtype == dtype
        ref = conv2d_ref(x, w, b, s, p)
        assert y.shape == ref.shape
        np.testing.assert_allclose(y, ref, rtol=0, atol=tol)


@pytest.mark.parametrize("padding", [0, 1, 2])
def test_conv_direct_3x3_forward_agrees_with_columns_and_gemm(padding, monkeypatch):
    import suite.kernels.conv as conv

    rng = np.random.default_rng(padding)
    for dtype, tol in ((np.float64, 1e-12), (np.float32, 1e-5)):
        for B, C, H, W, F in ((2, 1, 4, 9, 3), (3, 5, 7, 3, 4), (1, 16, 6, 6, 2)):
            x = rng.standard_normal((B, C, H, W)).astype(dtype)
            w = (rng.standard_normal((F, C, 3, 3)) / np.sqrt(C * 9)).astype(dtype)  # outputs of about +-1
            b = rng.standard_normal(F).astype(dtype)
            monkeypatch.setattr(conv, "DIRECT_MAX_CHANNELS", 16)
            direct = conv2d_forward(x, w, b, 1, padding)
            monkeypatch.setattr(conv, "DIRECT_MAX_CHANNELS", 0)  # every channel count through the GEMM
            gemm = conv2d_forward(x, w, b, 1, padding)
            np.testing.assert_allclose(direct, gemm, rtol=0, atol=tol)
            np.testing.assert_allclose(direct, conv2d_ref(x, w, b, 1, padding), rtol=0, atol=tol)


@pytest.mark.parametrize("padding", [0, 1, 2, 3])  # 3: dx through the GEMM (the direct dx pads dy by 2 - p)
def test_conv_direct_3x3_backward_agrees_with_columns_and_gemm(padding, monkeypatch):
    import suite.kernels.conv as conv

    rng = np.random.default_rng(10 + padding)
    for dtype, tol in ((np.float64, 1e-12), (np.float32, 1e-5)):
        # F = 20 > 16: a direct dW beside a GEMM dx; C = 20: the other way round
        for B, C, H, W, F in ((2, 1, 4, 9, 3), (3, 5, 7, 3, 4), (1, 3, 6, 6, 20), (2, 20, 5, 4, 2)):
            x = rng.standard_normal((B, C, H, W)).astype(dtype)
            w = (rng.standard_normal((F, C, 3, 3)) / np.sqrt(C * 9)).astype(dtype)
            Ho, Wo = H + 2 * padding - 2, W + 2 * padding - 2
            dy = rng.standard_normal((B, F, Ho, Wo)).astype(dtype)
            for need_dx in (True, False):
                monkeypatch.setattr(conv, "DIRECT_DW_MAX_CHANNELS", 16)
                monkeypatch.setattr(conv, "DIRECT_DX_MAX_FILTERS", 16)
                direct = conv2d_backward(dy, x, w, 1, padding, need_dx=need_dx)
                monkeypatch.setattr(conv, "DIRECT_DW_MAX_CHANNELS", 0)
                monkeypatch.setattr(conv, "DIRECT_DX_MAX_FILTERS", 0)
                gemm = conv2d_backward(dy, x, w, 1, padding, need_dx=need_dx)
                for got, want in zip(direct, gemm):
                    if want is None:
                        assert got is None
                    else:
                        np.testing.assert_allclose(got, want, rtol=0, atol=tol)


@pytest.mark.parametrize("case", ["s1p0", "s1p1", "s2p0", "s2p1", "s3p1_rect"])
def test_conv_gradients_finite_differences(case):
    x, w, b, s, p = conv_args(case, np.float64)
    R = np.random.default_rng(1).standard_normal(conv2d_forward(x, w, b, s, p).shape)

    def loss():
        return float(np.sum(conv2d_forward(x, w, b, s, p) * R))

    dx, dw, db = conv2d_backward(R, x, w, s, p)
    assert dx.shape == x.shape and dw.shape == w.shape and db.shape == b.shape
    check_gradients(loss, dict(x=x, w=w, b=b), dict(x=dx, w=dw, b=db), rtol=1e-7, atol=1e-8)


@pytest.mark.parametrize("case", CONV_CASES)
def test_conv_on_a_workspace_left_full_of_nan_gives_the_reference(case, monkeypatch):
    """The kernels' temporaries come from memory the thread keeps (suite.kernels.scratch): a call after the
    workspace was left full of NaN (what a larger call leaves there, and more) gives what fresh memory gives;
    the padded image's border and dy's junk columns are zeroed each call."""
    from suite.kernels import scratch

    x, w, b, s, p = conv_args(case, np.float64)
    dy = np.random.default_rng(1).standard_normal(conv2d_forward(x, w, b, s, p).shape)
    scratch.workspace(1 << 16, np.float64).fill(np.nan)
    np.testing.assert_allclose(conv2d_forward(x, w, b, s, p), conv2d_ref(x, w, b, s, p), rtol=0, atol=1e-12)
    scratch.workspace(1 << 16, np.float64).fill(np.nan)
    got = conv2d_backward(dy, x, w, s, p)
    monkeypatch.setattr(scratch, "KEEP", False)  # a new array each call, as before the workspace
    for a, want in zip(got, conv2d_backward(dy, x, w, s, p)):
        np.testing.assert_array_equal(a, want)


@pytest.mark.parametrize("shape", [
    (2, 5, 9, 13, 7, 3, 3, 0), (2, 5, 9, 13, 7, 3, 3, 1), (2, 5, 9, 13, 7, 3, 3, 2),  # F, C*9 not whole tiles
    (1, 2, 6, 5, 20, 5, 5, 2), (3, 16, 4, 4, 1, 1, 1, 0),                             # 5x5; 1x1, one filter
    (1, 3, 6, 7, 4, 3, 3, 3),                                                         # padding 3: dx by columns
    (2, 1, 6, 7, 4, 3, 3, 1),                                                         # 9 taps: no taps at all
    (2, 3, 5, 16, 6, 3, 3, 1), (1, 2, 4, 32, 5, 3, 3, 1),  # widths of whole tiles: y and dx written in their planes
    (2, 2, 5, 6, 3, 2, 3, 2),                                                         # 2x3 kernel: dx by columns
])
def test_conv_float32_by_taps_matches_float64_reference(shape, monkeypatch):
    """float32 at stride 1 runs our GEMM on the taps (conv.TAPS): forward, dW, db and dx against the float64
    columns-and-BLAS path, on a workspace left full of NaN (every temporary the taps read is set each call)."""
    from suite.kernels import conv, scratch

    B, C, H, W, F, KH, KW, p = shape
    rng = np.random.default_rng(sum(shape))
    x = rng.standard_normal((B, C, H, W))
    w = rng.standard_normal((F, C, KH, KW))
    b = rng.standard_normal(F)
    dy = rng.standard_normal(conv2d_forward(x, w, b, 1, p).shape)
    want_y = conv2d_forward(x, w, b, 1, p)
    want = conv2d_backward(dy, x, w, 1, p)
    calls = []
    for name in ("_conv_forward_taps", "_conv_backward_taps"):
        fn = getattr(conv, name)
        monkeypatch.setattr(conv, name, lambda *a, fn=fn, name=name: calls.append(name) or fn(*a))
    f32 = [a.astype(np.float32) for a in (x, w, b, dy)]
    scale = np.sqrt(C * KH * KW)
    for need_dx in (True, False):
        scratch.workspace(1 << 16, np.float32).fill(np.nan)
        np.testing.assert_allclose(conv2d_forward(*f32[:3], 1, p), want_y, rtol=0, atol=2e-6 * scale * 4)
        scratch.workspace(1 << 16, np.float32).fill(np.nan)
        got = conv2d_backward(f32[3], *f32[:2], 1, p, need_dx=need_dx)
        for g, r in zip(got, want):
            if g is not None:
                assert g.dtype == np.float32
                np.testing.assert_allclose(g, r, rtol=0, atol=1e-5 * np.abs(r).max() + 1e-6)
        assert got[0] is not None if need_dx else got[0] is None
    taps = C * KH * KW >= conv.TAPS_MIN
    assert calls.count("_conv_forward_taps") == 2 * taps
    # without dx always by taps; with dx only where dx can be (square kernel, padding < its size)
    assert calls.count("_conv_backward_taps") == taps * (1 + (KH == KW and p < KH))


def test_conv_backward_without_dx():
    x, w, b, s, p = conv_args("s2p1", np.float64)
    dy = np.random.default_rng(3).standard_normal(conv2d_forward(x, w, b, s, p).shape)
    dx, dw, db = conv2d_backward(dy, x, w, s, p)
    none, dw2, db2 = conv2d_backward(dy, x, w, s, p, need_dx=False)
    assert none is None
    np.testing.assert_array_equal(dw2, dw)
    np.testing.assert_array_equal(db2, db)


def test_conv_backward_float32_agrees_with_float64():
    out = []
    for dtype in (np.float64, np.float32):
        x, w, b, s, p = conv_args("s1p1", dtype)
        dy = np.random.default_rng(2).standard_normal((2, 3, 5, 6)).astype(dtype)
        grads = conv2d_backward(dy, x, w, s, p)
        assert all(g.dtype == dtype for g in grads)
        out.append(grads)
    for g64, g32 in zip(*out):
        np.testing.assert_allclose(g32, g64, rtol=0, atol=1e-5)


def test_conv_empty_batch_and_non_contiguous_inputs():
    x, w, b, s, p = conv_args("s1p1", np.float64)
    y = conv2d_forward(x[:0], w, b, s, p)
    assert y.shape == (0, 3, 5, 6)
    dx, dw, db = conv2d_backward(y, x[:0], w, s, p)
    assert dx.shape == (0, 2, 5, 6) and not dw.any() and not db.any()
    expected = conv2d_forward(x, w, b, s, p)
    xf = np.asfortranarray(x)
    wide = np.zeros((3, 2, 3, 6))
    wide[..., ::2] = w
    assert not wide[..., ::2].flags.c_contiguous
    np.testing.assert_allclose(conv2d_forward(xf, wide[..., ::2], b, s, p), expected,
                               rtol=0, atol=1e-14)


@pytest.mark.parametrize("change,match", [
    (dict(x=np.zeros((2, 5, 6), np.float32)), "x has shape"),
    (dict(x=np.zeros((2, 2, 5, 6), np.int64)), "x has dtype int64"),
    (dict(w=np.zeros((3, 4, 3, 3), np.float32)), r"w has shape .* expected \(F, 2, KH, KW\)"),
    (dict(w=np.zeros((3, 2, 3, 3), np.float64)), "w has dtype float64"),
    (dict(w=np.zeros((3, 2, 3), np.float32)), "w has shape"),
    (dict(b=np.zeros(4, np.float32)), "b has shape"),
    (dict(w=np.zeros((3, 2, 7, 3), np.float32)), "does not fit"),
    (dict(stride=0), "stride must be an integer >= 1"),
    (dict(stride=1.5), "stride must be an integer >= 1"),
    (dict(padding=-1), "padding must be an integer >= 0"),
], ids=lambda v: v if isinstance(v, str) else None)
def test_conv_bad_inputs_raise_value_error(change, match):
    x, w, b, s, p = conv_args("s1p0", np.float32)
    args = dict(x=x, w=w, b=b, stride=s, padding=p)
    args.update(change)
    with pytest.raises(ValueError, match=match):
        conv2d_forward(**args)


def test_conv_backward_bad_inputs_raise_value_error():
    x, w, b, s, p = conv_args("s1p1", np.float32)
    with pytest.raises(ValueError, match="dy has shape"):
        conv2d_backward(np.zeros((2, 3, 4, 6), np.float32), x, w, s, p)
    with pytest.raises(ValueError, match="dy has dtype float64"):
        conv2d_backward(np.zeros((2, 3, 5, 6)), x, w, s, p)


# ---------------------------------------------------------------------------
# ReLU


def test_relu_forward_backward():
    rng = np.random.default_rng(3)
    for dtype in (np.float32, np.float64):
        x = rng.standard_normal((2, 3, 4, 5)).astype(dtype)
        y = relu_forward(x)
        assert y.dtype == dtype and y.shape == x.shape
        np.testing.assert_array_equal(y, relu_ref(x).astype(dtype))
        dy = rng.standard_normal(x.shape).astype(dtype)
        np.testing.assert_array_equal(relu_backward(dy, y), np.where(x > 0, dy, 0))
    x = np.array([np.nan, -1.0, 0.0, 2.0])
    y = relu_forward(x)
    assert np.isnan(y[0]) and y[1:].tolist() == [0.0, 0.0, 2.0]  # NaN propagates, as torch


def test_relu_gradient_finite_differences():
    rng = np.random.default_rng(4)
    x = rng.standard_normal((3, 7))
    x[np.abs(x) < 1e-3] = 0.5  # keep away from the kink
    R = rng.standard_normal(x.shape)
    dx = relu_backward(R, relu_forward(x))
    check_gradients(lambda: float(np.sum(relu_forward(x) * R)), dict(x=x), dict(x=dx),
                    rtol=1e-7, atol=1e-9)


def test_relu_bad_inputs_raise_value_error():
    with pytest.raises(ValueError, match="x has dtype int64"):
        relu_forward(np.zeros(3, np.int64))
    with pytest.raises(ValueError, match="dy has shape"):
        relu_backward(np.zeros(3, np.float32), np.zeros(4, np.float32))
    with pytest.raises(ValueError, match="dy has dtype float64"):
        relu_backward(np.zeros(4), np.zeros(4, np.float32))


# ---------------------------------------------------------------------------
# max-pooling

POOL_CASES = [(2, 2, 6, 8), (2, 2, 7, 5), (3, 2, 7, 7), (2, 1, 5, 4), (3, 3, 9, 6)]  # k, s, H, W


@pytest.mark.parametrize("k,s,H,W", POOL_CASES)
def test_maxpool_forward_matches_reference(k, s, H, W):
    rng = np.random.default_rng(5)
    for dtype in (np.float32, np.float64):
        x = rng.standard_normal((2, 3, H, W)).astype(dtype)
        y, arg = maxpool2d_forward(x, k, s)
        y_ref, arg_ref = maxpool2d_ref(x, k, s)
        assert y.dtype == dtype and arg.dtype == np.int64
        np.testing.assert_array_equal(y, y_ref.astype(dtype))
        np.testing.assert_array_equal(arg, arg_ref)


def test_maxpool_ties_go_to_the_first_maximum():
    x = np.zeros((1, 1, 4, 4))
    x[0, 0, 2:, 2:] = 1.0  # last window all ones; others all zeros
    x[0, 0, 0, 1] = x[0, 0, 1, 0] = 2.0  # a tie inside the first window
    y, arg = maxpool2d_forward(x, 2, 2)
    y_ref, arg_ref = maxpool2d_ref(x, 2, 2)
    np.testing.assert_array_equal(arg, arg_ref)
    assert arg[0, 0].tolist() == [[1, 2], [8, 10]]
    dx = maxpool2d_backward(np.ones_like(y), arg, x.shape)
    assert dx.sum() == 4 and dx[0, 0, 0, 1] == 1 and dx[0, 0, 1, 0] == 0


@pytest.mark.parametrize("k,s", [(2, 2), (3, 1)])
def test_maxpool_nan_wins_its_window(k, s):
    x = np.zeros((1, 1, 3, 4), np.float32)
    x[0, 0, 1, 1] = np.nan
    x[0, 0, 0, 2] = 5.0
    y, arg = maxpool2d_forward(x, k, s)
    assert np.isnan(y[0, 0, 0, 0]) and arg[0, 0, 0, 0] == 5
    if k == 2:
        assert y[0, 0, 0, 1] == 5.0 and arg[0, 0, 0, 1] == 2
    else:
        assert np.isnan(y[0, 0, 0, 1]) and arg[0, 0, 0, 1] == 5


def test_maxpool_infinities():
    x = np.array([[[[np.inf, -np.inf, 1.0, 2.0], [0.0, 1.0, -np.inf, -np.inf]]]])
    y, arg = maxpool2d_forward(x, 2, 2)
    assert y[0, 0, 0].tolist() == [np.inf, 2.0] and arg[0, 0, 0].tolist() == [0, 3]
    y_ref, arg_ref = maxpool2d_ref(x, 2, 2)
    np.testing.assert_array_equal(arg, arg_ref)


@pytest.mark.parametrize("k,s,H,W", POOL_CASES)
def test_maxpool_gradient_finite_differences(k, s, H, W):
    rng = np.random.default_rng(6)
    # distinct values at least 1e-3 apart: an eps of 1e-6 cannot change a winner
    x = rng.permutation(2 * 3 * H * W).reshape(2, 3, H, W) * 1e-3
    y, arg = maxpool2d_forward(x, k, s)
    R = rng.standard_normal(y.shape)
    dx = maxpool2d_backward(R, arg, x.shape)

    def loss():
        return float(np.sum(maxpool2d_forward(x, k, s)[0] * R))

    check_gradients(loss, dict(x=x), dict(x=dx), rtol=1e-7, atol=1e-9)


def test_maxpool_overlapping_windows_add_up():
    x = np.zeros((1, 1, 3, 3))
    x[0, 0, 1, 1] = 1.0  # the centre wins all four 2x2 windows at stride 1
    y, arg = maxpool2d_forward(x, 2, 1)
    assert (arg == 4).all()
    dx = maxpool2d_backward(np.full(y.shape, 0.5), arg, x.shape)
    assert dx[0, 0, 1, 1] == 2.0 and dx.sum() == 2.0


def test_maxpool_bad_inputs_raise_value_error():
    x = np.zeros((1, 2, 4, 4), np.float32)
    with pytest.raises(ValueError, match="x has shape"):
        maxpool2d_forward(np.zeros((2, 4, 4), np.float32))
    with pytest.raises(ValueError, match="larger than"):
        maxpool2d_forward(x, 5, 1)
    with pytest.raises(ValueError, match="kernel must be"):
        maxpool2d_forward(x, 0, 1)
    with pytest.raises(ValueError, match="stride must be"):
        maxpool2d_forward(x, 2, 0)
    y, arg = maxpool2d_forward(x)
    with pytest.raises(ValueError, match="argmax has shape"):
        maxpool2d_backward(y, arg[:, :1], x.shape)
    with pytest.raises(ValueError, match="argmax has shape"):
        maxpool2d_backward(y, arg.astype(np.float32), x.shape)
    with pytest.raises(ValueError, match="argmax values must lie"):
        maxpool2d_backward(y, arg + 16, x.shape)
    with pytest.raises(ValueError, match="does not match dy"):
        maxpool2d_backward(y, arg, (1, 3, 4, 4))
    with pytest.raises(ValueError, match="x_shape must be"):
        maxpool2d_backward(y, arg, None)


# ---------------------------------------------------------------------------
# torch parity (float32 kernel vs float32 torch)


@pytest.mark.parametrize("case", ["s1p0", "s1p1", "s2p1", "s3p1_rect"])
def test_conv_torch_parity(case):
    torch = pytest.importorskip("torch")
    x, w, b, s, p = conv_args(case, np.float32, seed=7)
    xt, wt, bt = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    yt = torch.nn.functional.conv2d(xt, wt, bt, stride=s, padding=p)
    dy = np.random.default_rng(8).standard_normal(tuple(yt.shape)).astype(np.float32)
    yt.backward(torch.from_numpy(dy))
    tol = dict(rtol=0, atol=1e-5)
    np.testing.assert_allclose(conv2d_forward(x, w, b, s, p), yt.detach().numpy(), **tol)
    dx, dw, db = conv2d_backward(dy, x, w, s, p)
    np.testing.assert_allclose(dx, xt.grad.numpy(), **tol)
    np.testing.assert_allclose(dw, wt.grad.numpy(), **tol)
    np.testing.assert_allclose(db, bt.grad.numpy(), **tol)


@pytest.mark.parametrize("k,s,H,W", POOL_CASES)
def test_maxpool_and_relu_torch_parity(k, s, H, W):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(9)
    x = rng.standard_normal((2, 3, H, W)).astype(np.float32)
    x[0, 0, :2, :2] = 0.25  # a tied window
    xt = torch.tensor(x, requires_grad=True)
    yt, idx = torch.nn.functional.max_pool2d(torch.relu(xt), k, s, return_indices=True)
    dy = rng.standard_normal(tuple(yt.shape)).astype(np.float32)
    yt.backward(torch.from_numpy(dy))
    r = relu_forward(x)
    y, arg = maxpool2d_forward(r, k, s)
    np.testing.assert_array_equal(y, yt.detach().numpy())
    np.testing.assert_array_equal(arg, idx.numpy())
    dx = relu_backward(maxpool2d_backward(dy, arg, r.shape), r)
    np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=0, atol=1e-6)


class _FakeBlas:
    """threadpoolctl's BLAS selection at two threads; limit() changes nothing (the tests run BLAS on one)."""

    lib_controllers = [type("Lib", (), {"num_threads": 2})()]

    def limit(self, limits):
        import contextlib

        return contextlib.nullcontext()


@pytest.mark.parametrize("case", ["s1p1", "s2p1", "1x1"])
@pytest.mark.parametrize("need_dx", [True, False])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])  # float32 s1p1: the taps (conv.TAPS)
def test_conv_halves_of_the_batch_give_the_whole_batchs_results(case, need_dx, dtype, monkeypatch):
    """conv2d_forward and conv2d_backward by halves of the batch side by side (CONV_SPLIT_BATCH): y and dx are the
    whole batch's to the last bit (each image's arithmetic is the same), dw and db to rounding (summed over the
    halves); an odd batch splits unevenly."""
    import suite.kernels.conv as conv
    from suite.kernels import halves as halves_module

    x, w, b, s, p = conv_args(case, dtype)
    x = np.concatenate([x, x[:1] * 0.5])  # 3 images
    dy = np.random.default_rng(5).standard_normal(conv2d_forward(x, w, b, s, p).shape).astype(dtype)
    whole = [conv2d_forward(x, w, b, s, p), *conv2d_backward(dy, x, w, s, p, need_dx=need_dx)]
    calls = []
    by_halves = conv.by_halves
    monkeypatch.setattr(conv, "by_halves", lambda halves, fn: calls.append(halves) or by_halves(halves, fn))
    monkeypatch.setattr(conv, "CONV_SPLIT_BATCH", 2)
    monkeypatch.setattr(halves_module, "_BLAS", _FakeBlas())
    split = [conv2d_forward(x, w, b, s, p), *conv2d_backward(dy, x, w, s, p, need_dx=need_dx)]
    assert calls == [[(0, 1), (1, 3)]] * 2
    np.testing.assert_array_equal(split[0], whole[0])
    if need_dx:
        np.testing.assert_array_equal(split[1], whole[1])
    else:
        assert split[1] is None
    for a, c in zip(split[2:], whole[2:]):
        np.testing.assert_allclose(a, c, rtol=1e-13 if dtype == np.float64 else 1e-5, atol=1e-13)
    monkeypatch.setattr(conv, "CONV_SPLIT_BATCH", x.shape[0] + 1)  # too few images: whole
    conv2d_forward(x, w, b, s, p)
    assert len(calls) == 2
