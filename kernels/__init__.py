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


def _numba_cache_dir():
    """A numba cache folder keyed by a hash of every kernel source file.

    Numba's cache=True checks only the timestamp of the file that defines a
    function, not of the functions it calls: after an edit to lstm_cell.py the
    compiled lstm.py kernels would keep running the old cell. Keying the cache
    folder by the hash of all kernel sources makes any edit recompile (about a
    minute cold); an unchanged tree keeps its cache. NUMBA_CACHE_DIR, if set,
    is the root under which the keyed folder goes.
    """
    import hashlib
    import tempfile
    from pathlib import Path

    here = Path(__file__).resolve().parent
    digest = hashlib.sha256()
    for path in sorted(here.rglob("*.py")):
        if path.relative_to(here).parts[0] == "cuda":
            continue  # the GPU twins: no @njit kernel calls them, so editing them recompiles nothing here
        digest.update(path.relative_to(here).as_posix().encode())
        digest.update(path.read_bytes())
    key = digest.hexdigest()[:16]
    roots = [os.environ.get("SUITE_NUMBA_CACHE_ROOT") or os.environ.get("NUMBA_CACHE_DIR")]
    roots += [os.path.join(os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "suite-numba"),
              os.path.join(tempfile.gettempdir(), "suite-numba")]
    for root in roots:
        if not root:
            continue
        folder = os.path.join(root, key)
        try:
            os.makedirs(folder, exist_ok=True)
        except OSError:
            continue
        if os.access(folder, os.W_OK):
            return root, folder
    return None, None


if "numba" not in __import__("sys").modules:  # numba reads NUMBA_CACHE_DIR once, at import
    _root, _folder = _numba_cache_dir()
    if _folder is not None:
        os.environ["SUITE_NUMBA_CACHE_ROOT"] = _root  # so a child process keys under the same root
        os.environ["NUMBA_CACHE_DIR"] = _folder
