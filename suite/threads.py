"""BLAS thread limits for small, latency-bound work.

One utterance at a time makes GEMMs of a few rows: OpenBLAS's threads then cost
more in hand-offs than they save (measured here: speech evaluation ran at 28x
real time with 2 BLAS threads and 70x with one). Batched training keeps the
default.
"""
import contextlib


@contextlib.contextmanager
def single_blas_thread():
    """Run the block with every loaded BLAS (numpy's, SciPy's, which numba calls) on one thread."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # without it the default threads are used: slower, not wrong
        yield
        return
    with threadpool_limits(limits=1, user_api="blas"):
        yield
