"""`suite music`: four-part chorales in the style of Bach, composed and harmonised by an LSTM."""
import functools
import json
import os
import time
from pathlib import Path

import click

from suite.cli_common import (
    command_line, counter, export_source, finish_training, load_or_fail, model_option, prepare_run_dir, run_training,
    training_options,
)
from suite.cli_common import fail as _fail
from suite.databuild import data_dir as app_data_dir

DEFAULT_DATA_DIR = str(app_data_dir("music"))  # data/music under the working folder
DATA_HELP = "Corpus folder: the parsed chorales (built on first use if missing)."


def _load(model_dir):
    from suite.apps.music.model import load_model

    return load_or_fail(load_model, "music", model_dir)


def _corpus(data_dir, seed=0, progress=False):
    from suite.apps.music.data import DataError, load_corpus

    try:
        return load_corpus(data_dir, seed=seed, progress=counter("parsing chorales", quiet=not progress))
    except (DataError, OSError) as exc:
        raise _fail(exc) from None


def data_option(fn):
    """--data DIR (as data_dir), the corpus folder, with --cache (its old name) kept hidden for old command lines."""
    return _cache_alias(click.option("--data", "data_dir", type=click.Path(file_okay=False),
                                     default=DEFAULT_DATA_DIR, show_default=True, help=DATA_HELP)(fn))


def _cache_alias(fn):
    """A hidden --cache DIR that stands for --data DIR (cards and scripts written before the rename use it)."""
    @functools.wraps(fn)
    def command(*args, cache=None, **kwargs):
        if cache is not None:
            kwargs["data_dir"] = cache
        return fn(*args, **kwargs)
    return click.option("--cache", "cache", type=click.Path(file_okay=False), default=None, hidden=True,
                        help="Old name of --data.")(command)


@click.group()
def cli():
    """Four-part chorales in the style of Bach (an LSTM over a 16th-note grid).

    \b
    Examples:
      suite music compose                         # writes chorale-1.mid/.wav/.png
      suite music compose --key D --bars 16 --seed 3 -o hymn
      suite music harmonize melody.mid            # adds alto, tenor and bass
      suite music data build && suite music train && suite music evaluate
    """


@cli.group()
def data():
    """Build the chorale corpus."""


