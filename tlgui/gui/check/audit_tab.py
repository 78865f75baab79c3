"""The Audit tab: images probably mislabelled, duplicated, leaking between training and
validation, or unlike every class; each one left out or moved in the app with a click, and
the findings saved as a CSV to fix the folders by hand. The findings are computed in
:mod:`tlgui.core.audit`."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QKeySequence
from PySide6.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from ...core.progress import Progress
from ..busy import BusyIndicator
from ..image_table import ImageTableView
from ..workers import TaskController

HEADERS = ["issue", "score", "file", "class", "suggested", "why", "your edit"]
ISSUE_WORDS = {"leak": "leak", "duplicate": "duplicate", "mislabelled": "mislabelled?",
               "outlier": "outlier"}


class AuditTab(QWidget):
    """Runs an audit of the data set in the background and lists its findings."""

    #: Leave out (target None) or move (target: a class as shown) the image at path.
    edit_requested = Signal(str, object)
    undo_requested = Signal()  #: take back every single-image edit
    message = Signal(str)
    error = Signal(str, str)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.result = None  #: the last AuditResult shown
        self.edits: dict[str, str | None] = {}  #: the Data step's edits, by path (as shown)
        self.worker = TaskController("audit", self)
        self.busy = BusyIndicator()
        self.busy.attach(self.worker, "Auditing")
        self.run_button = QPushButton("Audit Images")
        self.run_button.setShortcut(QKeySequence("Ctrl+Shift+A"))
        self.run_button.setToolTip("Compare every image with the others through the backbone's "
                                   "features (Ctrl+Shift+A)")
        self.trust = QLabel("The audit looks for images that are probably in the wrong folder, "
                            "copies (and copies shared between training and validation, which "
                            "make the accuracy look better than it is), and images unlike "
                            "every class. Nothing on disk changes.")
        self.trust.setWordWrap(True)
        self.notes = QLabel()
        self.notes.setWordWrap(True)
        self.table = ImageTableView(HEADERS)
        self.table.selection_changed.connect(self._sync_buttons)
        self.leave_out_button = QPushButton("Leave Out Image")
        self.leave_out_button.setShortcut(QKeySequence(Qt.Key.Key_Delete))
        self.leave_out_button.setToolTip("Train without this image (Delete); the file stays")
        self.move_button = QPushButton("Move to Suggested Class")
        self.move_button.setShortcut(QKeySequence("Ctrl+M"))
        self.move_button.setToolTip("Count this image in the class the audit suggests "
                                    "(Ctrl+M); the file stays where it is")
        self.undo_button = QPushButton("Undo All Image Edits")
        self.csv_button = QPushButton("Save CSV…")
        self.csv_button.setToolTip("Every finding with path, issue, label, suggested class, "
                                   "score and reason: to fix the folders by hand")
        self.leave_out_button.clicked.connect(self._leave_out)
        self.move_button.clicked.connect(self._move)
        self.undo_button.clicked.connect(self.undo_requested)
        self.csv_button.clicked.connect(self.save_csv_dialog)

        top = QHBoxLayout()
        top.addWidget(self.run_button)
        top.addWidget(self.busy, 1)
        buttons = QHBoxLayout()
        for button in (self.leave_out_button, self.move_button, self.undo_button):
            buttons.addWidget(button)
        buttons.addStretch()
        buttons.addWidget(self.csv_button)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.trust)
        layout.addWidget(self.notes)
        layout.addWidget(self.table, 1)
        layout.addLayout(buttons)
        self._sync_buttons()

    # -- running -----------------------------------------------------------------------------
    def audit(self, report, backbone: str, weights: str, image_size: int | None,
              device: str, val_fraction: float, seed: int) -> None:
        """Audit ``report`` (the data set as training would use it) in the background."""
        if report is None:
            self.message.emit("no data to audit: open image folders on the Data step")
            return

        def task(emit, control):
            from ...core.audit import run_audit

            return run_audit(report, backbone, weights, image_size, device, val_fraction, seed,
                             progress=lambda stage, d, t: emit(Progress(d, t, stage)),
                             cancel=control)

        self.worker.start(task, on_succeeded=self.show_result, on_failed=self.error.emit,
                          on_cancelled=lambda: self.message.emit("audit cancelled"))
        self._sync_buttons()

    def show_result(self, result) -> None:
        """Show an :class:`~tlgui.core.audit.AuditResult`."""
        self.result = result
        counts = result.counts()
        found = ", ".join(f"{counts[k]:,} {word}" for k, word in ISSUE_WORDS.items())
        self.trust.setText(f"<b>{result.images:,} images audited: {found}.</b> "
                           f"{result.trust_line()}")
        self.notes.setText(" ".join(n[:1].upper() + n[1:] + "." for n in result.notes))
        self._show_rows()
        self.message.emit(f"audit: {found}")

    def set_edits(self, edits: dict[str, str | None]) -> None:
        """The Data step's single-image edits (classes as shown), for the last column."""
        self.edits = dict(edits)
        if self.result is not None:
            self._show_rows()

    def _show_rows(self) -> None:
        findings = self.result.findings
        paths = [f.path for f in findings]
        self.table.set_rows(paths, [
            [ISSUE_WORDS[f.issue] for f in findings],
            [f.score for f in findings],
            paths,
            [f.label for f in findings],
            [f.suggested for f in findings],
            [f.detail for f in findings],
            [self._edit_text(f.path) for f in findings],
        ], formats={1: lambda v: f"{v:.3f}"})
        self._sync_buttons()

    def _edit_text(self, path: str) -> str:
        if path not in self.edits:
            return ""
        target = self.edits[path]
        return "left out" if target is None else f"moved to {target}"

    # -- acting on a finding -----------------------------------------------------------------
    def _finding(self):
        row = self.table.selected_stored_row()
        if row is None or self.result is None:
            return None
        return self.result.findings[row]

    def _leave_out(self) -> None:
        finding = self._finding()
        if finding is not None:
            self.edit_requested.emit(finding.path, None)

    def _move(self) -> None:
        finding = self._finding()
        if finding is not None and finding.suggested:
            self.edit_requested.emit(finding.path, finding.suggested)

    def save_csv_dialog(self) -> None:
        if self.result is None:
            return
        path, _ = QFileDialog.getSaveFileName(self, "Save the findings", "audit.csv",
                                              "CSV files (*.csv)")
        if path:
            self.save_csv(path)

    def save_csv(self, path: str) -> None:
        from ...core.errors import one_line
        from ...core.paths import atomic_write_text

        try:
            atomic_write_text(path, self.result.csv_text())
        except OSError as e:
            self.error.emit(one_line(e), "")
            return
        self.message.emit(f"findings saved to {path}")

    def _sync_buttons(self) -> None:
        finding = self._finding()
        running = self.worker.is_running()
        self.run_button.setEnabled(not running)
        self.leave_out_button.setEnabled(finding is not None)
        self.move_button.setEnabled(finding is not None and bool(finding.suggested))
        self.undo_button.setEnabled(bool(self.edits))
        self.csv_button.setEnabled(self.result is not None)

    def shutdown(self) -> None:
        self.worker.shutdown()
        self.table.shutdown()
