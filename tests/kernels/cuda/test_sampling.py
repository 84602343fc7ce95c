"""The CUDA sampling step against a NumPy inverse CDF, the CPU sampler draw for draw, and its distribution."""

import numpy as np
import pytest

from tests.kernels.cuda.gpu import cuda_or_skip

kc = cuda_or_skip()
import suite.kernels.cuda.sampling as gs  # noqa: E402
from suite.kernels.cuda.sampling import sample_logits, uniforms  # noqa: E402
from suite.kernels.sampling import new_rng  # noqa: E402
from suite.kernels.sampling import sample_logits as cpu_sample_logits  # noqa: E402

B, C = 6, 7  # C above the simulator's 4 threads a block: segments and strides wrap


def probabilities(logits, temperature, top_k):
    """The CPU's distribution, spelled out: softmax(x / T) over the top_k (stable order: ties keep low ids)."""
    x = np.asarray(logits, np.float64)
    keep = np.ones(x.shape, bool)
    if 0 < top_k < x.size:
        keep[:] = False
        keep[np.argsort(-x, kind="stable")[:top_k]] = True
    m = x.max()
    with np.errstate(under="ignore"):
        p = np.where(keep, np.where(x == m, 1.0, np.exp((x - m) / temperature)), 0.0)
    return p


def inverse_cdf(logits, temperature, top_k, u):
    """NumPy's version of the draw rule: the first id whose running sum passes u * total."""
    if temperature == 0:
        return int(np.argmax(logits))
    p = probabilities(logits, temperature, top_k)
    total = 0.0
    for w in p:  # sequential, as the CPU sums
        total += w
    acc, last = 0.0, -1
    for j, w in enumerate(p):
        if w > 0:
            acc += w
            last = j
            if u * total < acc:
                return j
    return last


def tricky_logits(dtype, seed):
    """Random rows, plus rows of ties, -0.0 beside 0.0, -inf and a huge logit."""
    x = np.random.default_rng(seed).standard_normal((B, C)).astype(dtype)
    x[1] = np.round(x[1])              # ties at several values
    x[2] = 0.5                         # all equal
    x[3, 2:5] = -0.0
    x[3, [0, 6]] = 0.0
    x[4, :3] = -np.inf
    x[5, 1] = 1e30
    return x


CASES = [(1.0, 0), (0.7, 3), (2.0, 1), (1.0, 6), (1.0, C), (1.0, C + 5), (0.0, 0), (0.0, 2)]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("temperature,top_k", CASES)
def test_matches_numpy_inverse_cdf(dtype, temperature, top_k):
    logits = tricky_logits(dtype, seed=top_k)
    u = np.random.default_rng(10 + top_k).random(B)
    ids = sample_logits(logits, temperature, top_k, u)
    assert kc.is_device(ids)
    ids = kc.to_host(ids)
    assert ids.dtype == np.int64
    np.testing.assert_array_equal(ids, [inverse_cdf(logits[b], temperature, top_k, u[b]) for b in range(B)])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("top_k", [3, 1, 6])
def test_long_rows_bisect_for_top_k(monkeypatch, dtype, top_k):
    """Rows longer than RANK_LIMIT find the top_k threshold by bisection on keys: same ids."""
    monkeypatch.setattr(gs, "RANK_LIMIT", 0)
    logits = tricky_logits(dtype, seed=20 + top_k)
    u = np.random.default_rng(30 + top_k).random(B)
    ids = kc.to_host(sample_logits(logits, 0.8, top_k, u))
    np.testing.assert_array_equal(ids, [inverse_cdf(logits[b], 0.8, top_k, u[b]) for b in range(B)])


@pytest.mark.parametrize("temperature,top_k", [(1.0, 0), (0.5, 2), (0.0, 0)])
def test_uniforms_reproduce_the_cpu_sampler_draw_for_draw(temperature, top_k):
    logits = np.random.default_rng(3).standard_normal((B, C))
    rng, cpu_rng = new_rng(42), new_rng(42)
    u = uniforms(rng, B) if temperature else np.zeros(B)
    ids = kc.to_host(sample_logits(kc.to_device(logits), temperature, top_k, kc.to_device(u)))
    want = [cpu_sample_logits(logits[b], temperature, top_k, cpu_rng) for b in range(B)]
    np.testing.assert_array_equal(ids, want)
    if temperature:
        np.testing.assert_array_equal(rng, cpu_rng)  # the same stream, advanced as far


