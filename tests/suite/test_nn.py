"""suite.nn layers: forward against NumPy, backward against finite differences
(float64), Recurrent against torch.nn where torch is installed.

Gradient checks use directional derivatives: for a random direction V of one
parameter (or of x, or of the initial state), the central difference
(L(p + eps V) - L(p - eps V)) / 2 eps must equal sum(grad * V). One check per
array localises a mistake to that array; in float64 the agreement is ~1e-9, so
a wrong sign or a missing term anywhere fails by orders of magnitude.
"""
import numpy as np
import pytest

from tests.gradcheck import directional_difference as directional_check

from suite.nn import (GRU, KINDS, LSTM, RNN, Dropout, Embedding, Linear, Module, Parameter,
                      Recurrent, state_from_torch)

EPS = 1e-6
RTOL = 1e-6


def assert_close_fd(fd, an, name, rtol=RTOL):
    assert abs(fd - an) <= rtol * max(1.0, abs(fd), abs(an)), f"{name}: fd {fd} vs analytic {an}"


# ---------------------------------------------------------------------------------
# Module bookkeeping


class _Two(Module):
    def __init__(self):
        self.first = Linear(3, 4, seed=1)
        self.blocks = [Linear(4, 4, seed=2), Linear(4, 2, bias=False, seed=3)]
        self.scale = Parameter(np.ones(2))


def test_named_parameters_are_dotted_and_ordered():
    names = [n for n, _ in _Two().named_parameters()]
    assert names == ["scale", "first.W", "first.b", "blocks.0.W", "blocks.0.b", "blocks.1.W"]


def test_shared_parameter_listed_once():
    m = _Two()
    m.blocks[1].W = m.blocks[0].W
    assert sum(p is m.blocks[0].W for p in m.parameters()) == 1


def test_state_dict_round_trip_copies():
    a, b = _Two(), _Two()
    b.first.W.value += 1.0
    b.load_state_dict(a.state_dict())
    for (na, pa), (nb, pb) in zip(a.named_parameters(), b.named_parameters()):
        assert na == nb and np.array_equal(pa.value, pb.value)
    sd = a.state_dict()
    sd["first.W"][...] = 7.0  # a copy: the model is untouched
    assert not np.any(a.first.W.value == 7.0)


def test_load_state_dict_names_every_problem():
    m = _Two()
    sd = m.state_dict()
    del sd["first.b"]
    sd["bogus"] = np.zeros(1)
    sd["blocks.0.W"] = np.zeros((5, 4))
    with pytest.raises(ValueError) as e:
        m.load_state_dict(sd)
    msg = str(e.value)
    assert "first.b" in msg and "bogus" in msg and "(5, 4)" in msg and "(4, 4)" in msg
    # non-strict skips missing/unexpected keys but never a wrong shape
    with pytest.raises(ValueError, match="blocks.0.W"):
        m.load_state_dict(sd, strict=False)
    sd["blocks.0.W"] = np.zeros((4, 4))
    missing, unexpected = m.load_state_dict(sd, strict=False)
    assert missing == ["first.b"] and unexpected == ["bogus"]
    assert np.all(m.blocks[0].W.value == 0)


def test_zero_grad_train_eval_and_to():
    m = _Two()
    for p in m.parameters():
        p.grad += 1.0
    m.zero_grad()
    assert all(not p.grad.any() for p in m.parameters())
    m.eval()
    assert not m.training and not m.blocks[1].training
    m.train()
    assert m.first.training
    assert m.dtype == np.float32
    m.to(np.float64)
    assert all(p.value.dtype == p.grad.dtype == np.float64 for p in m.parameters())


# ---------------------------------------------------------------------------------
# Linear, Embedding, Dropout


def test_linear_forward_matches_numpy():
    lin = Linear(5, 3, seed=0)
    x = np.random.default_rng(1).standard_normal((2, 4, 5)).astype(np.float32)
    y = lin(x)
    assert y.shape == (2, 4, 3) and y.dtype == np.float32
    np.testing.assert_allclose(y, x @ lin.W.value + lin.b.value, rtol=1e-6)
    bound = 1 / np.sqrt(5)
    assert np.abs(lin.W.value).max() <= bound
    assert Linear(5, 3, seed=0).W.value.tolist() == lin.W.value.tolist()  # seeded
    with pytest.raises(ValueError, match=r"\(\.\.\., 5\)"):
        lin(np.zeros((2, 4)))


