"""Writing files so that nothing half-written is ever left behind.

Every output goes to a temporary file in the destination's folder and is then
renamed over the destination (os.replace is atomic on one filesystem). Outputs
never silently overwrite: callers pass force=True to replace an existing file.
Temporary names carry the writer's process id (``temp_prefix``), so what a
killed run (SIGKILL) could not remove is swept by the next write of the same
output (``sweep_stale``) once that process is gone.
"""
import contextlib
import json
import os
import shutil
import tempfile
from pathlib import Path


# Files that mark a folder as one we wrote (a run, a model, a built dataset): --force replaces only such folders.
OUR_MARKERS = ("card.json", "config.json", "model.safetensors", "last", "best", "metrics.jsonl", ".training.pid",
               "report.json", "corpus.json", "dataset.json", "manifest.json", "chorales.json", "vocab.json",
               "trainer.json")


MAX_INPUT_BYTES = 256 * 2**20  # a text input larger than this is refused before it is read


class InputTooLargeError(ValueError):
    """An input that is not a regular file (a device, a FIFO) or is larger than the limit (one-line message)."""


def read_bytes_limited(path, limit=MAX_INPUT_BYTES, stream=None):
    """The bytes of a user's input file, or of ``stream`` (standard input) when given; at most ``limit``.

    A device or FIFO (/dev/zero, a named pipe) would be read forever and a huge
    file would fill memory: both are refused with one line (InputTooLargeError)
    before or while reading, never after allocating gigabytes. OSError as usual
    for a missing file or a folder.
    """
    import stat

    if stream is None:
        info = os.stat(path)
        if stat.S_ISDIR(info.st_mode):
            raise IsADirectoryError(21, "Is a directory", str(path))
        if not stat.S_ISREG(info.st_mode):
            raise InputTooLargeError(f"{path}: not a regular file (a device or a pipe); give a file, or - for "
                                     "standard input where the command takes it")
        size = info.st_size
        if size > limit:
            raise InputTooLargeError(f"{path}: {size / 2**20:.0f} MiB, more than the {limit / 2**20:.0f} MiB this "
                                     "command reads; split it into smaller files")
        with open(path, "rb") as f:
            data = f.read(limit + 1)
    else:
        data = stream.read(limit + 1)
    if len(data) > limit:
        raise InputTooLargeError(f"{path}: more than the {limit / 2**20:.0f} MiB this command reads; split it into "
                                 "smaller files")
    return data


class RefuseReplaceError(PermissionError):
    """--force was asked to replace a folder that we did not make (one-line message)."""


def check_replaceable(path, what="output"):
    """Raise RefuseReplaceError unless ``path`` may be deleted and rewritten by --force.

    Only a folder holding one of OUR_MARKERS (or an empty folder) is ours to
    replace; never the working folder, one of its ancestors, the home folder or /,
    and never a plain file.
    """
    path = Path(path)
    if not os.path.lexists(path):
        return path
    resolved = path.resolve()
    cwd = Path.cwd().resolve()
    home = Path.home().resolve()
    if resolved == cwd or resolved in cwd.parents or resolved == home or resolved == Path(resolved.anchor):
        raise RefuseReplaceError(f"{path}: refusing to replace the working folder, one of its parents, the home "
                                 f"folder or /; choose a new folder for the {what}")
    if path.is_symlink() or not path.is_dir():
        raise RefuseReplaceError(f"{path} exists and is not a folder we wrote; choose another {what} folder")
    try:
        entries = {e.name for e in os.scandir(path)}
    except OSError as exc:
        raise RefuseReplaceError(f"{path}: cannot look inside ({exc.strerror}); choose another {what} folder") \
            from None
    if entries and not entries & set(OUR_MARKERS):
        raise RefuseReplaceError(f"{path} holds files that suite did not write (no run, model or dataset in it); "
                                 f"--force will not delete it: choose another {what} folder")
    return path


