"""Start the desktop application."""

from __future__ import annotations

import os
import sys

#: How often Python lets another thread take its interpreter lock, in seconds (its default is
#: 0.005). The window's thread takes the lock back after every call into Qt; while a
#: background thread runs Python code, each of those waits up to this long, and painting a
#: table makes hundreds of them. A shorter interval keeps the window answering while data is
#: scanned or decoded in the background, at a cost of a few per cent of that work's speed
#: (two Python threads counting: 0.70 s at 1 ms, 0.73 s at 0.2 ms; the start of a training at
#: 100,000 images paused the window 100 ms at 1 ms, 77 ms at 0.2 ms).
SWITCH_INTERVAL = 0.0002


def configure_interpreter() -> None:
    """Settings of the Python interpreter that the window needs to stay responsive."""
    sys.setswitchinterval(SWITCH_INTERVAL)


def main(argv: list[str] | None = None, sample: bool = False) -> int:
    if not _display_available():
        print("tlgui: error: no display to open the window on (DISPLAY is not set); "
              "the command line works without one: tlgui --help", file=sys.stderr)
        return 1
    from PySide6.QtWidgets import QApplication

    from .main_window import MainWindow

    configure_interpreter()
    app = QApplication.instance() or QApplication(sys.argv[:1] + list(argv or []))
    app.setApplicationName("tlgui")
    app.setOrganizationName("tlgui")
    window = MainWindow()
    app.aboutToQuit.connect(window.shutdown)
    window.show()
    if sample:
        window.dataset_pane.use_sample()
    elif window.last_folders():
        window.dataset_pane.load_folders(window.last_folders())
    if os.environ.get(SMOKE_TEST_ENV):
        _quit_when_ready(app, window)
    code = app.exec()
    from .workers import abandoned_threads

    if abandoned_threads():
        # A job that could not be cancelled in time (the import of PyTorch, a blocked read)
        # still runs. Qt aborts the process when a running thread's object is destroyed, as
        # it would be on the way out, so leave now: settings and the app's files are written.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return code


#: Set, the window quits as soon as it is ready (PyTorch loaded, the data scanned), printing
#: one line: how a built app is checked (packaging/smoke_test.sh).
SMOKE_TEST_ENV = "TLGUI_SMOKE_TEST"


def _quit_when_ready(app, window) -> None:
    from PySide6.QtCore import QTimer

    timer = QTimer(window)

    def check() -> None:
        report = window.dataset_pane.report
        if window.backend is None or report is None:
            return
        timer.stop()
        import torch

        print(f"tlgui ready: {len(report.items)} images in {len(report.classes)} classes, "
              f"torch {torch.__version__}, {len(window.model_pane.infos)} backbones",
              flush=True)
        window.setWindowModified(False)  # nothing of the user's to save: no question asked
        app.quit()

    timer.timeout.connect(check)
    timer.start(200)


def _display_available() -> bool:
    if not sys.platform.startswith("linux") or os.environ.get("QT_QPA_PLATFORM"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


if __name__ == "__main__":
    sys.exit(main(sample="--sample" in sys.argv))
