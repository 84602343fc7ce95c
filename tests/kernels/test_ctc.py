"""kernels/ctc.py against brute force over all paths, the NumPy recursion, finite
differences and torch.nn.functional.ctc_loss."""
import numpy as np
import pytest

from suite.kernels.ctc import ctc_align, ctc_greedy, ctc_loss
from tests.gradcheck import check_gradients
from tests.reference.ctc import (ctc_align_ref, ctc_brute_force_ref, ctc_forward_ref,
                                 ctc_greedy_ref, ctc_loss_ref)
from tests.reference.losses import log_softmax_ref


def _batch(dtype, seed=0, T=6, C=5, scale=2.0):
    """Uneven lengths, a repeat (needs a blank between), an empty target, a full-length item."""
    rng = np.random.default_rng(seed)
    logits = (scale * rng.standard_normal((T, 4, C))).astype(dtype)  # (T, B, C)
    targets = np.array([[1, 2, 2], [3, 9, 9], [4, 4, 1], [0, 0, 0]])  # 9 and 0 are padding
    input_lengths = np.array([T, 3, T - 1, 2])
    target_lengths = np.array([3, 1, 3, 0])
    return logits, targets, input_lengths, target_lengths


@pytest.mark.parametrize("target", [(), (1,), (1, 1), (1, 2), (2, 1, 2), (1, 1, 1), (2, 2, 1, 2),
                                    (1, 1, 1, 1)])
def test_forward_matches_brute_force(target):
    rng = np.random.default_rng(len(target))
    T, C = 5, 3
    logits = rng.standard_normal((T, 1, C))
    logp = log_softmax_ref(logits)[:, 0]
    expected = ctc_brute_force_ref(logp, target)
    assert ctc_forward_ref(logp, target) == pytest.approx(expected, rel=1e-12)
    nll, _ = ctc_loss(logits, np.array([target or (1,)]), [T], [len(target)], zero_infinity=False)
    if np.isinf(expected):  # (1, 1, 1, 1) needs 7 frames: no path emits it
        assert np.isinf(nll[0])
    else:
        np.testing.assert_allclose(nll[0], expected, rtol=1e-12)


def test_brute_force_with_other_blank():
    rng = np.random.default_rng(7)
    logits = rng.standard_normal((4, 1, 3))
    logp = log_softmax_ref(logits)[:, 0]
    for target in [(0,), (0, 1), (1, 1), (0, 0)]:
        nll, _ = ctc_loss(logits, np.array([target]), [4], [len(target)], blank=2)
        np.testing.assert_allclose(nll[0], ctc_brute_force_ref(logp, target, blank=2), rtol=1e-12)


@pytest.mark.parametrize("dtype,tol", [(np.float32, 1e-6), (np.float64, 1e-12)])
def test_batch_matches_reference(dtype, tol):
    logits, targets, input_lengths, target_lengths = _batch(dtype)
    nll, dlogits = ctc_loss(logits, targets, input_lengths, target_lengths)
    assert nll.dtype == np.float64 and dlogits.dtype == dtype and dlogits.shape == logits.shape
    np.testing.assert_allclose(nll, ctc_loss_ref(logits, targets, input_lengths, target_lengths),
                               rtol=tol)
    for b, n in enumerate(input_lengths):
        assert not dlogits[n:, b].any()  # nothing past the input length
    # softmax and the posterior occupancy are both distributions over C: rows sum to 0
    np.testing.assert_allclose(dlogits.sum(axis=2), 0.0, atol=tol * 10)


