"""The trainer: loss falls, resume is exact, checkpoints are complete, stop conditions work."""
import json

import numpy as np
import pytest

from suite.lab import AddingModel, AddingTask
from suite.nn.checkpoint import load_checkpoint
from suite.train import TrainConfig, Trainer


def _trainer(tmp_path, steps, seed=0, **kw):
    model = AddingModel(kind="lstm", hidden_size=8, seed=seed)
    task = AddingTask(T=8, batch_size=16, n_valid=200, seed=seed)
    cfg = TrainConfig(steps=steps, lr=1e-2, warmup=5, eval_every=10, checkpoint_every=10, seed=seed, **kw)
    return Trainer(model, task, cfg, tmp_path, model_config={"task": "adding", "hidden": 8}, quiet=True)


def test_loss_falls_and_outputs_are_written(tmp_path):
    trainer = _trainer(tmp_path, steps=120)
    summary = trainer.fit()
    evals = trainer.evals
    assert evals[-1]["loss"] < 0.6 * evals[0]["loss"], evals
    assert summary["step"] == 120 and summary["stopped"] == "steps"
    lines = [json.loads(l) for l in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert {l["split"] for l in lines} == {"train", "valid"}
    assert (tmp_path / "curve.png").stat().st_size > 1000
    state, config = load_checkpoint(tmp_path / "best")
    assert config["hidden"] == 8 and "rnn.layers.0.fwd.W_hh" in state


def test_resume_gives_the_same_weights_as_an_uninterrupted_run(tmp_path):
    straight = _trainer(tmp_path / "a", steps=30)
    straight.fit()
    first = _trainer(tmp_path / "b", steps=30)
    first.stop_when = lambda metrics: first.step >= 20  # cut off at step 20
    first.fit()
    assert first.step == 20
    resumed = _trainer(tmp_path / "b", steps=30)
    resumed.fit(resume=True)
    assert resumed.step == 30
    for (name, p), q in zip(straight.model.named_parameters(), resumed.model.parameters()):
        np.testing.assert_array_equal(p.value, q.value, err_msg=name)


def test_resume_after_a_kill_between_checkpoints(tmp_path):
    """A kill loses only the steps since the last checkpoint: last/ holds a complete step-10 state."""
    trainer = _trainer(tmp_path, steps=15)
    trainer.config.checkpoint_every = 10
    trainer.fit()
    # Simulate a crash mid-swap: only last.old survives.
    (tmp_path / "last").rename(tmp_path / "last.old")
    again = _trainer(tmp_path, steps=20)
    again.load_last()
    assert again.step == 15


def test_stop_when_and_divergence(tmp_path):
    trainer = _trainer(tmp_path, steps=100)
    trainer.stop_when = lambda m: True
    assert trainer.fit()["stopped"] == "target_reached"
    assert trainer.step == 10

    class Exploding(AddingTask):
        def loss_and_grad(self, model, batch):
            return float("nan"), 1

    bad = _trainer(tmp_path / "nan", steps=5)
    bad.task = Exploding(T=4, n_valid=10)
    assert bad.fit()["stopped"] == "diverged"


def test_learning_rate_schedule():
    cfg = TrainConfig(steps=100, lr=1.0, warmup=10, min_lr_ratio=0.1)
    assert cfg.lr_at(0) == pytest.approx(0.1)
    assert cfg.lr_at(9) == pytest.approx(1.0)
    assert cfg.lr_at(99) == pytest.approx(0.1, abs=1e-3)
    assert all(cfg.lr_at(s) >= cfg.lr_at(s + 1) for s in range(10, 99))


def test_ctrl_c_leaves_a_checkpoint_that_resumes(tmp_path):
    """SIGINT mid-training: the run stops cleanly, saves last/, exits 130 and --resume continues from it."""
    import signal
    import subprocess
    import sys
    import time

    out = tmp_path / "run"
    # A tanh RNN at T=20 never reaches the solve target, so only the signal can stop it.
    cmd = [sys.executable, "-m", "suite.cli", "lab", "adding", "--cell", "rnn", "--T", "20", "--hidden", "8",
           "--steps", "100000",
           "--n-test", "50", "--out", str(out), "--quiet", "--json"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    metrics = out / "metrics.jsonl"
    while (not metrics.exists() or len(metrics.read_text().splitlines()) < 3) and time.time() < deadline:
        time.sleep(0.2)
    import click

    from suite.cli_common import prepare_run_dir

    for resume in (False, True):  # while it trains, neither --force nor --resume may touch the folder
        with pytest.raises(click.ClickException, match=f"in use: a training run \\(process {proc.pid}\\)"):
            prepare_run_dir(out, resume=resume, force=True)
    assert metrics.exists()
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr
    assert stdout == "" and "Traceback" not in stderr  # no result for a cut run: the solve rate would be a lie
    (line,) = stderr.strip().splitlines()
    assert line.startswith("Interrupted at step ") and "--resume" in line
    steps = int(line.split()[3].rstrip(";"))
    trainer_state = json.loads((out / "last" / "trainer.json").read_text())
    assert trainer_state["step"] == steps > 0
    assert not (out / ".training.pid").exists() and prepare_run_dir(out, resume=True, force=False) == out


def test_a_lock_left_by_a_killed_run_is_ignored(tmp_path):
    import subprocess
    import sys

    from suite.train import RUN_LOCK, training_pid

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    (tmp_path / RUN_LOCK).write_text(dead.stdout)
    assert training_pid(tmp_path) is None
    (tmp_path / RUN_LOCK).write_text("not a number\n")
    assert training_pid(tmp_path) is None and training_pid(tmp_path / "missing") is None
