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

    from suite.card import CARD_FILE, validate_card
    from suite.fileio import current_umask, staged_dir, write_json

    validate_card(card, where=f"card for {export_dir}")  # before anything is written
    with staged_dir(export_dir) as tmp:
        for name in ("model.safetensors", "config.json"):
            shutil.copy2(Path(checkpoint_dir) / name, tmp / name)
        write_json(tmp / CARD_FILE, card)
        for f in tmp.iterdir():
            f.chmod(0o666 & ~current_umask())  # copy2 kept the checkpoint files' modes
    return card


def load_app_model(model_dir, app, model_name, build):
    """(model, card) from a model folder written for ``app``; one-line CheckpointError otherwise.

    build(config: dict, meta: dict) -> Module makes the untrained model from the
    folder's config (its "model" field, which must equal ``model_name``, removed);
    its weights are then loaded, checked against the config, and it is put in eval mode.
    """
    from suite.nn.checkpoint import CheckpointError, load_checkpoint, read_card

    model_dir = Path(model_dir)
    config_file = model_dir / "config.json"
    if not config_file.exists():
        raise CheckpointError(f"{model_dir}: no model here (config.json missing); pass a {app} model folder "
                              f"such as data/models/{app} or a run's best/, or train one with "
                              f"`suite {app} train --export DIR`")
    card = read_card(model_dir)
    config = dict(card["config"])
    meta = card["meta"]
    if config.pop("model", None) != model_name or meta.get("app") != app:
        raise CheckpointError(f"{config_file}: not a {app} model ({model_name})")
    try:
        model = build(config, meta)
    except (TypeError, KeyError, ValueError) as exc:
        raise CheckpointError(f"{config_file}: bad model config ({exc})") from None
    state, _ = load_checkpoint(model_dir, expect=model.state_dict())
    model.load_state_dict(state)
    model.eval()
    return model, card
