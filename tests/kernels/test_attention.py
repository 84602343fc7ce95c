"""kernels/attention.py against the NumPy reference, finite differences and a
hand-written torch additive attention."""
import numpy as np
import pytest

from suite.kernels.attention import (AttentionCache, additive_attention_backward,
                               additive_attention_forward)
from tests.gradcheck import check_gradients
from tests.reference.attention import additive_attention_ref

T, B, N, A, V = 3, 4, 5, 6, 7
LENGTHS = np.array([5, 1, 3, 4])  # mixed, including 1 and N


def make_args(dtype, seed=0):
    rng = np.random.default_rng(seed)

    def rand(*shape):
        return rng.standard_normal(shape).astype(dtype)

    return dict(qp=rand(T, B, A), keys=rand(B, N, A), values=rand(B, N, V), v=rand(A))


@pytest.mark.parametrize("lengths", [None, LENGTHS], ids=["full", "masked"])
def test_forward_matches_reference(lengths):
    for dtype, tol in ((np.float64, 1e-13), (np.float32, 1e-5)):
        args = make_args(dtype)
        context, alpha, cache = additive_attention_forward(lengths=lengths, **args)
        assert context.dtype == alpha.dtype == dtype
        assert isinstance(cache, AttentionCache)
        c_ref, a_ref = additive_attention_ref(lengths=lengths, **args)
        np.testing.assert_allclose(context, c_ref, rtol=0, atol=tol)
        np.testing.assert_allclose(alpha, a_ref, rtol=0, atol=tol)
        np.testing.assert_allclose(alpha.sum(axis=2), 1.0, rtol=0, atol=tol)
        if lengths is not None:
            for row, n in enumerate(lengths):
                assert not alpha[:, row, n:].any()  # exactly zero beyond the length


def test_masked_items_do_not_matter():
    """Changing memory items beyond a row's length changes nothing."""
    args = make_args(np.float64)
    context, alpha, _ = additive_attention_forward(lengths=LENGTHS, **args)
    for name in ("keys", "values"):
        changed = dict(args)
        changed[name] = args[name].copy()
        changed[name][1, 1:] = 1e3
        c2, a2, _ = additive_attention_forward(lengths=LENGTHS, **changed)
        np.testing.assert_array_equal(c2, context)
        np.testing.assert_array_equal(a2, alpha)


def test_large_scores_do_not_overflow():
    args = make_args(np.float32)
    args["v"] = args["v"] * 1e4  # scores ~1e4: exp would overflow without the max shift
    context, alpha, _ = additive_attention_forward(lengths=LENGTHS, **args)
    assert np.isfinite(context).all() and np.isfinite(alpha).all()
    np.testing.assert_allclose(alpha.sum(axis=2), 1.0, rtol=0, atol=1e-6)


@pytest.mark.parametrize("lengths", [None, LENGTHS], ids=["full", "masked"])
def test_gradients_finite_differences(lengths):
    args = make_args(np.float64)
    R = np.random.default_rng(1).standard_normal((T, B, V))

    def loss():
        return float(np.sum(additive_attention_forward(lengths=lengths, **args)[0] * R))

    _, alpha, cache = additive_attention_forward(lengths=lengths, **args)
    grads = additive_attention_backward(R, args["qp"], args["keys"], args["values"], args["v"],
                                        lengths, alpha, cache)
    names = ("qp", "keys", "values", "v")
    check_gradients(loss, {n: args[n] for n in names}, dict(zip(names, grads)),
                    rtol=1e-7, atol=1e-9)
    if lengths is not None:
        dqp, dkeys, dvalues, dv = grads
        for row, n in enumerate(lengths):
            assert not dkeys[row, n:].any() and not dvalues[row, n:].any()


def test_backward_float32_agrees_with_float64():
    out = []
    for dtype in (np.float64, np.float32):
        args = make_args(dtype)
        R = np.random.default_rng(2).standard_normal((T, B, V)).astype(dtype)
        _, alpha, cache = additive_attention_forward(lengths=LENGTHS, **args)
        grads = additive_attention_backward(R, args["qp"], args["keys"], args["values"],
                                            args["v"], LENGTHS, alpha, cache)
        assert all(g.dtype == dtype for g in grads)
        out.append(grads)
    for g64, g32 in zip(*out):
        np.testing.assert_allclose(g32, g64, rtol=0, atol=1e-5)


def test_one_step_equals_its_slice_of_many():
    """T=1 calls (step-by-step decoding) give the rows of one T-step call."""
    args = make_args(np.float64)
    context, alpha, _ = additive_attention_forward(lengths=LENGTHS, **args)
    for t in range(T):
        one = dict(args, qp=args["qp"][t:t + 1])
        c1, a1, _ = additive_attention_forward(lengths=LENGTHS, **one)
        np.testing.assert_allclose(c1[0], context[t], rtol=0, atol=1e-15)
        np.testing.assert_allclose(a1[0], alpha[t], rtol=0, atol=1e-15)


