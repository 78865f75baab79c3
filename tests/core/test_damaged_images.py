"""Images whose header is fine but whose data is damaged: found by the full check after the
quick scan, and left out (never fatal) when one still fails to decode during training."""

import io
import json
import os
import struct

import numpy as np
import pytest
from PIL import Image

from tlgui.cli import main
from tlgui.core import events as ev
from tlgui.core.control import Cancelled, RunControl
from tlgui.core.data import scan, split, verify_images
from tlgui.core.training import TrainConfig, Trainer

DAMAGED = "cannot decode"


def noise(size=48, seed=0):
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 255, (size, size, 3), dtype=np.uint8))


def damage_png(path):
    """Overwrite bytes in the middle of the IDAT chunk; the header and IEND stay intact."""
    data = bytearray(open(path, "rb").read())
    at = data.find(b"IDAT")
    length = struct.unpack(">I", data[at - 4:at])[0]
    middle = at + 4 + length // 2
    data[middle:middle + 24] = b"\0" * 24
    with open(path, "wb") as f:
        f.write(data)


def damaged_gif(path):
    buf = io.BytesIO()
    noise(seed=9).convert("P").save(buf, "GIF")
    data = bytearray(buf.getvalue())
    middle = len(data) // 2
    data[middle:middle + 30] = b"\xff" * 30
    with open(path, "wb") as f:
        f.write(data)


def make(root, counts):
    for c, (name, n) in enumerate(counts.items()):
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            noise(seed=100 * c + i).save(root / name / f"{i}.png")
    return root


@pytest.fixture
def data(tmp_path):
    root = make(tmp_path / "data", {"a": 4, "b": 4, "c": 1})
    damage_png(root / "a" / "1.png")
    damaged_gif(root / "b" / "moving.gif")
    damage_png(root / "c" / "0.png")  # the only image of class c
    return root


def test_damaged_data_passes_the_quick_scan_but_not_the_full_check(data):
    quick = scan([str(data)])
    paths = {it.path for it in quick.items}
    assert {str(data / "a" / "1.png"), str(data / "b" / "moving.gif")} <= paths
    assert quick.classes == ["a", "b", "c"]
    seen = []
    full = verify_images(quick, progress=lambda done, total: seen.append((done, total)))
    assert seen[-1] == (len(quick.items), len(quick.items))
    assert full.classes == ["a", "b"]  # c's only image is damaged: c is left out
    assert full.counts() == [3, 4]
    reasons = {os.path.relpath(s.path, data): s.reason for s in full.skipped}
    assert set(reasons) == {"a/1.png", "b/moving.gif", "c/0.png", "c"}
    for name in ("a/1.png", "b/moving.gif", "c/0.png"):
        assert reasons[name].startswith(DAMAGED), reasons[name]
    assert reasons["c"] == "no usable image — left out"
    assert full.problems() == []
    assert full.verified and not quick.verified
    assert verify_images(full) is full  # checked once is enough


def test_the_full_check_decodes_jpegs_in_draft_mode(tmp_path, monkeypatch):
    from PIL import JpegImagePlugin

    make(tmp_path, {"a": 1, "b": 1})
    noise(size=800).save(tmp_path / "a" / "big.jpg", quality=90)
    drafts = []
    real_draft = JpegImagePlugin.JpegImageFile.draft

    def spy(self, mode, size):
        result = real_draft(self, mode, size)
        drafts.append(self.size)
        return result

    monkeypatch.setattr(JpegImagePlugin.JpegImageFile, "draft", spy)
    report = verify_images(scan([str(tmp_path)]))
    assert report.counts() == [2, 1]
    assert drafts == [(100, 100)]  # an eighth of 800 px: a fraction of the work


def test_the_full_check_can_be_cancelled(data):
    control = RunControl()
    control.stop()
    with pytest.raises(Cancelled):
        verify_images(scan([str(data)]), cancel=control)


