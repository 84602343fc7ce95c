"""suite: LSTM applications on our own Numba kernels."""

__version__ = "0.1.0"
