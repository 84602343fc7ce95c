import os
import stat

import pytest

from suite.fileio import OutputExistsError, atomic_path, current_umask, write_text


def test_outputs_get_the_usual_permissions_not_mkstemps_private_ones(tmp_path):
    path = tmp_path / "out.txt"
    write_text(path, "a\r\nb\n")
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~current_umask()
    assert path.read_bytes() == b"a\r\nb\n"  # written exactly, no newline translation


def test_a_failed_write_leaves_nothing_and_existing_outputs_need_force(tmp_path):
    path = tmp_path / "out.txt"
    with pytest.raises(RuntimeError):
        with atomic_path(path) as tmp:
            tmp.write_text("half")
            raise RuntimeError("crash")
    assert os.listdir(tmp_path) == []
    write_text(path, "first")
    with pytest.raises(OutputExistsError, match="--force"):
        write_text(path, "second", force=False)
    assert path.read_text() == "first"


def _dead_pid():
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_a_killed_runs_temporary_files_are_swept_by_the_next_write(tmp_path):
    """SIGKILL gives no chance to clean up: the next write of the same output removes what a dead process left,
    and never what a live one is writing."""
    from suite.fileio import TEMP_TAG, staged_dir, sweep_stale

    dead, live = _dead_pid(), os.getpid()
    (tmp_path / f".out.png{TEMP_TAG}{dead}-abc.png").write_text("half")
    (tmp_path / f".model{TEMP_TAG}{dead}-xyz").mkdir()
    (tmp_path / f".model{TEMP_TAG}{dead}-xyz" / "weights").write_text("half")
    keep = tmp_path / f".out.png{TEMP_TAG}{live}-mine.png"
    keep.write_text("being written")
    other = tmp_path / ".notes.txt.swp"
    other.write_text("an editor's file")
    write_text(tmp_path / "out.png", "new")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [keep.name, other.name, "out.png", f".model{TEMP_TAG}{dead}-xyz"])
    with staged_dir(tmp_path / "model") as folder:
        (folder / "config.json").write_text("{}")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([keep.name, other.name, "out.png", "model"])
    assert sweep_stale(tmp_path / "nowhere", "x") == []


def test_read_bytes_limited_refuses_devices_pipes_and_huge_inputs(tmp_path):
    import io

    from suite.fileio import InputTooLargeError, read_bytes_limited

    f = tmp_path / "a.txt"
    f.write_bytes(b"x" * 100)
    assert read_bytes_limited(f) == b"x" * 100
    with pytest.raises(InputTooLargeError, match="more than"):
        read_bytes_limited(f, limit=99)
    with pytest.raises(InputTooLargeError, match="not a regular file"):
        read_bytes_limited("/dev/zero")
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with pytest.raises(InputTooLargeError, match="not a regular file"):
        read_bytes_limited(fifo)  # refused before open(): a FIFO with no writer would block
    with pytest.raises(InputTooLargeError, match="more than"):
        read_bytes_limited("standard input", limit=10, stream=io.BytesIO(b"y" * 11))
    with pytest.raises(IsADirectoryError):
        read_bytes_limited(tmp_path)
    with pytest.raises(FileNotFoundError):
        read_bytes_limited(tmp_path / "missing")
