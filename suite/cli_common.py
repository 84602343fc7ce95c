"""The app scaffold for CLIs: option bundles, the train command's body, one-line errors.

An app's cli.py declares its own options (architecture, data) and passes the
rest through these:

    @cli.command()
    @click.option("--hidden", ...)
    @training_options(steps=8000, data="data/myapp")   # --data --out --steps --minutes --lr ... --json
    def train(hidden, data_dir, out, **opts):
        out = prepare_run_dir(out, opts["resume"], opts["force"], opts["export"])
        ...build model and task...
        summary = run_training("myapp", model, task, config_dict(config), meta={...}, out=out, **opts)
        finish_training(summary, opts["as_json"], f"best validation {summary['valid']['loss']:.3f}", opts["export"])

    @cli.command()
    @model_option
    def predict(model_dir, ...): ...
"""
import shutil
import time
from pathlib import Path

import click


def prepare_run_dir(out, resume, force, export=None):
    """Check (and with --force clear) a training run folder before any work starts.

    An existing run is only continued with --resume or replaced with --force,
    and neither while another process trains there; --force replaces only a
    folder we wrote (suite.fileio.check_replaceable); --resume needs a
    checkpoint (one left by a run killed mid-save is recovered first); an
    existing --export folder needs --force.
    """
    from suite.fileio import RefuseReplaceError, check_replaceable
    from suite.train import recover_checkpoints, training_pid

    out = Path(out)
    pid = training_pid(out)
    if pid is not None:
        raise click.ClickException(f"{out} is in use: a training run (process {pid}) is writing there; stop it "
                                   f"(kill -INT {pid}) and let it save, or choose another --out")
    try:
        if export and Path(export).exists():
            if not force:
                raise click.ClickException(f"{export} already exists; pass --force to replace it")
            check_replaceable(export, "--export")
        if out.exists() and not out.is_dir():
            raise click.ClickException(f"{out} is a file; --out names a run folder")
        if out.exists() and not resume:
            if not force:
                raise click.ClickException(f"{out} already exists; pass --resume to continue it or --force to "
                                           "start over")
            check_replaceable(out, "run")
            shutil.rmtree(out)
    except RefuseReplaceError as exc:
        raise fail(exc) from None
    if resume:
        recover_checkpoints(out)
        if not (out / "last").exists():
            raise click.ClickException(f"--resume: no checkpoint in {out}/last; run without --resume first")
    return out


def command_line(app):
    """The `suite APP ...` command being run, for a model card; None when not run from the CLI."""
    import sys

    return f"suite {app} " + " ".join(sys.argv[2:]) if sys.argv[1:2] == [app] else None


def export_source(run, out, force):
    """The checkpoint an `export` command reads (RUN/best, else RUN itself), checked with --out first."""
    from suite.fileio import RefuseReplaceError, check_replaceable

    best = Path(run) / "best" if (Path(run) / "best" / "config.json").exists() else Path(run)
    if not (best / "config.json").exists():
        raise click.ClickException(f"{run}: no trained model here (no best/config.json or config.json); give a run "
                                   "folder of `train` (its --out) or a checkpoint folder")
    if Path(out).exists():
        if not force:
            raise click.ClickException(f"{out} already exists; pass --force to replace it")
        try:
            check_replaceable(out, "model")
        except RefuseReplaceError as exc:
            raise fail(exc) from None
    return best


def fail(exc):
    """A library error as click's one-line `Error: ...` (exit 1); an OSError as `PATH: what went wrong`."""
    if isinstance(exc, OSError) and exc.filename and exc.strerror:
        return click.ClickException(f"{exc.filename}: {exc.strerror.lower()}; check the path and its folder")
    return click.ClickException(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)


