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

import numpy  # noqa: E402,F401  load numpy's BLAS now, so the limit below reaches it
from threadpoolctl import threadpool_limits  # noqa: E402

# Held for the whole session (never restored): every test runs under it.
_BLAS_LIMIT = threadpool_limits(limits=BLAS_THREADS, user_api="blas")
