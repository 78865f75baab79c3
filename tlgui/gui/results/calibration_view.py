"""The Evaluate tab's calibration: a reliability diagram before and after calibration, the
expected calibration error, and the "not sure" threshold (to try, and to keep)."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QDoubleSpinBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from ...core.calibration import assessment_text
from ...core.metrics import Evaluation
from ..plots import PalettePlot
from ..workers import TaskController

BEFORE_COLOUR = "#9e9e9e"
AFTER_COLOUR = "#1f77b4"


class ReliabilityPlot(PalettePlot):
    """Accuracy against confidence, per bin: on the diagonal, a confidence means what it
    says; below it, the model is surer than it is right."""

    def __init__(self, parent=None):
        super().__init__("Reliability", {"bottom": "confidence (%)", "left": "accuracy (%)"},
                         parent=parent)
        self.setMenuEnabled(False)
        self.setMouseEnabled(x=False, y=False)
        self.showGrid(x=True, y=True, alpha=0.25)
        self.setRange(xRange=(0, 100), yRange=(0, 100), padding=0.02)
        self.addLegend(offset=(10, -10))
        self.plot([0, 100], [0, 100], pen=pg.mkPen("#888888", width=1,
                                                   style=Qt.PenStyle.DashLine))
        self.before = self.plot([], [], name="as the network gives them",
                                pen=pg.mkPen(BEFORE_COLOUR, width=1.5), symbol="o",
                                symbolSize=5, symbolBrush=BEFORE_COLOUR, symbolPen=None)
        self.after = self.plot([], [], name="calibrated", pen=pg.mkPen(AFTER_COLOUR, width=2.5),
                               symbol="o", symbolSize=7, symbolBrush=AFTER_COLOUR,
                               symbolPen=None)
        self.threshold_line = pg.InfiniteLine(angle=90, movable=False,
                                              pen=pg.mkPen("#d62728", width=1.5))
        self.addItem(self.threshold_line)
        self.threshold_line.hide()
        self.follow_palette()

    def show_assessment(self, assessment, show_before: bool) -> None:
        for curve, reliability in ((self.after, assessment.after),
                                   (self.before, assessment.before if show_before else None)):
            if reliability is None:
                curve.setData([], [])
                continue
            filled = reliability.counts > 0
            curve.setData(reliability.confidence[filled] * 100,
                          reliability.accuracy[filled] * 100)
        self.set_threshold(assessment.threshold)

    def set_threshold(self, threshold: float) -> None:
        self.threshold_line.setValue(threshold * 100)
        self.threshold_line.setVisible(threshold > 0)

    def clear_points(self) -> None:
        self.before.setData([], [])
        self.after.setData([], [])
        self.threshold_line.hide()


class CalibrationView(QWidget):
    """The reliability of the evaluated model's confidences, and its "not sure" threshold:
    the spin box tries another one on the images shown; Keep writes it into the model."""

    message = Signal(str)
    error = Signal(str, str)
    threshold_saved = Signal(str)  #: the checkpoint whose threshold changed

    def __init__(self, parent=None):
        super().__init__(parent)
        self.evaluation: Evaluation | None = None
        self.checkpoint: str | None = None
        self.plot = ReliabilityPlot()
        self.text = QLabel()
        self.text.setWordWrap(True)
        self.text.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.threshold = QDoubleSpinBox()
        self.threshold.setRange(0.0, 100.0)
        self.threshold.setDecimals(1)
        self.threshold.setSingleStep(1.0)
        self.threshold.setSuffix(" %")
        self.threshold.setSpecialValueText("never")
        self.threshold.setToolTip("Answers less confident than this are \"not sure\"")
        self.threshold.valueChanged.connect(self._threshold_changed)
        self.keep = QPushButton("Keep in the Model")
        self.keep.setToolTip("Predictions and exports use this threshold from now on")
        self.keep.clicked.connect(self.keep_threshold)
        self.saver = TaskController("threshold", self)
        row = QHBoxLayout()
        row.addWidget(QLabel("Not sure below"))
        row.addWidget(self.threshold)
        row.addWidget(self.keep)
        row.addStretch(1)
        layout = QVBoxLayout(self)
        layout.addWidget(self.plot, 1)
        layout.addWidget(self.text)
        layout.addLayout(row)
        self.show_evaluation(None, None)

    def show_evaluation(self, evaluation: Evaluation | None, checkpoint: str | None) -> None:
        self.evaluation, self.checkpoint = evaluation, checkpoint
        if evaluation is None:
            self.plot.clear_points()
            self.text.setText("Evaluate a model to see how far its confidences can be trusted.")
            self._sync()
            return
        threshold = float((evaluation.calibration or {}).get("threshold", 0.0))
        self.threshold.blockSignals(True)
        self.threshold.setValue(threshold * 100)
        self.threshold.blockSignals(False)
        self._show(threshold)

    def _show(self, threshold: float) -> None:
        e = self.evaluation
        assessment = e.assessment(threshold)
        self.plot.show_assessment(assessment, show_before=e.raw_confidence is not None)
        self.text.setText(assessment_text(assessment, e.split or "images"))
        self._sync()

    def _threshold_changed(self, value: float) -> None:
        if self.evaluation is not None:
            self._show(value / 100)

    def _stored_threshold(self) -> float | None:
        e = self.evaluation
        return None if e is None or e.calibration is None else float(
            e.calibration.get("threshold", 0.0))

    def _sync(self) -> None:
        e = self.evaluation
        # Only a model with a calibration, measured on its validation images, keeps one.
        can_keep = (e is not None and e.calibration is not None and self.checkpoint
                    and e.split == "validation images" and not self.saver.is_running()
                    and abs(self.threshold.value()  # as the box shows it: 0.1 % steps
                            - round(self._stored_threshold() * 100, 1)) > 1e-6)
        self.keep.setEnabled(bool(can_keep))
        self.threshold.setEnabled(e is not None and e.calibration is not None)

    def keep_threshold(self) -> None:
        e, checkpoint = self.evaluation, self.checkpoint
        if e is None or not checkpoint:
            return
        threshold = self.threshold.value() / 100
        confidence, correct = e.confidence.copy(), np.asarray(e.true == e.pred)

        def task(emit, control):
            from ...core.calibration import save_threshold

            return save_threshold(checkpoint, threshold, confidence, correct)

        def saved(calibration) -> None:
            if self.evaluation is e:
                e.calibration = calibration.to_dict()
            self.message.emit(f"kept: not sure below {threshold:.1%} in {checkpoint}")
            self.threshold_saved.emit(checkpoint)
            self._sync()

        self.saver.start(task, on_succeeded=saved, on_failed=self.error.emit)
        self._sync()

    def shutdown(self, timeout_ms: int) -> bool:
        return self.saver.shutdown(timeout_ms)
