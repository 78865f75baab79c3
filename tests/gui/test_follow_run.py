"""A run folder still being written, opened on the Results step, is followed on the Train
step: the curves and the log as the log grows, read-only, until its training ends."""

import shutil

from PySide6.QtWidgets import QFileDialog

from tlgui.core import event_log
from tlgui.core.data import scan
from tlgui.core.sample import ensure_sample_data
from tlgui.core.training import TrainConfig, Trainer


def test_a_run_being_written_elsewhere_is_followed_until_it_ends(make_window, qtbot, tmp_path,
                                                                 monkeypatch):
    data = ensure_sample_data(tmp_path / "shapes", images_per_class=8)
    done = tmp_path / "elsewhere"
    Trainer(TrainConfig(model="resnet18", weights="none", image_size=32, epochs=2,
                        batch_size=8, hidden=8, workers=0), scan([str(data)]), done).run()
    lines = (done / event_log.LOG_NAME).read_text().splitlines(keepends=True)
    first_epoch = max(i for i, line in enumerate(lines)
                      if '"EpochFinished"' in line and '"epoch":1,' in line)

    live = tmp_path / "live"
    live.mkdir()
    shutil.copy(done / "config.json", live)
    (live / event_log.LOG_NAME).write_text("".join(lines[:first_epoch + 1]))

    window = make_window()
    t = window.training_pane
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *a, **k: str(live))
    window.results_pane.open_run_button.click()
    assert window.follower.is_following()
    assert window.panes[window.steps.currentRow()] is t
    assert "Following" in window.state_label.text()
    assert not t.stop_button.isEnabled() and not t.pause_button.isEnabled()  # read-only
    assert not t.settings_box.isEnabled()  # this window's settings are not the run's
    qtbot.waitUntil(lambda: "epoch 1/2" in t.log.toPlainText(), timeout=5_000)
    assert "epoch 2/2" not in t.log.toPlainText()
    assert t.curves.accuracy.points("model", "val")[0] == [1]
    window.dataset_pane.dataset_changed.emit()  # as when PyTorch loads: the curves stay
    assert t.curves.accuracy.points("model", "val")[0] == [1]
    assert window.results_pane.runs[0].status == "running"
    # The Check step's map can follow it as it can a training of this window's own.
    assert window.check_pane.map_tab._followed == live / "model" / "best.pt"

    for name in ("model", "summary.json", "classes.json"):  # the training ends elsewhere
        source = done / name
        (shutil.copytree if source.is_dir() else shutil.copy)(source, live / name)
    with open(live / event_log.LOG_NAME, "a") as f:
        f.write("".join(lines[first_epoch + 1:]))
    qtbot.waitUntil(lambda: not window.follower.is_following(), timeout=5_000)
    assert "epoch 2/2" in t.log.toPlainText()
    assert "best validation" in t.summary.text()
    assert t.curves.accuracy.points("model", "val")[0] == [1, 2]
    assert t.settings_box.isEnabled()
    assert window.state_label.text() == "Idle"
    assert window.check_pane.map_tab._followed is None
    assert window.results_pane.runs[0].status == "finished"
    assert str(live / "model" / "best.pt") in window.inspect_pane.checkpoints.values()
    assert sorted(p.name for p in live.iterdir()) == sorted(
        ["config.json", "classes.json", "events.jsonl", "model", "summary.json"])  # read only
