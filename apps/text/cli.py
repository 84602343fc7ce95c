"""`suite text`: next-character prediction and generation, with single cells made visible."""
import json
import sys
import time
from pathlib import Path

import click

from suite.cli_common import (
    command_line, export_source, fail, finish_training, load_or_fail, model_option, prepare_run_dir, run_training,
    training_options,
)
from suite.databuild import data_dir as app_data_dir

DEFAULT_DATA_DIR = str(app_data_dir("text"))  # data/text under the working folder


def _load(model_dir):
    from suite.apps.text.model import load_model

    return load_or_fail(load_model, "text", model_dir)


def _read_text(path):
    from suite.apps.text.data import DataError, read_text_file

    try:
        return read_text_file(path)
    except DataError as exc:
        raise fail(exc) from None


@click.group()
def cli():
    """Next-character prediction on code and text (char-rnn on our LSTM kernels).

    \b
    Examples:
      suite text generate --prime "def " --length 500 --temperature 0.8 --seed 1
      suite text score some_file.py --adapt
      suite text compress some_file.py && suite text decompress some_file.py.lstm -o copy.py
      suite text cells some_file.py --out cells/
      suite text data build && suite text train
    """


@cli.group()
def data():
    """Build the training corpus."""


@data.command("build")
@click.option("--corpus", type=click.Path(exists=True), default=None,
              help="A UTF-8 file or folder [default: Python's standard-library source].")
@click.option("--out", type=click.Path(file_okay=False), default=DEFAULT_DATA_DIR, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True, help="Fixes the split by file.")
@click.option("--max-chars", type=click.IntRange(1000), default=None,
              help="Cap on training characters [default: 4,000,000].")
@click.option("--json", "as_json", is_flag=True, help="Print the build's report as JSON.")
def data_build(corpus, out, seed, max_chars, as_json):
    """Build train/valid/test text (split by file) and the character vocabulary.

    Example: suite text data build --corpus ~/my_code --out data/mycode
    """
    from suite.apps.text.data import DEFAULT_MAX_CHARS, build_corpus

    try:
        report = build_corpus(out, corpus=corpus, seed=seed, max_chars=max_chars or DEFAULT_MAX_CHARS)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    if as_json:
        click.echo(json.dumps(report, indent=2))
        return
    for name in ("train", "valid", "test"):
        split = report["splits"][name]
        click.echo(f"{name:>5}: {split['chars']:>9,} chars from {split['documents']:>4} files")
    skipped = report.get("skipped", {})
    if skipped:
        click.echo("skipped: " + ", ".join(f"{n} {reason}" for reason, n in skipped.items()))
    click.echo(f"vocab: {report['vocab_size']} symbols; wrote {out}")


@cli.command()
@click.option("--hidden", type=click.IntRange(8, 4096), default=256, show_default=True)
@click.option("--layers", type=click.IntRange(1, 8), default=2, show_default=True)
@click.option("--embed", type=click.IntRange(4, 1024), default=64, show_default=True)
@click.option("--dropout", type=click.FloatRange(0, 1, max_open=True), default=0.1, show_default=True)
@click.option("--seq-len", type=click.IntRange(8), default=128, show_default=True)
@click.option("--batch-size", type=click.IntRange(1), default=32, show_default=True)
@training_options(steps=10000, eval_every=500, data=DEFAULT_DATA_DIR,
                  data_help="A corpus from `suite text data build`.", out="runs/text")
def train(hidden, layers, embed, dropout, seq_len, batch_size, data_dir, out, **opts):
    """Train a character LSTM on a built corpus.

    With --export, the best model is exported with its card (held-out test
    metrics and baselines, as `suite text export` writes).

    Example: suite text train --steps 20000 --export data/models/text
    """
    from suite.apps.text.data import load_split, load_vocab
    from suite.apps.text.model import export_model
    from suite.databuild import DataError
    from suite.lm import LN2, LMConfig, StreamTask, TokenLM, config_dict

    try:
        vocab = load_vocab(data_dir)
        train_ids = vocab.encode(load_split(data_dir, "train"))
        valid_ids = vocab.encode(load_split(data_dir, "valid"))
    except DataError as exc:  # it says how to build one
        raise fail(exc) from None
    except (ValueError, OSError) as exc:
        raise click.ClickException(f"{exc} (build one with: suite text data build --out {data_dir})") from None
    out = prepare_run_dir(out, opts["resume"], opts["force"], opts["export"])
    if len(train_ids) <= seq_len + 1:
        raise click.ClickException(f"the training text has {len(train_ids)} characters, fewer than --seq-len "
                                   f"{seq_len}; use a bigger corpus or a smaller --seq-len")
    config = LMConfig(vocab_size=vocab.size, embed=embed, hidden=hidden, layers=layers, dropout=dropout,
                      seed=opts["seed"])
    model = TokenLM(config)
    task = StreamTask(train_ids, valid_ids, seq_len=seq_len, batch_size=batch_size)
    summary = run_training("text", model, task, config_dict(config), {"data": str(data_dir), "vocab": vocab.to_json()},
                           out=out, warmup=200, **opts)
    summary["valid_bpc"] = summary["best"]["loss"] / LN2
    if opts["export"]:
        summary["card"] = export_model(out / "best", data_dir, opts["export"], command=summary["command"])
    finish_training(summary, opts["as_json"], f"best validation {summary['valid_bpc']:.3f} bits/char",
                    opts["export"])


