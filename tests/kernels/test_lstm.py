"""kernels/lstm.py against the NumPy reference, finite differences and torch.nn.LSTM."""
import itertools
import os

import numpy as np
import pytest

from suite.kernels import halves as halves_module
from suite.kernels.lstm import lstm_backward, lstm_forward, lstm_infer
from tests.gradcheck import check_gradients
from tests.reference.lstm import lstm_forward_ref

T, B, D, H, P = 5, 4, 3, 4, 2
LENGTHS = np.array([5, 0, 3, 1])  # mixed, including 0 and T

# (peep, proj, cifg) for vanilla, peephole, cifg, cifg+peephole, lstmp, peephole+lstmp
VARIANTS = {
    "vanilla": (False, False, False),
    "peephole": (True, False, False),
    "cifg": (False, False, True),
    "cifg_peephole": (True, False, True),
    "lstmp": (False, True, False),
    "peephole_lstmp": (True, True, False),
    "cifg_peephole_lstmp": (True, True, True),
}


def make_args(variant, dtype, seed=0, scale=0.5):
    """Random arguments for one variant: a dict of lstm_forward keyword arguments."""
    use_peep, use_proj, cifg = VARIANTS[variant]
    rng = np.random.default_rng(seed)
    G = 3 if cifg else 4
    R = P if use_proj else H

    def rand(*shape):
        return (scale * rng.standard_normal(shape)).astype(dtype)

    return dict(x=rand(T, B, D), h0=rand(B, R), c0=rand(B, H), W_ih=rand(D, G * H),
                W_hh=rand(R, G * H), b=rand(G * H), peep=rand(3, H) if use_peep else None,
                W_hr=rand(H, P) if use_proj else None, cifg=cifg)


CASES = list(itertools.product(VARIANTS, [None, LENGTHS], [False, True]))
IDS = [f"{v}-{'masked' if m is not None else 'full'}-{'rev' if r else 'fwd'}" for v, m, r in CASES]


@pytest.mark.parametrize("variant,lengths,reverse", CASES, ids=IDS)
def test_forward_matches_reference(variant, lengths, reverse, monkeypatch):
    import suite.kernels.lstm as lstm
    for dtype, tol in ((np.float64, 1e-13), (np.float32, 1e-6)):
        args = make_args(variant, dtype)
        y, hT, cT, _ = lstm_forward(lengths=lengths, reverse=reverse, **args)
        y_ref, hT_ref, cT_ref = lstm_forward_ref(lengths=lengths, reverse=reverse, **args)
        assert y.dtype == hT.dtype == cT.dtype == dtype
        np.testing.assert_allclose(y, y_ref, rtol=0, atol=tol)
        np.testing.assert_allclose(hT, hT_ref, rtol=0, atol=tol)
        np.testing.assert_allclose(cT, cT_ref, rtol=0, atol=tol)
        # both inference kernels: per-row (small batches) and batch-minor (wide), whose step GEMM is BLAS's or
        # ours (kernels/simd.py: B=4 padded to 8 columns; the tests run BLAS on one thread)
        for wide_batch, own_cols in ((B + 1, 32), (1, 0), (1, 32)):
            monkeypatch.setattr(lstm, "WIDE_BATCH", wide_batch)
            monkeypatch.setattr(lstm, "WIDE_STEPS", 1)
            monkeypatch.setattr(lstm, "OWN_GEMM_MAX_COLS", own_cols)
            y_inf, hT_inf, cT_inf = lstm_infer(lengths=lengths, reverse=reverse, **args)
            # same cell code; only the order of the sums in the gate inputs differs
            same = dict(rtol=0, atol=1e-14 if dtype == np.float64 else 5e-7)
            np.testing.assert_allclose(y_inf, y, **same)
            np.testing.assert_allclose(hT_inf, hT, **same)
            np.testing.assert_allclose(cT_inf, cT, **same)
        if lengths is not None:
            for row, n in enumerate(lengths):
                assert not y[n:, row].any()  # zero at padded steps
                if n == 0:  # no step taken: the initial states
                    np.testing.assert_array_equal(hT[row], args["h0"][row])
                    np.testing.assert_array_equal(cT[row], args["c0"][row])


