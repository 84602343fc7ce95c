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

# Before numba is imported (the simulator patch below imports it): suite.kernels points numba's cache at a folder
# keyed by every kernel source's hash, so an edit to a helper module (matmul.py, lstm_cell.py) recompiles the
# kernels that call it. Imported later, numba had already settled on its default cache beside each file, keyed
# by that file alone: a test run after editing matmul.py ran sampling.py's old compiled code and passed.
import suite.kernels  # noqa: E402,F401

import pytest  # noqa: E402
import numpy  # noqa: E402,F401  load numpy's BLAS now, so the limit below reaches it
from threadpoolctl import threadpool_limits  # noqa: E402

# Held for the whole session (never restored): every test runs under it.
_BLAS_LIMIT = threadpool_limits(limits=BLAS_THREADS, user_api="blas")


def _thread_safe_simulator_shared_arrays():
    """numba's CUDA simulator hands each block's threads one shared array per call site, made by the first thread
    that asks (FakeCUDAShared.array: look up, and if missing make and store). Two threads can both find it
    missing and each make its own, so they do not share it: a tiled GEMM then computes wrong rows (3,000
    launches of kernels.cuda.gemm on 3x12 by 12x3 under sys.setswitchinterval(1e-5) gave one wrong product).
    It showed as a rare failure of a GPU-vs-CPU test (in the LSTM backward's recurrent GEMM: one batch row
    wrong from the second step back). Here the same lookup runs under a lock; a real GPU has no such step."""
    if os.environ.get("NUMBA_ENABLE_CUDASIM") != "1":
        return
    import sys
    import threading
    import traceback

    import numpy as np
    from numba.core import types
    from numba.cuda.simulator import kernelapi
    from numba.np import numpy_support

    lock = threading.Lock()
    original = kernelapi.FakeCUDAShared.array

    def array(self, shape, dtype, alignment=None):
        if alignment is not None or shape == 0:  # numba's own errors and its dynamic shared memory
            return original(self, shape, dtype, alignment)
        if isinstance(dtype, types.Type):
            dtype = numpy_support.as_dtype(dtype)
        caller = traceback.extract_stack(sys._getframe())[-2][0:2]  # the kernel's line, as numba keys it
        with lock:
            res = self._allocations.get(caller)
            if res is None:
                res = self._allocations[caller] = np.empty(shape, dtype)
        return res

    kernelapi.FakeCUDAShared.array = array


_thread_safe_simulator_shared_arrays()


def _is_gpu_module(nodeid):
    """The GPU kernels' and device tests: tests/kernels/cuda/ and tests/suite/test_device*.py."""
    path = nodeid.split("::")[0]
    return "cuda" in path or "test_device" in path


def pytest_configure(config):
    config.addinivalue_line("markers", "gpu: a GPU test (numba's CUDA simulator unless SUITE_TEST_GPU=1)")


def pytest_collection_modifyitems(config, items):
    """Mark the GPU tests `gpu`, so `pytest -m "not gpu"` runs the rest alone (a quicker check on a CPU: under the
    simulator each GPU thread is a Python thread, and they are about half of the suite's time)."""
    for item in items:
        if _is_gpu_module(item.nodeid):
            item.add_marker(pytest.mark.gpu)


@pytest.fixture(scope="module")
def host_gemm_in_simulator():
    """Whole-network GPU tests (tests/suite/test_device*.py) under the simulator: gemm's product on the host
    (kernels.cuda.gemm.SIMULATOR_HOST_PRODUCT), every other kernel as on a GPU. The tiled GEMM kernel is tested
    on its own and inside each kernel's tests (tests/kernels/cuda/); run through the simulator's Python threads
    it was 85 % of these tests' time. On a real GPU (SUITE_TEST_GPU=1) the flag is ignored."""
    from suite.kernels.cuda import gemm

    gemm.SIMULATOR_HOST_PRODUCT = True
    yield
    gemm.SIMULATOR_HOST_PRODUCT = False


@pytest.fixture(autouse=True, scope="module")
def _quick_simulator_thread_switches(request):
    """numba's CUDA simulator runs each GPU thread as a Python thread, and they meet at every syncthreads;
    Python's default 5 ms GIL switch interval makes each meeting cost milliseconds, 0.1 ms makes the GPU
    kernels' tests (tests/kernels/cuda/, tests/suite/test_device.py) ~10x faster. Other tests keep 5 ms."""
    import sys

    if not _is_gpu_module(request.node.nodeid) or os.environ.get("NUMBA_ENABLE_CUDASIM") != "1":
        yield
        return
    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-4)
    yield
    sys.setswitchinterval(old)
