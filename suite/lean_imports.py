"""Keep numba from importing two libraries no suite command uses: a command's start is ~0.25 s shorter.

Loading any compiled kernel makes numba's CPU target import

- ``numba.np.arraymath``, which checks at import that a BLAS is there by importing ``scipy.linalg.cython_blas``:
  Python imports the parent package ``scipy.linalg`` first (~0.17 s: all of SciPy's linear algebra), though
  numba wants only that one extension module's function pointers;
- ``numba.core.typing.cffi_utils``, which builds a ``cffi.FFI()`` so numba could type cffi functions, and that
  imports cffi's C parser (pycparser, ~0.1 s). Our kernels take no cffi functions (soundfile uses cffi's
  compiled backend, ``_cffi_backend``, not this package).

``install()`` (the ``suite`` command calls it first) adds an import hook that, when numba reaches those two
modules, loads ``scipy.linalg.cython_blas`` on its own (kernels/blas.py; the same extension module; a later ``import
scipy.linalg`` still works and finds it) and runs ``cffi_utils`` with ``cffi`` hidden (numba then reports cffi
as unsupported, as it does where cffi is not installed). Where anything differs from what is expected (another
SciPy layout, cffi already imported) the hook steps aside and the normal imports run. No NumPy here:
``suite --help`` must stay light.
"""
import importlib.abc
import importlib.machinery
import importlib.util
import sys

CFFI_USER = "numba.core.typing.cffi_utils"


class _WithoutCffi(importlib.abc.Loader):
    """Runs a module with ``import cffi`` failing, as where cffi is not installed (used only while cffi is not
    imported, so there is nothing to restore but the absence)."""

    def __init__(self, loader):
        self.loader = loader

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module):
        sys.modules["cffi"] = None  # a None entry makes `import cffi` raise ImportError
        try:
            self.loader.exec_module(module)
        finally:
            del sys.modules["cffi"]


class _Hook(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "numba.np.arraymath":
            from suite.kernels.blas import preload_blas

            preload_blas()
        elif name == CFFI_USER and "cffi" not in sys.modules:
            for finder in sys.meta_path:
                if finder is self or not hasattr(finder, "find_spec"):
                    continue
                spec = finder.find_spec(name, path, target)
                if spec is not None:
                    if spec.loader is not None and hasattr(spec.loader, "exec_module"):
                        spec.loader = _WithoutCffi(spec.loader)
                    return spec
        return None


def install():
    """Add the hook (once); a no-op where numba is already imported."""
    if "numba" in sys.modules or any(isinstance(f, _Hook) for f in sys.meta_path):
        return
    sys.meta_path.insert(0, _Hook())
