"""The fast float32 tanh and sigmoid of kernels/_math.py against NumPy in float64.

The grid: every 256th finite float32 bit pattern of each sign (32,768 points in
each binade, from the smallest subnormal to the float32 maximum), plus every
float32 with 4 <= |x| < 16, where both maxima lie (tanh's in [4, 8), sigmoid's
in [8, 16)), plus 0, -0, +-inf and NaN.

Measured on the grid (x86-64, AVX2 with FMA):
- tanh: maximum absolute error 2.92e-7, at x = +-5.126039; at most 5 float32 ulp
  for |x| >= 2**-110 (below about 2.4e-36 the product x * 4.9e-3 is subnormal
  and the ulp error grows, while the absolute error stays under 1e-40).
- sigmoid: maximum absolute error 1.69e-7, at x = 8.003398.
The tests assert tanh <= 3.0e-7 and sigmoid <= 1.75e-7 (a little above the
measured values, for other vector widths), and that tanh is exactly odd.

Special values, as kernels/_math.py documents: the argument is clamped to
|x| <= 7.905311, so tanh(+-inf) = tanh(+-float32 max) = +-0.99999976 (1 - 2**-22),
sigmoid(+inf) = 0.99999988 and sigmoid(-inf) = 1.1920929e-07 (2**-23); NaN gives
NaN; tanh keeps the sign of zero. |tanh| < 1 everywhere; sigmoid > 0 everywhere but
rounds to exactly 1.0 at a few x (15 points of the grid, 15.74 to 15.81).
float64 arguments take libm's tanh and exp.
"""
import numpy as np

from suite.kernels._math import sigmoid_array, tanh_array

TANH_MAX_ABS = 3.0e-7  # measured 2.92e-7 at +-5.126039
SIGMOID_MAX_ABS = 1.75e-7  # measured 1.69e-7 at 8.003398
TANH_MAX_ULP = 5  # for |x| >= 2**-110
CHUNK = 1 << 22


def _grid_chunks():
    """Positive float32 values of the grid, a chunk at a time (negatives are -chunk)."""
    finite = np.uint32(0x7F800000)  # bit pattern of +inf
    sparse = np.arange(0, finite, 256, dtype=np.uint32)
    lo, hi = np.float32(4).view(np.uint32), np.float32(16).view(np.uint32)
    dense = np.arange(lo, hi, dtype=np.uint32)
    for bits in (sparse, dense):
        for start in range(0, bits.size, CHUNK):
            yield bits[start:start + CHUNK].view(np.float32)


def _fast(fn, x):
    out = np.empty_like(x)
    fn(x, out)
    return out


def _ulps(a, b):
    """Distance in float32 steps between same-signed float32 arrays."""
    return np.abs(a.view(np.int32) - b.view(np.int32))  # same sign: no overflow


def test_tanh_error_over_the_float32_range():
    worst, at, worst_ulp = 0.0, None, 0
    for pos in _grid_chunks():
        got = _fast(tanh_array, pos)
        assert np.array_equal(_fast(tanh_array, -pos), -got), "tanh is not exactly odd"
        assert np.all(np.abs(got) < 1)
        ref = np.tanh(pos.astype(np.float64))  # odd too: the positive half says it all
        err = np.abs(got - ref)
        k = int(np.argmax(err))
        if err[k] > worst:
            worst, at = float(err[k]), float(pos[k])
        normal = int(np.searchsorted(pos, 2.0 ** -110))  # pos ascends
        worst_ulp = max(worst_ulp, int(_ulps(got[normal:], ref[normal:].astype(np.float32)).max()))
    assert worst <= TANH_MAX_ABS, f"tanh: max abs error {worst:.3g} at x = +-{at!r}"
    assert worst > 0.9 * TANH_MAX_ABS, f"tanh: max abs error {worst:.3g}: the docstring is stale"
    assert worst_ulp <= TANH_MAX_ULP, f"tanh: {worst_ulp} ulp"


def test_sigmoid_error_over_the_float32_range():
    worst, at = 0.0, None
    for pos in _grid_chunks():
        x = np.concatenate([pos, -pos])
        got = _fast(sigmoid_array, x)
        x64 = x.astype(np.float64)
        ref = 0.5 * np.tanh(0.5 * x64) + 0.5  # = 1 / (1 + exp(-x)) without overflow
        err = np.abs(got - ref)
        k = int(np.argmax(err))
        if err[k] > worst:
            worst, at = float(err[k]), float(x[k])
        assert np.all((got > 0) & (got <= 1))  # 1.0 at some x near 15.75, never 0
    assert worst <= SIGMOID_MAX_ABS, f"sigmoid: max abs error {worst:.3g} at x = {at!r}"
    assert worst > 0.9 * SIGMOID_MAX_ABS, f"sigmoid: max abs error {worst:.3g}: the docstring is stale"


def test_special_values():
    big = np.finfo(np.float32).max
    x = np.array([np.inf, -np.inf, big, -big, 7.905311, np.nan, 0.0, -0.0], np.float32)
    t = _fast(tanh_array, x)
    top = np.float32(1 - 2.0 ** -22)
    assert t[:5].tolist() == [top, -top, top, -top, top]
    assert np.isnan(t[5])
    assert t[6] == 0 and not np.signbit(t[6]) and t[7] == 0 and np.signbit(t[7])
    s = _fast(sigmoid_array, x)
    assert s[0] == s[2] == np.float32(1 - 2.0 ** -23)
    assert s[1] == s[3] == np.float32(2.0 ** -23)
    assert np.isnan(s[5]) and s[6] == s[7] == 0.5


def test_float64_takes_libm():
    x = np.concatenate([np.linspace(-30, 30, 20001), [0.0, 1e-300, -1e-300]])
    np.testing.assert_allclose(_fast(tanh_array, x), np.tanh(x), rtol=1e-15, atol=0)
    np.testing.assert_allclose(_fast(sigmoid_array, x), 1 / (1 + np.exp(-x)), rtol=1e-15, atol=0)
    assert np.isnan(_fast(tanh_array, np.array([np.nan])))[0]
