"""The speech model: log-mel frames -> stacked frames -> deep bidirectional LSTM -> characters (CTC).

Frame stacking (Sak et al. 2015, "fast and accurate recurrent neural network
acoustic models"): ``stack`` consecutive 10 ms frames are concatenated and only
every ``stack``-th kept, so the recurrent layers run at 30 ms a step. That
cuts the cost of every layer by ``stack`` while leaving several steps per
character even for fast synthetic speech (the data build reports the tightest
ratio it produced).
"""
from dataclasses import asdict, dataclass

import numpy as np

from suite import ctc_task
from suite.ctc_task import CHAR_BONUSES, LM_WEIGHTS, CTCDecoder, CTCTask, error_rates, error_rates_by, split_logits
from suite.nn import Linear, Module, Recurrent

MODEL_NAME = "SpeechCTC"


@dataclass
class SpeechConfig:
    feature_dim: int            # F: features per 10 ms frame (apps.speech.data.feature_dim())
    vocab_size: int             # characters incl. the CTC blank (id 0)
    stack: int = 3              # frames concatenated per recurrent step (30 ms)
    hidden: int = 192           # LSTM units per direction
    layers: int = 3             # bidirectional layers
    proj: int = 0               # LSTMP recurrent projection (0 = plain LSTM)
    dropout: float = 0.1        # between recurrent layers
    seed: int = 0


