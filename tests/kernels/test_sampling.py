import numpy as np
import pytest

from suite.kernels import sampling
from suite.kernels.sampling import _next_u64, _next_uniform, input_table, lstm_generate, new_rng, sample_logits
from tests.reference.sampling import generate_ref, sample_ref, seed_ref, uniform_ref, xoshiro_next


# ---------------------------------------------------------------- generator

@pytest.mark.parametrize("seed", [0, 1, 12345, -1, 2**70 + 3])
def test_rng_matches_reference_bit_for_bit(seed):
    state = new_rng(seed)
    ref = seed_ref(seed)
    assert [int(w) for w in state] == ref
    assert [int(_next_u64(state)) for _ in range(50)] == [xoshiro_next(ref) for _ in range(50)]
    assert [_next_uniform(state) for _ in range(20)] == [uniform_ref(ref) for _ in range(20)]


def test_rng_seeds_and_range():
    assert np.array_equal(new_rng(7), new_rng(7))
    assert not np.array_equal(new_rng(7), new_rng(8))
    state = new_rng(3)
    u = np.array([_next_uniform(state) for _ in range(2000)])
    assert u.min() >= 0.0 and u.max() < 1.0 and abs(u.mean() - 0.5) < 0.03
    with pytest.raises(ValueError, match="seed"):
        new_rng(1.5)


# ---------------------------------------------------------------- sampler

def _chi_square(counts, probs):
    expected = probs * counts.sum()
    return float(((counts - expected) ** 2 / expected).sum())


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sampling_distribution(dtype):
    logits = np.array([0.5, -1.0, 2.0, 0.0], dtype=dtype)
    state = new_rng(11)
    n = 20000
    counts = np.bincount([sample_logits(logits, 1.0, 0, state) for _ in range(n)], minlength=4)
    p = np.exp(logits.astype(np.float64)) / np.exp(logits.astype(np.float64)).sum()
    assert _chi_square(counts, p) < 16.3  # chi-square, 3 dof, p = 0.001
    # A sampler that ignored the logits (uniform) would be far off.
    assert _chi_square(counts, np.full(4, 0.25)) > 1000


def test_temperature_and_top_k_distribution():
    logits = np.array([0.5, -1.0, 2.0, 1.0, 0.0])
    state = new_rng(12)
    n = 20000
    counts = np.bincount([sample_logits(logits, 0.7, 3, state) for _ in range(n)], minlength=5)
    assert counts[1] == 0 and counts[4] == 0
    kept = np.array([0, 2, 3])
    p = np.exp(logits[kept] / 0.7) / np.exp(logits[kept] / 0.7).sum()
    assert _chi_square(counts[kept], p) < 13.8  # 2 dof, p = 0.001


def test_greedy_limits():
    rng = np.random.default_rng(0)
    state = new_rng(1)
    for _ in range(50):
        logits = rng.standard_normal(9).astype(np.float32)
        best = int(np.argmax(logits))
        before = state.copy()
        assert sample_logits(logits, 0.0, 0, state) == best
        assert np.array_equal(state, before)  # temperature 0 draws nothing
        assert sample_logits(logits, 1e-6, 0, state) == best
        assert sample_logits(logits, 1.0, 1, state) == best
        assert sample_logits(logits, 5.0, 1, state) == best


def test_ties_keep_lowest_ids():
    logits = np.array([1.0, 3.0, 3.0, 3.0, 0.0])
    state = new_rng(2)
    assert sample_logits(logits, 0.0, 0, state) == 1
    assert {sample_logits(logits, 1.0, 1, state) for _ in range(100)} == {1}
    assert {sample_logits(logits, 1.0, 2, state) for _ in range(200)} == {1, 2}


def test_sampler_matches_reference_draw_for_draw():
    rng = np.random.default_rng(3)
    state = new_rng(99)
    ref = seed_ref(99)
    for trial in range(300):
        logits = rng.standard_normal(13) * 2
        temperature = [0.0, 0.5, 1.0, 2.0][trial % 4]
        top_k = [0, 1, 4, 13, 20][trial % 5]
        assert sample_logits(logits, temperature, top_k, state) == sample_ref(logits, temperature, top_k, ref)
    assert [int(w) for w in state] == ref


