"""Every exception becomes one line for the user: the file and the problem, nothing more."""

import argparse
import errno
import pickle

import pytest
import torch
from torch import nn

from tlgui.core.errors import UserError, is_disk_full, one_line


def test_disk_full_names_the_file_from_the_exception():
    e = OSError(errno.ENOSPC, "No space left on device", "/runs/a/best.pt")
    assert one_line(e) == "no space left on device: /runs/a/best.pt"
    assert one_line(e, "/elsewhere") == "no space left on device: /runs/a/best.pt"


def test_disk_full_without_a_file_name_takes_the_callers_path():
    # A failed write() gives no file name: only the caller knows which file it was writing.
    with pytest.raises(OSError) as info, open("/dev/full", "wb", buffering=0) as f:
        f.write(b"x")
    assert is_disk_full(info.value)
    assert one_line(info.value, "/runs/a/best.pt") == "no space left on device: /runs/a/best.pt"
    assert one_line(info.value) == "no space left on device"


def test_a_full_quota_reads_as_a_full_disk():
    e = OSError(errno.EDQUOT, "Disk quota exceeded")
    assert one_line(e, "out.png") == "no space left on device: out.png"


def test_disk_full_wrapped_in_another_error_is_still_found():
    try:
        try:
            raise OSError(errno.ENOSPC, "No space left on device")
        except OSError as inner:
            raise RuntimeError("saving failed") from inner
    except RuntimeError as e:
        assert is_disk_full(e)
        assert one_line(e, "x.csv") == "no space left on device: x.csv"


def test_torch_failing_to_write_a_file_is_not_shown_raw():
    e = RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 704 vs 598")
    assert one_line(e, "/runs/a/best.pt") == "cannot write /runs/a/best.pt (is the disk full?)"
    e = RuntimeError("PytorchStreamWriter failed writing file data/0: file write failed")
    assert one_line(e, "m.pt") == "cannot write m.pt (is the disk full?)"


@pytest.mark.parametrize(
    "error, expected",
    [
        (PermissionError(errno.EACCES, "Permission denied", "/data/a.jpg"),
         "/data/a.jpg: permission denied"),
        (FileNotFoundError(errno.ENOENT, "No such file or directory", "/x/best.pt"),
         "/x/best.pt: no such file or directory"),
        (IsADirectoryError(errno.EISDIR, "Is a directory", "/x"), "/x: is a directory"),
        (OSError(errno.EXDEV, "Invalid cross-device link", "/a/.t.tmp", None, "/b/t"),
         "/a/.t.tmp → /b/t: invalid cross-device link"),
    ],
)
def test_other_os_errors_name_the_file_and_the_problem(error, expected):
    assert one_line(error) == expected


def test_an_os_error_without_a_file_name_takes_the_callers_path():
    e = PermissionError(errno.EACCES, "Permission denied")
    assert one_line(e, "/runs/x/summary.json") == "/runs/x/summary.json: permission denied"
    assert one_line(e) == "permission denied"


def test_a_checkpoint_that_holds_code_does_not_suggest_running_it(tmp_path):
    path = tmp_path / "evil.pt"
    # Checkpoints of other programs often pickle their settings object along with the weights.
    torch.save({"args": argparse.Namespace(lr=0.1)}, path)
    with pytest.raises(pickle.UnpicklingError) as info:
        torch.load(path, weights_only=True)
    line = one_line(info.value, path)
    assert line == (f"{path}: not a plain weights file (it refers to Python code: "
                    "argparse.Namespace), and tlgui never runs code from a file")
    assert "weights_only" not in line and "\n" not in line


def test_weights_only_text_without_a_named_global():
    e = pickle.UnpicklingError(
        "Weights only load failed. This file can still be loaded, to do so you have two "
        "options.\n\t(1) Re-running `torch.load` with `weights_only` set to `False` will likely "
        "succeed.\n\tWeightsUnpickler error: Unsupported operand 149")
    assert one_line(e, "w.pth") == ("w.pth: not a plain weights file (Unsupported operand 149), "
                                    "and tlgui never runs code from a file")


def test_a_state_dict_that_does_not_fit_gives_the_counts():
    model = nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 2))
    other = nn.Sequential(nn.Linear(3, 5), nn.Linear(5, 2), nn.Linear(2, 2)).state_dict()
    del other["0.bias"]
    with pytest.raises(RuntimeError) as info:
        model.load_state_dict(other)
    assert one_line(info.value) == ("the weights do not fit Sequential: 1 missing key, "
                                    "2 unexpected keys, 2 mis-shaped keys")
    assert one_line(info.value, "w.pth") == ("w.pth: the weights do not fit Sequential: "
                                             "1 missing key, 2 unexpected keys, "
                                             "2 mis-shaped keys")


def test_a_state_dict_with_only_extra_keys():
    model = nn.Linear(3, 2)
    extra = {**model.state_dict(), "head.weight": torch.zeros(1)}
    with pytest.raises(RuntimeError) as info:
        model.load_state_dict(extra)
    assert one_line(info.value) == "the weights do not fit Linear: 1 unexpected key"


def test_a_multi_line_text_gives_its_first_meaningful_line():
    e = RuntimeError("\n\n  CUDA out of memory. Tried to allocate 2.00 GiB.\nSee the docs.\n")
    assert one_line(e) == "RuntimeError: CUDA out of memory. Tried to allocate 2.00 GiB."
    assert one_line(ValueError("  \nepochs must be at least 1\nmore")) == (
        "epochs must be at least 1")


def test_an_error_from_a_data_loading_worker_gives_the_original_line():
    e = RuntimeError(
        "Caught ImageLoadError in DataLoader worker process 0.\n"
        "Original Traceback (most recent call last):\n"
        '  File "x.py", line 1, in <module>\n'
        "tlgui.core.images.ImageLoadError: /d/a.jpg: file not found (was it moved or deleted?)")
    assert one_line(e) == "/d/a.jpg: file not found (was it moved or deleted?)"


def test_user_errors_are_shown_as_they_are_and_others_with_their_type():
    assert one_line(UserError("give either DATA folders or --sample, not both")) == (
        "give either DATA folders or --sample, not both")
    assert one_line(ZeroDivisionError("division by zero")) == (
        "ZeroDivisionError: division by zero")
    assert one_line(KeyError("fc.weight")) == "KeyError: 'fc.weight'"
    assert one_line(RuntimeError()) == "RuntimeError: unexpected error"


def test_a_path_is_added_only_where_the_line_lacks_it():
    assert one_line(ValueError("Expecting value: line 1 column 1 (char 0)"), "/r/c.json") == (
        "/r/c.json: Expecting value: line 1 column 1 (char 0)")
    assert one_line(ValueError("/r/c.json: not a tlgui run"), "/r/c.json") == (
        "/r/c.json: not a tlgui run")


def test_a_user_error_raised_from_a_full_disk_keeps_its_own_line():
    try:
        try:
            raise OSError(errno.ENOSPC, "No space left on device")
        except OSError as e:
            raise UserError(one_line(e, "/out/ideal.png")) from e
    except UserError as e:
        assert one_line(e) == "no space left on device: /out/ideal.png"
