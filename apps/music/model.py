"""The music app's model: suite.lm.TokenLM over chorale tokens; training task, loading, export.

Training reads random windows of the transposition-augmented train stream
(every train chorale in every key that keeps its voices in range, ``Corpus.
stream("train", augmented=True)``), the same truncated-BPTT scheme as the text
app: windows of 256 tokens hold about 50 grid steps (3 bars), and BachBot
trained this way too. Model selection uses the validation split in its
normalised keys. NLL per step = nats of every token of a split's stream
(delimiters, fermatas, voices, <start>/<key>/<end>) / the split's grid steps,
the unit the n-gram baseline reports (apps.music.data.ngram_baseline).
"""
from dataclasses import dataclass

import numpy as np

from suite.lm import LN2, LMConfig, StreamTask, TokenLM, config_dict, load_token_lm, score_ids

__all__ = ["LN2", "LMConfig", "TokenLM", "config_dict", "MusicTask", "nats_per_step", "load_model",
           "export_model", "evaluate_model"]


@dataclass
class MusicTask(StreamTask):
    """StreamTask whose validation also reports nats and bits per grid step."""

    valid_steps: int = 0

    def evaluate(self, model):
        nats = score_ids(model, self.valid_ids)
        out = {"loss": nats, "bits_per_token": nats / LN2}
        if self.valid_steps:
            per_step = nats * len(self.valid_ids) / self.valid_steps
            out |= {"nats_per_step": per_step, "bits_per_step": per_step / LN2}
        return out


def nats_per_step(model, corpus, split="test"):
    """The model's NLL of a split in nats per grid step (see the module docstring)."""
    ids = corpus.stream(split)
    return score_ids(model, ids) * len(ids) / corpus.report["splits"][split]["steps"]


def load_model(model_dir):
    """(TokenLM, Vocab, card) from a folder written by the trainer or export_model.

    Raises CheckpointError (a ValueError) with one line saying what is wrong.
    """
    from suite.apps.music.data import Vocab

    return load_token_lm(model_dir, "music", Vocab.from_json)


def evaluate_model(model, vocab, corpus, n_compositions=100, bars=16, temperature=1.0, seed=0, ngram=None,
                   progress=None, free=True, music21=True):
    """Held-out metrics: test NLL per step (model and n-gram) and statistics of compositions vs real test.

    Compositions come from the sampler under the rules ("composed") and, with ``free``, from the free sampler
    ("free"), the same seeds: the same statistics (apps.music.stats) for both and for the real test chorales,
    the model's own NLL per step of what each produced, and with ``music21`` the parallel and direct intervals
    counted by music21's VoiceLeadingQuartet beside ours (``music21_check``).

    Returns a dict with "nll" (nats and bits per step, both models, same units)
    and "statistics" ({"composed": summary, ["free": summary,] "test": summary}).
    """
    from suite.apps.music.compose import compose
    from suite.apps.music.data import ngram_baseline
    from suite.apps.music.stats import chorale_stats, summarise

    model_nats = nats_per_step(model, corpus, "test")
    ngram = ngram if ngram is not None else ngram_baseline(corpus)
    samplers = {"composed": True, "free": False} if free else {"composed": True}
    total = n_compositions * len(samplers)
    statistics, grids = {}, {}
    for k, (name, rules) in enumerate(samplers.items()):
        stats, repairs, nats, relaxed, seconds, grids[name] = [], [], [], np.zeros(4, np.int64), [], []
        faults = {"faults_before_rewrite": 0, "faults": 0, "rewrite_windows": 0, "rewrites_accepted": 0}
        for i in range(n_compositions):
            mode = "major" if i % 2 == 0 else "minor"
            result = compose(model, vocab, bars=bars, mode=mode, temperature=temperature, seed=seed + i, rules=rules)
            stats.append(chorale_stats(result.grid))
            repairs.append(sum(result.repairs.values()))
            nats.append(piece_nats_per_step(model, vocab, result.grid))
            relaxed += np.asarray(result.info.get("relaxed", np.zeros(4)), np.int64)
            if rules:
                faults["faults_before_rewrite"] += result.info["faults_before_rewrite"]
                faults["faults"] += result.info["faults"]
                faults["rewrite_windows"] += result.info["rewrite"]["windows"]
                faults["rewrites_accepted"] += result.info["rewrite"]["accepted"]
            seconds.append(result.seconds)
            grids[name].append(result.grid)
            if progress is not None:
                progress(k * n_compositions + i + 1, total)
        how = (f"{n_compositions} compositions, {bars} bars asked, half major half minor, temperature {temperature}, "
               f"seeds {seed}..{seed + n_compositions - 1}, " + ("under the rules and a phrase plan" if rules else
                                                                   "the free sampler (no rules, its own length)"))
        statistics[name] = {"how": how, "mean_repairs": round(float(np.mean(repairs)), 3),
                            "model_nats_per_step": round(float(np.mean(nats)), 4),
                            "sampling_seconds": round(float(np.mean(seconds)), 3),
                            **({"relaxed_voice_slots": relaxed.tolist(), **faults} if rules else {}),
                            **_rounded(summarise(stats))}
    test = [chorale_stats(c) for c in corpus.test]
    statistics["test"] = {"how": "the real chorales of the test split (normalised keys)",
                          "model_nats_per_step": round(float(np.mean([piece_nats_per_step(model, vocab, c)
                                                                      for c in corpus.test])), 4),
                          **_rounded(summarise(test))}
    out = {
        "nll": {
            "split": "test",
            "unit": "per 16th-note grid step (all tokens of the test stream / test grid steps)",
            "test_chorales": len(corpus.test),
            "test_steps": corpus.report["splits"]["test"]["steps"],
            "model_nats_per_step": round(model_nats, 4),
            "model_bits_per_step": round(model_nats / LN2, 4),
            "ngram_nats_per_step": ngram["test_nats_per_step"],
            "ngram_bits_per_step": ngram["test_bits_per_step"],
            "ngram_order": ngram["order"],
        },
        "statistics": statistics,
    }
    if music21:
        out["music21_check"] = {name: music21_check(g) for name, g in
                                (("test", list(corpus.test)), *grids.items())}
    return out


