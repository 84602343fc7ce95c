"""The text app's model: suite.lm.TokenLM over characters, plus loading and export with a card."""
from suite.lm import LN2, LMConfig, TokenLM, load_token_lm, score_ids

__all__ = ["LN2", "LMConfig", "TokenLM", "score_ids", "load_model", "export_model"]


def load_model(model_dir):
    """(TokenLM, Vocab, card) from a folder written by the trainer or export_model."""
    from suite.apps.text.data import Vocab

    return load_token_lm(model_dir, "text", Vocab.from_json)


METRICS_HOW = ("bits per character on the corpus's test split (files never seen in training or model selection); "
               "the n-gram's order chosen on validation; xz -9e on the same text")


VALID_PIECES, PIECE_CHARS = 5, 20000  # dynamic evaluation is tuned on the validation text cut into file-sized pieces


def dynamic_evaluation(model, vocab, valid_text, test_text, progress=None):
    """The adaptation settings with the lowest validation bits per character (suite.dyneval.choose_adaptation over
    VALID_PIECES pieces of the validation text, each read from the trained weights), and the test split read as one
    stream, static and adapted. Returns (Adaptation, the card's dynamic_evaluation entry)."""
    from dataclasses import replace

    from suite.apps.text.compress import START as start  # the implicit newline before a text
    from suite.dyneval import adaptive_score, choose_adaptation, with_match_model

    pieces = [vocab.encode(start + valid_text[k * PIECE_CHARS:(k + 1) * PIECE_CHARS]) for k in range(VALID_PIECES)]
    settings, table = choose_adaptation(model, [p for p in pieces if len(p) > 1], progress=progress)
    test_ids = vocab.encode(start + test_text)
    static = float(adaptive_score(model, test_ids, replace(settings, lr=0.0, decay=0.0)).mean()) / LN2
    nats = adaptive_score(model, test_ids, settings)
    adapted = float(nats.mean()) / LN2
    mixed = float(with_match_model(test_ids, nats).mean()) / LN2
    entry = {"how": "bits per character of the test split read as one stream from its first character, static "
                    "(trained weights) and adapted (an SGD step on every segment after scoring it, Krause et al. "
                    "2018), and adapted mixed with the match model `suite text compress` codes with; lr and decay "
                    "chosen on the validation text in pieces (valid_table), without the match model",
             "adapt": settings.to_json(), "test_static_bits_per_char": round(static, 4),
             "test_adapted_bits_per_char": round(adapted, 4),
             "test_adapted_with_match_bits_per_char": round(mixed, 4),
             "valid_table": [dict(row, bits_per_char=round(row.pop("nats_per_token") / LN2, 4)) for row in table]}
    return settings, entry


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
    from suite.card import make_card, reproduce_chain, training_record
    from suite.shipped import publish_model_with_meta

    model, vocab, card = load_model(best_dir)
    meta = dict(card["meta"])
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
    settings, metrics["dynamic_evaluation"] = dynamic_evaluation(model, vocab, load_split(data_dir, "valid"),
                                                                 test_text)
    meta["adapt"] = settings.to_json()  # what `score --adapt` and `compress` use
    out = make_card("text", "TokenLM: embedding -> stacked LSTM -> linear, next-character prediction",
                    card["config"], data, training, metrics,
                    reproduce_chain("suite text data build", training["command"] or "suite text train", export_command))
    return publish_model_with_meta(model, card["config"], meta, export_dir, out)
