"""The Predict tab: new images (dropped, or opened) classified with the chosen model, listed
with their class and confidence, and saved as CSV.

Prediction is a task of its own kind: a drop here never cancels an evaluation or an export,
only an earlier prediction. The task hands the table arrays (paths, class names, confidences),
so 100,000 predictions cost the GUI thread no per-row Python objects.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
from PySide6.QtCore import Qt, QUrl, Signal
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import (
    QFileDialog,
    QFrame,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from ...core.errors import one_line
from ...core.predictions import Predictions
from ...core.progress import Progress
from ..busy import BusyIndicator
from ..image_table import ImageTableView
from ..workers import SHUTDOWN_WAIT_MS, TaskController
from .evaluate_tab import model_label
from .preview import ImagePreview

HEADERS = ["File", "Class", "Confidence"]
CONFIDENCE = HEADERS.index("Confidence")
IMAGE_FILTER = "Images (*.jpg *.jpeg *.png *.bmp *.gif *.tif *.tiff *.webp);;All files (*)"


def _percent(value: float) -> str:
    return f"{value:.1%}"


@dataclass
class ClassifiedImages:
    """Predictions with their table's columns made ready (off the GUI thread)."""

    predictions: Predictions
    names: list[str]  #: each image's file name
    classes: np.ndarray  #: each image's answer: its class, or "not sure (class?)"
    model: str = ""  #: the model that classified them, "" when not known

    @classmethod
    def of(cls, predictions: Predictions, model: str = "") -> ClassifiedImages:
        return cls(predictions, [os.path.basename(p) for p in predictions.paths],
                   predictions.answers(), model)

    def summary(self) -> str:
        """``"5,000 images classified by 20261122-101500 · with dropout; 2 could not be read
        (first: …)"``."""
        p = self.predictions
        text = f"{len(p):,} images classified"
        if self.model:  # the model chosen above may have changed since
            text += f" by {self.model}"
        if p.not_sure_count():
            text += (f"; {p.not_sure_count():,} not sure (below {p.threshold:.1%} confidence, "
                     f"where it is right less often than asked)")
        if p.unreadable:
            text += (f"; {len(p.unreadable):,} could not be read (first: {p.unreadable[0][0]}: "
                     f"{p.unreadable[0][1]})")
        return text


