"""kernels/window.py (the soft-window LSTM) and kernels/mdn.py (the mixture density loss) against the
NumPy references and float64 finite differences."""
import numpy as np
import pytest

from suite.kernels.mdn import mdn_nll, mdn_size
from suite.kernels.window import window_lstm_backward, window_lstm_forward
from tests.gradcheck import check_gradients
from tests.reference.window import mdn_nll_ref, window_lstm_ref

T, B, D, H, V, K, U = 6, 3, 4, 5, 7, 2, 4
LENGTHS = np.array([6, 2, 4])
CHARS = np.array([[1, 2, 3, 1], [4, 0, 0, 0], [6, 5, 6, 0]])
N_CHARS = np.array([4, 1, 3])


def make(dtype, seed=0):
    rng = np.random.default_rng(seed)

    def rand(*shape, scale=0.5):
        return (scale * rng.standard_normal(shape)).astype(dtype)

    return dict(x=rand(T, B, D), W_x=rand(D, 4 * H), b=rand(4 * H), W_rec=rand(H + V, 4 * H),
                W_win=rand(H, 3 * K), b_win=rand(3 * K) - dtype(1.0))


def run(p, state=None):
    dt = p["x"].dtype
    xg = p["x"] @ p["W_x"] + p["b"]
    if state is None:
        state = (np.zeros((B, H), dt), np.zeros((B, H), dt), np.zeros((B, V), dt), np.zeros((B, K), dt))
    return window_lstm_forward(xg, LENGTHS, CHARS, N_CHARS, state, p["W_rec"], p["W_win"], p["b_win"])


@pytest.mark.parametrize("dtype,tol", [(np.float64, 1e-12), (np.float32, 1e-5)])
def test_forward_matches_reference(dtype, tol):
    p = make(dtype)
    y, w, phi, window, state, _ = run(p)
    ry, rw, rphi, rkap = window_lstm_ref(p["x"], LENGTHS, CHARS, N_CHARS, *(p[k] for k in
                                         ("W_x", "b", "W_rec", "W_win", "b_win")))
    for got, want in ((y, ry), (w, rw), (phi, rphi), (window[:, :, 2 * K:], rkap)):
        np.testing.assert_allclose(got, want, rtol=tol, atol=tol)
    assert phi[:, 1, 1:].max() == 0 and y[2:, 1].max() == 0  # padding: characters and steps
    for row in range(B):  # the final state is the state after each row's own last step
        np.testing.assert_allclose(state[0][row], ry[LENGTHS[row] - 1, row], rtol=tol, atol=tol)
        np.testing.assert_allclose(state[3][row], rkap[LENGTHS[row] - 1, row], rtol=tol, atol=tol)


def test_state_carries_over_a_split_sequence():
    """Two calls of 3 steps with the state handed on equal one call of 6 (what generation does step by step)."""
    global LENGTHS
    p = make(np.float64)
    saved, LENGTHS = LENGTHS, np.full(B, T)
    try:
        y, w, *_ = run(p)
        first, second = dict(p, x=p["x"][:3]), dict(p, x=p["x"][3:])
        dt = np.float64
        xg1, xg2 = (q["x"] @ q["W_x"] + q["b"] for q in (first, second))
        s0 = (np.zeros((B, H), dt), np.zeros((B, H), dt), np.zeros((B, V), dt), np.zeros((B, K), dt))
        y1, _, _, _, s1, _ = window_lstm_forward(xg1, np.full(B, 3), CHARS, N_CHARS, s0, p["W_rec"], p["W_win"],
                                                 p["b_win"])
        y2, w2, _, _, _, _ = window_lstm_forward(xg2, np.full(B, 3), CHARS, N_CHARS, s1, p["W_rec"], p["W_win"],
                                                 p["b_win"])
    finally:
        LENGTHS = saved
    np.testing.assert_allclose(np.concatenate([y1, y2]), y, atol=1e-13)
    np.testing.assert_allclose(w2, w[3:], atol=1e-13)


def test_gradients_match_finite_differences():
    p = make(np.float64, seed=1)
    rng = np.random.default_rng(2)
    gy, gw = rng.standard_normal((T, B, H)), rng.standard_normal((T, B, V))

    def loss():
        y, w, *_ = run(p)
        return float(np.sum(y * gy) + np.sum(w * gw))

    y, w, _, _, _, cache = run(p)
    mask = (np.arange(T)[:, None] < LENGTHS[None, :])[:, :, None]
    dxg, grads = window_lstm_backward(gy * mask, gw * mask, cache)
    flat = dxg.reshape(T * B, -1)
    grads |= {"W_x": p["x"].reshape(T * B, D).T @ flat, "b": flat.sum(0), "x": dxg @ p["W_x"].T}
    check_gradients(loss, p, grads, rtol=1e-6, atol=1e-8)


def test_bad_shapes_are_named():
    p = make(np.float64)
    with pytest.raises(ValueError, match="W_win"):
        run(dict(p, W_win=p["W_win"][:, :-1]))
    with pytest.raises(ValueError, match="character ids"):
        xg = p["x"] @ p["W_x"] + p["b"]
        z = np.zeros
        window_lstm_forward(xg, LENGTHS, CHARS + V, N_CHARS, (z((B, H)), z((B, H)), z((B, V)), z((B, K))),
                            p["W_rec"], p["W_win"], p["b_win"])


def mdn_case(dtype, M=3, N=7, seed=0):
    rng = np.random.default_rng(seed)
    out = rng.standard_normal((N, mdn_size(M))).astype(dtype)
    out[:, 1 + 5 * M:] *= 0.5  # correlations well inside (-1, 1)
    target = np.column_stack([rng.standard_normal(N), rng.standard_normal(N), rng.integers(0, 2, N)])
    weight = np.where(np.arange(N) == 2, 0.0, 1.0 / (N - 1))  # one padded row
    return out, target, weight


