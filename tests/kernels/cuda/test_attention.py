"""The CUDA additive attention against the CPU kernels, the NumPy reference and finite differences."""

import numpy as np
import pytest

from tests.kernels.cuda.gpu import cuda_or_skip

kc = cuda_or_skip()
from suite.kernels import attention as cpu  # noqa: E402
from suite.kernels.cuda.attention import (AttentionCache, additive_attention_backward,  # noqa: E402
                                          additive_attention_forward)
from tests.gradcheck import check_gradients  # noqa: E402
from tests.reference.attention import additive_attention_ref  # noqa: E402

T, B, N, A, V = 3, 4, 5, 6, 7  # N, A, V above the simulator's 4 threads a block: strided loops wrap
LENGTHS = np.array([5, 1, 3, 4])  # mixed, including 1 and N
TOL = {np.float64: 1e-10, np.float32: 1e-5}


def make_args(dtype, seed=0, shape=(T, B, N, A, V)):
    t, b, n, a, v = shape
    rng = np.random.default_rng(seed)

    def rand(*s):
        return rng.standard_normal(s).astype(dtype)

    return dict(qp=rand(t, b, a), keys=rand(b, n, a), values=rand(b, n, v), v=rand(a))


def backward_args(args, alpha, cache, dcontext, lengths):
    return (dcontext, args["qp"], args["keys"], args["values"], args["v"], lengths, alpha, cache)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("lengths", [None, LENGTHS], ids=["full", "masked"])
def test_forward_and_backward_match_cpu(dtype, lengths):
    args = make_args(dtype)
    R = np.random.default_rng(1).standard_normal((T, B, V)).astype(dtype)
    context, alpha, cache = additive_attention_forward(lengths=lengths, **args)
    assert kc.is_device(context) and kc.is_device(alpha) and isinstance(cache, AttentionCache)
    c_cpu, a_cpu, cache_cpu = cpu.additive_attention_forward(lengths=lengths, **args)
    tol = dict(rtol=0, atol=TOL[dtype])
    context, alpha_host = kc.to_host(context), kc.to_host(alpha)
    assert context.dtype == alpha_host.dtype == dtype
    np.testing.assert_allclose(context, c_cpu, **tol)
    np.testing.assert_allclose(alpha_host, a_cpu, **tol)

    grads = additive_attention_backward(*backward_args(args, alpha, cache, R, lengths))
    grads_cpu = cpu.additive_attention_backward(*backward_args(args, a_cpu, cache_cpu, R, lengths))
    for name, g, g_cpu in zip(("dqp", "dkeys", "dvalues", "dv"), grads, grads_cpu):
        g = kc.to_host(g)
        assert g.dtype == dtype and g.shape == g_cpu.shape, name
        np.testing.assert_allclose(g, g_cpu, err_msg=name, **tol)
    if lengths is not None:
        dkeys, dvalues = kc.to_host(grads[1]), kc.to_host(grads[2])
        for row, n in enumerate(lengths):
            assert not alpha_host[:, row, n:].any()  # exactly zero beyond the length
            assert not dkeys[row, n:].any() and not dvalues[row, n:].any()


def test_forward_matches_reference_and_ignores_masked_items():
    args = make_args(np.float64, seed=2)
    context, alpha, _ = additive_attention_forward(lengths=LENGTHS, **args)
    c_ref, a_ref = additive_attention_ref(lengths=LENGTHS, **args)
    np.testing.assert_allclose(kc.to_host(context), c_ref, rtol=0, atol=1e-12)
    np.testing.assert_allclose(kc.to_host(alpha), a_ref, rtol=0, atol=1e-12)
    changed = dict(args, keys=args["keys"].copy(), values=args["values"].copy())
    changed["keys"][1, 1:] = 1e3  # row 1 has length 1: these items are masked
    changed["values"][1, 1:] = np.nan
    c2, a2, _ = additive_attention_forward(lengths=LENGTHS, **changed)
    np.testing.assert_array_equal(kc.to_host(c2), kc.to_host(context))
    np.testing.assert_array_equal(kc.to_host(a2), kc.to_host(alpha))


