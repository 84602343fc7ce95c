"""Scalar activation functions shared by every kernel.

The gate nonlinearities dominate an LSTM step once the GEMMs are in BLAS, and
Numba's libm ``math.tanh``/``math.exp`` are scalar calls that block
vectorisation on this machine (no SVML). For float32 we use a rational
approximation of tanh (odd degree-13 numerator over even degree-6 denominator,
the form Eigen uses) that LLVM vectorises. Over every float32 its absolute error
is below 3e-7 (2.92e-7 at x = +-5.126), at most 5 ulp on the test's grid for
|x| >= 2**-110; the
sigmoid's is below 1.75e-7 (1.69e-7 at x = 8.003). tests/kernels/test_math.py
measures both against NumPy over a dense float32 grid. For float64, used by the
finite-difference gradient checks, the exact libm functions keep the checks
tight. The choice is made at compile time from the argument type.

sigmoid(x) = 0.5 * tanh(x / 2) + 0.5, so one approximation serves both.

Special float32 values: the argument is clamped to |x| <= 7.905, so
tanh(+-inf) = +-0.99999976 (1 - 2**-22; |tanh| < 1 everywhere), sigmoid(+inf) =
1 - 2**-23 and sigmoid(-inf) = 2**-23; NaN propagates (the fastmath set keeps
NaN semantics); tanh keeps the sign of zero.
"""
import math

import numpy as np
from numba import njit, types
from numba.extending import overload

from suite.kernels.config import JIT

# Beyond |x| = 7.9 the true tanh rounds to 1.0 in float32; the rational form,
# evaluated at the clamp, gives 1 - 2**-22.
_CLAMP = 7.90531110763549805
_A1 = 4.89352455891786e-03
_A3 = 6.37261928875436e-04
_A5 = 1.48572235717979e-05
_A7 = 5.12229709037114e-08
_A9 = -8.60467152213735e-11
_A11 = 2.00018790482477e-13
_A13 = -2.76076847742355e-16
_B0 = 4.89352518554385e-03
_B2 = 2.26843463243900e-03
_B4 = 1.18534705686654e-04
_B6 = 1.19825839466702e-06


def tanh(x):
    """tanh for use inside @njit code (fast rational form for float32)."""
    return np.tanh(x)


def sigmoid(x):
    """Logistic sigmoid for use inside @njit code."""
    return 1.0 / (1.0 + np.exp(-x))


@overload(tanh, inline="always", jit_options=JIT)
def _tanh_impl(x):
    if isinstance(x, types.Float) and x.bitwidth == 32:
        clamp = np.float32(_CLAMP)
        a1, a3, a5, a7 = np.float32(_A1), np.float32(_A3), np.float32(_A5), np.float32(_A7)
        a9, a11, a13 = np.float32(_A9), np.float32(_A11), np.float32(_A13)
        b0, b2, b4, b6 = np.float32(_B0), np.float32(_B2), np.float32(_B4), np.float32(_B6)

        def impl(x):
            x = min(max(x, -clamp), clamp)
            x2 = x * x
            p = x2 * a13 + a11
            p = x2 * p + a9
            p = x2 * p + a7
            p = x2 * p + a5
            p = x2 * p + a3
            p = x2 * p + a1
            p = x * p
            q = x2 * b6 + b4
            q = x2 * q + b2
            q = x2 * q + b0
            return p / q

        return impl
    if isinstance(x, types.Float):
        return lambda x: math.tanh(x)
    return None


@overload(sigmoid, inline="always", jit_options=JIT)
def _sigmoid_impl(x):
    if isinstance(x, types.Float) and x.bitwidth == 32:
        half = np.float32(0.5)
        return lambda x: half * tanh(half * x) + half
    if isinstance(x, types.Float):
        return lambda x: 1.0 / (1.0 + math.exp(-x))
    return None


@njit(**JIT)
def tanh_array(x, out):
    """Elementwise tanh of a contiguous array into ``out`` (used by tests)."""
    xf = x.ravel()
    of = out.ravel()
    for k in range(xf.size):
        of[k] = tanh(xf[k])


@njit(**JIT)
def sigmoid_array(x, out):
    """Elementwise sigmoid of a contiguous array into ``out`` (used by tests)."""
    xf = x.ravel()
    of = out.ravel()
    for k in range(xf.size):
        of[k] = sigmoid(xf[k])
