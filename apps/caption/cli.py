"""`suite caption`: describe images with a CNN encoder, soft attention and an LSTM decoder."""
import json
import sys
import time
from pathlib import Path

import click

from suite.cli_common import (command_line, export_source, fail, load_or_fail, prepare_run_dir, run_command,
                               training_options)
from suite.cli_common import counter as _bar

DEFAULT_DATA = "data/caption"
DEFAULT_RUN_DIR = "runs/caption"


class CaptionGroup(click.Group):
    """`suite caption IMAGE ...` is short for `suite caption describe IMAGE ...`."""

    def parse_args(self, ctx, args):
        if args and args[0] not in self.commands and args[0] not in ("--help", "-h"):
            args = ["describe", *args]
        return super().parse_args(ctx, args)


def _load(model_dir):
    from suite.apps.caption.model import load_model

    return load_or_fail(load_model, "caption", model_dir)


@click.group(cls=CaptionGroup)
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
@click.option("--beam", type=click.IntRange(1, 64), default=5, show_default=True, help="1 = greedy decoding.")
@click.option("--model", "model_dir", type=click.Path(file_okay=False), default=None,
              help="Model folder [default: the shipped model].")
@click.option("--attention", "attention_out", type=click.Path(dir_okay=False), default=None,
              help="Draw each word's attention over the image to this PNG (several images: OUT-1.png, ...).")
