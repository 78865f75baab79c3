"""The Why? (Grad-CAM) tab: where the model looked for the predicted class, or any other."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from ..busy import BusyIndicator
from .jobs import InspectJob, ModelLoader
from .views import ClassCombo, ImageView

EMPTY_CAPTION = ("Grad-CAM colours the parts of the image that raised the class's score most "
                 "(yellow) to least (purple).")


class GradcamTab(QWidget):
    """A Grad-CAM heat map over the current image, for the chosen class."""

    failed = Signal(str, str)  #: one-line message, details

    def __init__(self, loader: ModelLoader, parent: QWidget | None = None):
        super().__init__(parent)
        self.job = InspectJob("inspect-gradcam", loader, self)
        self.job.failed.connect(self.failed)
        self.image_path: str | None = None
        self.result = None  #: (overlay image, class name, probability, sentence) shown

        self.class_combo = ClassCombo("(predicted class)")
        self.button = QPushButton("Show Where It Looked")
        self.button.clicked.connect(self.compute)
        self.busy = BusyIndicator()
        self.job.show_progress_in(self.busy, "Computing Grad-CAM")
        self.view = ImageView("The heat map appears here", 360)
        self.caption = QLabel(EMPTY_CAPTION)
        self.caption.setWordWrap(True)
        self.caption.setTextFormat(Qt.TextFormat.PlainText)  # class names are not markup
        row = QHBoxLayout()
        row.addWidget(QLabel("Class:"))
        row.addWidget(self.class_combo)
        row.addWidget(self.button)
        row.addWidget(self.busy, 1)
        layout = QVBoxLayout(self)
        layout.addLayout(row)
        layout.addWidget(self.view, 1)
        layout.addWidget(self.caption)
        self.set_image(None)

    def set_image(self, path: str | None) -> None:
        """Look at ``path``; the heat map of another image is cleared."""
        if path != self.image_path:
            self.clear_result()
        self.image_path = path
        self.button.setEnabled(path is not None)

    def set_classes(self, classes: list[str]) -> None:
        self.class_combo.set_classes(classes)

    def model_changed(self) -> None:
        """Another model: the heat map of this one is cleared."""
        self.clear_result()

    def clear_result(self) -> None:
        """Cancel the pass under way and show the empty view, as at the start."""
        self.job.cancel()  # a pass asked for before is not shown
        self.result = None
        self.view.reset()
        self.caption.setText(EMPTY_CAPTION)

    def compute(self) -> None:
        """The heat map of the chosen class (the predicted one by default)."""
        if self.image_path is None:
            return
        target, image_path = self.class_combo.selected_class(), self.image_path

        def compute(model, emit, control):
            from ...core.gradcam import describe, gradcam, overlay
            from ...core.inspection import to_uint8

            x = model.load_image(image_path)
            heat, index, p = gradcam(model, x, target)
            name = model.classes[index]
            return overlay(to_uint8(x), heat), name, p, describe(heat, name, p)

        self.job.request(compute, self._show)

    def _show(self, result) -> None:
        self.result = result
        image, _name, _p, sentence = result
        self.view.show_array(image)
        self.caption.setText(sentence)