def counter(label, quiet=False):
    """A progress(done, total) callback on stderr: `label done/total` redrawn on a terminal, a plain line
    every suite.progress.LOG_EVERY seconds otherwise; None with quiet."""
    import sys

    from suite.progress import Throttle, is_terminal

    if quiet:
        return None
    if not is_terminal(sys.stderr):
        due = Throttle()

        def log(done, total):
            if due():
                click.echo(f"{label} {done}/{total}", err=True)
        return log

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


class FiniteFloatRange(click.FloatRange):
    """click.FloatRange that also refuses nan and inf (a usage error, exit 2)."""

    name = "float"

    def convert(self, value, param, ctx):
        import math

        number = click.FLOAT.convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number.", param, ctx)
        return super().convert(number, param, ctx)


def finite_floats(command):
    """Make every float option of ``command`` and its subcommands refuse nan and inf; returns command.

    Applied once where the `suite` command loads an app, so no app has to remember it.
    """
    for param in getattr(command, "params", ()):
        t = param.type
        if isinstance(t, click.FloatRange) and not isinstance(t, FiniteFloatRange):
            param.type = FiniteFloatRange(t.min, t.max, min_open=t.min_open, max_open=t.max_open, clamp=t.clamp)
        elif isinstance(t, click.types.FloatParamType) and not isinstance(t, click.FloatRange):
            param.type = FiniteFloatRange()
    for sub in getattr(command, "commands", {}).values():
        finite_floats(sub)
    return command


def architecture_from_init(ctx, architecture, init_card):
    """A fine-tune's architecture: the --init model's, for every option in ``architecture`` ({param: value}).

    An option the user set to another value than the --init model's is a usage
    error (exit 2) naming both values; defaults simply give way.
    """
    from click.core import ParameterSource

    config = init_card["config"]
    for name, value in architecture.items():
        if ctx.get_parameter_source(name) is not ParameterSource.DEFAULT and value != config[name]:
            raise click.UsageError(f"--{name} {value} differs from the --init model's {config[name]}; drop --{name} "
                                   "(the architecture comes from --init)")
    return {name: config[name] for name in architecture}


def option_objects(*decorators):
    """The click.Option objects that option decorators (model_option, click.option(...)) declare, in the order
    given: the options a suite.batch.BatchJob takes, declared once for its single-file command and for batch."""
    def bare():
        pass

    for decorate in reversed(decorators):
        bare = decorate(bare)
    return tuple(reversed(bare.__click_params__))


class DefaultCommandGroup(click.Group):
    """A click group where `suite APP ARGS` is short for `suite APP DEFAULT ARGS` when ARGS[0] names no
    subcommand (`suite caption image.png`, `suite translate "Open the file" --to de`)."""

    default_command = None

    def parse_args(self, ctx, args):
        if args and args[0] not in self.commands and args[0] not in ("--help", "-h"):
            args = [self.default_command, *args]
        return super().parse_args(ctx, args)


def default_command_group(name):
    """The group class for @click.group(cls=...) whose default subcommand is ``name``."""
    return type(f"Default{name.title()}Group", (DefaultCommandGroup,), {"default_command": name})


def model_option(fn):
    """--model DIR (as model_dir): a model folder, default the app's shipped model; and --device."""
    from suite.device_choice import device_option

    fn = device_option(fn)
    return click.option("--model", "model_dir", type=click.Path(file_okay=False), default=None,
                        help="Model folder [default: the shipped model].")(fn)


