"""The `suite` command: parses, calls, reports. Apps arrive through the registry."""
import json
import sys

import click

import suite
from suite.cli_common import finite_floats
from suite.registry import RegistryError, app_entry_points


class AppGroup(click.Group):
    """A click group whose subcommands are the built-ins plus every registered app.

    Apps are imported only when their command is run (or listed with --help),
    so `suite info` stays fast and one broken app cannot break the others.
    """

    @staticmethod
    def _apps(ctx):
        """app_entry_points(), looked up once per command line: --help asks for every app in turn, and each lookup
        scans every installed distribution's entry points (~15 ms)."""
        meta = ctx.find_root().meta
        if "suite.apps" not in meta:
            meta["suite.apps"] = app_entry_points()
        return meta["suite.apps"]

    def list_commands(self, ctx):
        names = set(super().list_commands(ctx))
        try:
            names |= set(self._apps(ctx))
        except RegistryError:
            pass
        return sorted(names)

    def get_command(self, ctx, name):
        command = super().get_command(ctx, name)
        if command is not None:
            return command
        try:
            eps = self._apps(ctx)
        except RegistryError as exc:
            raise click.ClickException(str(exc)) from None
        if name not in eps:
            return None
        try:
            return finite_floats(eps[name].load())
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


from suite.batch_cli import batch  # noqa: E402 - built-in commands register after cli exists
from suite.lab_cli import demo, lab  # noqa: E402

cli.add_command(finite_floats(batch))
cli.add_command(finite_floats(lab))
cli.add_command(finite_floats(demo))


def run(args=None):
    """Run the `suite` command line and return its exit code; every error is one line on stderr.

    Click's usage errors exit 2 and our ClickExceptions 1. Ctrl-C exits 130
    (a command that trains saves its checkpoint first). An OSError that no
    command caught (a disk that filled, a folder that vanished) is one line
    naming the path; anything else is one line saying it is a bug, with the
    traceback only under SUITE_DEBUG=1.
    """
    import os
    import signal

    def terminated(signum, frame):  # SIGTERM unwinds like Ctrl-C: every temporary file and folder is removed
        raise KeyboardInterrupt

    try:
        signal.signal(signal.SIGTERM, terminated)
    except ValueError:  # not the main thread (an embedding program): leave its signals alone
        pass
    try:
        rv = cli.main(args=args, prog_name="suite", standalone_mode=False)
        return rv if isinstance(rv, int) else 0
    except click.exceptions.Abort as exc:
        if isinstance(exc.__context__, KeyboardInterrupt) or isinstance(exc.__cause__, KeyboardInterrupt):
            click.echo("Interrupted.", err=True)
            return 130
        click.echo("Aborted.", err=True)
        return 1
    except KeyboardInterrupt:
        click.echo("Interrupted.", err=True)
        return 130
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except OSError as exc:
        if os.environ.get("SUITE_DEBUG"):
            raise
        where = exc.filename or "a file"
        click.echo(f"Error: {where}: {exc.strerror or exc}; check the path, its folder's permissions and free space",
                   err=True)
        return 1
    except MemoryError:
        click.echo("Error: out of memory; try a smaller input or fewer workers", err=True)
        return 1
    except Exception as exc:  # noqa: BLE001 - the last net: one line, never a traceback
        if os.environ.get("SUITE_DEBUG"):
            raise
        message = " ".join(str(exc).split())[:300] or "(no message)"
        click.echo(f"Error: unexpected {type(exc).__name__}: {message} (a bug in suite; run with SUITE_DEBUG=1 "
                   "for the traceback and report it)", err=True)
        return 1


def main():
    from suite import lean_imports

    lean_imports.install()  # the console command only: numba skips scipy.linalg and cffi's parser
    sys.exit(run())


if __name__ == "__main__":
    main()
