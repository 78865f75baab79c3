"""The one busy indicator every long job shows: a bar, what is happening, the time left, and
a Cancel button that works."""

from __future__ import annotations

from PySide6.QtCore import Qt, QTimer, Signal, Slot
from PySide6.QtWidgets import QHBoxLayout, QLabel, QProgressBar, QPushButton, QSizePolicy, QWidget

from ..core.progress import Progress, TimeLeft, progress_text
from .workers import TaskController


class BusyIndicator(QWidget):
    """Shows the progress of one :class:`TaskController`'s tasks while they run.

    Tasks emit :class:`~tlgui.core.progress.Progress` records (``(done, total)`` tuples are
    read the same way); anything else they emit is ignored here. The display is refreshed at
    most ten times a second, and always shows the latest update. Hidden while nothing runs.
    """

    cancel_requested = Signal()  #: the user clicked Cancel (the controller is already told)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.what = ""
        self._controller: TaskController | None = None
        self._time_left = TimeLeft()
        self._latest: tuple[Progress, float | None] | None = None
        # Progress may arrive thousands of times a second; the display follows at 10 Hz.
        self._refresh = QTimer(self)
        self._refresh.setSingleShot(True)
        self._refresh.setInterval(100)
        self._refresh.timeout.connect(self._show_latest)
        self.bar = QProgressBar()
        self.bar.setTextVisible(False)
        self.bar.setMaximumWidth(160)
        self.label = QLabel()
        self.label.setTextFormat(Qt.TextFormat.PlainText)
        self.label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.label.setMinimumWidth(120)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setToolTip("Stop this job; nothing it has not finished is kept")
        self.cancel_button.clicked.connect(self._cancel)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.bar)
        layout.addWidget(self.label, 1)
        layout.addWidget(self.cancel_button)
        self.setVisible(False)

    def attach(self, controller: TaskController, what: str = "Working") -> None:
        """Follow ``controller``'s tasks; ``what`` names them ("Evaluating")."""
        self._controller = controller
        self.what = what
        controller.started.connect(self._on_started)
        controller.emitted.connect(self._on_emitted)
        controller.finished.connect(self._on_finished)

    @Slot()
    def _on_started(self) -> None:
        self._time_left = TimeLeft()
        self._latest = None
        self.bar.setRange(0, 0)  # busy until the first progress arrives
        self._set_text(f"{self.what}…")
        self.cancel_button.setEnabled(True)
        self.setVisible(True)

    @Slot(object)
    def _on_emitted(self, obj: object) -> None:
        progress = _as_progress(obj)
        if progress is None:
            return
        self._latest = (progress, self._time_left.update(progress.done, progress.total))
        if not self._refresh.isActive():
            self._show_latest()
            self._refresh.start()  # later updates wait for it, then the latest is shown

    def _show_latest(self) -> None:
        if self._latest is None:
            return
        progress, seconds = self._latest
        self._latest = None
        if progress.total > 0:
            # The bar counts in thousandths so that totals beyond 2**31 stay exact enough.
            self.bar.setRange(0, 1000)
            self.bar.setValue(int(1000 * (progress.fraction or 0.0)))
        else:
            self.bar.setRange(0, 0)
        self._set_text(progress_text(self.what, progress, seconds))

    @Slot()
    def _on_finished(self) -> None:
        if self._controller is None or not self._controller.is_running():
            self._refresh.stop()
            self._latest = None
            self.setVisible(False)

    def _set_text(self, text: str) -> None:
        self.label.setText(text)
        self.label.setToolTip(text)  # the label may be elided in a narrow window

    def _cancel(self) -> None:
        if self._controller is not None:
            self._controller.cancel()
            self.cancel_button.setEnabled(False)
            self._set_text(f"{self.what}: cancelling…")
            self.cancel_requested.emit()


def _as_progress(obj: object) -> Progress | None:
    if isinstance(obj, Progress):
        return obj
    if (isinstance(obj, tuple) and len(obj) == 2
            and all(isinstance(v, int) for v in obj)):
        return Progress(obj[0], obj[1])
    return None
