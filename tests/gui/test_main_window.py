"""The main window, driven as a user would (offscreen)."""

import os

import pytest
from PIL import Image
from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt, QUrl
from PySide6.QtGui import QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import QMessageBox

import tlgui.core.training as training
from tlgui.core.sample import ensure_sample_data


def folder_drop(widget, folders):
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(f)) for f in folders])
    enter = QDragEnterEvent(QPoint(5, 5), Qt.DropAction.CopyAction, mime,
                            Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    widget.dragEnterEvent(enter)
    assert enter.isAccepted()
    drop = QDropEvent(QPointF(5, 5), Qt.DropAction.CopyAction, mime,
                      Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    widget.dropEvent(drop)


def make_data(root):
    for name, n in (("cats", 4), ("dogs", 3)):
        (root / name).mkdir(parents=True)
        for i in range(n):
            Image.new("RGB", (40, 40), (50 * i, 90, 20)).save(root / name / f"{i}.jpg")
    (root / "dogs" / "notes.txt").write_text("not an image")
    return root


def wait_for_scan(qtbot, window):
    qtbot.waitUntil(lambda: not window.dataset_pane.scanner.is_running(), timeout=30_000)


def test_dropping_a_root_folder_fills_the_dataset_pane(make_window, qtbot, tmp_path):
    window = make_window()
    data = make_data(tmp_path / "pets")
    folder_drop(window.dataset_pane.drop_zone, [data])
    wait_for_scan(qtbot, window)
    pane = window.dataset_pane
    classes, skipped = pane.classes.model(), pane.skipped.model
    assert classes.rowCount() == 2
    assert [classes.index(r, 0).data() for r in range(2)] == ["cats", "dogs"]
    assert [classes.index(r, 1).data() for r in range(2)] == ["4", "3"]
    assert skipped.rowCount() == 1
    assert skipped.index(0, 0).data() == str(data / "dogs" / "notes.txt")
    assert "not an image" in skipped.index(0, 1).data()
    assert "7 images in 2 classes" in pane.summary.text()
    first = pane.classes.class_model.examples(0)[0]
    qtbot.waitUntil(lambda: pane.classes.thumbnails.pixmap(first) is not None, timeout=10_000)


def test_dropping_several_folders_makes_one_class_each(make_window, qtbot, tmp_path):
    window = make_window()
    data = make_data(tmp_path / "pets")
    folder_drop(window.dataset_pane, [data / "dogs", data / "cats"])
    wait_for_scan(qtbot, window)
    assert window.dataset_pane.dataset().classes == ["dogs", "cats"]


def test_a_drop_anywhere_on_the_window_loads_the_data(make_window, qtbot, tmp_path):
    window = make_window()
    window.go_to(window.panes.index(window.training_pane))
    folder_drop(window, [make_data(tmp_path / "pets")])
    wait_for_scan(qtbot, window)
    assert window.stack.currentWidget() is window.dataset_pane
    assert window.dataset_pane.dataset().classes == ["cats", "dogs"]


def test_files_are_refused_as_drops(make_window, tmp_path):
    window = make_window()
    (tmp_path / "x.jpg").write_bytes(b"")
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(tmp_path / "x.jpg"))])
    enter = QDragEnterEvent(QPoint(5, 5), Qt.DropAction.CopyAction, mime,
                            Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    enter.setAccepted(False)
    window.dataset_pane.drop_zone.dragEnterEvent(enter)
    assert not enter.isAccepted()


def test_renaming_and_leaving_out_classes_never_touches_the_disk(make_window, qtbot, tmp_path):
    window = make_window()
    data = make_data(tmp_path / "pets")
    before = sorted(str(p) for p in data.rglob("*"))
    window.dataset_pane.load_folders([str(data)])
    wait_for_scan(qtbot, window)
    pane = window.dataset_pane
    names = pane.classes.model()
    names.setData(names.index(0, 0), "kittens")
    assert pane.dataset().classes == ["kittens", "dogs"]
    names.setData(names.index(1, 0), "kittens")  # a duplicate name is refused
    assert names.index(1, 0).data() == "dogs"
    pane.classes.selectRow(1)
    pane._remove_selected()
    assert pane.dataset().classes == ["kittens"]
    qtbot.waitUntil(lambda: "At least two classes" in window.training_pane.problem.text())
    assert sorted(str(p) for p in data.rglob("*")) == before


def configure_fast_training(window, epochs=2, strategy="frozen"):
    m, t = window.model_pane, window.training_pane
    m.select_backbone("resnet18")
    m.none_radio.setChecked(True)
    {"frozen": m.frozen_radio, "full": m.full_radio}[strategy].setChecked(True)
    m.hidden.setValue(16)
    t.epochs.setValue(epochs)
    t.image_size.setValue(32)
    t.batch_size.setValue(16)
    t.compare.setChecked(True)


def load_sample(qtbot, window, tmp_path, per_class=12):
    root = ensure_sample_data(tmp_path / "shapes", images_per_class=per_class)
    window.dataset_pane.load_folders([str(root)])
    wait_for_scan(qtbot, window)


def test_sample_data_trains_and_both_curves_receive_points(make_window, qtbot, tmp_path):
    window = make_window()
    window.dataset_pane.use_sample()
    wait_for_scan(qtbot, window)
    assert window.dataset_pane.dataset().classes == ["circle", "square", "star", "triangle"]
    configure_fast_training(window, epochs=2)
    assert window.training_pane.problem.text() == ""
    with qtbot.waitSignal(window.controller.training_finished, timeout=120_000) as finished:
        window.start_training()
    summary = finished.args[0]
    assert summary["status"] == "finished"
    plot = window.training_pane.curves.accuracy
    for run in ("with_dropout", "without_dropout"):
        for split in ("train", "val"):
            epochs, values = plot.points(run, split)
            assert epochs == [1, 2] and all(0 <= v <= 100 for v in values)
    assert "best validation" in window.training_pane.summary.text()
    qtbot.waitUntil(lambda: window.controller.state == "idle")
    assert (window.last_run_dir / "with_dropout" / "best.pt").is_file()
    assert window.training_pane.start_button.isEnabled()


def settled_count(qtbot, events: list, quiet_ms: int = 1000, timeout_ms: int = 30_000) -> int:
    """The length of ``events`` once no new one arrived for ``quiet_ms`` (a slow machine may
    finish the batch under way long after a pause)."""
    waited = 0
    while True:
        count = len(events)
        qtbot.wait(quiet_ms)
        waited += quiet_ms
        if len(events) == count:
            return count
        assert waited < timeout_ms, "events kept arriving"


def test_pause_resume_and_stop(make_window, qtbot, tmp_path):
    window = make_window()
    load_sample(qtbot, window, tmp_path)
    configure_fast_training(window, epochs=50, strategy="full")
    window.training_pane.batch_size.setValue(4)
    batches = []
    window.controller.batch_finished.connect(batches.append)
    window.start_training()
    qtbot.waitUntil(lambda: len(batches) >= 2, timeout=60_000)
    window.training_pane.pause_button.click()
    assert window.controller.state == "paused"
    assert window.training_pane.pause_button.text() == "Resume"
    paused_at = settled_count(qtbot, batches)  # a batch under way may still arrive
    qtbot.wait(1000)
    assert len(batches) == paused_at, "training went on while paused"
    window.training_pane.pause_button.click()
    assert window.controller.state == "running"
    qtbot.waitUntil(lambda: len(batches) > paused_at + 1, timeout=30_000)
    with qtbot.waitSignal(window.controller.training_finished, timeout=30_000) as finished:
        window.training_pane.stop_button.click()
    assert finished.args[0]["status"] == "stopped"
    qtbot.waitUntil(lambda: window.controller.state == "idle")
    assert window.state_label.text() == "Idle"


def test_an_error_in_the_trainer_shows_a_message_and_the_window_stays_usable(
        make_window, qtbot, tmp_path, monkeypatch):
    window = make_window()
    load_sample(qtbot, window, tmp_path)
    configure_fast_training(window)

    def broken(self):
        raise RuntimeError("the disk is on fire")

    monkeypatch.setattr(training.Trainer, "run", broken)
    with qtbot.waitSignal(window.controller.training_failed, timeout=30_000):
        window.start_training()
    qtbot.waitUntil(lambda: window.error_box is not None and window.error_box.isVisible())
    assert "the disk is on fire" in window.error_box.text()
    assert "Traceback" in window.error_box.detailedText()
    qtbot.waitUntil(lambda: window.controller.state == "idle")
    window.error_box.close()
    assert window.training_pane.start_button.isEnabled()
    window.go_to(0)
    assert window.stack.currentWidget() is window.dataset_pane
    monkeypatch.undo()
    with qtbot.waitSignal(window.controller.training_finished, timeout=120_000):
        window.start_training()  # and training works again


def test_closing_mid_training_asks_then_stops_cleanly(make_window, qtbot, tmp_path, monkeypatch):
    window = make_window()
    load_sample(qtbot, window, tmp_path)
    configure_fast_training(window, epochs=50, strategy="full")
    batches = []
    window.controller.batch_finished.connect(batches.append)
    window.start_training()
    qtbot.waitUntil(lambda: len(batches) >= 1, timeout=120_000)
    asked = []

    def answer(*args, **kwargs):
        asked.append(args)
        return QMessageBox.StandardButton.Yes

    monkeypatch.setattr(QMessageBox, "question", answer)
    monkeypatch.setattr(QMessageBox, "exec",  # then: save this session as a project? No
                        lambda box: QMessageBox.StandardButton.Discard)
    window.close()
    assert asked and window.isVisible()  # it waits for the trainer to stop
    qtbot.waitUntil(lambda: not window.isVisible(), timeout=30_000)
    assert not window.controller.is_running()
    assert not window.controller._task.thread_running()
    run = window.last_run_dir
    assert not list(run.rglob("*.tmp")), "half-written files left behind"


def test_settings_are_remembered(make_window, qtbot, settings):
    window = make_window()
    window.model_pane.select_backbone("mobilenet_v3_small")
    window.model_pane.dropout.setValue(0.3)
    window.training_pane.epochs.setValue(7)
    window.training_pane.compare.setChecked(False)
    window.dataset_pane.val_fraction.setValue(30)
    window.close()
    again = make_window()
    assert again.model_pane.backbone() == "mobilenet_v3_small"
    assert again.model_pane.dropout.value() == pytest.approx(0.3)
    assert again.training_pane.epochs.value() == 7
    assert not again.training_pane.compare.isChecked()
    assert again.dataset_pane.val_fraction.value() == 30


def test_the_image_size_follows_the_backbone(make_window):
    """The box names the backbone's own size; a vision transformer takes that size only, so
    the box is greyed, and the size chosen before comes back with another backbone."""
    window = make_window()
    size = window.training_pane.image_size
    size.setValue(160)
    window.model_pane.select_backbone("vit_b_16")
    assert not size.isEnabled() and size.text() == "backbone default (224 px)"
    assert window.training_pane.settings()["image_size"] is None
    assert [n for n, _, _ in window.model_pane._layout_rows()][:2] == ["embed", "layer1"]
    window.model_pane.select_backbone("efficientnet_v2_s")
    assert size.isEnabled() and size.value() == 160
    assert size.specialValueText() == "backbone default (384 px)"
    assert window.training_pane.settings()["image_size"] == 160


def test_model_pane_shows_frozen_blocks_and_cached_weights(make_window, qtbot, monkeypatch):
    import torch
    from torchvision.models import get_model

    from tlgui.core.weights import cached_path

    path = cached_path("resnet18")
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(get_model("resnet18", weights=None).state_dict(), path)
    window = make_window()
    pane = window.model_pane
    row = [i.name for i in pane.infos].index("resnet18")
    assert "cached" in pane.table.item(row, 5).text()
    pane.select_backbone("resnet18")
    assert pane.problems() == []
    pane.partial_radio.setChecked(True)
    pane.blocks_spin.setValue(2)
    frozen = [b.toolTip().endswith("frozen (not trained)") for b in pane.strip.boxes]
    assert frozen == [True, True, True, False, False, False]
    pane.select_backbone("vgg16")
    assert "not cached" in pane.problems()[0]
    assert os.path.basename(str(path)) == "resnet18-f37072fd.pth"


@pytest.mark.parametrize(
    "with_run, without_run, words",
    [([(0.82, 0.80)] * 4, [(0.98, 0.78)] * 4, "Without dropout the model over-fits"),
     ([(0.42, 0.40), (0.52, 0.50), (0.62, 0.60)], [(0.77, 0.75)] * 3,
      "Dropout slowed learning"),
     ([(0.80, 0.83)] * 3, [(0.81, 0.84)] * 3, "Neither run over-fits")],
)
def test_summary_says_what_the_comparison_shows(with_run, without_run, words):
    from tlgui.core.verdicts import dropout_verdict
    from tlgui.gui.training_pane import summary_html

    def history(pairs):
        return [{"train_acc_eval": train, "val_acc": val} for train, val in pairs]

    def run(pairs):
        train, val = pairs[-1]
        return {"best_val_acc": val, "best_epoch": 3, "train_val_gap": train - val,
                "test_acc": None}

    verdict = dropout_verdict(history(with_run), history(without_run))
    text = summary_html({"runs": {"with_dropout": run(with_run),
                                  "without_dropout": run(without_run)},
                         "verdict": {"kind": verdict.kind, "text": verdict.text}})
    assert words in text and "with dropout" in text and "without dropout" in text


class SlowResponse:
    """A download that trickles in, so that it can be watched and cancelled."""

    def __init__(self, data, delay):
        self.data, self.delay, self.pos = data, delay, 0
        self.headers = {"Content-Length": str(len(data))}

    def read(self, n):
        import time

        time.sleep(self.delay)
        chunk = self.data[self.pos:self.pos + n]
        self.pos += len(chunk)
        return chunk

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def test_weights_download_shows_progress_and_can_be_cancelled(make_window, qtbot, monkeypatch):
    from tlgui.core import weights as W

    payload = os.urandom(6 << 20)
    monkeypatch.setattr(W, "_check_hash", lambda *a: None)
    monkeypatch.setattr(W.urllib.request, "urlopen",
                        lambda url, timeout: SlowResponse(payload, 0.15))
    window = make_window()
    pane = window.model_pane
    window.go_to(window.panes.index(pane))
    pane.select_backbone("mobilenet_v3_small")
    pane.download_button.click()
    qtbot.waitUntil(lambda: pane.download_progress.value() > 0, timeout=10_000)
    assert pane.cancel_download.isVisible()
    pane.cancel_download.click()
    qtbot.waitUntil(lambda: not pane.downloader.is_running(), timeout=10_000)
    assert not W.is_cached("mobilenet_v3_small")
    assert not any(W.hub_checkpoint_dir().glob("*"))  # no partial file

    monkeypatch.setattr(W.urllib.request, "urlopen",
                        lambda url, timeout: SlowResponse(payload, 0.0))
    pane.download_button.click()
    qtbot.waitUntil(lambda: not pane.downloader.is_running(), timeout=10_000)
    assert W.is_cached("mobilenet_v3_small")
    row = [i.name for i in pane.infos].index("mobilenet_v3_small")
    assert "cached" in pane.table.item(row, 5).text()
    assert pane.problems() == []


def test_about_shows_the_versions_and_the_device(make_window):
    from PySide6.QtCore import qVersion

    from tlgui import __version__
    from tlgui.gui.main_window import about_text

    window = make_window()
    text = about_text(window.backend)
    assert f"tlgui {__version__}" in text and f"<td>Qt</td><td>&nbsp;{qVersion()}" in text
    device, description = window.backend["devices"][0]
    assert f"{device} — {description}" in text and "torchvision" in text
    assert "PyTorch is still loading" in about_text(None)
