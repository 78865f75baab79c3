"""The command line: output, files written, exit codes and one-line errors."""

import json
import os
import re
import subprocess
import sys

import pytest
from PIL import Image

from tlgui.cli import main
from tlgui.core.sample import ensure_sample_data


@pytest.fixture
def data(tmp_path):
    root = ensure_sample_data(tmp_path / "shapes", images_per_class=10)
    (root / "circle" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really")
    return root


def test_scan_prints_classes_counts_and_skipped_files(data, capsys):
    assert main(["scan", str(data)]) == 0
    out = capsys.readouterr().out
    assert "circle" in out and "star" in out
    assert re.search(r"^total\s+40\s", out, re.M)
    assert f"{data / 'circle' / 'broken.jpg'}: truncated image" in out


def test_scan_of_an_untrainable_folder_fails(tmp_path, capsys):
    Image.new("RGB", (20, 20)).save(tmp_path / "x.png")
    (tmp_path / "a").mkdir()
    Image.new("RGB", (20, 20)).save(tmp_path / "a" / "1.png")
    assert main(["scan", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "at least two classes are needed" in err


def test_train_writes_the_run_folder(data, tmp_path, capsys):
    out = tmp_path / "run"
    code = main(["train", str(data), "--model", "resnet18", "--weights", "none",
                 "--strategy", "frozen", "--epochs", "2", "--image-size", "32",
                 "--batch-size", "8", "--compare-dropout", "--dropout", "0.5", "--hidden", "16",
                 "--device", "cpu", "--out", str(out), "--workers", "0"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "epoch   2/2 with_dropout" in printed and "without_dropout" in printed
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "finished"
    assert set(summary["runs"]) == {"with_dropout", "without_dropout"}
    for run in summary["runs"].values():
        assert {"best_val_acc", "last_val_acc", "test_acc"} <= set(run)
    classes = json.loads((out / "classes.json").read_text())
    assert classes["classes"] == ["circle", "square", "star", "triangle"]
    for run in ("with_dropout", "without_dropout"):
        assert (out / run / "best.pt").is_file() and (out / run / "metrics.csv").is_file()
    # A finished run folder is not overwritten.
    again = main(["train", str(data), "--weights", "none", "--out", str(out)])
    assert again == 1 and "already holds a finished run" in capsys.readouterr().err


@pytest.mark.parametrize(
    "args, message",
    [
        (["train", "/no/such/folder", "--weights", "none"], "/no/such/folder: no such folder"),
        (["train", "{data}", "--model", "alexnet9", "--weights", "none"], "unknown model"),
        (["train", "{data}", "--weights", "/no/file.pth"], "no such weights file"),
        (["train", "{data}", "--weights", "none", "--device", "cuda:3"], "not available"),
        (["train", "{data}", "--weights", "none", "--dropout", "1.5"], "dropout must be"),
        (["train", "{data}", "--model", "mobilenet_v3_small", "--no-download"],
         "place it at"),
        (["train"], "no data"),
        (["train", "{data}", "--sample"], "not both"),
        (["train", "{data}", "--resume", "--weights", "none"], "--resume needs --out"),
    ],
)
def test_bad_input_gives_one_clear_line(data, capsys, args, message):
    args = [a.replace("{data}", str(data)) for a in args]
    assert main(args) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("tlgui: error: ") and message in err[-1]
    assert "Traceback" not in "\n".join(err)


def test_models_lists_backbones_and_cache_state(capsys):
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    assert "vgg16" in out and "efficientnet_b0" in out and "no (download or import)" in out
    assert os.environ["TORCH_HOME"] in out


def test_entry_point_runs_as_a_module(tmp_path):
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    done = subprocess.run([sys.executable, "-m", "tlgui", "scan", str(tmp_path / "nope")],
                          capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 1
    assert done.stderr.strip() == f"tlgui: error: {tmp_path / 'nope'}: no such folder"
    usage = subprocess.run([sys.executable, "-m", "tlgui", "train", "--epochs", "x"],
                           capture_output=True, text=True, env=env, timeout=120)
    assert usage.returncode == 2 and "invalid int value" in usage.stderr


def test_sample_command_writes_the_data_set(tmp_path, capsys):
    assert main(["sample", str(tmp_path / "s")]) == 0
    assert capsys.readouterr().out.strip() == str(tmp_path / "s")
    assert len(list((tmp_path / "s" / "star").glob("*.jpg"))) == 80


def test_the_window_without_a_display_is_a_clear_error(monkeypatch, capsys):
    monkeypatch.setattr("sys.platform", "linux")
    for name in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM"):
        monkeypatch.delenv(name, raising=False)
    assert main([]) == 1
    assert "no display" in capsys.readouterr().err
