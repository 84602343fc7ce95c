import numpy as np
import pytest

from suite.kernels.losses import log_softmax, mse_loss, softmax_cross_entropy
from tests.gradcheck import check_gradients
from tests.reference.losses import log_softmax_ref, mse_ref, softmax_cross_entropy_ref


def _case(dtype, N=5, V=7, seed=0):
    rng = np.random.default_rng(seed)
    logits = (rng.standard_normal((N, V)) * 3).astype(dtype)
    targets = rng.integers(0, V, N)
    targets[1] = -100
    return logits, targets


@pytest.mark.parametrize("dtype,tol", [(np.float32, 1e-6), (np.float64, 1e-13)])
def test_cross_entropy_matches_reference(dtype, tol):
    logits, targets = _case(dtype)
    loss, count, dlogits = softmax_cross_entropy(logits, targets)
    ref_loss, ref_count, ref_d = softmax_cross_entropy_ref(logits, targets)
    assert count == ref_count == 4
    assert dlogits.dtype == dtype
    np.testing.assert_allclose(loss, ref_loss, rtol=tol)
    np.testing.assert_allclose(dlogits, ref_d, rtol=tol * 10, atol=tol)
    assert not dlogits[1].any()


def test_cross_entropy_finite_differences():
    logits, targets = _case(np.float64, N=4, V=5, seed=1)
    targets[1] = 0
    targets[3] = 7  # a different ignore_index
    _, _, dlogits = softmax_cross_entropy(logits, targets, ignore_index=7)
    check_gradients(lambda: softmax_cross_entropy(logits, targets, 7)[0],
                    dict(logits=logits), dict(logits=dlogits), rtol=1e-5, atol=1e-9)


def test_cross_entropy_is_stable_for_large_logits():
    logits = np.array([[1000.0, 0.0, -1000.0], [-1e4, 1e4, 0.0]], dtype=np.float32)
    loss, _, dlogits = softmax_cross_entropy(logits, np.array([2, 1]))
    assert np.isfinite(loss) and np.all(np.isfinite(dlogits))
    np.testing.assert_allclose(loss, 1000.0, rtol=1e-6)  # row 0: 2000 nats, row 1: 0


def test_cross_entropy_all_ignored():
    logits, _ = _case(np.float32)
    loss, count, dlogits = softmax_cross_entropy(logits, np.full(5, -100))
    assert (loss, count) == (0.0, 0)
    assert not dlogits.any()


def test_cross_entropy_matches_torch():
    torch = pytest.importorskip("torch")
    logits, targets = _case(np.float32, N=6, V=11, seed=3)
    t_logits = torch.tensor(logits, requires_grad=True)
    t_loss = torch.nn.functional.cross_entropy(t_logits, torch.tensor(targets), ignore_index=-100)
    t_loss.backward()
    loss, _, dlogits = softmax_cross_entropy(logits, targets)  # float32 kernel vs float32 torch
    np.testing.assert_allclose(loss, t_loss.item(), rtol=1e-5)
    np.testing.assert_allclose(dlogits, t_logits.grad.numpy(), rtol=1e-5, atol=1e-7)


def test_cross_entropy_bad_args():
    logits, targets = _case(np.float32)
    bad = targets.copy()
    bad[0] = 7
    with pytest.raises(ValueError, match="outside"):
        softmax_cross_entropy(logits, bad)
    bad[0] = -1
    with pytest.raises(ValueError, match="outside"):
        softmax_cross_entropy(logits, bad)
    with pytest.raises(ValueError, match="targets has shape"):
        softmax_cross_entropy(logits, targets[:3])
    with pytest.raises(ValueError, match="dtype"):
        softmax_cross_entropy(logits.astype(np.int32), targets)
    with pytest.raises(ValueError, match="dtype"):
        softmax_cross_entropy(logits, targets.astype(np.float32))
    with pytest.raises(ValueError, match="logits has shape"):
        softmax_cross_entropy(logits[0], targets)


def test_cross_entropy_accepts_non_contiguous():
    logits, targets = _case(np.float64, N=5, V=7)
    wide = np.zeros((5, 14))
    wide[:, ::2] = logits
    np.testing.assert_allclose(softmax_cross_entropy(wide[:, ::2], targets)[2],
                               softmax_cross_entropy(logits, targets)[2])


@pytest.mark.parametrize("dtype,tol", [(np.float32, 1e-6), (np.float64, 1e-13)])
def test_log_softmax(dtype, tol):
    logits, _ = _case(dtype)
    out = log_softmax(logits)
    assert out.dtype == dtype
    np.testing.assert_allclose(out, log_softmax_ref(logits), rtol=tol, atol=tol)
    x3 = logits.reshape(5, 7, 1).repeat(2, axis=2).transpose(0, 2, 1)  # (5, 2, 7), non-contiguous
    np.testing.assert_allclose(log_softmax(x3), log_softmax_ref(x3), rtol=tol, atol=tol)


def test_log_softmax_matches_torch():
    torch = pytest.importorskip("torch")
    logits, _ = _case(np.float32, seed=4)
    expected = torch.log_softmax(torch.tensor(logits), dim=-1).numpy()
    np.testing.assert_allclose(log_softmax(logits), expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_mse(dtype):
    rng = np.random.default_rng(5)
    pred, target = rng.standard_normal((2, 3, 4)).astype(dtype)
    loss, dpred = mse_loss(pred, target)
    ref_loss, ref_d = mse_ref(pred, target)
    assert dpred.shape == pred.shape and dpred.dtype == dtype
    np.testing.assert_allclose(loss, ref_loss, rtol=1e-6)
    np.testing.assert_allclose(dpred, ref_d, rtol=1e-6)


def test_mse_finite_differences_and_torch():
    rng = np.random.default_rng(6)
    pred, target = rng.standard_normal((2, 3, 2))
    _, dpred = mse_loss(pred, target)
    check_gradients(lambda: mse_loss(pred, target)[0], dict(pred=pred), dict(pred=dpred),
                    rtol=1e-5, atol=1e-9)
    torch = pytest.importorskip("torch")
    t_pred = torch.tensor(pred, requires_grad=True)
    t_loss = torch.nn.functional.mse_loss(t_pred, torch.tensor(target))
    t_loss.backward()
    np.testing.assert_allclose(mse_loss(pred, target)[0], t_loss.item(), rtol=1e-12)
    np.testing.assert_allclose(dpred, t_pred.grad.numpy(), rtol=1e-12)


def test_mse_bad_args():
    a = np.zeros((2, 3), np.float32)
    with pytest.raises(ValueError, match="shape"):
        mse_loss(a, np.zeros((3, 2), np.float32))
    with pytest.raises(ValueError, match="dtype"):
        mse_loss(a, np.zeros((2, 3), np.float64))
    with pytest.raises(ValueError, match="empty"):
        mse_loss(np.zeros(0, np.float32), np.zeros(0, np.float32))
