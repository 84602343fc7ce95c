"""The text app's model: suite.lm.TokenLM over characters, plus loading and export with a card."""
from suite.lm import LN2, LMConfig, TokenLM, load_token_lm, score_ids

__all__ = ["LN2", "LMConfig", "TokenLM", "score_ids", "load_model", "export_model"]


def load_model(model_dir):
    """(TokenLM, Vocab, card) from a folder written by the trainer or export_model."""
    from suite.apps.text.data import Vocab

    return load_token_lm(model_dir, "text", Vocab.from_json)


def export_model(best_dir, data_dir, export_dir, command=None):
    """Copy a trained model to ``export_dir`` with a card of held-out test metrics and baselines.

    The card reports bits per character on the corpus's *test* split (never
    seen in training or model selection) for the model, the best character
    n-gram (order chosen on the validation split) and xz.
    """
    import datetime
    from pathlib import Path

    from suite.apps.text.data import load_manifest, load_split
    from suite.baselines import best_order, xz_bits_per_char
    from suite.shipped import publish_model

    best_dir = Path(best_dir)
    model, vocab, card = load_model(best_dir)
    train_command = command or card["meta"].get("command")
    run_dir = best_dir.parent if best_dir.name == "best" else best_dir
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
        "training": {"command": train_command, "step": card["meta"].get("step"),
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
        "reproduce": " && ".join(["suite text data build", train_command or "suite text train",
                                  f"suite text export {run_dir} --out {export_dir}"]),
    }
    return publish_model(best_dir, export_dir, out)
