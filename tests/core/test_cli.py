"""The command line: output, files written, exit codes and one-line errors."""

import errno
import json
import os
import re
import subprocess
import sys
from pathlib import Path

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
        (["train", "{data}", "--weights", "none", "--dropout", "0", "--compare-dropout"],
         "needs a dropout above 0"),
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


@pytest.mark.parametrize(
    "args, line",
    [
        (["scan", "/d", "--val-fraction", "0"],
         "tlgui scan: error: argument --val-fraction: must be more than 0 and less than 1, not 0"),
        (["train", "/d", "--val-fraction", "1.5"],
         "tlgui train: error: argument --val-fraction: must be more than 0 and less than 1, "
         "not 1.5"),
        (["train", "/d", "--epochs", "0"],
         "tlgui train: error: argument --epochs: must be at least 1, not 0"),
        (["train", "/d", "--epochs", "x"],
         "tlgui train: error: argument --epochs: invalid int value: 'x'"),
        (["train", "/d", "--batch-size", "-4"],
         "tlgui train: error: argument --batch-size: must be at least 1, not -4"),
        (["train", "/d", "--lr", "0"],
         "tlgui train: error: argument --lr: must be more than 0, not 0"),
        (["train", "/d", "--lr", "nan"],
         "tlgui train: error: argument --lr: must be a finite number, not nan"),
        (["train", "/d", "--backbone-lr-factor", "-1"],
         "tlgui train: error: argument --backbone-lr-factor: must be more than 0, not -1"),
        (["train", "/d", "--dropout", "1"],
         "tlgui train: error: argument --dropout: must be at least 0 and less than 1, not 1"),
        (["train", "/d", "--hidden", "-1"],
         "tlgui train: error: argument --hidden: must be at least 0, not -1"),
        (["train", "/d", "--seed", "-1"],
         "tlgui train: error: argument --seed: must be at least 0 and at most 4294967295, "
         "not -1"),
        (["train", "/d", "--early-stopping", "-2"],
         "tlgui train: error: argument --early-stopping: must be at least 0, not -2"),
        (["train", "/d", "--trainable-blocks", "0"],
         "tlgui train: error: argument --trainable-blocks: must be at least 1, not 0"),
        (["train", "/d", "--image-size", "1"],
         "tlgui train: error: argument --image-size: must be at least 32 and at most 4096, "
         "not 1"),
        (["train", "/d", "--workers", "-2"],
         "tlgui train: error: argument --workers: must be at least -1, not -2"),
        (["evaluate", "/r", "--mistakes", "-3"],
         "tlgui evaluate: error: argument --mistakes: must be at least 0, not -3"),
        (["inspect", "features", "a.png", "--channels", "0", "--out", "o.png"],
         "tlgui inspect features: error: argument --channels: must be at least 1, not 0"),
        (["inspect", "predict", "a.png", "--top", "0"],
         "tlgui inspect predict: error: argument --top: must be at least 1, not 0"),
        (["inspect", "ideal", "--class", "1", "--steps", "0", "--out", "o.png"],
         "tlgui inspect ideal: error: argument --steps: must be at least 1, not 0"),
        (["inspect", "ideal", "--class", "1", "--tv", "-0.5", "--out", "o.png"],
         "tlgui inspect ideal: error: argument --tv: must be at least 0, not -0.5"),
        (["inspect", "ideal", "--class", "1", "--size", "8", "--out", "o.png"],
         "tlgui inspect ideal: error: argument --size: must be at least 32 and at most 4096, "
         "not 8"),
        (["inspect", "ideal", "--class", "1", "--seed", "-1", "--out", "o.png"],
         "tlgui inspect ideal: error: argument --seed: must be at least 0 and at most "
         "4294967295, not -1"),
        (["inspect", "ideal", "--class", "1", "--out", "o.txt"],
         "tlgui inspect ideal: error: argument --out: 'o.txt' is not an image file name "
         "(end it in .png or .jpg)"),
        (["inspect", "adversarial", "a.png", "--target", "1", "--epsilon", "0", "--out", "o.png"],
         "tlgui inspect adversarial: error: argument --epsilon: must be more than 0 and at most "
         "255, not 0"),
        (["inspect", "adversarial", "a.png", "--target", "1", "--steps", "-1", "--out", "o.png"],
         "tlgui inspect adversarial: error: argument --steps: must be at least 1, not -1"),
    ],
)
def test_out_of_range_options_are_refused_in_one_line(capsys, args, line):
    with pytest.raises(SystemExit) as info:
        main(args)
    assert info.value.code == 2
    assert capsys.readouterr().err.splitlines() == [line]


