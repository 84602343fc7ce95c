"""BLAS thread limits for small, latency-bound work.

One utterance at a time makes GEMMs of a few rows: OpenBLAS's threads then cost
more in hand-offs than they save (measured here: speech evaluation ran at 28x
real time with 2 BLAS threads and 70x with one). Training keeps the default
except where its GEMMs are small too: caption and handwriting training ask for
one thread (training_blas_threads) unless the user named a count.
"""
import contextlib


@contextlib.contextmanager
def single_blas_thread():
    """Run the block with every BLAS (numpy's, SciPy's, which numba calls) on one thread."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # without it the default threads are used: slower, not wrong
        yield
        return
    from suite.kernels.blas import load_kernel_blas

    load_kernel_blas()  # else a block entered before any kernel ran misses the BLAS numba calls
    with threadpool_limits(limits=1, user_api="blas"):
        yield


BLAS_THREAD_VARS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")
"""The environment variables that set a BLAS library's thread count."""


def user_set_blas_threads():
    """Whether the environment names a BLAS thread count (then it is the user's choice, and it wins)."""
    import os

    return any(os.environ.get(name) for name in BLAS_THREAD_VARS)


@contextlib.contextmanager
def training_blas_threads(one_thread):
    """One BLAS thread for the block when ``one_thread`` and the user set no thread count; else as it is.

    Training a model whose GEMMs are small and many (a conv encoder one image at a time, linear layers,
    attention) ran slower with OpenBLAS's two threads here than with one: caption 3.8 against 6.3 steps a
    second, handwriting 0.97 against 1.15 (AVX2 EPYC, 2 cores, 2026-12-07, 150-300 steps of `train --init
    data/models/APP` with OPENBLAS_NUM_THREADS=2 and =1): each call wakes the second thread for little work.
    """
    if one_thread and not user_set_blas_threads():
        with single_blas_thread():
            yield
    else:
        yield
