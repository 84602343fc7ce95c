"""`suite caption`: describe images with a CNN encoder, soft attention and an LSTM decoder.

Parses, calls apps/caption (data.py, model.py), reports; the train command's
body and the option bundles are suite.cli_common's.
"""
import json
import sys
import time
from pathlib import Path

import click

from suite.cli_common import (command_line, default_command_group, export_source, fail, finish_training,
                              load_or_fail, model_option, prepare_run_dir, run_training, training_options)
from suite.cli_common import counter as _bar
from suite.databuild import data_dir as _data_dir

DEFAULT_DATA = str(_data_dir("caption"))  # data/caption under the working folder
DEFAULT_RUN_DIR = "runs/caption"
DEFAULT_MODEL_OUT = "data/models/caption"
BEAM_OPTION = click.option("--beam", type=click.IntRange(1, 64), default=5, show_default=True, help="1 = greedy decoding.")


def _load(model_dir):
    from suite.apps.caption.model import load_model

    return load_or_fail(load_model, "caption", model_dir)


@click.group(cls=default_command_group("describe"))  # `suite caption IMAGE` = `suite caption describe IMAGE`
def cli():
    """Describe images: CNN encoder, additive attention, LSTM decoder, beam search.

    The shipped model knows the "shapes world": circles, squares and triangles
    in six colours and two sizes, and where they stand (left of, right of,
    above, below).

    \b
    Examples:
      suite caption scene.png                        # one caption on stdout
      suite caption a.png b.jpg --json --beam 5      # caption, log-prob and beams
      suite caption scene.png --attention att.png    # where it looked, word by word
      suite caption data build && suite caption train && suite caption evaluate
    """


@cli.command()
@click.argument("images", nargs=-1, required=True, type=click.Path(dir_okay=False))
@BEAM_OPTION
@model_option
@click.option("--attention", "attention_out", type=click.Path(dir_okay=False), default=None,
              help="Draw each word's attention over the image to this PNG (several images: OUT-1.png, ...).")
@click.option("--force", is_flag=True, help="Overwrite existing --attention files.")
@click.option("--json", "as_json", is_flag=True,
              help="One JSON object per image: caption, log-prob, a calibrated confidence, beams.")
def describe(images, beam, model_dir, attention_out, force, as_json):
    """Caption images (any format Pillow reads; large photos are shrunk on load).

    An image that cannot be read is reported on stderr; the others are still
    captioned and the exit code is 1.

    Example: suite caption describe scene.png --beam 5
    """
    from suite.apps.caption.data import ImageError, load_image
    from suite.apps.caption.model import caption_image
    from suite.fileio import OutputExistsError, check_writable

    model, vocab, card = _load(model_dir)
    targets = {}
    if attention_out:
        base = Path(attention_out)
        for i, path in enumerate(images, 1):
            targets[path] = base if len(images) == 1 else base.with_name(f"{base.stem}-{i}{base.suffix or '.png'}")
        try:
            for t in targets.values():
                check_writable(t, force=force)
        except (OutputExistsError, OSError) as exc:
            raise fail(exc) from None
    failed = 0
    for path in images:
        t0 = time.perf_counter()
        try:
            image = load_image(path, size=model.config.input_size)
        except ImageError as exc:
            click.echo(f"Error: {str(exc).splitlines()[0]}", err=True)
            failed += 1
            continue
        beams = caption_image(model, vocab, image, beam=beam)
        best = beams[0]
        if attention_out:
            from suite.apps.caption.plot import attention_figure

            attention_figure(path, best["caption"], best["attention"], targets[path], grid=model.grid)
            if not as_json:  # several images get OUT-1.png, OUT-2.png...: say which is which
                click.echo(f"attention for {path}: {targets[path]}", err=True)
        if as_json:
            from suite.apps.caption.model import confidence as caption_confidence

            p = caption_confidence((card.get("meta") or {}).get("calibration"), beams)
            confidence = None if p is None else round(float(p), 4)
            click.echo(json.dumps({"file": path, "caption": best["caption"],
                                   "log_prob": round(best["log_prob"], 4), "confidence": confidence,
                                   "beams": [{"caption": b["caption"], "log_prob": round(b["log_prob"], 4)}
                                             for b in beams],
                                   "attention_png": str(targets[path]) if attention_out else None,
                                   "seconds": round(time.perf_counter() - t0, 4)}))
        else:
            click.echo(f"{path}\t{best['caption']}" if len(images) > 1 else best["caption"])
    if failed:
        sys.exit(1)


