"""Evaluation metrics, prediction, export and their commands."""

import csv
import json
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from tlgui.cli import main
from tlgui.cli_runs import prediction_rows
from tlgui.core.data import scan
from tlgui.core.evaluation import (
    Evaluation,
    class_metrics,
    confusion_matrix,
    evaluate_run,
    evaluation_items,
    find_checkpoint,
    normalise_rows,
    predict_paths,
)
from tlgui.core.export import export, read_metadata
from tlgui.core.models import load_trained
from tlgui.core.sample import ensure_sample_data
from tlgui.core.training import TrainConfig, Trainer


def test_confusion_matrix_and_metrics_by_hand():
    true = np.array([0, 0, 0, 1, 1, 2, 2, 2, 2])
    pred = np.array([0, 0, 1, 1, 2, 2, 2, 2, 0])
    cm = confusion_matrix(true, pred, 3)
    assert cm.tolist() == [[2, 1, 0], [0, 1, 1], [1, 0, 3]]
    m = class_metrics(cm)
    # class 0: tp 2, predicted 3, actual 3
    assert m[0].precision == pytest.approx(2 / 3) and m[0].recall == pytest.approx(2 / 3)
    # class 1: tp 1, predicted 2, actual 2 -> 0.5 / 0.5
    assert (m[1].precision, m[1].recall, m[1].f1) == pytest.approx((0.5, 0.5, 0.5))
    # class 2: tp 3, predicted 4, actual 4 -> 0.75
    assert m[2].f1 == pytest.approx(0.75) and m[2].support == 4
    assert normalise_rows(cm)[2].tolist() == pytest.approx([0.25, 0, 0.75])


def test_undefined_metrics_are_none_not_zero():
    cm = confusion_matrix(np.array([0, 0]), np.array([0, 0]), 2)
    assert class_metrics(cm)[1].precision is None and class_metrics(cm)[1].f1 is None
    assert normalise_rows(cm)[1].tolist() == [0.0, 0.0]


def test_cells_and_mistakes():
    e = Evaluation(["a", "b"], ["p0", "p1", "p2", "p3"], np.array([0, 0, 1, 1]),
                   np.array([0, 1, 0, 1]), np.array([0.9, 0.6, 0.8, 0.7]))
    assert e.accuracy == 0.5
    assert e.cell(0, 1) == [1] and e.cell(1, 0) == [2]
    assert e.mistakes() == [2, 1]  # the more confident mistake first


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("evaldata")
    data = ensure_sample_data(root / "shapes", images_per_class=8)
    test = ensure_sample_data(root / "test", images_per_class=2, seed=5)
    out = root / "run"
    config = TrainConfig(model="resnet18", weights="none", image_size=32, epochs=2, hidden=8,
                         workers=0, compare_dropout=True)
    Trainer(config, scan([str(data)], test_folder=str(test)), out).run()
    return out, data


def test_find_checkpoint(run, tmp_path):
    out, _ = run
    assert find_checkpoint(out, "without_dropout") == out / "without_dropout" / "best.pt"
    assert find_checkpoint(out).name == "best.pt"
    assert find_checkpoint(out / "with_dropout" / "best.pt").parent.name == "with_dropout"
    with pytest.raises(ValueError, match="no run 'model'"):
        find_checkpoint(out, "model")
    with pytest.raises(ValueError, match="no trained model"):
        find_checkpoint(tmp_path)


def test_evaluate_command_matches_training(run, capsys):
    out, _ = run
    assert main(["evaluate", str(out), "--run", "with_dropout"]) == 0
    printed = capsys.readouterr().out
    summary = json.loads((out / "summary.json").read_text())
    best = summary["runs"]["with_dropout"]["best_val_acc"]
    assert f"val accuracy {best:.1%}" in printed
    assert "precision" in printed and "true \\ predicted" in printed
    assert main(["evaluate", str(out), "--run", "with_dropout", "--split", "test"]) == 0
    test_acc = summary["runs"]["with_dropout"]["test_acc"]
    assert f"test accuracy {test_acc:.1%} on 8 images" in capsys.readouterr().out
    assert main(["evaluate", str(out), "--run", "with_dropout", "--percent"]) == 0
    rows = [line.split()[1:] for line in capsys.readouterr().out.splitlines()[2:6]]
    assert all(cell.endswith("%") for row in rows for cell in row)
    assert all(95 <= sum(int(cell[:-1]) for cell in row) <= 105 for row in rows)


