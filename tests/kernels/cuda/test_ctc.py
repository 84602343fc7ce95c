"""The device CTC loss against the CPU kernel, the NumPy recursion, brute force and finite differences."""
import numpy as np
import pytest

from tests.kernels.cuda.gpu import cuda_or_skip

kc = cuda_or_skip()
from suite.kernels.cuda.ctc import ctc_loss  # noqa: E402
from suite.kernels.ctc import ctc_loss as ctc_loss_cpu  # noqa: E402
from tests.gradcheck import check_gradients  # noqa: E402
from tests.reference.ctc import ctc_brute_force_ref, ctc_loss_ref  # noqa: E402
from tests.reference.losses import log_softmax_ref  # noqa: E402


def _labels():
    """Repeats, an uneven length, padding (9 is no class), an item too long for its frames."""
    targets = np.array([[1, 2, 2], [3, 9, 9], [4, 4, 1]])
    input_lengths = np.array([6, 3, 3])  # (4, 4, 1) needs 4 frames: impossible
    target_lengths = np.array([3, 1, 3])
    return targets, input_lengths, target_lengths


def _empty_labels():
    """A blank-only path (empty target), an empty input and target, an empty input with a label."""
    return np.array([[0, 0], [0, 0], [2, 0]]), np.array([4, 0, 0]), np.array([0, 0, 1])


def _logits(dtype, seed=0, T=6, B=3, C=5):
    rng = np.random.default_rng(seed)
    return (2 * rng.standard_normal((T, B, C))).astype(dtype)  # (T, B, C)


def _host(nll, dlogits):
    assert kc.is_device(nll) and kc.is_device(dlogits)
    return kc.to_host(nll), kc.to_host(dlogits)


@pytest.mark.parametrize("labels", [_labels, _empty_labels])
@pytest.mark.parametrize("dtype,tol,zero_infinity", [(np.float32, 1e-5, True),
                                                     (np.float64, 1e-10, False)])
def test_matches_cpu(labels, dtype, tol, zero_infinity):
    logits = _logits(dtype)
    args = (logits,) + labels()
    nll, dlogits = _host(*ctc_loss(*args, zero_infinity=zero_infinity))
    want_nll, want_d = ctc_loss_cpu(*args, zero_infinity=zero_infinity)
    assert nll.dtype == np.float64 and dlogits.dtype == dtype and dlogits.shape == logits.shape
    np.testing.assert_array_equal(np.isinf(nll), np.isinf(want_nll))
    finite = np.isfinite(want_nll)
    np.testing.assert_allclose(nll[finite], want_nll[finite], rtol=tol, atol=tol)
    np.testing.assert_allclose(dlogits, want_d, rtol=tol, atol=tol)
    assert want_d.any()  # the comparison covers a real gradient, not zeros only


def test_impossible_items_and_empty_ones():
    logits = _logits(np.float64)
    nll, dlogits = _host(*ctc_loss(logits, *_labels(), zero_infinity=False))
    assert nll[2] == np.inf and not dlogits[:, 2].any()
    assert not dlogits[6:, 0].any() and not dlogits[3:, 1].any()  # nothing past the input length
    nll, dlogits = _host(*ctc_loss(logits, *_empty_labels(), zero_infinity=False))
    # empty target over 4 frames: the one all-blank path
    np.testing.assert_allclose(nll[0], -log_softmax_ref(logits[:4, 0])[:, 0].sum(), rtol=1e-12)
    assert nll[1] == 0.0 and nll[2] == np.inf  # empty input: fine without labels, impossible with one
    assert not dlogits[:, 1:].any() and not dlogits[4:, 0].any()
    # every row of a real gradient sums to 0 (softmax and posterior are both distributions over C)
    np.testing.assert_allclose(dlogits[:4, 0].sum(axis=1), 0.0, atol=1e-12)


def test_blocked_paths_are_impossible():
    blocked = np.zeros((2, 1, 3))
    blocked[:, 0, 1] = -np.inf  # the only label can never be emitted
    nll, dlogits = _host(*ctc_loss(blocked, np.array([[1]]), [2], [1], zero_infinity=False))
    assert nll[0] == np.inf and not dlogits.any()
    nll, dlogits = _host(*ctc_loss(blocked, np.array([[1]]), [2], [1]))
    assert nll[0] == 0.0 and not dlogits.any()