@pytest.mark.parametrize("dtype,tol", [(np.float64, 1e-12), (np.float32, 1e-5)])
def test_mdn_loss_matches_reference(dtype, tol):
    out, target, weight = mdn_case(dtype)
    loss, dout = mdn_nll(out, target, weight)
    assert loss == pytest.approx(mdn_nll_ref(out, target, weight), rel=tol)
    assert dout.dtype == dtype and not dout[2].any()


def test_mdn_gradient_matches_finite_differences():
    out, target, weight = mdn_case(np.float64, seed=3)
    _, dout = mdn_nll(out, target, weight)
    check_gradients(lambda: mdn_nll(out, target, weight)[0], {"out": out}, {"out": dout}, rtol=1e-6, atol=1e-9)


def test_mdn_extreme_logits_stay_finite():
    out, target, weight = mdn_case(np.float64)
    out[:, 0] = [800, -800, 0, 50, -50, 30, -30]
    out[:, 1:4] *= 300
    loss, dout = mdn_nll(out, target, weight)
    assert np.isfinite(loss) and np.isfinite(dout).all()


# ---------------------------------------------------------------------------
# torch parity (float32 kernels vs float32 torch autograd)


def torch_window_lstm(torch, x, W_x, b, W_rec, W_win, b_win):
    """The windowed LSTM with torch ops, a Python loop over steps; padded steps keep the state."""
    Tn, Bn, _ = x.shape
    onehot = torch.nn.functional.one_hot(torch.tensor(CHARS), V).to(x.dtype)            # (B, U, V)
    valid = torch.arange(U)[None, :] < torch.tensor(N_CHARS)[:, None]                    # (B, U)
    h, c, w, kappa = (torch.zeros(Bn, n) for n in (H, H, V, K))
    ys, ws = [], []
    for t in range(Tn):
        live = torch.tensor(t < LENGTHS)[:, None]
        z = x[t] @ W_x + b + torch.cat([h, w], 1) @ W_rec
        i, f, g, o = z.split(H, 1)
        c_new = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h_new = torch.sigmoid(o) * torch.tanh(c_new)
        a, be, k = torch.exp(h_new @ W_win + b_win).split(K, 1)
        kap_new = kappa + k
        phi = (a[:, :, None] * torch.exp(-be[:, :, None] * (kap_new[:, :, None] - torch.arange(U)) ** 2)).sum(1)
        w_new = ((phi * valid)[:, :, None] * onehot).sum(1)
        h, c, w, kappa = (torch.where(live, new, old) for new, old in
                          ((h_new, h), (c_new, c), (w_new, w), (kap_new, kappa)))
        ys.append(torch.where(live, h_new, 0.0))
        ws.append(torch.where(live, w_new, 0.0))
    return torch.stack(ys), torch.stack(ws)


def test_window_lstm_torch_parity():
    torch = pytest.importorskip("torch")
    p = make(np.float32, seed=5)
    tensors = {k: torch.tensor(a, requires_grad=True) for k, a in p.items()}
    yt, wt = torch_window_lstm(torch, **tensors)
    rng = np.random.default_rng(6)
    gy, gw = rng.standard_normal((T, B, H)).astype(np.float32), rng.standard_normal((T, B, V)).astype(np.float32)
    ((yt * torch.from_numpy(gy)).sum() + (wt * torch.from_numpy(gw)).sum()).backward()
    y, w, _, _, _, cache = run(p)
    tol = dict(rtol=0, atol=1e-5)
    np.testing.assert_allclose(y, yt.detach().numpy(), **tol)
    np.testing.assert_allclose(w, wt.detach().numpy(), **tol)
    mask = (np.arange(T)[:, None] < LENGTHS[None, :])[:, :, None]
    dxg, grads = window_lstm_backward(gy * mask, gw * mask, cache)
    flat = dxg.reshape(T * B, -1)
    grads |= {"W_x": p["x"].reshape(T * B, D).T @ flat, "b": flat.sum(0), "x": dxg @ p["W_x"].T}
    for name, g in grads.items():
        np.testing.assert_allclose(g, tensors[name].grad.numpy(), err_msg=name, **tol)


def test_mdn_torch_parity():
    torch = pytest.importorskip("torch")
    out, target, weight = mdn_case(np.float32, seed=4)
    M = (out.shape[1] - 1) // 6
    o = torch.tensor(out, requires_grad=True)
    tg = torch.tensor(target, dtype=torch.float32)
    e, pi, mu1, mu2, ls1, ls2, r = torch.split(o, [1, M, M, M, M, M, M], dim=1)
    mix = torch.distributions.MixtureSameFamily(
        torch.distributions.Categorical(logits=pi),
        torch.distributions.MultivariateNormal(
            torch.stack([mu1, mu2], -1),
            scale_tril=torch.stack([torch.stack([ls1.exp(), torch.zeros_like(ls1)], -1),
                                    torch.stack([torch.tanh(r) * ls2.exp(),
                                                 torch.sqrt(1 - torch.tanh(r) ** 2) * ls2.exp()], -1)], -2)))
    bern = torch.nn.functional.binary_cross_entropy_with_logits(e[:, 0], tg[:, 2], reduction="none")
    loss_t = ((-mix.log_prob(tg[:, :2]) + bern) * torch.tensor(weight, dtype=torch.float32)).sum()
    loss_t.backward()
    loss, dout = mdn_nll(out, target, weight)
    assert loss == pytest.approx(loss_t.item(), abs=1e-5)
    np.testing.assert_allclose(dout, o.grad.numpy(), rtol=0, atol=1e-5)
