"""suite.nn Conv2d, ReLU, MaxPool2d and AdditiveAttention: forward against the
NumPy references, backward against finite differences (float64), and the
attention layer against torch where torch is installed.

Gradient checks use directional derivatives (tests/gradcheck.py), as
tests/suite/test_nn.py: for a random direction D of one array,
(L(p + eps D) - L(p - eps D)) / 2 eps must equal sum(grad * D), one check per array.
"""
import numpy as np
import pytest

from suite.nn import AdditiveAttention, Conv2d, MaxPool2d, Module, ReLU
from tests.gradcheck import check_directional
from tests.reference.attention import additive_attention_ref
from tests.reference.conv import conv2d_ref, maxpool2d_ref

RTOL = 1e-6


# ---------------------------------------------------------------------------------
# Conv2d, ReLU, MaxPool2d


def test_conv2d_init_and_forward():
    conv = Conv2d(4, 8, 3, padding=1, seed=0)
    assert [n for n, _ in conv.named_parameters()] == ["W", "b"]
    assert conv.W.shape == (8, 4, 3, 3) and conv.W.value.dtype == np.float32
    assert not conv.b.value.any()
    big = Conv2d(64, 64, 3, seed=1)
    np.testing.assert_allclose(big.W.value.std(), np.sqrt(2 / (64 * 9)), rtol=0.02)  # He
    assert Conv2d(4, 8, 3, padding=1, seed=0).W.value.tolist() == conv.W.value.tolist()
    assert Conv2d(2, 3, (2, 3)).W.shape == (3, 2, 2, 3)
    x = np.random.default_rng(1).standard_normal((2, 4, 5, 6)).astype(np.float32)
    y = conv(x)
    assert y.shape == (2, 8, 5, 6) and y.dtype == np.float32
    np.testing.assert_allclose(y, conv2d_ref(x, conv.W.value, conv.b.value, 1, 1),
                               rtol=0, atol=1e-5)


@pytest.mark.parametrize("kwargs,match", [
    (dict(kernel_size=0), "kernel_size"),
    (dict(kernel_size=(3, 3, 3)), "kernel_size"),
    (dict(stride=0), "stride"),
    (dict(padding=-1), "padding"),
    (dict(in_channels=0), "in_channels"),
])
def test_conv2d_rejects_bad_config(kwargs, match):
    args = dict(in_channels=2, out_channels=3, kernel_size=3) | kwargs
    with pytest.raises(ValueError, match=match):
        Conv2d(**args)
    with pytest.raises(ValueError, match="kernel"):
        MaxPool2d(0)


def test_conv2d_rejects_bad_input_and_needs_a_training_forward():
    conv = Conv2d(3, 2, 3)
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
        conv(np.zeros((1, 2, 5, 5)))
    for layer, x in ((conv, np.zeros((1, 3, 5, 5))), (ReLU(), np.zeros(3)),
                     (MaxPool2d(), np.zeros((1, 1, 4, 4)))):
        layer.eval()
        y = layer(x)
        with pytest.raises(RuntimeError, match="training mode"):
            layer.backward(np.zeros_like(y))


class _Stack(Module):
    """conv -> relu -> pool -> conv (stride 2): the shape of the caption encoder."""

    def __init__(self):
        self.conv1 = Conv2d(2, 3, 3, padding=1, seed=1)
        self.relu = ReLU()
        self.pool = MaxPool2d(2)
        self.conv2 = Conv2d(3, 4, 3, stride=2, padding=1, seed=2)
        self.conv1.b.value[:] = [0.1, -0.2, 0.3]  # nonzero biases, so their gradients show

    def forward(self, x):
        return self.conv2(self.pool(self.relu(self.conv1(x))))

    def backward(self, dy):
        return self.conv1.backward(self.relu.backward(self.pool.backward(self.conv2.backward(dy))))


def test_conv_stack_gradients():
    rng = np.random.default_rng(3)
    net = _Stack().to(np.float64)
    x = rng.standard_normal((2, 2, 6, 7))
    y = net(x)
    assert y.shape == (2, 4, 2, 2)
    R = rng.standard_normal(y.shape)
    dx = net.backward(R)

    def loss():
        return float(np.sum(net.forward(x) * R))

    for name, p in net.named_parameters():
        check_directional(loss, p.value, p.grad, rng, name, rtol=RTOL)
    check_directional(loss, x, dx, rng, "x", rtol=RTOL)