@cli.command("export")
@click.argument("run", type=click.Path(file_okay=False))
@click.option("--data", "data_dir", type=click.Path(file_okay=False), default=DEFAULT_DATA_DIR,
              show_default=True, help="The corpus the run trained on (its test split is scored).")
@click.option("--out", type=click.Path(file_okay=False), default="data/models/text", show_default=True)
@click.option("--force", is_flag=True, help="Replace an existing --out folder.")
@click.option("--json", "as_json", is_flag=True, help="Print the card as JSON.")
def export_cmd(run, data_dir, out, force, as_json):
    """Export a trained model (RUN/best) with a card of held-out test metrics and baselines.

    The card reports bits per character on the corpus's test split for the
    model, the best character n-gram (order chosen on validation) and xz.

    Example: suite text export runs/text --out data/models/text --force
    """
    from suite.apps.text.model import export_model

    best = export_source(run, out, force)
    try:
        card = export_model(best, data_dir, out, export_command=command_line("text"))
    except (ValueError, OSError) as exc:
        raise click.ClickException(str(exc)) from None
    if as_json:
        click.echo(json.dumps(card, indent=2))
        return
    m = card["metrics"]
    click.echo(f"test bits/char: model {m['model_bits_per_char']:.3f}, {m['ngram_order']}-gram "
               f"{m['ngram_bits_per_char']:.3f}, xz {m['xz_bits_per_char']:.3f}; wrote {out}")


@cli.command()
@click.option("--prime", default="\n", show_default=False, help="Text to start from [default: a newline].")
@click.option("--length", type=click.IntRange(0, 10_000_000), default=500, show_default=True)
@click.option("--temperature", type=click.FloatRange(0), default=0.8, show_default=True,
              help="0 picks the most likely character every step.")
@click.option("--top-k", type=click.IntRange(0), default=0, show_default=True, help="0 = all characters.")
@click.option("--seed", type=int, default=0, show_default=True)
@model_option
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object at the end instead of streaming.")
def generate(prime, length, temperature, top_k, seed, model_dir, as_json):
    """Sample text one character at a time (compiled loop), streamed to stdout.

    Example: suite text generate --prime "def " --length 500 --temperature 0.8 --seed 1
    """
    model, vocab, _ = _load(model_dir)
    if not prime:
        raise click.UsageError("--prime must not be empty")
    prime_ids = vocab.encode(prime)
    t0 = time.perf_counter()
    pieces = []
    if not as_json:
        click.echo(prime, nl=False)
    for ids in model.generate(prime_ids, length, temperature=temperature, top_k=top_k, seed=seed):
        piece = vocab.decode(ids)
        pieces.append(piece)
        if not as_json:
            click.echo(piece, nl=False)
            sys.stdout.flush()
    elapsed = time.perf_counter() - t0
    if as_json:
        click.echo(json.dumps({"prime": prime, "text": "".join(pieces), "seed": seed,
                               "temperature": temperature, "top_k": top_k, "seconds": round(elapsed, 3)}))
    else:
        click.echo()
        click.echo(f"[{length} chars in {elapsed:.2f} s]", err=True)


@cli.command()
@click.argument("file", type=click.Path())
@click.option("--adapt", is_flag=True,
              help="Also score with dynamic evaluation: the model learns the file as it reads it.")