def test_large_scores_do_not_overflow():
    args = make_args(np.float32)
    args["v"] = args["v"] * 1e4  # scores ~1e4: exp would overflow without the max shift
    context, alpha, _ = additive_attention_forward(lengths=LENGTHS, **args)
    context, alpha = kc.to_host(context), kc.to_host(alpha)
    assert np.isfinite(context).all() and np.isfinite(alpha).all()
    np.testing.assert_allclose(alpha.sum(axis=2), 1.0, rtol=0, atol=1e-6)


def test_gradients_finite_differences():
    shape = (2, 3, 3, 5, 2)
    lengths = np.array([3, 1, 2])
    args = make_args(np.float64, seed=3, shape=shape)
    R = np.random.default_rng(4).standard_normal((shape[0], shape[1], shape[4]))

    def loss():
        return float(np.sum(kc.to_host(additive_attention_forward(lengths=lengths, **args)[0]) * R))

    _, alpha, cache = additive_attention_forward(lengths=lengths, **args)
    grads = additive_attention_backward(*backward_args(args, alpha, cache, R, lengths))
    names = ("qp", "keys", "values", "v")
    # a sample of each array: every probe costs two forward launches on the simulator
    check_gradients(loss, {n: args[n] for n in names}, {n: kc.to_host(g) for n, g in zip(names, grads)},
                    rtol=1e-7, atol=1e-9, sample=5, rng=0)


def test_device_inputs_and_strided_views():
    """Device arrays pass through without copies; qp may be a view of a larger buffer;
    backward takes the forward's device lengths."""
    args = make_args(np.float32, seed=5)
    want_c, want_a, want_cache = additive_attention_forward(lengths=LENGTHS, **args)
    big = np.zeros((T, B, A + 3), np.float32)
    big[:, :, 1:A + 1] = args["qp"]
    dev = {k: kc.to_device(a) for k, a in args.items()}
    dev["qp"] = kc.to_device(big)[:, :, 1:A + 1]  # strided view, not contiguous
    lengths = kc.to_device(LENGTHS)
    context, alpha, cache = additive_attention_forward(lengths=lengths, **dev)
    np.testing.assert_array_equal(kc.to_host(context), kc.to_host(want_c))
    np.testing.assert_array_equal(kc.to_host(alpha), kc.to_host(want_a))
    R = np.random.default_rng(6).standard_normal((T, B, V)).astype(np.float32)
    want = additive_attention_backward(*backward_args(args, want_a, want_cache, R, LENGTHS))
    got = additive_attention_backward(*backward_args(dev, alpha, cache, kc.to_device(R), cache.device_lengths))
    for g, w in zip(got, want):
        np.testing.assert_array_equal(kc.to_host(g), kc.to_host(w))


@pytest.mark.parametrize("change,match", [
    (dict(qp=np.zeros((T, B), np.float32)), "qp has shape"),
    (dict(qp=np.zeros((T, B, A), np.int32)), "qp has dtype int32"),
    (dict(qp=np.zeros((T, B, 0), np.float32)), "attention size A must be positive"),
    (dict(keys=np.zeros((B, N, A + 1), np.float32)), "keys has shape"),
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
    args = dict(make_args(np.float32), lengths=LENGTHS)
    args.update(change)
    with pytest.raises(ValueError, match=match):
        additive_attention_forward(**args)


def test_bad_backward_inputs_raise_value_error():
    args = make_args(np.float32)
    _, alpha, cache = additive_attention_forward(lengths=LENGTHS, **args)
    _, _, cpu_cache = cpu.additive_attention_forward(lengths=LENGTHS, **args)
    good = dict(dcontext=np.zeros((T, B, V), np.float32), lengths=LENGTHS, alpha=alpha, cache=cache, **args)
    for change, match in [
        (dict(dcontext=np.zeros((T, B, V + 1), np.float32)), "dcontext has shape"),
        (dict(dcontext=np.zeros((T, B, V))), "dcontext has dtype float64"),
        (dict(alpha=kc.to_host(alpha)[:, :, 1:]), "alpha has shape"),
        (dict(cache=cpu_cache), "cache must be"),
        (dict(lengths=None), "do not match the cache"),
        (dict(qp=args["qp"][:1]), "do not match the cache"),
    ]:
        with pytest.raises(ValueError, match=match):
            additive_attention_backward(**dict(good, **change))
