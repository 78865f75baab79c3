"""Files from elsewhere are data, never code: crafted checkpoints, weights in the hub cache and
the code tlgui generates from them."""

import ast
import errno
import hashlib
import math
import os
import subprocess
import sys
from dataclasses import asdict

import pytest
import torch
from PIL import Image

from tlgui.cli import main
from tlgui.core import export as E
from tlgui.core import weights as W
from tlgui.core.models import ModelSpec, build_model, load_trained
from tlgui.core.preprocess import Preprocessing, preprocessing_for

INJECTED = "bilinear'); import os; os.system('touch PWNED'); ('"
# Injected into the resize call inside the script's load(): runs when an image is classified.
RUNS_WHEN_CALLED = ("bilinear)\n    \U0001d428\U0001d429\U0001d41e\U0001d427('PWNED', "
                    "\U0001d41c\U0001d421\U0001d42b(119)).\U0001d41c\U0001d425\U0001d428"
                    "\U0001d42c\U0001d41e(")
CLASSES = ["cat", "dog"]


def tiny_checkpoint(path, **changes):
    """A real tlgui checkpoint (resnet18 from random weights, 32 px), with ``changes`` applied
    to its top-level entries; ``preprocessing`` changes are merged into the valid one."""
    spec = ModelSpec("resnet18", len(CLASSES), hidden=8, strategy="full")
    torch.manual_seed(0)
    net = build_model(spec, "none")
    checkpoint = {
        "format": W.CHECKPOINT_FORMAT, "version": 1, "run": "model", "epoch": 1,
        "spec": asdict(spec), "classes": list(CLASSES),
        "preprocessing": preprocessing_for("resnet18", 32).to_dict(),
        "model": {k: v.detach() for k, v in net.state_dict().items()}, "val_acc": 0.5,
    }
    checkpoint["preprocessing"].update(changes.pop("preprocessing", {}))
    checkpoint.update(changes)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(checkpoint, path)
    return path


# -- preprocessing read from a file ----------------------------------------------------------
GOOD = preprocessing_for("resnet18", 32).to_dict()


@pytest.mark.parametrize("field, value", [
    ("interpolation", INJECTED),
    ("interpolation", "BILINEAR"),
    ("interpolation", 2),
    ("resize_size", 0),
    ("resize_size", -37),
    ("crop_size", 10**7),
    ("crop_size", "32"),
    ("crop_size", 32.5),
    ("crop_size", True),
    ("crop_size", 64),  # larger than the resized image it is cut from
    ("mean", [0.5, 0.5]),
    ("mean", "abc"),
    ("mean", [0.5, math.nan, 0.5]),
    ("std", [0.2, 0.0, 0.2]),
    ("std", [0.2, -0.1, 0.2]),
    ("std", [0.2, math.inf, 0.2]),
    ("std", None),
])
def test_preprocessing_from_a_file_is_validated_field_by_field(field, value):
    bad = {**GOOD, field: value}
    with pytest.raises(ValueError) as info:
        Preprocessing.from_dict(bad)
    text = str(info.value)
    assert f"preprocessing.{field}" in text and "\n" not in text


def test_preprocessing_with_a_missing_field_or_not_a_dict_is_refused():
    with pytest.raises(ValueError, match="preprocessing.crop_size"):
        Preprocessing.from_dict({k: v for k, v in GOOD.items() if k != "crop_size"})
    with pytest.raises(ValueError, match="preprocessing"):
        Preprocessing.from_dict(["not", "a", "dict"])
    p = Preprocessing.from_dict(GOOD)
    assert p.to_dict() == GOOD and isinstance(p.mean, tuple)


def test_a_crafted_checkpoint_is_refused_before_any_code_is_generated(tmp_path, monkeypatch,
                                                                       capsys):
    monkeypatch.chdir(tmp_path)
    crafted = tiny_checkpoint(tmp_path / "run" / "model" / "best.pt",
                              preprocessing={"interpolation": INJECTED})
    with pytest.raises(W.WeightsError) as info:
        load_trained(crafted)
    assert str(crafted) in str(info.value) and "preprocessing.interpolation" in str(info.value)
    assert main(["export", str(crafted), "--out", str(tmp_path / "m.pt")]) != 0
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "preprocessing.interpolation" in err, err
    assert not (tmp_path / "m.pt").exists() and not (tmp_path / "m.pt.usage.py").exists()
    assert not (tmp_path / "PWNED").exists()