def stack_frames(x, lengths, stack):
    """(T, B, F) frames -> (ceil(T/stack), B, stack*F) and the new lengths (zero-padded at the end)."""
    T, B, F = x.shape
    Ts = -(-T // stack)
    padded = np.zeros((Ts * stack, B, F), dtype=x.dtype)  # (Ts*stack, B, F)
    padded[:T] = x
    y = padded.reshape(Ts, stack, B, F).transpose(0, 2, 1, 3).reshape(Ts, B, stack * F)  # (Ts, B, stack*F)
    return np.ascontiguousarray(y), -(-np.asarray(lengths) // stack)


class SpeechModel(Module):
    def __init__(self, config: SpeechConfig):
        self.config = config
        rng = np.random.default_rng(config.seed)
        self.rnn = Recurrent(config.feature_dim * config.stack, config.hidden, num_layers=config.layers,
                             kind="lstm", bidirectional=True, proj_size=config.proj, dropout=config.dropout,
                             seed=int(rng.integers(2**31)))
        self.out = Linear(self.rnn.output_size, config.vocab_size, rng=rng)

    def forward(self, feats, lengths):
        """feats (T, B, F) float32, lengths (B,) -> logits (T', B, C), lengths' (B,)."""
        x, steps = stack_frames(np.asarray(feats, dtype=self.dtype), lengths, self.config.stack)
        y, _ = self.rnn.forward(x, steps)  # (T', B, 2H)
        return self.out.forward(y), steps

    def backward(self, dlogits):
        self.rnn.backward(self.out.backward(dlogits))


def config_dict(config: SpeechConfig):
    return {"model": MODEL_NAME} | asdict(config)


def spec_augment(feats, rng, freq_masks=2, freq_width=6, time_masks=2, time_width=12):
    """SpecAugment (Park et al. 2019) masks on one utterance's (T, F) features, in a copy.

    Masked bands are set to 0, the mean of the normalised features.
    """
    x = np.array(feats, dtype=np.float32)
    T, F = x.shape
    for _ in range(freq_masks):
        w = int(rng.integers(0, freq_width + 1))
        f0 = int(rng.integers(0, max(F - w, 0) + 1))
        x[:, f0:f0 + w] = 0.0
    for _ in range(time_masks):
        w = int(rng.integers(0, min(time_width, T // 8) + 1)) if T else 0
        t0 = int(rng.integers(0, max(T - w, 0) + 1))
        x[t0:t0 + w] = 0.0
    return x


class SpeechTask(CTCTask):
    """The CTC task (suite.ctc_task) on speech: SpecAugment, and clips with no words among the items.

    Validation adds those non-speech clips too: the loss model selection uses
    covers both words, and no words where none were said.
    """

    def __init__(self, train, valid, batch_size=32, augment=True, valid_batch=64, non_speech=0.0, seed=0,
                 noise_pool=1000):
        """non_speech: the fraction of each batch replaced by clips with no words (see data.non_speech)."""
        from suite.apps.speech.data import CTC_ALPHABET, features
        from suite.apps.speech.data import non_speech as make_non_speech

        super().__init__(train, valid, CTC_ALPHABET, batch_size=batch_size, valid_batch=valid_batch,
                         augment=spec_augment if augment else None)
        self.non_speech = float(non_speech)
        rng = np.random.default_rng([seed, 7])
        self.noise_feats = [features(make_non_speech(rng)[0]) for _ in range(noise_pool if non_speech else 0)]
        rng = np.random.default_rng([seed, 8])  # held-out non-speech clips for validation
        n_valid = max(noise_pool // 10, 1) if non_speech else 0
        self.valid_noise = [features(make_non_speech(rng)[0]) for _ in range(n_valid)]

    def batch_items(self, idx, rng):
        feats, labels = super().batch_items(idx, rng)
        for b in np.flatnonzero(rng.random(len(idx)) < self.non_speech):
            feats[b] = self.noise_feats[int(rng.integers(len(self.noise_feats)))]
            labels[b] = np.zeros(0, np.int32)
        return feats, labels

    def evaluate(self, model):
        metrics = super().evaluate(model)
        if self.valid_noise:
            noise = evaluate_features(model, self.valid_noise, [""] * len(self.valid_noise), batch_size=self.valid_batch)
            n, m = len(self.valid["texts"]), len(self.valid_noise)
            speech_loss = metrics["loss"]
            metrics |= {"speech_ctc_loss": speech_loss, "non_speech_ctc_loss": noise["ctc_loss"],
                        "loss": (n * speech_loss + m * noise["ctc_loss"]) / (n + m),
                        "non_speech_false_alarms": sum(bool(h) for h in noise["hypotheses"]) / m}
        return metrics


def evaluate_features(model, features, texts, batch_size=64):
    """suite.ctc_task.evaluate_features with the speech alphabet: CTC loss, greedy CER/WER."""
    from suite.apps.speech.data import CTC_ALPHABET

    return ctc_task.evaluate_features(model, features, texts, CTC_ALPHABET, batch_size=batch_size)


def build_model(config, meta):
    return SpeechModel(SpeechConfig(**config))


def load_model(model_dir):
    """(SpeechModel, card) from a model folder; one-line CheckpointError otherwise."""
    from suite.nn.checkpoint import CheckpointError
    from suite.shipped import load_app_model

    model, card = load_app_model(model_dir, "speech", MODEL_NAME, build_model)
    try:
        ctc_task.check_decoding_meta(card["meta"], f"{model_dir}/config.json")
    except ValueError as exc:
        raise CheckpointError(str(exc)) from None
    return model, card


def char_lm(card):
    """The character n-gram LM stored in a card's meta, or None."""
    return ctc_task.char_lm(card.get("meta"))


def lexicon_words(texts):
    """The sorted distinct words of transcripts: the lexicon a model's decoding may be held to."""
    from suite.apps.speech.data import normalize

    return sorted({w for t in texts for w in normalize(t).split()})


def lexicon(card):
    """The word lexicon stored in a card's meta (as a suite.ctc.Lexicon over character ids), or None."""
    from suite.apps.speech.data import CTC_ALPHABET

    return ctc_task.lexicon(card.get("meta"), CTC_ALPHABET)


class Transcriber(CTCDecoder):
    """Text (and word times) from waveforms with one loaded model: features -> BiLSTM -> CTC decoding."""

    def __init__(self, model, card, beam=8, lm_weight=None, use_lm=True, use_lexicon=True):
        """use_lm, use_lexicon: allow the card's character LM and word lexicon (the lexicon only where
        the card's decoding settings turn it on)."""
        from suite.apps.speech.data import CTC_ALPHABET, FEATURES

        decoding = (card.get("meta") or {}).get("decoding") or {}
        super().__init__(CTC_ALPHABET, frame_seconds=FEATURES["hop_ms"] / 1000.0 * model.config.stack, beam=beam,
                         lm=char_lm(card) if use_lm else None,
                         lm_weight=lm_weight if lm_weight is not None else decoding.get("lm_weight", 0.5),
                         bonus=decoding.get("bonus", 0.0), all_words=lexicon(card) if use_lexicon else None,
                         use_lexicon=bool(decoding.get("lexicon")))
        self.model = model
        self.card = card

    SILENCE_PEAK = 10 ** (-70 / 20)  # a segment whose peak is below -70 dBFS holds no speech

    def logits(self, wave, sr):
        from suite.apps.speech.data import features

        # digital silence has no spectrum to normalise (per-utterance normalisation would
        # blow up rounding noise into features no training utterance had): nothing was said
        if len(wave) == 0 or float(np.max(np.abs(wave))) < self.SILENCE_PEAK:
            return np.zeros((0, self.model.config.vocab_size), dtype=np.float32)
        # (T', C): the utterance's own steps, read as validation reads them (ctc_task.split_logits; none for no frames)
        return ctc_task.split_logits(self.model, [features(wave, sr)])[0]

    def transcribe_wave(self, wave, sr, offset=0.0):
        text, _, words = self.decode(self.logits(wave, sr))
        for w in words:
            w["start"] = round(w["start"] + offset, 3)
            w["end"] = round(w["end"] + offset, 3)
        return text, words


def tune_decoding(model, card, split, beam=8, lm_weights=LM_WEIGHTS, bonuses=CHAR_BONUSES, progress=None):
    """The LM weight, character bonus and lexicon use with the lowest WER on ``split`` (validation), and the grid.

    suite.ctc_task.tune_decoding over a Transcriber of the card's LM and lexicon
    (without an LM only the bonus is searched; without a lexicon, decoding
    without one); the test figures stay held out.
    """
    from suite.apps.speech.data import normalize

    logits = split_logits(model, split["features"])
    refs = [normalize(t) for t in split["texts"]]
    return ctc_task.tune_decoding(Transcriber(model, card, beam=beam), logits, refs, lm_weights=lm_weights,
                                  bonuses=bonuses, progress=progress)


def read_eval_tsv(tsv):
    """Rows (audio path, text, voice, condition) of an evaluation TSV: file<TAB>text[<TAB>voice[<TAB>condition]].

    Paths are relative to the TSV's folder; voice and condition default to "-".
    """
    from suite.databuild import read_file_tsv

    return read_file_tsv(tsv, ("voice", "condition"))


def transcribe_file(transcriber, path):
    """(text, words, audio seconds) of one file, segment by segment (long files stream)."""
    from suite.apps.speech.audio import iter_segments

    texts, words, seconds = [], [], 0.0
    for start, wave in iter_segments(path):
        text, w = transcriber.transcribe_wave(wave, 16000, offset=start)
        seconds = start + len(wave) / 16000
        if text:
            texts.append(text)
        words += w
    return " ".join(texts), words, seconds


def voices_beside(tsv):
    """{audio file name: voice} from the utterances.tsv a corpus build writes beside (or one folder above) a test TSV."""
    from pathlib import Path

    folder = Path(tsv).parent
    table = next((t for t in (folder / "utterances.tsv", folder.parent / "utterances.tsv") if t.exists()), None)
    if table is None:
        return {}
    out = {}
    for line in table.read_text(encoding="utf-8").splitlines()[1:]:
        parts = line.split("\t")
        if len(parts) >= 2:
            out[parts[0]] = parts[1]
    return out


def evaluate_tsv(transcriber, tsv, progress=None):
    """WER/CER over a TSV's files, also by voice and by condition, with the real-time factor.

    Voices come from the TSV's third column or, for a built corpus, from its utterances.tsv.
    """
    import time

    from suite.apps.speech.data import normalize

    rows = read_eval_tsv(tsv)
    voices = voices_beside(tsv)
    rows = [(p, t, voices.get(p.name, v) if v == "-" else v, c) for p, t, v, c in rows]
    transcriber.transcribe_wave(np.random.default_rng(0).normal(0, 0.1, 16000).astype(np.float32), 16000)  # compile
    refs, hyps, audio_s, t0 = [], [], 0.0, time.perf_counter()
    for i, (path, text, _, _) in enumerate(rows):
        hyp, _, seconds = transcribe_file(transcriber, path)
        refs.append(normalize(text))
        hyps.append(hyp)
        audio_s += seconds
        if progress is not None:
            progress(i + 1, len(rows))
    elapsed = time.perf_counter() - t0
    report = error_rates(refs, hyps)
    for key, col in (("by_voice", 2), ("by_condition", 3)):
        groups = error_rates_by([row[col] for row in rows], refs, hyps)
        if len(groups) > 1 or "-" not in groups:
            report[key] = groups
    report["audio_seconds"] = round(audio_s, 2)
    report["realtime_factor"] = round(audio_s / max(elapsed, 1e-9), 1)  # seconds of audio per second of compute
    report["hypotheses"] = [{"file": str(row[0]), "ref": r, "hyp": h} for row, r, h in zip(rows, refs, hyps)]
    report["voices"] = [row[2] for row in rows]
    return report


def _voice_summary(report):
    """Per-engine WER and the five hardest voices, from evaluate_tsv's per-utterance hypotheses and voices."""
    by_voice = report.get("by_voice") or {}
    if not by_voice:
        return {}
    engines = error_rates_by([voice.split(":")[0] for voice in report["voices"]],
                             [h["ref"] for h in report["hypotheses"]], [h["hyp"] for h in report["hypotheses"]])
    worst = sorted(by_voice.items(), key=lambda kv: -kv[1]["wer"])[:5]
    return {"by_engine": dict(sorted(engines.items())),
            "voices": len(by_voice), "hardest_voices": dict(worst)}


def export_model(best_dir, export_dir, data_dir, command=None, export_command=None, progress=None, tune=True):
    """Copy a trained model to export_dir with a card of held-out metrics on every data_dir/test/* folder.

    With ``tune`` and a built validation split, the LM weight, character bonus
    and lexicon use are first chosen on validation (tune_decoding) and stored in
    the model's meta, so `transcribe` uses them. Each test condition is decoded
    twice: greedy without LM, and beam search with the character LM (the
    default of `transcribe`); beside them the trivial baseline that always
    answers the most frequent training transcript.
    """
    from collections import Counter
    from pathlib import Path

    from suite.apps.speech.data import DataError, load_split, read_corpus_report
    from suite.card import make_card, reproduce_chain, training_record
    from suite.shipped import publish_model_with_meta

    model, card = load_model(best_dir)
    meta = card.get("meta") or {}
    data_dir = Path(data_dir)
    tests = sorted(p.parent for p in data_dir.glob("test/*/transcripts.tsv"))
    if not tests:
        raise ValueError(f"{data_dir}: no test/*/transcripts.tsv; run `suite speech data build` first")
    train_texts = load_split(data_dir, "train")["texts"] if (data_dir / "train.npz").exists() else []
    if not meta.get("lexicon") and train_texts:  # models trained before lexicons were recorded
        meta = meta | {"lexicon": lexicon_words(train_texts)}
    if tune and (data_dir / "valid.npz").exists():
        meta = meta | {"decoding": tune_decoding(model, card | {"meta": meta}, load_split(data_dir, "valid"),
                                                 progress=progress)}
    card = card | {"meta": meta}
    constant = Counter(train_texts).most_common(1)[0][0] if train_texts else ""
    beam = Transcriber(model, card)
    greedy = Transcriber(model, card, beam=1, use_lm=False, use_lexicon=False)
    metrics = {}
    for folder in tests:
        tsv = folder / "transcripts.tsv"
        full = evaluate_tsv(beam, tsv, progress=progress)
        plain = evaluate_tsv(greedy, tsv)
        refs = [h["ref"] for h in full["hypotheses"]]
        metrics[folder.name] = {
            "wer": full["wer"], "cer": full["cer"], "utterances": full["utterances"], "words": full["words"],
            "greedy_no_lm": {"wer": plain["wer"], "cer": plain["cer"]},
            "baseline_most_frequent_transcript": error_rates(refs, [constant] * len(refs)),
            **_voice_summary(full), **({"by_condition": full["by_condition"]} if "by_condition" in full else {}),
            "realtime_factor": full["realtime_factor"],
            "examples": full["hypotheses"][:5],
        }
    try:
        corpus = read_corpus_report(data_dir)
    except DataError:
        corpus = {}
    training = training_record(best_dir, meta, command, export_command)
    card_out = make_card(
        "speech",
        "log-mel frames, stacked x{} -> {}-layer bidirectional LSTM ({} units per direction) -> "
        "characters, CTC".format(model.config.stack, model.config.layers, model.config.hidden),
        config=card["config"],
        data={"source": str(data_dir), "corpus": corpus, "train_utterances": meta.get("train_utterances")},
        training=training,
        metrics={"how": "WER/CER (jiwer) on the held-out-voice test folders, read as audio files through "
                        "the same path as `suite speech transcribe`; beam search with the character LM unless "
                        "noted", "test": metrics},
        reproduce=reproduce_chain(corpus.get("command"), training["command"], export_command),
        decoding=meta.get("decoding"), lexicon=meta.get("lexicon"))
    return publish_model_with_meta(model, card["config"], meta, export_dir, card_out)
