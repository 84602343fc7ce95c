"""The numeric core: pure functions over float32 arrays, compiled with Numba.

Importing this package (which ``suite`` does first) picks OpenBLAS's AVX-512
kernels on CPUs that have AVX-512. SciPy's OpenBLAS 0.3.30 classifies recent
AMD CPUs (family 26) as Haswell and runs AVX2 GEMMs at about half speed (92
against 165 GFLOP/s on one core here); the choice is read once, when the
library loads, so it must be made before numpy or scipy is imported. An
explicit OPENBLAS_CORETYPE from the user always wins, and CPUs without
AVX-512 are left alone (forcing it there would crash).
"""
import os


def _has_avx512f():
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("flags"):
                    return " avx512f" in line
    except OSError:
        pass
    return False


if "OPENBLAS_CORETYPE" not in os.environ and _has_avx512f():
    os.environ["OPENBLAS_CORETYPE"] = "SkylakeX"
