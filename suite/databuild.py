"""The data-build toolkit every `suite APP data build` uses.

- Data folders live under the working folder (``data_dir("text")`` is
  ./data/text), never inside the installed package.
- Each item is drawn from its own generator, ``item_rng(seed, split_id, index,
  stream)``: what a worker computes never depends on which worker, or how many.
- One worker pool (``parallel_map``), ordered results, chunks of items.
- One deterministic npz writer (``write_npz``): the same arrays give the same
  bytes, written atomically.
- One output-folder guard (``check_data_dir``) and one report file per build
  (``REPORT``, with a "format" key), read back by ``read_report``.
- One split of a user's own data (``holdout_split``: 5 % held out, seeded).
- One error class, ``DataError``: a dataset that is missing, unreadable or
  too small, with a one-line message that says how to build it.
"""
import hashlib
import os
import zipfile
from pathlib import Path

from suite.fileio import atomic_path

# NumPy is imported inside the functions that use it: every app's CLI imports this module for data_dir, and
# `suite --help` should not pay for NumPy.

REPORT = "report.json"
HOLDOUT_FRACTION = 0.05


class DataError(ValueError):
    """A dataset that cannot be built or read (one-line message naming the folder or file and the fix)."""


def data_dir(app):
    """The default data folder of ``app``: data/<app> under the working folder."""
    return Path("data") / app


def item_rng(seed, split_id, index, stream=0):
    """The generator of one item: keyed by (seed, split, index, stream), so workers never matter.

    split_id: the app's fixed integer for the split (each app keeps its table,
    so that a rebuilt dataset is byte-identical to the shipped models' one);
    stream: separate draws of one item (scene, rendering, caption, noise...).
    """
    import numpy as np

    return np.random.default_rng([int(seed), int(split_id), int(index), int(stream)])


def chunks(n, size):
    """(start, stop) pairs covering range(n) in pieces of ``size``."""
    return [(s, min(s + size, n)) for s in range(0, n, size)]