def test_matches_numpy_reference_and_brute_force():
    rng = np.random.default_rng(1)
    T, C = 4, 3
    logits = rng.standard_normal((T, 3, C))
    targets = np.array([[1, 1], [2, 1], [2, 0]])  # a repeat, a pair, one label
    input_lengths, target_lengths = np.array([4, 3, 2]), np.array([2, 2, 1])
    nll = kc.to_host(ctc_loss(logits, targets, input_lengths, target_lengths)[0])
    np.testing.assert_allclose(nll, ctc_loss_ref(logits, targets, input_lengths, target_lengths),
                               rtol=1e-12)
    logp = log_softmax_ref(logits[:, 0])  # (T, C)
    np.testing.assert_allclose(nll[0], ctc_brute_force_ref(logp, (1, 1)), rtol=1e-12)


def test_other_blank_few_threads_and_device_inputs():
    """blank = 2; two threads for up to seven states (each loops); inputs already on the device,
    logits a strided device view."""
    rng = np.random.default_rng(2)
    wide = rng.standard_normal((5, 2, 8))
    logits = wide[:, :, ::2]  # (T, B, C) = (5, 2, 4)
    targets = np.array([[0, 1, 3], [3, 3, 0]])
    input_lengths, target_lengths = np.array([5, 4]), np.array([3, 2])
    want_nll, want_d = ctc_loss_cpu(logits, targets, input_lengths, target_lengths, blank=2)
    dev = kc.to_device(wide)[:, :, ::2]
    nll, dlogits = _host(*ctc_loss(dev, kc.to_device(targets), kc.to_device(input_lengths),
                                   kc.to_device(target_lengths), blank=2, threads=2))
    np.testing.assert_allclose(nll, want_nll, rtol=1e-10)
    np.testing.assert_allclose(dlogits, want_d, rtol=1e-10, atol=1e-12)


def test_finite_differences():
    logits = _logits(np.float64, seed=3, T=4, B=2, C=4)
    targets = np.array([[1, 1], [2, 3]])
    input_lengths, target_lengths = np.array([4, 3]), np.array([2, 2])
    _, dlogits = _host(*ctc_loss(logits, targets, input_lengths, target_lengths))

    def total():
        return kc.to_host(ctc_loss(logits, targets, input_lengths, target_lengths)[0]).sum()

    # a sample, because every probe is two launches on the simulator
    check_gradients(total, dict(logits=logits), dict(logits=dlogits), rtol=1e-6, atol=1e-8,
                    sample=4, rng=0)


def test_bad_args():
    logits = _logits(np.float32)
    targets, input_lengths, target_lengths = _labels()
    cases = [
        (dict(logits=logits.astype(np.int32)), "dtype"),
        (dict(logits=logits[0]), "logits has shape"),
        (dict(logits=logits[:, :, :0]), "logits has shape"),
        (dict(targets=targets[:2]), "targets has shape"),
        (dict(targets=targets[0]), "targets has shape"),
        (dict(targets=targets.astype(np.float32)), "targets has dtype"),
        (dict(input_lengths=input_lengths[:2]), "input_lengths has shape"),
        (dict(input_lengths=input_lengths + 1), r"input_lengths must lie in \[0, 6\]"),
        (dict(target_lengths=target_lengths + 1), r"target_lengths must lie in \[0, 3\]"),
        (dict(blank=5), "blank = 5 is outside"),
        (dict(targets=np.full_like(targets, 7)), "outside"),
        (dict(targets=np.where(targets == 9, 9, 0)), "blank id 0"),
        (dict(threads=-1), "threads"),
    ]
    base = dict(logits=logits, targets=targets, input_lengths=input_lengths,
                target_lengths=target_lengths)
    for change, message in cases:
        with pytest.raises(ValueError, match=message):
            ctc_loss(**{**base, **change})
    with pytest.raises(ValueError, match="logits has dtype"):  # a device array is checked too
        ctc_loss(kc.to_device(logits.astype(np.int32)), targets, input_lengths, target_lengths)
