"""The @cuda.jit twins of the CPU kernels, and the one place that picks the CUDA target.

Nothing imports this package unless a GPU (or the simulator) is asked for:
``import suite`` and every CPU command run without numba's CUDA target, a
driver or a GPU.

The target: ``numba-cuda`` (pip; the maintained CUDA target, which installs
itself as ``numba.cuda``) where installed, else the CUDA target inside numba
itself (deprecated since numba 0.61). Its successor ``numba-cuda-mlir`` would
be a change to ``_target`` alone: every kernel module takes ``cuda`` from here.

Tests run the kernels on numba's simulator (NUMBA_ENABLE_CUDASIM=1, set before
numba is imported: tests/conftest.py) on tiny shapes; on a machine with a GPU,
``SUITE_TEST_GPU=1 make test`` runs them on the device.

Conventions, as on the CPU: float32 or float64, time-major (T, B, ...)
sequences padded at the end with per-row lengths, weights as (in, out)
matrices. Public functions take NumPy or device arrays and return device
arrays (``to_host`` brings one back); they keep everything of a sequence on the
device, with one kernel launch per step at most.
"""
import os


def _target():
    try:
        import numba_cuda  # noqa: F401  (installs itself as numba.cuda)
        name = "numba-cuda"
    except ImportError:
        name = "numba (built-in CUDA target, deprecated)"
    from numba import cuda as module
    return module, name


cuda, TARGET = _target()


class DeviceError(RuntimeError):
    """No usable CUDA device: the message names what is missing."""


def simulated():
    """True when numba's CUDA simulator runs the kernels (NUMBA_ENABLE_CUDASIM=1)."""
    return os.environ.get("NUMBA_ENABLE_CUDASIM") == "1"


def status():
    """(usable, reason): whether our kernels can run on a CUDA device here (the simulator counts as usable)."""
    if simulated():
        return True, "NUMBA_ENABLE_CUDASIM=1 (simulator, not a GPU)"
    try:
        if cuda.is_available():
            name = cuda.get_current_device().name
            return True, name.decode() if isinstance(name, bytes) else str(name)
        return False, "no CUDA driver or NVIDIA GPU found"
    except Exception as exc:  # noqa: BLE001  (a broken driver install raises many kinds)
        return False, f"CUDA check failed: {exc}"


def require():
    """Raise DeviceError unless a CUDA device (or the simulator) is usable."""
    ok, reason = status()
    if not ok:
        raise DeviceError(f"--device cuda needs an NVIDIA GPU with its driver: {reason}; use --device cpu")


def is_device(a):
    """True for a numba device array (or the simulator's stand-in for one)."""
    return hasattr(a, "copy_to_host")


def to_device(a, dtype=None):
    """A device array of ``a`` (a NumPy array, or a device array returned as it is)."""
    import numpy as np

    if is_device(a):
        return a
    a = np.ascontiguousarray(a if dtype is None else np.asarray(a, dtype))
    return cuda.to_device(a)


def to_host(a):
    """A NumPy array of ``a`` (a device array copied back, or a NumPy array as it is)."""
    return a.copy_to_host() if is_device(a) else a


def zeros(shape, dtype):
    """A zero-filled device array (filled on the device: no host copy)."""
    out = cuda.device_array(shape, dtype)
    fill(out, 0.0)
    return out


@cuda.jit
def _fill(flat, value):
    i = cuda.grid(1)
    if i < flat.size:
        flat[i] = value


def fill(a, value):
    """Set every element of device array ``a`` to ``value``, in place."""
    if a.size:
        flat = a.reshape(a.size)
        _fill[blocks(a.size, 256), 256](flat, value)


def blocks(n, threads):
    """Blocks of ``threads`` that cover ``n`` items (at least one)."""
    return max((n + threads - 1) // threads, 1)