def _leave_signals_to_parent():
    """A pool worker ignores Ctrl-C and SIGTERM (both reach the whole process group): the parent alone stops,
    cancels what has not started and waits for the running tasks. A worker interrupted inside the pool's
    queues could leave its sisters waiting on a lock it held, and the command hung after "Interrupted."."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


def parallel_map(fn, tasks, workers=1, progress=None, count=len, total=None):
    """[fn(task) for task in tasks] on ``workers`` processes, in order.

    progress(done, total) is called after each task with done/total counted by
    ``count(result)`` (default: a task returns a list of items) and total the
    ``total`` given (the number of items; None if not known). fn must be a
    module-level function (it is pickled to the workers). Ctrl-C or SIGTERM
    stops the parent only: tasks not started are cancelled, running ones
    finish, the workers exit, and the KeyboardInterrupt goes on up.
    """
    tasks = list(tasks)
    results, done = [], 0
    executor = None
    if workers > 1 and len(tasks) > 1:
        from concurrent.futures import ProcessPoolExecutor

        executor = ProcessPoolExecutor(max_workers=workers, initializer=_leave_signals_to_parent)
    try:
        mapped = executor.map(fn, tasks) if executor else map(fn, tasks)
        for result in mapped:
            results.append(result)
            if progress is not None:
                done += count(result)
                progress(done, total)
    finally:
        if executor is not None:
            executor.shutdown(cancel_futures=True)
    return results


def write_npz(path, arrays, level=1):
    """np.savez_compressed, but byte-identical for identical arrays (fixed zip timestamps), written atomically.

    level: zlib level (1 is about 4x faster than numpy's 6 on noisy pixels, 3 % bigger).
    """
    import numpy as np

    with atomic_path(path, suffix=".npz") as tmp:
        with open(tmp, "wb") as f:
            with zipfile.ZipFile(f, "w", compression=zipfile.ZIP_DEFLATED) as zf:
                for name, arr in arrays.items():
                    info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
                    info.compress_type = zipfile.ZIP_DEFLATED
                    try:
                        info.compress_level = level  # Python >= 3.13
                    except AttributeError:
                        info._compresslevel = level  # what ZipFile.open(ZipInfo, "w") reads before 3.13
                    with zf.open(info, "w", force_zip64=True) as member:
                        np.lib.format.write_array(member, np.require(arr, requirements='C'), allow_pickle=False)  # 0-d stays 0-d
            f.flush()
            os.fsync(f.fileno())
    return path


def read_npz(path, what="dataset"):
    """{name: array} of an npz written by write_npz; DataError if it is missing or unreadable."""
    import numpy as np

    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file; build the {what} first")
    try:
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise DataError(f"{path}: unreadable or incomplete ({' '.join(str(exc).split())}); rebuild the {what}") \
            from None


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def check_data_dir(out, force, app):
    """Refuse (DataError) to build into a non-empty folder without force; returns the Path."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise DataError(f"{out} is a file; give a folder for the {app} dataset")
    if out.exists() and any(out.iterdir()) and not force:
        raise DataError(f"{out} already exists; pass --force to rebuild it")
    return out


def write_report(out_dir, report, format_version):
    """The build's report as out_dir/REPORT, with its "format" first."""
    from suite.fileio import write_json

    report = {"format": format_version} | {k: v for k, v in report.items() if k != "format"}
    write_json(Path(out_dir) / REPORT, report)
    return report


def read_report(out_dir, format_version=None, legacy=(), app=None):
    """The report of a built dataset (REPORT, or an older build's file name in ``legacy``); DataError if none."""
    import json

    out_dir = Path(out_dir)
    for name in (REPORT, *legacy):
        path = out_dir / name
        if path.is_file():
            try:
                report = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
                raise DataError(f"{path}: unreadable ({' '.join(str(exc).split())}); rebuild the dataset") from None
            if not isinstance(report, dict):
                raise DataError(f"{path}: not a dataset report; rebuild the dataset")
            if format_version is not None and report.get("format") != format_version:
                raise DataError(f"{path}: format {report.get('format')!r}, this suite reads {format_version}; "
                                "rebuild the dataset with --force")
            return report
    hint = f" (`suite {app} data build --out {out_dir}`)" if app else ""
    raise DataError(f"{out_dir}: no dataset here; build it first{hint}")


def read_user_text(path, expected):
    """The text of a user's UTF-8 input file, read within suite.fileio's bound (no device, no file over
    256 MiB); DataError (one line naming the file) otherwise. expected: what the file should be, for the
    messages (e.g. "text file", "TSV file of file<TAB>text lines")."""
    from suite.fileio import InputTooLargeError, read_bytes_limited

    try:
        data = read_bytes_limited(path)
    except InputTooLargeError as exc:
        raise DataError(str(exc)) from None
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise DataError(f"{path}: is a folder; give a {expected}") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror})") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not UTF-8 text (byte {exc.start}); give a {expected} in UTF-8 (iconv converts "
                        "one)") from None


def read_tsv_lines(path, expected):
    """The lines of a user's UTF-8 TSV (read_user_text); expected: what a line holds (e.g. "file<TAB>text")."""
    return read_user_text(path, f"TSV file of {expected} lines").splitlines()


def read_file_tsv(tsv, columns, header=None):
    """Rows of a TSV that lists files with their text: file<TAB>text[<TAB>extra...], one a line.

    Each row is (path relative to the TSV's folder, text, *extras): ``columns``
    names the optional extra columns (a missing one is "-"). Blank lines, #
    comments and a first line starting with ``header`` are skipped. DataError
    (one line naming the file, and the line) when it is missing, not UTF-8,
    malformed or empty.
    """
    tsv = Path(tsv)
    lines = read_tsv_lines(tsv, "file<TAB>text")
    rows = []
    for n, line in enumerate(lines, 1):
        if not line.strip() or line.startswith("#") or (n == 1 and header and line.startswith(header)):
            continue
        parts = line.split("\t")
        if len(parts) < 2:
            raise DataError(f"{tsv}:{n}: expected file<TAB>text, got {line[:60]!r}")
        extras = [parts[2 + i] if len(parts) > 2 + i else "-" for i in range(len(columns))]
        rows.append((tsv.parent / parts[0], parts[1], *extras))
    if not rows:
        raise DataError(f"{tsv}: no rows; expected lines of file<TAB>text")
    return rows


def holdout_split(n, fraction=HOLDOUT_FRACTION, seed=0):
    """(train indices, held-out indices) of n user items: a seeded shuffle, at least one held out."""
    import numpy as np

    if n < 2:
        raise DataError(f"{n} items; need at least 2 (one to train on, one to hold out)")
    order = np.random.default_rng(seed).permutation(n)
    n_held = max(1, int(n * fraction + 1e-9))  # 5 %: n // 20, as every app held out before
    return order[n_held:], order[:n_held]
