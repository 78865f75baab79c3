"""The Check step: an audit in the window finds a planted wrong label; moving or leaving the
image out changes what training uses (and nothing on disk); the CSV; the map."""

import csv

import numpy as np
import pytest
from PIL import Image

from tlgui.core.data import LEFT_OUT_BY_YOU


@pytest.fixture
def coloured(tmp_path):
    rng = np.random.default_rng(0)
    root = tmp_path / "data"
    for name, rgb in {"red": (220, 30, 30), "green": (30, 200, 40),
                      "blue": (30, 40, 220)}.items():
        (root / name).mkdir(parents=True)
        for i in range(10):
            pixels = np.clip(np.array(rgb) + rng.integers(-40, 40, (40, 40, 3)), 0, 255)
            Image.fromarray(pixels.astype(np.uint8)).save(root / name / f"{name}{i}.png")
    wrong = root / "red" / "zz_green.png"
    (root / "green" / "green0.png").replace(wrong)
    return root, str(wrong)


def loaded(qtbot, make_window, root):
    window = make_window()
    window.dataset_pane.load_folders([str(root)])
    qtbot.waitUntil(lambda: window.dataset_pane.report is not None
                    and not window.dataset_pane.busy(), timeout=30_000)
    check = window.check_pane
    check.backbone.setCurrentText("resnet18")
    check.weights.setCurrentIndex(check.weights.findData("none"))
    check.image_size.setValue(32)
    window.training_pane.device.setCurrentIndex(
        max(0, window.training_pane.device.findData("cpu")))
    return window, check


def drawn_map(qtbot, window, check):
    """The Map tab, shown, with the PCA map of the data drawn."""
    window.go_to(window.panes.index(check))
    check.tabs.setCurrentWidget(check.map_tab)
    tab = check.map_tab
    tab.method.setCurrentIndex(tab.method.findData("pca"))
    with qtbot.waitSignal(tab.worker.finished, timeout=120_000):
        tab.draw_button.click()
    return tab


def test_audit_move_leave_out_undo_and_csv(qtbot, make_window, coloured, tmp_path):
    root, wrong = coloured
    before = sorted(p.name for p in root.rglob("*"))
    window, check = loaded(qtbot, make_window, root)
    window.go_to(window.panes.index(check))
    tab = check.audit_tab
    with qtbot.waitSignal(tab.worker.finished, timeout=120_000):
        tab.run_button.click()
    assert tab.result is not None and "images audited" in tab.trust.text()
    rows = [r for r in range(tab.table.row_count())]
    issues = [tab.table.model.cell_text(r, tab.table.model.offset) for r in rows]
    assert "mislabelled?" in issues
    row = issues.index("mislabelled?")
    assert tab.table.path_at(row) == wrong
    tab.table.select_row(row)
    assert tab.move_button.isEnabled()

    tab.move_button.click()  # counted as green, in the app only
    qtbot.waitUntil(lambda: not window.dataset_pane.preparer.is_running(), timeout=10_000)
    data = window.dataset_pane.dataset()
    moved = next(it for it in data.items if it.path == wrong)
    assert data.classes[moved.label] == "green"
    assert "moved to green" in tab.table.model.cell_text(row, tab.table.model.offset + 6)
    assert window.dataset_pane.classes.class_model.rowCount() == 3

    tab.table.select_row(row)
    tab.leave_out_button.click()
    data = window.dataset_pane.dataset()
    assert wrong not in {it.path for it in data.items}
    assert (wrong, LEFT_OUT_BY_YOU) in {(s.path, s.reason) for s in data.skipped}
    assert window.project_state()["data"]["image_edits"] == {wrong: None}

    tab.undo_button.click()
    data = window.dataset_pane.dataset()
    assert data.classes[next(it for it in data.items if it.path == wrong).label] == "red"
    assert not tab.undo_button.isEnabled()

    out = tmp_path / "audit.csv"
    tab.save_csv(str(out))
    with open(out, newline="") as f:
        found = list(csv.DictReader(f))
    assert any(r["path"] == wrong and r["issue"] == "mislabelled"
               and r["suggested"] == "green" for r in found)
    assert sorted(p.name for p in root.rglob("*")) == before  # nothing on disk changed