def test_output_into_a_closed_pipe_ends_quietly(data):
    # 'tlgui scan DATA | head -1': the reader goes away before everything is written.
    # The repository, wherever pytest was started from.
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    proc = subprocess.Popen([sys.executable, "-m", "tlgui", "scan", str(data)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    proc.stdout.close()  # closed before the command writes its first line
    try:
        _, err = proc.communicate(timeout=120)  # reads stderr and waits, within the time
    finally:
        proc.kill()
    assert err.decode() == ""
    assert proc.returncode == 141  # as for a program ended by SIGPIPE


def test_inspect_on_a_full_disk_says_so_and_leaves_no_file(tmp_path, monkeypatch, capsys):
    out = tmp_path / "ideal.png"

    def disk_full(image, fp, *args, **kwargs):
        with open(fp, "wb") as f:  # part of the file is written before the disk fills up
            f.write(b"\x89PNG\r\n")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Image.Image, "save", disk_full)
    code = main(["inspect", "ideal", "--model", "resnet18", "--weights", "none", "--class", "1",
                 "--steps", "1", "--size", "32", "--out", str(out)])
    assert code == 1
    assert capsys.readouterr().err.splitlines() == [
        f"tlgui: error: no space left on device: {out}"]
    assert list(tmp_path.iterdir()) == []


def test_predict_and_inspect_refuse_a_huge_image_as_the_scan_does(data, tmp_path, capsys):
    # 10,000 × 10,000 pixels in a few kilobytes: over the limit, under twice the limit (where
    # Pillow itself would refuse it).
    huge = tmp_path / "huge.png"
    Image.new("1", (10_000, 10_000)).save(huge)
    from tlgui.core.images import probe_image

    reason = probe_image(str(huge)).reason
    assert reason == "decompression bomb (100,000,000 pixels; the limit is 89,478,485)"

    run = tmp_path / "run"
    assert main(["train", str(data), "--model", "resnet18", "--weights", "none", "--epochs",
                 "1", "--image-size", "32", "--batch-size", "8", "--hidden", "0",
                 "--device", "cpu", "--out", str(run), "--workers", "0"]) == 0
    capsys.readouterr()
    assert main(["predict", str(run), str(huge)]) == 1
    assert capsys.readouterr().err.splitlines() == [
        f"skipped {huge}: {reason}", "tlgui: error: no image could be read"]
    assert main(["inspect", "predict", str(huge), "--checkpoint", str(run / "model")]) == 1
    assert capsys.readouterr().err.splitlines() == [f"tlgui: error: {huge}: {reason}"]
    # The training's folder itself names its best run, as for evaluate and predict.
    assert main(["inspect", "layers", "--checkpoint", str(run)]) == 0
    assert "layer4" in capsys.readouterr().out


def test_inspect_names_an_unknown_model_in_one_line(capsys):
    assert main(["inspect", "layers", "--model", "resnet_9000"]) == 1
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1
    assert err[0].startswith("tlgui: error: unknown model 'resnet_9000'; choose one of: vgg16")


def test_the_window_never_imports_the_command_line():
    import ast
    from pathlib import Path

    import tlgui.gui

    found = []
    for source in sorted(Path(tlgui.gui.__file__).parent.glob("*.py")):
        for node in ast.walk(ast.parse(source.read_text(), str(source))):
            if isinstance(node, ast.ImportFrom):
                names = [("." * node.level) + (node.module or "")]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            else:
                continue
            found += [f"{source.name}: {n}" for n in names
                      if re.fullmatch(r"(\.\.|tlgui\.)cli\w*(\..*)?", n)]
    assert found == []


def test_an_interrupted_run_is_continued_only_with_resume_and_the_same_settings(
        data, tmp_path, capsys):
    run = tmp_path / "run"
    args = ["train", str(data), "--model", "resnet18", "--weights", "none", "--image-size", "32",
            "--batch-size", "8", "--hidden", "8", "--device", "cpu", "--workers", "0",
            "--out", str(run)]
    assert main(args + ["--epochs", "1"]) == 0
    (run / "summary.json").unlink()  # as a killed training leaves it
    capsys.readouterr()
    assert main(args + ["--epochs", "1"]) == 1
    assert capsys.readouterr().err.splitlines()[-1] == (
        f"tlgui: error: {run}: holds an unfinished run; continue it with --resume (same "
        "settings) or choose another --out")
    assert main(args + ["--epochs", "3", "--resume"]) == 1
    assert capsys.readouterr().err.splitlines()[-1] == (
        f"tlgui: error: cannot resume {run}: the setting 'epochs' was 1 and is now 3")
    assert main(args + ["--epochs", "1", "--resume"]) == 0
    assert json.loads((run / "summary.json").read_text())["runs"]["model"]["best_epoch"] == 1


def test_a_batch_of_one_is_refused_before_the_images_are_scanned(capsys):
    assert main(["train", "/no/such/folder", "--batch-size", "1", "--weights", "none"]) == 1
    assert capsys.readouterr().err.splitlines() == [
        "tlgui: error: batch size must be at least 2 (batch normalisation needs two images "
        "per batch)"]


def test_a_split_without_validation_images_prints_no_validation_figure(tmp_path, capsys):
    from tlgui.core.data import scan, split

    root = ensure_sample_data(tmp_path / "one_each", images_per_class=1)
    report = scan([str(root)])
    seed = next(s for s in range(100) if not split(report.items, 0.2, s).val)
    assert main(["train", str(root), "--model", "resnet18", "--weights", "none", "--epochs", "1",
                 "--image-size", "32", "--batch-size", "2", "--hidden", "8", "--seed", str(seed),
                 "--device", "cpu", "--workers", "0", "--out", str(tmp_path / "run")]) == 0
    out = capsys.readouterr().out
    assert "no validation images" in out
    assert "val acc" not in out and "best val" not in out and "nan" not in out


def test_the_summary_of_a_run_stopped_before_its_first_epoch_names_no_epoch(capsys):
    """A run with no complete epoch has no best epoch: no "(epoch None)" in its line."""
    from tlgui.cli import _print_summary

    stopped = {"best_val_acc": None, "best_epoch": None, "best_by": "validation accuracy",
               "last_val_acc": None, "last_train_acc": None, "train_val_gap": None,
               "test_acc": None, "warnings": []}
    unvalidated = {**stopped, "best_by": "training accuracy"}
    _print_summary({"status": "stopped", "model": "resnet18", "classes": ["a", "b"],
                    "runs": {"with_dropout": stopped, "without_dropout": unvalidated},
                    "verdict": None}, Path("run"))
    lines = capsys.readouterr().out.splitlines()
    assert "None" not in "\n".join(lines)
    assert lines[2].split() == ["with_dropout", "best", "val", "–,", "last", "val", "–,",
                                "train", "–", "(eval", "mode;", "train−val", "gap", "–)"]
    assert lines[3].split() == ["without_dropout", "no", "validation", "images;", "no",
                                "complete", "epoch"]


def test_version_names_what_tlgui_runs_on(capsys):
    from importlib import metadata

    from tlgui import __version__

    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith(f"tlgui {__version__} (Python ")
    assert f"torch {metadata.version('torch')}" in line
    assert f"torchvision {metadata.version('torchvision')}" in line and "PySide6 6." in line
