"""Every package folder is installed, and the shipped models travel with it."""
import tomllib
from pathlib import Path

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


def test_wheel_carries_every_shipped_model(tmp_path):
    """`pip install .` must install data/models/<app>/ files, or `suite` finds no default model."""
    import subprocess
    import sys
    import zipfile

    shipped = sorted(p.relative_to(ROOT / "data" / "models").as_posix()
                     for p in (ROOT / "data" / "models").glob("*/*") if p.suffix in (".json", ".safetensors"))
    result = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                             "-w", str(tmp_path), str(ROOT)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    (wheel,) = tmp_path.glob("suite-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    missing = [f for f in shipped if f"suite/models/{f}" not in names]
    assert not missing, f"not in the wheel: {missing}"
    assert "suite/cli.py" in names and "suite/kernels/lstm.py" in names and "suite/apps/text/cli.py" in names
    assert {n.split("/")[0] for n in names if not n.startswith("suite-")} == {"suite"}, "one top-level package"
