import json

import click
from click.testing import CliRunner

from suite.cli import cli


def _all_commands(group, ctx, prefix=()):
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        yield prefix + (name,), command
        if isinstance(command, click.Group):
            yield from _all_commands(command, ctx, prefix + (name,))


def test_help_lists_commands_with_an_example():
    result = CliRunner().invoke(cli, ["--help"])
    assert result.exit_code == 0
    assert "Examples:" in result.output
    assert "info" in result.output


def test_every_command_has_help_text():
    ctx = click.Context(cli)
    for path, command in _all_commands(cli, ctx):
        assert command.help, f"suite {' '.join(path)} has no help text"
        result = CliRunner().invoke(cli, [*path, "--help"])
        assert result.exit_code == 0, (path, result.output)


def test_version():
    result = CliRunner().invoke(cli, ["--version"])
    assert result.exit_code == 0
    assert "suite, version" in result.output


def test_info_json_is_machine_readable():
    result = CliRunner().invoke(cli, ["info", "--json"])
    assert result.exit_code == 0, result.output
    facts = json.loads(result.output)
    for key in ("numba", "numpy", "cpu_features", "numba_cache_dir", "cuda_usable"):
        assert key in facts


def test_unknown_command_is_a_usage_error():
    result = CliRunner().invoke(cli, ["no-such-app"])
    assert result.exit_code == 2
    assert "No such command" in result.output
