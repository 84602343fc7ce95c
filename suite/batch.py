"""Batch jobs: one app's file-in command over thousands of inputs, on this machine or a Dask cluster.

An app registers a ``BatchJob`` under the "suite.batch" entry-point group
(one line in pyproject.toml, as apps register their CLI); this module imports
no app by name. A job says which files it takes, its own options (model,
beam...), how to load its state once (``load``: the model, decoders, numba
compiled) and how to turn one input into a JSON-able result (``run``).

The engine is dask.distributed for one machine and for many:

- ``--scheduler local`` starts a LocalCluster of worker processes on
  loopback (one thread, one BLAS and one numba thread each) and closes it at
  the end; ``tcp://HOST:8786`` joins a running cluster.
- Each worker keeps the loaded state in a module-level cache keyed by the
  job and its options, so a model loads once per worker, not once per file.
- At most ``in_flight`` tasks exist at a time: a list of a million inputs
  never becomes a million futures.
- The per-input timeout is enforced inside the task (Dask has none): the input
  runs in a thread the task waits for; on a timeout the record says so and
  the driver restarts that worker, which ends the stuck thread.
- A worker that dies takes no result with it: Dask reruns its tasks
  elsewhere; ``retries`` more attempts are made for an input that timed out or
  whose worker kept dying.
- Results are appended to a JSONL file as they arrive, one ``os.write`` of a
  whole line each (O_APPEND), so a killed driver leaves complete lines only;
  ``--resume`` skips inputs already recorded and cuts a torn last line (a
  power loss mid-write) before appending.
"""
import json
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from suite.threads import BLAS_THREAD_VARS

GROUP = "suite.batch"
WORKER_ENV = dict.fromkeys(BLAS_THREAD_VARS + ("NUMBA_NUM_THREADS",), "1")


class BatchError(ValueError):
    """A batch job that cannot start (bad inputs, output, options, scheduler): one-line message."""


@dataclass(frozen=True)
class BatchJob:
    """What an app hands `suite batch`: the job's name, inputs, options, and how to load and run it.

    load(**options) -> state is called once per worker (and once in the driver,
    to check the options and warm numba's cache before any worker starts);
    run(state, path) -> dict is called per input and raises ValueError or
    OSError (one-line message) for a bad input.
    """

    name: str                 # "speech transcribe": what the job is called in messages
    help: str                 # one paragraph for `suite batch APP --help`
    suffixes: tuple           # file suffixes taken from an --inputs folder (lower case, with the dot)
    load: Callable
    run: Callable
    options: tuple = field(default_factory=tuple)  # click.Option objects of the app's own settings


def job_entry_points():
    """{name: EntryPoint} of the registered batch jobs (suite.registry: duplicates are an error)."""
    from suite.registry import registered

    return registered(GROUP, "batch jobs")


def get_job(name):
    """The BatchJob registered as ``name``, or at ``module:attribute`` (a job not installed as an entry point,
    such as the tests' own); the attribute may be a BatchJob or a function returning one."""
    if ":" in name:
        import importlib

        module, _, attr = name.partition(":")
        try:
            job = getattr(importlib.import_module(module), attr)
        except (ImportError, AttributeError) as exc:
            raise BatchError(f"no batch job at {name!r} ({one_line(exc)})") from None
    else:
        eps = job_entry_points()  # suite.registry.RegistryError when two jobs share a name
        if name not in eps:
            raise BatchError(f"no batch job {name!r}; known: {', '.join(eps) or 'none'}")
        job = eps[name].load()
    return job() if callable(job) and not isinstance(job, BatchJob) else job


