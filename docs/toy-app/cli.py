"""`suite toy`: the template app's commands."""
import json

import click

from suite.cli_common import (command_line, export_source, fail, finish_training, load_or_fail, model_option,
                               prepare_run_dir, run_training, training_options)
from suite.databuild import DataError, data_dir as default_data

DEFAULT_DATA = str(default_data("toy"))


@click.group()
def cli():
    """A toy app: an LSTM learns the sum of twelve numbers.

    \b
    Examples:
      suite toy data build && suite toy train --export data/models/toy
      suite toy predict 0.5 -0.25 1
    """


@cli.group()
def data():
    """Build the toy dataset."""


@data.command("build")
@click.option("--out", type=click.Path(file_okay=False), default=DEFAULT_DATA, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--force", is_flag=True, help="Replace an existing --out folder.")
def data_build(out, seed, force):
    """Draw the train/valid/test sequences.

    Example: suite toy data build --seed 1
    """
    from suite.apps.toy.data import build_dataset

    try:
        report = build_dataset(out, seed=seed, force=force, command=command_line("toy"))
    except (DataError, OSError) as exc:
        raise fail(exc) from None
    click.echo(f"wrote {out}: {report['counts']}")


@cli.command()
@click.option("--hidden", type=click.IntRange(2, 1024), default=16, show_default=True)
@training_options(steps=600, eval_every=100, lr=1e-2, data=DEFAULT_DATA, out="runs/toy")
def train(hidden, data_dir, out, **opts):
    """Train the toy LSTM; the best model by validation MSE is kept.

    Example: suite toy train --steps 600 --export data/models/toy
    """
    from suite.apps.toy.data import load_split
    from suite.apps.toy.model import ToyConfig, ToyModel, ToyTask, config_dict, export_model

    try:
        train_split, valid_split = load_split(data_dir, "train"), load_split(data_dir, "valid")
    except DataError as exc:
        raise fail(exc) from None
    out = prepare_run_dir(out, opts["resume"], opts["force"], opts["export"])
    config = ToyConfig(hidden=hidden, seed=opts["seed"])
    summary = run_training("toy", ToyModel(config), ToyTask(train_split, valid_split), config_dict(config),
                           {"data": str(data_dir)}, out=out, describe_eval=lambda r: f"valid MSE {r['loss']:.4f}",
                           **opts)
    if opts["export"]:
        summary["card"] = export_model(out / "best", opts["export"], data_dir)
    finish_training(summary, opts["as_json"], f"best validation MSE {summary['valid']['loss']:.4f}", opts["export"])


@cli.command("export")
@click.argument("run", type=click.Path(file_okay=False))
@click.option("--out", type=click.Path(file_okay=False), default="data/models/toy", show_default=True)
@click.option("--data", "data_dir", type=click.Path(file_okay=False), default=DEFAULT_DATA, show_default=True)
@click.option("--force", is_flag=True, help="Replace an existing --out folder.")
def export_cmd(run, out, data_dir, force):
    """Export RUN/best with its card of held-out metrics.

    Example: suite toy export runs/toy --out data/models/toy --force
    """
    from suite.apps.toy.model import export_model

    try:
        card = export_model(export_source(run, out, force), out, data_dir, export_command=command_line("toy"))
    except (ValueError, OSError) as exc:
        raise fail(exc) from None
    click.echo(f"test MSE {card['metrics']['test']['mse']:.4f}; wrote {out}")


@cli.command()
@click.argument("numbers", nargs=-1, required=True, type=float)
@model_option
@click.option("--json", "as_json", is_flag=True)
def predict(numbers, model_dir, as_json):
    """The model's sum of NUMBERS (best with twelve of them, in [-1, 1]).

    Example: suite toy predict 0.5 -0.25 1
    """
    import numpy as np

    from suite.apps.toy.model import load_model

    model, _ = load_or_fail(load_model, "toy", model_dir)
    total = float(model.forward(np.array([numbers], dtype=np.float32))[0])
    click.echo(json.dumps({"numbers": list(numbers), "sum": total}) if as_json else f"{total:.3f}")