@pytest.mark.parametrize("steps, rows", [(3, 1), (1, 8)])
def test_infer_chunks_longer_sequences(monkeypatch, steps, rows):
    """T larger than the chunk, not a multiple of it, in both directions; the chunk set by its minimum steps
    (3) or by its minimum rows (8 rows of B=4: 2 steps)."""
    import suite.kernels.lstm as lstm
    monkeypatch.setattr(lstm, "INFER_CHUNK", steps)
    monkeypatch.setattr(lstm, "INFER_ROWS", rows)
    rng = np.random.default_rng(1)
    T_long = 11
    args = make_args("peephole_lstmp", np.float64)
    args["x"] = rng.standard_normal((T_long, B, D))
    lengths = np.array([11, 0, 7, 4])
    for reverse in (False, True):
        y, hT, cT = lstm.lstm_infer(lengths=lengths, reverse=reverse, **args)
        y_ref, hT_ref, cT_ref = lstm_forward_ref(lengths=lengths, reverse=reverse, **args)
        np.testing.assert_allclose(y, y_ref, rtol=0, atol=1e-13)
        np.testing.assert_allclose(hT, hT_ref, rtol=0, atol=1e-13)
        np.testing.assert_allclose(cT, cT_ref, rtol=0, atol=1e-13)


@pytest.mark.parametrize("variant", ["peephole", "cifg_peephole_lstmp"])
def test_batch_equals_rows_one_by_one(variant):
    """A batch of 9 (one GEMM per step) against each row alone (one GEMV per
    step): outputs and input gradients per row, weight gradients summed."""
    rng = np.random.default_rng(5)
    B_wide = 9
    args = make_args(variant, np.float64)
    args["x"] = rng.standard_normal((T, B_wide, D))
    args["h0"] = rng.standard_normal((B_wide, args["h0"].shape[1]))
    args["c0"] = rng.standard_normal((B_wide, H))
    lengths = np.array([5, 0, 3, 1, 5, 2, 4, 5, 1])
    dy = rng.standard_normal((T, B_wide, args["h0"].shape[1]))
    for reverse in (False, True):
        y, hT, cT, cache = lstm_forward(lengths=lengths, reverse=reverse, **args)
        dx, dh0, dc0, grads = lstm_backward(dy, hT, cT, cache)
        y_inf = lstm_infer(lengths=lengths, reverse=reverse, **args)[0]
        np.testing.assert_allclose(y_inf, y, rtol=0, atol=1e-14)
        summed = {k: np.zeros_like(g) for k, g in grads.items()}
        for row in range(B_wide):
            one = dict(args, x=args["x"][:, row:row + 1], h0=args["h0"][row:row + 1],
                       c0=args["c0"][row:row + 1])
            y1, hT1, cT1, cache1 = lstm_forward(lengths=lengths[row:row + 1], reverse=reverse, **one)
            dx1, dh01, dc01, grads1 = lstm_backward(dy[:, row:row + 1], hT1, cT1, cache1)
            np.testing.assert_allclose(y1[:, 0], y[:, row], rtol=0, atol=1e-14)
            np.testing.assert_allclose(dx1[:, 0], dx[:, row], rtol=0, atol=1e-13)
            np.testing.assert_allclose(dh01[0], dh0[row], rtol=0, atol=1e-13)
            np.testing.assert_allclose(dc01[0], dc0[row], rtol=0, atol=1e-13)
            for k in summed:
                summed[k] += grads1[k]
        for k in grads:
            np.testing.assert_allclose(grads[k], summed[k], rtol=1e-12, atol=1e-12, err_msg=k)


