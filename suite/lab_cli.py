"""`suite lab` and `suite demo`: the classic LSTM experiments as commands."""
import json
import time

import click

from suite.cli_common import check_stopped, prepare_run_dir
from suite.fileio import OutputExistsError, check_writable


def _train_adding(cell, T, hidden, steps, batch_size, lr, seed, out_dir, resume, quiet, log=None, resumable=True):
    from suite.lab import AddingModel, AddingTask
    from suite.train import TrainConfig, Trainer

    model = AddingModel(kind=cell, hidden_size=hidden, seed=seed)
    task = AddingTask(T=T, batch_size=batch_size, seed=seed)
    eval_every = max(25, min(250, steps // 20))
    config = TrainConfig(steps=steps, lr=lr, warmup=min(100, steps // 10), eval_every=eval_every,
                         checkpoint_every=eval_every, seed=seed, clip=1.0)
    trainer = Trainer(model, task, config, out_dir,
                      model_config={"task": "adding", "cell": cell, "T": T, "hidden": hidden},
                      quiet=quiet, stop_when=lambda m: m["solve_rate"] >= 0.99, on_eval=log)
    try:
        summary = trainer.fit(resume=resume)
    except ValueError as exc:  # a damaged checkpoint or other settings on --resume
        raise click.ClickException(str(exc).splitlines()[0]) from None
    check_stopped(summary, lr, resumable=resumable)
    return model, summary


@click.group()
def lab():
    """Classic LSTM experiments (Hochreiter & Schmidhuber 1997).

    \b
    Examples:
      suite lab adding --cell lstm --T 100
      suite lab adding --cell rnn --T 100 --json
      suite lab gradients --T 200 --out grads.png
    """


CELLS = click.Choice(["lstm", "gru", "rnn", "peephole", "cifg", "lstmp"])


@lab.command()
@click.option("--cell", type=CELLS, default="lstm", show_default=True, help="Recurrent cell kind.")
@click.option("--T", "T", type=click.IntRange(2, 100_000), default=100, show_default=True,
              help="Sequence length (the lag is at least T/2).")
@click.option("--hidden", type=click.IntRange(2, 4096), default=32, show_default=True)
@click.option("--steps", type=click.IntRange(1), default=3000, show_default=True,
              help="Most training steps (stops early once 99% of validation sequences are solved).")
@click.option("--batch-size", type=click.IntRange(1), default=64, show_default=True)
@click.option("--lr", type=click.FloatRange(0, min_open=True), default=1e-2, show_default=True)
@click.option("--n-test", type=click.IntRange(1), default=2000, show_default=True,
              help="Fresh test sequences for the solve rate.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--out", type=click.Path(file_okay=False), default=None,
              help="Run folder for checkpoints and metrics [default: runs/lab/adding-CELL-T].")
@click.option("--resume", is_flag=True, help="Continue the run in --out from its last checkpoint.")
@click.option("--force", is_flag=True, help="Replace an existing run folder.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def adding(cell, T, hidden, steps, batch_size, lr, n_test, seed, out, resume, force, as_json, quiet):
    """Train on the adding problem and print the solve rate on fresh sequences.

    A sequence is solved when |error| < 0.04 at the last step. The LSTM solves
    long lags; the plain tanh RNN stays near the 16 % a constant guess gets.

    Example: suite lab adding --cell rnn --T 100
    """
    import numpy as np

    from suite.lab import adding_batch, evaluate_adding

    out = prepare_run_dir(out or f"runs/lab/adding-{cell}-T{T}", resume, force)
    t0 = time.perf_counter()
    model, summary = _train_adding(cell, T, hidden, steps, batch_size, lr, seed, out, resume, quiet)
    train_s = time.perf_counter() - t0
    model.eval()
    test = evaluate_adding(model, *adding_batch(np.random.default_rng([seed, 2**32 + 1]), n_test, T))
    result = {"cell": cell, "T": T, "hidden": hidden, "solve_rate": test["solve_rate"],
              "test_mse": test["loss"], "n_test": n_test, "steps": summary["step"],
              "stopped": summary["stopped"], "train_seconds": round(train_s, 1), "seed": seed,
              "run": str(out)}
    if as_json:
        click.echo(json.dumps(result))
    else:
        click.echo(f"{cell} T={T}: solved {100 * test['solve_rate']:.1f}% of {n_test} fresh sequences "
                   f"(|error| < 0.04) after {summary['step']} steps, {train_s:.0f} s "
                   f"[{summary['stopped']}]; run in {out}")


@lab.command()
@click.option("--T", "T", type=click.IntRange(2, 5000), default=200, show_default=True)
@click.option("--hidden", type=click.IntRange(2, 1024), default=32, show_default=True)
@click.option("--steps", type=click.IntRange(0), default=1000, show_default=True,
              help="Training steps before the 'after training' curves.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--out", type=click.Path(dir_okay=False), default="grads.png", show_default=True)
@click.option("--force", is_flag=True, help="Overwrite --out.")
@click.option("--json", "as_json", is_flag=True, help="Print the norms as JSON.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def gradients(T, hidden, steps, seed, out, force, as_json, quiet):
    """Draw ||d loss / d h_t|| against the lag for a tanh RNN and an LSTM.

    Curves at initialisation and after training on the adding problem: the
    vanishing gradient of the plain RNN, drawn.

    Example: suite lab gradients --T 200 --out grads.png
    """
    import tempfile

    import numpy as np

    from suite.lab import AddingModel, adding_batch, state_gradient_norms
    from suite.plot import gradient_norms

    try:
        check_writable(out, force)
    except (OutputExistsError, PermissionError) as exc:
        raise click.ClickException(str(exc)) from None
    x, target = adding_batch(np.random.default_rng([seed, 7]), 32, T)
    curves = {}
    for cell in ("rnn", "lstm"):
        model = AddingModel(kind=cell, hidden_size=hidden, seed=seed)
        curves[f"{cell}, initial"] = state_gradient_norms(model, x, target)
        if steps:
            with tempfile.TemporaryDirectory() as tmp:
                model, _ = _train_adding(cell, T, hidden, steps, 64, 1e-2, seed, tmp, False, quiet, resumable=False)
            curves[f"{cell}, trained {steps} steps"] = state_gradient_norms(model, x, target)
    gradient_norms(curves, out, title=f"adding problem, T={T}, hidden={hidden}")
    if as_json:
        click.echo(json.dumps({k: v.tolist() for k, v in curves.items()}))
    else:
        for name, norms in curves.items():
            click.echo(f"{name:>24}: |dL/dh| at lag 0 {norms[-1]:.2e}, lag {T - 1} {norms[0]:.2e}")
        click.echo(f"wrote {out}")


@click.command()
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--quiet", is_flag=True, help="No progress bar.")
def demo(seed, quiet):
    """Train a small LSTM on the adding problem (T=50) and show its loss fall.

    Example: suite demo --seed 1
    """
    import tempfile

    click.echo("Training a 32-unit LSTM on the adding problem, T=50 (target: |error| < 0.04)")
    click.echo(f"{'step':>6} {'valid MSE':>10} {'solved':>7}")

    def log(record):
        click.echo(f"{record['step']:>6} {record['loss']:>10.5f} {100 * record['solve_rate']:>6.1f}%")

    with tempfile.TemporaryDirectory() as tmp:
        _, summary = _train_adding("lstm", 50, 32, 1500, 64, 1e-2, seed, tmp, False, quiet, log=log,
                                   resumable=False)
    click.echo(f"stopped after {summary['step']} steps ({summary['stopped']}), "
               f"{summary['elapsed_s']:.0f} s; best validation MSE {summary['best']['loss']:.5f} "
               "(predicting 0.5 always gives about 0.042)")