@pytest.mark.parametrize("bias", [True, False])
def test_linear_gradients(bias):
    rng = np.random.default_rng(2)
    lin = Linear(4, 3, bias=bias, seed=0).to(np.float64)
    x = rng.standard_normal((2, 3, 4))
    R = rng.standard_normal((2, 3, 3))
    lin(x)
    dx = lin.backward(R)

    def loss():
        return float(np.sum(lin.forward(x) * R))

    for name, p in lin.named_parameters():
        assert_close_fd(*directional_check(loss, p.value, p.grad, rng), name)
    assert_close_fd(*directional_check(loss, x, dx, rng), "x")


def test_embedding_forward_and_repeated_ids_gradient():
    emb = Embedding(6, 3, seed=0)
    ids = np.array([[1, 5, 1], [0, 1, 2]])
    y = emb(ids)
    assert y.shape == (2, 3, 3)
    np.testing.assert_array_equal(y, emb.W.value[ids])
    assert np.abs(emb.W.value).max() <= 0.1
    dy = np.random.default_rng(0).standard_normal(y.shape).astype(np.float32)
    assert emb.backward(dy) is None
    expected = np.zeros((6, 3), np.float32)
    for idx, row in zip(ids.reshape(-1), dy.reshape(-1, 3)):
        expected[idx] += row  # id 1 appears three times: all three rows count
    np.testing.assert_allclose(emb.W.grad, expected, rtol=1e-6)
    with pytest.raises(ValueError, match=r"\[0, 6\)"):
        emb(np.array([6]))
    with pytest.raises(ValueError, match="integers"):
        emb(np.array([0.5]))


def test_embedding_gradient_finite_difference():
    rng = np.random.default_rng(3)
    emb = Embedding(5, 2, seed=0).to(np.float64)
    ids = np.array([3, 3, 0, 4])
    R = rng.standard_normal((4, 2))
    emb(ids)
    emb.backward(R)
    fd, an = directional_check(lambda: float(np.sum(emb.forward(ids) * R)),
                               emb.W.value, emb.W.grad, rng)
    assert_close_fd(fd, an, "W")


def test_dropout_train_eval_and_backward():
    x = np.ones((200, 50), np.float32)
    d = Dropout(0.25, seed=7)
    y = d(x)
    kept = y != 0
    assert abs(kept.mean() - 0.75) < 0.02
    np.testing.assert_allclose(y[kept], 1 / 0.75, rtol=1e-6)  # inverted scaling
    dy = np.arange(x.size, dtype=np.float32).reshape(x.shape)
    np.testing.assert_array_equal(d.backward(dy), dy * y)  # same mask, same scale
    np.testing.assert_array_equal(Dropout(0.25, seed=7)(x), y)  # seeded
    assert not np.array_equal(d(x), y)  # a fresh mask each call
    d.eval()
    assert d(x) is x
    with pytest.raises(RuntimeError, match="training mode"):
        d.backward(dy)
    assert Dropout(0.0)(x) is x
    with pytest.raises(ValueError):
        Dropout(1.0)


def test_backward_without_training_forward_is_an_error():
    lin = Linear(2, 2).eval()
    lin(np.zeros((1, 2)))
    with pytest.raises(RuntimeError, match="training mode"):
        lin.backward(np.zeros((1, 2)))


# ---------------------------------------------------------------------------------
# Recurrent: configuration

# (kind, proj_size) for every variant; projection where the kind allows it
VARIANTS = [("lstm", 0), ("lstm", 2), ("peephole", 0), ("peephole", 2), ("cifg", 0),
            ("lstmp", 2), ("gru", 0), ("rnn", 0)]


