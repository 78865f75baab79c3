"""The Evaluate tab: a trained model on its validation images or its test folder — the
confusion matrix, each class's figures, the mistakes and the images of any cell.

The evaluation runs as a task of its own kind (a prediction or an export never cancels it),
with progress, time left and Cancel; everything a table needs is computed in that task, so
showing 20,000 evaluated images costs the GUI thread no per-row work beyond the table's own.
"""

from __future__ import annotations

import html
import os
from dataclasses import dataclass

import numpy as np
from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from ...core.heap import settle
from ...core.metrics import UNDEFINED_NOTE, Evaluation, decimal_text, share_text
from ...core.progress import Progress
from ...core.project import RunRecord
from ..busy import BusyIndicator
from ..image_table import ImageTableView
from ..plots import RUN_LABELS
from ..workers import SHUTDOWN_WAIT_MS, TaskController
from .calibration_view import CalibrationView
from .matrix_view import ConfusionMatrixView
from .preview import ImagePreview, hint_label

IMAGE_HEADERS = ["File", "True", "Predicted", "Confidence"]
CONFIDENCE = IMAGE_HEADERS.index("Confidence")


def _percent(value: float) -> str:
    return f"{value:.1%}"


def model_label(checkpoint: str) -> str:
    """``20261122-101500 · with dropout`` for ``…/20261122-101500/with_dropout/best.pt``."""
    variant_dir = os.path.dirname(checkpoint)
    variant = os.path.basename(variant_dir)
    return f"{os.path.basename(os.path.dirname(variant_dir))} · {RUN_LABELS.get(variant, variant)}"


@dataclass
class EvaluatedImages:
    """An evaluation with its image lists' columns made ready (off the GUI thread)."""

    evaluation: Evaluation
    paths: np.ndarray  #: object array of paths, indexable by an index array
    names: np.ndarray  #: each image's file name
    true_names: np.ndarray  #: each image's true class name
    predicted_names: np.ndarray  #: each image's predicted class name
    index_of: dict[str, int]  #: path -> its place in the evaluation
    model: str = ""  #: the model evaluated (:func:`model_label`), "" when not known
    checkpoint: str = ""  #: its best.pt, "" when not known

    @classmethod
    def of(cls, e: Evaluation, model: str = "", checkpoint: str = "") -> EvaluatedImages:
        classes = np.asarray(e.classes, dtype=object)
        return cls(e, np.asarray(e.paths, dtype=object),
                   np.asarray([os.path.basename(p) for p in e.paths], dtype=object),
                   classes[np.asarray(e.true, dtype=int)],
                   classes[np.asarray(e.pred, dtype=int)],
                   {p: i for i, p in enumerate(e.paths)}, model, checkpoint)

    def rows(self, indices) -> tuple[list[str], list]:
        """The paths and the columns of :data:`IMAGE_HEADERS` of the images ``indices``."""
        indices = np.asarray(indices, dtype=np.int64)
        return (self.paths[indices].tolist(),
                [self.names[indices], self.true_names[indices], self.predicted_names[indices],
                 np.asarray(self.evaluation.confidence)[indices]])


