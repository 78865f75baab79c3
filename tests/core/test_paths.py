"""tlgui's own files are written whole or not at all."""

import os
import stat

import pytest

from tlgui.core.paths import atomic_output, atomic_write_text


def test_a_failed_write_leaves_the_old_file_and_no_temporary_file(tmp_path):
    target = tmp_path / "out.json"
    atomic_write_text(target, "old")
    with pytest.raises(RuntimeError), atomic_output(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("the disk is full")
    assert target.read_text() == "old"
    assert os.listdir(tmp_path) == ["out.json"]


def test_written_files_get_the_usual_permissions(tmp_path):
    umask = os.umask(0)
    os.umask(umask)
    atomic_write_text(tmp_path / "model.usage.py", "print()")
    (tmp_path / "plain.txt").write_text("")
    # The same mode as a file opened the ordinary way (not mkstemp's private 0600).
    mode = stat.S_IMODE((tmp_path / "model.usage.py").stat().st_mode)
    assert mode == stat.S_IMODE((tmp_path / "plain.txt").stat().st_mode) == 0o666 & ~umask