@pytest.mark.parametrize("kwargs, match", [
    (dict(kind="bogus"), "kind must be one of"),
    (dict(kind="lstmp"), "needs 0 < proj_size"),
    (dict(kind="gru", proj_size=2), "proj_size applies"),
    (dict(kind="cifg", proj_size=2), "proj_size applies"),
    (dict(kind="lstm", proj_size=4), "smaller than hidden_size"),
    (dict(num_layers=0), "num_layers"),
    (dict(dropout=1.0), "dropout"),
])
def test_recurrent_rejects_bad_config(kwargs, match):
    with pytest.raises(ValueError, match=match):
        Recurrent(3, 4, **kwargs)


def test_recurrent_parameter_names_and_init():
    m = Recurrent(3, 4, num_layers=2, kind="peephole", bidirectional=True, proj_size=2)
    shapes = {n: p.shape for n, p in m.named_parameters()}
    assert shapes["layers.0.fwd.W_ih"] == (3, 16)
    assert shapes["layers.0.bwd.W_hh"] == (2, 16)
    assert shapes["layers.1.fwd.W_ih"] == (4, 16)  # reads both directions' projected output
    assert shapes["layers.1.bwd.peep"] == (3, 4) and shapes["layers.1.bwd.W_hr"] == (4, 2)
    b = m.layers[0].fwd.b.value
    np.testing.assert_array_equal(b[4:8], 1.0)  # forget gate bias
    assert not b[:4].any() and not b[8:].any()
    W_hh = m.layers[0].fwd.W_hh.value
    for g in range(4):  # every gate block has orthonormal rows
        block = W_hh[:, g * 4:(g + 1) * 4].astype(np.float64)
        np.testing.assert_allclose(block @ block.T, np.eye(2), atol=1e-6)
    assert np.all(Recurrent(3, 4, kind="cifg").layers[0].fwd.b.value[:4] == -1.0)
    assert [n for n, _ in GRU(3, 4).named_parameters()] == [
        "layers.0.fwd.W_ih", "layers.0.fwd.W_hh", "layers.0.fwd.b_ih", "layers.0.fwd.b_hh"]
    assert RNN(3, 4).layers[0].fwd.W_hh.shape == (4, 4)
    assert LSTM(3, 4, proj_size=2).state_size == 2
    a, b2 = Recurrent(3, 4, seed=5), Recurrent(3, 4, seed=5)
    assert all(np.array_equal(p.value, q.value) for p, q in zip(a.parameters(), b2.parameters()))


# ---------------------------------------------------------------------------------
# Recurrent: forward


def _inputs(rng, T, B, D, dtype=np.float32):
    x = rng.standard_normal((T, B, D)).astype(dtype)
    lengths = np.array([T, 2, 0, T - 1])[:B]
    return x, lengths


@pytest.mark.parametrize("kind, proj", VARIANTS)
def test_recurrent_eval_forward_equals_train_forward(kind, proj):
    rng = np.random.default_rng(0)
    m = Recurrent(3, 4, num_layers=2, kind=kind, bidirectional=True, proj_size=proj, seed=1)
    x, lengths = _inputs(rng, 5, 4, 3)
    state = tuple(rng.standard_normal(s).astype(np.float32) for s in m.state_shapes(4))
    y, st = m.train()(x, lengths, state)
    y_eval, st_eval = m.eval()(x, lengths, state)
    R = proj or 4
    assert y.shape == (5, 4, 2 * R) and y.dtype == np.float32
    assert [s.shape for s in st] == [s for s in m.state_shapes(4)]
    np.testing.assert_allclose(y_eval, y, atol=1e-6)
    for a, b in zip(st_eval, st):
        np.testing.assert_allclose(a, b, atol=1e-6)
    for b, n in enumerate(lengths):
        assert not y[n:, b].any()  # padded steps are zero
    # a row of length 0 passes its initial state straight through
    for a, s in zip(st, state):
        np.testing.assert_array_equal(a[:, 2], s[:, 2])


