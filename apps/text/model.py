"""The text app's model: suite.lm.TokenLM over characters, plus loading and export with a card."""
from suite.lm import LN2, LMConfig, TokenLM, score_ids

__all__ = ["LN2", "LMConfig", "TokenLM", "score_ids", "load_model", "export_model"]


def load_model(model_dir):
    """(TokenLM, Vocab, card) from a folder written by save_checkpoint / export_model."""
    from pathlib import Path

    from apps.text.data import Vocab
    from suite.nn.checkpoint import CheckpointError, load_checkpoint, read_card

    model_dir = Path(model_dir)
    if not (model_dir / "config.json").exists():
        raise CheckpointError(f"{model_dir}: no model here (config.json missing); train one with "
                              "`suite text train --export DIR` or pass --model DIR")
    card = read_card(model_dir)
    config = dict(card["config"])
    if config.pop("model", None) != "TokenLM" or "vocab" not in card["meta"]:
        raise CheckpointError(f"{model_dir / 'config.json'}: not a text model (TokenLM with a vocab)")
    try:
        model = TokenLM(LMConfig(**config))
    except TypeError as exc:
        raise CheckpointError(f"{model_dir / 'config.json'}: bad model config ({exc})") from None
    state, _ = load_checkpoint(model_dir, expect=model.state_dict())
    model.load_state_dict(state)
    model.eval()
    vocab = Vocab.from_json(card["meta"]["vocab"])
    if vocab.size != model.config.vocab_size:
        raise CheckpointError(f"{model_dir / 'config.json'}: vocab has {vocab.size} symbols, "
                              f"model expects {model.config.vocab_size}")
    return model, vocab, card


def export_model(best_dir, data_dir, export_dir, command=None):
    """Copy a trained model to ``export_dir`` with a card of held-out test metrics and baselines.

    The card reports bits per character on the corpus's *test* split (never
    seen in training or model selection) for the model, the best character
    n-gram (order chosen on the validation split) and xz.
    """
    import datetime
    import json
    import shutil
    import tempfile
    from pathlib import Path

    from apps.text.data import load_manifest, load_split
    from suite.baselines import best_order, xz_bits_per_char
    from suite.fileio import write_json

    model, vocab, card = load_model(best_dir)
    test_text = load_split(data_dir, "test")
    test_ids = vocab.encode(test_text)
    train_ids = vocab.encode(load_split(data_dir, "train"))
    valid_ids = vocab.encode(load_split(data_dir, "valid"))
    model_bpc = score_ids(model, test_ids) / LN2
    search = best_order(train_ids, valid_ids, orders=range(1, 13), vocab_size=vocab.size)
    ngram_bpc = search["model"].bits_per_token(test_ids, order=search["best"])
    manifest = load_manifest(data_dir)
    out = {
        "app": "text",
        "model": "TokenLM: embedding -> stacked LSTM -> linear, next-character prediction",
        "config": card["config"],
        "data": {"corpus": manifest.get("source"), "splits": manifest.get("splits"),
                 "vocab_size": vocab.size, "split_rule": "by file, seeded hash"},
        "seed": card["meta"].get("seed"),
        "training": {"command": command or card["meta"].get("command"), "step": card["meta"].get("step"),
                     "train_config": card["meta"].get("train_config")},
        "metrics": {
            "split": "test",
            "test_chars": len(test_ids),
            "model_bits_per_char": round(model_bpc, 4),
            "ngram_bits_per_char": round(float(ngram_bpc), 4),
            "ngram_order": int(search["best"]),
            "xz_bits_per_char": round(float(xz_bits_per_char(test_text)), 4),
            "valid_bits_per_char": round(card["meta"]["valid"]["bpc"], 4) if card["meta"].get("valid") else None,
        },
        "date": datetime.date.today().isoformat(),
        "reproduce": "suite text data build && " + (command or "suite text train --export data/models/text"),
    }
    export_dir = Path(export_dir)
    export_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{export_dir.name}.", dir=export_dir.parent))
    for name in ("model.safetensors", "config.json"):
        shutil.copy2(Path(best_dir) / name, tmp / name)
    write_json(tmp / "card.json", out)
    if export_dir.exists():
        shutil.rmtree(export_dir)
    tmp.rename(export_dir)
    return out