# ---------------------------------------------------------------------------
# torch parity (float32 kernel vs float32 torch)


def torch_additive_attention(torch, qp, keys, values, v, lengths):
    """Bahdanau attention written with whole-tensor torch ops."""
    scores = torch.tanh(qp[:, :, None, :] + keys[None]) @ v          # (T, B, N)
    mask = torch.arange(keys.shape[1])[None, :] >= lengths[:, None]  # (B, N)
    alpha = torch.softmax(scores.masked_fill(mask[None], float("-inf")), dim=-1)
    return torch.einsum("tbn,bnv->tbv", alpha, values), alpha


@pytest.mark.parametrize("lengths", [None, LENGTHS], ids=["full", "masked"])
def test_torch_parity(lengths):
    torch = pytest.importorskip("torch")
    args = make_args(np.float32, seed=3)
    tensors = {k: torch.tensor(a, requires_grad=True) for k, a in args.items()}
    lt = torch.tensor(np.full(B, N) if lengths is None else lengths)
    ct, at = torch_additive_attention(torch, **tensors, lengths=lt)
    R = np.random.default_rng(4).standard_normal((T, B, V)).astype(np.float32)
    ct.backward(torch.from_numpy(R))
    context, alpha, cache = additive_attention_forward(lengths=lengths, **args)
    tol = dict(rtol=0, atol=1e-5)
    np.testing.assert_allclose(context, ct.detach().numpy(), **tol)
    np.testing.assert_allclose(alpha, at.detach().numpy(), **tol)
    grads = additive_attention_backward(R, args["qp"], args["keys"], args["values"], args["v"],
                                        lengths, alpha, cache)
    for name, g in zip(("qp", "keys", "values", "v"), grads):
        np.testing.assert_allclose(g, tensors[name].grad.numpy(), err_msg=name, **tol)


# ---------------------------------------------------------------------------
# bad inputs: a clear ValueError, never a crash


@pytest.mark.parametrize("change,match", [
    (dict(qp=np.zeros((T, B), np.float32)), "qp has shape"),
    (dict(qp=np.zeros((T, B, A), np.int32)), "qp has dtype int32"),
    (dict(qp=np.zeros((T, B, 0), np.float32)), "attention size A must be positive"),
    (dict(keys=np.zeros((B, N, A + 1), np.float32)), "keys has shape"),
    (dict(keys=np.zeros((B + 1, N, A), np.float32)), "keys has shape"),
    (dict(keys=np.zeros((B, 0, A), np.float32)), "keys has shape"),
    (dict(keys=np.zeros((B, N, A), np.float64)), "keys has dtype float64"),
    (dict(values=np.zeros((B, N + 1, V), np.float32)), "values has shape"),
    (dict(values=np.zeros((B, N, V), np.float16)), "values has dtype float16"),
    (dict(v=np.zeros(A + 1, np.float32)), "v has shape"),
    (dict(lengths=np.array([1, 2, 3])), "lengths has shape"),
    (dict(lengths=np.array([1.0, 2.0, 3.0, 4.0])), "lengths has shape"),
    (dict(lengths=np.array([0, 1, 1, 1])), r"lengths must lie in \[1, N=5\]"),
    (dict(lengths=np.array([6, 1, 1, 1])), r"lengths must lie in \[1, N=5\]"),
], ids=lambda v: v if isinstance(v, str) else None)
def test_bad_inputs_raise_value_error(change, match):
    args = make_args(np.float32)
    args["lengths"] = LENGTHS
    args.update(change)
    with pytest.raises(ValueError, match=match):
        additive_attention_forward(**args)


def test_bad_backward_inputs_raise_value_error():
    args = make_args(np.float32)
    _, alpha, cache = additive_attention_forward(lengths=LENGTHS, **args)
    good = dict(dcontext=np.zeros((T, B, V), np.float32), lengths=LENGTHS, alpha=alpha,
                cache=cache, **args)
    for change, match in [
        (dict(dcontext=np.zeros((T, B, V + 1), np.float32)), "dcontext has shape"),
        (dict(dcontext=np.zeros((T, B, V))), "dcontext has dtype float64"),
        (dict(alpha=alpha[:, :, 1:]), "alpha has shape"),
        (dict(cache=(1, 2)), "cache must be"),
        (dict(lengths=None), "do not match the cache"),
        (dict(qp=args["qp"][:1]), "do not match the cache"),
    ]:
        with pytest.raises(ValueError, match=match):
            additive_attention_backward(**dict(good, **change))