@click.option("--force", is_flag=True, help="Overwrite existing --attention files.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per image: caption, log-prob, beams.")
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
        if as_json:
            click.echo(json.dumps({"file": path, "caption": best["caption"],
                                   "log_prob": round(best["log_prob"], 4),
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
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--workers", type=click.IntRange(1), default=2, show_default=True)
@click.option("--force", is_flag=True, help="Replace an existing --out folder.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def data_build(out, n_train, n_valid, n_test, seed, workers, force, as_json):
    """Render shapes-world scenes with several reference captions each.

    A few colour-shape combinations never appear in train/valid/test; the
    'combo' split holds them (compositional generalisation), the 'alt' split
    is drawn in another style (robustness).

    Example: suite caption data build --n 2000 --seed 1 --out data/caption-small
    """
    from suite.apps.caption.data import build_dataset

    if Path(out).exists() and any(Path(out).iterdir()) and not force:
        raise click.ClickException(f"{out} already exists; pass --force to rebuild it")
    try:
        report = build_dataset(out, n_train=n_train, n_valid=n_valid, n_test=n_test, n_combo=n_test, seed=seed,
                               workers=workers, progress=_bar("rendering"), command=command_line("caption"))
    except (ValueError, OSError) as exc:
        raise fail(exc) from None
    if as_json:
        click.echo(json.dumps(report, indent=2))
    else:
        click.echo(f"wrote {out}: " + ", ".join(f"{k} {v}" for k, v in (report.get("counts") or {}).items()))


def _user_data(images_dir, captions_file, size, quiet):
    """Images and captions of a Flickr8k-style pair (folder, name<TAB>caption file); 5 % held out."""
    import numpy as np

    from suite.apps.caption.data import ImageError, load_image, read_captions_file

    try:
        caps = read_captions_file(captions_file)
    except (ValueError, OSError) as exc:
        raise fail(exc) from None
    names = sorted(caps)
    if len(names) < 2:
        raise click.ClickException(f"{captions_file}: {len(names)} captioned images; need at least 2")
    bar = _bar("loading images", quiet)
    imgs = []
    for i, name in enumerate(names):
        try:
            imgs.append(np.round(load_image(Path(images_dir) / name, size=size) * 255).astype(np.uint8))
        except ImageError as exc:
            raise fail(exc) from None
        if bar:
            bar(i + 1, len(names))
    imgs = np.stack(imgs)
    order = np.random.default_rng(0).permutation(len(names))
    n_valid = max(1, len(names) // 20)
    refs = [caps[n] for n in names]
    split = lambda idx: (imgs[idx], [refs[i] for i in idx])  # noqa: E731
    return split(order[n_valid:]), split(order[:n_valid]), {"images": str(images_dir), "captions": str(captions_file),
                                                            "count": len(names)}


@cli.command()
@click.option("--data", "data_dir", type=click.Path(file_okay=False), default=DEFAULT_DATA, show_default=True,
              help="A built shapes-world dataset.")
@click.option("--images", "images_dir", type=click.Path(file_okay=False), default=None,
              help="Your own images (with --captions), instead of --data.")
@click.option("--captions", "captions_file", type=click.Path(dir_okay=False), default=None,
              help="Flickr8k-style file: image name<TAB>caption, several lines per image.")
@click.option("--out", type=click.Path(file_okay=False), default=DEFAULT_RUN_DIR, show_default=True)
@click.option("--channels", default="24,48,64", show_default=True, help="Conv channels, one pooling block each.")
@click.option("--hidden", type=click.IntRange(8, 2048), default=192, show_default=True)
@click.option("--embed", type=click.IntRange(4, 1024), default=48, show_default=True)
@click.option("--attn", type=click.IntRange(4, 1024), default=64, show_default=True)
@click.option("--dropout", type=click.FloatRange(0, 1, max_open=True), default=0.1, show_default=True)
@click.option("--batch-size", type=click.IntRange(1), default=32, show_default=True)
@click.option("--first-caption-only", is_flag=True,
              help="Learn each image's first reference only (shapes world: the canonical wording).")
@training_options(steps=8000)
def train(data_dir, images_dir, captions_file, out, channels, hidden, embed, attn, dropout, batch_size, steps, minutes,
          lr, eval_every, first_caption_only, seed, resume, force, export, quiet, as_json):
    """Train the captioner; the best model by validation loss per word is kept.

    \b
    Examples:
      suite caption train --minutes 60 --export data/models/caption
      suite caption train --images photos/ --captions captions.tsv --out runs/mine
    """
    from suite.apps.caption.data import load_split, tokenize
    from suite.apps.caption.model import CaptionConfig, CaptionModel, CaptionTask, Vocab, config_dict
    from suite.train import TrainConfig, Trainer

    try:
        channels = [int(c) for c in channels.split(",")]
    except ValueError:
        raise click.BadParameter(f"expected comma-separated integers, got {channels!r}", param_hint="--channels")
    if (images_dir is None) != (captions_file is None):
        raise click.UsageError("--images and --captions go together")
    out = prepare_run_dir(out, resume, force, export)
    size = 64
    if images_dir:
        (tr_img, tr_refs), (va_img, va_refs), source = _user_data(images_dir, captions_file, size, quiet)
    else:
        if not (Path(data_dir) / "train.npz").exists():
            raise click.ClickException(f"{data_dir}: no train.npz; run `suite caption data build` first "
                                       "or pass --images DIR --captions FILE")
        try:
            tr_img, tr_refs, _ = load_split(data_dir, "train")
            va_img, va_refs, _ = load_split(data_dir, "valid")
            source = {"dataset": str(data_dir),
                      "report": json.loads((Path(data_dir) / "dataset.json").read_text())}
        except (ValueError, OSError, KeyError) as exc:
            raise fail(exc) from None
    counts = {}
    for refs in tr_refs:
        for c in refs:
            for w in tokenize(c):
                counts[w] = counts.get(w, 0) + 1
    vocab = Vocab(sorted(w for w, n in counts.items() if n >= (1 if len(counts) < 1000 else 2)))
    config = CaptionConfig(vocab_size=vocab.size, input_size=size, channels=channels, embed=embed, hidden=hidden,
                           attn=attn, dropout=dropout, seed=seed)
    task = CaptionTask(vocab, tr_img, tr_refs, va_img, va_refs, batch_size=batch_size, tokenize=tokenize,
                       first_only=first_caption_only)
    tcfg = TrainConfig(steps=steps, lr=lr, warmup=min(300, steps // 10), eval_every=eval_every,
                       checkpoint_every=min(eval_every, 250), seed=seed)
    deadline = None if minutes is None else time.monotonic() + 60 * minutes
    command = run_command("caption", out, resume)
    meta = {"app": "caption", "vocab": vocab.to_json(), "command": command, "seed": seed,
            "train_config": tcfg.__dict__, "data": source, "train_images": len(tr_img),
            "first_caption_only": first_caption_only}

    def on_eval(record):
        if not quiet:
            click.echo(f"step {record['step']}: valid loss {record['loss']:.4f} nats/word", err=True)

    trainer = Trainer(CaptionModel(config), task, tcfg, out, model_config=config_dict(config), meta=meta,
                      quiet=quiet, on_eval=on_eval,
                      stop_when=(lambda m: time.monotonic() > deadline) if deadline else None)
    summary = trainer.fit(resume=resume)
    if export:
        summary["card"] = _export(out / "best", export, None if images_dir else data_dir, command, quiet)
    if as_json:
        click.echo(json.dumps(summary, indent=2))
    else:
        click.echo(f"stopped after {summary['step']} steps ({summary['stopped']}), {summary['elapsed_s'] / 60:.1f} "
                   f"min; best validation loss {summary['best']['loss']:.4f} nats/word; run in {out}"
                   + (f"; exported to {export}" if export else ""))


def _evaluate(model, vocab, data_dir, splits, beam, limit, quiet):
    """{split: metrics} for the model and, on 'test', the nearest-neighbour and most-frequent baselines."""
    from collections import Counter

    from suite.apps.caption.data import load_split
    from suite.apps.caption.model import caption_images, nearest_neighbour_captions, score_split

    try:
        tr_img, tr_refs, _ = load_split(data_dir, "train")
    except (ValueError, OSError, KeyError) as exc:
        raise fail(exc) from None
    frequent = Counter(r[0] for r in tr_refs).most_common(1)[0][0]
    results = {}
    for split in splits:
        try:
            images, refs, scenes = load_split(data_dir, split)
        except (ValueError, OSError, KeyError) as exc:
            raise fail(exc) from None
        images, refs = images[:limit], refs[:limit]
        scenes = scenes[:limit] if scenes is not None else None
        t0 = time.perf_counter()
        hyps = caption_images(model, vocab, images, beam=beam, progress=_bar(f"captioning {split}", quiet))
        seconds = time.perf_counter() - t0
        results[split] = {"model": score_split(hyps, refs, scenes) | {"seconds_per_image": round(seconds / len(images), 4)},
                          "baseline_nearest_neighbour": score_split(
                              nearest_neighbour_captions(tr_img, tr_refs, images), refs, scenes),
                          "baseline_most_frequent": score_split([frequent] * len(images), refs, scenes),
                          "examples": [{"hyp": h, "refs": r[:2]} for h, r in zip(hyps[:5], refs[:5])]}
    return results


def _step(checkpoint, meta):
    """The training step a checkpoint holds: best/ records it in meta, last/ in trainer.json."""
    trainer = Path(checkpoint) / "trainer.json"
    if meta.get("step") is None and trainer.exists():
        return json.loads(trainer.read_text())["step"]
    return meta.get("step")


def _export(best, out, data_dir, command, quiet, export_command=None, beam=5):
    import datetime

    from suite.apps.caption.model import load_model
    from suite.shipped import publish_model

    try:
        model, vocab, card = load_model(best)
    except (ValueError, OSError) as exc:
        raise fail(exc) from None
    meta = card["meta"]
    metrics = {}
    if data_dir is not None:
        splits = [s for s in ("test", "combo", "alt") if (Path(data_dir) / f"{s}.npz").exists()]
        metrics = _evaluate(model, vocab, data_dir, splits, beam, None, quiet)
    result = {
        "app": "caption",
        "model": "CNN encoder ({} conv3x3+ReLU+maxpool blocks, CoordConv) -> additive attention over the {}x{} grid "
                 "-> LSTM decoder ({} units), beam search".format(len(model.config.channels), model.grid, model.grid,
                                                                  model.config.hidden),
        "config": card["config"],
        "vocab": vocab.to_json(),
        "data": meta.get("data"),
        "training": {"command": command or meta.get("command"), "export_command": export_command,
                     "seed": meta.get("seed"), "train_config": meta.get("train_config"),
                     "checkpoint": Path(best).name, "step": _step(best, meta), "valid": meta.get("valid")},
        "metrics": {"how": f"beam {beam}; test = held-out scenes of the training distribution, combo = scenes with "
                           "colour-shape pairs never seen in training, alt = test-like scenes in a drawing style "
                           "never seen in training", **metrics},
        "date": datetime.date.today().isoformat(),
    }
    try:
        return publish_model(best, out, result)
    except OSError as exc:
        raise fail(exc) from None


@cli.command()
@click.argument("run", type=click.Path(file_okay=False))
@click.option("--out", type=click.Path(file_okay=False), default="data/models/caption", show_default=True)
@click.option("--data", "data_dir", type=click.Path(file_okay=False), default=DEFAULT_DATA, show_default=True)
@click.option("--beam", type=click.IntRange(1, 64), default=5, show_default=True)
@click.option("--force", is_flag=True, help="Replace an existing --out folder.")
@click.option("--json", "as_json", is_flag=True, help="Print the card as JSON.")
def export(run, out, data_dir, beam, force, as_json):
    """Export a trained model (RUN/best) with a card of held-out metrics.

    Example: suite caption export runs/caption --out data/models/caption --force
    """
    best = export_source(run, out, force)
    card = _export(best, out, data_dir, None, False, export_command=command_line("caption"), beam=beam)
    if as_json:
        click.echo(json.dumps(card, indent=2))
    else:
        _print_results({k: v for k, v in card["metrics"].items() if isinstance(v, dict)})
        click.echo(f"exported {best} to {out}")


def _print_results(results):
    for split, r in results.items():
        for who in ("model", "baseline_nearest_neighbour", "baseline_most_frequent"):
            m = r[who]
            line = f"{split:>6} {who:<27} BLEU-4 {m['bleu4']['score']:6.2f}"
            if "object_set_accuracy" in m:
                line += (f"  objects {m['object_set_accuracy']:.3f}  sizes {m.get('size_accuracy', float('nan')):.3f}"
                         f"  relations {m.get('relation_accuracy', float('nan')):.3f}")
            click.echo(line)


@cli.command()
@click.option("--model", "model_dir", type=click.Path(file_okay=False), default=None,
              help="Model folder [default: the shipped model].")
@click.option("--data", "data_dir", type=click.Path(file_okay=False), default=DEFAULT_DATA, show_default=True)
@click.option("--split", "splits", multiple=True, default=("test", "combo", "alt"), show_default=True,
              help="Splits to score (repeatable).")
@click.option("--beam", type=click.IntRange(1, 64), default=5, show_default=True)
@click.option("--limit", type=click.IntRange(1), default=None, help="Score only the first N images of each split.")
@click.option("--json", "as_json", is_flag=True)
def evaluate(model_dir, data_dir, splits, beam, limit, as_json):
    """BLEU-4, object-set, size and relation accuracy beside two baselines.

    Example: suite caption evaluate --split combo --beam 1
    """
    model, vocab, _ = _load(model_dir)
    results = _evaluate(model, vocab, data_dir, splits, beam, limit, False)
    if as_json:
        click.echo(json.dumps(results, indent=2))
    else:
        _print_results(results)
