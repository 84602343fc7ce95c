"""A batch job for the tests of suite.batch: each input is a small text file saying what to do."""
import threading
import time

import click

from suite.batch import BatchJob

NEVER = threading.Event()


def _load(delay=0.0):
    return {"delay": delay}


def _run(state, path):
    with open(path, encoding="utf-8") as f:
        what = f.read().strip()
    if what == "hang":
        NEVER.wait()  # blocks for good: only the timeout ends it
    if what == "fail":
        raise ValueError(f"{path}: poisoned input")
    time.sleep(state["delay"])
    return {"said": what}


JOB = BatchJob("echo", "Echo each file's text (tests).", (".in",), _load, _run,
               options=(click.Option(["--delay"], type=float, default=0.0),))
