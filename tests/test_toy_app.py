"""The README's recipe for a new app, followed: docs/toy-app, mounted as suite.apps.toy, trains, exports, predicts.

Installing it for real is two lines in pyproject.toml (README "Adding an app");
here the folder is mounted under the same name in-process, so the test runs
the very files a user copies.
"""
import importlib.util
import json
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

TOY = Path(__file__).resolve().parents[1] / "docs" / "toy-app"


@pytest.fixture(scope="module")
def toy_cli():
    spec = importlib.util.spec_from_file_location("suite.apps.toy", TOY / "__init__.py",
                                                  submodule_search_locations=[str(TOY)])
    package = importlib.util.module_from_spec(spec)
    sys.modules["suite.apps.toy"] = package
    spec.loader.exec_module(package)
    from suite.apps.toy.cli import cli
    from suite.cli_common import finite_floats

    yield finite_floats(cli)
    for name in [m for m in sys.modules if m.startswith("suite.apps.toy")]:
        del sys.modules[name]


def test_the_toy_app_has_the_shape_of_every_app():
    import ast

    doc = ast.get_docstring(ast.parse((TOY / "__init__.py").read_text()))
    for name in ("data.py", "model.py", "cli.py"):
        assert (TOY / name).exists() and name in doc
    assert "Trainer(" not in (TOY / "cli.py").read_text()


def test_the_toy_app_builds_trains_exports_and_predicts(toy_cli, tmp_path, monkeypatch):
    from suite.card import read_model_card

    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    result = runner.invoke(toy_cli, ["data", "build"])
    assert result.exit_code == 0, result.output
    result = runner.invoke(toy_cli, ["train", "--steps", "300", "--eval-every", "100", "--quiet", "--json",
                                     "--export", "model"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    card = read_model_card(tmp_path / "model")
    assert card["app"] == "toy" and card["training"]["step"] == summary["best"]["step"]
    metrics = card["metrics"]
    assert metrics["test"]["mse"] < 0.5 * metrics["baseline_predict_zero"]["mse"], metrics  # it learnt to add
    result = runner.invoke(toy_cli, ["predict", "0.5", "0.5", "--model", "model", "--json"])
    assert result.exit_code == 0, result.output
    assert abs(json.loads(result.output)["sum"] - 1.0) < 0.5
    again = runner.invoke(toy_cli, ["train", "--steps", "300", "--quiet"])
    assert again.exit_code == 1 and "already exists" in again.output
    assert runner.invoke(toy_cli, ["train", "--lr", "nan"]).exit_code == 2
