"""`suite handwriting`: read handwritten lines and pages (conv blocks, a deep BiLSTM, CTC), and write text as pen
strokes (Graves 2013 synthesis).

Parses, calls apps/handwriting (data.py, model.py, lines.py, writer.py, strokes.py), reports; the
train command's body and the option bundles are suite.cli_common's.
"""
import json
import sys
import time
from pathlib import Path

import click

from suite.apps.handwriting import READ_BEAM
from suite.cli_common import (architecture_from_init, command_line, export_source, fail, finish_training,
                              load_or_fail, model_option, prepare_run_dir, run_training, training_options)
from suite.cli_common import counter as _bar
from suite.threads import single_blas_thread

DEFAULT_DATA = "data/handwriting"  # suite.databuild.data_dir("handwriting"), named here so that --help needs no numpy
DEFAULT_RUN_DIR = "runs/handwriting"


def _load(model_dir):
    from suite.apps.handwriting.model import load_model

    return load_or_fail(load_model, "handwriting", model_dir)


@click.group()
def cli():
    """Read handwriting (line or page images to text: conv blocks, deep bidirectional LSTM, CTC), and write it.

    The shipped reader reads English lines in handwriting-like hands, digits and
    punctuation, learnt from handwriting fonts with distortions and real
    handwritten digit scans. The shipped writer draws text as pen strokes in two
    script hands, learnt from the Hershey script fonts.

    \b
    Examples:
      suite handwriting read line.png                 # the text on stdout
      suite handwriting read page.jpg --json          # each line's box, words' x-ranges, confidence
      suite handwriting read scan.png --lines-out cut/    # the cut lines as PNGs, to check
      suite handwriting write "Dear Ada," -o note.png     # text -> pen strokes (PNG or SVG)
      suite handwriting data build && suite handwriting train && suite handwriting export runs/handwriting
    """


@cli.group()
def data():
    """Build the handwriting corpus."""


@data.command("build")
@click.option("--out", type=click.Path(file_okay=False), default=DEFAULT_DATA, show_default=True)
@click.option("--n-train", type=click.IntRange(1), default=40000, show_default=True)
@click.option("--n-valid", type=click.IntRange(1), default=1000, show_default=True)
@click.option("--n-test", type=click.IntRange(1), default=500, show_default=True, help="Lines in each test set.")
@click.option("--digit-fraction", type=click.FloatRange(0, 1), default=0.3, show_default=True,
              help="Share of train/valid lines composed of real digit scans.")
@click.option("--display/--no-display", default=True, show_default=True,
              help="Also train on the display faces of fonts-aenigma that Tesseract reads (a third of font lines).")
@click.option("--glyph-jitter", type=click.FloatRange(0, 1), default=0.0, show_default=True,
              help="Share of training font lines drawn a character at a time, each letter its own size, tilt and "
                   "spacing (more hands from the same fonts; validation and test are unchanged).")
@click.option("--pen", type=click.FloatRange(0, 1), default=0.0, show_default=True,
              help="Share of training font lines redrawn along their centre lines with a round pen of one width, "
                   "as pens write (validation and test are unchanged).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--workers", type=click.IntRange(1), default=2, show_default=True)
@click.option("--force", is_flag=True, help="Replace an existing --out folder.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def data_build(out, n_train, n_valid, n_test, digit_fraction, display, glyph_jitter, pen, seed, workers, force,
               as_json):
    """Draw line images: handwriting fonts (whole hands held out for validation and test) and real digit scans.

    Test sets are written as PNG files with NAME.gt.txt beside each: digits
    (scans training never saw), fonts (hands training never saw) and hershey
    (pen strokes of vector fonts, a kind of hand absent from training).

    Example: suite handwriting data build --n-train 2000 --out data/handwriting-small
    """
    from suite.apps.handwriting.data import build_dataset
    from suite.databuild import DataError, check_data_dir

    try:
        check_data_dir(out, force, "handwriting")
        report = build_dataset(out, n_train=n_train, n_valid=n_valid, n_test=n_test, digit_fraction=digit_fraction,
                               seed=seed, workers=workers, progress=_bar("drawing"), display=display,
                               glyph_jitter=glyph_jitter, pen=pen, command=command_line("handwriting"))
    except (DataError, OSError) as exc:
        raise fail(exc) from None
    if as_json:
        click.echo(json.dumps(report, indent=2))
    else:
        click.echo(f"wrote {out}: " + ", ".join(f"{k} {v}" for k, v in report["counts"].items()))


