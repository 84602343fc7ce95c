"""`suite speech`: speech to text with a deep bidirectional LSTM and CTC."""
import json
import sys
import time
from pathlib import Path

import click

from suite.cli_common import (architecture_from_init, command_line, export_source, fail, finish_training,
                              load_or_fail, model_option, prepare_run_dir, run_training, training_options)
from suite.cli_common import counter as _bar
from suite.threads import single_blas_thread

DEFAULT_DATA = "data/speech"  # suite.databuild.data_dir("speech"), named here so that --help needs no numpy
DEFAULT_RUN_DIR = "runs/speech"


def _load(model_dir):
    from suite.apps.speech.model import load_model

    return load_or_fail(load_model, "speech", model_dir)


@click.group()
def cli():
    """Speech to text: log-mel features, a deep bidirectional LSTM, CTC decoding.

    The shipped model knows connected digits (zero..nine, oh) and the commands
    yes no up down left right on off stop go, learnt from synthesised speech.

    \b
    Examples:
      suite speech transcribe clip.wav              # text on stdout
      suite speech transcribe *.flac --json         # with word start/end times
      suite speech data build && suite speech train && suite speech evaluate data/speech/test/clean/transcripts.tsv
    """


def decode_options(fn):
    """--model, --beam, --no-lm, --no-lexicon: what transcribe and evaluate share."""
    fn = click.option("--no-lexicon", is_flag=True,
                      help="Allow any spelling, not only the words the model was trained on.")(fn)
    fn = click.option("--no-lm", is_flag=True, help="Decode without the character language model.")(fn)
    fn = click.option("--beam", type=click.IntRange(1, 256), default=8, show_default=True,
                      help="1 = greedy decoding.")(fn)
    return model_option(fn)


@cli.group()
def data():
    """Build the synthesised speech corpus."""


@data.command("build")
@click.option("--out", type=click.Path(file_okay=False), default=DEFAULT_DATA, show_default=True)
@click.option("--n-train", type=click.IntRange(1), default=16000, show_default=True)
@click.option("--n-valid", type=click.IntRange(1), default=800, show_default=True)
@click.option("--n-test", type=click.IntRange(1), default=800, show_default=True)
@click.option("--n-unseen", type=click.IntRange(0), default=200, show_default=True,
              help="Test utterances from festival, a synthesiser training never hears (0 = none).")
