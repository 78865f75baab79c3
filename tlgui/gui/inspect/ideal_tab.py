"""The Ideal image tab: gradient ascent from noise on a class's score, with and without the
total-variation term, evolving live."""

from __future__ import annotations

import html
from dataclasses import dataclass

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QDoubleSpinBox,
    QFormLayout,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSpinBox,
    QWidget,
)

from ...core.progress import Progress
from ..busy import BusyIndicator
from .jobs import InspectJob, ModelLoader
from .views import ClassCombo, ImageView, percent

#: The largest canvas: much faster on a CPU than 224 px, and the same idea.
MAX_SIZE = 160

EMPTY_CAPTION = (
    "Starting from noise, the image is changed step by step to raise the class's score. The "
    "total-variation (TV) term keeps neighbouring pixels alike; without it the result is noise "
    "the network nevertheless scores highly.")


@dataclass(frozen=True)
class Snapshot:
    """The image of one run at one step, for the live view."""

    with_tv: bool
    step: int
    image: np.ndarray
    score: float


class IdealTab(QWidget):
    """The image a class's score likes best, with the TV term and, beside it, without."""

    message = Signal(str)  #: a line for the status bar
    failed = Signal(str, str)  #: one-line message, details

    def __init__(self, loader: ModelLoader, parent: QWidget | None = None):
        super().__init__(parent)
        self.job = InspectJob("inspect-ideal", loader, self)
        self.job.failed.connect(self.failed)
        self.result = None  #: (class name, ClassImage with TV, ClassImage without or None)

        self.class_combo = ClassCombo()
        self.steps = QSpinBox()
        self.steps.setRange(10, 2000)
        self.steps.setValue(200)
        self.tv = QDoubleSpinBox()
        self.tv.setRange(0.0, 10.0)
        self.tv.setSingleStep(0.1)
        self.tv.setValue(0.5)  # class_images.DEFAULT_TV_WEIGHT (importing it needs torch)
        self.tv.setToolTip("The total-variation penalty as a fraction of the class score: the "
                           "same weight works for any model and image size")
        self.compare = QCheckBox("Also without the TV term")
        self.compare.setChecked(True)
        self.button = QPushButton("Generate")
        self.button.clicked.connect(self.compute)
        self.busy = BusyIndicator()
        self.job.show_progress_in(self.busy, "Generating")
        self.view = ImageView("With total variation", 220)
        self.plain_view = ImageView("Without total variation", 220)
        self.caption = QLabel(EMPTY_CAPTION)
        self.caption.setWordWrap(True)
        self.caption.setTextFormat(Qt.TextFormat.RichText)
        form = QFormLayout()
        form.addRow("Class", self.class_combo)
        form.addRow("Steps", self.steps)
        form.addRow("TV weight", self.tv)
        form.addRow(self.compare)
        form.addRow(self.button)
        views = QHBoxLayout()
        views.addWidget(self.view)
        views.addWidget(self.plain_view)
        layout = QGridLayout(self)
        layout.addLayout(form, 0, 0, Qt.AlignmentFlag.AlignTop)
        layout.addLayout(views, 0, 1)
        layout.addWidget(self.busy, 1, 0, 1, 2)
        layout.addWidget(self.caption, 2, 0, 1, 2)
        layout.setColumnStretch(1, 1)
        layout.setRowStretch(0, 1)

    def set_classes(self, classes: list[str]) -> None:
        self.class_combo.set_classes(classes)

    def model_changed(self) -> None:
        """Another model: the images this one imagined are cleared."""
        self.clear_result()

    def clear_result(self) -> None:
        """Cancel the run under way and show the empty views, as at the start."""
        self.job.cancel()  # a pass asked for before is not shown
        self.result = None
        self.view.reset()
        self.plain_view.reset()
        self.caption.setText(EMPTY_CAPTION)

    def compute(self) -> None:
        """Generate the ideal image of the chosen class (a new click starts over)."""
        target = self.class_combo.selected_class()
        if target is None:
            self.message.emit("choose a class to imagine")
            return
        steps, tv, compare = self.steps.value(), self.tv.value(), self.compare.isChecked()
        total = steps * (2 if compare else 1)

        def compute(model, emit, control):
            from ...core.class_images import ideal_image

            # A transformer takes its own size only (slower, but the only one it sees).
            size = model.input_size if model.fixed_size else min(model.input_size, MAX_SIZE)

            def run(tv_weight: float, with_tv: bool, done_before: int):
                stage = "With total variation" if with_tv else "Without total variation"

                def report(step, image, score):
                    emit(Progress(done_before + step, total, stage))
                    emit(Snapshot(with_tv, step, image, score))

                return ideal_image(model, target, steps=steps, tv_weight=tv_weight, size=size,
                                   callback=report, every=5, cancel=control)

            result = run(tv, True, 0)
            plain = run(0.0, False, steps) if compare else None
            return model.classes[target], result, plain

        self.plain_view.reset()
        self.job.request(compute, self._show, on_progress=self._show_step)

    def _show_step(self, item) -> None:
        if not isinstance(item, Snapshot):
            return  # a Progress record: the busy indicator shows it
        view = self.view if item.with_tv else self.plain_view
        view.show_array(item.image)
        self.caption.setText(f"{'With' if item.with_tv else 'Without'} total variation: "
                             f"step {item.step}, class score {item.score:.2f}")

    def _show(self, value) -> None:
        self.result = value
        name, result, plain = value
        name = html.escape(name)  # a class name is not markup
        self.view.show_array(result.image)
        text = (f"<b>{name}</b> with TV: score {result.start_score:.2f} → {result.score:.2f} "
                f"(probability {percent(result.probability)}), total variation "
                f"{result.total_variation:.3f}")
        if plain is not None:
            self.plain_view.show_array(plain.image)
            text += (f"; without TV: score {plain.start_score:.2f} → {plain.score:.2f} "
                     f"(probability {percent(plain.probability)}), total variation "
                     f"{plain.total_variation:.3f}")
        self.caption.setText(text + ".")
