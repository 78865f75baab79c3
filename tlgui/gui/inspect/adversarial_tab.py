"""The Adversarial tab: small targeted steps, each pixel bounded in whole 8-bit levels, until
the model sees the target class in the image as it would be saved."""

from __future__ import annotations

import html

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QSpinBox, QVBoxLayout, QWidget

from ..busy import BusyIndicator
from .jobs import InspectJob, ModelLoader
from .views import ClassCombo, ImageView, percent

EMPTY_CAPTION = ("Pick a target class: small steps against the model's gradient change the "
                 "image until the model sees the target.")


class AdversarialTab(QWidget):
    """The original, the change (amplified), the adversarial image and what the model saw."""

    message = Signal(str)  #: a line for the status bar
    failed = Signal(str, str)  #: one-line message, details

    def __init__(self, loader: ModelLoader, parent: QWidget | None = None):
        super().__init__(parent)
        self.job = InspectJob("inspect-adversarial", loader, self)
        self.job.failed.connect(self.failed)
        self.image_path: str | None = None
        self.result = None  #: (target class name, AdversarialResult) shown

        self.target = ClassCombo()
        self.epsilon = QSpinBox()  # whole levels: the image is judged as saved, in 8 bits
        self.epsilon.setRange(1, 64)
        self.epsilon.setValue(8)
        self.epsilon.setSuffix(" of 255")
        self.epsilon.setToolTip("The most any pixel may change, in 8-bit levels")
        self.steps = QSpinBox()
        self.steps.setRange(1, 1000)
        self.steps.setValue(100)
        self.button = QPushButton("Fool the Model")
        self.button.clicked.connect(self.compute)
        self.busy = BusyIndicator()
        self.job.show_progress_in(self.busy, "Searching for an adversarial example")
        self.views = [ImageView(t, 200) for t in ("Original", "Change (amplified)",
                                                   "Adversarial")]
        self.caption = QLabel(EMPTY_CAPTION)
        self.caption.setWordWrap(True)
        self.caption.setTextFormat(Qt.TextFormat.RichText)
        row = QHBoxLayout()
        row.addWidget(QLabel("Target:"))
        row.addWidget(self.target)
        row.addWidget(QLabel("Largest change:"))
        row.addWidget(self.epsilon)
        row.addWidget(QLabel("Steps:"))
        row.addWidget(self.steps)
        row.addWidget(self.button)
        row.addStretch()
        views = QHBoxLayout()
        for view in self.views:
            views.addWidget(view)
        layout = QVBoxLayout(self)
        layout.addLayout(row)
        layout.addWidget(self.busy)
        layout.addLayout(views, 1)
        layout.addWidget(self.caption)
        self.set_image(None)

    def set_image(self, path: str | None) -> None:
        """Look at ``path``; the example made from another image is cleared."""
        if path != self.image_path:
            self.clear_result()
        self.image_path = path
        self.button.setEnabled(path is not None)

    def set_classes(self, classes: list[str]) -> None:
        self.target.set_classes(classes)

    def model_changed(self) -> None:
        """Another model: the example that fooled this one is cleared."""
        self.clear_result()

    def clear_result(self) -> None:
        """Cancel the search under way and show the empty views, as at the start."""
        self.job.cancel()  # a pass asked for before is not shown
        self.result = None
        for view in self.views:
            view.reset()
        self.caption.setText(EMPTY_CAPTION)

    def compute(self) -> None:
        """Search for an adversarial example of the current image (a new click starts over)."""
        target = self.target.selected_class()
        if self.image_path is None or target is None:
            self.message.emit("choose an image and a target class")
            return
        epsilon, steps, image_path = self.epsilon.value() / 255, self.steps.value(), self.image_path

        def compute(model, emit, control):
            from ...core.adversarial import adversarial

            x = model.load_image(image_path)
            return model.classes[target], adversarial(model, x, target, epsilon=epsilon,
                                                      max_steps=steps, cancel=control)

        self.job.request(compute, self._show)

    def _show(self, value) -> None:
        self.result = value
        name, r = value
        for view, image in zip(self.views, (r.original, r.perturbation, r.adversarial)):
            view.show_array(image)
        name = html.escape(name)  # class names are not markup
        before = ", ".join(f"{html.escape(c)} {percent(p)}" for c, p in r.before[:3])
        after = ", ".join(f"{html.escape(c)} {percent(p)}" for c, p in r.after[:3])
        outcome = (f"The model now sees <b>{name}</b> after {r.steps} steps"
                   if r.success else f"<b>{name}</b> was not reached in {r.steps} steps")
        self.caption.setText(
            f"{outcome}; the largest change of a pixel is {r.max_change} of 255 levels "
            f"(typical {r.l2 * 255:.1f}), in the image as saved.<br>Before: {before}<br>"
            f"After: {after}")