def test_defaults_none_are_zeros_and_full_length():
    args = make_args("vanilla", np.float64)
    y, hT, cT, _ = lstm_forward(args["x"], None, None, None, args["W_ih"], args["W_hh"], args["b"])
    zeros_h, zeros_c = np.zeros_like(args["h0"]), np.zeros_like(args["c0"])
    y_ref, hT_ref, cT_ref = lstm_forward_ref(args["x"], np.full(B, T), zeros_h, zeros_c,
                                             args["W_ih"], args["W_hh"], args["b"])
    np.testing.assert_allclose(y, y_ref, rtol=0, atol=1e-13)
    np.testing.assert_allclose(cT, cT_ref, rtol=0, atol=1e-13)


# ---------------------------------------------------------------------------
# gradients by central differences (float64)

def _loss_weights(args, seed=7):
    rng = np.random.default_rng(seed)
    R = args["W_hh"].shape[0]
    return rng.standard_normal((T, B, R)), rng.standard_normal((B, R)), rng.standard_normal((B, H))


def _loss(args, lengths, reverse, weights):
    y, hT, cT, _ = lstm_forward(lengths=lengths, reverse=reverse, **args)
    wy, wh, wc = weights
    return np.sum(y * wy) + np.sum(hT * wh) + np.sum(cT * wc)


@pytest.mark.parametrize("variant,lengths,reverse", CASES, ids=IDS)
def test_gradients_finite_differences(variant, lengths, reverse):
    args = make_args(variant, np.float64)
    weights = _loss_weights(args)
    _, _, _, cache = lstm_forward(lengths=lengths, reverse=reverse, **args)
    dx, dh0, dc0, grads = lstm_backward(*weights, cache)
    analytic = dict(x=dx, h0=dh0, c0=dc0, **grads)
    expected = {"x", "h0", "c0", "W_ih", "W_hh", "b"}
    expected |= {"peep"} if args["peep"] is not None else set()
    expected |= {"W_hr"} if args["W_hr"] is not None else set()
    assert set(analytic) == expected
    check_gradients(lambda: _loss(args, lengths, reverse, weights),
                    {name: args[name] for name in expected}, analytic, rtol=1e-7, atol=1e-9)
    if lengths is not None:
        for row, n in enumerate(lengths):
            assert not dx[n:, row].any()  # padded steps get exactly zero
    if VARIANTS[variant][2] and args["peep"] is not None:
        assert not analytic["peep"][1].any()  # CIFG has no forget peephole


@pytest.mark.parametrize("variant,lengths,reverse", CASES, ids=IDS)
def test_backward_batch_minor_step_product_gives_the_same_gradients(variant, lengths, reverse, monkeypatch):
    """From BATCH_MINOR_ROWS rows each step's dG @ W_hh^T runs turned round; with the limit at one row the test
    batch takes that path (where its rows share a time index) and must give what the row-major path gives."""
    from suite.kernels import lstm as lstm_module

    args = make_args(variant, np.float64)
    weights = _loss_weights(args)

    def grads_of():
        _, _, _, cache = lstm_forward(lengths=lengths, reverse=reverse, **args)
        dx, dh0, dc0, grads = lstm_backward(*weights, cache)
        return [dx, dh0, dc0] + [grads[k] for k in sorted(grads)]

    assert B < lstm_module.BATCH_MINOR_ROWS
    row_major = grads_of()
    monkeypatch.setattr(lstm_module, "BATCH_MINOR_ROWS", 1)
    for a, b in zip(row_major, grads_of()):
        np.testing.assert_allclose(b, a, rtol=1e-12, atol=1e-14)


def test_backward_none_gradients_are_zeros():
    args = make_args("peephole_lstmp", np.float64)
    _, _, _, cache = lstm_forward(lengths=LENGTHS, **args)
    dx, dh0, dc0, grads = lstm_backward(None, None, None, cache)
    assert not dx.any() and not dh0.any() and not dc0.any()
    assert not any(g.any() for g in grads.values())