def _user_splits(folder, quiet):
    """Prepared lines and texts from a user's folder of NAME.png + NAME.gt.txt (or a TSV), 5 % held out."""
    from suite.apps.handwriting.data import clean, read_user_lines
    from suite.apps.handwriting.lines import prepare_line
    from suite.databuild import DataError, holdout_split
    from suite.images import ImageError, read_image

    try:
        rows = read_user_lines(folder)
        if len(rows) < 2:
            raise DataError(f"{folder}: found {len(rows)} line image with text; need at least 2")
    except DataError as exc:
        raise fail(exc) from None
    feats, texts, bar = [], [], _bar("preparing", quiet)
    for i, (path, text, _) in enumerate(rows):
        try:
            line = prepare_line(read_image(path, mode="L"))
        except ImageError as exc:
            raise fail(exc) from None
        if line is not None:
            feats.append(line.columns)
            texts.append(text)
        if bar:
            bar(i + 1, len(rows))
    if len(feats) < 2:
        raise click.ClickException(f"{folder}: fewer than 2 line images hold any ink; check the images")
    train, held = holdout_split(len(feats))
    pick = lambda idx: {"features": [feats[i] for i in idx], "texts": [texts[i] for i in idx]}  # noqa: E731
    return pick(train), pick(held), {"source": str(folder), "lines": len(feats)}, \
        sorted({c for t in texts for c in clean(t)})


def _splits(data_dir, quiet):
    from suite.apps.handwriting.data import load_split, read_report
    from suite.databuild import DataError

    data_dir = Path(data_dir)
    if not data_dir.exists():
        raise click.ClickException(f"{data_dir}: no such folder; run `suite handwriting data build` first or pass "
                                   "--data DIR with line images and NAME.gt.txt files")
    if not (data_dir / "train.npz").exists():
        return _user_splits(data_dir, quiet)
    try:
        train, valid = load_split(data_dir, "train"), load_split(data_dir, "valid")
        report = read_report(data_dir)
    except DataError as exc:
        raise fail(exc) from None
    return train, valid, {"source": str(data_dir), "report_command": report.get("command")}, []


@cli.command()
@click.option("--hidden", type=click.IntRange(8, 2048), default=160, show_default=True,
              help="LSTM units per direction.")
@click.option("--layers", type=click.IntRange(1, 8), default=3, show_default=True)
@click.option("--channels", default="16,32,64", show_default=True,
              help="Conv blocks' channels, comma-separated (the first two are max-pooled).")
@click.option("--dropout", type=click.FloatRange(0, 1, max_open=True), default=0.1, show_default=True)
@click.option("--batch-size", type=click.IntRange(1), default=24, show_default=True)
@click.option("--lm-order", type=click.IntRange(0, 10), default=5, show_default=True,
              help="Character n-gram LM for beam search, from the training texts (0 = none; order 6 is ~9x order 5's size).")
@click.option("--no-augment", is_flag=True, help="No ink-strength and noise changes to training lines.")
@click.option("--geometry", type=click.FloatRange(0, 1), default=0.0, show_default=True,
              help="Share of training lines drawn narrower or wider (x0.65-1.5) and with smaller glyphs (x0.6-1): "
                   "robustness to hands unlike the training fonts.")
@click.option("--warp", type=click.FloatRange(0, 1), default=0.0, show_default=True,
              help="Share of training lines redrawn each time they are met: a slant of up to 0.25 either way and "
                   "a random smooth distortion (robustness to hands unlike the training fonts).")
@click.option("--init", "init_dir", type=click.Path(file_okay=False), default=None,
              help="Start from this handwriting model (fine-tuning), e.g. data/models/handwriting.")
@training_options(steps=20000, eval_every=1000, lr=1e-3, data=DEFAULT_DATA, out=DEFAULT_RUN_DIR,
                  data_help="A built corpus, or a folder of line images with NAME.gt.txt beside each "
                            "(or a TSV of image<TAB>text).")