def test_evaluate_says_when_the_images_moved(run, tmp_path, capsys):
    out, data = run
    moved = tmp_path / "moved"
    data.rename(moved)
    try:
        assert main(["evaluate", str(out)]) == 1
        assert "the run's image folder is gone" in capsys.readouterr().err
    finally:
        moved.rename(data)


def test_predict_command_writes_a_csv(run, tmp_path, capsys):
    out, data = run
    (tmp_path / "imgs").mkdir()
    for i, cls in enumerate(("star", "circle")):
        Image.open(next((data / cls).glob("*.jpg"))).save(tmp_path / "imgs" / f"{i}.png")
    (tmp_path / "imgs" / "bad.jpg").write_bytes(b"")
    table = tmp_path / "out.csv"
    assert main(["predict", str(out), str(tmp_path / "imgs"), "--csv", str(table)]) == 0
    captured = capsys.readouterr()
    assert "empty file" in captured.err
    rows = list(csv.DictReader(table.open()))
    assert [r["path"].rsplit("/", 1)[-1] for r in rows] == ["0.png", "1.png"]
    classes = ("circle", "square", "star", "triangle")
    assert all(r["most_probable"] in classes for r in rows)
    assert all(0 < float(r["confidence"]) <= 1 for r in rows)
    threshold = json.loads((out / "summary.json").read_text())["runs"]["with_dropout"][
        "calibration"]["threshold"]
    for r in rows:  # below the run's threshold the answer is "not sure"
        if abs(float(r["confidence"]) - threshold) > 1e-4:  # not rounded across it
            sure = float(r["confidence"]) >= threshold
            assert r["class"] == (r["most_probable"] if sure else "not sure")


def test_evaluate_and_predict_take_a_device_and_a_batch_size(run, tmp_path, capsys):
    out, data = run
    assert main(["evaluate", str(out), "--run", "with_dropout", "--device", "cpu"]) == 0
    whole = capsys.readouterr().out
    assert main(["evaluate", str(out), "--run", "with_dropout", "--device", "cpu",
                 "--batch-size", "3"]) == 0
    assert capsys.readouterr().out == whole
    images = [str(p) for p in sorted((data / "star").glob("*.jpg"))[:3]]
    assert main(["predict", str(out), *images, "--device", "cpu"]) == 0
    whole = capsys.readouterr().out
    assert main(["predict", str(out), *images, "--device", "cpu", "--batch-size", "2"]) == 0
    assert capsys.readouterr().out == whole and len(whole.splitlines()) == 3
    assert main(["predict", str(out), *images, "--device", "cuda:7"]) == 1
    assert "device 'cuda:7' is not available" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_status:
        main(["evaluate", str(out), "--batch-size", "0"])
    assert exit_status.value.code == 2


def test_torchscript_export_gives_the_same_predictions(run, tmp_path):
    out, data = run
    checkpoint = out / "with_dropout" / "best.pt"
    model_file, usage = export(checkpoint, tmp_path / "m.pt", "torchscript")
    meta = read_metadata(model_file)
    assert meta["classes"] == ["circle", "square", "star", "triangle"]
    assert meta["input_size"] == 32 and len(meta["mean"]) == 3
    assert "torch.jit.load" in usage.read_text()
    net, ckpt = load_trained(checkpoint)
    x = torch.rand(3, 3, 32, 32)
    mean, std = torch.tensor(meta["mean"]).view(1, 3, 1, 1), torch.tensor(meta["std"]).view(
        1, 3, 1, 1)
    with torch.no_grad():
        expected = torch.softmax(net((x - mean) / std), 1)
        scripted = torch.jit.load(str(model_file))
        assert torch.allclose(scripted(x), expected, atol=1e-5)


def test_onnx_export_gives_the_same_predictions(run, tmp_path):
    pytest.importorskip("onnx")
    onnxruntime = pytest.importorskip("onnxruntime")
    out, _ = run
    checkpoint = out / "without_dropout" / "best.pt"
    model_file, usage = export(checkpoint, tmp_path / "m.onnx", "onnx")
    session = onnxruntime.InferenceSession(str(model_file))
    meta = json.loads(session.get_modelmeta().custom_metadata_map["tlgui.json"])
    assert meta == read_metadata(model_file)
    net, _ = load_trained(checkpoint)
    x = torch.rand(4, 3, 32, 32)
    mean, std = torch.tensor(meta["mean"]).view(1, 3, 1, 1), torch.tensor(meta["std"]).view(
        1, 3, 1, 1)
    with torch.no_grad():
        expected = torch.softmax(net((x - mean) / std), 1).numpy()
    got = session.run(None, {"pixels": x.numpy()})[0]
    assert np.allclose(got, expected, atol=1e-4)
    assert got.argmax(1).tolist() == expected.argmax(1).tolist()
    assert "onnxruntime.InferenceSession" in usage.read_text()


