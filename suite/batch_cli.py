"""`suite batch APP`: a command per registered batch job (suite.batch), built from the registry."""
from pathlib import Path

import click

COMMON = [
    click.Option(["--inputs"], multiple=True, required=True,
                 help="A folder, a list file (.txt, one path a line), a file, or a quoted glob; repeatable."),
    click.Option(["--out"], type=click.Path(dir_okay=False), required=True,
                 help="Results: one JSON line per input (JSONL), appended as they arrive."),
    click.Option(["--workers"], type=click.IntRange(1, 256), default=2, show_default=True,
                 help="Worker processes of the local cluster (ignored with --scheduler ADDRESS)."),
    click.Option(["--scheduler"], default="local", show_default=True,
                 help="local, or the address of a running Dask scheduler (tcp://HOST:8786)."),
    click.Option(["--resume"], is_flag=True, help="Skip inputs already recorded in --out and append the rest."),
    click.Option(["--retry-failed"], is_flag=True, help="With --resume: run again the inputs recorded as errors."),
    click.Option(["--timeout"], type=click.FloatRange(0, min_open=True), default=600.0, show_default=True,
                 help="Seconds one input may take; then it is an error (retried --retries times)."),
    click.Option(["--retries"], type=click.IntRange(0, 20), default=2, show_default=True,
                 help="More attempts for an input that timed out or whose worker died."),
    click.Option(["--in-flight"], type=click.IntRange(1), default=None,
                 help="Tasks submitted at once [default: 4 per worker]."),
    click.Option(["--force"], is_flag=True, help="Replace an existing --out file (without --resume)."),
    click.Option(["--quiet"], is_flag=True, help="No progress bar."),
]


class BatchGroup(click.Group):
    """`suite batch APP ...`: one subcommand per registered job, loaded only when used."""

    def list_commands(self, ctx):
        from suite.batch import job_entry_points
        from suite.registry import RegistryError

        try:
            return list(job_entry_points())
        except RegistryError:  # named when that job is asked for (get_command)
            return []

    def get_command(self, ctx, name):
        from suite.batch import BatchError, get_job

        try:
            job = get_job(name)
        except BatchError:
            return None
        except Exception as exc:  # noqa: BLE001 - one broken app never breaks the others
            raise click.ClickException(f"batch job {name!r} failed to load: {exc}") from None
        options = [o.name for o in job.options if o.expose_value]  # --device is resolved, not passed on

        def callback(**kwargs):
            app_options = {k: kwargs.pop(k) for k in options}
            run_command(name, job, app_options, **kwargs)

        from suite.cli_common import finite_floats

        return finite_floats(click.Command(name, params=[*job.options, *COMMON], callback=callback, help=(
            f"{job.help}\n\n\b\nExamples:\n  suite batch {name} --inputs DIR --out results.jsonl --workers 2\n"
            f"  suite batch {name} --inputs list.txt --out results.jsonl --resume\n"
            f"  suite batch {name} --inputs 'scans/**/*' --out r.jsonl --scheduler tcp://HOST:8786"),
            short_help=job.help.split(" (")[0]))


@click.group(cls=BatchGroup)
def batch():
    """Run an app's file-in job over many files, on this machine or a Dask cluster.

    Each worker loads the model once; results go to a JSONL file, one line per
    input ({"input", "status", "result", "error", "seconds"}), and a rerun with
    --resume finishes an interrupted job with every input exactly once.

    \b
    Examples:
      suite batch speech --inputs clips/ --out transcripts.jsonl --workers 2
      suite batch handwriting --inputs scans.txt --out lines.jsonl --resume
      suite batch caption --inputs 'photos/*.jpg' --out captions.jsonl --scheduler tcp://10.0.0.5:8786
    """


def run_command(name, job, app_options, inputs, out, workers, scheduler, resume, retry_failed, timeout, retries,
                in_flight, force, quiet):
    import os
    import sys

    from suite.batch import BatchError, expand_inputs, read_results, run_batch, start_client
    from suite.cli_common import fail
    from suite.progress import Progress

    out = Path(out)
    try:
        paths = expand_inputs(inputs, job.suffixes)
        if out.exists() and not resume and not force:
            raise BatchError(f"{out} already exists; pass --resume to finish that job, or --force to start over")
        if retry_failed and not resume:
            raise click.UsageError("--retry-failed goes with --resume")
        previous = read_results(out) if resume else {}
        if not out.parent.is_dir() or not os.access(out.parent, os.W_OK):
            raise BatchError(f"{out}: its folder does not exist or cannot be written; choose another --out")
        job.load(**app_options)  # the options are checked, and numba's cache warmed, before any worker starts
    except (BatchError, ValueError, OSError) as exc:
        raise fail(exc) from None
    done = {p for p, r in previous.items() if r.get("status") == "ok" or not retry_failed}
    bar = Progress(len(paths), f"suite batch {name}", start=len([p for p in paths if p in done]), quiet=quiet)
    client = cluster = None
    try:
        if out.exists() and force and not resume:
            out.unlink()  # --force: start over (only now that the job can start)
        client, cluster = start_client(scheduler, workers)
        summary = run_batch(name, app_options, paths, out, client=client, timeout=timeout, retries=retries,
                            in_flight=in_flight, done_already=done, progress=lambda record: bar.update(1))
    except BatchError as exc:
        raise fail(exc) from None
    except KeyboardInterrupt:
        bar.close()
        click.echo(f"Interrupted; the results so far are in {out}: finish with --resume.", err=True)
        raise SystemExit(130) from None
    finally:
        for closing in (client, cluster):
            if closing is not None:
                try:
                    closing.close()
                except Exception:  # noqa: BLE001 - shutting down; nothing left to save
                    pass
    bar.close()
    click.echo(summary.line() + f"; results in {out}", err=True)
    if summary.failed:
        sys.exit(1)
