"""What every GPU kernel test needs: the kernels package, or a skip saying why it cannot run here.

tests/conftest.py turns numba's CUDA simulator on (unless SUITE_TEST_GPU=1
asks for the real device), so these tests run in every `make test`. On the
simulator, every new device array starts filled with NaN (floats) or -2**62
(integers), as uninitialised GPU memory may hold anything: a kernel that reads
an output before writing it then fails its test every time, not once in a while.
"""
import numpy as np
import pytest


def cuda_or_skip():
    """suite.kernels.cuda, or skip the module with the reason no CUDA target (simulated or real) is usable."""
    try:
        import suite.kernels.cuda as kc
    except Exception as exc:  # noqa: BLE001
        pytest.skip(f"numba's CUDA target cannot be imported: {exc}", allow_module_level=True)
    ok, reason = kc.status()
    if not ok:
        pytest.skip(f"no CUDA device: {reason} (run without SUITE_TEST_GPU=1 to use the simulator)",
                    allow_module_level=True)
    if kc.simulated():
        poison_new_arrays(kc.cuda)
    return kc


def poison_new_arrays(cuda):
    """Make the simulator's cuda.device_array fill new arrays with NaN / -2**62 (once per process)."""
    if getattr(cuda.device_array, "poisons", False):
        return
    plain = cuda.device_array

    def device_array(shape, dtype=np.float64, *args, **kwargs):
        out = plain(shape, dtype, *args, **kwargs)
        kind = np.dtype(dtype).kind
        if out.size and kind in "fi":
            host = np.full(out.shape, np.nan if kind == "f" else -2**62, dtype)
            out.copy_to_device(host)
        return out

    device_array.poisons = True
    cuda.device_array = device_array
