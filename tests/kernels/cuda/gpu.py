"""What every GPU kernel test needs: the kernels package, or a skip saying why it cannot run here.

tests/conftest.py turns numba's CUDA simulator on (unless SUITE_TEST_GPU=1
asks for the real device), so these tests run in every `make test`.
"""
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
    return kc
