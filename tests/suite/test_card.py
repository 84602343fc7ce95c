"""One card schema for every app: every shipped card follows it, and a card that does not is refused."""
import copy
import json
from pathlib import Path

import pytest

from suite.card import CardError, make_card, read_model_card, training_record, validate_card

MODELS = Path(__file__).resolve().parents[2] / "data" / "models"
SHIPPED = sorted(p.parent.name for p in MODELS.glob("*/card.json"))


def test_every_app_ships_a_card():
    assert {"text", "music", "speech", "caption"} <= set(SHIPPED)


@pytest.mark.parametrize("folder", SHIPPED)
def test_shipped_card_follows_the_schema(folder):
    """data/models/APP is an app's model; data/models/APP-NAME a second model of that app (handwriting-writer)."""
    card = read_model_card(MODELS / folder)
    app = card["app"]
    assert folder == app or folder.startswith(app + "-")
    config = json.loads((MODELS / folder / "config.json").read_text())
    assert card["config"] == config["config"], "the card's config is the checkpoint's"
    train = f"suite {app} train" if folder == app else f"suite {app} {folder[len(app) + 1:]} train"
    assert card["training"]["command"].startswith(train)
    assert train in card["reproduce"]


def _card():
    return make_card("toy", "a toy", {"hidden": 8}, {"source": "here"},
                     training_record("runs/toy/best", {"seed": 3, "step": 10, "command": "suite toy train"}),
                     {"how": "on the test split", "test": {"loss": 1.0}}, reproduce="suite toy train")


def test_training_record_reads_the_checkpoint_meta():
    card = _card()
    assert card["training"]["seed"] == 3 and card["training"]["step"] == 10
    assert card["training"]["checkpoint"] == "best" and card["training"]["command"] == "suite toy train"


@pytest.mark.parametrize("breakage, message", [
    (lambda c: c.pop("metrics"), "missing key 'metrics'"),
    (lambda c: c.update(seed=0), "unknown key 'seed'"),
    (lambda c: c["training"].update(best_step=3), "unknown key training.best_step"),
    (lambda c: c["training"].pop("seed"), "training is missing 'seed'"),
    (lambda c: c["training"].update(step="ten"), "training.step has the wrong type"),
    (lambda c: c["metrics"].pop("how"), "how they were measured"),
    (lambda c: c.update(config=[1]), "'config' must be a dict"),
    (lambda c: c.update(date="yesterday"), "not YYYY-MM-DD"),
    (lambda c: c.update(card_version=7), "card_version is 7"),
])
def test_a_card_of_the_wrong_shape_is_refused(breakage, message):
    card = copy.deepcopy(_card())
    breakage(card)
    with pytest.raises(CardError, match=message):
        validate_card(card)


def test_publish_refuses_a_bad_card_before_writing(tmp_path):
    from suite.nn.checkpoint import save_checkpoint
    from suite.shipped import publish_model

    import numpy as np

    save_checkpoint(tmp_path / "ckpt", {"w": np.zeros(2, np.float32)}, {"model": "toy"})
    bad = _card() | {"metrics": {}}
    with pytest.raises(CardError):
        publish_model(tmp_path / "ckpt", tmp_path / "out", bad)
    assert not (tmp_path / "out").exists()
    publish_model(tmp_path / "ckpt", tmp_path / "out", _card())
    assert read_model_card(tmp_path / "out")["app"] == "toy"


def test_reproduce_chain_puts_this_runs_data_build_before_its_own_training():
    from suite.card import reproduce_chain

    assert reproduce_chain("build B", "train A && train B --init A", "export B") == \
        "train A && build B && train B --init A && export B"
    assert reproduce_chain("build", "train", "export") == "build && train && export"
    assert reproduce_chain(None, "train", None) == "train"
    assert reproduce_chain("build", None, "export") == "build && export"