@click.pass_context
def train(ctx, data_dir, out, hidden, layers, channels, dropout, batch_size, lm_order, no_augment, geometry, warp,
          init_dir, **opts):
    """Train the line recogniser; the best model by validation CTC loss is kept.

    \b
    Examples:
      suite handwriting train --minutes 60 --export data/models/handwriting
      suite handwriting train --data my-lines/ --init data/models/handwriting --lr 3e-4 --steps 2000
    """
    from suite.apps.handwriting.data import CHARS, clean
    from suite.apps.handwriting.model import (HandwritingConfig, HandwritingModel, HandwritingTask, alphabet_of,
                                              config_dict, fit_lm, take_weights)
    from suite.ctc_task import Alphabet

    try:
        channels = [int(c) for c in channels.split(",")]
        if len(channels) < 2 or not all(1 <= c <= 512 for c in channels):
            raise ValueError
    except ValueError:
        raise click.BadParameter("give two or more channel counts from 1 to 512, e.g. 16,32,64",
                                 param_hint="--channels") from None
    architecture = {"hidden": hidden, "layers": layers, "channels": channels, "dropout": dropout}
    init_model = init_card = None
    if init_dir is not None:
        init_model, init_card = _load(init_dir)
        architecture = architecture_from_init(ctx, architecture, init_card)
    out = prepare_run_dir(out, opts["resume"], opts["force"], opts["export"])
    train_split, valid_split, source, user_chars = _splits(data_dir, opts["quiet"])
    chars = list(alphabet_of(init_card).chars) if init_card else list(CHARS)
    chars += [c for c in user_chars if c not in chars]  # a character new in the user's data gets an output
    alphabet = Alphabet.from_chars(chars, normalize=clean)
    config = HandwritingConfig(vocab_size=len(chars), seed=opts["seed"], **architecture)
    model = HandwritingModel(config)
    if init_model is not None:
        take_weights(model, init_model)
    task = HandwritingTask(train_split, valid_split, alphabet, batch_size=batch_size, augment_lines=not no_augment,
                            geometry=geometry, warp=warp)
    lm = fit_lm(train_split["texts"], alphabet, lm_order)
    meta = {"alphabet": chars, "data": source, "train_lines": len(train_split["texts"]),
            "lm": lm.to_dict() if lm else None, "lm_order": lm_order, "geometry": geometry, "warp": warp,
            "decoding": {"beam": READ_BEAM, "lm_weight": 0.5, "bonus": 0.0}}
    if init_card is not None:
        meta["init"] = {"from": str(init_dir), "step": init_card["meta"].get("step"),
                        "train_lines": init_card["meta"].get("train_lines")}
    summary = run_training("handwriting", model, task, config_dict(config), meta, out=out, init=init_dir,
                           describe_eval=lambda r: f"valid CTC {r['loss']:.4f}, greedy CER "
                                                   f"{r.get('cer', float('nan')):.4f}, WER "
                                                   f"{r.get('wer', float('nan')):.4f}", one_blas_thread=True, **opts)
    if opts["export"]:
        summary["card"] = _export(out / "best", opts["export"], data_dir, None, opts["quiet"])
    finish_training(summary, opts["as_json"],
                    f"best validation CER {summary['valid'].get('cer', float('nan')):.4f} (greedy)", opts["export"])


def _export(best, out, data_dir, export_command, quiet, lm_order=None):
    from suite.apps.handwriting.model import export_model

    try:
        with single_blas_thread():  # evaluation reads one line at a time
            return export_model(best, out, data_dir, export_command=export_command, progress=_bar("evaluating", quiet),
                                lm_order=lm_order)
    except (ValueError, OSError) as exc:
        raise fail(exc) from None


@cli.command("export")
@click.argument("run", type=click.Path(file_okay=False))
@click.option("--out", type=click.Path(file_okay=False), default="data/models/handwriting", show_default=True)
@click.option("--data", "data_dir", type=click.Path(file_okay=False), default=DEFAULT_DATA, show_default=True,
              help="The built corpus whose test sets are evaluated.")
@click.option("--lm-order", type=click.IntRange(0, 10), default=None,
              help="Refit the character LM on --data's training texts with this order [default: keep the model's].")