@pytest.mark.parametrize("reverse", [False, True])
def test_backward_kept_workspace_gives_what_a_new_array_gives(reverse, monkeypatch):
    """lstm_backward's gate gradients go into a buffer kept between calls (suite.kernels.scratch): a call after one
    that filled every slot, whose padded rows' slots the kernel must zero itself, gives what a new zeroed array
    gives."""
    from suite.kernels import scratch

    args = make_args("peephole", np.float64)
    weights = _loss_weights(args)

    def grads_of(lengths):
        _, _, _, cache = lstm_forward(lengths=lengths, reverse=reverse, **args)
        dx, dh0, dc0, grads = lstm_backward(*weights, cache)
        return [dx, dh0, dc0] + [grads[k] for k in sorted(grads)]

    grads_of(None)  # every slot of the kept buffer written
    kept = grads_of(LENGTHS)
    monkeypatch.setattr(scratch, "KEEP", False)
    for a, b in zip(kept, grads_of(LENGTHS)):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("variant", ["vanilla", "peephole_lstmp"])
@pytest.mark.parametrize("reverse", [False, True])
def test_new_arrays_need_no_zeros(variant, reverse, monkeypatch):
    """lstm_forward and lstm_backward take their outputs and the forward's cache from np.empty: the kernels write
    every slot, padded ones with zeros. With every new array full of NaN the results are what they were, and the
    cache's padded slots are zero (a NaN there would reach the weight gradients as NaN * 0)."""
    import suite.kernels.lstm as lstm

    args = make_args(variant, np.float64)
    weights = _loss_weights(args)

    def run():
        y, hT, cT, cache = lstm_forward(lengths=LENGTHS, reverse=reverse, **args)
        dx, dh0, dc0, grads = lstm_backward(*weights, cache)
        return [y, hT, cT, dx, dh0, dc0] + [grads[k] for k in sorted(grads)], cache

    expected, _ = run()  # compiled with the real NumPy first

    class NanNumpy:
        def __getattr__(self, name):
            return getattr(np, name)

        def empty(self, shape, dtype=float):
            return np.full(shape, np.nan, dtype)

    monkeypatch.setattr(lstm, "np", NanNumpy())
    got, cache = run()
    for a, b in zip(got, expected):
        np.testing.assert_array_equal(a, b)
    for row, n in enumerate(LENGTHS):
        assert not cache.r_prev[n:, row].any() and not cache.cs[n + 1:, row].any()
        assert cache.h_pre.size == 0 or not cache.h_pre[n:, row].any()  # (0, 0, 0) without a projection


def test_backward_dtype_float32():
    """float32 backward agrees with float64 backward (same inputs, rounded)."""
    args64 = make_args("peephole", np.float64)
    args32 = {k: (v.astype(np.float32) if isinstance(v, np.ndarray) else v)
              for k, v in args64.items()}
    out = []
    for args in (args64, args32):
        weights = [w.astype(args["x"].dtype) for w in _loss_weights(args)]
        _, _, _, cache = lstm_forward(lengths=LENGTHS, reverse=True, **args)
        dx, dh0, dc0, grads = lstm_backward(*weights, cache)
        assert dx.dtype == grads["W_hh"].dtype == args["x"].dtype
        out.append([dx, dh0, dc0] + [grads[k] for k in sorted(grads)])
    for a64, a32 in zip(*out):
        np.testing.assert_allclose(a32, a64, rtol=0, atol=1e-5)


# ---------------------------------------------------------------------------
# torch.nn.LSTM parity (float32 kernel vs float32 torch)

def _torch_case(torch, proj_size, bidirectional, seed=3):
    torch.manual_seed(seed)
    D_t, H_t = 5, 6
    lstm = torch.nn.LSTM(D_t, H_t, proj_size=proj_size, bidirectional=bidirectional)
    R = proj_size or H_t
    n_dir = 2 if bidirectional else 1
    x = torch.randn(T, B, D_t, requires_grad=True)
    h0 = torch.randn(n_dir, B, R, requires_grad=True)
    c0 = torch.randn(n_dir, B, H_t, requires_grad=True)
    return lstm, x, h0, c0


