"""Faults in the window: a full disk is one line in the status bar, and the keys do what the
README says."""

import errno

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtGui import QKeySequence
from PySide6.QtWidgets import QFileDialog

from tlgui.core.predictions import Predictions


def test_ctrl_q_quits_on_every_platform(make_window, qtbot):
    window = make_window()
    quit_action = next(a for a in window.menuBar().actions()[0].menu().actions()
                       if a.text() == "&Quit")
    assert QKeySequence("Ctrl+Q") in quit_action.shortcuts()
    window.activateWindow()
    qtbot.waitUntil(window.isActiveWindow, timeout=5000)
    qtbot.keyClick(window, Qt.Key.Key_Q, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(lambda: not window.isVisible(), timeout=5000)


def test_saving_predictions_on_a_full_disk_says_so_and_keeps_the_table(
        make_window, qtbot, tmp_path, monkeypatch):
    window = make_window()
    pane = window.results_pane.predict_tab
    pane.show_predictions(Predictions(["cat"], ["/photos/a.jpg"], np.array([0]),
                                      np.array([0.9], np.float32)))
    target = tmp_path / "predictions.csv"
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (str(target), ""))

    def fsync_on_a_full_disk(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("tlgui.core.paths.os.fsync", fsync_on_a_full_disk)
    with qtbot.waitSignal(pane.message, timeout=5000) as said:
        pane.export_csv()
    assert said.args == [f"no space left on device: {target}"]
    assert list(tmp_path.glob("*.csv")) == [] and list(tmp_path.glob(".predictions*")) == []
    assert pane.table.paths() == ["/photos/a.jpg"]


def test_a_run_folder_that_cannot_be_read_is_one_line_naming_the_file(
        make_window, qtbot, tmp_path, monkeypatch):
    window = make_window()
    pane = window.results_pane
    config = tmp_path / "run" / "config.json"

    def unreadable(path):
        raise OSError(errno.EIO, "Input/output error", str(config))

    monkeypatch.setattr("tlgui.core.project.read_run", unreadable)
    assert pane.set_runs([str(tmp_path / "run")]) == [f"{config}: input/output error"]
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *a, **k: str(config.parent))
    with qtbot.waitSignal(pane.error, timeout=5000) as said:
        pane._open_run()
    assert said.args == [f"{config}: input/output error", ""]
