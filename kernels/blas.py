"""The BLAS the kernels call: SciPy's OpenBLAS, which numba's np.dot in @njit code reaches through
scipy.linalg.cython_blas (NumPy ships a second OpenBLAS with its own thread pool).

Nothing here imports NumPy or SciPy at import time: suite.lean_imports calls preload_blas from an import hook.
"""
import importlib.machinery
import importlib.util
import os
import sys

BLAS = "scipy.linalg.cython_blas"


def preload_blas():
    """Load scipy.linalg.cython_blas without running scipy/linalg/__init__.py (all of SciPy's linear algebra,
    ~0.17 s), where it can be found alone; numba wants only that extension module's function pointers, and a later
    ``import scipy.linalg`` still works and finds it. Any surprise: nothing is loaded (the normal import runs)."""
    if BLAS in sys.modules or "scipy.linalg" in sys.modules:
        return
    try:
        import scipy
        folder = os.path.join(scipy.__path__[0], "linalg")
        found = importlib.machinery.PathFinder.find_spec("cython_blas", [folder])
        if found is None or not isinstance(found.loader, importlib.machinery.ExtensionFileLoader):
            return
        spec = importlib.util.spec_from_file_location(BLAS, found.origin)
        module = importlib.util.module_from_spec(spec)
        sys.modules[BLAS] = module
        spec.loader.exec_module(module)
    except Exception:  # noqa: BLE001 - any surprise: the normal import runs instead
        sys.modules.pop(BLAS, None)


def load_kernel_blas():
    """Load the kernels' BLAS now (alone where it can be: preload_blas). threadpoolctl limits only the libraries
    loaded when it looks, and numba loads this one with the first kernel that calls np.dot: a limit set before any
    kernel ran missed it (measured: inside suite.threads.single_blas_thread SciPy's OpenBLAS still ran two
    threads; the halves of a batch, kernels/halves.py, ran two-thread GEMMs side by side, 2 x slower)."""
    if BLAS not in sys.modules:
        preload_blas()
    if BLAS not in sys.modules:
        import scipy.linalg.cython_blas  # noqa: F401