@click.option("--seed", type=int, default=0, show_default=True, help="Fixes transcripts, voices and augmentation.")
@click.option("--workers", type=click.IntRange(1), default=2, show_default=True)
@click.option("--force", is_flag=True, help="Replace an existing --out folder.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def data_build(out, n_train, n_valid, n_test, n_unseen, seed, workers, force, as_json):
    """Synthesise utterances with espeak-ng and flite, augment them, and compute features.

    Whole voices are held out for validation and test; the test set is written as
    WAV files with transcripts.tsv (clean and at 20 dB SNR) so that evaluation reads
    audio exactly as `transcribe` does.

    Example: suite speech data build --n-train 2000 --out data/speech-small
    """
    from suite.apps.speech.data import build_corpus
    from suite.databuild import check_data_dir

    try:
        check_data_dir(out, force, "speech")
        report = build_corpus(out, n_train=n_train, n_valid=n_valid, n_test=n_test, seed=seed, workers=workers,
                              progress=_bar("synthesising"), n_unseen=n_unseen, command=command_line("speech"))
    except (ValueError, OSError, RuntimeError) as exc:
        raise fail(exc) from None
    if as_json:
        click.echo(json.dumps(report, indent=2))
    else:
        click.echo(f"wrote {out}: " + ", ".join(f"{k} {v}" for k, v in (report.get("counts") or {}).items()))


def _user_dataset(path, quiet):
    """Features and texts from a user's folder (transcript TSV or LibriSpeech layout), 5 % held out."""
    from suite.apps.speech.audio import AudioError, load_audio
    from suite.apps.speech.data import DataError, features, normalize, read_librispeech, read_tsv_dataset
    from suite.databuild import holdout_split

    try:
        items = read_tsv_dataset(path) if list(Path(path).glob("*.tsv")) else read_librispeech(path)
        if len(items) < 2:
            raise DataError(f"{path}: found {len(items)} transcribed audio files; need a transcript TSV "
                            "(file<TAB>text) or LibriSpeech *.trans.txt files and at least 2 files")
    except DataError as exc:
        raise fail(exc) from None
    feats, texts = [], []
    bar = _bar("featurising", quiet)
    for i, (audio, text) in enumerate(items):
        try:
            feats.append(features(load_audio(audio)))
        except AudioError as exc:
            raise fail(exc) from None
        texts.append(normalize(text))
        if bar:
            bar(i + 1, len(items))
    train, held = holdout_split(len(items))
    pick = lambda idx: {"features": [feats[i] for i in idx], "texts": [texts[i] for i in idx]}  # noqa: E731
    return pick(train), pick(held), {"source": str(path), "files": len(items)}


def _corpus_splits(data_dir, quiet):
    from suite.apps.speech.data import load_split, read_corpus_report

    data_dir = Path(data_dir)
    if not data_dir.exists():
        raise click.ClickException(f"{data_dir}: no such folder; run `suite speech data build` first "
                                   "or pass --data DIR with a transcript TSV")
    if not (data_dir / "train.npz").exists():
        return _user_dataset(data_dir, quiet)
    try:
        train, valid = load_split(data_dir, "train"), load_split(data_dir, "valid")
        report = read_corpus_report(data_dir)
    except (ValueError, OSError, KeyError) as exc:
        raise fail(exc) from None
    return train, valid, {"source": str(data_dir), "corpus": report}


@cli.command()
@click.option("--hidden", type=click.IntRange(8, 2048), default=192, show_default=True, help="LSTM units per direction.")
@click.option("--layers", type=click.IntRange(1, 8), default=3, show_default=True)
@click.option("--proj", type=click.IntRange(0), default=0, show_default=True, help="LSTMP projection size (0 = none).")
@click.option("--stack", type=click.IntRange(1, 8), default=3, show_default=True, help="10 ms frames per LSTM step.")
@click.option("--dropout", type=click.FloatRange(0, 1, max_open=True), default=0.1, show_default=True)
@click.option("--batch-size", type=click.IntRange(1), default=32, show_default=True)
@click.option("--lm-order", type=click.IntRange(0, 10), default=5, show_default=True,
              help="Character n-gram LM for beam search, from the training transcripts (0 = none).")
@click.option("--no-augment", is_flag=True, help="No SpecAugment masks.")
@click.option("--non-speech", type=click.FloatRange(0, 1), default=0.05, show_default=True,
              help="Fraction of each batch replaced by noise/hum/silence clips with an empty transcript.")
@click.option("--init", "init_dir", type=click.Path(file_okay=False), default=None,
              help="Start from this speech model's weights and architecture (fine-tuning), e.g. data/models/speech.")
@training_options(steps=8000, data=DEFAULT_DATA, out=DEFAULT_RUN_DIR,
                  data_help="A built corpus, or a folder of audio files with a transcript TSV (file<TAB>text) "
                            "or LibriSpeech *.trans.txt files.")
@click.pass_context
def train(ctx, data_dir, out, hidden, layers, proj, stack, dropout, batch_size, lm_order, no_augment, non_speech,
          init_dir, **opts):
    """Train the BiLSTM-CTC recogniser; the best model by validation CTC loss is kept.

    \b
    Examples:
      suite speech train --minutes 60 --export data/models/speech
      suite speech train --init data/models/speech --lr 5e-4 --steps 4000   # fine-tune the shipped model
    """
    from suite.apps.speech.data import ALPHABET, FEATURES, encode, feature_dim
    from suite.apps.speech.model import SpeechConfig, SpeechModel, SpeechTask, config_dict, lexicon_words, load_model
    from suite.ctc import CharNGramLM

    architecture = {"hidden": hidden, "layers": layers, "proj": proj, "stack": stack, "dropout": dropout}
    init_model = init_card = None
    if init_dir is not None:
        init_model, init_card = load_or_fail(load_model, "speech", init_dir)
        architecture = architecture_from_init(ctx, architecture, init_card)
    out = prepare_run_dir(out, opts["resume"], opts["force"], opts["export"])
    train_split, valid_split, source = _corpus_splits(data_dir, opts["quiet"])
    seed = opts["seed"]
    config = SpeechConfig(feature_dim=feature_dim(), vocab_size=len(ALPHABET), seed=seed, **architecture)
    task = SpeechTask(train_split, valid_split, batch_size=batch_size, augment=not no_augment, non_speech=non_speech,
                      seed=seed)
    lm = CharNGramLM.fit([encode(t) for t in train_split["texts"]], order=lm_order,
                         vocab_size=len(ALPHABET)) if lm_order else None
    meta = {"alphabet": list(ALPHABET), "features": FEATURES, "data": source,
            "train_utterances": len(train_split["texts"]), "lm": lm.to_dict() if lm else None, "lm_order": lm_order,
            "non_speech": non_speech, "lexicon": lexicon_words(train_split["texts"]),
            "decoding": {"beam": 8, "lm_weight": 0.5, "bonus": 0.0}}
    if init_card is not None:
        meta["init"] = {"from": str(init_dir), "step": init_card["meta"].get("step"),
                        "train_utterances": init_card["meta"].get("train_utterances")}
    model = SpeechModel(config)
    if init_model is not None:
        model.load_state_dict(init_model.state_dict())
    summary = run_training("speech", model, task, config_dict(config), meta, out=out, init=init_dir,
                           describe_eval=lambda r: f"valid CTC {r['loss']:.4f}, greedy CER "
                                                   f"{r.get('cer', float('nan')):.4f}, WER "
                                                   f"{r.get('wer', float('nan')):.4f}", **opts)
    if opts["export"]:
        summary["card"] = _export(out / "best", opts["export"], data_dir, summary["command"], opts["quiet"])
    finish_training(summary, opts["as_json"],
                    f"best validation WER {summary['valid'].get('wer', float('nan')):.4f} (greedy)", opts["export"])


def _export(best, out, data_dir, command, quiet, export_command=None):
    from suite.apps.speech.model import export_model

    try:
        with single_blas_thread():  # evaluation decodes one utterance at a time
            return export_model(best, out, data_dir, command=command, export_command=export_command,
                                progress=_bar("evaluating", quiet))
    except (ValueError, OSError) as exc:
        raise fail(exc) from None


@cli.command()
@click.argument("run", type=click.Path(file_okay=False))
@click.option("--out", type=click.Path(file_okay=False), default="data/models/speech", show_default=True)
@click.option("--data", "data_dir", type=click.Path(file_okay=False), default=DEFAULT_DATA, show_default=True,
              help="The built corpus whose test folders are evaluated.")
@click.option("--force", is_flag=True, help="Replace an existing --out folder.")
@click.option("--json", "as_json", is_flag=True, help="Print the card as JSON.")
def export(run, out, data_dir, force, as_json):
    """Export a trained model (RUN/best) with a card of held-out WER/CER per test condition.

    Example: suite speech export runs/speech --out data/models/speech --force
    """
    best = export_source(run, out, force)
    card = _export(best, out, data_dir, None, False, export_command=command_line("speech"))
    if as_json:
        click.echo(json.dumps(card, indent=2))
    else:
        for name, m in card["metrics"]["test"].items():
            click.echo(f"{name:>16}: WER {m['wer']:.4f}  CER {m['cer']:.4f}  ({m['utterances']} utterances)")
        click.echo(f"exported {best} to {out}")


@cli.command()
@click.argument("tsv", type=click.Path(dir_okay=False))
@decode_options
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON (with every hypothesis).")
def evaluate(tsv, model_dir, beam, no_lm, no_lexicon, as_json):
    """WER and CER of the model on the audio files listed in TSV (file<TAB>text[<TAB>voice[<TAB>condition]]).

    Example: suite speech evaluate data/speech/test/snr20/transcripts.tsv
    """
    from suite.apps.speech.model import Transcriber, evaluate_tsv

    model, card = _load(model_dir)
    try:
        with single_blas_thread():
            report = evaluate_tsv(Transcriber(model, card, beam=beam, use_lm=not no_lm, use_lexicon=not no_lexicon),
                                  tsv, progress=_bar("transcribing"))
    except (ValueError, OSError) as exc:
        raise fail(exc) from None
    if as_json:
        click.echo(json.dumps(report, indent=2))
        return
    click.echo(f"WER {report['wer']:.4f}  CER {report['cer']:.4f}  ({report['utterances']} utterances, "
               f"{report['words']} words)")
    for key in ("by_voice", "by_condition"):
        for name, m in sorted(report.get(key, {}).items()):
            click.echo(f"  {key[3:]} {name}: WER {m['wer']:.4f}  CER {m['cer']:.4f}  ({m['utterances']})")


@cli.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False))
@decode_options
@click.option("--json", "as_json", is_flag=True, help="One JSON object per file, with word start/end times.")
def transcribe(files, model_dir, beam, no_lm, no_lexicon, as_json):
    """Transcribe audio files (WAV, FLAC, OGG, MP3; any rate; mono or stereo).

    Long recordings are cut at silences and streamed in bounded memory. A file
    that cannot be read is reported on stderr; the others are still transcribed
    and the exit code is 1.

    \b
    Examples:
      suite speech transcribe clip.wav
      suite speech transcribe a.wav b.flac --json --beam 16
    """
    from suite.apps.speech.audio import AudioError
    from suite.apps.speech.model import Transcriber, transcribe_file

    model, card = _load(model_dir)
    transcriber = Transcriber(model, card, beam=beam, use_lm=not no_lm, use_lexicon=not no_lexicon)
    failed = 0
    with single_blas_thread():  # one utterance at a time: BLAS threads only cost hand-offs
        for path in files:
            t0 = time.perf_counter()
            try:
                text, words, seconds = transcribe_file(transcriber, path)
            except AudioError as exc:
                click.echo(f"Error: {str(exc).splitlines()[0]}", err=True)
                failed += 1
                continue
            if as_json:
                click.echo(json.dumps({"file": path, "text": text, "words": words, "seconds": round(seconds, 3),
                                       "decode_seconds": round(time.perf_counter() - t0, 3)}))
            else:
                click.echo(f"{path}\t{text}" if len(files) > 1 else text)
    if failed:
        sys.exit(1)


# -- `suite batch speech`: transcribe many files (suite.batch) --------------------------------------------
def _batch_load(model_dir=None, beam=8, no_lm=False, no_lexicon=False):
    import numpy as np

    from suite.apps.speech.model import Transcriber, load_model
    from suite.shipped import default_model_dir

    model, card = load_model(model_dir or default_model_dir("speech"))
    transcriber = Transcriber(model, card, beam=beam, use_lm=not no_lm, use_lexicon=not no_lexicon)
    transcriber.transcribe_wave(np.random.default_rng(0).normal(0, 0.1, 16000).astype(np.float32), 16000)  # compile
    return transcriber


def _batch_run(transcriber, path):
    from suite.apps.speech.model import transcribe_file

    text, words, seconds = transcribe_file(transcriber, path)
    return {"text": text, "words": words, "audio_seconds": round(seconds, 3)}


def batch_job():
    from suite.batch import BatchJob
    from suite.cli_common import option_objects

    return BatchJob("speech transcribe", "Transcribe audio files (as `suite speech transcribe`), with word times.",
                    (".wav", ".flac", ".ogg", ".mp3"), _batch_load, _batch_run,
                    options=option_objects(decode_options))