def test_recurrent_dropout_only_between_layers_and_only_in_training():
    rng = np.random.default_rng(0)
    x, lengths = _inputs(rng, 5, 3, 3)
    plain = Recurrent(3, 4, num_layers=2, dropout=0.0, seed=3).eval()
    dropped = Recurrent(3, 4, num_layers=2, dropout=0.5, seed=3)
    np.testing.assert_array_equal(dropped.eval()(x, lengths)[0], plain(x, lengths)[0])
    y_train = dropped.train()(x, lengths)[0]
    assert not np.allclose(y_train, plain(x, lengths)[0], atol=1e-3)
    one = Recurrent(3, 4, num_layers=1, dropout=0.5, seed=3)  # nothing to drop between
    np.testing.assert_allclose(one.train()(x, lengths)[0], one.eval()(x, lengths)[0], atol=1e-6)


def test_recurrent_rejects_bad_inputs():
    m = Recurrent(3, 4, num_layers=2)
    x = np.zeros((5, 2, 3), np.float32)
    with pytest.raises(ValueError, match=r"\(T, B, 3\)"):
        m(np.zeros((5, 2, 4)))
    with pytest.raises(ValueError, match="lengths"):
        m(x, lengths=np.array([6, 1]))
    with pytest.raises(ValueError, match="expected \\(2, 2, 4\\)"):
        m(x, state=(np.zeros((1, 2, 4)), np.zeros((2, 2, 4))))
    with pytest.raises(ValueError, match="tuple of 2"):
        m(x, state=(np.zeros((2, 2, 4)),))
    with pytest.raises(RuntimeError, match="training mode"):
        m.backward(np.zeros((5, 2, 4)))
    m.eval()(x)
    with pytest.raises(RuntimeError, match="training mode"):
        m.backward(np.zeros((5, 2, 4)))


@pytest.mark.parametrize("kind, proj", [v for v in VARIANTS if v[0] not in ("gru", "rnn")])
def test_recurrent_cells_match_the_reference(kind, proj):
    """return_cells: c after every step of every layer and direction, as the slow NumPy LSTM gives it."""
    from tests.reference.lstm import lstm_forward_ref

    rng = np.random.default_rng(0)
    m = Recurrent(3, 4, num_layers=2, kind=kind, bidirectional=True, proj_size=proj, seed=1)
    T, B = 5, 4
    x, lengths = _inputs(rng, T, B, 3)
    state = tuple(rng.standard_normal(s).astype(np.float32) for s in m.state_shapes(B))
    y_plain, st_plain = m.eval()(x, lengths, state)
    y, st, cells = m.eval()(x, lengths, state, return_cells=True)
    assert cells.shape == (4, T, B, 4) and cells.dtype == np.float32
    np.testing.assert_allclose(y, y_plain, atol=1e-6)  # asking for cells changes nothing else
    for a, b in zip(st, st_plain):
        np.testing.assert_allclose(a, b, atol=1e-6)
    inp = x.astype(np.float64)
    for l, layer in enumerate(m.layers):
        outs = []
        for d, direction in enumerate(layer.directions()):
            k, rev = 2 * l + d, d == 1
            params = dict(W_ih=direction.W_ih.value, W_hh=direction.W_hh.value, b=direction.b.value,
                          peep=None if direction.peep is None else direction.peep.value,
                          W_hr=None if direction.W_hr is None else direction.W_hr.value, cifg=direction.cifg)
            h0, c0 = state[0][k], state[1][k]
            outs.append(lstm_forward_ref(inp, lengths, h0, c0, reverse=rev, **params)[0])
            for b, n in enumerate(lengths):
                for t in range(T):
                    if t >= n:
                        assert not cells[k, t, b].any(), (k, t, b)  # padded steps are zero
                        continue
                    piece = inp[t:n, b:b + 1] if rev else inp[:t + 1, b:b + 1]  # what the cell has read
                    _, _, c_t = lstm_forward_ref(piece, None, h0[b:b + 1], c0[b:b + 1], reverse=rev, **params)
                    np.testing.assert_allclose(cells[k, t, b], c_t[0], atol=1e-5, err_msg=f"row {k} t {t} b {b}")
                if n:  # the last cell read is the final state
                    np.testing.assert_array_equal(cells[k, 0 if rev else n - 1, b], st[1][k, b])
        inp = np.concatenate(outs, axis=2)
    y_train, _, cells_train = m.train()(x, lengths, state, return_cells=True)
    np.testing.assert_array_equal(cells_train, cells)
    m.backward(np.ones_like(y_train))  # training mode keeps the cache for backward
    with pytest.raises(ValueError, match="LSTM kinds"):
        Recurrent(3, 4, kind="gru")(x, return_cells=True)