@cli.group()
def data():
    """Build the shapes-world dataset."""


@data.command("build")
@click.option("--out", type=click.Path(file_okay=False), default=DEFAULT_DATA, show_default=True)
@click.option("--n", "n_train", type=click.IntRange(1), default=20000, show_default=True, help="Training images.")
@click.option("--n-valid", type=click.IntRange(1), default=1000, show_default=True)
@click.option("--n-test", type=click.IntRange(1), default=1000, show_default=True,
              help="Images in each of the test, held-out-combination and other-style splits.")
@click.option("--all-combos", is_flag=True,
              help="Every colour-shape pair in train/valid/test (the shipped model's data); by default three pairs "
                   "are held out for the compositional experiment.")
@click.option("--twins", type=click.FloatRange(0, 1), default=0.0, show_default=True,
              help="Chance that a scene of 2-3 objects holds two of one description (\"two large red circles\").")
@click.option("--outlines", type=click.FloatRange(0, 1), default=0.0, show_default=True,
              help="Chance that a train image draws its shapes hollow (a coloured outline, no fill), as drawn with "
                   "a pen; the other splits never do, so they are those built without it.")
@click.option("--input-size", type=click.IntRange(16, 512), default=64, show_default=True,
              help="Side of the stored (letterboxed, square) images, a multiple of 16; a model trained on them "
                   "reads this many pixels (128 gives a small shape in a small image four times the pixels).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--workers", type=click.IntRange(1), default=2, show_default=True)
@click.option("--force", is_flag=True, help="Replace an existing --out folder.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def data_build(out, n_train, n_valid, n_test, all_combos, twins, outlines, input_size, seed, workers, force,
               as_json):
    """Render shapes-world scenes with several reference captions each.

    A few colour-shape combinations never appear in train/valid/test; the
    'combo' split holds them (compositional generalisation), the 'alt' split
    is drawn in another style (robustness). With --all-combos every pair is in
    every split, and 'combo' holds scenes with those pairs all the same.

    \b
    Examples:
      suite caption data build --n 2000 --seed 1 --out data/caption-small
      suite caption data build --all-combos --twins 0.2 --out data/caption-count   # with counting
      suite caption data build --all-combos --twins 0.2 --outlines 0.2 --out data/caption-hollow
      suite caption data build --all-combos --twins 0.2 --outlines 0.25 --input-size 128 --out data/caption-128
    """
    from suite.apps.caption.data import build_dataset
    from suite.databuild import check_data_dir

    try:
        check_data_dir(out, force, "caption")
        report = build_dataset(out, n_train=n_train, n_valid=n_valid, n_test=n_test, n_combo=n_test, seed=seed,
                               workers=workers, progress=_bar("rendering"), command=command_line("caption"),
                               hold_out=not all_combos, twins=twins, outlines=outlines, input_size=input_size)
    except (ValueError, OSError) as exc:
        raise fail(exc) from None
    if as_json:
        click.echo(json.dumps(report, indent=2))
    else:
        click.echo(f"wrote {out}: " + ", ".join(f"{k} {v}" for k, v in (report.get("counts") or {}).items()))


@cli.command()
@click.option("--images", "images_dir", type=click.Path(file_okay=False), default=None,
              help="Your own images (with --captions), instead of --data.")