@data.command("build")
@data_option
@click.option("--seed", type=int, default=0, show_default=True, help="Fixes the split by hymn.")
@click.option("--force", is_flag=True, help="Parse again even if the cache is there.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def data_build(data_dir, seed, force, as_json):
    """Parse music21's Bach chorales into the grid (cached) and split them by hymn.

    Example: suite music data build --json
    """
    from suite.apps.music.data import DataError, build_corpus

    try:
        report = build_corpus(data_dir, seed=seed, force=force)
    except (DataError, OSError) as exc:
        raise _fail(exc) from None
    if as_json:
        click.echo(json.dumps(report, indent=2))
        return
    click.echo(f"kept {report['kept']} of {report['source_chorales']} chorales"
               + (" (from the cache)" if report["from_cache"] else f" (parsed in {report['parse_seconds']} s)"))
    for reason, n in report["skipped"].items():
        click.echo(f"  skipped {n:>3} {reason}: {report['skip_reasons'][reason]}")
    for name, split in report["splits"].items():
        click.echo(f"{name:>5}: {split['chorales']:>3} chorales, {split['steps']:>6,} steps")
    click.echo(f"cache: {report['cache_dir']}")


@cli.command()
@click.option("--hidden", type=click.IntRange(8, 4096), default=256, show_default=True)
@click.option("--layers", type=click.IntRange(1, 8), default=2, show_default=True)
@click.option("--embed", type=click.IntRange(4, 1024), default=48, show_default=True)
@click.option("--dropout", type=click.FloatRange(0, 1, max_open=True), default=0.2, show_default=True)
@click.option("--seq-len", type=click.IntRange(8), default=256, show_default=True,
              help="Tokens per training window (a grid step is 5 tokens).")
@click.option("--batch-size", type=click.IntRange(1), default=32, show_default=True)
@click.option("--no-augment", is_flag=True, help="Train on the normalised keys only (no transpositions).")
@click.option("--compositions", type=click.IntRange(1), default=100, show_default=True,
              help="Compositions for the card's statistics table (with --export).")
@training_options(steps=6000, eval_every=250, data=DEFAULT_DATA_DIR, data_help=DATA_HELP, out="runs/music")
@_cache_alias
def train(data_dir, out, hidden, layers, embed, dropout, seq_len, batch_size, no_augment, compositions, **opts):
    """Train the chorale LSTM on the (transposition-augmented) train split.

    Example: suite music train --minutes 45 --export data/models/music
    """
    from suite.apps.music.model import LMConfig, MusicTask, TokenLM, config_dict, export_model

    corpus = _corpus(data_dir, progress=not opts["quiet"])
    out = prepare_run_dir(out, opts["resume"], opts["force"], opts["export"])
    train_ids = corpus.stream("train", augmented=not no_augment)
    if len(train_ids) <= seq_len + 1:
        raise click.ClickException(f"the train split has {len(train_ids)} tokens, fewer than --seq-len {seq_len}")
    config = LMConfig(vocab_size=corpus.vocab.size, embed=embed, hidden=hidden, layers=layers, dropout=dropout,
                      seed=opts["seed"])
    task = MusicTask(train_ids, corpus.stream("valid"), seq_len=seq_len, batch_size=batch_size,
                     valid_steps=corpus.report["splits"]["valid"]["steps"])
    meta = {"vocab": corpus.vocab.to_json(),
            "task": {"kind": "random windows of the train token stream", "seq_len": seq_len,
                     "batch_size": batch_size, "augmented": not no_augment, "train_tokens": int(len(train_ids))}}
    summary = run_training("music", TokenLM(config), task, config_dict(config), meta, out=out,
                           warmup=min(200, opts["steps"] // 10),
                           describe_eval=lambda r: f"valid {r.get('nats_per_step', r['loss']):.4f} nats/step",
                           **opts)
    summary["valid_nats_per_step"] = summary["valid"].get("nats_per_step")
    if opts["export"]:
        if not opts["quiet"]:
            click.echo(f"exporting to {opts['export']} (test NLL, n-gram, {compositions} compositions)...", err=True)
        summary["card"] = export_model(out / "best", opts["export"], corpus, command=summary["command"],
                                       n_compositions=compositions)
    finish_training(summary, opts["as_json"], f"best validation {summary['valid_nats_per_step']:.4f} nats/step",
                    opts["export"])


@cli.command()
@click.argument("run", type=click.Path(file_okay=False))
@click.option("--out", type=click.Path(file_okay=False), default="data/models/music", show_default=True)
@data_option
@click.option("--compositions", type=click.IntRange(1), default=100, show_default=True)
@click.option("--force", is_flag=True, help="Replace an existing --out folder.")
@click.option("--json", "as_json", is_flag=True, help="Print the card as JSON.")
def export(run, out, data_dir, compositions, force, as_json):
    """Export a trained model (RUN/best, or a checkpoint folder) with its card of held-out metrics.

    Example: suite music export runs/music --out data/models/music --force
    """
    from suite.apps.music.model import export_model

    best = export_source(run, out, force)
    corpus = _corpus(data_dir)
    try:
        card = export_model(best, out, corpus, n_compositions=compositions, export_command=command_line("music"),
                            progress=counter("composing"))
    except (ValueError, OSError) as exc:
        raise _fail(exc) from None
    if as_json:
        click.echo(json.dumps(card, indent=2))
    else:
        _print_metrics(card["metrics"])
        click.echo(f"exported {best} to {out}")


def _print_metrics(metrics):
    nll = metrics["nll"]
    click.echo(f"test NLL ({nll['test_chorales']} chorales, {nll['test_steps']} steps), nats per 16th-note step:")
    click.echo(f"  LSTM     {nll['model_nats_per_step']:.4f}  ({nll['model_bits_per_step']:.4f} bits)")
    click.echo(f"  {nll['ngram_order']}-gram  {nll['ngram_nats_per_step']:.4f}  ({nll['ngram_bits_per_step']:.4f} bits)")
    stats = metrics["statistics"]
    columns = [c for c in ("composed", "free", "test") if c in stats]
    click.echo("statistics: " + ", ".join(f"{c} {stats[c]['chorales']}" for c in columns)
               + " (composed: under the rules; free: the free sampler; test: Bach's held-out chorales)")
    click.echo(f"  {'':26}" + "".join(f"{'Bach' if c == 'test' else c:>10}" for c in columns))
    for name in STAT_ROWS:
        click.echo(f"  {name:26}" + "".join(f"{stats[c][name]:>10.3f}" for c in columns))
    for c in columns:
        if c != "test":
            click.echo(f"  mean repairs per composition ({c}): {stats[c]['mean_repairs']}")
    for name, check in (metrics.get("music21_check") or {}).items():
        click.echo(f"  music21 agrees with our detector on {check['agree']}/{check['chorales']} {name} chorales "
                   f"(fifths, octaves, direct: ours {check['ours']}, music21 {check['music21']})")


STAT_ROWS = ("pc_overlap", "in_key", "in_range", "in_range_S", "in_range_A", "in_range_T", "in_range_B",
             "out_of_range", "crossings_per_100", "parallel_fifths_per_100", "parallel_octaves_per_100",
             "direct_per_100", "augmented_per_100", "final_tonic", "cadence", "cadence_authentic", "cadence_half",
             "cadence_plagal", "cadence_none", "note_length_2", "note_length_4", "note_length_8",
             "model_nats_per_step", "steps")


@cli.command()
@model_option
@data_option
@click.option("--compositions", type=click.IntRange(1), default=100, show_default=True)
@click.option("--bars", type=click.IntRange(1, 256), default=16, show_default=True)
@click.option("--temperature", type=click.FloatRange(0), default=1.0, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--json", "as_json", is_flag=True)
def evaluate(model_dir, data_dir, compositions, bars, temperature, seed, as_json):
    """Test-split NLL per step (model and n-gram) and statistics of compositions vs Bach's test chorales.

    Example: suite music evaluate --compositions 100 --json
    """
    from suite.apps.music.model import evaluate_model

    model, vocab, _ = _load(model_dir)
    corpus = _corpus(data_dir)
    metrics = evaluate_model(model, vocab, corpus, n_compositions=compositions, bars=bars,
                             temperature=temperature, seed=seed, progress=counter("composing"))
    if as_json:
        click.echo(json.dumps(metrics, indent=2))
    else:
        _print_metrics(metrics)


# -- composing ----------------------------------------------------------------------------

OUTPUT_SUFFIXES = (".mid", ".wav", ".png")


def _output_base(out, default_stem, force):
    """The base path (no suffix) of OUT.mid/.wav/.png, checked before any work; without OUT, ("stem", None):
    the next free stem-N is claimed when the files are written (_write), so that runs at once never share it."""
    from suite.fileio import OutputExistsError, check_writable

    if out is None:
        folder = Path(default_stem).parent
        if folder.exists() and not os.access(folder, os.W_OK):
            raise click.ClickException(f"cannot write to folder {folder}: permission denied")
        return default_stem
    base = Path(out)
    if base.suffix.lower() in OUTPUT_SUFFIXES + (".midi",):
        base = base.with_suffix("")
    folder = base.parent
    if folder.exists() and not folder.is_dir():
        raise click.ClickException(f"cannot write to {folder}: not a folder")
    try:
        for ext in OUTPUT_SUFFIXES:
            check_writable(Path(f"{base}{ext}"), force)
    except (OutputExistsError, PermissionError) as exc:
        raise _fail(exc) from None
    return base


def _write(result, base, tempo, title, force):
    """OUT.mid, OUT.wav, OUT.png, rendered in a temporary folder beside them, then moved into place.

    Without --force each name is claimed without replacing (suite.fileio.staged_files): of two
    runs writing the same OUT at once, one writes and the other stops with "exists".
    """
    from suite.apps.music.render import piano_roll, render_audio, write_midi
    from suite.fileio import claim_free_base, staged_files

    try:
        owned = []
        if isinstance(base, str):  # no OUT given: the next free STEM-N, claimed now
            base = claim_free_base(base, OUTPUT_SUFFIXES)
            owned = [Path(f"{base}{OUTPUT_SUFFIXES[0]}")]
        paths = {ext: Path(f"{base}{ext}") for ext in OUTPUT_SUFFIXES}
        with staged_files(list(paths.values()), force=force, owned=owned) as tmp:
            write_midi(result.grid, tmp[paths[".mid"]], tempo=tempo, key_transpose=result.key_transpose)
            audio = render_audio(result.grid, tmp[paths[".wav"]], tempo=tempo, key_transpose=result.key_transpose)
            piano_roll(result.grid, tmp[paths[".png"]], key_transpose=result.key_transpose, title=title)
    except (ValueError, OSError, RuntimeError) as exc:
        if isinstance(exc, OSError) and not isinstance(exc, FileExistsError) and exc.filename:
            raise click.ClickException(f"cannot write to {exc.filename}: {exc.strerror or exc}") from None
        raise _fail(exc) from None
    return paths, audio


def _report(result, paths, audio, compose_seconds, as_json, extra):
    info = {
        "files": {ext.lstrip("."): str(p) for ext, p in paths.items()},
        "key": result.key_name,
        "bars": round(result.bars, 2),
        "steps": result.grid.n_steps,
        "ending": result.ending,
        "candidates": result.candidates,
        "repairs": result.repairs,
        **({k: result.info[k] for k in ("relaxed", "faults_before_rewrite", "faults", "rewrite", "cadences_planned")}
           if "relaxed" in result.info else {}),
        "sampling_seconds": round(result.seconds, 3),
        "seconds": round(compose_seconds, 3),
        "audio": {"engine": audio["engine"], "seconds": round(audio["seconds"], 2)},
        **extra,
    }
    if as_json:
        click.echo(json.dumps(info, indent=2))
        return
    click.echo(f"wrote {paths['.mid']} (4 voices, {result.bars:.1f} bars, {result.key_name}), "
               f"{paths['.wav']} ({audio['engine']}, {audio['seconds']:.1f} s), {paths['.png']}")
    repairs = sum(result.repairs.values())
    click.echo(f"seed {extra['seed']}: sampled in {result.seconds:.2f} s ({result.candidates} candidate"
               f"{'s' if result.candidates > 1 else ''}, ending: {result.ending}, repairs: {repairs}"
               + (f", rules relaxed on {sum(result.info['relaxed'][1:])} voice slots, {result.info['faults']} faults "
                  f"after rewriting {result.info['rewrite']['windows']} windows" if "relaxed" in result.info else "")
               + ")", err=True)


def _read_score(path, mode=None):
    from suite.apps.music.compose import MusicError, read_midi

    try:
        return read_midi(path, mode=mode)
    except MusicError as exc:
        raise _fail(exc) from None


@cli.command()
@click.option("-o", "--out", type=click.Path(dir_okay=False), default=None,
              help="Base name of OUT.mid, OUT.wav, OUT.png [default: the next free chorale-N here].")
@click.option("--bars", type=click.IntRange(1, 256), default=16, show_default=True,
              help="This many bars, in two-bar phrases that end on cadences (with --free: about this many).")
@click.option("--key", default=None, help="Tonic such as D, F#, Bb, or 'G minor' [default: C / A, or the primer's].")
@click.option("--mode", type=click.Choice(["major", "minor"]), default=None, help="[default: major, or the primer's]")
@click.option("--tempo", type=click.FloatRange(10, 400), default=80, show_default=True,
              help="Quarter notes per minute.")
@click.option("--temperature", type=click.FloatRange(0), default=1.0, show_default=True,
              help="Below 1: safer, plainer; above 1: bolder; 0 always takes the likeliest token.")
@click.option("--seed", type=int, default=None, help="Fixes the result [default: a fresh random seed].")
@click.option("--primer", type=click.Path(dir_okay=False), default=None,
              help="A MIDI melody (harmonised, then continued) or four-part beginning to continue.")
@click.option("--free", is_flag=True, help="Sample without the voice-leading rules and the phrase plan.")
@click.option("--rewrite", type=click.IntRange(0, 1000), default=0, show_default=True,
              help="Windows of one voice to resample and rescore at random, besides those at dead ends.")
@model_option
@click.option("--force", is_flag=True, help="Overwrite existing OUT files.")
@click.option("--json", "as_json", is_flag=True, help="Print what was written as JSON.")
def compose(out, bars, key, mode, tempo, temperature, seed, primer, free, rewrite, model_dir, force, as_json):
    """Compose a new four-part chorale: OUT.mid (a track per voice), OUT.wav and OUT.png.

    \b
    Examples:
      suite music compose
      suite music compose -o hymn --key D --bars 12 --seed 7
      suite music compose --primer tune.mid --bars 16 --key G --mode minor
    """
    import secrets

    from suite.apps.music.compose import MusicError, compose as compose_chorale, resolve_key

    try:
        resolve_key(key, mode)  # a key that does not exist fails before any work
    except MusicError as exc:
        raise _fail(exc) from None
    base = _output_base(out, "chorale", force)
    score = _read_score(primer, mode) if primer else None
    model, vocab, _ = _load(model_dir)
    seed = secrets.randbelow(2**31) if seed is None else seed
    t0 = time.perf_counter()
    try:
        result = compose_chorale(model, vocab, bars=bars, key=key, mode=mode, temperature=temperature, seed=seed,
                                 primer=score, rules=not free, rewrite=rewrite)
    except MusicError as exc:
        raise _fail(exc) from None
    elapsed = time.perf_counter() - t0
    paths, audio = _write(result, base, tempo, f"{Path(base).name}: chorale in {result.key_name} (seed {seed})", force)
    _report(result, paths, audio, elapsed, as_json,
            {"seed": seed, "temperature": temperature, "tempo": tempo, "primer": primer,
             "primer_steps": result.primer_steps})


@cli.command()
@click.argument("melody", type=click.Path(dir_okay=False))
@click.option("-o", "--out", type=click.Path(dir_okay=False), default=None,
              help="Base name of OUT.mid/.wav/.png [default: the next free MELODY-harmonized-N].")
@click.option("--key", default=None, help="The melody's key, e.g. 'G' or 'E minor' [default: found from the file].")
@click.option("--mode", type=click.Choice(["major", "minor"]), default=None)
@click.option("--tempo", type=click.FloatRange(10, 400), default=80, show_default=True)
@click.option("--temperature", type=click.FloatRange(0), default=0.8, show_default=True)
@click.option("--seed", type=int, default=None, help="Fixes the result [default: a fresh random seed].")
@click.option("--free", is_flag=True, help="Sample without the voice-leading rules and the final cadence.")
@click.option("--rewrite", type=click.IntRange(0, 1000), default=0, show_default=True,
              help="Windows of one voice to resample and rescore at random, besides those at dead ends.")
@model_option
@click.option("--force", is_flag=True, help="Overwrite existing OUT files.")
@click.option("--json", "as_json", is_flag=True)
def harmonize(melody, out, key, mode, tempo, temperature, seed, free, rewrite, model_dir, force, as_json):
    """Write alto, tenor and bass under a soprano melody (MIDI); the melody is kept exactly.

    The melody is its file's top line (one track or channel); a four-part file
    is harmonised from its top voice. Its key comes from the file's key
    signature or a key finder; --key overrides it.

    Example: suite music harmonize tune.mid -o tune-satb --seed 1
    """
    import secrets

    from suite.apps.music.compose import MusicError, Score, harmonize as harmonize_melody, resolve_key

    try:
        given_key = resolve_key(key, mode) if key is not None else None
    except MusicError as exc:
        raise _fail(exc) from None
    score = _read_score(melody, mode)
    if given_key is not None:
        score = Score(score.pitch, score.onset, score.steps_per_bar, given_key, "--key", score.path)
    base = _output_base(out, f"{Path(melody).with_suffix('')}-harmonized", force)
    model, vocab, _ = _load(model_dir)
    seed = secrets.randbelow(2**31) if seed is None else seed
    t0 = time.perf_counter()
    try:
        result = harmonize_melody(model, vocab, score, temperature=temperature, seed=seed, rules=not free,
                                  rewrite=rewrite)
    except MusicError as exc:
        raise _fail(exc) from None
    elapsed = time.perf_counter() - t0
    paths, audio = _write(result, base, tempo, f"{Path(base).name}: harmonised in {result.key_name} (seed {seed})",
                          force)
    _report(result, paths, audio, elapsed, as_json,
            {"seed": seed, "temperature": temperature, "tempo": tempo, "melody": melody,
             "key_source": score.key_source})


# -- `suite batch music`: harmonise many melodies (suite.batch) ----------------------------------------
def _batch_load(model_dir=None, temperature=0.8, seed=0, tempo=80.0):
    from suite.apps.music.model import load_model
    from suite.shipped import default_model_dir

    model, vocab, _ = load_model(model_dir or default_model_dir("music"))
    return model, vocab, {"temperature": temperature, "seed": seed, "tempo": tempo}


def _batch_run(state, path):
    """MELODY-harmonized-N.mid beside the melody (the next free N, claimed atomically); the key, bars, repairs."""
    from suite.apps.music.compose import harmonize as harmonize_melody
    from suite.apps.music.compose import read_midi
    from suite.apps.music.render import write_midi
    from suite.fileio import claim_free_base, staged_files

    model, vocab, settings = state
    result = harmonize_melody(model, vocab, read_midi(path), temperature=settings["temperature"],
                              seed=settings["seed"])
    base = claim_free_base(f"{Path(path).with_suffix('')}-harmonized", (".mid",))
    target = Path(f"{base}.mid")
    with staged_files([target], owned=[target]) as tmp:
        write_midi(result.grid, tmp[target], tempo=settings["tempo"], key_transpose=result.key_transpose)
    return {"midi": str(target), "key": result.key_name, "bars": round(result.bars, 2),
            "repairs": sum(result.repairs.values())}


def batch_job():
    from suite.batch import BatchJob
    from suite.cli_common import option_objects

    return BatchJob("music harmonize", "Harmonise MIDI melodies (as `suite music harmonize`): MELODY-harmonized-N.mid "
                    "is written beside each melody.", (".mid", ".midi"), _batch_load, _batch_run,
                    options=(click.Option(["--temperature"], type=click.FloatRange(0), default=0.8, show_default=True),
                             click.Option(["--seed"], type=int, default=0, show_default=True,
                                          help="The same seed for every melody (results are repeatable)."),
                             click.Option(["--tempo"], type=click.FloatRange(10, 400), default=80, show_default=True),
                             *option_objects(model_option)))