# ---------------------------------------------------------------------------------
# Recurrent: gradients by finite differences (float64)


@pytest.mark.parametrize("kind, proj", VARIANTS)
def test_recurrent_gradients(kind, proj):
    """Two bidirectional layers, mixed lengths (one empty row), given initial
    state and dropout between the layers (its mask held fixed by reseeding)."""
    rng = np.random.default_rng(4)
    T, B, D, H = 4, 4, 2, 3
    m = Recurrent(D, H, num_layers=2, kind=kind, bidirectional=True, proj_size=proj,
                  dropout=0.3, seed=2).to(np.float64)
    for p in m.parameters():  # move off the structured init (zero biases, f = 1, ...)
        p.value += 0.3 * rng.standard_normal(p.shape)
    x, lengths = _inputs(rng, T, B, D, np.float64)
    state = tuple(rng.standard_normal(s) for s in m.state_shapes(B))
    Ry = rng.standard_normal((T, B, m.output_size))
    Rs = tuple(rng.standard_normal(s) for s in m.state_shapes(B))

    def run():
        for d in m.drops:
            d.rng = np.random.default_rng(11)  # same mask every call
        return m.forward(x, lengths, state)

    def loss():
        y, st = run()
        return float(np.sum(y * Ry) + sum(np.sum(s * r) for s, r in zip(st, Rs)))

    run()
    m.zero_grad()
    dx = m.backward(Ry, Rs)
    assert dx.shape == x.shape and not dx[:, 2].any()  # the empty row gets no gradient
    for name, p in m.named_parameters():
        assert_close_fd(*directional_check(loss, p.value, p.grad, rng), name)
    assert_close_fd(*directional_check(loss, x, dx, rng), "x")
    for k, (s, ds) in enumerate(zip(state, m.dstate0)):
        assert_close_fd(*directional_check(loss, s, ds, rng), f"state[{k}]")


def test_recurrent_gradients_accumulate():
    rng = np.random.default_rng(0)
    m = Recurrent(2, 3, kind="gru", seed=0).to(np.float64)
    x, lengths = _inputs(rng, 4, 3, 2, np.float64)
    dy = rng.standard_normal((4, 3, 3))
    m(x, lengths)
    m.backward(dy)
    once = [p.grad.copy() for p in m.parameters()]
    m(x, lengths)
    m.backward(dy)
    for g, p in zip(once, m.parameters()):
        np.testing.assert_allclose(p.grad, 2 * g, rtol=1e-12)
    with pytest.raises(RuntimeError):  # one backward per forward
        m.backward(dy)


# ---------------------------------------------------------------------------------
# torch parity (float32 on both sides; outputs, states and gradients to 1e-5)


def _torch_run(torch, module, x, lengths, state, Ry, Rs):
    """torch module on a packed batch: y, final state, dx and parameter grads."""
    from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence
    xt = torch.tensor(x, requires_grad=True)
    packed = pack_padded_sequence(xt, torch.tensor(lengths), enforce_sorted=False)
    st = tuple(torch.tensor(s) for s in state)
    out, st_out = module(packed, st if len(st) == 2 else st[0])
    y, _ = pad_packed_sequence(out, total_length=x.shape[0])
    st_out = st_out if isinstance(st_out, tuple) else (st_out,)
    loss = (y * torch.tensor(Ry)).sum() + sum((s * torch.tensor(r)).sum()
                                              for s, r in zip(st_out, Rs))
    loss.backward()
    grads = {k: p.grad.numpy() for k, p in module.named_parameters()}
    return (y.detach().numpy(), tuple(s.detach().numpy() for s in st_out),
            xt.grad.numpy(), grads)