def test_export_command(run, tmp_path, capsys, monkeypatch):
    out, _ = run
    monkeypatch.chdir(tmp_path)
    assert main(["export", str(out), "--run", "with_dropout"]) == 0
    assert (tmp_path / "with_dropout.pt").is_file()
    assert (tmp_path / "with_dropout.pt.usage.py").is_file()
    printed = capsys.readouterr().out
    images = len(evaluation_items(out, "val")[1])
    assert (f"Checked: loaded back with torch.jit.load and run through the usage script on "
            f"{images} validation images, it gives the same top class as tlgui on {images} of "
            f"{images}") in printed


def test_an_exported_program_is_checked_against_the_app(run, tmp_path, capsys, monkeypatch):
    out, _ = run
    monkeypatch.chdir(tmp_path)
    assert main(["export", str(out), "--run", "without_dropout", "--format", "exported"]) == 0
    assert (tmp_path / "without_dropout.pt2").is_file()
    assert "loaded back with torch.export.load" in capsys.readouterr().out
    assert read_metadata(tmp_path / "without_dropout.pt2")["classes"] == [
        "circle", "square", "star", "triangle"]


def test_a_broken_export_is_caught(run, tmp_path):
    """Two faults the check exists for: a file holding another model than the one checked,
    and a usage script that prepares the images otherwise than the app."""
    from tlgui.core.export import ExportMismatch, check_export, check_images

    out, _ = run
    checkpoint = out / "with_dropout" / "best.pt"
    images = check_images(checkpoint)
    model_file, usage = export(out / "without_dropout" / "best.pt", tmp_path / "m.pt",
                               "torchscript")
    with pytest.raises(ExportMismatch, match=r"m\.pt: the exported model does not answer as "
                                             r"tlgui does .*do not use it"):
        check_export(model_file, usage, checkpoint, images)
    model_file, usage = export(checkpoint, tmp_path / "m.pt", "torchscript")
    assert check_export(model_file, usage, checkpoint, images).agrees
    text = usage.read_text()
    usage.write_text(text.replace("RESIZE, SIZE = ", "RESIZE, SIZE = 3 * 32, 32  # ").replace(
        "image.resize(size_wh, INTERPOLATION)", "image.resize(size_wh, Image.NEAREST)"))
    with pytest.raises(ExportMismatch, match="probabilities up to"):
        check_export(model_file, usage, checkpoint, images)
    usage.write_text("import sys\nsys.exit('no runtime here')\n")
    with pytest.raises(ExportMismatch, match=r"failed \(no runtime here\)"):
        check_export(model_file, usage, checkpoint, images)


@pytest.mark.parametrize("fmt", ["torchscript", "onnx"])
def test_the_usage_snippet_predicts_what_the_app_predicts(run, tmp_path, fmt):
    if fmt == "onnx":
        pytest.importorskip("onnx")
        pytest.importorskip("onnxruntime")
    out, data = run
    checkpoint = out / "with_dropout" / "best.pt"
    images = []
    for i, (cls, size) in enumerate((("star", (70, 50)), ("circle", (41, 90)))):
        path = tmp_path / f"{i}.png"  # odd, non-square sizes: resize and crop must match
        Image.open(next((data / cls).glob("*.jpg"))).resize(size).save(path)
        images.append(str(path))
    suffix = "pt" if fmt == "torchscript" else "onnx"
    (tmp_path / "exported").mkdir()
    _, usage = export(checkpoint, tmp_path / "exported" / f"m.{suffix}", fmt)
    printed = subprocess.run([sys.executable, str(usage), *images], capture_output=True,
                             text=True, check=True, cwd=tmp_path).stdout
    got = [line.split("\t") for line in printed.splitlines()]
    expected, _ = prediction_rows(checkpoint, images)
    assert [g[0] for g in got] == [name for _, name, _ in expected]
    assert [float(g[1]) for g in got] == pytest.approx([p for _, _, p in expected], abs=2e-3)