def test_sampler_bad_args():
    state = new_rng(0)
    logits = np.zeros(4)
    with pytest.raises(ValueError, match="temperature"):
        sample_logits(logits, -0.1, 0, state)
    with pytest.raises(ValueError, match="temperature"):
        sample_logits(logits, np.nan, 0, state)
    with pytest.raises(ValueError, match="top_k"):
        sample_logits(logits, 1.0, -1, state)
    with pytest.raises(ValueError, match="logits has shape"):
        sample_logits(np.zeros((2, 2)), 1.0, 0, state)
    with pytest.raises(ValueError, match="logits has dtype"):
        sample_logits(np.zeros(4, np.int64), 1.0, 0, state)
    with pytest.raises(ValueError, match="rng"):
        sample_logits(logits, 1.0, 0, np.zeros(4, np.int64))
    with pytest.raises(ValueError, match="all zeros"):
        sample_logits(logits, 1.0, 0, np.zeros(4, np.uint64))


# ---------------------------------------------------------------- generation

def _model(dtype, L=2, H=5, V=7, cifg=False, seed=0, embedding_dim=None):
    """Random stacked LSTM + output layer, with large enough weights that ids vary."""
    rng = np.random.default_rng(seed)
    GH = (3 if cifg else 4) * H

    def r(*shape):
        return rng.standard_normal(shape).astype(dtype)

    D = embedding_dim or V
    W_ih = [r(D if layer == 0 else H, GH) for layer in range(L)]
    W_hh = [r(H, GH) * 0.7 for _ in range(L)]
    b = [r(GH) * 0.5 for _ in range(L)]
    embedding = r(V, D) if embedding_dim else None
    table0 = input_table(W_ih[0], b[0], embedding)
    return dict(table0=table0, W_ih=W_ih, W_hh=W_hh, b=b, W_out=r(H, V) * 1.5, b_out=r(V),
                h0=r(L, H) * 0.5, c0=r(L, H) * 0.5)


def _gen(m, prime, n, temperature, top_k, rng, cifg=False):
    return lstm_generate(np.asarray(prime), n, m["table0"], m["W_ih"], m["W_hh"], m["b"], m["W_out"],
                         m["b_out"], m["h0"], m["c0"], temperature=temperature, top_k=top_k, rng=rng, cifg=cifg)


def _ref(m, prime, n, temperature, top_k, ref_state, cifg=False):
    return generate_ref(list(prime), n, m["table0"], m["W_ih"], m["W_hh"], m["b"], m["W_out"], m["b_out"],
                        m["h0"], m["c0"], temperature, top_k, ref_state, cifg)


def test_input_table():
    m = _model(np.float64, embedding_dim=3)
    emb = np.random.default_rng(1).standard_normal((7, 3))
    np.testing.assert_allclose(input_table(m["W_ih"][0], m["b"][0], emb), emb @ m["W_ih"][0] + m["b"][0])
    with pytest.raises(ValueError, match="embedding"):
        input_table(m["W_ih"][0], m["b"][0], emb.T)
    with pytest.raises(ValueError, match="b0"):
        input_table(m["W_ih"][0], m["b"][0][:-1])


@pytest.mark.parametrize("dtype,L,cifg", [(np.float64, 2, False), (np.float32, 2, False),
                                          (np.float64, 3, True), (np.float32, 1, False)])
def test_greedy_generation_matches_reference(dtype, L, cifg):
    m = _model(dtype, L=L, cifg=cifg)
    prime = [3, 0, 6]
    ids, hT, cT, _ = _gen(m, prime, 12, 0.0, 0, 0, cifg)
    ref_ids, ref_h, ref_c, ref_logits = _ref(m, prime, 12, 0.0, 0, seed_ref(0), cifg)
    # Greedy ids are only meaningful where the winning margin exceeds the float error.
    margins = [np.sort(x)[-1] - np.sort(x)[-2] for x in ref_logits]
    assert min(margins) > 1e-3
    np.testing.assert_array_equal(ids, ref_ids)
    tol = 1e-12 if dtype == np.float64 else 2e-5
    np.testing.assert_allclose(hT, ref_h, rtol=tol, atol=tol)
    np.testing.assert_allclose(cT, ref_c, rtol=tol, atol=tol)
    assert hT.dtype == dtype and ids.dtype == np.int64


