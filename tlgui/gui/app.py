"""Start the desktop application."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None, sample: bool = False) -> int:
    from PySide6.QtWidgets import QApplication

    from .main_window import MainWindow

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
    return app.exec()


if __name__ == "__main__":
    sys.exit(main(sample="--sample" in sys.argv))
