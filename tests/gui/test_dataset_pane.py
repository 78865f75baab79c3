"""The Data step: awkward folders (images damaged mid-data, empty classes, links back to a
parent folder), every problem shown at once, and the step at 100,000 images — split settings
that wait until they rest, tables without a widget per row, a test folder added without
rescanning, a scan that can be cancelled, and colours that follow the palette."""

import json
import os
import threading

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt, QUrl
from PySide6.QtGui import QColor, QDragEnterEvent, QDragLeaveEvent, QDropEvent, QPalette
from PySide6.QtWidgets import QFileDialog

from tests.core.test_damaged_images import damage_png
from tests.core.test_scan import scanned_paths
from tests.gui.palettes import dark_palette
from tlgui.core.data import ImageItem, ScanReport, SkippedFile
from tlgui.gui.dataset_pane import STILL_CHECKING, DatasetPane, error_colour
from tlgui.gui.pane import Pane
from tlgui.gui.thumbnails import ThumbnailLoader


def make(root, counts):
    rng = np.random.default_rng(0)
    for name, n in counts.items():
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            pixels = rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(root / name / f"{i}.png")
    return root


def wait_for_scan(qtbot, window):
    qtbot.waitUntil(lambda: not window.dataset_pane.scanner.is_running(), timeout=30_000)


def left_out(pane):
    model = pane.skipped.model
    return {model.index(r, 0).data(): model.index(r, 1).data() for r in range(model.rowCount())}


def column(pane, col):
    model = pane.classes.model()
    return [model.index(r, col).data() for r in range(model.rowCount())]


def rename(pane, row, name):
    model = pane.classes.model()
    model.setData(model.index(row, 0), name)


def new_pane(qtbot, size=(1000, 800)):
    pane = DatasetPane()
    qtbot.addWidget(pane)
    pane.resize(*size)
    return pane


def loaded_pane(qtbot, folder):
    pane = new_pane(qtbot)
    pane.load_folders([str(folder)])
    qtbot.waitUntil(lambda: pane.report is not None and not pane.busy(), timeout=30_000)
    return pane


@pytest.fixture
def panes():
    """Panes made by a test are shut down after it, whatever it asserted."""
    made = []
    yield made
    for pane in made:
        pane.shutdown()


def test_images_damaged_mid_data_are_found_after_the_quick_scan(make_window, qtbot, tmp_path):
    window = make_window()
    data = make(tmp_path / "data", {"a": 4, "b": 3, "c": 1})
    damage_png(data / "a" / "1.png")
    damage_png(data / "c" / "0.png")  # c's only image
    pane = window.dataset_pane
    seen = []
    pane.dataset_changed.connect(lambda: seen.append(pane.dataset().counts()))
    pane.load_folders([str(data)])
    wait_for_scan(qtbot, window)
    assert seen[0] == [4, 3, 1]  # the quick scan is shown at once
    assert pane.dataset().classes == ["a", "b"]
    assert pane.dataset().counts() == [3, 3]
    assert column(pane, 1) == ["3", "3"]
    reasons = left_out(pane)
    assert reasons[str(data / "a" / "1.png")].startswith("cannot decode")
    assert reasons[str(data / "c" / "0.png")].startswith("cannot decode")
    assert reasons[str(data / "c")] == "no usable image — left out"
    assert pane.problems() == []


def test_renames_made_during_the_full_check_survive_it(make_window, qtbot, tmp_path):
    window = make_window()
    data = make(tmp_path / "data", {"a": 3, "b": 3, "c": 1})
    damage_png(data / "c" / "0.png")
    pane = window.dataset_pane

    def rename_once_shown():
        if pane.report is not None and not pane.report.verified and pane.names[1] == "b":
            rename(pane, 1, "bees")

    pane.dataset_changed.connect(rename_once_shown)
    pane.load_folders([str(data)])
    wait_for_scan(qtbot, window)
    assert pane.dataset().classes == ["a", "bees"]