@click.option("--captions", "captions_file", type=click.Path(dir_okay=False), default=None,
              help="Flickr8k-style file: image name<TAB>caption, several lines per image.")
@click.option("--channels", default="24,48,64", show_default=True, help="Conv channels, one pooling block each.")
@click.option("--hidden", type=click.IntRange(8, 2048), default=192, show_default=True)
@click.option("--embed", type=click.IntRange(4, 1024), default=48, show_default=True)
@click.option("--attn", type=click.IntRange(4, 1024), default=64, show_default=True)
@click.option("--dropout", type=click.FloatRange(0, 1, max_open=True), default=0.1, show_default=True)
@click.option("--batch-size", type=click.IntRange(1), default=32, show_default=True)
@click.option("--first-caption-only", is_flag=True,
              help="Learn each image's first reference only (shapes world: the canonical wording).")
@click.option("--init", "init_dir", type=click.Path(file_okay=False), default=None,
              help="Fine-tune: start from this caption model's weights (its architecture and vocabulary).")
@click.option("--word-dropout", type=click.FloatRange(0, 1, max_open=True), default=0.0, show_default=True,
              help="Chance that an input word is fed as unknown while training, so the next word must come from "
                   "the image (helps unseen colour-shape pairs).")
@click.option("--factored", is_flag=True,
              help="Choose each size, colour and shape word from the attended image region alone, the decoder only "
                   "saying which kind of word comes (a class-factored output; for unseen colour-shape pairs).")
@training_options(steps=8000, data=DEFAULT_DATA, data_help="A built shapes-world dataset.", out=DEFAULT_RUN_DIR)
def train(data_dir, images_dir, captions_file, out, channels, hidden, embed, attn, dropout, batch_size,
          first_caption_only, init_dir, word_dropout, factored, **opts):
    """Train the captioner; the best model by validation loss per word is kept.

    \b
    Examples:
      suite caption train --minutes 60 --export data/models/caption
      suite caption train --images photos/ --captions captions.tsv --out runs/mine
      suite caption train --data data/caption-all --init data/models/caption --lr 5e-4 --out runs/ft
      suite caption train --first-caption-only --word-dropout 0.25 --out runs/combo-wd
      suite caption train --first-caption-only --factored --out runs/combo-factored
    """
    from suite.apps.caption.data import INPUT_SIZE, tokenize, training_data, user_training_data
    from suite.apps.caption.model import (CaptionConfig, CaptionModel, CaptionTask, at_input_size, build_vocab,
                                          config_dict, export_model, factored_classes, grow_vocab)

    try:
        channels = [int(c) for c in channels.split(",")]
    except ValueError:
        raise click.BadParameter(f"expected comma-separated integers, got {channels!r}", param_hint="--channels")
    if (images_dir is None) != (captions_file is None):
        raise click.UsageError("--images and --captions go together")
    out = prepare_run_dir(out, opts["resume"], opts["force"], opts["export"])
    model = init_vocab = init_card = None
    if init_dir and factored:
        raise click.UsageError("--factored builds a new model; with --init the model's own output is kept")
    if init_dir:
        model, init_vocab, init_card = _load(init_dir)
    try:
        if images_dir:  # read at the size of the model fine-tuned, else the default
            (tr_img, tr_refs), (va_img, va_refs), source = user_training_data(
                images_dir, captions_file, model.config.input_size if model else INPUT_SIZE,
                progress=_bar("loading images", opts["quiet"]))
        else:
            (tr_img, tr_refs), (va_img, va_refs), source = training_data(data_dir)
    except (ValueError, OSError, KeyError) as exc:
        raise fail(exc) from None
    vocab = build_vocab(tr_refs, tokenize)
    size = int(tr_img.shape[-1])  # the model reads images at the size the data holds them
    if init_dir:
        # words of these captions the model never said (e.g. "two", "circles" for counting) get new outputs
        model, vocab = grow_vocab(model, init_vocab, [w for w in vocab.words if w not in init_vocab.index])
        model = at_input_size(model, size)  # e.g. a 64-px model fine-tuned on a 128-px dataset
        config = model.config
    else:
        config = CaptionConfig(vocab_size=vocab.size, input_size=size, channels=channels, embed=embed,
                               hidden=hidden, attn=attn, dropout=dropout, seed=opts["seed"],
                               factored=factored_classes(vocab) if factored else [])
        try:
            model = CaptionModel(config)
        except ValueError as exc:
            raise fail(exc) from None
    task = CaptionTask(vocab, tr_img, tr_refs, va_img, va_refs, batch_size=batch_size, tokenize=tokenize,
                       first_only=first_caption_only, word_dropout=word_dropout)
    meta = {"vocab": vocab.to_json(), "data": source, "train_images": len(tr_img),
            "first_caption_only": first_caption_only, "word_dropout": word_dropout,
            "init": {"from": str(init_dir), "step": init_card["meta"].get("step")} if init_dir else None}
    summary = run_training("caption", model, task, config_dict(config), meta, out=out, init=init_dir,
                           describe_eval=lambda r: f"valid loss {r['loss']:.4f} nats/word", one_blas_thread=True,
                           **opts)
    if opts["export"]:
        try:
            summary["card"] = export_model(out / "best", opts["export"], None if images_dir else data_dir,
                                           summary["command"], progress_for=_progress_for(opts["quiet"]))
        except (ValueError, OSError, KeyError) as exc:
            raise fail(exc) from None
    finish_training(summary, opts["as_json"], f"best validation loss {summary['best']['loss']:.4f} nats/word",
                    opts["export"])


