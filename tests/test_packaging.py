"""Every package folder is installed, and the shipped models travel with it."""
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _pyproject():
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_every_package_folder_is_listed_in_pyproject():
    listed = set(_pyproject()["tool"]["setuptools"]["packages"])
    found = set()
    for top, name in (("kernels", "suite.kernels"), ("suite", "suite"), ("apps", "suite.apps")):
        for init in (ROOT / top).rglob("__init__.py"):
            found.add(".".join((name, *init.parent.relative_to(ROOT / top).parts)))
    missing = found - listed
    assert not missing, f"add these to [tool.setuptools] packages in pyproject.toml: {sorted(missing)}"
    assert "suite.models" in listed


def test_models_package_maps_to_data_models():
    assert _pyproject()["tool"]["setuptools"]["package-dir"]["suite.models"] == "data/models"


def test_everything_installs_under_the_one_name_suite():
    """kernels/ and apps/ stay at the top of the repository but install as suite.kernels and suite.apps."""
    setuptools = _pyproject()["tool"]["setuptools"]
    assert setuptools["package-dir"] == {"suite.kernels": "kernels", "suite.apps": "apps", "suite.models": "data/models"}
    assert {p.split(".")[0] for p in setuptools["packages"]} == {"suite"}


def test_every_registered_app_is_a_listed_package():
    apps = _pyproject()["project"]["entry-points"]["suite.apps"]
    listed = set(_pyproject()["tool"]["setuptools"]["packages"])
    for name, target in apps.items():
        module = target.split(":")[0]
        assert module.rsplit(".", 1)[0] in listed, (name, target)


def _clean_copy(dest):
    """The files git would commit (tracked, plus untracked ones it does not ignore) copied to dest.

    pip builds in the source folder it is given: from the repository it would leave
    build/ and suite.egg-info/ there, and a stale build/lib from an earlier layout
    leaks old top-level packages into the wheel. From a copy it does neither.
    """
    import shutil
    import subprocess

    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                            cwd=ROOT, capture_output=True)
    if listed.returncode != 0:
        pytest.skip("not a git checkout: " + listed.stderr.decode(errors="replace")[-200:])
    for name in listed.stdout.decode().split("\0"):
        src = ROOT / name
        if name and src.is_file():  # skips files deleted in the working tree
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / name)
    return dest


def test_wheel_carries_every_shipped_model(tmp_path):
    """`pip install .` must install data/models/<app>/ files, or `suite` finds no default model."""
    import subprocess
    import sys
    import zipfile

    shipped = sorted(p.relative_to(ROOT / "data" / "models").as_posix()
                     for p in (ROOT / "data" / "models").glob("*/*") if p.suffix in (".json", ".safetensors"))
    build_before = (ROOT / "build").exists()
    source = _clean_copy(tmp_path / "src")
    wheels = tmp_path / "wheels"
    result = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                             "-w", str(wheels), str(source)], capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert (ROOT / "build").exists() == build_before, "the wheel build wrote build/ into the repository"
    (wheel,) = wheels.glob("suite-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    missing = [f for f in shipped if f"suite/models/{f}" not in names]
    assert not missing, f"not in the wheel: {missing}"
    assert "suite/cli.py" in names and "suite/kernels/lstm.py" in names and "suite/apps/text/cli.py" in names
    assert {n.split("/")[0] for n in names if not n.startswith("suite-")} == {"suite"}, "one top-level package"


def test_help_imports_no_numpy():
    """`suite --help` lists every app's commands without importing NumPy (issue 20: --help under 0.3 s; NumPy's
    import alone is ~0.1 s here): the apps' CLI modules keep heavy imports inside their commands."""
    import subprocess
    import sys

    code = ("import sys; sys.argv = ['suite', '--help']\nfrom suite.cli import main\ntry:\n    main()\n"
            "except SystemExit:\n    pass\nprint(sorted(m for m in ('numpy', 'numba', 'scipy') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().splitlines()[-1] == "[]", out[-300:]


LEAN_CHECK = """
import sys
from suite import lean_imports
if sys.argv[1] == "hook":
    lean_imports.install()
import numpy as np
from numba import njit

@njit(cache=False)
def product(a, b):
    return np.dot(a, b)

a = np.arange(6.0).reshape(2, 3)
assert np.allclose(product(a, a.T), a @ a.T)  # numba's dot reaches BLAS through scipy.linalg.cython_blas
print(sorted(m for m in ("scipy.linalg", "cffi") if m in sys.modules))
import scipy.linalg  # a later import of the whole package still works and finds the same module
from scipy.linalg import cython_blas
assert cython_blas is sys.modules["scipy.linalg.cython_blas"]
print(float(scipy.linalg.norm(a)) > 0)
"""


def test_lean_imports_skip_scipy_linalg_and_cffi():
    """The `suite` command's import hook (issue 20: commands in ~1.5 s): numba compiles and runs a BLAS call
    without importing scipy.linalg or cffi's parser, and both still import afterwards; without the hook numba
    imports both (where cffi is installed), so the check can fail."""
    import subprocess
    import sys

    def run(mode):
        out = subprocess.run([sys.executable, "-c", LEAN_CHECK, mode], capture_output=True, text=True, check=True)
        return out.stdout.strip().splitlines()

    assert run("hook") == ["[]", "True"]
    plain = run("plain")
    assert "scipy.linalg" in plain[0] and plain[1] == "True"
