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


def publish_model(checkpoint_dir, export_dir, card):
    """Write checkpoint_dir's model plus ``card`` (card.json) to export_dir as one atomic swap.

    The folder is assembled beside export_dir and renamed into place, so a
    reader never sees a model without its card or a half-copied file.
    """
    import shutil
    import tempfile

    from suite.fileio import current_umask, replace_dir, write_json

    export_dir = Path(export_dir)
    export_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{export_dir.name}.", dir=export_dir.parent))
    try:
        for name in ("model.safetensors", "config.json"):
            shutil.copy2(Path(checkpoint_dir) / name, tmp / name)
        write_json(tmp / "card.json", card)
        tmp.chmod(0o777 & ~current_umask())  # mkdtemp's folder is private; a shipped model is not
        for f in tmp.iterdir():
            f.chmod(0o666 & ~current_umask())  # copy2 kept the checkpoint files' modes
        replace_dir(tmp, export_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return card
