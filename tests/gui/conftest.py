"""GUI fixtures: a main window with private settings, shut down cleanly after each test."""

import pytest
from PySide6.QtCore import QSettings, QThread


@pytest.fixture
def settings(tmp_path):
    return QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)


@pytest.fixture
def make_window(qtbot, settings, tmp_path, monkeypatch):
    """Build main windows whose PyTorch-dependent panes are ready; check no thread survives."""
    from tlgui.gui.main_window import MainWindow

    monkeypatch.setenv("TLGUI_RUNS_DIR", str(tmp_path / "runs"))
    windows = []

    def make():
        window = MainWindow(settings)
        qtbot.addWidget(window)
        window.show()
        qtbot.waitUntil(lambda: window.backend is not None, timeout=60_000)
        windows.append(window)
        return window

    yield make
    for window in windows:
        window.controller.stop()
        window.shutdown()
        threads = [window.controller._task._thread, window.loader._thread,
                   window.dataset_pane.scanner._thread, window.model_pane.downloader._thread,
                   window.inspect_pane.worker._thread]
        assert not any(t.isRunning() for t in threads), "a worker thread is still running"
        assert all(isinstance(t, QThread) for t in threads)