# -- inputs --------------------------------------------------------------------------------------------
def expand_inputs(specs, suffixes):
    """The input paths of --inputs values, in order, each once: a folder (its files with ``suffixes``,
    recursively, sorted), a list file (.txt/.lst/.list: one path a line, # comments), a file the job
    reads, or a glob pattern. BatchError when a value matches nothing."""
    import glob

    seen, out = set(), []

    def add(p):
        if p not in seen:
            seen.add(p)
            out.append(p)

    for spec in specs:
        path = Path(spec)
        if path.is_dir():
            found = sorted(str(p) for p in path.rglob("*") if p.is_file() and p.suffix.lower() in suffixes)
            if not found:
                raise BatchError(f"{spec}: no {'/'.join(suffixes)} files in this folder")
        elif path.is_file() and path.suffix.lower() in (".txt", ".lst", ".list") and ".txt" not in suffixes:
            try:
                lines = path.read_text(encoding="utf-8").splitlines()
            except UnicodeDecodeError:
                raise BatchError(f"{spec}: not a UTF-8 list of paths") from None
            found = [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]
            if not found:
                raise BatchError(f"{spec}: an empty list; expected one input path a line")
        elif path.is_file():
            found = [spec]
        else:
            found = sorted(glob.glob(spec, recursive=True))
            if not found:
                raise BatchError(f"{spec}: no such file, folder or matching pattern")
        for p in found:
            add(p)
    return out


# -- the output file -----------------------------------------------------------------------------------
def read_results(path):
    """{input: last record} of a results file, after cutting a torn last line; {} if there is none."""
    path = Path(path)
    if not path.exists():
        return {}
    data = path.read_bytes()
    keep = data.rfind(b"\n") + 1  # everything after the last newline is a torn write
    if keep < len(data):
        os.truncate(path, keep)
    records = {}
    for n, line in enumerate(data[:keep].splitlines(), 1):
        try:
            record = json.loads(line)
            records[record["input"]] = record
        except (json.JSONDecodeError, KeyError, TypeError, UnicodeDecodeError):
            raise BatchError(f"{path}:{n}: not a result line of `suite batch`; give another --out") from None
    return records


def _plain(value):
    """JSON for numpy scalars and arrays a job may return; anything else is its repr (never a crash mid-job)."""
    if hasattr(value, "tolist"):
        return value.tolist()
    return repr(value)


class ResultWriter:
    """Appends one JSON line per record with a single write (never a torn line from a killed process)."""

    def __init__(self, path):
        self.fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)

    def write(self, record):
        line = json.dumps(record, ensure_ascii=False, default=_plain) + "\n"
        os.write(self.fd, line.encode("utf-8"))

    def close(self):
        os.fsync(self.fd)
        os.close(self.fd)


# -- the worker side -----------------------------------------------------------------------------------
_STATES = {}  # (job, options) -> loaded state: one model per worker process


def _state(job_name, options):
    key = (job_name, tuple(sorted(options.items())))
    if key not in _STATES:
        job = get_job(job_name)
        _STATES[key] = (job, job.load(**options))
    return _STATES[key]


def one_line(exc):
    text = " ".join(str(exc).split())
    return text or type(exc).__name__


def run_task(job_name, options, path, timeout):
    """Run one input in this worker: a record {"input", "status", "result", "error", "seconds"}.

    Errors of the input (ValueError, OSError) and anything unexpected become
    an error record; a run past ``timeout`` seconds an error record marked
    "retryable" (the stuck thread is left to the worker restart that follows).
    """
    from suite.threads import single_blas_thread

    t0 = time.perf_counter()
    box = {}

    def work():
        try:
            with single_blas_thread():  # loading (first input on this worker) and running
                job, state = _state(job_name, options)
                box["result"] = job.run(state, path)
        except (ValueError, OSError) as exc:
            box["error"] = one_line(exc)
        except Exception as exc:  # noqa: BLE001 - a bad input never kills the job
            box["error"] = f"unexpected {type(exc).__name__}: {one_line(exc)}"

    thread = threading.Thread(target=work, name=f"suite-batch {path}", daemon=True)
    thread.start()
    thread.join(timeout)
    record = {"input": path, "status": "ok", "result": None, "error": None}
    if thread.is_alive():
        record |= {"status": "error", "error": f"timed out after {timeout:g} s", "retryable": True,
                   "worker": _worker_address()}
    elif "error" in box:
        record |= {"status": "error", "error": box["error"]}
    else:
        record["result"] = box["result"]
    record["seconds"] = round(time.perf_counter() - t0, 4)
    return record


