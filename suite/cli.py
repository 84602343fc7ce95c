"""The `suite` command: parses, calls, reports. Apps arrive through the registry."""
import json
import sys

import click

import suite
from suite.registry import RegistryError, app_entry_points


class AppGroup(click.Group):
    """A click group whose subcommands are the built-ins plus every registered app.

    Apps are imported only when their command is run (or listed with --help),
    so `suite info` stays fast and one broken app cannot break the others.
    """

    def list_commands(self, ctx):
        names = set(super().list_commands(ctx))
        try:
            names |= set(app_entry_points())
        except RegistryError:
            pass
        return sorted(names)

    def get_command(self, ctx, name):
        command = super().get_command(ctx, name)
        if command is not None:
            return command
        try:
            eps = app_entry_points()
        except RegistryError as exc:
            raise click.ClickException(str(exc)) from None
        if name not in eps:
            return None
        try:
            return eps[name].load()
        except Exception as exc:  # noqa: BLE001 - report, never traceback
            raise click.ClickException(f"app {name!r} failed to load: {exc}") from None


@click.group(cls=AppGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(suite.__version__, prog_name="suite")
def cli():
    """LSTM applications on our own Numba kernels.

    \b
    Examples:
      suite info              versions, CPU features, threads, caches, GPU
      suite demo              train a small LSTM and watch its loss fall
      suite lab adding --cell rnn --T 100
                              the adding problem: can a plain RNN carry 50 steps?
    """


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def info(as_json):
    """Versions, CPU features, threads, numba cache dir and CUDA availability.

    Example: suite info --json
    """
    from suite.info import collect

    facts = collect()
    if as_json:
        click.echo(json.dumps(facts, indent=2))
        return
    width = max(len(k) for k in facts)
    for key, value in facts.items():
        if isinstance(value, list):
            value = " ".join(value) or "-"
        click.echo(f"{key:<{width}}  {value}")


from suite.lab_cli import demo, lab  # noqa: E402 - built-in commands register after cli exists

cli.add_command(lab)
cli.add_command(demo)


def main():
    try:
        cli(prog_name="suite")
    except KeyboardInterrupt:
        click.echo("Interrupted.", err=True)
        sys.exit(130)


if __name__ == "__main__":
    main()