def piece_nats_per_step(model, vocab, grid):
    """The model's NLL of one chorale (its whole token stream, key token included) per grid step."""
    from suite.apps.music.tokens import encode_chorale

    ids = np.asarray(encode_chorale(grid, vocab), np.int64)
    return score_ids(model, ids) * len(ids) / grid.n_steps


def music21_check(grids):
    """Parallel fifths, octaves and direct intervals into the outer voices counted by our detector and by music21's
    VoiceLeadingQuartet on the same chorales (apps.music.stats.music21_parallels), and on how many they agree."""
    from suite.apps.music.stats import _direct, _parallels, music21_parallels

    ours = [(*_parallels(g), _direct(g)) for g in grids]
    theirs = [music21_parallels(g) for g in grids]
    return {"chorales": len(grids), "agree": sum(a == b for a, b in zip(ours, theirs)),
            "ours": [int(x) for x in np.sum(ours, axis=0)], "music21": [int(x) for x in np.sum(theirs, axis=0)],
            "counts": "fifths, octaves, direct into outer voices (totals)"}


def _rounded(d):
    return {k: round(v, 4) if isinstance(v, float) else v for k, v in d.items()}


def export_model(best_dir, export_dir, corpus, command=None, n_compositions=100, progress=None,
                 export_command=None):
    """Copy a trained model to ``export_dir`` with a card: config, data, seed, commands, held-out metrics.

    command: the training command (default: the one the checkpoint recorded);
    export_command: the command that ran this export, when it was a separate step.
    """
    from suite.card import make_card, reproduce_chain, training_record
    from suite.shipped import publish_model

    model, vocab, card = load_model(best_dir)
    meta = card.get("meta") or {}
    metrics = evaluate_model(model, vocab, corpus, n_compositions=n_compositions, progress=progress)
    report = corpus.report
    data = {"corpus": "music21 Bach chorales (corpus.chorales.Iterator, Riemenschneider order)",
            "music21": report.get("music21"), "source_chorales": report["source_chorales"],
            "kept": report["kept"], "skipped": report["skipped"],
            "splits": {s: {k: v for k, v in report["splits"][s].items() if k != "names"} for s in report["splits"]},
            "split_rule": "by hymn tune (seeded hash of the title), 80/10/10",
            "split_seed": report["seed"], "test_names": report["splits"]["test"]["names"],
            "augmentation": "runs without --no-augment (see training.command) train on the train split "
                            "in every key in [-6, 5] that keeps each voice inside its train range; "
                            "--no-augment runs on the normalised keys (C major / A minor) only; "
                            "valid/test always in the normalised keys",
            "last_run_augmented": (meta.get("task") or {}).get("augmented"),
            "vocab_size": vocab.size}
    training = training_record(best_dir, meta, command, export_command) | {"task": meta.get("task")}
    how = ("negative log-likelihood per 16th-note step on the test split's chorales (hymn tunes never seen in "
           f"training); statistics of {n_compositions} compositions against the real test chorales")
    out = make_card(
        "music",
        "TokenLM: embedding -> stacked LSTM -> linear, next-token prediction over chorale tokens "
        "(S A T B per 16th-note step, bar/step delimiters, fermatas, held-note marks)",
        card["config"], data, training, {"how": how, **metrics},
        reproduce_chain("suite music data build", training["command"], export_command))
    return publish_model(best_dir, export_dir, out)
