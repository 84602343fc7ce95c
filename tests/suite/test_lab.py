import json

import numpy as np
from click.testing import CliRunner

from suite.cli import cli
from suite.lab import AddingModel, adding_batch, state_gradient_norms


def test_adding_batch_marks_one_value_in_each_half():
    x, target = adding_batch(np.random.default_rng(0), 50, 20)
    assert x.shape == (20, 50, 2) and target.shape == (50,)
    markers = x[:, :, 1]
    assert (markers.sum(axis=0) == 2).all()
    assert (markers[:10].sum(axis=0) == 1).all() and (markers[10:].sum(axis=0) == 1).all()
    expected = 0.5 + (x[:, :, 0] * markers).sum(axis=0) / 4
    np.testing.assert_allclose(target, expected, rtol=1e-6)


def test_gradient_norms_vanish_for_the_rnn_not_the_lstm():
    """At initialisation the tanh RNN's dL/dh_t decays with the lag much faster than the LSTM's."""
    x, target = adding_batch(np.random.default_rng(1), 16, 40)
    ratios = {}
    for cell in ("rnn", "lstm"):
        norms = state_gradient_norms(AddingModel(cell, hidden_size=16, seed=0), x, target)
        assert norms.shape == (40,) and np.all(norms > 0)
        ratios[cell] = norms[0] / norms[-1]  # lag 39 over lag 0
    assert ratios["rnn"] < 0.1 * ratios["lstm"], ratios


def test_lab_adding_cli_json_and_refuses_to_overwrite(tmp_path):
    out = tmp_path / "run"
    args = ["lab", "adding", "--cell", "lstm", "--T", "6", "--hidden", "8", "--steps", "30",
            "--n-test", "100", "--out", str(out), "--json"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    record = json.loads(result.output)
    assert record["cell"] == "lstm" and 0.0 <= record["solve_rate"] <= 1.0
    again = CliRunner().invoke(cli, args)
    assert again.exit_code == 1 and "already exists" in again.output and "--force" in again.output
    resumed = CliRunner().invoke(cli, args[:-1] + ["--steps", "40", "--resume", "--json"])
    assert resumed.exit_code == 0, resumed.output
    assert json.loads(resumed.output)["steps"] >= 30
