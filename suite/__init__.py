"""suite: LSTM applications on our own Numba kernels."""

from suite import kernels  # noqa: F401  first: sets BLAS options that must precede numpy's import

__version__ = "0.1.0"
