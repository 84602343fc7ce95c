"""Where the shipped default models live, whether installed or run from a clone.

pyproject.toml installs data/models/ as the package ``suite.models``, so the
default model of an app is found relative to the installed code, from any
working directory.
"""
from importlib import resources
from pathlib import Path

import numpy as np

from suite.nn.checkpoint import CheckpointError


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


def publish_model_with_meta(model, config, meta, export_dir, card):
    """publish_model of ``model``'s current weights with ``meta`` in its config.json (e.g. the decoding
    settings that export chose on validation), so the published model decodes as its card says."""
    import tempfile

    from suite.nn.checkpoint import save_checkpoint

    with tempfile.TemporaryDirectory() as tmp:
        save_checkpoint(tmp, model.state_dict(), config, meta=meta)
        return publish_model(tmp, export_dir, card)


def load_app_model(model_dir, app, model_name, build, limits=None):
    """(model, card) from a model folder written for ``app``; one-line CheckpointError otherwise.

    build(config: dict, meta: dict) -> Module makes the untrained model from the
    folder's config (its "model" field, which must equal ``model_name``, removed);
    its weights are then loaded, checked against the config, and it is put in eval mode.
    limits: {config key: largest value} for sizes that no weight's shape shows (check_sizes).
    """
    from suite.nn.checkpoint import load_checkpoint, read_card

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
    check_sizes(config, card["tensors"], config_file, limits)  # before anything is allocated
    try:
        model = build(config, meta)
    except (TypeError, KeyError, ValueError, AttributeError, IndexError) as exc:
        raise CheckpointError(f"{config_file}: bad model config ({' '.join(str(exc).split())})") from None
    state, _ = load_checkpoint(model_dir, expect=model.state_dict(), card=card)
    for name, value in state.items():
        if value.dtype.kind == "f" and not np.isfinite(value).all():
            raise CheckpointError(f"{model_dir / 'model.safetensors'}: tensor {name} holds values that are not "
                                  "finite (NaN or inf); the model is broken: retrain it or use another model")
    model.load_state_dict(state)
    model.eval()
    from suite.device_choice import current

    if current() == "cuda":  # --device cuda (or auto with a GPU) on a command that runs there: suite.device
        model.to_device("cuda")
    return model, card


MAX_ELEMENTS = 2**28  # 1 GiB of float32: far above any model of ours, far below what a tampered config could ask
SMALL = 64            # counts (layers, frames stacked) and small sizes need not appear in a weight's shape


def check_sizes(config, tensors, where, limits=None):
    """Bound a model's memory from its config before building it (CheckpointError, one line).

    The checkpoint lists every tensor's shape: their total must stay under
    MAX_ELEMENTS, and every size in the config (an int, or a list of ints;
    seeds aside) must be at most SMALL or divide one of the listed
    dimensions. So a config edited to ask for hidden=10**7 is refused at once
    instead of allocating hundreds of GiB. A key in ``limits`` (a size no weight
    shows, such as an image side) must instead be at most its limit there.
    """
    dims = set()
    total = 0
    for name, spec in tensors.items():
        shape = spec.get("shape") if isinstance(spec, dict) else None
        if not isinstance(shape, list) or not all(isinstance(d, int) and d >= 0 for d in shape):
            raise CheckpointError(f"{where}: tensor {name} has no valid shape")
        total += int(np.prod(shape, dtype=np.int64)) if shape else 1
        dims.update(shape)
    if total > MAX_ELEMENTS:
        raise CheckpointError(f"{where}: the weights would hold {total:,} numbers, more than the {MAX_ELEMENTS:,} "
                              "this suite loads; not a model of ours")
    for key, value in config.items():
        if "seed" in key or isinstance(value, bool):
            continue
        if key in (limits or {}):
            if not isinstance(value, int) or not 0 <= value <= limits[key]:
                raise CheckpointError(f"{where}: config {key}={value} is out of range (0 to {limits[key]}); "
                                      "use the model folder as it was saved")
            continue
        values = value if isinstance(value, list) else [value]
        for v in values:
            if not isinstance(v, int):
                continue
            if v < 0 or (v > SMALL and not any(d % v == 0 for d in dims if d)):
                raise CheckpointError(f"{where}: config {key}={value} does not fit the weights it lists "
                                      "(edited or from another model); use the model folder as it was saved")