@pytest.mark.parametrize("top_k", [0, 3])
def test_sampled_generation_matches_reference(top_k):
    m = _model(np.float64, L=2, H=11)  # H > 8 runs the GEMV's unrolled rows and its tail
    state = new_rng(5)
    ids, hT, _, out_state = _gen(m, [1, 2], 40, 1.3, top_k, state)
    ref_state = seed_ref(5)
    ref_ids, ref_h, _, _ = _ref(m, [1, 2], 40, 1.3, top_k, ref_state)
    np.testing.assert_array_equal(ids, ref_ids)
    np.testing.assert_allclose(hT, ref_h, rtol=1e-12, atol=1e-12)
    assert out_state is state and [int(w) for w in state] == ref_state
    assert len(set(ids.tolist())) > 3


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_generation_through_blas_gemv_matches_reference(dtype, monkeypatch):
    """Wide models (matmul.GEMV_BLAS_MIN) take the LSTM's products from BLAS: same ids and states."""
    monkeypatch.setattr(sampling, "GEMV_BLAS_MIN", 1)
    m = _model(dtype, L=3, H=11)
    state = new_rng(5)
    ids, hT, cT, _ = _gen(m, [1, 2], 40, 1.3, 3, state)
    ref_ids, ref_h, ref_c, _ = _ref(m, [1, 2], 40, 1.3, 3, seed_ref(5))
    np.testing.assert_array_equal(ids, ref_ids)
    tol = 1e-12 if dtype == np.float64 else 2e-5
    np.testing.assert_allclose(hT, ref_h, rtol=tol, atol=tol)
    np.testing.assert_allclose(cT, ref_c, rtol=tol, atol=tol)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_generation_is_reproducible_and_chunk_invariant(dtype):
    m = _model(dtype, L=2)
    whole, hT, cT, _ = _gen(m, [4], 30, 1.0, 0, new_rng(8))
    again, _, _, _ = _gen(m, [4], 30, 1.0, 0, 8)
    np.testing.assert_array_equal(whole, again)
    state = new_rng(8)
    m2 = dict(m)
    chunks = []
    prime = [4]
    for n in (7, 0, 1, 22):
        ids, h, c, state = _gen(m2, prime, n, 1.0, 0, state)
        chunks.append(ids)
        prime = (np.concatenate([prime, ids]) if n else np.asarray(prime))[-1:]
        m2 = dict(m2, h0=h, c0=c)
    np.testing.assert_array_equal(np.concatenate(chunks), whole)
    np.testing.assert_array_equal(m2["h0"], hT)
    np.testing.assert_array_equal(m2["c0"], cT)


def test_generation_leaves_inputs_alone():
    m = _model(np.float32)
    h0, c0 = m["h0"].copy(), m["c0"].copy()
    _gen(m, [1], 5, 1.0, 2, 0)
    np.testing.assert_array_equal(m["h0"], h0)
    np.testing.assert_array_equal(m["c0"], c0)


def test_generation_bad_args():
    m = _model(np.float32, L=2, H=5, V=7)
    with pytest.raises(ValueError, match="temperature"):
        _gen(m, [1], 3, -1.0, 0, 0)
    with pytest.raises(ValueError, match="top_k"):
        _gen(m, [1], 3, 1.0, -2, 0)
    with pytest.raises(ValueError, match="prime"):
        _gen(m, [1, 7], 3, 1.0, 0, 0)
    with pytest.raises(ValueError, match="prime"):
        _gen(m, [-1], 3, 1.0, 0, 0)
    with pytest.raises(ValueError, match="prime"):
        _gen(m, [], 3, 1.0, 0, 0)
    with pytest.raises(ValueError, match="n_steps"):
        _gen(m, [1], -3, 1.0, 0, 0)
    with pytest.raises(ValueError, match="rng"):
        _gen(m, [1], 3, 1.0, 0, np.zeros(3, np.uint64))
    with pytest.raises(ValueError, match=r"W_hh\[1\] has shape"):
        _gen(dict(m, W_hh=[m["W_hh"][0], m["W_hh"][1][:4]]), [1], 3, 1.0, 0, 0)
    with pytest.raises(ValueError, match="W_ih has 1 layers"):
        _gen(dict(m, W_ih=m["W_ih"][1:]), [1], 3, 1.0, 0, 0)
    with pytest.raises(ValueError, match=r"b\[1\]"):
        _gen(dict(m, b=[None, m["b"][1].astype(np.float64)]), [1], 3, 1.0, 0, 0)
    with pytest.raises(ValueError, match="W_out"):
        _gen(dict(m, W_out=m["W_out"][:, :6]), [1], 3, 1.0, 0, 0)
    with pytest.raises(ValueError, match="table0"):
        _gen(m, [1], 3, 1.0, 0, 0, cifg=True)
    with pytest.raises(ValueError, match="c0"):
        _gen(dict(m, c0=m["c0"][:1]), [1], 3, 1.0, 0, 0)


# ---------------------------------------------------------------- forced tokens

