"""Every app has the same shape: the same files with the same meaning, on the shared scaffold."""
import ast
import re
from pathlib import Path

import click
import pytest

ROOT = Path(__file__).resolve().parents[1]
APPS = sorted(p.name for p in (ROOT / "apps").iterdir() if (p / "__init__.py").exists())


def _imports(path):
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            yield node.module
        elif isinstance(node, ast.Import):
            yield from (a.name for a in node.names)


@pytest.mark.parametrize("app", APPS)
def test_same_files_and_a_docstring_that_says_what_each_holds(app):
    folder = ROOT / "apps" / app
    for name in ("data", "model", "cli"):
        assert (folder / f"{name}.py").exists() or (folder / name / "__init__.py").exists(), f"apps/{app}/{name}.py"
    doc = ast.get_docstring(ast.parse((folder / "__init__.py").read_text())) or ""
    modules = sorted(p.stem for p in folder.glob("*.py") if p.stem != "__init__") + \
        sorted(p.name for p in folder.iterdir() if (p / "__init__.py").exists())
    for module in modules:
        assert re.search(rf"\b{module}(\.py|/)?\b", doc), f"apps/{app}/__init__.py does not say what {module} holds"


@pytest.mark.parametrize("app", APPS)
def test_apps_never_import_each_other(app):
    for path in (ROOT / "apps" / app).rglob("*.py"):
        for module in _imports(path):
            parts = module.split(".")
            if parts[:2] == ["suite", "apps"] and len(parts) > 2:
                assert parts[2] == app, f"{path.relative_to(ROOT)} imports {module}"
            assert parts[0] != "apps", f"{path.relative_to(ROOT)}: import through suite.apps, not apps"


@pytest.mark.parametrize("app", APPS)
def test_cli_only_parses_calls_and_reports(app):
    """Training bodies, evaluation and cards live in the scaffold and in model.py, never in cli.py."""
    source = (ROOT / "apps" / app / "cli.py").read_text()
    for forbidden in ("Trainer(", "TrainConfig(", "make_card(", "publish_model(", "shutil.rmtree"):
        assert forbidden not in source, f"apps/{app}/cli.py uses {forbidden}"


def _train_commands():
    from suite.cli import cli

    ctx = click.Context(cli)
    for app in APPS:
        group = cli.get_command(ctx, app)
        yield app, group.get_command(click.Context(group), "train")


@pytest.mark.parametrize("app, train", list(_train_commands()), ids=APPS)
def test_every_train_command_has_the_shared_options(app, train):
    names = {o for p in train.params for o in p.opts}
    shared = {"--data", "--out", "--steps", "--minutes", "--lr", "--eval-every", "--seed", "--resume", "--force",
              "--export", "--quiet", "--json"}
    assert shared <= names, f"suite {app} train lacks {sorted(shared - names)}"


def test_every_model_option_is_the_shared_one():
    """`--model` means one thing everywhere: a model folder, default the shipped model."""
    from suite.cli import cli

    ctx = click.Context(cli)
    seen = 0
    for app in APPS:
        group = cli.get_command(ctx, app)
        for name in group.list_commands(ctx):
            command = group.get_command(ctx, name)
            for param in getattr(command, "params", []):
                if "--model" in param.opts:
                    seen += 1
                    assert param.name == "model_dir" and param.default is None
                    assert param.help == "Model folder [default: the shipped model].", (app, name)
    assert seen >= len(APPS)