@pytest.mark.parametrize("top_k", [0, 3])
def test_distribution_matches_the_cpu_samplers(top_k):
    """Over many draws both samplers give the same distribution.

    The device gets n stratified uniforms (i + 0.5) / n, so its histogram is its
    distribution to within 1/n, with no sampling noise; the CPU sampler draws from
    its own rng, so its histogram is within a few standard errors of its distribution.
    """
    logits = np.array([0.3, -1.0, 1.2, 0.3, 2.0], np.float32)
    temperature = 0.8
    p = probabilities(logits, temperature, top_k)
    p /= p.sum()
    if top_k:
        assert np.count_nonzero(p) == top_k  # the tie at 0.3 keeps the lower id only
    n = 160
    u = (np.arange(n) + 0.5) / n
    ids = kc.to_host(sample_logits(np.tile(logits, (n, 1)), temperature, top_k, u))
    gpu = np.bincount(ids, minlength=logits.size) / n
    np.testing.assert_allclose(gpu, p, rtol=0, atol=1.0 / n)
    draws = 20000
    rng = new_rng(7)
    cpu = np.bincount([cpu_sample_logits(logits, temperature, top_k, rng) for _ in range(draws)],
                      minlength=logits.size) / draws
    np.testing.assert_allclose(cpu, p, rtol=0, atol=5 * np.sqrt(0.25 / draws))
    np.testing.assert_allclose(gpu, cpu, rtol=0, atol=1.0 / n + 5 * np.sqrt(0.25 / draws))


def test_edges_of_the_cdf_and_views():
    buf = np.full((3, 3, 4), np.nan)
    buf[1] = [[0.0, 0.0, 0.0, -np.inf],  # u * total rounds to total: the last id of positive weight
              [1.0, 2.0, 3.0, 4.0],
              [0.5, 0.5, 0.5, 0.5]]      # u * total = 2.0 exactly: the running sum must pass it
    u = np.array([1.0, 1.0 - 2.0 ** -53, 0.5])
    view = kc.to_device(buf)[1]          # one step of a (T, B, C) buffer
    ids = kc.to_host(sample_logits(view, 1.0, 0, u))
    np.testing.assert_array_equal(ids, [2, 3, 2])
    np.testing.assert_array_equal(ids, [inverse_cdf(buf[1, b], 1.0, 0, u[b]) for b in range(3)])


def test_bad_arguments():
    logits = np.zeros((2, 3))
    u = np.zeros(2)
    for args, match in [
        ((np.zeros(3), 1.0, 0, u), "logits has shape"),
        ((np.zeros((2, 0)), 1.0, 0, u), "logits has shape"),
        ((np.zeros((2, 3), np.int32), 1.0, 0, u), "logits has dtype int32"),
        ((logits, -1.0, 0, u), "temperature is -1.0"),
        ((logits, float("nan"), 0, u), "temperature is nan"),
        ((logits, 1.0, -1, u), "top_k is -1"),
        ((logits, 1.0, 1.5, u), "top_k is 1.5"),
        ((logits, 1.0, True, u), "top_k is True"),
        ((logits, 1.0, 0, np.zeros(3)), r"u has shape \(3,\)"),
        ((logits, 1.0, 0, kc.to_device(np.zeros(2, np.float32))), "u has shape .* float32"),
        ((logits, 1.0, 0, np.array([0.5, 1.5])), r"u must hold uniforms in \[0, 1\]"),
        ((logits, 1.0, 0, np.array([0.5, np.nan])), r"u must hold uniforms in \[0, 1\]"),
    ]:
        with pytest.raises(ValueError, match=match):
            sample_logits(*args)
    with pytest.raises(ValueError, match="rng must be a"):
        uniforms(np.zeros(4), 2)
    with pytest.raises(ValueError, match="n is -1"):
        uniforms(new_rng(0), -1)
