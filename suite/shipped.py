"""Where the shipped default models live, whether installed or run from a clone.

pyproject.toml installs data/models/ as the package ``suite.models``, so the
default model of an app is found relative to the installed code, from any
working directory.
"""
from importlib import resources
from pathlib import Path


def default_model_dir(app):
    """The folder of ``app``'s shipped model (it may not exist if the app ships none yet)."""
    try:
        root = Path(str(resources.files("suite.models")))
    except ModuleNotFoundError:  # running from a source tree without install
        root = Path(__file__).resolve().parents[1] / "data" / "models"
    return root / app