def test_finite_differences():
    logits, targets, input_lengths, target_lengths = _batch(np.float64, seed=1, T=5, C=4)
    targets[1, 0] = 3
    targets[2, :] = [2, 2, 1]  # repeat: needs 4 of its 4 frames
    _, dlogits = ctc_loss(logits, targets, input_lengths, target_lengths)

    def total():
        return ctc_loss(logits, targets, input_lengths, target_lengths)[0].sum()

    check_gradients(total, dict(logits=logits), dict(logits=dlogits), rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("dtype,tol", [(np.float32, 1e-5), (np.float64, 1e-10)])
@pytest.mark.parametrize("zero_infinity", [False, True])
def test_matches_torch(dtype, tol, zero_infinity):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    T, B, C = 12, 5, 6
    logits = (3 * rng.standard_normal((T, B, C))).astype(dtype)
    targets = np.array([[1, 2, 3, 4, 5], [2, 2, 2, 0, 0], [5, 1, 5, 1, 5],
                        [3, 3, 0, 0, 0], [1, 1, 1, 1, 1]])
    input_lengths = np.array([12, 7, 9, 1, 8])  # item 3 cannot fit (3, 3) in 1 frame
    target_lengths = np.array([5, 3, 5, 2, 5])  # item 4: 5 ones need 9 frames > 8
    if not zero_infinity:
        input_lengths[3], input_lengths[4] = 4, 12  # keep every item possible
    t_logits = torch.tensor(logits, requires_grad=True)
    t_nll = torch.nn.functional.ctc_loss(
        torch.log_softmax(t_logits, dim=2), torch.tensor(targets), torch.tensor(input_lengths),
        torch.tensor(target_lengths), blank=0, reduction="none", zero_infinity=zero_infinity)
    t_nll.sum().backward()
    nll, dlogits = ctc_loss(logits, targets, input_lengths, target_lengths, zero_infinity=zero_infinity)
    np.testing.assert_allclose(nll, t_nll.detach().numpy(), rtol=tol, atol=tol)
    np.testing.assert_allclose(dlogits, t_logits.grad.numpy(), rtol=tol, atol=tol)
    if zero_infinity:
        assert nll[3] == nll[4] == 0.0 and not dlogits[:, 3:].any()


def test_impossible_alignments():
    logits = np.zeros((3, 3, 4), np.float32)
    targets = np.array([[1, 1, 0], [1, 2, 3], [1, 2, 1]])
    input_lengths = np.array([2, 2, 0])  # (1, 1) needs 3 frames; 3 labels need 3; 0 frames
    target_lengths = np.array([2, 3, 1])
    nll, dlogits = ctc_loss(logits, targets, input_lengths, target_lengths, zero_infinity=False)
    assert np.isinf(nll).all() and (nll > 0).all() and not dlogits.any()
    nll, dlogits = ctc_loss(logits, targets, input_lengths, target_lengths, zero_infinity=True)
    assert not nll.any() and not dlogits.any()
    # empty input with empty target: probability 1
    nll, dlogits = ctc_loss(logits, targets, [0, 3, 1], [0, 3, 1], zero_infinity=False)
    assert nll[0] == 0.0 and np.isfinite(nll).all() and not dlogits[:, 0].any()
    # -inf scores on every path: impossible too
    blocked = np.zeros((2, 1, 3))
    blocked[:, 0, 1] = -np.inf
    nll, dlogits = ctc_loss(blocked, np.array([[1]]), [2], [1], zero_infinity=False)
    assert np.isinf(nll[0]) and not dlogits.any()


def test_stable_for_large_logits_and_long_inputs():
    rng = np.random.default_rng(4)
    T, C = 400, 8
    logits = (50 * rng.standard_normal((T, 1, C))).astype(np.float32)
    target = rng.integers(1, C, (1, 60))
    nll, dlogits = ctc_loss(logits, target, [T], [60])
    assert np.isfinite(nll).all() and nll[0] > 0 and np.isfinite(dlogits).all()
    np.testing.assert_allclose(nll, ctc_loss_ref(logits, target, [T], [60]), rtol=1e-6)


def test_accepts_non_contiguous():
    logits, targets, input_lengths, target_lengths = _batch(np.float64)
    wide = np.zeros(logits.shape[:2] + (2 * logits.shape[2],))
    wide[:, :, ::2] = logits
    a = ctc_loss(wide[:, :, ::2], targets, input_lengths, target_lengths)
    b = ctc_loss(logits, targets, input_lengths, target_lengths)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])


def test_loss_bad_args():
    logits, targets, input_lengths, target_lengths = _batch(np.float32)
    cases = [
        (dict(logits=logits.astype(np.int32)), "dtype"),
        (dict(logits=logits[0]), "logits has shape"),
        (dict(targets=targets[:2]), "targets has shape"),
        (dict(targets=targets.astype(np.float32)), "targets has dtype"),
        (dict(input_lengths=input_lengths[:2]), "input_lengths has shape"),
        (dict(input_lengths=input_lengths + 1), r"input_lengths must lie in \[0, 6\]"),
        (dict(target_lengths=target_lengths + 1), r"target_lengths must lie in \[0, 3\]"),
        (dict(target_lengths=target_lengths - 1), "target_lengths must lie"),
        (dict(blank=5), "blank = 5 is outside"),
        (dict(blank=-1), "blank = -1 is outside"),
        (dict(targets=np.where(targets == 9, 9, targets) * 0 + 7), "outside"),
        (dict(blank=1), "blank id 1"),
    ]
    base = dict(logits=logits, targets=targets, input_lengths=input_lengths,
                target_lengths=target_lengths)
    for change, message in cases:
        with pytest.raises(ValueError, match=message):
            ctc_loss(**{**base, **change})
    # padding beyond target_lengths may hold anything
    padded = targets.copy()
    padded[3] = -5
    ctc_loss(logits, padded, input_lengths, target_lengths)