def _progress_for(quiet):
    """progress_for(split) for model.evaluate: a `captioning SPLIT n/N` counter on a terminal."""
    return lambda split: _bar(f"captioning {split}", quiet)


@cli.command()
@click.argument("run", type=click.Path(file_okay=False))
@click.option("--out", type=click.Path(file_okay=False), default=DEFAULT_MODEL_OUT, show_default=True)
@click.option("--data", "data_dir", type=click.Path(file_okay=False), default=DEFAULT_DATA, show_default=True)
@click.option("--beam", type=click.IntRange(1, 64), default=5, show_default=True)
@click.option("--force", is_flag=True, help="Replace an existing --out folder.")
@click.option("--input-blur", type=click.FloatRange(0, 4), default=None,
              help="Smooth every input image by a Gaussian of this sigma (pixels at the model's input size) "
                   "[default: the best of 0, 0.25, 0.5, 0.75, 1 on the validation split].")
@click.option("--json", "as_json", is_flag=True, help="Print the card as JSON.")
def export(run, out, data_dir, beam, force, input_blur, as_json):
    """Export a trained model (RUN/best) with a card of held-out metrics.

    Example: suite caption export runs/caption --out data/models/caption --force
    """
    from suite.apps.caption.model import export_model

    best = export_source(run, out, force)
    try:
        card = export_model(best, out, data_dir, export_command=command_line("caption"), beam=beam,
                            progress_for=_progress_for(False), input_blur=input_blur)
    except (ValueError, OSError, KeyError) as exc:
        raise fail(exc) from None
    if as_json:
        click.echo(json.dumps(card, indent=2))
    else:
        _print_results({k: v for k, v in card["metrics"].items() if isinstance(v, dict)})
        line = f"input blur {card['config'].get('input_blur', 0.0):g}"
        choice = card["metrics"].get("input_blur_choice")
        if choice:
            tried = ", ".join(f"{s} {m.get('object_set_accuracy', float('nan')):.3f}"
                              for s, m in choice["by_sigma"].items())
            line += f" (the best on validation: {tried} exact objects)"
        click.echo(line)
        click.echo(f"exported {best} to {out}")