def training_options(steps, eval_every=500, lr=2e-3, data=None, data_help=None, out=None):
    """The options every `suite APP train` shares: data, run folder, length, learning rate, seed,
    resume/force, export, output. With ``data``/``out`` (defaults), --data (as data_dir) and --out come too."""
    options = []
    if data is not None:
        options.append(click.option("--data", "data_dir", type=click.Path(file_okay=False), default=data,
                                    show_default=True, help=data_help or "A dataset from `data build`."))
    if out is not None:
        options.append(click.option("--out", type=click.Path(file_okay=False), default=out, show_default=True,
                                    help="Run folder: checkpoints, metrics.jsonl, curve.png."))
    options += [
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
        from suite.device_choice import device_option

        fn = device_option(fn)
        for option in reversed(options):
            fn = option(fn)
        return fn
    return decorate


def run_training(app, model, task, model_config, meta, *, out, steps, minutes, lr, eval_every, seed, resume,
                 quiet, warmup=None, init=None, describe_eval=None, one_blas_thread=False, **_ignored):
    """The body of every `suite APP train`: schedule, time limit, provenance, Trainer, summary.

    meta: the app's own provenance (vocabulary, data source, ...); app, command
    (the whole chain on --resume or --init), seed and train_config are added
    here. describe_eval(record) -> str prints a line per validation on stderr.
    one_blas_thread: train with one BLAS thread unless the user set a count
    (suite.threads.training_blas_threads: quicker for models of many small GEMMs).
    Returns the trainer's summary with "valid" (the best checkpoint's
    validation record) and "command". The other training_options (force,
    export, as_json) are for the caller and ignored here.
    """
    from dataclasses import asdict

    from suite.train import TrainConfig, Trainer

    tcfg = TrainConfig(steps=steps, lr=lr, warmup=min(300, steps // 10) if warmup is None else warmup,
                       eval_every=eval_every, checkpoint_every=min(eval_every, 250), seed=seed)
    deadline = None if minutes is None else time.monotonic() + 60 * minutes
    command = run_command(app, out, resume, init=init)
    meta = {"app": app, "command": command, "seed": seed, "train_config": asdict(tcfg)} | dict(meta)

    def on_eval(record):
        if describe_eval is not None and not quiet:
            click.echo(f"step {record['step']}: {describe_eval(record)}", err=True)

    from suite.device_choice import current

    device = current()  # --device, resolved while parsing (a GPU only for apps in suite.device_choice.GPU_APPS)
    if device != "cpu":
        try:
            model.to_device(device)
        except ValueError as exc:  # a model that cannot run there: one line
            raise fail(exc) from None
    meta["device"] = device
    trainer = Trainer(model, task, tcfg, out, model_config=model_config, meta=meta, quiet=quiet, on_eval=on_eval,
                      stop_when=(lambda m: time.monotonic() > deadline) if deadline else None)
    from suite.threads import training_blas_threads

    try:
        with training_blas_threads(one_blas_thread and device == "cpu"):
            summary = trainer.fit(resume=resume)
    except ValueError as exc:  # suite.train.ResumeError and checkpoint problems: one line
        raise fail(exc) from None
    summary["valid"] = next((e for e in trainer.evals if e["step"] == trainer.best["step"]), {})
    summary["command"] = command
    check_stopped(summary, lr)
    return summary


def check_stopped(summary, lr, resumable=True):
    """After Trainer.fit: a diverged run is a one-line error (exit 1); an interrupted one exits 130.

    Ctrl-C (or SIGTERM) lets the trainer save its last checkpoint; nothing
    after it runs (no export, no picture), so a half-trained model is never published.
    """
    if summary["stopped"] == "diverged":
        raise click.ClickException(f"training diverged at step {summary['step']} (the loss is not finite); "
                                   f"lower --lr (it was {lr:g}) and start over with --force")
    if summary["stopped"] == "interrupted":
        where = (f"; the run is saved in {summary['out_dir']}: continue it with --resume" if resumable else
                 "; nothing was written")
        click.echo(f"Interrupted at step {summary['step']}{where}.", err=True)
        raise SystemExit(130)


def finish_training(summary, as_json, result, export=None):
    """Print a train command's summary: JSON, or one line with ``result`` (e.g. the best validation score)."""
    import json

    if as_json:
        click.echo(json.dumps(summary, indent=2))
        return
    click.echo(f"stopped after {summary['step']} steps ({summary['stopped']}), {summary['elapsed_s'] / 60:.1f} min; "
               f"{result}; run in {summary['out_dir']}" + (f"; exported to {export}" if export else ""))