def _our_weights(lstm, suffix):
    def get(name):
        p = getattr(lstm, name + suffix, None)
        return None if p is None else p.detach().numpy().T.copy()
    b = (getattr(lstm, "bias_ih_l0" + suffix) + getattr(lstm, "bias_hh_l0" + suffix))
    return dict(W_ih=get("weight_ih_l0"), W_hh=get("weight_hh_l0"), b=b.detach().numpy(),
                W_hr=get("weight_hr_l0"))


def _torch_grad(lstm, name):
    return getattr(lstm, name).grad.numpy().T


@pytest.mark.filterwarnings("ignore:LSTM with projections is not supported with oneDNN")
@pytest.mark.parametrize("proj_size", [0, 3])
def test_torch_parity(proj_size):
    torch = pytest.importorskip("torch")
    lstm, x, h0, c0 = _torch_case(torch, proj_size, bidirectional=False)
    out, (hn, cn) = lstm(x, (h0, c0))
    rng = np.random.default_rng(0)
    wy, wh, wc = (rng.standard_normal(tuple(a.shape)).astype(np.float32) for a in (out, hn, cn))
    (out * torch.from_numpy(wy)).sum().add((hn * torch.from_numpy(wh)).sum()) \
        .add((cn * torch.from_numpy(wc)).sum()).backward()

    w = _our_weights(lstm, "")
    y, hT, cT, cache = lstm_forward(x.detach().numpy(), None, h0[0].detach().numpy(),
                                    c0[0].detach().numpy(), **w)
    tol = dict(rtol=0, atol=1e-5)
    np.testing.assert_allclose(y, out.detach().numpy(), **tol)
    np.testing.assert_allclose(hT, hn[0].detach().numpy(), **tol)
    np.testing.assert_allclose(cT, cn[0].detach().numpy(), **tol)
    y_inf, _, _ = lstm_infer(x.detach().numpy(), None, h0[0].detach().numpy(),
                             c0[0].detach().numpy(), **w)
    np.testing.assert_allclose(y_inf, out.detach().numpy(), **tol)

    dx, dh0, dc0, grads = lstm_backward(wy, wh[0], wc[0], cache)
    np.testing.assert_allclose(dx, x.grad.numpy(), **tol)
    np.testing.assert_allclose(dh0, h0.grad[0].numpy(), **tol)
    np.testing.assert_allclose(dc0, c0.grad[0].numpy(), **tol)
    np.testing.assert_allclose(grads["W_ih"], _torch_grad(lstm, "weight_ih_l0"), **tol)
    np.testing.assert_allclose(grads["W_hh"], _torch_grad(lstm, "weight_hh_l0"), **tol)
    # our single bias feeds the same sum as both of torch's
    np.testing.assert_allclose(grads["b"], lstm.bias_ih_l0.grad.numpy(), **tol)
    np.testing.assert_allclose(grads["b"], lstm.bias_hh_l0.grad.numpy(), **tol)
    if proj_size:
        np.testing.assert_allclose(grads["W_hr"], _torch_grad(lstm, "weight_hr_l0"), **tol)