def _worker_address():
    try:
        from distributed import get_worker

        return get_worker().address
    except (ImportError, ValueError):
        return None


# -- the driver ----------------------------------------------------------------------------------------
@dataclass
class Summary:
    done: int = 0
    failed: int = 0
    skipped: int = 0
    retried: int = 0
    seconds: float = 0.0

    def line(self):
        rate = self.done / self.seconds if self.seconds > 0 else 0.0
        return (f"{self.done} done, {self.failed} failed, {self.skipped} already in the output; "
                f"{rate:.1f} files/s over {self.seconds:.1f} s")


def start_client(scheduler, workers):
    """(client, cluster or None): a LocalCluster of ``workers`` single-threaded processes on loopback, or a
    client of the running scheduler at ``scheduler``."""
    import logging

    from distributed import Client, LocalCluster

    for name in ("distributed", "tornado"):
        logging.getLogger(name).setLevel(logging.CRITICAL)  # progress is ours; dask's logs are noise here
    if scheduler == "local":
        os.environ.update(WORKER_ENV)  # the worker processes inherit the driver's environment
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                               dashboard_address=None, silence_logs=logging.CRITICAL)
        return Client(cluster), cluster
    try:
        return Client(scheduler, timeout="10s"), None
    except (OSError, TimeoutError, ValueError) as exc:
        raise BatchError(f"cannot reach the Dask scheduler at {scheduler} ({one_line(exc)}); start one with "
                         "`dask scheduler` and workers with `dask worker ADDRESS`") from None


def run_batch(job_name, options, inputs, out, *, client, timeout=600.0, retries=2, in_flight=None,
              done_already=(), progress=None):
    """Run ``inputs`` through the job on ``client``'s workers, appending a record per input to ``out``.

    done_already: inputs to skip (already recorded). Returns a Summary.
    progress(record) is called after each record is written.
    """
    from distributed import as_completed

    skip = set(done_already)
    todo = [p for p in inputs if p not in skip]
    summary = Summary(skipped=len(inputs) - len(todo))
    workers = max(len(client.scheduler_info().get("workers", {})), 1)
    limit = in_flight or 4 * workers
    writer = ResultWriter(out)
    attempts = {}
    t0 = time.perf_counter()
    queue = iter(todo)
    pending = {}
    completed = as_completed()

    def submit(path):
        future = client.submit(run_task, job_name, options, path, timeout, pure=False)
        pending[future] = path
        completed.add(future)

    def refill():
        while len(pending) < limit:
            path = next(queue, None)
            if path is None:
                return
            submit(path)

    try:
        refill()
        for future in completed:
            path = pending.pop(future)
            try:
                record = future.result()
            except Exception as exc:  # noqa: BLE001 - the worker died too often (KilledWorker) or the task was lost
                record = {"input": path, "status": "error", "result": None,
                          "error": f"worker lost ({type(exc).__name__}: {one_line(exc)[:200]})", "seconds": None,
                          "retryable": True}
            if record.get("worker"):  # it timed out there: a restart ends the stuck thread
                try:
                    client.restart_workers([record["worker"]], raise_for_error=False)
                except Exception:  # noqa: BLE001 - a worker we cannot restart stays as it is
                    pass
            if record.get("retryable") and attempts.get(path, 0) < retries:
                attempts[path] = attempts.get(path, 0) + 1
                summary.retried += 1
                submit(path)
                continue
            record.pop("worker", None)
            record.pop("retryable", None)
            writer.write(record)
            summary.done += 1
            summary.failed += record["status"] != "ok"
            if progress is not None:
                progress(record)
            refill()
    finally:
        for future in list(pending):
            future.cancel()
        writer.close()
        summary.seconds = time.perf_counter() - t0
    return summary
