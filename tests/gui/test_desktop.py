"""Desktop conventions of the main window: a window built from its list of panes, the
unsaved-changes mark and prompt, Save As, one error box, F5 while data or PyTorch are not ready,
drag highlight, palette colours, a quit that never hangs, and the offline dialog's buttons."""

import json
import re
import threading
import time
from pathlib import Path

from PIL import Image
from PySide6.QtCore import QMimeData, QPoint, Qt, QUrl
from PySide6.QtGui import QAction, QColor, QDragEnterEvent, QDragLeaveEvent, QKeySequence
from PySide6.QtWidgets import QApplication, QMessageBox

import tlgui.gui.main_window as main_window
from tests.gui.palettes import dark_palette
from tlgui.gui.main_window import MainWindow
from tlgui.gui.pane import Pane


def make_data(root, classes=("cats", "dogs"), per_class=4):
    for c, name in enumerate(classes):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            Image.new("RGB", (32, 32), (60 * i, 90 * c, 20)).save(root / name / f"{i}.jpg")
    return root


def load(qtbot, window, folder):
    window.dataset_pane.load_folders([str(folder)])
    qtbot.waitUntil(lambda: not window.dataset_pane.busy(), timeout=30_000)


def answer_prompts(monkeypatch, button):
    """Answer every Save / Discard / Cancel question with ``button``; returns their texts."""
    asked = []

    def answer(box):
        asked.append(box.text())
        return button

    monkeypatch.setattr(QMessageBox, "exec", answer)
    return asked


# -- one list of panes -------------------------------------------------------------------------
class ExtraPane(Pane):
    title = "Extra"
    hint = "A step added in one place."

    def __init__(self):
        super().__init__()
        self.restored = None
        self.applied = None
        self.shut_down = False

    def problems(self):
        return ["the extra step is not ready"]

    def remembered_settings(self):
        return {"extra": {"level": 3}}

    def restore_settings(self, values):
        self.restored = values.get("extra")

    def project_state(self):
        return {"extra": {"level": 3}}

    def apply_project_state(self, state):
        self.applied = state.get("extra")
        return ["the extra step could not restore everything"]

    def shutdown(self):
        self.shut_down = True


def test_a_pane_added_to_the_list_gets_its_step_menu_hint_problems_settings_and_project(
        make_window, monkeypatch, settings, tmp_path, qtbot):
    made = MainWindow._make_panes
    monkeypatch.setattr(MainWindow, "_make_panes",
                        lambda self: made(self) + [ExtraPane()])
    settings.setValue("extra", json.dumps({"level": 2}))
    window = make_window()
    extra = window.panes[-1]
    assert isinstance(extra, ExtraPane) and extra.restored == {"level": 2}
    titles = [window.steps.item(i).text() for i in range(window.steps.count())]
    assert titles == ["1  Data", "2  Check", "3  Model", "4  Train", "5  Look inside",
                      "6  Results", "7  Extra"]
    assert window.stack.widget(6) is extra
    view = next(a.menu() for a in window.menuBar().actions() if a.text() == "&View")
    shortcuts = {a.text(): a.shortcut().toString() for a in view.actions()}
    assert shortcuts["Extra"] == "Ctrl+7" and shortcuts["Model"] == "Ctrl+3"
    window.go_to(5)
    assert window.next_button.text() == "Next: Extra →"
    window.go_to(6)
    assert window.step_hint.text() == "A step added in one place."
    assert not window.next_button.isVisible()
    assert window.problems()[-1] == "the extra step is not ready"
    assert window.project_state()["extra"] == {"level": 3}
    window.close()
    assert json.loads(settings.value("extra")) == {"level": 3}
    assert extra.shut_down

    project = tmp_path / "p.tlgui.json"
    project.write_text(json.dumps({"format": "tlgui-project", "version": 1,
                                   "extra": {"level": 9}}))
    again = make_window()
    monkeypatch.setattr(again, "show_error", lambda *args: None)
    assert again.open_project(str(project)) == ["the extra step could not restore everything"]
    assert again.panes[-1].applied == {"level": 9}