# ---------------------------------------------------------------- greedy

def test_greedy_hand_case():
    path = [0, 1, 1, 0, 1, 2, 2, 0, 0, 3]  # -> 1, 1, 2, 3 at frames 1, 4, 5, 9
    logits = np.full((10, 2, 4), -5.0, np.float32)
    for t, c in enumerate(path):
        logits[t, 0, c] = 5.0
        logits[t, 1, c] = 5.0
    (tokens, frames), (tokens_short, frames_short) = ctc_greedy(logits, [10, 5])
    assert tokens.dtype == frames.dtype == np.int32
    assert tokens.tolist() == [1, 1, 2, 3] and frames.tolist() == [1, 4, 5, 9]
    assert tokens_short.tolist() == [1, 1] and frames_short.tolist() == [1, 4]
    (tokens, frames), _ = ctc_greedy(logits, [10, 0], blank=1)  # 0 becomes a label
    assert tokens.tolist() == [0, 0, 2, 0, 3] and frames.tolist() == [0, 3, 5, 7, 9]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_greedy_matches_reference(dtype):
    rng = np.random.default_rng(5)
    logits = rng.standard_normal((30, 4, 3)).astype(dtype)
    lengths = np.array([30, 0, 17, 1])
    for blank in (0, 2):
        got, expected = ctc_greedy(logits, lengths, blank), ctc_greedy_ref(logits, lengths, blank)
        for (t, f), (rt, rf) in zip(got, expected):
            np.testing.assert_array_equal(t, rt)
            np.testing.assert_array_equal(f, rf)


def test_greedy_bad_args():
    logits = np.zeros((3, 2, 4), np.float32)
    with pytest.raises(ValueError, match="lengths must lie"):
        ctc_greedy(logits, [4, 1])
    with pytest.raises(ValueError, match="lengths has shape"):
        ctc_greedy(logits, [3])
    with pytest.raises(ValueError, match="blank"):
        ctc_greedy(logits, [3, 3], blank=4)
    with pytest.raises(ValueError, match="logits has shape"):
        ctc_greedy(logits[0], [3, 3])


# ---------------------------------------------------------------- forced alignment

@pytest.mark.parametrize("seed,target", [(0, (1,)), (1, (1, 2)), (2, (2, 2)), (3, (1, 2, 1)),
                                         (4, ()), (5, (2, 1))])
def test_align_matches_brute_force(seed, target):
    rng = np.random.default_rng(seed)
    log_probs = log_softmax_ref(2 * rng.standard_normal((6, 3)))
    starts, ends = ctc_align(log_probs, np.array(target, np.int64))
    ref_starts, ref_ends = ctc_align_ref(log_probs, target)
    assert starts.dtype == ends.dtype == np.int32
    np.testing.assert_array_equal(starts, ref_starts)
    np.testing.assert_array_equal(ends, ref_ends)


def test_align_peaked_synthetic():
    # frames: blank x3, "a" x4, blank x2, "b" x3, "b" again after a blank x2, blank x2
    segments = [(0, 3), (1, 4), (0, 2), (2, 3), (0, 1), (2, 2), (0, 2)]
    frames = [c for c, n in segments for _ in range(n)]
    rng = np.random.default_rng(6)
    logits = rng.standard_normal((len(frames), 4))
    logits[np.arange(len(frames)), frames] += 6.0
    log_probs = log_softmax_ref(logits).astype(np.float32)
    starts, ends = ctc_align(log_probs, [1, 2, 2])
    assert starts.tolist() == [3, 9, 13] and ends.tolist() == [6, 11, 14]
    # a label the frames barely support still gets at least one frame, in order
    starts, ends = ctc_align(log_probs, [1, 3, 2, 2])
    assert (starts <= ends).all() and (ends[:-1] < starts[1:]).all()


def test_align_bad_args():
    log_probs = np.zeros((3, 4))
    with pytest.raises(ValueError, match="need at least 4"):
        ctc_align(log_probs, [1, 1, 2])
    with pytest.raises(ValueError, match="blank id"):
        ctc_align(log_probs, [0])
    with pytest.raises(ValueError, match="outside"):
        ctc_align(log_probs, [4])
    with pytest.raises(ValueError, match="target has shape"):
        ctc_align(log_probs, [[1]])
    blocked = log_probs.copy()
    blocked[:, 1] = -np.inf
    with pytest.raises(ValueError, match="finite score"):
        ctc_align(blocked, [1])