def test_conv2d_gradients_accumulate():
    rng = np.random.default_rng(4)
    conv = Conv2d(2, 2, 3, padding=1, seed=0).to(np.float64)
    x = rng.standard_normal((1, 2, 4, 4))
    R = rng.standard_normal((1, 2, 4, 4))
    conv(x)
    conv.backward(R)
    once = conv.W.grad.copy()
    conv(x)
    conv.backward(R)
    np.testing.assert_allclose(conv.W.grad, 2 * once, rtol=1e-12)


def test_conv2d_without_input_grad():
    rng = np.random.default_rng(6)
    x = rng.standard_normal((2, 2, 5, 5))
    R = rng.standard_normal((2, 3, 5, 5))
    full = Conv2d(2, 3, 3, padding=1, seed=0).to(np.float64)
    first = Conv2d(2, 3, 3, padding=1, seed=0, input_grad=False).to(np.float64)
    for conv in (full, first):
        conv(x)
    assert full.backward(R).shape == x.shape
    assert first.backward(R) is None
    np.testing.assert_array_equal(first.W.grad, full.W.grad)
    np.testing.assert_array_equal(first.b.grad, full.b.grad)


def test_maxpool_layer_matches_reference():
    x = np.random.default_rng(5).standard_normal((2, 3, 7, 6))
    pool = MaxPool2d(3, stride=2)
    y = pool(x)
    y_ref, arg_ref = maxpool2d_ref(x, 3, 2)
    np.testing.assert_array_equal(y, y_ref)
    dx = pool.backward(np.ones_like(y))
    expected = np.zeros(x.size)
    planes = (np.arange(2 * 3) * 7 * 6).reshape(2, 3, 1, 1)
    np.add.at(expected, (arg_ref + planes).reshape(-1), 1.0)
    np.testing.assert_array_equal(dx, expected.reshape(x.shape))
    assert MaxPool2d(2).stride == 2


# ---------------------------------------------------------------------------------
# AdditiveAttention

TQ, B, N, Q, K, A = 3, 4, 5, 6, 7, 8
LENGTHS = np.array([5, 2, 1, 4])


def _attention(dtype=np.float64, seed=0):
    att = AdditiveAttention(Q, K, A, seed=seed).to(dtype)
    att.bk.value[:] = np.linspace(-0.5, 0.5, A)  # nonzero, so its gradient shows
    return att


def test_attention_parameters_and_forward():
    att = AdditiveAttention(Q, K, A, seed=0)
    assert [(n, p.shape) for n, p in att.named_parameters()] == [
        ("Wq", (Q, A)), ("Wk", (K, A)), ("bk", (A,)), ("v", (A,))]
    assert att.Wq.value.dtype == np.float32
    assert AdditiveAttention(Q, K, A, seed=0).Wk.value.tolist() == att.Wk.value.tolist()
    rng = np.random.default_rng(1)
    memory = rng.standard_normal((B, N, K)).astype(np.float32)
    query = rng.standard_normal((TQ, B, Q)).astype(np.float32)
    att.set_memory(memory, LENGTHS)
    context, alpha = att(query)
    assert context.shape == (TQ, B, K) and alpha.shape == (TQ, B, N)
    c_ref, a_ref = additive_attention_ref(query @ att.Wq.value, memory @ att.Wk.value + att.bk.value,
                                          memory, att.v.value, LENGTHS)
    np.testing.assert_allclose(context, c_ref, rtol=0, atol=1e-5)
    np.testing.assert_allclose(alpha, a_ref, rtol=0, atol=1e-6)


@pytest.mark.parametrize("lengths", [None, LENGTHS], ids=["full", "masked"])
def test_attention_gradients(lengths):
    rng = np.random.default_rng(2)
    att = _attention()
    memory = rng.standard_normal((B, N, K))
    query = rng.standard_normal((TQ, B, Q))
    R = rng.standard_normal((TQ, B, K))
    att.set_memory(memory, lengths)
    att(query)
    dquery = att.backward(R)
    dmemory = att.dmemory
    assert dquery.shape == query.shape and dmemory.shape == memory.shape

    def loss():
        att.set_memory(memory, lengths)  # keys depend on Wk, bk and the memory
        return float(np.sum(att.forward(query)[0] * R))

    for name, p in att.named_parameters():
        check_directional(loss, p.value, p.grad, rng, name, rtol=RTOL)
    check_directional(loss, query, dquery, rng, "query", rtol=RTOL)
    check_directional(loss, memory, dmemory, rng, "memory", rtol=RTOL)
    if lengths is not None:
        for row, n in enumerate(lengths):
            assert not dmemory[row, n:].any()  # items beyond the length get nothing