def test_the_model_step_is_a_pane_that_keeps_settings_given_before_pytorch_loaded(qtbot):
    from tlgui.gui.model_pane import ModelPane

    pane = ModelPane()
    qtbot.addWidget(pane)
    assert isinstance(pane, Pane) and pane.title == "Model"
    given = {"model": "resnet18", "weights": "none", "strategy": "full", "hidden": 8}
    pane.restore_settings({"model": given})
    assert pane.remembered_settings() == {"model": given}  # kept until it can be applied
    assert pane.project_state() == {"model": given}
    assert pane.apply_project_state({"model": dict(given, hidden=16)}) == []
    assert pane.project_state()["model"]["hidden"] == 16
    assert pane.problems() == ["PyTorch is still loading"]


# -- unsaved changes ---------------------------------------------------------------------------
def test_unsaved_changes_are_marked_and_asked_about(make_window, qtbot, tmp_path, monkeypatch):
    window = make_window()
    assert "[*]" in window.windowTitle() and not window.isWindowModified()
    window.model_pane.dropout.setValue(0.3)  # settings alone, no data: nothing to lose
    assert not window.isWindowModified()
    load(qtbot, window, make_data(tmp_path / "pets"))
    assert window.isWindowModified()  # a new session with data loaded

    project = tmp_path / "mine.tlgui.json"
    assert window.save_project_to(str(project))
    assert not window.isWindowModified() and window.windowTitle() == "tlgui — mine.tlgui.json[*]"
    window.model_pane.dropout.setValue(0.4)
    assert window.isWindowModified()
    window.model_pane.dropout.setValue(0.3)  # back as saved
    assert not window.isWindowModified()
    window.dataset_pane.seed.setValue(7)
    qtbot.waitUntil(window.isWindowModified)  # the split follows its settings after a pause

    asked = answer_prompts(monkeypatch, QMessageBox.StandardButton.Cancel)
    window.close()
    assert asked == ["Save the changes to the project?"] and window.isVisible()
    window._open_recent(str(project))  # opening another project asks too, and Cancel keeps it
    assert len(asked) == 2 and window.dataset_pane.seed.value() == 7

    answer_prompts(monkeypatch, QMessageBox.StandardButton.Save)
    window.close()
    assert not window.isVisible()
    assert json.loads(project.read_text())["data"]["seed"] == 7


def test_an_opened_project_is_unmodified_until_something_changes(make_window, qtbot, tmp_path,
                                                                 monkeypatch):
    window = make_window()
    load(qtbot, window, make_data(tmp_path / "pets"))
    project = tmp_path / "p.tlgui.json"
    window.save_project_to(str(project))
    window.close()
    again = make_window()
    assert again.open_project(str(project)) == []
    qtbot.waitUntil(lambda: again.dataset_pane.report is not None and
                    not again.dataset_pane.busy(), timeout=30_000)
    assert not again.isWindowModified()  # the rescan of its folders changes nothing
    again.model_pane.hidden.setValue(64)
    assert again.isWindowModified()
    asked = answer_prompts(monkeypatch, QMessageBox.StandardButton.Discard)
    again.close()
    assert asked and not again.isVisible()