def _gen_forced(m, prime, n, rng, forced, temperature=1.3):
    return lstm_generate(np.asarray(prime), n, m["table0"], m["W_ih"], m["W_hh"], m["b"], m["W_out"],
                         m["b_out"], m["h0"], m["c0"], temperature=temperature, rng=rng, forced=forced)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_forced_ids_are_emitted_and_the_rest_sampled_as_if_primed(dtype):
    m = _model(dtype, L=2, H=11)
    free = _gen(m, [1, 2], 30, 1.3, 0, new_rng(3))
    unforced = _gen_forced(m, [1, 2], 30, new_rng(3), np.full(30, -1))
    for a, b in zip(free, unforced):  # all -1 is the plain sampler, state and rng included
        np.testing.assert_array_equal(a, b)
    forced = np.full(30, -1)
    forced[[0, 7, 8, 29]] = [6, 0, 3, 5]
    ids = _gen_forced(m, [1, 2], 30, new_rng(3), forced)[0]
    assert ids[[0, 7, 8, 29]].tolist() == [6, 0, 3, 5]
    assert not np.array_equal(ids, free[0])  # the forced ids were fed back: the rest follows them
    # A forced step draws no random number and feeds its id back: forcing the first
    # k steps is priming with those ids, draw for draw.
    prefix = free[0][:5][::-1].copy()
    ids, hT, cT, state = _gen_forced(m, [1, 2], 30, new_rng(9), np.r_[prefix, np.full(25, -1)])
    ref_ids, ref_h, ref_c, ref_state = _gen(m, np.r_[1, 2, prefix], 25, 1.3, 0, new_rng(9))
    np.testing.assert_array_equal(ids[5:], ref_ids)
    np.testing.assert_allclose(hT, ref_h, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(cT, ref_c, rtol=1e-6, atol=1e-7)
    np.testing.assert_array_equal(state, ref_state)


def test_fully_forced_generation_draws_nothing_and_tracks_the_state():
    m = _model(np.float64, L=2)
    forced = np.array([3, 1, 4, 1, 5, 2, 6])
    state = new_rng(1)
    ids, hT, cT, out_state = _gen_forced(m, [0], 7, state, forced)
    assert ids.tolist() == forced.tolist() and np.array_equal(out_state, new_rng(1))
    # The same state as feeding them all as a prime (hT is before the last id is fed).
    _, ref_h, ref_c, _ = _gen(m, np.r_[0, forced], 0, 1.0, 0, new_rng(1))
    np.testing.assert_allclose(hT, ref_h, rtol=1e-12)
    np.testing.assert_allclose(cT, ref_c, rtol=1e-12)


def test_forced_chunks_join_like_one_call():
    m = _model(np.float32, L=2, H=9)
    forced = np.where(np.arange(40) % 5 == 0, 2, -1)
    whole = _gen_forced(m, [1], 40, new_rng(4), forced)[0]
    state, h, c, prime, parts = new_rng(4), m["h0"], m["c0"], np.array([1]), []
    for a in range(0, 40, 16):
        ids, h, c, _ = lstm_generate(prime, min(16, 40 - a), m["table0"], m["W_ih"], m["W_hh"], m["b"],
                                     m["W_out"], m["b_out"], h, c, temperature=1.3, rng=state,
                                     forced=forced[a:a + 16])
        parts.append(ids)
        prime = ids[-1:]
    np.testing.assert_array_equal(np.concatenate(parts), whole)


def test_forced_bad_args():
    m = _model(np.float64, L=1)
    with pytest.raises(ValueError, match="forced has shape"):
        _gen_forced(m, [1], 5, 0, np.full(4, -1))
    with pytest.raises(ValueError, match="forced has shape"):
        _gen_forced(m, [1], 5, 0, np.full(5, -1.0))
    with pytest.raises(ValueError, match="forced holds"):
        _gen_forced(m, [1], 5, 0, np.array([-1, 7, -1, -1, -1]))  # V = 7
    with pytest.raises(ValueError, match="forced holds"):
        _gen_forced(m, [1], 5, 0, np.array([-2, 0, 0, 0, 0]))


def test_top_k_rows_matches_a_stable_sort():
    from suite.kernels.sampling import top_k_rows

    rng = np.random.default_rng(0)
    x = rng.integers(0, 20, size=(7, 50)).astype(np.float64)  # many ties
    x[2, :] = -np.inf
    x[3, 5] = np.inf
    for k in (1, 3, 10, 50):
        expect = np.argsort(-x, axis=1, kind="stable")[:, :k]
        assert np.array_equal(top_k_rows(x, k), expect)
    assert np.array_equal(top_k_rows(np.array([[1.0, 2.0]]), 4), [[1, 0, -1, -1]])