class OutputExistsError(FileExistsError):
    """The output exists and force was not given."""

    def __init__(self, path):
        super().__init__(f"{path} already exists; choose another output or pass --force to overwrite it")
        self.path = path


def check_writable(path, force=False):
    """Fail early (before any work) if ``path`` exists without force or its folder cannot be written."""
    path = Path(path)
    if path.exists() and not force:
        raise OutputExistsError(path)
    folder = path.parent if str(path.parent) else Path(".")
    if folder.exists() and not os.access(folder, os.W_OK):
        raise PermissionError(f"cannot write to folder {folder}: permission denied; choose another output")
    return path


TEMP_TAG = ".suite-"  # temporary names are .NAME.suite-PID-XXXX: a later run can tell whose they are


def temp_prefix(name):
    """The prefix of this process's temporary files and folders for an output called ``name``."""
    return f".{name}{TEMP_TAG}{os.getpid()}-"


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


_STALE = {}  # folder -> {output name: [paths]}: what dead processes left there, scanned once per process


def _scan_stale(folder):
    """{output name: [temporary paths]} in ``folder`` whose writer process is gone."""
    found = {}
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return found
    for entry in entries:
        if not entry.name.startswith(".") or TEMP_TAG not in entry.name:
            continue
        name, _, rest = entry.name[1:].rpartition(TEMP_TAG)
        pid = rest.split("-", 1)[0]
        if pid.isdigit() and int(pid) != os.getpid() and not _alive(int(pid)):
            found.setdefault(name, []).append(entry.path)
    return found


def sweep_stale(folder, name):
    """Remove the temporary files and folders that a killed run (SIGKILL, power loss) left for output ``name``
    in ``folder``: those whose process is gone. A live process's are never touched. Returns what was removed.

    The folder is scanned once per process (a command writing thousands of files into one folder, as
    `read --lines-out` or a batch job can, would otherwise list it once per file)."""
    key = os.path.abspath(folder)
    if key not in _STALE:
        _STALE[key] = _scan_stale(folder)
    removed = []
    for path in _STALE[key].pop(name, []):
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path, ignore_errors=True)
        else:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
        removed.append(path)
    return removed


