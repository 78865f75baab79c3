"""tlgui's own files are written whole or not at all."""

import errno
import os
import stat

import pytest

from tlgui.core.paths import atomic_output, atomic_torch_save, atomic_write_text


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


def recording_fsync(monkeypatch):
    """Record what os.fsync is called on: ('file', name) or ('dir', path)."""
    import tlgui.core.paths as paths

    calls = []
    real_fsync = os.fsync

    def fsync(fd):
        info = os.fstat(fd)
        kind = "dir" if stat.S_ISDIR(info.st_mode) else "file"
        calls.append((kind, info.st_ino))
        return real_fsync(fd)

    monkeypatch.setattr(paths.os, "fsync", fsync)
    return calls


def test_a_saved_checkpoint_reaches_the_disk_before_its_rename(tmp_path, monkeypatch):
    import torch

    calls = recording_fsync(monkeypatch)
    target = tmp_path / "last.pt"
    atomic_torch_save({"w": torch.ones(3)}, target)
    # The temporary file became the target: same inode, synced before the rename, and the
    # folder synced after it, so the rename itself survives a power cut.
    assert calls == [("file", target.stat().st_ino), ("dir", tmp_path.stat().st_ino)]
    assert torch.equal(torch.load(target, weights_only=True)["w"], torch.ones(3))


def test_a_full_disk_names_the_file_keeps_the_old_one_and_leaves_no_temporary(
        tmp_path, monkeypatch):
    import torch

    from tlgui.core.errors import one_line

    target = tmp_path / "best.pt"
    atomic_torch_save({"w": torch.zeros(2)}, target)
    real_save = torch.save

    def save_until_full(obj, f, *args, **kwargs):
        name = f.name if hasattr(f, "write") else f  # a file object, or a path
        with open(name, "ab") as partial:
            partial.write(b"PK\x03\x04 half")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(torch, "save", save_until_full)
    with pytest.raises(OSError) as info:
        atomic_torch_save({"w": torch.ones(2)}, target)
    assert one_line(info.value) == f"no space left on device: {target}"
    monkeypatch.setattr(torch, "save", real_save)
    assert torch.equal(torch.load(target, weights_only=True)["w"], torch.zeros(2))
    assert os.listdir(tmp_path) == ["best.pt"]

    def fsync_full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    import tlgui.core.paths as paths

    monkeypatch.setattr(paths.os, "fsync", fsync_full)
    text = tmp_path / "metrics.csv"
    with pytest.raises(OSError) as info:
        atomic_write_text(text, "epoch\n1\n")
    assert one_line(info.value) == f"no space left on device: {text}"
    assert sorted(os.listdir(tmp_path)) == ["best.pt"]


def test_orphan_temporary_files_of_tlgui_and_nothing_else_are_removed(tmp_path):
    from tlgui.core.paths import remove_orphan_temp_files

    ours = [".last.pt.k2x9_q0a.tmp", ".summary.json.abcdefgh.tmp"]
    others = ["notes.tmp", ".notes.tmp", ".last.pt.short.tmp", "last.pt", ".last.pt.k2x9_q0a.part"]
    for name in ours + others:
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / ".dir.abcdefgh.tmp").mkdir()  # a folder is never removed
    removed = remove_orphan_temp_files(tmp_path)
    assert sorted(p.name for p in removed) == sorted(ours)
    assert sorted(os.listdir(tmp_path)) == sorted(others + [".dir.abcdefgh.tmp"])


def test_json_is_written_valid_even_with_a_missing_number(tmp_path):
    from tlgui.core.paths import atomic_write_json

    atomic_write_json(tmp_path / "s.json", {"acc": float("nan"), "loss": [1.0, float("inf")]})
    assert (tmp_path / "s.json").read_text() == (
        '{\n  "acc": null,\n  "loss": [\n    1.0,\n    null\n  ]\n}\n')


def test_a_full_disk_that_torch_reports_as_its_own_error_still_names_the_file(
        tmp_path, monkeypatch):
    import torch

    from tlgui.core.errors import one_line

    target = tmp_path / "best.pt"

    def torch_writer_out_of_space(obj, f, *args, **kwargs):
        # torch's writer catches the failed write and raises its own error while handling it.
        try:
            raise OSError(errno.ENOSPC, "No space left on device")
        except OSError:
            raise RuntimeError(  # noqa: B904 (as torch's C++ writer does: no 'from')
                "[enforce fail at inline_container.cc:672] . unexpected pos 64 vs 0")

    monkeypatch.setattr(torch, "save", torch_writer_out_of_space)
    with pytest.raises(OSError) as info:
        atomic_torch_save({"w": torch.ones(2)}, target)
    assert one_line(info.value) == f"no space left on device: {target}"
    assert os.listdir(tmp_path) == []


def test_every_atomic_output_reaches_the_disk_whoever_writes_it(tmp_path, monkeypatch):
    # Downloads, imports and exports write the temporary file themselves.
    calls = recording_fsync(monkeypatch)
    target = tmp_path / "weights.pth"
    with atomic_output(target, suffix=".part") as tmp:
        tmp.write_bytes(b"weights")
    assert calls == [("file", target.stat().st_ino), ("dir", tmp_path.stat().st_ino)]