@click.option("--force", is_flag=True, help="Replace an existing --out folder.")
@click.option("--json", "as_json", is_flag=True, help="Print the card as JSON.")
def export_cmd(run, out, data_dir, lm_order, force, as_json):
    """Export a trained model (RUN/best) with a card of held-out CER/WER per test set, Tesseract beside it.

    Example: suite handwriting export runs/handwriting --out data/models/handwriting --force
    """
    best = export_source(run, out, force)
    card = _export(best, out, data_dir, command_line("handwriting"), False, lm_order=lm_order)
    if as_json:
        click.echo(json.dumps(card, indent=2))
        return
    for name, m in card["metrics"]["test"].items():
        peer = m.get("tesseract")
        click.echo(f"{name:>10}: CER {m['cer']:.4f}  WER {m['wer']:.4f}  exact {m['exact']:.3f}" +
                   (f"   tesseract CER {peer['cer']:.4f}" if peer else ""))
    click.echo(f"exported {best} to {out}")


@cli.command()
@click.argument("tsv", type=click.Path(dir_okay=False))
@model_option
@click.option("--beam", type=click.IntRange(1, 256), default=READ_BEAM, show_default=True,
              help="1 = greedy decoding.")
@click.option("--no-lm", is_flag=True, help="Decode without the character language model.")
@click.option("--against", type=click.Choice(["tesseract"]), default=None,
              help="Also run this peer on the same images and report both.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def evaluate(tsv, model_dir, beam, no_lm, against, as_json):
    """CER, WER and exact lines on the images listed in TSV (image<TAB>text[<TAB>hand]), by hand.

    Example: suite handwriting evaluate data/handwriting/test/fonts/lines.tsv --against tesseract
    """
    from suite.apps.handwriting.model import Reader, evaluate_folder, tesseract_folder
    from suite.databuild import DataError

    model, card = _load(model_dir)
    try:
        with single_blas_thread():
            reports = {"suite": evaluate_folder(Reader(model, card, beam=beam, use_lm=not no_lm), tsv,
                                                progress=_bar("reading"))}
        if against == "tesseract":
            reports["tesseract"] = tesseract_folder(tsv, progress=_bar("tesseract"))
    except (DataError, OSError) as exc:
        raise fail(exc) from None
    if as_json:
        click.echo(json.dumps(reports if against else reports["suite"], indent=2))
        return
    for name, r in reports.items():
        click.echo(f"{name:>10}: CER {r['cer']:.4f}  WER {r['wer']:.4f}  exact {r['exact']:.3f}  "
                   f"({r['utterances']} lines, {r['seconds_per_line'] * 1000:.0f} ms a line)")
        for hand, m in r.get("by_hand", {}).items():
            click.echo(f"            {hand}: CER {m['cer']:.4f}  WER {m['wer']:.4f}  ({m['utterances']})")


def read_options(fn):
    """--model, --beam, --no-lm, --layout: what read and `suite batch handwriting` share."""
    fn = click.option("--layout", type=click.Choice(["auto", "line", "page"]), default="auto", show_default=True,
                      help="line: the image is one text line; page/auto: cut it into lines first.")(fn)
    fn = click.option("--no-lm", is_flag=True, help="Decode without the character language model.")(fn)
    fn = click.option("--beam", type=click.IntRange(1, 256), default=READ_BEAM, show_default=True,
                      help="1 = greedy decoding.")(fn)
    return model_option(fn)


@cli.command()
@click.argument("images", nargs=-1, required=True, type=click.Path(dir_okay=False))
@read_options
@click.option("--lines-out", type=click.Path(file_okay=False), default=None,
              help="Write each cut line as a PNG here (FILE-STEM-001.png ...), as the model saw it.")
@click.option("--force", is_flag=True, help="Write into an existing --lines-out folder, replacing its files.")
@click.option("--json", "as_json", is_flag=True,
              help="One JSON object per image: text, confidence, and each line's box and words' x-ranges.")
def read(images, model_dir, beam, no_lm, layout, lines_out, force, as_json):
    """Read handwritten text from images (any format Pillow opens: PNG, JPEG, TIFF, 16-bit, palette...).

    A page is cut into lines (deskewed, binarised, projection profiles) and read
    top to bottom; dark ink on light paper or the inverse. A file that cannot be
    read is reported on stderr; the others are still read and the exit code is 1.

    \b
    Examples:
      suite handwriting read line.png
      suite handwriting read a.png b.jpg --json --beam 16
      suite handwriting read page.png --lines-out cut/
    """
    from suite.apps.handwriting.model import Reader
    from suite.images import ImageError

    model, card = _load(model_dir)
    made = _lines_folder(lines_out, force)
    reader = Reader(model, card, beam=beam, use_lm=not no_lm)
    failed = 0
    try:
        with single_blas_thread():
            for path in images:
                t0 = time.perf_counter()
                try:
                    result, lines = reader.read_file(path, layout, with_lines=True)
                    if lines_out:
                        _write_lines(path, lines, result, lines_out)
                except ImageError as exc:
                    click.echo(f"Error: {str(exc).splitlines()[0]}", err=True)
                    failed += 1
                    continue
                except OSError as exc:
                    raise fail(exc) from None
                result["seconds"] = round(time.perf_counter() - t0, 3)
                if as_json:
                    click.echo(json.dumps(result))
                elif len(images) > 1:
                    click.echo(f"{path}\t" + result["text"].replace("\n", " / "))
                else:
                    click.echo(result["text"])
    finally:
        if made and not any(Path(lines_out).iterdir()):
            Path(lines_out).rmdir()  # nothing was cut: leave no empty folder behind
    if failed:
        sys.exit(1)


def _lines_folder(folder, force):
    """Check (and make) the --lines-out folder before any image is read; True if this call made it."""
    if folder is None:
        return False
    folder = Path(folder)
    if folder.exists():
        if not force:
            raise click.ClickException(f"{folder} already exists; pass --force to write into it, or choose another "
                                       "--lines-out folder")
        if not folder.is_dir():
            raise click.ClickException(f"{folder} is a file; --lines-out names a folder")
        return False
    try:
        folder.mkdir(parents=True)
    except OSError as exc:
        raise fail(exc) from None
    return True


def _write_lines(path, lines, result, folder):
    """The cut lines of ``path`` as PNGs (dark ink on white, as the model saw them), named after the file."""
    from PIL import Image

    from suite.fileio import atomic_path

    for i, (line, info) in enumerate(zip(lines, result["lines"]), 1):
        target = Path(folder) / f"{Path(path).stem}-{i:03d}.png"
        with atomic_path(target, force=True, suffix=".png") as tmp:
            Image.fromarray(255 - line.columns.T).save(tmp, format="PNG")
        info["image"] = str(target)


# -- `suite batch handwriting`: read many images (suite.batch) ---------------------------------------------
def _batch_load(model_dir=None, beam=READ_BEAM, no_lm=False, layout="auto"):
    import numpy as np

    from suite.apps.handwriting.model import Reader, load_model
    from suite.shipped import default_model_dir

    model, card = load_model(model_dir or default_model_dir("handwriting"))
    reader = Reader(model, card, beam=beam, use_lm=not no_lm)
    line = np.full((40, 120), 255, np.uint8)
    line[15:25, 10:110] = 0
    reader.read_gray(line, "line")  # compile
    return reader, layout


def _batch_run(state, path):
    reader, layout = state
    result = reader.read_file(path, layout)
    result.pop("file")
    return result


def batch_job():
    from suite.batch import BatchJob
    from suite.cli_common import option_objects
    from suite.images import SUFFIXES

    return BatchJob("handwriting read", "Read handwritten line or page images (as `suite handwriting read`).",
                    SUFFIXES, _batch_load, _batch_run, options=option_objects(read_options))


# -- writing (Graves 2013 synthesis) ---------------------------------------------------------------------------

WRITER_RUN_DIR = "runs/handwriting-writer"
WRITER_MODEL = "handwriting-writer"  # data/models/handwriting-writer: the writer's own shipped folder


def _load_writer(model_dir):
    from suite.apps.handwriting.writer import load_writer

    return load_or_fail(load_writer, WRITER_MODEL, model_dir)


@cli.group()
def writer():
    """Train and export the writer that `suite handwriting write` draws with (Graves 2013 synthesis).

    \b
    Examples:
      suite handwriting writer train --minutes 60
      suite handwriting writer export runs/handwriting-writer --out data/models/handwriting-writer
    """


@writer.command("train")
@click.option("--hidden", type=click.IntRange(8, 1024), default=128, show_default=True, help="Units of each LSTM.")
@click.option("--mixtures", type=click.IntRange(1, 64), default=20, show_default=True,
              help="Bivariate Gaussians of the pen-offset output.")
@click.option("--bumps", type=click.IntRange(1, 32), default=10, show_default=True,
              help="Gaussians of the soft window over the text.")
@click.option("--batch-size", type=click.IntRange(1), default=32, show_default=True)
@click.option("--max-chars", type=click.IntRange(4, 80), default=20, show_default=True,
              help="Longest training text (whole words).")
@training_options(steps=12000, eval_every=500, lr=1e-3, out=WRITER_RUN_DIR)
def writer_train(hidden, mixtures, bumps, batch_size, max_chars, out, **opts):
    """Train the writer on Hershey script strokes (jittered afresh every step) writing English text pieces.

    The pieces come from the reader's text splits (`data.text_pieces`): training texts here, validation
    texts for the validation NLL, test texts for the card's legibility figures.

    \b
    Example:
      suite handwriting writer train --minutes 60 --export data/models/handwriting-writer
    """
    from suite.apps.handwriting.data import text_pieces
    from suite.apps.handwriting.strokes import HANDS
    from suite.apps.handwriting.writer import WriterConfig, WriterModel, WriterTask, config_dict, writer_chars

    out = prepare_run_dir(out, opts["resume"], opts["force"], opts["export"])
    chars = writer_chars()
    pieces = text_pieces()
    config = WriterConfig(vocab_size=len(chars), hidden=hidden, mixtures=mixtures, bumps=bumps, seed=opts["seed"])
    task = WriterTask(pieces["train"], pieces["valid"], chars, config, batch_size=batch_size, max_chars=max_chars)
    meta = {"chars": chars, "hands": list(HANDS), "max_chars": max_chars, "batch_size": batch_size,
            "data": {"strokes": "Hershey script faces " + ", ".join(HANDS) + " (pip Hershey-Fonts), jittered",
                     "texts": "suite.apps.handwriting.data.text_pieces (Python reference manual and licence "
                              "prose), train split"}}
    summary = run_training("handwriting", WriterModel(config), task, config_dict(config), meta, out=out,
                           describe_eval=lambda r: f"valid NLL {r['loss']:.4f} nats a point", **opts)
    if opts["export"]:
        summary["card"] = _export_writer(out / "best", opts["export"], None, opts["quiet"])
    finish_training(summary, opts["as_json"], f"best validation NLL {summary['valid']['loss']:.4f} nats a point",
                    opts["export"])


def _export_writer(best, out, export_command, quiet, **legibility):
    from suite.apps.handwriting.writer import export_writer

    try:
        with single_blas_thread():
            return export_writer(best, out, export_command=export_command, progress=_bar("writing", quiet),
                                 **legibility)
    except (ValueError, OSError) as exc:
        raise fail(exc) from None


@writer.command("export")
@click.argument("run", type=click.Path(file_okay=False))
@click.option("--out", type=click.Path(file_okay=False), default=f"data/models/{WRITER_MODEL}", show_default=True)
@click.option("--texts", "n_texts", type=click.IntRange(1, 1000), default=100, show_default=True,
              help="Held-out texts each hand writes at each bias for the legibility table.")
@click.option("--biases", default="0,0.5,1,2,5", show_default=True, help="Sampling biases to measure, comma-separated.")
@click.option("--reader", "reader_dir", type=click.Path(file_okay=False), default=None,
              help="Reader model that scores legibility [default: the shipped reader].")
@click.option("--force", is_flag=True, help="Replace an existing --out folder.")
@click.option("--json", "as_json", is_flag=True, help="Print the card as JSON.")
def writer_export(run, out, n_texts, biases, reader_dir, force, as_json):
    """Export a trained writer (RUN/best) with a card: test NLL and legibility by sampling bias, read by the
    shipped reader, beside the Hershey faces themselves.

    Example: suite handwriting writer export runs/handwriting-writer --out data/models/handwriting-writer --force
    """
    try:
        biases = tuple(float(b) for b in biases.split(","))
        if not all(0 <= b <= 20 for b in biases):
            raise ValueError
    except ValueError:
        raise click.BadParameter("give biases from 0 to 20, comma-separated, e.g. 0,1,2", param_hint="--biases") \
            from None
    best = export_source(run, out, force)
    card = _export_writer(best, out, command_line("handwriting"), False, n_texts=n_texts, biases=biases,
                          reader_dir=reader_dir)
    if as_json:
        click.echo(json.dumps(card, indent=2))
        return
    table = card["metrics"]["legibility"]
    click.echo(f"test NLL {card['metrics']['test_nll_per_point']:.4f} nats a point")
    click.echo(f"reader CER on the Hershey faces themselves: {table['hershey']['cer']:.4f}")
    for bias, row in table["written"].items():
        click.echo(f"bias {bias:>4}: reader CER {row['cer']:.4f}  WER {row['wer']:.4f}")
    click.echo(f"exported {best} to {out}")


@cli.command()
@click.argument("text")
@click.option("-o", "--out", required=True, type=click.Path(dir_okay=False),
              help="Output file: .png (black on white) or .svg (one polyline per stroke).")
@click.option("--hand", type=click.Choice(["scripts", "scriptc"]), default="scripts", show_default=True,
              help="Which learnt hand (the Hershey script face it learnt from).")
@click.option("--bias", type=click.FloatRange(0, 20), default=1.0, show_default=True,
              help="Sampling bias (Graves 2013): 0 samples the model as trained; higher is neater and plainer.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--height", type=click.IntRange(16, 512), default=96, show_default=True,
              help="Pixels per line of writing (the PNG's scale; the SVG's too).")
@model_option
@click.option("--force", is_flag=True, help="Overwrite --out if it exists.")
@click.option("--json", "as_json", is_flag=True, help="Print what was written as JSON.")
def write(text, out, hand, bias, seed, height, model_dir, force, as_json):
    """Write TEXT in handwriting (a pen-stroke LSTM, Graves 2013) to a PNG or SVG.

    Lines of TEXT are separated by newlines; long lines are written in pieces
    of a few words, side by side. Letters, digits, space and common punctuation.

    \b
    Examples:
      suite handwriting write "The quick brown fox" -o fox.png
      suite handwriting write "Dear Ada," -o note.svg --hand scriptc --bias 2 --seed 3
      suite handwriting read fox.png        # our reader reads it back
    """
    from suite.fileio import OutputExistsError, atomic_path, check_writable

    suffix = Path(out).suffix.lower()
    if suffix not in (".png", ".svg"):
        raise click.BadParameter(f"{out}: give a .png or .svg file name", param_hint="-o/--out")
    try:
        check_writable(out, force=force)
    except (OutputExistsError, PermissionError) as exc:
        raise fail(exc) from None
    from suite.apps.handwriting.strokes import HANDS, draw_png, svg
    from suite.apps.handwriting.writer import write_text

    model, card = _load_writer(model_dir)
    t0 = time.perf_counter()
    try:
        strokes, pieces = write_text(model, card, text, hand=HANDS.index(hand), bias=bias, seed=seed)
    except ValueError as exc:
        raise fail(exc) from None
    if not strokes:
        raise click.ClickException("TEXT is empty: give something to write")
    try:
        with atomic_path(out, force=force, suffix=suffix) as tmp:
            if suffix == ".svg":
                tmp.write_text(svg(strokes, height=height), encoding="utf-8")
            else:
                from PIL import Image

                Image.fromarray(draw_png(strokes, height=height)).save(tmp, format="PNG")
    except OSError as exc:
        raise fail(exc) from None
    result = {"file": out, "text": text, "hand": hand, "bias": bias, "seed": seed, "strokes": len(strokes),
              "points": int(sum(len(s) for s in strokes)), "pieces": pieces,
              "seconds": round(time.perf_counter() - t0, 3)}
    if as_json:
        click.echo(json.dumps(result))
    else:
        click.echo(f"wrote {out} ({result['strokes']} strokes, {result['points']} points)")