@model_option
@click.option("--json", "as_json", is_flag=True)
def score(file, adapt, model_dir, as_json):
    """Bits per character of FILE under the model (lower is better).

    With --adapt, three numbers on one reading: static (the trained weights,
    the file read as one stream), adapted (after each 100 characters the weights
    take a gradient step on them, as Krause et al. 2018's dynamic evaluation;
    each character is still scored before the model learns from it), and the
    adapted model mixed with a match model (what `compress` codes).

    \b
    Examples:
      suite text score suite/cli.py --json
      suite text score some_module.py --adapt
    """
    from suite.apps.text.model import LN2, score_ids
    from suite.device_choice import current
    from suite.lm import SCORE_STREAMS

    if adapt and current() == "cuda":
        raise click.UsageError("--adapt runs on the CPU only so far (dynamic evaluation updates the weights with "
                               "host arithmetic); use --device cpu")
    text = _read_text(file)
    model, vocab, card = _load(model_dir)
    ids = vocab.encode(text)
    unk = int((ids == vocab.unk_id).sum())
    if not adapt:
        bpc = score_ids(model, ids, **SCORE_STREAMS) / LN2
        if as_json:
            click.echo(json.dumps({"file": file, "chars": len(text), "bits_per_char": bpc, "unknown_chars": unk}))
        else:
            click.echo(f"{file}: {bpc:.3f} bits/char over {len(text):,} chars"
                       + (f" ({unk} unknown characters)" if unk else ""))
        return
    from dataclasses import replace

    from suite.apps.text.compress import START, settings_of
    from suite.cli_common import counter
    from suite.dyneval import adaptive_score, with_match_model

    settings = settings_of(card)
    ids = vocab.encode(START + text)  # the implicit newline before the text, as the compressor reads it
    t0 = time.perf_counter()
    static = float(adaptive_score(model, ids, replace(settings, lr=0.0, decay=0.0)).mean()) / LN2
    nats = adaptive_score(model, ids, settings, progress=counter("adapting"))
    adapted = float(nats.mean()) / LN2
    mixed = float(with_match_model(ids, nats).mean()) / LN2
    seconds = time.perf_counter() - t0
    if as_json:
        click.echo(json.dumps({"file": file, "chars": len(text), "static_bits_per_char": static,
                               "adapted_bits_per_char": adapted, "adapted_with_match_bits_per_char": mixed,
                               "adapt": settings.to_json(), "unknown_chars": unk, "seconds": round(seconds, 3)}))
    else:
        click.echo(f"{file}: {static:.3f} bits/char static, {adapted:.3f} adapted (dynamic evaluation, "
                   f"lr {settings.lr:g}), {mixed:.3f} with the match model (what compress codes) over "
                   f"{len(text):,} chars" + (f" ({unk} unknown characters)" if unk else ""))


def _read_input(file, out, force):
    """FILE's bytes, after checking OUT can be written (before any work); one-line errors."""
    from suite.fileio import InputTooLargeError, OutputExistsError, check_writable, read_bytes_limited

    try:
        check_writable(out, force)
        return read_bytes_limited(file)
    except (OutputExistsError, InputTooLargeError, OSError) as exc:
        raise fail(exc) from None


@cli.command()
@click.argument("file", type=click.Path())
@click.option("-o", "--out", type=click.Path(dir_okay=False), default=None, help="[default: FILE.lstm]")
@model_option
@click.option("--force", is_flag=True, help="Overwrite OUT.")
@click.option("--json", "as_json", is_flag=True)
def compress(file, out, model_dir, force, as_json):
    """Compress FILE by arithmetic coding with the model as it learns the file (dynamic evaluation).

    Any file works (text outside the model's vocabulary is escaped; a file
    coding cannot shrink is stored). Decompress with the same model on the same
    machine: the result is checked against the original's CRC-32.

    Example: suite text compress module.py -o module.py.lstm
    """
    from suite.apps.text.compress import compress as compress_bytes, model_hash, settings_of
    from suite.cli_common import counter
    from suite.fileio import OutputExistsError, write_bytes

    out = out or f"{file}.lstm"
    data = _read_input(file, out, force)
    model, vocab, card = _load(model_dir)
    t0 = time.perf_counter()
    blob, info = compress_bytes(model, vocab, model_hash(model_dir), data, settings_of(card),
                                progress=counter("compressing"))
    seconds = time.perf_counter() - t0
    try:
        write_bytes(out, blob, force=force)
    except (OutputExistsError, OSError) as exc:
        raise fail(exc) from None
    bpc = 8 * len(blob) / max(info["chars"], 1)
    if as_json:
        click.echo(json.dumps({"file": file, "out": out, "bytes": len(data), "compressed_bytes": len(blob),
                               "chars": info["chars"], "bits_per_char": bpc, "method": info["method"],
                               "escapes": info["escapes"], "seconds": round(seconds, 3)}))
    else:
        click.echo(f"wrote {out}: {len(data):,} -> {len(blob):,} bytes ({bpc:.3f} bits/char, {info['method']}) "
                   f"in {seconds:.1f} s")


