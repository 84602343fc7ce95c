"""Pieces every app's CLI shares."""
import shutil
from pathlib import Path

import click


def prepare_run_dir(out, resume, force, export=None):
    """Check (and with --force clear) a training run folder before any work starts.

    An existing run is only continued with --resume or replaced with --force,
    and neither while another process trains there; --resume needs a
    checkpoint; an existing --export folder needs --force.
    """
    from suite.train import training_pid

    out = Path(out)
    pid = training_pid(out)
    if pid is not None:
        raise click.ClickException(f"{out} is in use: a training run (process {pid}) is writing there; stop it "
                                   f"(kill -INT {pid}) and let it save, or choose another --out")
    if export and Path(export).exists() and not force:
        raise click.ClickException(f"{export} already exists; pass --force to replace it")
    if out.exists() and not resume:
        if not force:
            raise click.ClickException(f"{out} already exists; pass --resume to continue it or --force to start over")
        shutil.rmtree(out)
    if resume and not (out / "last").exists():
        raise click.ClickException(f"--resume: no checkpoint in {out}/last; run without --resume first")
    return out


def command_line(app):
    """The `suite APP ...` command being run, for a model card; None when not run from the CLI."""
    import sys

    return f"suite {app} " + " ".join(sys.argv[2:]) if sys.argv[1:2] == [app] else None


def export_source(run, out, force):
    """The checkpoint an `export` command reads (RUN/best, else RUN itself), checked with --out first."""
    best = Path(run) / "best" if (Path(run) / "best" / "config.json").exists() else Path(run)
    if Path(out).exists() and not force:
        raise click.ClickException(f"{out} already exists; pass --force to replace it")
    return best


def fail(exc):
    """A library error as click's one-line `Error: ...` (exit 1)."""
    return click.ClickException(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)


def counter(label, quiet=False):
    """A progress(done, total) callback that redraws `label done/total` on stderr; None when not a terminal."""
    import sys

    if quiet or not sys.stderr.isatty():
        return None

    def show(done, total):
        click.echo(f"\r{label} {done}/{total}", err=True, nl=done == total)
    return show


def run_command(app, out, resume, init=None):
    """The command line a card records for a training run: on --resume, the earlier commands of the run too;
    for a run started from the weights of model folder ``init``, the commands that made that model."""
    command = command_line(app)
    start = Path(out) / "last" if resume else (Path(init) if init is not None else None)
    if start is not None and command and (start / "config.json").exists():
        from suite.nn.checkpoint import read_card

        previous = read_card(start)["meta"].get("command")
        command = f"{previous} && {command}" if previous else command
    return command


def load_or_fail(load_model, app, model_dir):
    """load_model(model_dir or the app's shipped model), a model problem as a one-line click error."""
    from suite.shipped import default_model_dir

    try:
        return load_model(model_dir or default_model_dir(app))
    except (ValueError, OSError) as exc:
        raise fail(exc) from None


def training_options(steps, eval_every=500, lr=2e-3):
    """The options every `suite APP train` shares: length, learning rate, seed, resume/force, export, output."""
    options = [
        click.option("--steps", type=click.IntRange(1), default=steps, show_default=True),
        click.option("--minutes", type=click.FloatRange(0, min_open=True), default=None,
                     help="Stop after this much training time (checked at each evaluation)."),
        click.option("--lr", type=click.FloatRange(0, min_open=True), default=lr, show_default=True),
        click.option("--eval-every", type=click.IntRange(1), default=eval_every, show_default=True),
        click.option("--seed", type=int, default=0, show_default=True),
        click.option("--resume", is_flag=True, help="Continue the run in --out from its last checkpoint."),
        click.option("--force", is_flag=True, help="Replace an existing run folder (and --export folder)."),
        click.option("--export", type=click.Path(file_okay=False), default=None,
                     help="After training, export the model with its card here."),
        click.option("--quiet", is_flag=True, help="No progress bar."),
        click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON."),
    ]

    def decorate(fn):
        for option in reversed(options):
            fn = option(fn)
        return fn
    return decorate
