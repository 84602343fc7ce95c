"""The device cross-entropy and log-softmax against the CPU kernels, NumPy references, finite differences."""
import numpy as np
import pytest

from tests.kernels.cuda.gpu import cuda_or_skip

kc = cuda_or_skip()
from suite.kernels import losses as cpu  # noqa: E402
from suite.kernels.cuda.losses import log_softmax, softmax_cross_entropy  # noqa: E402
from tests.gradcheck import check_gradients  # noqa: E402
from tests.reference.losses import log_softmax_ref, softmax_cross_entropy_ref  # noqa: E402


def _case(dtype, N=3, V=5, seed=0):
    """V above the simulator's 4 threads a block: a thread loops, the reduction has two levels."""
    rng = np.random.default_rng(seed)
    logits = (3 * rng.standard_normal((N, V))).astype(dtype)  # (N, V)
    targets = rng.integers(0, V, N)
    targets[1] = -100
    return logits, targets


def _host(loss, count, dlogits):
    assert kc.is_device(loss) and kc.is_device(dlogits) and isinstance(count, int)
    loss = kc.to_host(loss)
    assert loss.shape == (1,) and loss.dtype == np.float64
    return float(loss[0]), count, kc.to_host(dlogits)


@pytest.mark.parametrize("dtype,tol", [(np.float32, 1e-5), (np.float64, 1e-10)])
def test_cross_entropy_matches_cpu(dtype, tol):
    logits, targets = _case(dtype)
    loss, count, dlogits = _host(*softmax_cross_entropy(logits, targets))
    want_loss, want_count, want_d = cpu.softmax_cross_entropy(logits, targets)
    assert count == want_count == 2 and dlogits.dtype == dtype
    np.testing.assert_allclose(loss, want_loss, rtol=tol)
    np.testing.assert_allclose(dlogits, want_d, rtol=tol, atol=tol)
    assert not dlogits[1].any()


def test_cross_entropy_matches_reference_other_threads_device_targets():
    logits, targets = _case(np.float64, N=2, V=6, seed=1)
    targets[1] = 0  # ignore_index = 0 below: row 1 does not count
    ref_loss, ref_count, ref_d = softmax_cross_entropy_ref(logits, targets, ignore_index=0)
    for threads in (1, 8):  # one thread does a whole row; more threads than classes
        loss, count, dlogits = _host(*softmax_cross_entropy(
            kc.to_device(logits), kc.to_device(targets), ignore_index=0, threads=threads))
        assert count == ref_count == 1
        np.testing.assert_allclose(loss, ref_loss, rtol=1e-12)
        np.testing.assert_allclose(dlogits, ref_d, rtol=1e-12, atol=1e-15)


def test_cross_entropy_large_logits_and_nothing_counted():
    logits = np.array([[1000.0, 0.0, -1000.0], [-1e4, 1e4, 0.0]], dtype=np.float32)
    loss, _, dlogits = _host(*softmax_cross_entropy(logits, np.array([2, 1])))
    assert np.isfinite(dlogits).all()
    np.testing.assert_allclose(loss, 1000.0, rtol=1e-6)  # row 0: 2000 nats, row 1: 0
    loss, count, dlogits = _host(*softmax_cross_entropy(logits, np.full(2, -100)))
    assert (loss, count) == (0.0, 0) and not dlogits.any()
    loss, count, dlogits = _host(*softmax_cross_entropy(np.zeros((0, 3)), np.zeros(0, int)))
    assert (loss, count, dlogits.shape) == (0.0, 0, (0, 3))


def test_cross_entropy_finite_differences():
    logits, targets = _case(np.float64, N=3, V=4, seed=2)
    _, _, dlogits = _host(*softmax_cross_entropy(logits, targets))

    def loss():
        return float(kc.to_host(softmax_cross_entropy(logits, targets)[0])[0])

    # a sample, because every probe is two launches on the simulator
    check_gradients(loss, dict(logits=logits), dict(logits=dlogits), rtol=1e-6, atol=1e-9,
                    sample=5, rng=0)


@pytest.mark.parametrize("dtype,tol", [(np.float32, 1e-5), (np.float64, 1e-10)])
def test_log_softmax_matches_cpu(dtype, tol):
    rng = np.random.default_rng(3)
    x = (4 * rng.standard_normal((2, 2, 5))).astype(dtype)  # (T, B, V): rows are the last axis
    got = log_softmax(x)
    assert kc.is_device(got)
    got = kc.to_host(got)
    assert got.dtype == dtype and got.shape == x.shape
    np.testing.assert_allclose(got, cpu.log_softmax(x), rtol=tol, atol=tol)


def test_log_softmax_reference_1d_strided_and_large():
    rng = np.random.default_rng(4)
    x = rng.standard_normal(5)
    np.testing.assert_allclose(kc.to_host(log_softmax(x)), log_softmax_ref(x), rtol=1e-12)
    wide = rng.standard_normal((2, 10))
    got = log_softmax(kc.to_device(wide)[:, ::2], threads=2)  # a strided 2-D device view
    np.testing.assert_allclose(kc.to_host(got), log_softmax_ref(wide[:, ::2]), rtol=1e-12)
    big = np.array([[1e4, 0.0, -1e4]], np.float32)
    np.testing.assert_allclose(kc.to_host(log_softmax(big)), [[0.0, -1e4, -2e4]], rtol=1e-6)


def test_bad_args():
    logits, targets = _case(np.float32)
    bad = targets.copy()
    bad[0] = 5
    with pytest.raises(ValueError, match=r"targets\[0\] = 5 is outside \[0, 5\)"):
        softmax_cross_entropy(logits, bad)
    bad[0] = -1
    with pytest.raises(ValueError, match="outside"):
        softmax_cross_entropy(logits, bad)
    with pytest.raises(ValueError, match="targets has shape"):
        softmax_cross_entropy(logits, targets[:2])
    with pytest.raises(ValueError, match="logits has dtype"):
        softmax_cross_entropy(logits.astype(np.int32), targets)
    with pytest.raises(ValueError, match="targets has dtype"):
        softmax_cross_entropy(logits, targets.astype(np.float32))
    with pytest.raises(ValueError, match="logits has shape"):
        softmax_cross_entropy(logits[0], targets)
    with pytest.raises(ValueError, match="power of two"):
        softmax_cross_entropy(logits, targets, threads=3)
    with pytest.raises(ValueError, match="logits has shape"):
        log_softmax(np.zeros((2, 0)))
    with pytest.raises(ValueError, match="logits has dtype"):
        log_softmax(kc.to_device(np.zeros((2, 3), np.int64)))
    with pytest.raises(ValueError, match="non-contiguous"):
        log_softmax(kc.to_device(np.zeros((2, 3, 4)))[:, :, ::2])