@pytest.mark.filterwarnings("ignore:LSTM with projections is not supported with oneDNN")
@pytest.mark.parametrize("proj_size", [0, 3])
def test_torch_packed_bidirectional_parity(proj_size):
    """torch's reverse direction over packed sequences is our reverse=True."""
    torch = pytest.importorskip("torch")
    from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence
    lstm, x, h0, c0 = _torch_case(torch, proj_size, bidirectional=True)
    lengths = np.array([5, 2, 3, 1])  # torch cannot pack empty sequences
    packed = pack_padded_sequence(x, torch.from_numpy(lengths), enforce_sorted=False)
    out_packed, (hn, cn) = lstm(packed, (h0, c0))
    out, _ = pad_packed_sequence(out_packed, total_length=T)  # (T, B, 2R), zeros at padding
    rng = np.random.default_rng(1)
    wy, wh, wc = (rng.standard_normal(tuple(a.shape)).astype(np.float32) for a in (out, hn, cn))
    (out * torch.from_numpy(wy)).sum().add((hn * torch.from_numpy(wh)).sum()) \
        .add((cn * torch.from_numpy(wc)).sum()).backward()

    R = proj_size or lstm.hidden_size
    tol = dict(rtol=0, atol=1e-5)
    dx_total = np.zeros(x.shape, np.float32)
    for d, suffix in enumerate(["", "_reverse"]):
        w = _our_weights(lstm, suffix)
        y, hT, cT, cache = lstm_forward(x.detach().numpy(), lengths, h0[d].detach().numpy(),
                                        c0[d].detach().numpy(), reverse=bool(d), **w)
        np.testing.assert_allclose(y, out[:, :, d * R:(d + 1) * R].detach().numpy(), **tol)
        np.testing.assert_allclose(hT, hn[d].detach().numpy(), **tol)
        np.testing.assert_allclose(cT, cn[d].detach().numpy(), **tol)
        dx, dh0, dc0, grads = lstm_backward(wy[:, :, d * R:(d + 1) * R], wh[d], wc[d], cache)
        dx_total += dx
        np.testing.assert_allclose(dh0, h0.grad[d].numpy(), **tol)
        np.testing.assert_allclose(dc0, c0.grad[d].numpy(), **tol)
        np.testing.assert_allclose(grads["W_ih"], _torch_grad(lstm, "weight_ih_l0" + suffix), **tol)
        np.testing.assert_allclose(grads["W_hh"], _torch_grad(lstm, "weight_hh_l0" + suffix), **tol)
        np.testing.assert_allclose(grads["b"], getattr(lstm, "bias_ih_l0" + suffix).grad.numpy(),
                                   **tol)
        if proj_size:
            np.testing.assert_allclose(grads["W_hr"], _torch_grad(lstm, "weight_hr_l0" + suffix),
                                       **tol)
    np.testing.assert_allclose(dx_total, x.grad.numpy(), **tol)


# ---------------------------------------------------------------------------
# bad inputs: a clear ValueError, never a crash

def _good(dtype=np.float32, **change):
    args = make_args("peephole_lstmp", dtype)
    args["lengths"] = LENGTHS
    args.update(change)
    return args


@pytest.mark.parametrize("fn", [lstm_forward, lstm_infer])
@pytest.mark.parametrize("change,match", [
    (dict(x=np.zeros((T, B), np.float32)), "x has shape"),
    (dict(x=np.zeros((T, B, D + 1), np.float32)), "W_ih has shape"),
    (dict(W_ih=np.zeros((D, 4 * H + 1), np.float32)), "W_ih has shape"),
    (dict(W_hh=np.zeros((H, 4 * H), np.float32)), "W_hh has shape"),
    (dict(b=np.zeros(4 * H - 1, np.float32)), "b has shape"),
    (dict(peep=np.zeros((4, H), np.float32)), "peep has shape"),
    (dict(W_hr=np.zeros((H + 1, P), np.float32)), "W_hr has shape"),
    (dict(h0=np.zeros((B, H), np.float32)), "h0 has shape"),
    (dict(c0=np.zeros((B + 1, H), np.float32)), "c0 has shape"),
    (dict(lengths=np.array([1, 2, 3])), "lengths has shape"),
    (dict(lengths=np.array([1.0, 2.0, 3.0, 4.0])), "lengths has shape"),
    (dict(lengths=np.array([T + 1, 0, 1, 1])), r"lengths must lie in \[0, T=5\]"),
    (dict(lengths=np.array([-1, 0, 1, 1])), r"lengths must lie in \[0, T=5\]"),
    (dict(x=np.zeros((T, B, D), np.int64)), "x has dtype int64"),
    (dict(W_hh=np.zeros((P, 4 * H), np.float64)), "W_hh has dtype float64"),
    (dict(c0=np.zeros((B, H), np.int32)), "c0 has dtype int32"),
    (dict(x=np.zeros((T, B, D), np.float16)), "x has dtype float16"),
], ids=lambda v: v if isinstance(v, str) else None)
def test_bad_inputs_raise_value_error(fn, change, match):
    with pytest.raises(ValueError, match=match):
        fn(**_good(**change))