def test_a_link_back_to_the_root_does_not_steal_another_class(make_window, qtbot, tmp_path):
    window = make_window()
    data = make(tmp_path / "data", {"a": 3, "b": 2})
    os.symlink(data, data / "a" / "up")
    window.dataset_pane.load_folders([str(data)])
    wait_for_scan(qtbot, window)
    assert window.dataset_pane.dataset().counts() == [3, 2]
    assert left_out(window.dataset_pane) == {str(data / "a" / "up"):
                                             "link back to a parent folder"}


def test_every_problem_is_shown_at_once(make_window, qtbot, tmp_path):
    window = make_window()  # ImageNet weights are not cached in the tests: one problem
    data = make(tmp_path / "data", {"a": 3})
    (data / "empty").mkdir()
    window.dataset_pane.load_folders([str(data)])
    wait_for_scan(qtbot, window)
    assert left_out(window.dataset_pane) == {str(data / "empty"): "no usable image — left out"}
    shown = window.training_pane.problem.text().splitlines()
    assert len(shown) == 2
    assert shown[0].startswith("At least two classes are needed, found only 'a'")
    assert "not cached" in shown[1]


# -- split settings --------------------------------------------------------------------------
def test_six_split_changes_in_a_row_recompute_once(qtbot, tmp_path, panes):
    pane = loaded_pane(qtbot, make(tmp_path / "data", {"a": 10, "b": 20}))
    panes.append(pane)
    changes = []
    pane.dataset_changed.connect(lambda: changes.append(pane.split_settings()))
    for digits in range(1, 7):  # typing the seed 123456
        pane.seed.setValue(int("123456"[:digits]))
    pane.val_fraction.setValue(30)
    assert changes == []  # nothing computed while the settings move
    qtbot.waitUntil(lambda: bool(changes) and not pane._split_timer.isActive(), timeout=5_000)
    assert changes == [(0.3, 123456)]
    assert column(pane, 2) == ["7", "14"] and column(pane, 3) == ["3", "6"]
    assert "21 for training, 9 for validation" in pane.summary.text()


# -- 100,000 images --------------------------------------------------------------------------
def big_report(classes=1000, per_class=100, skipped=100_000):
    items = [ImageItem(f"/nowhere/c{i % classes}/{i}.jpg", i % classes,
                       f"c{i % classes}/{i}.jpg") for i in range(classes * per_class)]
    left = [SkippedFile(f"/nowhere/junk/{i:06d}.txt", "not an image (no known image format)")
            for i in range(skipped)]
    return ScanReport([f"c{c}" for c in range(classes)],
                      [f"/nowhere/c{c}" for c in range(classes)], items, left)


def test_a_thousand_classes_and_a_hundred_thousand_files_left_out(qtbot, monkeypatch, panes):
    requested = []
    original = ThumbnailLoader.request

    def spy(loader, items, size=None):
        items = list(items)
        requested.extend(path for _, path in items)
        return original(loader, items, size)

    monkeypatch.setattr(ThumbnailLoader, "request", spy)
    pane = new_pane(qtbot)
    panes.append(pane)
    pane.show()
    pane.set_report(big_report(), ["/nowhere"])
    assert pane.classes.model().rowCount() == 1000
    assert pane.skipped.row_count() == 100_000
    assert pane.skipped_box.title() == "Left out (100,000)"
    assert "100,000 images in 1,000 classes" in pane.summary.text()
    assert "80,000 for training, 20,000 for validation" in pane.summary.text()
    # the examples are asked for only for the classes on screen
    qtbot.waitUntil(lambda: len(requested) > 0, timeout=5_000)
    on_screen = {p for r in pane.classes.visible_rows()
                 for p in pane.classes.class_model.examples(r)}
    assert len(pane.classes.visible_rows()) < 20
    assert set(requested) <= on_screen
    # the files left out get room: more than a handful of rows are on screen
    table = pane.skipped.table
    assert table.viewport().height() >= 8 * table.verticalHeader().defaultSectionSize()