@pytest.mark.parametrize("changes, field", [
    ({"spec": {"name": "resnet18", "num_classes": 2, "hidden": 8, "dropout": 0.5,
               "strategy": "full", "trainable_blocks": 1, "extra": "x"}}, "spec"),
    ({"spec": {"name": "os.system", "num_classes": 2}}, "spec.name"),
    ({"classes": ["cat"]}, "classes"),
    ({"classes": ["cat", 3]}, "classes"),
    ({"run": "<b>model</b>\n" * 20}, "run"),  # shown as the model's title
])
def test_a_checkpoint_with_a_wrong_spec_or_classes_gives_one_line(tmp_path, changes, field):
    crafted = tiny_checkpoint(tmp_path / "best.pt", **changes)
    with pytest.raises(W.WeightsError) as info:
        load_trained(crafted)
    text = str(info.value)
    assert text.startswith(f"{crafted}: ") and field in text and "\n" not in text


def test_snippet_writes_values_only_as_literals():
    """Even with validation bypassed, what came from a file stays a string in the script."""
    meta = {"classes": CLASSES, "input_size": 32, "resize_size": 37, "mean": [0.4] * 3,
            "std": [0.2] * 3, "interpolation": INJECTED}
    file_name = 'm"); import os; os.system("touch PWNED"); (".pt'
    for snippet in (E.torchscript_snippet(file_name, meta), E.onnx_snippet(file_name, meta)):
        tree = ast.parse(snippet)
        imported = {alias.name for node in ast.walk(tree)
                    if isinstance(node, (ast.Import, ast.ImportFrom))
                    for alias in node.names}
        assert "os" not in imported
        strings = {node.value for node in ast.walk(tree)
                   if isinstance(node, ast.Constant) and isinstance(node.value, str)}
        assert INJECTED.upper() in strings and file_name in strings
        names = {node.id for node in ast.walk(tree) if isinstance(node, ast.Name)}
        names |= {node.attr for node in ast.walk(tree) if isinstance(node, ast.Attribute)}
        assert not names & {"os", "system"}


def test_the_usage_script_never_runs_code_from_a_value(tmp_path):
    """A working injection stays a string (its letters are mathematical bold: upper-casing
    leaves them alone and Python reads them as plain names)."""
    checkpoint = tiny_checkpoint(tmp_path / "best.pt")
    model_file, usage = E.export(checkpoint, tmp_path / "m.pt", "torchscript")
    meta = E.read_metadata(model_file)
    meta["interpolation"] = RUNS_WHEN_CALLED
    usage.write_text(E.torchscript_snippet(model_file.name, meta))
    image = tmp_path / "x.png"
    Image.new("RGB", (40, 50), (200, 30, 30)).save(image)
    done = subprocess.run([sys.executable, str(usage), str(image)], capture_output=True,
                          text=True, cwd=tmp_path, timeout=120)
    assert not (tmp_path / "PWNED").exists()
    assert done.returncode != 0 and "Resampling" in done.stderr


# -- ImageNet weights in the hub cache -------------------------------------------------------
NAME = "mobilenet_v3_small"


def save_with_hash_name(obj, folder, name=NAME):
    """Save ``obj`` as torch hub does: ``<name>-<first 8 hex digits of its sha256>.pth``."""
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / "unnamed.pth"
    torch.save(obj, tmp)
    prefix = hashlib.sha256(tmp.read_bytes()).hexdigest()[:8]
    path = folder / f"{name}-{prefix}.pth"
    tmp.rename(path)
    return path