def test_bad_backward_inputs_raise_value_error():
    _, _, _, cache = lstm_forward(**_good())
    with pytest.raises(ValueError, match="dy has shape"):
        lstm_backward(np.zeros((T, B, H), np.float32), None, None, cache)
    with pytest.raises(ValueError, match="dhT has dtype float64"):
        lstm_backward(None, np.zeros((B, P)), None, cache)
    with pytest.raises(ValueError, match="dcT has shape"):
        lstm_backward(None, None, np.zeros((B, P), np.float32), cache)
    with pytest.raises(ValueError, match="cache must be"):
        lstm_backward(None, None, None, (1, 2))


def test_non_contiguous_inputs_are_copied():
    args = _good(np.float64)
    expected = lstm_forward(**args)[:3]
    strided = dict(args)
    strided["x"] = np.asfortranarray(args["x"])
    strided["W_ih"] = np.ascontiguousarray(args["W_ih"].T).T  # F-ordered view
    big = np.zeros((B, 2 * P))
    big[:, ::2] = args["h0"]
    strided["h0"] = big[:, ::2]
    assert not strided["h0"].flags.c_contiguous
    for fn in (lstm_forward, lstm_infer):
        for got, want in zip(fn(**strided)[:3], expected):
            np.testing.assert_allclose(got, want, rtol=0, atol=1e-15)


def test_empty_time_and_batch():
    for T_, B_ in ((0, 2), (3, 0)):
        args = make_args("vanilla", np.float32)
        args["x"] = np.zeros((T_, B_, D), np.float32)
        args["h0"], args["c0"] = args["h0"][:B_], args["c0"][:B_]
        y, hT, cT, cache = lstm_forward(lengths=None, **args)
        assert y.shape == (T_, B_, H)
        np.testing.assert_array_equal(hT, args["h0"])
        dx, dh0, dc0, grads = lstm_backward(None, np.ones((B_, H), np.float32), None, cache)
        assert dx.shape == (T_, B_, D)
        np.testing.assert_array_equal(dh0, np.ones((B_, H)))
        assert lstm_infer(lengths=None, **args)[0].shape == (T_, B_, H)


@pytest.mark.parametrize("variant", ["vanilla", "cifg_peephole_lstmp", "peephole_lstmp"])
@pytest.mark.parametrize("reverse", [False, True])
def test_halves_of_the_batch_side_by_side_give_the_whole_batchs_results(variant, reverse, monkeypatch):
    """The two-core path (SPLIT_BATCH, training and inference): the batch's halves run as two layer calls in two threads; outputs are
    the whole batch's to the last bit (each row's arithmetic is the same), gradients to rounding (the weight
    gradients are summed over the halves)."""
    import suite.kernels.lstm as lstm

    args = make_args(variant, np.float64, seed=3)
    rng = np.random.default_rng(4)
    dy = rng.standard_normal((T, B, args["W_hh"].shape[0]))
    dhT = rng.standard_normal((B, args["W_hh"].shape[0]))
    dcT = rng.standard_normal((B, H))
    lengths = np.array([5, 2, 0, 4])  # each half mixed, and the halves unlike each other
    monkeypatch.setattr(lstm, "WIDE_BATCH", 1)
    monkeypatch.setattr(lstm, "WIDE_STEPS", 1)

    def run():
        y, hT, cT, cache = lstm_forward(lengths=lengths, reverse=reverse, **args)
        y_inf, _, cT_inf = lstm_infer(lengths=lengths, reverse=reverse, **args)
        dx, dh0, dc0, grads = lstm_backward(dy, dhT, dcT, cache)
        return [y, hT, cT, y_inf, cT_inf], [dx, dh0, dc0] + [grads[k] for k in sorted(grads)], cache

    outputs, gradients, cache = run()
    assert isinstance(cache, lstm.LSTMCache)
    calls = []
    by_halves = lstm._by_halves
    monkeypatch.setattr(lstm, "_by_halves", lambda halves, fn: calls.append(halves) or by_halves(halves, fn))
    monkeypatch.setattr(lstm, "SPLIT_BATCH", 2)
    monkeypatch.setattr(lstm, "INFER_SPLIT_BATCH", 2)
    monkeypatch.setattr(halves_module, "_BLAS", _FakeBlas(2))
    split_outputs, split_gradients, split_cache = run()
    assert isinstance(split_cache, lstm.SplitCache)
    np.testing.assert_array_equal(split_cache.cs, cache.cs)  # what Recurrent(return_cells=True) reads
    assert calls == [[(0, 2), (2, 4)]] * 3  # forward, inference and backward; the calls inside a half ran whole
    for a, b in zip(outputs, split_outputs):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(gradients, split_gradients):
        np.testing.assert_allclose(b, a, rtol=1e-13, atol=1e-15)
    with pytest.raises(ValueError, match="dy"):
        lstm_backward(dy[:, :2], None, None, split_cache)