def test_the_map_places_every_image_and_shows_the_hovered_one(qtbot, make_window, coloured):
    root, wrong = coloured
    window, check = loaded(qtbot, make_window, root)
    tab = drawn_map(qtbot, window, check)
    plot = tab.before_plot
    assert len(plot.scatter.data) == 30 and not tab.after_plot.isVisible()
    assert "30 images" in plot.plotItem.titleLabel.text
    assert "% next to their own class" in plot.plotItem.titleLabel.text
    plot.hovered.emit(wrong, "red")
    assert not tab.preview.pixmap().isNull()
    assert "red" in tab.legend.text() and "green" in tab.legend.text()


def test_the_stored_features_tab_lists_and_removes_what_the_map_stored(
        qtbot, make_window, coloured, monkeypatch):
    from PySide6.QtWidgets import QMessageBox

    root, _wrong = coloured
    window, check = loaded(qtbot, make_window, root)
    window.go_to(window.panes.index(check))
    tab = check.store_tab
    with qtbot.waitSignal(tab.worker.finished, timeout=10_000):
        check.tabs.setCurrentWidget(tab)  # shown: read again
    assert tab.table.rowCount() == 0 and "empty" in tab.summary.text()
    assert not tab.clear_button.isEnabled()

    drawn_map(qtbot, window, check)
    with qtbot.waitSignal(tab.worker.finished, timeout=10_000):
        check.tabs.setCurrentWidget(tab)
    assert tab.table.rowCount() == 1
    texts = [tab.table.item(0, c).text() for c in range(tab.table.columnCount())]
    assert texts[0] == "resnet18" and texts[3] == "32 px" and texts[4] == "30"
    assert len(texts[1]) == 8 and int(texts[1], 16) >= 0  # the weights' fingerprint
    assert "1 set," in tab.summary.text()

    messages = []
    tab.message.connect(messages.append)
    window.controller.is_running = lambda: True  # a training reads the store
    tab.table.selectRow(0)
    tab.remove_button.click()
    assert tab.table.rowCount() == 1 and "in use" in messages[-1]
    window.controller.is_running = lambda: False

    monkeypatch.setattr(QMessageBox, "question",
                        lambda *a, **k: QMessageBox.StandardButton.Yes)
    with qtbot.waitSignal(tab.remover.finished, timeout=10_000):
        tab.clear_button.click()
    qtbot.waitUntil(lambda: tab.table.rowCount() == 0, timeout=10_000)
    assert "freed" in messages[-1] and sorted(p.name for p in root.rglob("*"))


def test_the_map_follows_a_training_and_crosses_its_mistakes(qtbot, make_window, coloured,
                                                             tmp_path):
    import os
    import shutil

    from tlgui.core.data import scan
    from tlgui.core.training import TrainConfig, Trainer

    root, _wrong = coloured
    config = TrainConfig(model="resnet18", weights="none", image_size=32, epochs=1,
                         batch_size=8, hidden=16, workers=0, strategy="frozen")
    Trainer(config, scan([str(root)]), tmp_path / "trained").run()
    best = tmp_path / "trained" / "model" / "best.pt"

    window, check = loaded(qtbot, make_window, root)
    tab = drawn_map(qtbot, window, check)
    assert not tab.after_plot.isVisible()
    before = tab.before_plot.points.copy()

    tab.follow.setChecked(True)
    followed = tmp_path / "running" / "with_dropout"
    followed.parent.mkdir()  # the training's folder; the run's own comes at its first save
    tab.follow_run(followed)
    assert not followed.exists()  # the map only reads
    followed.mkdir()
    qtbot.waitUntil(lambda: str(followed) in tab.watcher.directories(), timeout=5_000)
    with qtbot.waitSignal(tab.worker.finished, timeout=120_000):
        shutil.copy(best, followed / ".best.pt.tmp")  # as the trainer writes it
        os.replace(followed / ".best.pt.tmp", followed / "best.pt")
    assert tab.after_plot.isVisible()
    assert "fine-tuned, epoch 1" in tab.after_plot.plotItem.titleLabel.text
    assert len(tab.after_plot.points) == 30
    np.testing.assert_array_equal(tab.before_plot.points, before)  # the backbone's map stays
    crossed = len(tab.after_plot.crosses.data)
    assert f"mistakes: {crossed} of 30" in tab.legend.text()
    assert len(tab.before_plot.crosses.data) == crossed

    tab.stop_following()
    assert tab._followed is None and not tab.watcher.directories()
    assert check.remembered_settings()["check/map_follow"] is True