@pytest.mark.parametrize("fmt", ["torchscript", "onnx"])
def test_the_usage_snippet_is_calibrated_and_not_sure_as_the_app_is(run, tmp_path, fmt):
    """A checkpoint with a temperature and a threshold: the exported probabilities are the
    calibrated ones, and the images under the threshold are "not sure" in both."""
    if fmt == "onnx":
        pytest.importorskip("onnx")
        pytest.importorskip("onnxruntime")
    out, data = run
    checkpoint = torch.load(out / "with_dropout" / "best.pt", weights_only=True)
    images = [str(p) for cls in ("star", "circle", "square") for p in
              sorted((data / cls).glob("*.jpg"))[:2]]
    plain, _ = prediction_rows(out / "with_dropout" / "best.pt", images)
    checkpoint["calibration"] = {
        "temperature": 3.0, "threshold": 0.0, "target_precision": None, "images": 10,
        "ece_before": 0.1, "ece_after": 0.05, "not_sure": 0, "kept_accuracy": 0.5, "note": ""}
    calibrated = tmp_path / "best.pt"
    torch.save(checkpoint, calibrated)
    flatter, _ = prediction_rows(calibrated, images)
    assert all(f[2] < p[2] for f, p in zip(flatter, plain))  # T = 3 flattens them
    confidences = sorted(c for _, _, c in flatter)
    k = len(images) // 2  # halfway between two images: no rounding puts one on the other side
    checkpoint["calibration"]["threshold"] = (confidences[k - 1] + confidences[k]) / 2
    torch.save(checkpoint, calibrated)
    expected, _ = prediction_rows(calibrated, images)
    assert 0 < sum(name.startswith("not sure (") for _, name, _ in expected) < len(images)
    suffix = "pt" if fmt == "torchscript" else "onnx"
    _, usage = export(calibrated, tmp_path / f"m.{suffix}", fmt)
    printed = subprocess.run([sys.executable, str(usage), *images], capture_output=True,
                             text=True, check=True, cwd=tmp_path).stdout
    got = [line.split("\t") for line in printed.splitlines()]
    assert [g[0] for g in got] == [name for _, name, _ in expected]
    assert [float(g[1]) for g in got] == pytest.approx([p for _, _, p in expected], abs=2e-3)
    assert read_metadata(tmp_path / f"m.{suffix}")["temperature"] == 3.0


def awkward_images(folder, source):
    """The same picture as a transparent PNG, an EXIF-rotated JPEG, a 16-bit grayscale PNG and
    a palette PNG with a transparent colour: each opened differently by a naive loader."""
    base = Image.open(source).convert("RGB").resize((60, 44))
    paths = []
    rgba = base.convert("RGBA")
    alpha = Image.new("L", base.size, 0)
    alpha.paste(255, (10, 8, 50, 36))  # an opaque middle on a transparent border
    rgba.putalpha(alpha)
    paths.append(folder / "transparent.png")
    rgba.save(paths[-1])
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: the camera was turned; the picture must be rotated
    paths.append(folder / "rotated.jpg")
    base.save(paths[-1], exif=exif, quality=95)
    deep = (np.asarray(base.convert("L"), dtype=np.uint16) * 257).astype(np.uint16)
    paths.append(folder / "deep.png")
    Image.fromarray(deep).save(paths[-1])  # mode I;16
    palette = base.convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    paths.append(folder / "palette.png")
    palette.save(paths[-1], transparency=0)
    return [str(p) for p in paths]


@pytest.mark.parametrize("fmt", ["torchscript", "onnx"])
def test_the_usage_snippet_opens_images_as_tlgui_does(run, tmp_path, fmt):
    if fmt == "onnx":
        pytest.importorskip("onnx")
        pytest.importorskip("onnxruntime")
    out, data = run
    checkpoint = out / "with_dropout" / "best.pt"
    images = awkward_images(tmp_path, next((data / "star").glob("*.jpg")))
    assert Image.open(images[2]).mode == "I;16"
    suffix = "pt" if fmt == "torchscript" else "onnx"
    _, usage = export(checkpoint, tmp_path / f"m.{suffix}", fmt)
    printed = subprocess.run([sys.executable, str(usage), *images], capture_output=True,
                             text=True, check=True, cwd=tmp_path, timeout=120).stdout
    got = [line.split("\t") for line in printed.splitlines()]
    expected, failed = prediction_rows(checkpoint, images)
    assert not failed and [g[2] for g in got] == images
    assert [g[0] for g in got] == [name for _, name, _ in expected]
    assert [float(g[1]) for g in got] == pytest.approx([p for _, _, p in expected], abs=2e-3)