def _print_results(results):
    def rate(m, key):  # None (nothing to count, e.g. no object parsed) prints as nan
        value = m.get(key)
        return float("nan") if value is None else value

    for split, r in results.items():
        for who in ("model", "model_twin_scenes", "baseline_nearest_neighbour", "baseline_most_frequent"):
            if who not in r:  # a user's folder without a built train split: no baselines; no twins: no counting
                continue
            m = r[who]
            line = f"{split:>6} {who:<27} BLEU-4 {m['bleu4']['score']:6.2f}"
            if "object_set_accuracy" in m:
                line += (f"  objects {rate(m, 'object_set_accuracy'):.3f}  sizes {rate(m, 'size_accuracy'):.3f}"
                         f"  relations {rate(m, 'relation_accuracy'):.3f}")
            click.echo(line)


@cli.command()
@model_option
@click.option("--data", "data_dir", type=click.Path(file_okay=False), default=DEFAULT_DATA, show_default=True)
@click.option("--split", "splits", multiple=True, default=("test", "combo", "alt", "sketch", "dark"), show_default=True,
              help="Splits to score (repeatable).")
@click.option("--beam", type=click.IntRange(1, 64), default=5, show_default=True)
@click.option("--limit", type=click.IntRange(1), default=None, help="Score only the first N images of each split.")
@click.option("--images", "images_dir", type=click.Path(file_okay=False), default=None,
              help="Score your own folder of images instead (with --captions).")
@click.option("--captions", "captions_file", type=click.Path(dir_okay=False), default=None,
              help="Reference captions of --images: image<TAB>caption lines (Flickr8k style), or image,caption CSV.")
@click.option("--json", "as_json", is_flag=True)
def evaluate(model_dir, data_dir, splits, beam, limit, images_dir, captions_file, as_json):
    """BLEU-4, object-set, size and relation accuracy beside two baselines.

    On built splits the truth is each image's scene; on your own images
    (--images, --captions) it is what your reference captions say.

    \b
    Examples:
      suite caption evaluate --split combo --beam 1
      suite caption evaluate --images my-drawings/ --captions my-drawings/captions.tsv
    """
    from suite.apps.caption.data import CaptionsFileError, ImageError
    from suite.apps.caption.model import evaluate as evaluate_model, evaluate_images

    if (images_dir is None) != (captions_file is None):
        raise click.UsageError("--images and --captions go together")
    model, vocab, _ = _load(model_dir)
    try:
        if images_dir is not None:
            results = evaluate_images(model, vocab, images_dir, captions_file, data_dir, beam,
                                      _progress_for(False)("images"))
        else:
            results = evaluate_model(model, vocab, data_dir, splits, beam, limit, _progress_for(False))
    except (CaptionsFileError, ImageError, ValueError, OSError, KeyError) as exc:
        raise fail(exc) from None
    if as_json:
        click.echo(json.dumps(results, indent=2))
    else:
        _print_results(results)


# -- `suite batch caption`: caption many images (suite.batch) ---------------------------------------------
def _batch_load(model_dir=None, beam=5):
    import numpy as np

    from suite.apps.caption.model import caption_image, load_model
    from suite.shipped import default_model_dir

    model, vocab, _ = load_model(model_dir or default_model_dir("caption"))
    size = model.config.input_size
    caption_image(model, vocab, np.zeros((3, size, size), np.float32), beam=beam)  # compile
    return model, vocab, beam


def _batch_run(state, path):
    from suite.apps.caption.data import load_image
    from suite.apps.caption.model import caption_image

    model, vocab, beam = state
    beams = caption_image(model, vocab, load_image(path, size=model.config.input_size), beam=beam)
    return {"caption": beams[0]["caption"], "log_prob": round(beams[0]["log_prob"], 4)}


def batch_job():
    from suite.batch import BatchJob
    from suite.cli_common import option_objects
    from suite.images import SUFFIXES

    return BatchJob("caption", "Caption images (as `suite caption`).", SUFFIXES, _batch_load, _batch_run,
                    options=option_objects(BEAM_OPTION, model_option))
