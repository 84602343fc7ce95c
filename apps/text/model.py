"""The text app's model: suite.lm.TokenLM over characters, plus loading and export with a card."""
from suite.lm import LN2, LMConfig, TokenLM, load_token_lm, score_ids

__all__ = ["LN2", "LMConfig", "TokenLM", "score_ids", "load_model", "export_model"]


def load_model(model_dir):
    """(TokenLM, Vocab, card) from a folder written by the trainer or export_model."""
    from suite.apps.text.data import Vocab

    return load_token_lm(model_dir, "text", Vocab.from_json)


METRICS_HOW = ("bits per character on the corpus's test split (files never seen in training or model selection); "
               "the n-gram's order chosen on validation; xz -9e on the same text")


def export_model(best_dir, data_dir, export_dir, command=None, export_command=None):
    """Copy a trained model to ``export_dir`` with its card (suite.card) of held-out test metrics and baselines.

    The card reports bits per character on the corpus's *test* split (never
    seen in training or model selection) for the model, the best character
    n-gram (order chosen on the validation split) and xz. command: the
    training command chain (default: the checkpoint's); export_command: the
    `suite text export` line, or None when exported at the end of `train`.
    Returns the card.
    """
    from suite.apps.text.data import load_report, load_split
    from suite.baselines import best_order, xz_bits_per_char
    from suite.card import make_card, reproduce_line, training_record
    from suite.shipped import publish_model

    model, vocab, card = load_model(best_dir)
    meta = card["meta"]
    test_text = load_split(data_dir, "test")
    test_ids = vocab.encode(test_text)
    train_ids = vocab.encode(load_split(data_dir, "train"))
    valid_ids = vocab.encode(load_split(data_dir, "valid"))
    model_bpc = score_ids(model, test_ids) / LN2
    search = best_order(train_ids, valid_ids, orders=range(1, 13), vocab_size=vocab.size)
    ngram_bpc = search["model"].bits_per_token(test_ids, order=search["best"])
    report = load_report(data_dir)
    data = {"corpus": report.get("source"), "splits": report.get("splits"), "vocab_size": vocab.size,
            "split_rule": "by file, seeded hash"}
    training = training_record(best_dir, meta, command, export_command)
    metrics = {
        "how": METRICS_HOW,
        "split": "test",
        "test_chars": len(test_ids),
        "model_bits_per_char": round(model_bpc, 4),
        "ngram_bits_per_char": round(float(ngram_bpc), 4),
        "ngram_order": int(search["best"]),
        "xz_bits_per_char": round(float(xz_bits_per_char(test_text)), 4),
        "valid_bits_per_char": round(meta["valid"]["bpc"], 4) if meta.get("valid") else None,
    }
    out = make_card("text", "TokenLM: embedding -> stacked LSTM -> linear, next-character prediction",
                    card["config"], data, training, metrics,
                    reproduce_line("suite text data build", training["command"] or "suite text train", export_command))
    return publish_model(best_dir, export_dir, out)
