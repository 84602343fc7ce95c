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