class PredictTab(QWidget):
    """Classify images with the chosen model; drop files or folders anywhere on the tab."""

    message = Signal(str)
    error = Signal(str, str)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.checkpoint: str | None = None
        self.device = "auto"
        self.shown: ClassifiedImages | None = None
        self.worker = TaskController("prediction", self)
        self.worker.finished.connect(self._sync)
        self.busy = BusyIndicator()
        self.busy.attach(self.worker, "Classifying")
        self.saver = TaskController("predictions-csv", self)
        self.saver.finished.connect(self._sync)
        self.setAcceptDrops(True)

        self.drop_zone = QLabel("<b>Drop images or folders here</b> to classify them with the "
                                "chosen model")
        self.drop_zone.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.drop_zone.setMinimumHeight(60)
        self.drop_zone.setFrameShape(QFrame.Shape.StyledPanel)
        self.drop_zone.setAutoFillBackground(True)
        self.drop_zone.setBackgroundRole(QPalette.ColorRole.AlternateBase)
        self.open_button = QPushButton("Open Images…")
        self.open_button.clicked.connect(self._open_images)
        self.csv_button = QPushButton("Export CSV…")
        self.csv_button.clicked.connect(self.export_csv)
        self.table = ImageTableView(HEADERS)
        self.table.selection_changed.connect(self._preview)
        self.summary = QLabel()
        self.summary.setTextFormat(Qt.TextFormat.PlainText)  # file and folder names, not markup
        self.preview = ImagePreview()
        row = QHBoxLayout()
        row.addWidget(self.open_button)
        row.addWidget(self.csv_button)
        row.addWidget(self.summary, 1)
        row.addWidget(self.busy, 1)
        results = QHBoxLayout()
        results.addWidget(self.table, 1)
        results.addWidget(self.preview, 0, Qt.AlignmentFlag.AlignTop)
        layout = QVBoxLayout(self)
        layout.addWidget(self.drop_zone)
        layout.addLayout(row)
        layout.addLayout(results, 1)
        self._sync()

    @property
    def predictions(self) -> Predictions | None:
        """The predictions shown, or None."""
        return self.shown.predictions if self.shown else None

    def set_model(self, checkpoint: str | None) -> None:
        self.checkpoint = checkpoint
        self._sync()

    def set_device(self, device: str) -> None:
        """Where the next prediction runs ("auto", "cpu", "cuda:0", "mps")."""
        self.device = device or "auto"

    # -- input -------------------------------------------------------------------------------
    def dragEnterEvent(self, event) -> None:  # noqa: N802 - Qt's name
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:  # noqa: N802 - Qt's name
        paths = [QUrl(u).toLocalFile() for u in event.mimeData().urls()]
        paths = [p for p in paths if p]
        if paths:
            event.acceptProposedAction()
            self.predict(paths)

    def _open_images(self) -> None:
        paths, _ = QFileDialog.getOpenFileNames(self, "Images to classify",
                                                os.path.expanduser("~"), IMAGE_FILTER)
        if paths:
            self.predict(paths)

    # -- predicting --------------------------------------------------------------------------
    def predict(self, paths: list[str]) -> None:
        """Classify image files and folders with the chosen model, in the background (an
        earlier prediction still running is cancelled)."""
        checkpoint, device = self.checkpoint, self.device
        if not checkpoint:
            self.message.emit("train or open a run first")
            return

        def task(emit, control):
            from ...core.predictions import predict_files

            predictions = predict_files(checkpoint, paths, device=device,
                                        progress=lambda d, t: emit(Progress(d, t)),
                                        cancel=control)
            return ClassifiedImages.of(predictions, model_label(checkpoint))

        self.worker.start(task, on_succeeded=self.show_predictions, on_failed=self.error.emit,
                          on_cancelled=lambda: self.message.emit("prediction cancelled"))
        self._sync()

    def show_predictions(self, result: ClassifiedImages | Predictions) -> None:
        """Show predictions in the table, and a summary line."""
        shown = result if isinstance(result, ClassifiedImages) else ClassifiedImages.of(result)
        self.shown = shown
        p = shown.predictions
        self.table.set_rows(p.paths, [shown.names, shown.classes, p.confidence],
                            formats={CONFIDENCE: _percent})
        self.summary.setText(shown.summary())
        self.preview.show_image(None)
        if self.table.row_count():
            self.table.select_row(0)
        self._sync()

    def _preview(self) -> None:
        self.preview.show_image(self.table.selected_path())

    # -- CSV ---------------------------------------------------------------------------------
    def export_csv(self) -> None:
        """Ask where, then save the predictions as CSV (path, class, confidence) in the
        background; a failure is one line in the status bar and keeps the table."""
        predictions = self.predictions
        if predictions is None:
            return
        path, _ = QFileDialog.getSaveFileName(self, "Save predictions", "predictions.csv",
                                              "CSV (*.csv)")
        if path:
            self.save_csv(path)

    def save_csv(self, path: str) -> None:
        """Save the predictions shown as CSV at ``path``, in the background."""
        predictions = self.predictions
        if predictions is None:
            return

        def task(emit, control):
            from ...core.paths import atomic_write_text
            from ...core.predictions import rows_csv

            try:
                atomic_write_text(path, rows_csv(predictions))
            except OSError as e:  # a full disk or a read-only folder: say so, keep the table
                return one_line(e, path)
            return f"saved {path}"

        self.saver.start(task, on_succeeded=self.message.emit, on_failed=self.error.emit)
        self._sync()

    def _sync(self) -> None:
        self.open_button.setEnabled(bool(self.checkpoint))
        self.csv_button.setEnabled(self.shown is not None and not self.saver.is_running())

    def shutdown(self, timeout_ms: int = SHUTDOWN_WAIT_MS) -> bool:
        """Cancel the prediction, finish a CSV being written, stop decoding images; True when
        everything ended."""
        self.table.shutdown()
        self.preview.shutdown()
        ended = self.worker.shutdown(timeout_ms)
        # A CSV half written is never left behind (atomic), so waiting for it is short.
        return self.saver.shutdown(timeout_ms) and ended