class RunsCode:
    """Unpickling this object would create a file: proof that code from the file ran."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def test_cached_weights_with_a_wrong_checksum_are_refused(monkeypatch):
    from torchvision.models import get_model

    state = get_model(NAME, weights=None).state_dict()
    official = W.cached_path(NAME)
    official.parent.mkdir(parents=True)
    torch.save(state, official)  # the official name, but not the official content
    with pytest.raises(W.WeightsError) as info:
        build_model(ModelSpec(NAME, 2), "imagenet", allow_download=False)
    text = str(info.value)
    assert str(official) in text and "047dcff4" in text and "\n" not in text
    assert "delete" in text


def test_cached_weights_are_loaded_as_data_only(tmp_path, monkeypatch):
    marker = tmp_path / "ran"
    path = save_with_hash_name({"x": RunsCode(marker)}, W.hub_checkpoint_dir())
    # Under the official name too, where torchvision's own loader would look for it.
    W.cached_path(NAME).write_bytes(path.read_bytes())
    monkeypatch.setattr(W, "cached_path", lambda name: path)
    with pytest.raises(W.WeightsError) as info:
        W.load_imagenet_state(NAME, allow_download=False)
    assert not marker.exists()
    text = str(info.value)
    assert str(path) in text and "\n" not in text and "weights_only" not in text


def test_user_weights_with_python_objects_give_one_line(tmp_path):
    marker = tmp_path / "ran"
    path = tmp_path / "mine.pth"
    torch.save({"x": RunsCode(marker)}, path)
    with pytest.raises(W.WeightsError) as info:
        W.read_state_dict(path)
    assert not marker.exists()
    text = str(info.value)
    assert text.startswith(f"{path}: ") and "\n" not in text and "weights_only" not in text


# -- state dicts that do not fit -------------------------------------------------------------
def test_a_larger_architecture_is_not_cut_down_silently(tmp_path):
    from torchvision.models import get_model

    path = tmp_path / "r34.pth"
    torch.save(get_model("resnet34", weights=None).state_dict(), path)
    with pytest.raises(W.WeightsError) as info:
        build_model(ModelSpec("resnet18", 2), str(path))
    text = str(info.value)
    assert text.startswith(f"{path}: does not fit resnet18") and "\n" not in text
    assert "not in resnet18" in text and "resnet34" in text


def test_a_checkpoint_whose_weights_do_not_match_its_spec_gives_one_line(tmp_path):
    crafted = tiny_checkpoint(tmp_path / "best.pt",
                              spec=asdict(ModelSpec("resnet18", 2, hidden=16, strategy="full")))
    with pytest.raises(W.WeightsError) as info:
        load_trained(crafted)
    text = str(info.value)
    assert text.startswith(f"{crafted}: ") and "\n" not in text
    assert "Error(s)" not in text and "head" in text


# -- export: the output file ---------------------------------------------------------------
def test_export_refuses_a_missing_folder_and_creates_nothing(tmp_path, capsys):
    checkpoint = tiny_checkpoint(tmp_path / "best.pt")
    out = tmp_path / "missing" / "dir" / "m.pt"
    assert main(["export", str(checkpoint), "--out", str(out)]) != 0
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(out.parent) in err, err
    assert not (tmp_path / "missing").exists()


@pytest.mark.parametrize("fmt, suffix, failing", [("torchscript", "pt", 1), ("onnx", "onnx", 1),
                                                  ("torchscript", "pt", 2)])
def test_export_with_the_disk_full_keeps_the_previous_file(tmp_path, monkeypatch, capsys, fmt,
                                                           suffix, failing):
    """The disk fills up while the model file (``failing`` 1) or the usage script (2) is
    written: the previous pair stays as it was, and no temporary file is left."""
    if fmt == "onnx":
        pytest.importorskip("onnx")
    checkpoint = tiny_checkpoint(tmp_path / "best.pt")
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    out = out_dir / f"m.{suffix}"
    out.write_bytes(b"the previous good file")
    usage = out_dir / f"m.{suffix}.usage.py"
    usage.write_text("# the previous usage script\n")

    written = []
    real_fsync = os.fsync

    def disk_full_on_flush(fd):
        """The disk fills up while the file is flushed: some of it is on disk, not all."""
        written.append(os.fstat(fd).st_size)
        if len(written) == failing:
            raise OSError(errno.ENOSPC, "No space left on device")
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", disk_full_on_flush)
    assert main(["export", str(checkpoint), "--format", fmt, "--out", str(out)]) != 0
    err = capsys.readouterr().err.strip()
    assert err == f"tlgui: error: no space left on device: {out if failing == 1 else usage}"
    assert sorted(p.name for p in out_dir.iterdir()) == [out.name, usage.name]
    assert out.read_bytes() == b"the previous good file"
    assert usage.read_text() == "# the previous usage script\n"
    assert len(written) == failing and written[-1] > 0  # the failed file was partly written


def test_a_checkpoint_as_starting_weights_is_checked_like_any_other(tmp_path):
    good = tiny_checkpoint(tmp_path / "good.pt")
    net = build_model(ModelSpec("resnet18", 3, hidden=4), str(good))
    assert torch.equal(net.blocks[0][0].weight, torch.load(good)["model"]["blocks.0.0.weight"])

    no_spec = tiny_checkpoint(tmp_path / "no_spec.pt", spec=None)
    state = torch.load(good)["model"]
    reshaped = tiny_checkpoint(tmp_path / "reshaped.pt", model={
        **state, "blocks.0.0.weight": torch.zeros(8, 3, 7, 7)})
    extra = tiny_checkpoint(tmp_path / "extra.pt", model={
        **state, "blocks.9.weight": torch.zeros(3)})
    for path, expected in ((no_spec, "spec"), (reshaped, "wrong shape"),
                           (extra, "not in the model")):
        with pytest.raises(W.WeightsError) as info:
            build_model(ModelSpec("resnet18", 3, hidden=4), str(path))
        text = str(info.value)
        assert text.startswith(f"{path}: ") and expected in text and "\n" not in text, text


def test_cached_weights_of_another_shape_give_one_line(monkeypatch):
    from torchvision.models import get_model

    state = get_model(NAME, weights=None).state_dict()
    state["features.0.0.weight"] = torch.zeros(4, 3, 3, 3)
    path = save_with_hash_name(state, W.hub_checkpoint_dir())
    monkeypatch.setattr(W, "cached_path", lambda name: path)
    with pytest.raises(W.WeightsError) as info:
        build_model(ModelSpec(NAME, 2), "imagenet", allow_download=False)
    text = str(info.value)
    assert text.startswith(f"{path}: does not fit {NAME}") and "\n" not in text
    assert "wrong shape" in text


def test_export_to_a_folder_asks_for_a_file_name(tmp_path, capsys):
    checkpoint = tiny_checkpoint(tmp_path / "run" / "model" / "best.pt")
    out = tmp_path / "out"
    out.mkdir()
    assert main(["export", str(checkpoint), "--out", str(out)]) != 0
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and f"{out}: is a folder" in err
    assert str(out / "model.pt") in err and list(out.iterdir()) == []


def test_predict_refuses_a_csv_in_a_missing_folder_and_creates_nothing(tmp_path, capsys):
    checkpoint = tiny_checkpoint(tmp_path / "best.pt")
    image = tmp_path / "x.png"
    Image.new("RGB", (40, 50), (200, 30, 30)).save(image)
    csv_file = tmp_path / "missing" / "p.csv"
    assert main(["predict", str(checkpoint), str(image), "--csv", str(csv_file)]) != 0
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and f"{csv_file.parent}: no such folder" in err, err
    assert not (tmp_path / "missing").exists()


def test_onnx_export_without_the_onnx_package_says_how_to_get_it(tmp_path, monkeypatch, capsys):
    checkpoint = tiny_checkpoint(tmp_path / "best.pt")
    monkeypatch.setitem(sys.modules, "onnx", None)  # as if it were not installed
    out = tmp_path / "m.onnx"
    assert main(["export", str(checkpoint), "--format", "onnx", "--out", str(out)]) != 0
    err = capsys.readouterr().err.strip()
    assert err == "tlgui: error: ONNX export needs the onnx package: pip install 'tlgui[onnx]'"
    assert not out.exists()


def test_export_of_a_checkpoint_in_the_current_folder_is_named_after_that_folder(
        tmp_path, monkeypatch):
    run = tmp_path / "cats_vs_dogs"
    tiny_checkpoint(run / "best.pt")
    monkeypatch.chdir(run)
    assert main(["export", "best.pt"]) == 0
    assert (run / "cats_vs_dogs.pt").is_file() and (run / "cats_vs_dogs.pt.usage.py").is_file()
    assert not (run / ".pt").exists()