def test_example_thumbnails_are_painted_from_the_views_own_loader(qtbot, tmp_path, panes):
    pane = loaded_pane(qtbot, make(tmp_path / "data", {"a": 3, "b": 2}))
    panes.append(pane)
    pane.show()
    first = pane.classes.class_model.examples(0)[0]
    qtbot.waitUntil(lambda: pane.classes.thumbnails.pixmap(first) is not None, timeout=10_000)
    pixmap = pane.classes.thumbnails.pixmap(first)
    assert max(pixmap.deviceIndependentSize().width(),
               pixmap.deviceIndependentSize().height()) <= 56


def test_an_example_that_cannot_be_shown_is_crossed_out_not_left_loading(qtbot, tmp_path):
    from tlgui.gui.class_table import EXAMPLES, THUMB, ClassTable

    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not an image")  # as a file replaced since the scan would be
    table = ClassTable()
    qtbot.addWidget(table, before_close_func=lambda t: t.shutdown())
    table.resize(700, 200)
    table.show()
    table.class_model.set_classes(["a"], [str(tmp_path)], [1], [[str(broken)]])
    qtbot.waitUntil(lambda: table.thumbnails.has_failed(str(broken)), timeout=10_000)
    rect = table.visualRect(table.class_model.index(0, EXAMPLES))
    x, y = rect.x() + 2, rect.y() + (rect.height() - THUMB) // 2
    mid = table.palette().color(QPalette.ColorRole.Mid)

    def crossed():
        image = table.viewport().grab().toImage()
        return any(image.pixelColor(x + THUMB // 2 + d, y + THUMB // 2 + d).rgb() == mid.rgb()
                   for d in (-1, 0, 1))

    qtbot.waitUntil(crossed, timeout=5_000)


# -- test folder, busy, cancel ---------------------------------------------------------------
def test_a_test_folder_keeps_renames_and_removals_and_scans_only_itself(qtbot, tmp_path,
                                                                        monkeypatch, panes):
    train = make(tmp_path / "train", {"cat": 2, "dog": 3, "fox": 4})
    test = make(tmp_path / "test", {"cat": 1, "fox": 2})
    pane = loaded_pane(qtbot, train)
    panes.append(pane)
    rename(pane, 0, "kitty")
    pane.classes.selectRow(1)
    pane.remove_button.click()
    probed = scanned_paths(monkeypatch)
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *a, **k: str(test))
    pane.test_button.click()
    qtbot.waitUntil(lambda: not pane.busy(), timeout=30_000)
    assert pane.edits() == (["kitty", "dog", "fox"], ["dog"])
    report = pane.dataset()
    assert report.classes == ["kitty", "fox"]
    assert sorted(report.classes[it.label] for it in report.test_items) == ["fox", "fox",
                                                                            "kitty"]
    assert probed and all(p.startswith(str(test)) for p in probed)
    assert pane.test_folder == str(test)
    assert "3 test images" in pane.summary.text()


@pytest.fixture
def held_scan(monkeypatch):
    """A gate, open at first: while it is closed (``clear()``), every image check waits for
    it to open again (at most 10 s)."""
    from tlgui.core import data

    gate = threading.Event()
    gate.set()
    probe = data.probe_image

    def held(path, *args, **kwargs):
        gate.wait(10)
        return probe(path, *args, **kwargs)

    monkeypatch.setattr(data, "probe_image", held)
    yield gate
    gate.set()


def test_while_images_are_checked_the_pane_is_busy_and_training_waits(qtbot, tmp_path,
                                                                      held_scan, panes):
    pane = new_pane(qtbot)
    panes.append(pane)
    pane.show()
    held_scan.clear()
    pane.load_folders([str(make(tmp_path / "data", {"a": 2, "b": 2}))])
    assert pane.busy()
    assert pane.problems() == [STILL_CHECKING]
    assert pane.busy_indicator.isVisibleTo(pane)
    held_scan.set()
    qtbot.waitUntil(lambda: not pane.busy(), timeout=30_000)
    assert pane.problems() == []
    assert not pane.busy_indicator.isVisibleTo(pane)