def test_the_usage_snippet_skips_an_unreadable_file_with_the_reason(run, tmp_path):
    out, data = run
    _, usage = export(out / "with_dropout" / "best.pt", tmp_path / "m.pt", "torchscript")
    good = next((data / "circle").glob("*.jpg"))
    notes = tmp_path / "notes.jpg"
    notes.write_text("not an image")
    done = subprocess.run([sys.executable, str(usage), str(notes), str(good)],
                          capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert done.returncode == 0
    assert [line.split("\t")[2] for line in done.stdout.splitlines()] == [str(good)]
    assert done.stderr.startswith(f"skipped {notes}: ") and "Traceback" not in done.stderr
    only_bad = subprocess.run([sys.executable, str(usage), str(notes)], capture_output=True,
                              text=True, cwd=tmp_path, timeout=120)
    assert only_bad.returncode == 1 and only_bad.stdout == ""


def test_a_vision_transformer_exports_to_onnx(tmp_path):
    """In evaluation mode PyTorch fuses attention into one kernel ONNX cannot express: the
    export computes it step by step, and gives the model's own probabilities."""
    pytest.importorskip("onnx")
    onnxruntime = pytest.importorskip("onnxruntime")
    from dataclasses import asdict

    from tlgui.core.models import ModelSpec, build_model
    from tlgui.core.preprocess import preprocessing_for
    from tlgui.core.weights import CHECKPOINT_FORMAT

    torch.manual_seed(0)
    spec = ModelSpec("vit_b_16", num_classes=3, hidden=8)
    net = build_model(spec, "none").eval()
    preprocessing = preprocessing_for("vit_b_16")
    checkpoint = tmp_path / "best.pt"
    torch.save({"format": CHECKPOINT_FORMAT, "version": 1, "run": "r", "epoch": 1,
                "spec": asdict(spec), "classes": ["a", "b", "c"],
                "preprocessing": preprocessing.to_dict(), "model": net.state_dict(),
                "val_acc": None}, checkpoint)
    model_file, _ = export(checkpoint, tmp_path / "vit.onnx", "onnx")
    assert torch.backends.mha.get_fastpath_enabled()  # given back as it was
    x = torch.rand(2, 3, 224, 224)
    mean = torch.tensor(preprocessing.mean).view(1, 3, 1, 1)
    std = torch.tensor(preprocessing.std).view(1, 3, 1, 1)
    with torch.no_grad():
        expected = torch.softmax(net((x - mean) / std), 1).numpy()
    got = onnxruntime.InferenceSession(str(model_file)).run(None, {"pixels": x.numpy()})[0]
    assert np.allclose(got, expected, atol=1e-4)


def test_an_evaluation_keeps_the_confidences_before_and_after_calibration(run, tmp_path):
    from tlgui.core.preprocess import Preprocessing

    out, _ = run
    run_dir = tmp_path / "run"  # a copy of the run whose model has a temperature of 3
    shutil.copytree(out, run_dir)
    checkpoint = run_dir / "with_dropout" / "best.pt"
    saved = torch.load(checkpoint, weights_only=True)
    saved["calibration"] = {
        "temperature": 3.0, "threshold": 0.3, "target_precision": None, "images": 10,
        "ece_before": 0.1, "ece_after": 0.05, "not_sure": 0, "kept_accuracy": 0.5, "note": ""}
    torch.save(saved, checkpoint)
    e = evaluate_run(checkpoint, "val", workers=0)
    net, ckpt = load_trained(checkpoint)
    _, plain, _ = predict_paths(net, Preprocessing.from_dict(ckpt["preprocessing"]), e.paths,
                                workers=0)
    assert e.raw_confidence == pytest.approx(plain.max(1), abs=1e-5)
    assert (e.confidence < e.raw_confidence).all()  # T = 3 flattens every answer
    assessment = e.assessment()
    assert assessment.temperature == 3.0 and assessment.threshold == 0.3
    assert assessment.not_sure == int((e.confidence < 0.3).sum())


def test_the_check_takes_any_file_name_and_a_relative_path(run, tmp_path, monkeypatch, capsys):
    """A relative --out in a folder, and names without the format's own ending: the check
    runs the script where it is and loads the file as its format says."""
    out, _ = run
    monkeypatch.chdir(tmp_path)
    (tmp_path / "ex").mkdir()
    assert main(["export", str(out), "--out", "ex/m.pt"]) == 0
    assert "loaded back with torch.jit.load" in capsys.readouterr().out
    assert main(["export", str(out), "--format", "onnx", "--out", "ex/model.bin"]) == 0
    assert "loaded back with onnxruntime" in capsys.readouterr().out
    printed = subprocess.run(
        [sys.executable, "ex/model.bin.usage.py", "--json", "-"], capture_output=True,
        text=True, input=str(next((out.parent / "shapes" / "star").glob("*.jpg"))) + "\n",
        check=True).stdout
    record = json.loads(printed)
    assert record["classes"] == ["circle", "square", "star", "triangle"]
    assert record["most_probable"] in record["classes"] and len(record["probabilities"]) == 4