class _FakeBlas:
    """Stands in for threadpoolctl's BLAS selection: ``threads`` threads, and limit() changes nothing (the
    tests already run BLAS on one thread)."""

    def __init__(self, threads):
        self.lib_controllers = [type("Lib", (), {"num_threads": threads})()]

    def limit(self, limits):
        import contextlib

        return contextlib.nullcontext()


def test_halves_only_where_blas_may_use_two_threads(monkeypatch):
    import suite.kernels.lstm as lstm

    n = lstm.SPLIT_BATCH
    monkeypatch.setattr(halves_module, "_BLAS", _FakeBlas(2))
    assert lstm._halves(n) == [(0, n // 2), (n // 2, n)]
    assert lstm._halves(n - 1) is None
    m = lstm.INFER_SPLIT_BATCH  # inference's bound
    assert lstm._halves(m, None, m) == [(0, m // 2), (m // 2, m)]
    assert lstm._halves(m - 1, None, m) is None
    monkeypatch.setattr(halves_module, "_SPLITTING", True)
    assert lstm._halves(n) is None  # inside a half
    monkeypatch.setattr(halves_module, "_SPLITTING", False)
    monkeypatch.setattr(halves_module, "_BLAS", _FakeBlas(1))
    assert lstm._halves(64) is None


def test_halves_limit_the_blas_the_kernels_call_even_when_the_first_call_splits():
    """The halves hold BLAS to one thread with threadpoolctl; the controller must see SciPy's OpenBLAS, which
    np.dot in @njit calls, though in a new process whose first LSTM call splits no kernel has loaded it yet
    (without it, the halves ran two-thread GEMMs side by side: 2 x slower)."""
    import subprocess
    import sys

    code = """
import numpy as np
import suite.kernels.lstm as lstm
from threadpoolctl import ThreadpoolController
T, B, D, H = 2, lstm.SPLIT_BATCH, 3, 4
z = np.zeros
lstm.lstm_forward(z((T, B, D), np.float32), None, None, None, z((D, 4 * H), np.float32), z((H, 4 * H), np.float32),
                  z(4 * H, np.float32))
from suite.kernels import halves
held = {lib.filepath for lib in halves._BLAS.lib_controllers}
loaded = {lib.filepath for lib in ThreadpoolController().select(user_api="blas").lib_controllers}
assert held == loaded, (held, loaded)
"""
    env = dict(os.environ, OPENBLAS_NUM_THREADS="2")
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]


def test_no_halves_for_recurrent_weights_over_the_limit(monkeypatch):
    import suite.kernels.lstm as lstm

    monkeypatch.setattr(halves_module, "_BLAS", _FakeBlas(2))
    small, big = np.zeros((256, 1024), np.float32), np.zeros((512, 2048), np.float32)
    assert lstm._halves(64, small) is not None and lstm._halves(64, big) is None
