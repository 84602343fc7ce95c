"""Session-wide settings for the test run.

BLAS on one thread. The tests make many small GEMMs on a 2-core machine, where
OpenBLAS's threads spend more on hand-offs than they save and fight the other
process's threads (a music training fixture took 96 s with two threads and 8 s
with one). OPENBLAS_NUM_THREADS is set here, before a test module loads a BLAS,
unless the user set it: a user's value wins, and subprocesses that tests start
(CLI runs, worker pools, pip) inherit it. threadpoolctl then limits every BLAS
already loaded to the same count. Numba's own threads are left as they are.
"""
import os

# numba's CUDA simulator for the GPU kernels' tests (tests/kernels/cuda/), unless SUITE_TEST_GPU=1 asks for the
# real device; numba reads this once, when it is first imported, so it is set before anything imports numba.
if os.environ.get("SUITE_TEST_GPU") != "1":
    os.environ.setdefault("NUMBA_ENABLE_CUDASIM", "1")

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
BLAS_THREADS = int(os.environ["OPENBLAS_NUM_THREADS"])

import pytest  # noqa: E402
import numpy  # noqa: E402,F401  load numpy's BLAS now, so the limit below reaches it
from threadpoolctl import threadpool_limits  # noqa: E402

# Held for the whole session (never restored): every test runs under it.
_BLAS_LIMIT = threadpool_limits(limits=BLAS_THREADS, user_api="blas")


@pytest.fixture(autouse=True, scope="module")
def _quick_simulator_thread_switches(request):
    """numba's CUDA simulator runs each GPU thread as a Python thread, and they meet at every syncthreads;
    Python's default 5 ms GIL switch interval makes each meeting cost milliseconds, 0.1 ms makes the GPU
    kernels' tests (tests/kernels/cuda/, tests/suite/test_device.py) ~10x faster. Other tests keep 5 ms."""
    import sys

    gpu_module = "cuda" in request.node.nodeid.split("::")[0] or "test_device" in request.node.nodeid
    if not gpu_module or os.environ.get("NUMBA_ENABLE_CUDASIM") != "1":
        yield
        return
    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-4)
    yield
    sys.setswitchinterval(old)