@cli.command()
@click.argument("file", type=click.Path())
@click.option("-o", "--out", type=click.Path(dir_okay=False), default=None,
              help="[default: FILE without .lstm]")
@model_option
@click.option("--force", is_flag=True, help="Overwrite OUT.")
@click.option("--json", "as_json", is_flag=True)
def decompress(file, out, model_dir, force, as_json):
    """Restore a file written by `suite text compress` (with the model that compressed it).

    Example: suite text decompress module.py.lstm -o module.py
    """
    from suite.apps.text.compress import CompressError, decompress as decompress_bytes, model_hash
    from suite.cli_common import counter
    from suite.fileio import OutputExistsError, write_bytes

    if out is None:
        if not file.endswith(".lstm"):
            raise click.ClickException(f"{file}: no .lstm suffix to take off; name the output with -o")
        out = file[:-len(".lstm")]
    blob = _read_input(file, out, force)
    model, vocab, _ = _load(model_dir)
    t0 = time.perf_counter()
    try:
        data = decompress_bytes(model, vocab, model_hash(model_dir), blob, progress=counter("decompressing"))
        write_bytes(out, data, force=force)
    except (CompressError, OutputExistsError, OSError) as exc:
        raise fail(exc) from None
    seconds = time.perf_counter() - t0
    if as_json:
        click.echo(json.dumps({"file": file, "out": out, "bytes": len(data), "seconds": round(seconds, 3)}))
    else:
        click.echo(f"wrote {out}: {len(data):,} bytes in {seconds:.1f} s")


@cli.command()
@click.argument("file", type=click.Path())
@click.option("--out", type=click.Path(file_okay=False), required=True, help="Folder for cells.html and cells.png.")
@click.option("--max-chars", type=click.IntRange(100), default=20000, show_default=True)
@model_option
@click.option("--force", is_flag=True, help="Overwrite files in --out.")
@click.option("--json", "as_json", is_flag=True)
def cells(file, out, max_chars, model_dir, force, as_json):
    """Show which single cells track strings, comments, indentation, line position.

    Writes OUT/cells.html (every character coloured by a cell's value) and
    OUT/cells.png, and prints the best cell for each feature with its
    correlation.

    Example: suite text cells suite/cli.py --out cells/
    """
    from suite.apps.text.cells import analyse, write_html, write_png
    from suite.fileio import OutputExistsError, check_writable

    text = _read_text(file)[:max_chars]
    out = Path(out)
    try:
        for name in ("cells.html", "cells.png"):
            check_writable(out / name, force)
    except (OutputExistsError, PermissionError) as exc:
        raise click.ClickException(str(exc)) from None
    model, vocab, _ = _load(model_dir)
    result = analyse(model, vocab, text)
    out.mkdir(parents=True, exist_ok=True)
    write_html(result, out / "cells.html")
    write_png(result, out / "cells.png")
    if as_json:
        click.echo(json.dumps({"file": file, "best": result["best"]}, indent=2))
        return
    for feature, best in result["best"].items():
        click.echo(f"{feature:>18}: layer {best['layer']} cell {best['cell']:>3}  r = {best['r']:+.3f}")
    click.echo(f"wrote {out / 'cells.html'} and {out / 'cells.png'}")


# -- `suite batch text`: bits per character of many files (suite.batch) ----------------------------------
def _batch_load(model_dir=None):
    from suite.apps.text.model import load_model
    from suite.shipped import default_model_dir

    model, vocab, _ = load_model(model_dir or default_model_dir("text"))
    return model, vocab


def _batch_run(state, path):
    from suite.apps.text.data import read_text_file
    from suite.apps.text.model import LN2, score_ids
    from suite.lm import SCORE_STREAMS

    model, vocab = state
    text = read_text_file(path)
    ids = vocab.encode(text)
    return {"chars": len(text), "bits_per_char": score_ids(model, ids, **SCORE_STREAMS) / LN2,
            "unknown_chars": int((ids == vocab.unk_id).sum())}


def batch_job():
    from suite.batch import BatchJob
    from suite.cli_common import option_objects

    return BatchJob("text score", "Bits per character of each text file under the model (as `suite text score`).",
                    (".py", ".txt", ".md", ".rst"), _batch_load, _batch_run, options=option_objects(model_option))