def test_attention_step_by_step_eval_with_beams():
    """Eval mode, T=1 per step, memory rows repeated per beam: the same numbers
    as one training-mode call over all steps."""
    rng = np.random.default_rng(3)
    att = _attention(np.float32)
    memory = rng.standard_normal((B, N, K)).astype(np.float32)
    query = rng.standard_normal((TQ, B, Q)).astype(np.float32)
    att.set_memory(memory, LENGTHS)
    context, alpha = att(query)
    beams = 3
    att.eval()
    att.set_memory(np.repeat(memory, beams, axis=0), np.repeat(LENGTHS, beams))
    for t in range(TQ):
        c1, a1 = att(np.repeat(query[t:t + 1], beams, axis=1))  # (1, B*beams, .)
        np.testing.assert_allclose(c1[0].reshape(B, beams, K), np.repeat(context[t][:, None], beams, 1),
                                   rtol=0, atol=1e-6)
        np.testing.assert_allclose(a1[0, ::beams], alpha[t], rtol=0, atol=1e-6)
    with pytest.raises(RuntimeError, match="training mode"):
        att.backward(np.zeros((1, B * beams, K), np.float32))


def test_attention_rejects_bad_use():
    att = AdditiveAttention(Q, K, A)
    with pytest.raises(RuntimeError, match="set_memory"):
        att(np.zeros((1, B, Q)))
    with pytest.raises(ValueError, match=r"memory has shape .* expected \(B, N, 7\)"):
        att.set_memory(np.zeros((B, N, K + 1)))
    with pytest.raises(ValueError, match=r"lengths must lie in \[1, N=5\]"):
        att.set_memory(np.zeros((B, N, K)), np.array([0, 1, 2, 3]))
    with pytest.raises(ValueError, match="lengths has shape"):
        att.set_memory(np.zeros((B, N, K)), np.array([1, 2]))
    att.set_memory(np.zeros((B, N, K)))
    with pytest.raises(ValueError, match=r"query has shape .* expected \(T, 4, 6\)"):
        att(np.zeros((1, B + 1, Q)))
    with pytest.raises(RuntimeError, match="training mode"):
        att.backward(np.zeros((1, B, K)))  # set_memory dropped any earlier cache
    with pytest.raises(ValueError, match="attn_size"):
        AdditiveAttention(Q, K, 0)


def test_attention_matches_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(4)
    att = _attention(np.float32)
    memory = rng.standard_normal((B, N, K)).astype(np.float32)
    query = rng.standard_normal((TQ, B, Q)).astype(np.float32)
    R = rng.standard_normal((TQ, B, K)).astype(np.float32)
    att.set_memory(memory, LENGTHS)
    context, alpha = att(query)
    dquery = att.backward(R)

    p = {n: torch.tensor(pa.value, requires_grad=True) for n, pa in att.named_parameters()}
    mem = torch.tensor(memory, requires_grad=True)
    qry = torch.tensor(query, requires_grad=True)
    keys = mem @ p["Wk"] + p["bk"]                                     # (B, N, A)
    scores = torch.tanh((qry @ p["Wq"])[:, :, None, :] + keys[None]) @ p["v"]  # (T, B, N)
    mask = torch.arange(N)[None, :] >= torch.tensor(LENGTHS)[:, None]
    a_t = torch.softmax(scores.masked_fill(mask[None], float("-inf")), dim=-1)
    c_t = torch.einsum("tbn,bnk->tbk", a_t, mem)
    c_t.backward(torch.from_numpy(R))
    tol = dict(rtol=0, atol=1e-5)
    np.testing.assert_allclose(context, c_t.detach().numpy(), **tol)
    np.testing.assert_allclose(alpha, a_t.detach().numpy(), **tol)
    np.testing.assert_allclose(dquery, qry.grad.numpy(), **tol)
    np.testing.assert_allclose(att.dmemory, mem.grad.numpy(), **tol)
    for name, pa in att.named_parameters():
        np.testing.assert_allclose(pa.grad, p[name].grad.numpy(), err_msg=name, **tol)
