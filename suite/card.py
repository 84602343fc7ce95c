"""One model card for every app: what a model is, how it was made, how well it does on held-out data.

A shipped model folder holds model.safetensors, config.json (written by
suite.nn.checkpoint) and card.json, written by ``publish_model`` from a card
that this module builds and checks. Every app's card has the same keys:

    card_version   CARD_VERSION
    app            "text", "music", ...
    model          one line: the architecture in words
    config         the model config (what rebuilds the network)
    data           what it learnt from: source, splits, the data build's report
    training       command        the whole chain of commands of the run (resumed and --init runs included)
                   export_command the `suite APP export ...` line, or null (export at the end of train)
                   seed           the training seed
                   train_config   suite.train.TrainConfig as a dict
                   checkpoint     which checkpoint of the run was shipped ("best" or "last")
                   step           the training step it holds
                   valid          its validation record, or null
                   init           the model a fine-tune started from, or null
                   task           (optional) how training batches were drawn, where the app says more
    metrics        held-out numbers only (test splits, never training data); "how" says how they were taken
    date           YYYY-MM-DD of the export
    reproduce      the commands that rebuild the data, train and export, joined by " && "

An app may add its own top-level keys (vocabulary, decoding settings, notes);
they are listed in EXTRA_KEYS so that a misspelt key is an error, not a silently
new one.
"""
import datetime
import json
from pathlib import Path

CARD_VERSION = 1
CARD_FILE = "card.json"

TOP_KEYS = {"card_version": int, "app": str, "model": str, "config": dict, "data": dict, "training": dict,
            "metrics": dict, "date": str, "reproduce": str}
TRAINING_KEYS = {"command": (str, type(None)), "export_command": (str, type(None)), "seed": int,
                 "train_config": (dict, type(None)), "checkpoint": str, "step": (int, type(None)),
                 "valid": (dict, type(None)), "init": (dict, type(None))}
TRAINING_OPTIONAL = {"task"}
EXTRA_KEYS = {"vocab", "decoding", "lexicon", "notes"}


class CardError(ValueError):
    """A card that does not follow the schema (one-line message naming the key)."""


def checkpoint_step(checkpoint_dir, meta):
    """The training step a checkpoint holds: best/ records it in its meta, last/ in trainer.json."""
    trainer = Path(checkpoint_dir) / "trainer.json"
    if meta.get("step") is None and trainer.exists():
        return json.loads(trainer.read_text())["step"]
    return meta.get("step")


def training_record(checkpoint_dir, meta, command=None, export_command=None):
    """The card's "training" block for a checkpoint whose config.json meta is ``meta``."""
    return {"command": command or meta.get("command"), "export_command": export_command,
            "seed": meta.get("seed", 0), "train_config": meta.get("train_config"),
            "checkpoint": Path(checkpoint_dir).name, "step": checkpoint_step(checkpoint_dir, meta),
            "valid": meta.get("valid"), "init": meta.get("init")}


def make_card(app, model, config, data, training, metrics, reproduce, date=None, **extra):
    """A checked card (see the module docstring); ``extra`` holds the app's EXTRA_KEYS."""
    card = {"card_version": CARD_VERSION, "app": app, "model": model, "config": config, "data": data,
            "training": training, "metrics": metrics, "date": date or datetime.date.today().isoformat(),
            "reproduce": reproduce, **extra}
    validate_card(card)
    return card


def reproduce_line(*commands):
    """The card's reproduce field: the non-empty commands joined by ' && '."""
    return " && ".join(c for c in commands if c)


def reproduce_chain(data_command, training_command, export_command):
    """reproduce_line for a model whose training command may be a chain of fine-tunes (``--init``: earlier
    stages' commands, then this run's, joined by ' && '): this run's data build goes just before this run's own
    training, after the earlier stages, which it did not feed."""
    chain = [c for c in (training_command or "").split(" && ") if c]
    return reproduce_line(*chain[:-1], data_command, *chain[-1:], export_command)


def validate_card(card, where="card"):
    """Raise CardError unless ``card`` follows the schema; return it."""
    if not isinstance(card, dict):
        raise CardError(f"{where}: expected a JSON object, got {type(card).__name__}")
    for key, kind in TOP_KEYS.items():
        if key not in card:
            raise CardError(f"{where}: missing key {key!r}")
        if not isinstance(card[key], kind) or isinstance(card[key], bool):
            raise CardError(f"{where}: {key!r} must be a {kind.__name__}, got {type(card[key]).__name__}")
    if card["card_version"] != CARD_VERSION:
        raise CardError(f"{where}: card_version is {card['card_version']}, this suite reads {CARD_VERSION}")
    unknown = sorted(set(card) - set(TOP_KEYS) - EXTRA_KEYS)
    if unknown:
        raise CardError(f"{where}: unknown key {unknown[0]!r} (known: {', '.join(sorted(set(TOP_KEYS) | EXTRA_KEYS))})")
    training = card["training"]
    for key, kinds in TRAINING_KEYS.items():
        if key not in training:
            raise CardError(f"{where}: training is missing {key!r}")
        if not isinstance(training[key], kinds) or (isinstance(training[key], bool) and kinds is not bool):
            raise CardError(f"{where}: training.{key} has the wrong type ({type(training[key]).__name__})")
    unknown = sorted(set(training) - set(TRAINING_KEYS) - TRAINING_OPTIONAL)
    if unknown:
        raise CardError(f"{where}: unknown key training.{unknown[0]}")
    if "how" not in card["metrics"]:
        raise CardError(f"{where}: metrics must say how they were measured ('how')")
    try:
        datetime.date.fromisoformat(card["date"])
    except ValueError:
        raise CardError(f"{where}: date {card['date']!r} is not YYYY-MM-DD") from None
    return card


def read_model_card(model_dir):
    """The checked card.json of a model folder."""
    path = Path(model_dir) / CARD_FILE
    try:
        card = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CardError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CardError(f"{path}: cannot read ({' '.join(str(exc).split())})") from None
    return validate_card(card, where=str(path))
