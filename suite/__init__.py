"""suite: LSTM applications on our own Numba kernels."""

import kernels  # noqa: F401  first: sets BLAS options that must precede numpy's import

__version__ = "0.1.0"