class EvaluateTab(QWidget):
    """Evaluation of the chosen model, shown as a matrix, per-class figures and image lists."""

    message = Signal(str)
    error = Signal(str, str)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.checkpoint: str | None = None
        self.run: RunRecord | None = None
        self.device = "auto"
        self.shown: EvaluatedImages | None = None
        self.worker = TaskController("evaluation", self)
        self.worker.finished.connect(self._sync)
        self.busy = BusyIndicator()
        self.busy.attach(self.worker, "Evaluating")

        self.split_choice = QComboBox()
        self.split_choice.addItem("Validation images", "val")
        self.split_choice.addItem("Test folder", "test")
        self.evaluate_button = QPushButton("Evaluate")
        self.evaluate_button.clicked.connect(self.evaluate)
        self.normalised = QCheckBox("Row percentages")
        self.normalised.toggled.connect(self._show_matrix)
        self.summary = QLabel("Evaluate a trained model on its validation images (or its test "
                              "folder).")
        self.summary.setWordWrap(True)
        self.matrix = ConfusionMatrixView()
        self.matrix.cell_opened.connect(self.open_cell)
        self.metrics = QTableWidget(0, 5)
        self.metrics.setHorizontalHeaderLabels(["Class", "Precision", "Recall", "F1", "Images"])
        self.metrics.verticalHeader().setVisible(False)
        self.metrics.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.metrics.horizontalHeader().setStretchLastSection(True)
        # Class order until the user clicks a header (Qt would sort by its default indicator).
        self.metrics.horizontalHeader().setSortIndicator(-1, Qt.SortOrder.AscendingOrder)
        self.metrics.setSortingEnabled(True)

        self.mistakes = ImageTableView(IMAGE_HEADERS)
        self.cell_images = ImageTableView(IMAGE_HEADERS)
        for table in (self.mistakes, self.cell_images):
            table.sort_by(CONFIDENCE, Qt.SortOrder.DescendingOrder)
            table.selection_changed.connect(lambda table=table: self._preview(table))
        self.cell_caption = hint_label("Click a cell of the matrix (or press Enter on it) to "
                                       "list its images.")
        self.image_tabs = QTabWidget()
        self.image_tabs.addTab(self.mistakes, "Mistakes (most confident first)")
        cell_tab = QWidget()
        cell_layout = QVBoxLayout(cell_tab)
        cell_layout.addWidget(self.cell_caption)
        cell_layout.addWidget(self.cell_images, 1)
        self.image_tabs.addTab(cell_tab, "Images of a cell")
        self.calibration = CalibrationView()
        self.calibration.message.connect(self.message)
        self.calibration.error.connect(self.error)
        self.image_tabs.addTab(self.calibration, "Confidence")
        self.image_tabs.currentChanged.connect(lambda _: self._preview())
        self.preview = ImagePreview()
        self.caption = QLabel()
        self.caption.setWordWrap(True)
        self.caption.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

        row = QHBoxLayout()
        row.addWidget(self.split_choice)
        row.addWidget(self.evaluate_button)
        row.addWidget(self.normalised)
        row.addWidget(self.busy, 2)
        row.addStretch(1)  # keeps the buttons their size while nothing runs
        left = QWidget()
        left_layout = QVBoxLayout(left)
        left_layout.setContentsMargins(0, 0, 0, 0)
        left_layout.addWidget(QLabel("<b>Confusion matrix</b> (rows: true, columns: predicted)"))
        left_layout.addWidget(self.matrix, 2)
        left_layout.addWidget(QLabel("<b>Per class</b>"))
        left_layout.addWidget(self.metrics, 1)
        preview_row = QHBoxLayout()
        preview_row.addWidget(self.preview)
        preview_row.addWidget(self.caption, 1)
        right = QWidget()
        right_layout = QVBoxLayout(right)
        right_layout.setContentsMargins(0, 0, 0, 0)
        right_layout.addWidget(self.image_tabs, 1)
        right_layout.addLayout(preview_row)
        body = QSplitter(Qt.Orientation.Horizontal)
        body.addWidget(left)
        body.addWidget(right)
        body.setChildrenCollapsible(False)
        layout = QVBoxLayout(self)
        layout.addLayout(row)
        layout.addWidget(self.summary)
        layout.addWidget(body, 1)
        self._sync()

    @property
    def evaluation(self) -> Evaluation | None:
        """The evaluation shown, or None."""
        return self.shown.evaluation if self.shown else None

    # -- the model ---------------------------------------------------------------------------
    def set_model(self, checkpoint: str | None, run: RunRecord | None) -> None:
        """The model the next evaluation uses (the shown one stays until then)."""
        self.checkpoint, self.run = checkpoint, run
        self._sync()

    def set_device(self, device: str) -> None:
        """Where the next evaluation runs ("auto", "cpu", "cuda:0", "mps")."""
        self.device = device or "auto"

    # -- evaluating --------------------------------------------------------------------------
    def evaluate(self) -> None:
        """Evaluate the chosen model on the chosen images, in the background."""
        checkpoint, which, device = self.checkpoint, self.split_choice.currentData(), self.device
        if not checkpoint or self.worker.is_running():
            return

        def task(emit, control):
            from ...core.evaluation import evaluate_run

            stage = [""]

            def begin(name: str) -> None:
                stage[0] = name
                emit(Progress(0, 0, name[0].upper() + name[1:]))

            evaluation = evaluate_run(
                checkpoint, which, device=device, cancel=control, stage=begin,
                progress=lambda d, t: emit(Progress(d, t, stage[0][:1].upper() + stage[0][1:])))
            shown = EvaluatedImages.of(evaluation, model_label(checkpoint), checkpoint)
            settle(len(evaluation.paths))  # tens of thousands of rows: keep them out of the
            return shown  # collector's full passes, which the window's thread would wait on

        self.worker.start(task, on_succeeded=self.show_evaluation, on_failed=self.error.emit,
                          on_cancelled=lambda: self.message.emit("evaluation cancelled"))
        self._sync()

    def show_evaluation(self, result: EvaluatedImages | Evaluation) -> None:
        """Show an evaluation: its summary, matrix, figures and mistakes."""
        shown = result if isinstance(result, EvaluatedImages) else EvaluatedImages.of(result)
        self.shown = shown
        e = shown.evaluation
        metrics = e.metrics()
        what = e.split or "images"
        text = (f"<b>Accuracy {share_text(e.accuracy)}</b> on {len(e.paths):,} {what}; "
                f"{len(e.mistakes()):,} mistakes.")
        if shown.model:  # the model chosen above may have changed since
            text += f" Model: {html.escape(shown.model)}."
        if e.unreadable:
            text += (f" {len(e.unreadable):,} images could not be read (first: "
                     f"{e.unreadable[0][0]}: {e.unreadable[0][1]}).")
        if any(m.note() for m in metrics):
            text += f"<br>{UNDEFINED_NOTE}."
        self.summary.setText(text)
        self._show_matrix()
        self.metrics.setSortingEnabled(False)
        self.metrics.setRowCount(len(e.classes))
        for r, (name, m) in enumerate(zip(e.classes, metrics)):
            self.metrics.setItem(r, 0, QTableWidgetItem(name))
            for c, (text, value) in enumerate(((share_text(m.precision), m.precision),
                                               (share_text(m.recall), m.recall),
                                               (decimal_text(m.f1), m.f1),
                                               (str(m.support), m.support)), 1):
                # an undefined figure sorts below every defined one
                item = _NumberItem(text, -1.0 if value is None else value)
                item.setToolTip(m.note() or "")
                self.metrics.setItem(r, c, item)
        self.metrics.setSortingEnabled(True)
        self.mistakes.set_rows(*shown.rows(e.mistakes()), formats={CONFIDENCE: _percent})
        self.mistakes.sort_by(CONFIDENCE, Qt.SortOrder.DescendingOrder)
        self.cell_images.clear()
        self.cell_caption.setText("Click a cell of the matrix (or press Enter on it) to list "
                                  "its images.")
        self.calibration.show_evaluation(e, shown.checkpoint or None)
        self.image_tabs.setCurrentIndex(0)
        if self.mistakes.row_count():
            self.mistakes.select_row(0)  # the most confident mistake, large
        else:
            self.preview.show_image(None)
            self.caption.clear()

    @Slot()
    def _show_matrix(self) -> None:
        self.matrix.show_evaluation(self.evaluation, self.normalised.isChecked())

    @Slot(int, int)
    def open_cell(self, true_class: int, predicted_class: int) -> None:
        """List the images of ``true_class`` predicted as ``predicted_class``."""
        if self.shown is None:
            return
        e = self.shown.evaluation
        indices = e.cell(true_class, predicted_class)
        self.cell_caption.setText(f"{len(indices):,} {e.classes[true_class]} images predicted "
                                  f"as {e.classes[predicted_class]}")
        self.cell_images.set_rows(*self.shown.rows(indices), formats={CONFIDENCE: _percent})
        self.image_tabs.setCurrentIndex(1)
        if self.cell_images.row_count():
            self.cell_images.select_row(0)

    def _visible_list(self) -> ImageTableView:
        return self.cell_images if self.image_tabs.currentIndex() == 1 else self.mistakes

    def _preview(self, table: ImageTableView | None = None) -> None:
        """Show the selected image of the visible list, large, with what was predicted."""
        if table is not None and table is not self._visible_list():
            return  # the list on the other tab: the preview follows the visible one
        path = self._visible_list().selected_path()
        if path is None or self.shown is None:
            self.preview.show_image(None)
            self.caption.clear()
            return
        e = self.shown.evaluation
        i = self.shown.index_of[path]
        verdict = "right" if e.true[i] == e.pred[i] else "wrong"
        self.caption.setText(
            f"<b>{self.shown.names[i]}</b><br>true class: {e.classes[e.true[i]]}"
            f"<br>predicted: {e.classes[e.pred[i]]} ({e.confidence[i]:.1%}, {verdict})"
            f"<br>{os.path.dirname(path)}")
        self.preview.show_image(path)

    # -- plumbing ----------------------------------------------------------------------------
    @Slot()
    def _sync(self) -> None:
        has_test = bool(self.run and self.run.test_folder)
        test_item = self.split_choice.model().item(1)
        test_item.setEnabled(has_test)
        test_item.setToolTip("" if has_test else "This run was trained without a test folder.")
        if not has_test and not self.worker.is_running():
            self.split_choice.setCurrentIndex(0)
        self.evaluate_button.setEnabled(bool(self.checkpoint) and not self.worker.is_running())

    def shutdown(self, timeout_ms: int = SHUTDOWN_WAIT_MS) -> bool:
        """Cancel the evaluation and stop decoding images; True when everything ended."""
        self.mistakes.shutdown()
        self.cell_images.shutdown()
        self.preview.shutdown()
        saved = self.calibration.shutdown(timeout_ms)
        return self.worker.shutdown(timeout_ms) and saved


class _NumberItem(QTableWidgetItem):
    """A table cell that sorts by its number, not its text."""

    def __init__(self, text: str, value: float):
        super().__init__(text)
        self.value = value
        self.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)

    def __lt__(self, other):
        if isinstance(other, _NumberItem):
            return self.value < other.value
        return super().__lt__(other)
