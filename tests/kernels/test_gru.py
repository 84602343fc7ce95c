"""kernels/gru.py against the NumPy reference, finite differences and torch.nn.GRU/RNN."""
import numpy as np
import pytest

from suite.kernels.gru import (INFER_CHUNK, gru_backward, gru_forward, gru_infer, rnn_backward,
                               rnn_forward, rnn_infer)
from tests.gradcheck import check_gradients
from tests.reference.gru import gru_reference, rnn_reference

KINDS = {
    "gru": dict(forward=gru_forward, backward=gru_backward, infer=gru_infer,
                reference=gru_reference,
                shapes=lambda D, H: {"W_ih": (D, 3 * H), "W_hh": (H, 3 * H),
                                     "b_ih": (3 * H,), "b_hh": (3 * H,)}),
    "rnn": dict(forward=rnn_forward, backward=rnn_backward, infer=rnn_infer,
                reference=rnn_reference,
                shapes=lambda D, H: {"W_ih": (D, H), "W_hh": (H, H), "b": (H,)}),
}
# Mixed lengths: a full row, an empty row, a partial one.
T, B, D, H = 5, 3, 4, 3
LENGTHS = np.array([T, 0, 3])


def make_case(kind, dtype, seed=0, T=T, B=B, D=D, H=H):
    """Random x (T, B, D), h0 (B, H) and parameters scaled so the gates are not saturated."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((T, B, D)).astype(dtype)
    h0 = (0.5 * rng.standard_normal((B, H))).astype(dtype)
    params = {name: (0.5 * rng.standard_normal(shape)).astype(dtype)
              for name, shape in KINDS[kind]["shapes"](D, H).items()}
    return x, h0, params


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("dtype,tol", [(np.float64, 1e-12), (np.float32, 2e-6)])
def test_forward_matches_reference(kind, reverse, dtype, tol):
    x, h0, params = make_case(kind, dtype)
    k = KINDS[kind]
    y, hT, _ = k["forward"](x, LENGTHS, h0, *params.values(), reverse=reverse)
    as64 = [a.astype(np.float64) for a in (x, h0, *params.values())]
    y_ref, hT_ref = k["reference"](as64[0], LENGTHS, as64[1], *as64[2:], reverse=reverse)
    assert y.dtype == dtype and hT.dtype == dtype
    np.testing.assert_allclose(y, y_ref, rtol=0, atol=tol)
    np.testing.assert_allclose(hT, hT_ref, rtol=0, atol=tol)
    assert np.all(y[:, 1] == 0) and np.array_equal(hT[1], h0[1])  # len 0: h0 passes through
    assert np.all(y[3:, 2] == 0)  # padding stays at the end, also in reverse


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_infer_equals_forward(kind, reverse, dtype):
    # more steps than one inference chunk, so the chunk boundary is crossed
    T_long = 2 * INFER_CHUNK + 5
    x, h0, params = make_case(kind, dtype, seed=1, T=T_long, B=4)
    lengths = np.array([T_long, 0, INFER_CHUNK + 1, 7])
    k = KINDS[kind]
    y, hT, _ = k["forward"](x, lengths, h0, *params.values(), reverse=reverse)
    y_inf, hT_inf = k["infer"](x, lengths, h0, *params.values(), reverse=reverse)
    tol = 1e-12 if dtype == np.float64 else 1e-6
    np.testing.assert_allclose(y_inf, y, rtol=0, atol=tol)
    np.testing.assert_allclose(hT_inf, hT, rtol=0, atol=tol)


def test_defaults_are_full_lengths_and_zero_state():
    x, _, params = make_case("gru", np.float64)
    y, hT, _ = gru_forward(x, None, None, *params.values())
    y_ref, hT_ref = gru_forward(x, np.full(B, T), np.zeros((B, H)), *params.values())[:2]
    np.testing.assert_array_equal(y, y_ref)
    np.testing.assert_array_equal(hT, hT_ref)


# ------------------------------------------------------------- gradients

def _loss_and_grads(kind, x, h0, params, lengths, reverse, R, S):
    """loss = sum(y * R) + sum(hT * S) and its analytic gradients."""
    k = KINDS[kind]
    y, hT, cache = k["forward"](x, lengths, h0, *params.values(), reverse=reverse)
    dx, dh0, grads = k["backward"](R, S, cache)
    return np.sum(y * R) + np.sum(hT * S), dict(x=dx, h0=dh0, **grads)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("reverse", [False, True])
def test_gradients_match_finite_differences(kind, reverse):
    x, h0, params = make_case(kind, np.float64, seed=2)
    rng = np.random.default_rng(3)
    R = rng.standard_normal((T, B, H))  # also at padded steps: they must be ignored
    S = rng.standard_normal((B, H))
    _, analytic = _loss_and_grads(kind, x, h0, params, LENGTHS, reverse, R, S)
    inputs = dict(x=x, h0=h0, **params)

    def loss():
        y, hT, _ = KINDS[kind]["forward"](x, LENGTHS, h0, *params.values(), reverse=reverse)
        return np.sum(y * R) + np.sum(hT * S)

    check_gradients(loss, inputs, analytic, rtol=1e-5, atol=1e-8)
    assert np.all(analytic["x"][:, 1] == 0) and np.all(analytic["x"][3:, 2] == 0)


@pytest.mark.parametrize("kind", KINDS)
def test_backward_none_means_zero_and_is_repeatable(kind):
    x, h0, params = make_case(kind, np.float64)
    k = KINDS[kind]
    y, hT, cache = k["forward"](x, LENGTHS, h0, *params.values(), reverse=True)
    S = np.ones((B, H))
    a = k["backward"](None, S, cache)
    b = k["backward"](np.zeros_like(y), S, cache)
    c = k["backward"](np.zeros_like(y), S, cache)  # the cache survives a backward
    for u, v, w in zip(a[:2] + tuple(a[2].values()), b[:2] + tuple(b[2].values()),
                       c[:2] + tuple(c[2].values())):
        np.testing.assert_array_equal(u, v)
        np.testing.assert_array_equal(v, w)
    dx, dh0, grads = k["backward"](None, None, cache)
    assert not dx.any() and not dh0.any() and not any(g.any() for g in grads.values())


# ------------------------------------------------------------- torch parity

def _torch_run(kind, x, lengths, h0, params, reverse, R, S):
    """The same computation in torch.nn.GRU/RNN (the reverse direction of a bidirectional one)."""
    torch = pytest.importorskip("torch")
    from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence
    dtype = torch.float64 if x.dtype == np.float64 else torch.float32
    Tn, Bn, Dn = x.shape
    Hn = h0.shape[1]
    if kind == "gru":
        mod = torch.nn.GRU(Dn, Hn, bidirectional=reverse, dtype=dtype)
        b_ih, b_hh = params["b_ih"], params["b_hh"]
    else:
        mod = torch.nn.RNN(Dn, Hn, nonlinearity="tanh", bidirectional=reverse, dtype=dtype)
        b_ih, b_hh = 0.25 * params["b"], 0.75 * params["b"]  # torch's two biases sum to ours
    sfx = "_reverse" if reverse else ""
    torch_names = dict(W_ih="weight_ih", W_hh="weight_hh", b_ih="bias_ih", b_hh="bias_hh")
    weights = {ours: getattr(mod, theirs + "_l0" + sfx) for ours, theirs in torch_names.items()}
    with torch.no_grad():
        weights["W_ih"].copy_(torch.from_numpy(params["W_ih"].T.copy()))
        weights["W_hh"].copy_(torch.from_numpy(params["W_hh"].T.copy()))
        weights["b_ih"].copy_(torch.from_numpy(b_ih))
        weights["b_hh"].copy_(torch.from_numpy(b_hh))
    d = int(reverse)  # direction index in torch's outputs
    xt = torch.from_numpy(x.copy()).requires_grad_()
    h0t = torch.from_numpy(np.stack([h0] * (d + 1))).requires_grad_()
    packed = pack_padded_sequence(xt, torch.from_numpy(lengths), enforce_sorted=False)
    out, hn = mod(packed, h0t)
    y = pad_packed_sequence(out, total_length=Tn)[0][..., d * Hn:(d + 1) * Hn]
    loss = (y * torch.from_numpy(R)).sum() + (hn[d] * torch.from_numpy(S)).sum()
    loss.backward()
    grads = dict(x=xt.grad.numpy(), h0=h0t.grad[d].numpy(),
                 W_ih=weights["W_ih"].grad.numpy().T, W_hh=weights["W_hh"].grad.numpy().T)
    if kind == "gru":
        grads.update(b_ih=weights["b_ih"].grad.numpy(), b_hh=weights["b_hh"].grad.numpy())
    else:
        np.testing.assert_allclose(weights["b_ih"].grad.numpy(), weights["b_hh"].grad.numpy(),
                                   rtol=1e-6)
        grads["b"] = weights["b_ih"].grad.numpy()
    return y.detach().numpy(), hn[d].detach().numpy(), grads


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("dtype,tol", [(np.float64, 1e-10), (np.float32, 1e-5)])
def test_matches_torch(kind, reverse, dtype, tol):
    Tn, Bn, Dn, Hn = 6, 3, 4, 5
    lengths = np.array([4, Tn, 1])  # torch packs only non-empty rows
    x, h0, params = make_case(kind, dtype, seed=4, T=Tn, B=Bn, D=Dn, H=Hn)
    rng = np.random.default_rng(5)
    R = rng.standard_normal((Tn, Bn, Hn)).astype(dtype)
    S = rng.standard_normal((Bn, Hn)).astype(dtype)
    y_t, hT_t, grads_t = _torch_run(kind, x, lengths, h0, params, reverse, R, S)
    k = KINDS[kind]
    y, hT, cache = k["forward"](x, lengths, h0, *params.values(), reverse=reverse)
    dx, dh0, grads = k["backward"](R, S, cache)
    grads.update(x=dx, h0=dh0)
    np.testing.assert_allclose(y, y_t, rtol=tol, atol=tol)
    np.testing.assert_allclose(hT, hT_t, rtol=tol, atol=tol)
    assert grads.keys() == grads_t.keys()
    for name in grads:
        np.testing.assert_allclose(grads[name], grads_t[name], rtol=tol, atol=tol, err_msg=name)


# ------------------------------------------------------------- bad inputs

def _gru_args(dtype=np.float32):
    x, h0, params = make_case("gru", dtype)
    return dict(x=x, lengths=LENGTHS, h0=h0, **params)


@pytest.mark.parametrize("fn", [gru_forward, gru_infer])
@pytest.mark.parametrize("change,message", [
    (dict(x=np.zeros((T, B, D), np.int32)), "x has dtype int32"),
    (dict(x=np.zeros((T, D), np.float32)), r"x has shape \(5, 4\)"),
    (dict(W_ih=np.zeros((D + 1, 3 * H), np.float32)),
     r"W_ih has shape \(5, 9\), expected \(4, 9\)"),
    (dict(W_hh=np.zeros((H, 4 * H), np.float32)), r"W_hh has shape \(3, 12\), expected \(3, 9\)"),
    (dict(b_hh=np.zeros(3 * H + 1, np.float32)), r"b_hh has shape \(10,\)"),
    (dict(h0=np.zeros((B + 1, H), np.float32)), r"h0 has shape \(4, 3\), expected \(3, 3\)"),
    (dict(W_ih=np.zeros((D, 3 * H))), "W_ih has dtype float64, expected float32"),
    (dict(lengths=np.array([T + 1, 0, 1])), r"lengths must lie in \[0, 5\]"),
    (dict(lengths=np.array([-1, 0, 1])), r"lengths must lie in \[0, 5\]"),
    (dict(lengths=np.array([T, 0])), r"lengths has shape \(2,\), expected \(3,\)"),
    (dict(lengths=np.array([1.0, 2.0, 3.0])), "lengths has dtype float64"),
])
def test_gru_rejects_bad_inputs(fn, change, message):
    args = _gru_args()
    args.update(change)
    with pytest.raises(ValueError, match=message):
        fn(**args)


def test_rnn_rejects_bad_bias():
    x, h0, params = make_case("rnn", np.float32)
    params["b"] = np.zeros(2 * H, np.float32)
    with pytest.raises(ValueError, match=r"b has shape \(6,\), expected \(3,\)"):
        rnn_forward(x, LENGTHS, h0, *params.values())


@pytest.mark.parametrize("kind", KINDS)
def test_backward_rejects_bad_gradients(kind):
    x, h0, params = make_case(kind, np.float32)
    k = KINDS[kind]
    _, _, cache = k["forward"](x, LENGTHS, h0, *params.values())
    with pytest.raises(ValueError, match=r"dy has shape \(5, 3, 4\), expected \(5, 3, 3\)"):
        k["backward"](np.zeros((T, B, H + 1), np.float32), None, cache)
    with pytest.raises(ValueError, match="dhT has dtype float64, expected float32"):
        k["backward"](None, np.zeros((B, H)), cache)


@pytest.mark.parametrize("kind", KINDS)
def test_non_contiguous_inputs_are_copied(kind):
    x, h0, params = make_case(kind, np.float32)
    k = KINDS[kind]
    y, hT, cache = k["forward"](x, LENGTHS, h0, *params.values(), reverse=True)
    strided = {n: np.asfortranarray(p) for n, p in params.items()}
    x_strided = np.zeros((T, 2 * B, D), np.float32)[:, ::2]
    x_strided[...] = x
    lengths32 = LENGTHS.astype(np.int32)[::-1].copy()[::-1]  # int32, negative stride
    h0_fortran = np.asfortranarray(h0)
    y2, hT2, cache2 = k["forward"](x_strided, lengths32, h0_fortran, *strided.values(),
                                   reverse=True)
    np.testing.assert_array_equal(y2, y)
    np.testing.assert_array_equal(hT2, hT)
    y3, hT3 = k["infer"](x_strided, lengths32, h0, *strided.values(), reverse=True)
    np.testing.assert_allclose(y3, y, atol=1e-6)
    np.testing.assert_allclose(hT3, hT, atol=1e-6)
    dy = np.ones((T, 2 * B, H), np.float32)[:, ::2]
    np.testing.assert_array_equal(k["backward"](dy, None, cache2)[0],
                                  k["backward"](dy.copy(), None, cache)[0])