def pick_one_per_side(root):
    """A checked report, then one training and one validation image of class 'a' damaged after
    the check (as a file can be while training runs)."""
    report = verify_images(scan([str(root)]))
    s = split(report.items, 0.25, 0)
    victims = [next(it.path for it in side if it.label == 0) for side in (s.train, s.val)]
    for path in victims:
        damage_png(path)
    return report, victims


def tiny_config(**kw):
    return TrainConfig(**{**dict(model="resnet18", weights="none", image_size=32, epochs=1,
                                 batch_size=4, hidden=8, workers=0, val_fraction=0.25), **kw})


@pytest.mark.parametrize("strategy, augment", [("frozen", False), ("full", True)])
def test_an_image_that_fails_during_training_is_left_out_and_named(tmp_path, strategy, augment):
    report, victims = pick_one_per_side(make(tmp_path / "data", {"a": 8, "b": 8}))
    events = []
    config = tiny_config(strategy=strategy, augment=augment)
    summary = Trainer(config, report, tmp_path / "run", on_event=events.append).run()
    assert summary["status"] == "finished"
    assert summary["unreadable"] == sorted(victims)
    assert summary["train_size"] + summary["val_size"] == 16  # the split is the checked one
    saved = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert saved["unreadable"] == sorted(victims)
    logs = [e.text for e in events if isinstance(e, ev.LogMessage)]
    for path in victims:
        named = [line for line in logs if path in line]
        assert len(named) == 1 and DAMAGED in named[0], logs  # named once, not every epoch


def test_training_an_unchecked_report_checks_every_image_first(data, tmp_path):
    events = []
    summary = Trainer(tiny_config(), scan([str(data)]), on_event=events.append).run()
    damaged = sorted(str(data / p) for p in ("a/1.png", "b/moving.gif", "c/0.png"))
    assert summary["unreadable"] == damaged
    assert summary["classes"] == ["a", "b"]
    assert summary["train_size"] + summary["val_size"] == 7  # decided without them
    logs = [e.text for e in events if isinstance(e, ev.LogMessage)]
    assert "class 'c' has no usable image — left out" in logs
    stages = {e.stage for e in events if isinstance(e, ev.StageProgress)}
    assert "verify" in stages


def test_training_fails_clearly_when_no_image_can_be_read(tmp_path):
    root = make(tmp_path / "data", {"a": 2, "b": 2})
    report = verify_images(scan([str(root)]))
    for it in report.items:
        damage_png(it.path)
    with pytest.raises(ValueError, match="could be decoded"):
        Trainer(tiny_config(strategy="full"), report, tmp_path / "run").run()


def test_cli_scan_lists_damaged_images_and_empty_classes(data, capsys):
    (data / "empty").mkdir()
    assert main(["scan", str(data)]) == 0
    out = capsys.readouterr().out
    assert f"{data / 'a' / '1.png'}: {DAMAGED}" in out
    assert f"{data / 'b' / 'moving.gif'}: {DAMAGED}" in out
    assert f"{data / 'empty'}: no usable image — left out" in out
    assert f"{data / 'c'}: no usable image — left out" in out


def test_cli_train_survives_a_damaged_image(data, tmp_path, capsys):
    out = tmp_path / "run"
    code = main(["train", str(data), "--model", "resnet18", "--weights", "none",
                 "--epochs", "1", "--image-size", "32", "--batch-size", "4", "--hidden", "8",
                 "--device", "cpu", "--out", str(out), "--workers", "0"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert f"{data / 'a' / '1.png'}: {DAMAGED}" in captured.err
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "finished" and summary["classes"] == ["a", "b"]


def test_cli_summary_names_images_left_out_during_training(capsys, tmp_path):
    from tlgui.cli import _print_summary

    summary = {"status": "finished", "model": "resnet18", "classes": ["a", "b"], "runs": {},
               "unreadable": ["/data/a/1.png"]}
    _print_summary(summary, tmp_path)
    assert "left out: /data/a/1.png (it could not be decoded during training)" in (
        capsys.readouterr().out)