def current_umask():
    """The process's file-creation mask (reading it means setting it, so set it back at once)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path, force=True, suffix=None):
    """Yield a temporary path beside ``path``; on success rename it onto ``path``.

    On any exception the temporary file is removed and ``path`` is untouched.
    Without force the final step is a no-replace link (atomic): of two
    processes writing the same name at once, one wins and the other gets
    OutputExistsError, never a silent overwrite.
    """
    path = Path(path)
    if not force and os.path.lexists(path):
        raise OutputExistsError(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sweep_stale(path.parent, path.name)
    fd, tmp = tempfile.mkstemp(prefix=temp_prefix(path.name), suffix=suffix or ".tmp", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, 0o666 & ~current_umask())  # mkstemp's file is private; the result should not be
        if force:
            os.replace(tmp, path)
        else:
            _claim(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _claim(tmp, path):
    """Move ``tmp`` to ``path`` only if ``path`` does not exist, atomically (link, then drop the temporary name)."""
    try:
        os.link(tmp, path)
    except FileExistsError:
        raise OutputExistsError(path) from None
    except OSError:  # a filesystem without hard links: O_EXCL claims the name, then the rename fills it
        if not claim_name(path):
            raise OutputExistsError(path) from None
        os.replace(tmp, path)
        return
    os.unlink(tmp)


def claim_name(path):
    """Create ``path`` empty if it does not exist (O_EXCL) and return True; False if it exists."""
    try:
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666))
    except FileExistsError:
        return False
    return True


def claim_free_base(stem, suffixes):
    """The first ``stem-N`` (N = 1, 2, ...) with no ``stem-N<suffix>`` file, claimed atomically.

    The file for suffixes[0] is created empty, so that of several processes
    picking at once each gets its own N; write the outputs with
    staged_files(..., owned=[that file]), which also removes it on failure.
    """
    n = 1
    while True:
        base = Path(f"{stem}-{n}")
        if not any(os.path.lexists(f"{base}{ext}") for ext in suffixes[1:]) and claim_name(f"{base}{suffixes[0]}"):
            return base
        n += 1


@contextlib.contextmanager
def staged_files(paths, force=False, owned=()):
    """Yield {path: temporary path} in a private folder beside the outputs; on success move each into place.

    Without force each output is claimed with a no-replace link, so a second
    process writing the same names gets OutputExistsError and what it had
    already placed is taken back. ``owned``: outputs this process claimed
    itself (claim_free_base): replaced, and removed again on failure. On any
    failure nothing new is left: no temporary folder, no partial output.
    """
    paths = [Path(p) for p in paths]
    owned = {Path(p) for p in owned}
    folder = paths[0].parent if str(paths[0].parent) else Path(".")
    folder.mkdir(parents=True, exist_ok=True)
    sweep_stale(folder, paths[0].stem)
    tmp = Path(tempfile.mkdtemp(prefix=temp_prefix(paths[0].stem), dir=folder))
    placed = []
    try:
        yield {p: tmp / f"{i}{p.suffix}" for i, p in enumerate(paths)}
        for i, p in enumerate(paths):
            t = tmp / f"{i}{p.suffix}"
            os.chmod(t, 0o666 & ~current_umask())
            if force or p in owned:
                os.replace(t, p)
            else:
                _claim(t, p)
                placed.append(p)
    except BaseException:
        for p in placed + sorted(owned):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(p)
        raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def write_bytes(path, data, force=True):
    """Write ``data`` atomically, flushed to disk before the rename (a crash leaves old or new, never half)."""
    with atomic_path(path, force=force) as tmp:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())


def write_text(path, text, force=True):
    """UTF-8, newlines exactly as given (no platform translation)."""
    write_bytes(path, text.encode("utf-8"), force=force)


def write_json(path, obj, force=True):
    write_text(path, json.dumps(obj, indent=2, sort_keys=False) + "\n", force=force)


def replace_dir(tmp_dir, final_dir):
    """Swap a fully written folder ``tmp_dir`` in for ``final_dir``.

    The old folder is kept as ``<final_dir>.old`` until the new one is in place,
    so a crash at any moment leaves one complete copy (readers may fall back to .old).
    """
    tmp_dir, final_dir = Path(tmp_dir), Path(final_dir)
    old = final_dir.with_name(final_dir.name + ".old")
    if old.exists():
        shutil.rmtree(old)
    if final_dir.exists():
        final_dir.rename(old)
    tmp_dir.rename(final_dir)
    if old.exists():
        shutil.rmtree(old)


@contextlib.contextmanager
def staged_dir(final_dir, guard=True):
    """Yield a new empty folder beside ``final_dir``; when the block ends it replaces ``final_dir`` whole.

    On an exception the folder is removed and ``final_dir`` is untouched: a
    reader sees the old contents or the new, never half of them. guard: refuse
    (check_replaceable) to replace a folder we did not make; pass False only
    for a subfolder inside a folder we own (a dataset's images/test, say).
    """
    final_dir = Path(final_dir)
    if guard:
        check_replaceable(final_dir)  # before the work, so a refusal costs nothing
    try:
        final_dir.parent.mkdir(parents=True, exist_ok=True)
        sweep_stale(final_dir.parent, final_dir.name)
        tmp = Path(tempfile.mkdtemp(prefix=temp_prefix(final_dir.name), dir=final_dir.parent))
    except OSError as exc:  # name the folder the user gave, not our hidden temporary one
        raise OSError(exc.errno, exc.strerror, str(final_dir)) from None
    try:
        yield tmp
        tmp.chmod(0o777 & ~current_umask())  # mkdtemp's folder is private; the result is not
        replace_dir(tmp, final_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
