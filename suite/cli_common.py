"""Pieces every app's CLI shares."""
import shutil
from pathlib import Path

import click


def prepare_run_dir(out, resume, force, export=None):
    """Check (and with --force clear) a training run folder before any work starts.

    An existing run is only continued with --resume or replaced with --force;
    --resume needs a checkpoint; an existing --export folder needs --force.
    """
    out = Path(out)
    if export and Path(export).exists() and not force:
        raise click.ClickException(f"{export} already exists; pass --force to replace it")
    if out.exists() and not resume:
        if not force:
            raise click.ClickException(f"{out} already exists; pass --resume to continue it or --force to start over")
        shutil.rmtree(out)
    if resume and not (out / "last").exists():
        raise click.ClickException(f"--resume: no checkpoint in {out}/last; run without --resume first")
    return out