# -- shortcuts ---------------------------------------------------------------------------------
def test_save_as_has_the_platform_shortcut_and_no_two_actions_share_one(make_window):
    window = make_window()
    keys = window.save_as_action.shortcuts()
    assert QKeySequence("Ctrl+Shift+S") in keys
    for key in QKeySequence.keyBindings(QKeySequence.StandardKey.SaveAs):
        assert key in keys
    owners = {}
    for action in window.findChildren(QAction):
        for key in action.shortcuts():
            assert key.toString() not in owners, (
                f"{key.toString()}: {owners.get(key.toString())} and {action.text()}")
            owners[key.toString()] = action.text()
    readme = " ".join(
        (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8").split())
    sample = next(a for a in window.findChildren(QAction) if a.text() == "Use &Sample Data")
    assert f"{sample.shortcut().toString()} sample data" in readme
    assert "Ctrl+Shift+S save project as" in readme


# -- errors ------------------------------------------------------------------------------------
def test_errors_join_one_box_instead_of_piling_up(make_window, qtbot):
    window = make_window()
    window.show_error("first: the disk is full", "Traceback 1")
    window.show_error("second: a file vanished", "Traceback 2")
    window.show_error("third: no network")
    boxes = [b for b in window.findChildren(QMessageBox) if b.isVisible()]
    assert boxes == [window.error_box]
    box = window.error_box
    assert box.text() == "first: the disk is full"
    assert "2 more errors" in box.informativeText()
    details = box.detailedText()
    for line in ("1. first: the disk is full", "Traceback 1", "2. second: a file vanished",
                 "Traceback 2", "3. third: no network"):
        assert line in details
    box.close()
    qtbot.waitUntil(lambda: window.error_box is None)
    window.show_error("fourth", "")
    assert window.error_box.text() == "fourth" and window.error_box.informativeText() == ""
    window.error_box.close()


# -- F5 while the data or PyTorch are not ready ------------------------------------------------
def tiny_settings(window):
    m, t = window.model_pane, window.training_pane
    m.select_backbone("resnet18")
    m.none_radio.setChecked(True)
    m.hidden.setValue(8)
    t.epochs.setValue(1)
    t.image_size.setValue(32)
    t.compare.setChecked(False)


def test_f5_while_the_images_are_checked_is_refused(make_window, qtbot, tmp_path):
    window = make_window()
    tiny_settings(window)
    load(qtbot, window, make_data(tmp_path / "pets"))
    window.dataset_pane.load_folders([str(make_data(tmp_path / "birds", ("owls", "tits")))])
    assert window.dataset_pane.busy()
    window.start_training()
    assert not window.controller.is_running(), "it trained on the previous data set"
    assert "The images are still being checked" in window.training_pane.problem.text()
    qtbot.waitUntil(lambda: not window.dataset_pane.busy(), timeout=30_000)
    assert not window.controller.is_running()


def test_f5_before_pytorch_has_loaded_waits_for_it_without_blocking(qtbot, settings, tmp_path,
                                                                    monkeypatch):
    monkeypatch.setenv("TLGUI_RUNS_DIR", str(tmp_path / "runs"))
    gate = threading.Event()
    real = main_window.load_backend

    def slow_load(emit, control):
        gate.wait(60)
        return real(emit, control)

    monkeypatch.setattr(main_window, "load_backend", slow_load)
    settings.setValue("model", json.dumps({"model": "resnet18", "weights": "none",
                                           "strategy": "full", "hidden": 8}))
    settings.setValue("training", json.dumps({"epochs": 1, "image_size": 32, "batch_size": 8,
                                              "compare_dropout": False}))
    window = MainWindow(settings)

    def discard(w):
        gate.set()
        w.setWindowModified(False)
        w.shutdown()

    qtbot.addWidget(window, before_close_func=discard)
    try:
        load(qtbot, window, make_data(tmp_path / "pets"))
        assert window.backend is None
        began = time.monotonic()
        window.start_training()
        assert time.monotonic() - began < 0.5
        assert not window.controller.is_running()
        assert window.training_pane.problem.text() == (
            "PyTorch is still loading; training starts when it is ready.")
        with qtbot.waitSignal(window.controller.training_finished, timeout=120_000):
            gate.set()
        qtbot.waitUntil(lambda: window.controller.state == "idle", timeout=30_000)
    finally:
        gate.set()
    assert (window.last_run_dir / "model" / "best.pt").is_file()


# -- drag and drop -----------------------------------------------------------------------------
def test_a_drag_leaving_the_window_takes_the_highlight_with_it(make_window, tmp_path):
    window = make_window()
    zone = window.dataset_pane.drop_zone
    calm = zone.styleSheet()
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(make_data(tmp_path / "pets")))])
    enter = QDragEnterEvent(QPoint(5, 5), Qt.DropAction.CopyAction, mime,
                            Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    window.dragEnterEvent(enter)
    assert enter.isAccepted() and zone.styleSheet() != calm
    window.dragLeaveEvent(QDragLeaveEvent())  # also what a drop elsewhere starts with
    assert zone.styleSheet() == calm


# -- colours -----------------------------------------------------------------------------------
def contrast(a: QColor, b: QColor) -> float:
    """The WCAG contrast ratio of two colours (1 to 21)."""

    def luminance(c: QColor) -> float:
        def channel(v: float) -> float:
            return v / 12.92 if v <= 0.03928 else ((v + 0.055) / 1.055) ** 2.4
        return (0.2126 * channel(c.redF()) + 0.7152 * channel(c.greenF())
                + 0.0722 * channel(c.blueF()))

    high, low = sorted((luminance(a), luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def test_the_sidebar_stays_readable_in_a_dark_theme(make_window, qtbot):
    app = QApplication.instance()
    before = app.palette()
    app.setPalette(dark_palette())
    try:
        window = make_window()
        window.go_to(0)
        sidebar = window.steps
        image = sidebar.grab().toImage()
        background = image.pixelColor(sidebar.width() // 2, image.height() - 3)
        rect = sidebar.visualItemRect(sidebar.item(1))  # a step not chosen
        ratio = max(contrast(background, image.pixelColor(x, y))
                    for x in range(rect.left(), rect.right())
                    for y in range(rect.top(), rect.bottom()))
        assert background.lightness() < 100, background.name()  # the theme's, not light grey
        assert ratio >= 4.5, f"text on {background.name()}: contrast {ratio:.1f}"
    finally:
        app.setPalette(before)


def test_the_window_and_the_model_step_take_every_colour_from_the_palette():
    gui = Path(main_window.__file__).parent
    for name in ("main_window.py", "model_pane.py"):
        source = (gui / name).read_text(encoding="utf-8")
        found = re.findall(r"#[0-9a-fA-F]{6}\b|#[0-9a-fA-F]{3}\b|GlobalColor|rgb\(|QColor\(",
                           source)
        assert not found, f"{name}: hard-coded colours {found}"


# -- quitting ----------------------------------------------------------------------------------
def test_quit_does_not_wait_long_for_a_task_that_ignores_cancel(qtbot, settings, tmp_path,
                                                                monkeypatch):
    from tlgui.gui.workers import abandoned_threads

    monkeypatch.setenv("TLGUI_RUNS_DIR", str(tmp_path / "runs"))
    window = MainWindow(settings)
    window.show()
    qtbot.waitUntil(lambda: window.backend is not None, timeout=60_000)
    release = threading.Event()
    started = threading.Event()

    def stubborn(emit, control):
        started.set()
        release.wait(6)  # deaf to cancel for a while, as a blocked read would be
        return None

    window.model_pane.downloader.start(stubborn)
    assert started.wait(10)
    try:
        began = time.monotonic()
        window.close()
        took = time.monotonic() - began
        assert not window.isVisible()
        assert took < 4.0, f"closing waited {took:.1f} s for a task that would not stop"
        assert abandoned_threads(), "the stubborn task's thread was not kept"
        window.deleteLater()  # the window goes; the abandoned thread must not take it down
        qtbot.wait(50)
    finally:
        release.set()
    qtbot.waitUntil(lambda: not abandoned_threads(), timeout=15_000)


# -- the offline dialog ------------------------------------------------------------------------
def test_the_offline_dialog_has_a_button_for_each_thing_it_proposes(make_window, qtbot):
    import torch

    from tlgui.core.weights import cached_path

    path = cached_path("resnet18")
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"conv1.weight": torch.zeros(1)}, path)
    window = make_window()
    pane = window.model_pane
    pane.select_backbone("vgg16")
    pane.download_button.click()  # the network is off in tests
    qtbot.waitUntil(lambda: pane.offline_box is not None, timeout=10_000)
    box = pane.offline_box
    assert box.text().startswith("ImageNet weights for vgg16 could not be downloaded")
    buttons = {b.text(): b for b in box.buttons()}
    assert {"Use resnet18", "Import Weights File…", "Choose Weights File…",
            "Train from Scratch"} <= set(buttons)
    buttons["Train from Scratch"].click()
    qtbot.waitUntil(lambda: pane.none_radio.isChecked() and pane.full_radio.isChecked())
    assert pane.offline_box is None and pane.problems() == []

    pane.imagenet_radio.setChecked(True)
    pane.download_button.click()
    qtbot.waitUntil(lambda: pane.offline_box is not None, timeout=10_000)
    next(b for b in pane.offline_box.buttons() if b.text() == "Use resnet18").click()
    qtbot.waitUntil(lambda: pane.backbone() == "resnet18")
    assert pane.problems() == []
