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

from suite.batching import BucketSampler, iterate_in_order, pad_time_major
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


def pad_targets(seqs):
    """List of int label arrays -> (B, S) int32 zero-padded, lengths (B,)."""
    lengths = np.array([len(s) for s in seqs], dtype=np.int64)
    out = np.zeros((len(seqs), max(int(lengths.max()), 1)), dtype=np.int32)
    for b, s in enumerate(seqs):
        out[b, :len(s)] = s
    return out, lengths


def log_softmax(logits):
    z = logits - logits.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


class SpeechTask:
    """Trainer task: bucketed batches of (features, characters), CTC loss; validation CTC loss, CER, WER."""

    def __init__(self, train, valid, batch_size=32, augment=True, valid_batch=64, non_speech=0.0, seed=0,
                 noise_pool=1000):
        """non_speech: the fraction of each batch replaced by clips with no words (see data.non_speech)."""
        from suite.apps.speech.data import encode, features
        from suite.apps.speech.data import non_speech as make_non_speech

        self.train_feats = train["features"]
        self.train_labels = [encode(t) for t in train["texts"]]
        self.non_speech = float(non_speech)
        rng = np.random.default_rng([seed, 7])
        self.noise_feats = [features(make_non_speech(rng)[0]) for _ in range(noise_pool if non_speech else 0)]
        rng = np.random.default_rng([seed, 8])  # held-out non-speech clips for validation
        n_valid = max(noise_pool // 10, 1) if non_speech else 0
        self.valid_noise = [features(make_non_speech(rng)[0]) for _ in range(n_valid)]
        self.valid = valid
        self.batch_size = batch_size
        self.augment = augment
        self.valid_batch = valid_batch
        self.sampler = BucketSampler([len(f) for f in self.train_feats], batch_size)

    def train_batch(self, rng):
        idx = self.sampler.sample(rng)
        feats = [self.train_feats[i] for i in idx]
        labels = [self.train_labels[i] for i in idx]
        for b in np.flatnonzero(rng.random(len(idx)) < self.non_speech):
            feats[b] = self.noise_feats[int(rng.integers(len(self.noise_feats)))]
            labels[b] = np.zeros(0, np.int32)
        feats = [spec_augment(f, rng) if self.augment else np.asarray(f, np.float32) for f in feats]
        x, lengths = pad_time_major(feats, dtype=np.float32)
        targets, target_lengths = pad_targets(labels)
        return x, lengths, targets, target_lengths

    def loss_and_grad(self, model, batch):
        from suite.ctc import ctc_loss_mean

        x, lengths, targets, target_lengths = batch
        logits, steps = model.forward(x, lengths)
        loss, dlogits = ctc_loss_mean(logits, targets, steps, target_lengths)
        model.backward(dlogits)
        return float(loss), len(lengths)

    def evaluate(self, model):
        out = evaluate_features(model, self.valid["features"], self.valid["texts"], batch_size=self.valid_batch)
        metrics = {"loss": out["ctc_loss"], "cer": out["cer"], "wer": out["wer"]}
        if self.valid_noise:  # the loss model selection uses covers both: words, and no words where none were said
            noise = evaluate_features(model, self.valid_noise, [""] * len(self.valid_noise), batch_size=self.valid_batch)
            n, m = len(self.valid["texts"]), len(self.valid_noise)
            metrics |= {"speech_ctc_loss": out["ctc_loss"], "non_speech_ctc_loss": noise["ctc_loss"],
                        "loss": (n * out["ctc_loss"] + m * noise["ctc_loss"]) / (n + m),
                        "non_speech_false_alarms": sum(bool(h) for h in noise["hypotheses"]) / m}
        return metrics


def forward_by_length(model, features, batch_size=64, indices=None):
    """Yield (indices, logits (T', B, C), steps (B,)) over the features, batched with others of similar length.

    indices: which of ``features`` to run (default all).
    """
    indices = np.arange(len(features)) if indices is None else np.asarray(indices, dtype=np.int64)
    order = indices[np.argsort([len(features[i]) for i in indices], kind="stable")]  # similar lengths together
    for batch in iterate_in_order(len(order), batch_size):
        idx = order[batch]
        x, lengths = pad_time_major([np.asarray(features[i], np.float32) for i in idx], dtype=np.float32)
        logits, steps = model.forward(x, lengths)
        yield idx, logits, steps


def evaluate_features(model, features, texts, batch_size=64):
    """CTC loss per utterance and greedy-decoding CER/WER over precomputed features (no LM, no beam)."""
    import jiwer

    from suite.apps.speech.data import decode, encode
    from suite.kernels.ctc import ctc_greedy, ctc_loss

    total, count, hyps = 0.0, 0, [None] * len(features)
    for idx, logits, steps in forward_by_length(model, features, batch_size):
        targets, target_lengths = pad_targets([encode(texts[i]) for i in idx])
        nll, _ = ctc_loss(logits, targets, steps, target_lengths)
        total += float(np.sum(nll[np.isfinite(nll)]))
        count += int(np.isfinite(nll).sum())
        for i, (tokens, _) in zip(idx, ctc_greedy(logits, steps)):
            hyps[i] = decode(tokens)
    refs = list(texts)
    return {"ctc_loss": total / max(count, 1), "cer": _rate(jiwer.cer, refs, hyps),
            "wer": _rate(jiwer.wer, refs, hyps), "hypotheses": hyps}


def _rate(fn, refs, hyps):
    """jiwer's rate over the whole set; empty references are skipped (jiwer rejects them)."""
    pairs = [(r, h) for r, h in zip(refs, hyps) if r.strip()]
    if not pairs:
        return 0.0
    return float(fn([r for r, _ in pairs], [h for _, h in pairs]))


def build_model(config, meta):
    return SpeechModel(SpeechConfig(**config))


def load_model(model_dir):
    """(SpeechModel, card) from a model folder; one-line CheckpointError otherwise."""
    from suite.shipped import load_app_model

    return load_app_model(model_dir, "speech", MODEL_NAME, build_model)


def char_lm(card):
    """The character n-gram LM stored in a card's meta, or None."""
    from suite.ctc import CharNGramLM

    lm = (card.get("meta") or {}).get("lm")
    return CharNGramLM.from_dict(lm) if lm else None


def lexicon_words(texts):
    """The sorted distinct words of transcripts: the lexicon a model's decoding may be held to."""
    from suite.apps.speech.data import normalize

    return sorted({w for t in texts for w in normalize(t).split()})


def lexicon(card):
    """The word lexicon stored in a card's meta (as a suite.ctc.Lexicon over character ids), or None."""
    from suite.apps.speech.data import ALPHABET, encode
    from suite.ctc import Lexicon

    words = (card.get("meta") or {}).get("lexicon")
    return Lexicon([encode(w) for w in words], separator=ALPHABET.index(" ")) if words else None


class Transcriber:
    """Text (and word times) from waveforms with one loaded model: features -> BiLSTM -> CTC decoding."""

    def __init__(self, model, card, beam=8, lm_weight=None, use_lm=True, use_lexicon=True):
        """use_lm, use_lexicon: allow the card's character LM and word lexicon (the lexicon only where
        the card's decoding settings turn it on)."""
        from suite.apps.speech.data import FEATURES

        self.model = model
        self.card = card
        self.beam = beam
        self.lm = char_lm(card) if use_lm else None
        decoding = (card.get("meta") or {}).get("decoding") or {}
        self.lm_weight = lm_weight if lm_weight is not None else decoding.get("lm_weight", 0.5)
        self.bonus = decoding.get("bonus", 0.0)
        self.all_words = lexicon(card) if use_lexicon else None
        self.lexicon = self.all_words if decoding.get("lexicon") else None
        self.frame_seconds = FEATURES["hop_ms"] / 1000.0 * model.config.stack

    SILENCE_PEAK = 10 ** (-70 / 20)  # a segment whose peak is below -70 dBFS holds no speech

    def logits(self, wave, sr):
        from suite.apps.speech.data import features

        # digital silence has no spectrum to normalise (per-utterance normalisation would
        # blow up rounding noise into features no training utterance had): nothing was said
        if len(wave) == 0 or float(np.max(np.abs(wave))) < self.SILENCE_PEAK:
            return np.zeros((0, self.model.config.vocab_size), dtype=np.float32)
        feats = features(wave, sr)  # (T, F)
        if len(feats) == 0:
            return np.zeros((0, self.model.config.vocab_size), dtype=np.float32)
        logits, _ = self.model.forward(feats[:, None, :], np.array([len(feats)]))
        return logits[:, 0]  # (T', C)

    def decode(self, logits):
        """(text, tokens, word times) for one utterance's (T', C) logits."""
        from suite.apps.speech.data import ALPHABET, decode
        from suite.kernels.ctc import ctc_align, ctc_greedy
        from suite.ctc import prefix_beam_search, word_times

        if len(logits) == 0:
            return "", [], []
        log_probs = log_softmax(logits.astype(np.float64))
        if self.beam > 1 or self.lm is not None or self.lexicon is not None:
            best = prefix_beam_search(log_probs, beam=self.beam, lm=self.lm, lm_weight=self.lm_weight,
                                      char_bonus=self.bonus, lexicon=self.lexicon)
            tokens = np.array(best[0][0], dtype=np.int32) if best else np.zeros(0, np.int32)
        else:
            tokens = ctc_greedy(logits[:, None, :], np.array([len(logits)]))[0][0]
        if len(tokens) == 0:
            return "", [], []
        starts, ends = ctc_align(log_probs, tokens)
        words = word_times(tokens, starts, ends, space_id=1, frame_seconds=self.frame_seconds,
                           id_to_char=ALPHABET)
        return decode(tokens), tokens, words

    def transcribe_wave(self, wave, sr, offset=0.0):
        text, _, words = self.decode(self.logits(wave, sr))
        for w in words:
            w["start"] = round(w["start"] + offset, 3)
            w["end"] = round(w["end"] + offset, 3)
        return text, words


LM_WEIGHTS = (0.0, 0.25, 0.5, 0.75, 1.0)  # the grid export searches on the validation split
CHAR_BONUSES = (0.0, 0.5, 1.0)


def split_logits(model, feats, batch_size=64):
    """Each utterance's (T', C) logits, batched by length (per-sequence lengths keep them independent)."""
    out = [np.zeros((0, model.config.vocab_size), np.float32)] * len(feats)
    spoken = [i for i in range(len(feats)) if len(feats[i])]
    for idx, logits, steps in forward_by_length(model, feats, batch_size, indices=spoken):
        for b, i in enumerate(idx):
            out[i] = np.ascontiguousarray(logits[:steps[b], b])
    return out


def tune_decoding(model, card, split, beam=8, lm_weights=LM_WEIGHTS, bonuses=CHAR_BONUSES, progress=None):
    """The LM weight, character bonus and lexicon use with the lowest WER on ``split`` (validation), and the grid.

    Decoding settings are chosen here, on validation, so that test figures stay
    held out. Ties go to the earlier setting (smaller weights, no lexicon).
    Without an LM only the bonus is searched; without a lexicon in the card's
    meta, decoding without one.
    """
    from suite.apps.speech.data import normalize

    logits = split_logits(model, split["features"])
    refs = [normalize(t) for t in split["texts"]]
    transcriber = Transcriber(model, card, beam=beam)
    if transcriber.lm is None:
        lm_weights = (0.0,)
    grid = [(x, w, b) for x in ((False, True) if transcriber.all_words else (False,))
            for w in lm_weights for b in bonuses]
    results = []
    for k, (x, w, b) in enumerate(grid):
        transcriber.lexicon = transcriber.all_words if x else None
        transcriber.lm_weight, transcriber.bonus = w, b
        hyps = [transcriber.decode(l)[0] for l in logits]
        results.append({"lexicon": x, "lm_weight": w, "bonus": b} | error_rates(refs, hyps))
        if progress is not None:
            progress(k + 1, len(grid))
    best = min(results, key=lambda r: (r["wer"], r["cer"]))
    keys = ("lexicon", "lm_weight", "bonus")
    return {"beam": beam} | {k: best[k] for k in keys} | {
        "valid_wer": best["wer"], "valid_cer": best["cer"],
        "chosen_on": f"validation split ({len(refs)} utterances), lowest WER",
        "grid": [{k: r[k] for k in keys + ("wer", "cer")} for r in results]}


def read_eval_tsv(tsv):
    """Rows (audio path, text, voice, condition) of an evaluation TSV: file<TAB>text[<TAB>voice[<TAB>condition]].

    Paths are relative to the TSV's folder; voice and condition default to "-".
    """
    from pathlib import Path

    tsv = Path(tsv)
    try:
        lines = tsv.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise ValueError(f"{tsv}: no such file") from None
    except UnicodeDecodeError:
        raise ValueError(f"{tsv}: not a UTF-8 text file; expected lines of file<TAB>text") from None
    rows = []
    for n, line in enumerate(lines, 1):
        if not line.strip() or line.startswith("#"):
            continue
        parts = line.split("\t")
        if len(parts) < 2:
            raise ValueError(f"{tsv}:{n}: expected file<TAB>text, got {line[:60]!r}")
        rows.append((tsv.parent / parts[0], parts[1], parts[2] if len(parts) > 2 else "-",
                     parts[3] if len(parts) > 3 else "-"))
    if not rows:
        raise ValueError(f"{tsv}: no rows; expected lines of file<TAB>text")
    return rows


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


def error_rates(refs, hyps):
    return {"wer": round(_rate(_jiwer().wer, refs, hyps), 4), "cer": round(_rate(_jiwer().cer, refs, hyps), 4),
            "utterances": len(refs), "words": sum(len(r.split()) for r in refs)}


def _jiwer():
    import jiwer

    return jiwer


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
        groups = {}
        for row, r, h in zip(rows, refs, hyps):
            groups.setdefault(row[col], ([], []))
            groups[row[col]][0].append(r)
            groups[row[col]][1].append(h)
        if len(groups) > 1 or "-" not in groups:
            report[key] = {name: error_rates(r, h) for name, (r, h) in groups.items()}
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
    engines = {}
    for h, voice in zip(report["hypotheses"], report["voices"]):
        engines.setdefault(voice.split(":")[0], ([], []))
        engines[voice.split(":")[0]][0].append(h["ref"])
        engines[voice.split(":")[0]][1].append(h["hyp"])
    worst = sorted(by_voice.items(), key=lambda kv: -kv[1]["wer"])[:5]
    return {"by_engine": {e: error_rates(r, h) for e, (r, h) in sorted(engines.items())},
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
    import datetime
    import tempfile
    from collections import Counter
    from pathlib import Path

    from suite.nn.checkpoint import save_checkpoint
    from suite.shipped import publish_model

    model, card = load_model(best_dir)
    meta = card.get("meta") or {}
    data_dir = Path(data_dir)
    tests = sorted(p.parent for p in data_dir.glob("test/*/transcripts.tsv"))
    if not tests:
        raise ValueError(f"{data_dir}: no test/*/transcripts.tsv; run `suite speech data build` first")
    from suite.apps.speech.data import load_split

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
    corpus = {}
    if (data_dir / "corpus.json").exists():
        import json

        corpus = json.loads((data_dir / "corpus.json").read_text())
    out = {
        "app": "speech",
        "model": "log-mel frames, stacked x{} -> {}-layer bidirectional LSTM ({} units per direction) -> "
                 "characters, CTC".format(model.config.stack, model.config.layers, model.config.hidden),
        "config": card["config"],
        "data": {"source": str(data_dir), "corpus": corpus, "train_utterances": meta.get("train_utterances")},
        "training": {"command": command or meta.get("command"), "export_command": export_command,
                     "seed": meta.get("seed"), "train_config": meta.get("train_config"),
                     "best_step": meta.get("step"), "valid": meta.get("valid"), "init": meta.get("init")},
        "decoding": meta.get("decoding"),
        "lexicon": meta.get("lexicon"),
        "metrics": {"how": "WER/CER (jiwer) on the held-out-voice test folders, read as audio files through "
                           "the same path as `suite speech transcribe`; beam search with the character LM unless "
                           "noted", "test": metrics},
        "date": datetime.date.today().isoformat(),
    }
    with tempfile.TemporaryDirectory() as tmp:  # the exported checkpoint carries the chosen decoding settings
        save_checkpoint(tmp, model.state_dict(), card["config"], meta=meta)
        return publish_model(tmp, export_dir, out)
