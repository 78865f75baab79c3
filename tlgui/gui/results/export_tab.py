"""The Export tab: the chosen model as TorchScript or ONNX, with a usage snippet written beside
it. Exporting is a task of its own kind, so it never cancels an evaluation or a prediction."""

from __future__ import annotations

from PySide6.QtCore import Qt, QUrl, Signal
from PySide6.QtGui import QDesktopServices, QFontDatabase
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from ...core.progress import Progress
from ..busy import BusyIndicator
from ..workers import SHUTDOWN_WAIT_MS, TaskController


class ExportTab(QWidget):
    """Export the chosen model and show how to use the file."""

    message = Signal(str)
    error = Signal(str, str)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.checkpoint: str | None = None
        self.exported = None  #: the last exported model file (a Path)
        self.worker = TaskController("export", self)
        self.worker.finished.connect(self._sync)
        self.busy = BusyIndicator()
        self.busy.attach(self.worker, "Exporting")
        # TorchScript and ONNX export cannot stop midway: no Cancel button that would not work
        # (a file finished after a cancel would be written all the same).
        self.busy.cancel_button.setVisible(False)

        self.format = QComboBox()
        self.format.addItem("ExportedProgram (.pt2) — torch.export, PyTorch's recommended format",
                            "exported")
        self.format.addItem("TorchScript (.pt) — PyTorch, C++, mobile", "torchscript")
        self.format.addItem("ONNX (.onnx) — ONNX Runtime, many languages", "onnx")
        self.export_button = QPushButton("Export…")
        self.export_button.clicked.connect(self._export)
        self.snippet = QPlainTextEdit()
        self.snippet.setReadOnly(True)
        self.snippet.setPlaceholderText("A usage snippet appears here after exporting; it is "
                                        "also written beside the file.")
        self.snippet.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self.location = QLabel()
        self.location.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.show_folder_button = QPushButton("Show Folder")
        self.show_folder_button.setVisible(False)
        self.show_folder_button.clicked.connect(self._show_folder)
        row = QHBoxLayout()
        row.addWidget(self.format)
        row.addWidget(self.export_button)
        row.addWidget(self.location, 1)
        row.addWidget(self.show_folder_button)
        row.addWidget(self.busy, 1)
        text = QLabel("The exported model carries the class names, the preprocessing (input "
                      "size, mean, standard deviation) and the \"not sure\" threshold; it takes "
                      "RGB pixels in [0, 1] and returns calibrated class probabilities. After "
                      "writing it, tlgui loads it back and checks its answers against its own.")
        text.setWordWrap(True)
        self.check = QLabel()
        self.check.setWordWrap(True)
        self.check.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout = QVBoxLayout(self)
        layout.addLayout(row)
        layout.addWidget(text)
        layout.addWidget(self.check)
        layout.addWidget(self.snippet, 1)
        self._sync()

    def set_model(self, checkpoint: str | None) -> None:
        self.checkpoint = checkpoint
        self._sync()

    def _export(self) -> None:
        from ...core.export import default_name

        checkpoint, fmt = self.checkpoint, self.format.currentData()
        if not checkpoint:
            return
        from ...core.export import EXTENSIONS, FORMAT_NAMES

        suffix = f"{FORMAT_NAMES[fmt]} (*.{EXTENSIONS[fmt]})"
        path, _ = QFileDialog.getSaveFileName(
            self, "Export the model", default_name(checkpoint, fmt), suffix)
        if path:
            self.export_to(path, fmt)

    def export_to(self, path: str, fmt: str) -> None:
        """Export the chosen model to ``path`` as ``fmt`` ("exported", "torchscript" or "onnx"),
        in the background, then check the file: loaded back as a user would load it, through
        its usage script, it must answer as the app does on the run's validation images."""
        checkpoint = self.checkpoint
        if not checkpoint:
            return
        self.format.setCurrentIndex(self.format.findData(fmt))

        def task(emit, control):
            from ...core.errors import one_line
            from ...core.export import check_export, check_images, export

            model_file, usage = export(checkpoint, path, fmt)
            emit(Progress(0, 0, "Checking the export"))
            try:
                images = check_images(checkpoint, cancel=control)
            except (OSError, ValueError) as e:  # a best.pt away from its run folder, say
                return model_file, usage, f"Not checked: no images to check it on ({one_line(e)})."
            return model_file, usage, check_export(model_file, usage, checkpoint, images,
                                                   cancel=control, fmt=fmt).text()

        self.worker.start(task, on_succeeded=self._show_export, on_failed=self.error.emit)
        self._sync()

    def _show_export(self, value) -> None:
        model_file, usage, checked = value
        self.exported = model_file
        self.snippet.setPlainText(usage.read_text(encoding="utf-8"))
        self.location.setText(f"Wrote <b>{model_file}</b> and {usage.name}")
        self.check.setText(checked)
        self.show_folder_button.setVisible(True)
        self.message.emit(f"exported {model_file} (usage: {usage})")

    def _show_folder(self) -> None:
        if self.exported is not None:
            QDesktopServices.openUrl(QUrl.fromLocalFile(str(self.exported.parent)))

    def _sync(self) -> None:
        self.export_button.setEnabled(bool(self.checkpoint) and not self.worker.is_running())

    def shutdown(self, timeout_ms: int = SHUTDOWN_WAIT_MS) -> bool:
        """Cancel the export (an export in progress cannot stop midway: it is abandoned
        safely after ``timeout_ms``); True when it ended."""
        return self.worker.shutdown(timeout_ms)
