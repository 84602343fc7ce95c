"""Writing files so that nothing half-written is ever left behind.

Every output goes to a temporary file in the destination's folder and is then
renamed over the destination (os.replace is atomic on one filesystem). Outputs
never silently overwrite: callers pass force=True to replace an existing file.
"""
import contextlib
import json
import os
import shutil
import tempfile
from pathlib import Path


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


def current_umask():
    """The process's file-creation mask (reading it means setting it, so set it back at once)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path, force=True, suffix=None):
    """Yield a temporary path beside ``path``; on success rename it onto ``path``.

    On any exception the temporary file is removed and ``path`` is untouched.
    """
    path = Path(path)
    if not force and path.exists():
        raise OutputExistsError(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix or ".tmp", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, 0o666 & ~current_umask())  # mkstemp's file is private; the result should not be
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


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
def staged_dir(final_dir):
    """Yield a new empty folder beside ``final_dir``; when the block ends it replaces ``final_dir`` whole.

    On an exception the folder is removed and ``final_dir`` is untouched: a
    reader sees the old contents or the new, never half of them.
    """
    final_dir = Path(final_dir)
    final_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final_dir.name}.", dir=final_dir.parent))
    try:
        yield tmp
        tmp.chmod(0o777 & ~current_umask())  # mkdtemp's folder is private; the result is not
        replace_dir(tmp, final_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