def test_a_cancelled_scan_keeps_the_previous_data_set(qtbot, tmp_path, held_scan, panes):
    first = make(tmp_path / "first", {"a": 2, "b": 2})
    pane = loaded_pane(qtbot, first)
    panes.append(pane)
    pane.show()
    rename(pane, 0, "ants")
    messages = []
    pane.message.connect(messages.append)
    held_scan.clear()
    pane.load_folders([str(make(tmp_path / "second", {"x": 2, "y": 2, "z": 2}))])
    assert pane.busy()
    pane.busy_indicator.cancel_button.click()
    held_scan.set()
    qtbot.waitUntil(lambda: not pane.busy(), timeout=30_000)
    assert pane.folders == [str(first)]
    assert pane.dataset().classes == ["ants", "b"]
    assert column(pane, 0) == ["ants", "b"]
    assert messages[-1] == "checking the images was cancelled; the previous data set is kept"


# -- the drop zone, the palette --------------------------------------------------------------
def drag(folder):
    """A drag of ``folder``: its data and its enter and drop events (the events point to the
    data, which must outlive them)."""
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(folder))])
    enter = QDragEnterEvent(QPoint(5, 5), Qt.DropAction.CopyAction, mime,
                            Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    drop = QDropEvent(QPointF(5, 5), Qt.DropAction.CopyAction, mime,
                      Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    return mime, enter, drop


def test_the_drop_highlight_ends_when_the_drag_leaves_or_drops(qtbot, tmp_path, panes):
    pane = new_pane(qtbot)
    panes.append(pane)
    zone = pane.drop_zone
    _mime, enter, drop = drag(make(tmp_path / "data", {"a": 2, "b": 2}))
    pane.dragEnterEvent(enter)
    assert zone.highlighted()
    pane.dragLeaveEvent(QDragLeaveEvent())  # the drag left the pane
    assert not zone.highlighted()
    zone.dragEnterEvent(enter)
    zone.dragLeaveEvent(QDragLeaveEvent())
    assert not zone.highlighted()
    pane.dragEnterEvent(enter)
    zone.reset_highlight()  # what the window calls when a drag leaves it
    assert not zone.highlighted()
    pane.dragEnterEvent(enter)
    pane.dropEvent(drop)
    assert not zone.highlighted()
    qtbot.waitUntil(lambda: not pane.busy(), timeout=30_000)


def lightness(widget, x, y):
    return widget.grab().toImage().pixelColor(x, y).lightnessF()


@pytest.fixture
def dark_theme(qapp):
    """The application's palette is a dark one for the test."""
    light = qapp.palette()
    qapp.setPalette(dark_palette())
    yield
    qapp.setPalette(light)


def test_a_dark_theme_keeps_the_data_step_dark_and_readable(qtbot, panes, dark_theme):
    pane = new_pane(qtbot)
    panes.append(pane)
    report = big_report(classes=2, per_class=0, skipped=0)
    report.items = [ImageItem(f"/nowhere/c{c}/{i}.jpg", c, f"c{c}/{i}.jpg")
                    for c, n in ((0, 30), (1, 3)) for i in range(n)]
    pane.show()
    pane.set_report(report, ["/nowhere"])
    assert pane.warning.isVisible()  # 30 against 3: imbalanced
    assert lightness(pane.drop_zone, 12, 12) < 0.4
    assert lightness(pane.warning, 6, 6) < 0.4
    assert QColor(error_colour(pane.palette())).lightnessF() > 0.6
    assert QColor(error_colour(QPalette(QColor("#f0f0f0")))).lightnessF() < 0.5


# -- the Pane interface ----------------------------------------------------------------------
def test_the_data_step_is_a_pane_that_saves_and_restores_its_state(qtbot, tmp_path, panes):
    data = make(tmp_path / "data", {"a": 2, "b": 3, "c": 4})
    pane = loaded_pane(qtbot, data)
    panes.append(pane)
    assert isinstance(pane, Pane) and pane.title == "Data" and pane.hint
    changes = []
    pane.changed.connect(lambda: changes.append("changed"))
    rename(pane, 0, "ants")
    pane.classes.selectRow(2)
    pane.remove_button.click()
    pane.seed.setValue(7)
    qtbot.waitUntil(lambda: len(changes) == 3, timeout=5_000)
    pane.load_folders([str(data)])  # new data is a change too
    qtbot.waitUntil(lambda: not pane.busy() and len(changes) == 4, timeout=30_000)
    rename(pane, 0, "ants")
    pane.classes.selectRow(2)
    pane.remove_button.click()

    state = pane.project_state()
    assert state == {"data": {"folders": [str(data)], "test_folder": None,
                              "class_names": ["ants", "b", "c"], "removed": ["c"],
                              "image_edits": {}, "val_fraction": 0.2, "seed": 7}}
    again = new_pane(qtbot)
    panes.append(again)
    reopened = []
    again.changed.connect(lambda: reopened.append("changed"))
    assert again.apply_project_state(json.loads(json.dumps(state))) == []
    qtbot.waitUntil(lambda: again.report is not None and not again.busy(), timeout=30_000)
    assert again.project_state() == state
    assert again.dataset().classes == ["ants", "b"]
    assert reopened == []  # a project just opened has nothing unsaved

    values = pane.remembered_settings()
    fresh = new_pane(qtbot)
    panes.append(fresh)
    fresh.restore_settings(json.loads(json.dumps(values)))
    assert fresh.split_settings() == (0.2, 7)
    assert fresh.last_folders() == [str(data)]
    older = new_pane(qtbot)  # settings kept as JSON text by earlier versions
    panes.append(older)
    older.restore_settings({"split": json.dumps({"val_fraction": 0.35, "seed": 3}),
                            "data/folders": json.dumps([str(data), str(tmp_path / "gone")])})
    assert older.split_settings() == (0.35, 3)
    assert older.last_folders() == [str(data)]
    assert older.remembered_settings()["data/folders"] == [str(data), str(tmp_path / "gone")]


def test_leaving_a_class_out_of_100_000_images_builds_the_data_set_off_the_gui_thread(
        qtbot, monkeypatch, panes):
    built_in = []
    original = ScanReport.without_classes

    def spy(report, removed):
        built_in.append(threading.current_thread() is threading.main_thread())
        return original(report, removed)

    monkeypatch.setattr(ScanReport, "without_classes", spy)
    pane = new_pane(qtbot)
    panes.append(pane)
    pane.set_report(big_report(classes=100, per_class=1000, skipped=0), ["/nowhere"])
    pane.classes.selectRow(1)
    with qtbot.waitSignal(pane.dataset_changed, timeout=30_000):
        pane.remove_button.click()
        assert "99,000 images in 99 classes" in pane.summary.text()  # at once, from counts
    assert built_in == [False]
    report = pane.dataset()
    assert built_in == [False]  # built already
    assert len(report.items) == 99_000 and "c1" not in report.classes


def test_the_class_table_writes_big_counts_with_thousands_separators():
    from tlgui.gui.class_table import IMAGES, TRAIN, VAL, ClassTableModel

    model = ClassTableModel()
    model.set_classes(["cats", "dogs"], ["/a/cats", "/a/dogs"], [10_000, 7], [[], []])
    model.set_split([(8_000, 2_000), (6, 1)], removed={1})
    shown = [[model.index(r, c).data() for c in (IMAGES, TRAIN, VAL)] for r in range(2)]
    assert shown == [["10,000", "8,000", "2,000"], ["7", "–", "–"]]