@pytest.mark.parametrize("kind, proj", [("lstmp", 3), ("lstm", 0), ("gru", 0), ("rnn", 0)])
def test_recurrent_matches_torch(kind, proj):
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    T, B, D, H, L = 6, 3, 4, 5, 2
    cls = {"gru": torch.nn.GRU, "rnn": torch.nn.RNN}.get(kind, torch.nn.LSTM)
    kw = dict(proj_size=proj) if proj else {}
    ref = cls(D, H, num_layers=L, bidirectional=True, **kw)
    m = Recurrent(D, H, num_layers=L, kind=kind, bidirectional=True, proj_size=proj)
    m.load_state_dict(state_from_torch(ref, kind, L, True, proj))
    rng = np.random.default_rng(1)
    x = rng.standard_normal((T, B, D)).astype(np.float32)
    lengths = np.array([T, 2, 4])  # mixed (torch packing rejects length 0)
    state = tuple(rng.standard_normal(s).astype(np.float32) for s in m.state_shapes(B))
    Ry = rng.standard_normal((T, B, m.output_size)).astype(np.float32)
    Rs = tuple(rng.standard_normal(s).astype(np.float32) for s in m.state_shapes(B))

    y_ref, st_ref, dx_ref, g_ref = _torch_run(torch, ref, x, lengths, state, Ry, Rs)
    y, st = m(x, lengths, state)
    dx = m.backward(Ry, Rs)
    np.testing.assert_allclose(y, y_ref, atol=1e-5)
    for a, b in zip(st, st_ref):
        np.testing.assert_allclose(a, b, atol=1e-5)
    np.testing.assert_allclose(dx, dx_ref, atol=1e-5)
    mine = {n: p.grad for n, p in m.named_parameters()}
    for l in range(L):
        for suffix, d in (("", "fwd"), ("_reverse", "bwd")):
            p = f"layers.{l}.{d}."
            t = f"_l{l}{suffix}"
            np.testing.assert_allclose(mine[p + "W_ih"], g_ref["weight_ih" + t].T, atol=1e-5)
            np.testing.assert_allclose(mine[p + "W_hh"], g_ref["weight_hh" + t].T, atol=1e-5)
            if kind == "gru":
                np.testing.assert_allclose(mine[p + "b_ih"], g_ref["bias_ih" + t], atol=1e-5)
                np.testing.assert_allclose(mine[p + "b_hh"], g_ref["bias_hh" + t], atol=1e-5)
            else:  # one bias stands for the sum, so it gets the gradient of each
                np.testing.assert_allclose(mine[p + "b"], g_ref["bias_ih" + t], atol=1e-5)
            if proj:
                np.testing.assert_allclose(mine[p + "W_hr"], g_ref["weight_hr" + t].T, atol=1e-5)
    # inference kernels too
    y_eval, _ = m.eval()(x, lengths, state)
    np.testing.assert_allclose(y_eval, y_ref, atol=1e-5)


def test_state_from_torch_rejects_mismatches():
    torch = pytest.importorskip("torch")
    lstm = torch.nn.LSTM(3, 4, num_layers=2)
    with pytest.raises(ValueError, match="torch has no 'peephole'"):
        state_from_torch(lstm, "peephole", 2, False)
    with pytest.raises(ValueError, match="weight_ih_l1"):  # a layer not accounted for
        state_from_torch(lstm, "lstm", 1, False)
    with pytest.raises(ValueError, match="missing weight_ih_l0_reverse"):
        state_from_torch(lstm, "lstm", 2, True)
    with pytest.raises(ValueError, match="is LSTM"):
        state_from_torch(lstm, "gru", 2, False)
    with pytest.raises(ValueError, match="only tanh"):
        state_from_torch(torch.nn.RNN(3, 4, nonlinearity="relu"), "rnn", 1, False)
    # a plain mapping of arrays works; bias=False gives zero biases
    sd = {k: v.detach().numpy() for k, v in torch.nn.GRU(3, 4, bias=False).state_dict().items()}
    state = state_from_torch(sd, "gru", 1, False)
    assert state["layers.0.fwd.W_ih"].shape == (3, 12) and not state["layers.0.fwd.b_hh"].any()
    assert set(state) == {n for n, _ in GRU(3, 4).named_parameters()}


def test_kinds_cover_every_variant():
    assert set(KINDS) == {k for k, _ in VARIANTS}
