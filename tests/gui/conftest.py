"""GUI fixtures: a main window with private settings, shut down cleanly after each test."""

import time

import pytest
from PySide6.QtCore import QEvent, QSettings, QTimer
from PySide6.QtWidgets import (
    QApplication,
    QColorDialog,
    QDialog,
    QFileDialog,
    QInputDialog,
    QMessageBox,
    QProgressDialog,
)

#: Every way Qt can open a dialog that waits for a click (static helpers and ``exec``).
MODAL_ENTRY_POINTS = {
    QDialog: ("exec", "exec_"),
    QMessageBox: ("exec", "exec_", "question", "warning", "critical", "information", "about"),
    QFileDialog: ("exec", "exec_", "getOpenFileName", "getOpenFileNames", "getSaveFileName",
                  "getExistingDirectory", "getOpenFileUrl", "getSaveFileUrl"),
    QInputDialog: ("exec", "exec_", "getText", "getInt", "getDouble", "getItem",
                   "getMultiLineText"),
    QColorDialog: ("exec", "exec_", "getColor"),
    QProgressDialog: ("exec", "exec_"),
}


@pytest.fixture(autouse=True)
def no_modal_dialogs(monkeypatch):
    """A modal dialog would wait forever for a click offscreen: fail the test instead.

    Tests that expect one replace it with their own answer (``monkeypatch.setattr``). The
    guard stays in place through the test's teardown (windows closed by qtbot included),
    because monkeypatch is undone after every fixture that uses it."""

    def guard(owner, name):
        def unexpected(*args, **kwargs):
            shown = [a for a in args[:4] if isinstance(a, str)]
            raise AssertionError(f"an unexpected modal dialog opened: {owner.__name__}.{name} "
                                 f"{shown}")
        return unexpected

    for owner, names in MODAL_ENTRY_POINTS.items():
        for name in names:
            if hasattr(owner, name):
                monkeypatch.setattr(owner, name, guard(owner, name))


@pytest.fixture(autouse=True)
def no_work_left_running():
    """Fail a test that leaves a background task, its thread or a thumbnail thread running,
    as napari does.

    Set up before ``qtbot`` (it does not ask for it), so it is torn down after qtbot has
    closed the test's widgets. A task that is just finishing gets a few seconds to end."""
    yield
    from tlgui.gui.thumbnails import live_loaders
    from tlgui.gui.workers import live_controllers

    def running():
        return sorted([c.name for c in live_controllers()
                       if c.is_running() or c.thread_running()]
                      + [f"thumbnails of a {type(loader.parent()).__name__}"
                         for loader in live_loaders() if loader.decoding()])

    deadline = time.monotonic() + 5
    while running() and time.monotonic() < deadline:
        QApplication.processEvents()
        time.sleep(0.01)
    left = running()
    if left:
        for controller in live_controllers():  # stop them, so the next test starts clean
            controller.shutdown(10_000)
        for loader in live_loaders():
            loader.shutdown()
    assert not left, f"background work left running after the test: {', '.join(left)}"
    # Widgets the test closed are deleted now; a repeating timer in one that is still alive
    # would keep firing for the rest of the session.
    QApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
    ticking = [f"{type(widget).__name__}: {type(timer.parent()).__name__} "
               f"{timer.objectName() or 'timer'} every {timer.interval()} ms"
               for widget in QApplication.topLevelWidgets() if not widget.isVisible()
               for timer in widget.findChildren(QTimer)
               if timer.isActive() and not timer.isSingleShot()]
    assert not ticking, f"timers left running after the test: {'; '.join(ticking)}"


@pytest.fixture
def settings(tmp_path):
    return QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)


@pytest.fixture
def make_window(qtbot, settings, tmp_path, monkeypatch):
    """Build main windows whose PyTorch-dependent panes are ready; check no thread survives."""
    from tlgui.gui.main_window import MainWindow

    monkeypatch.setenv("TLGUI_RUNS_DIR", str(tmp_path / "runs"))
    windows = []

    def stop_work(window) -> None:
        """Stop and join the window's workers, then let their queued "finished" signals
        arrive, so that closing it does not ask whether to stop a training that is over.
        qtbot calls it before it closes the window, which it does before fixtures end. The
        test's session is discarded: closing does not ask whether to save it."""
        window.setWindowModified(False)
        window.controller.stop()
        window.shutdown()
        deadline = time.monotonic() + 10
        while window.controller.is_running() and time.monotonic() < deadline:
            QApplication.processEvents()

    def make():
        window = MainWindow(settings)
        qtbot.addWidget(window, before_close_func=stop_work)
        window.show()
        qtbot.waitUntil(lambda: window.backend is not None, timeout=60_000)
        windows.append(window)
        return window

    yield make
    for window in windows:
        stop_work(window)
        assert not window.controller.is_running(), "the training did not end"
        from tlgui.gui.workers import live_controllers

        left = [c.name for c in live_controllers() if c.thread_running()]
        assert not left, f"worker threads still running: {', '.join(left)}"


@pytest.fixture
def train_tiny(qtbot):
    """Train a tiny ResNet-18 dropout pair from scratch in ``window`` on ``data``, and wait
    until the trainer is idle again."""

    def train(window, data, epochs: int = 2):
        window.dataset_pane.load_folders([str(data)])
        # Every image checked: until then training refuses to start.
        qtbot.waitUntil(lambda: window.dataset_pane.report is not None
                        and not window.dataset_pane.busy(), timeout=30_000)
        m, t = window.model_pane, window.training_pane
        m.select_backbone("resnet18")
        m.none_radio.setChecked(True)
        m.hidden.setValue(8)
        t.epochs.setValue(epochs)
        t.image_size.setValue(32)
        t.compare.setChecked(True)
        with qtbot.waitSignal(window.controller.training_finished, timeout=120_000):
            window.start_training()
        qtbot.waitUntil(lambda: window.controller.state == "idle", timeout=30_000)

    return train
