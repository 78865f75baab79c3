"""The Look inside step itself: which model (the pretrained backbone or a fine-tuned one),
which image, the model's top predictions for it, and the tabs that look inside.

The model is loaded once per source by a :class:`~.jobs.ModelLoader`; the predictions and each
tab have a job of their own, so a click on one tab never cancels another's work, and a request
made while the model loads runs when it has loaded.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Sequence

from PySide6.QtCore import Qt, Slot
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QVBoxLayout,
)

from ..busy import BusyIndicator
from ..pane import Pane
from ..workers import TaskController
from .adversarial_tab import AdversarialTab
from .features_tab import FeaturesTab
from .gradcam_tab import GradcamTab
from .ideal_tab import IdealTab
from .jobs import PRETRAINED, InspectJob, ModelLoader, SourceKey
from .views import ImageView, NoteLabel, percent

#: How long quitting waits for the inspection work in all (a pass that cannot be cancelled is
#: abandoned after that; see TaskController.shutdown).
SHUTDOWN_SECONDS = 5.0


class InspectPane(Pane):
    """Looks inside the pretrained backbone or a fine-tuned model."""

    title = "Look inside"
    hint = "See what the network sees: feature maps, where it looks, what it imagines."

    def __init__(self, parent=None):
        super().__init__(parent)
        self.backbone = "vgg16"
        self.weights_cached = False
        self.checkpoints: dict[str, str] = {}  # label -> best.pt
        self.dataset_items: Sequence = ()  # the data set's ImageItems
        self.dataset_classes: list[str] = []
        self.image_path: str | None = None
        self._stale = True

        self.loader = ModelLoader(self)
        self.loader.loaded.connect(self._on_model_loaded)
        self.loader.failed.connect(self._on_failed)
        self.predictions_job = InspectJob("inspect-predictions", self.loader, self)
        self.predictions_job.failed.connect(self._on_failed)

        # Source and image
        self.source = QComboBox()
        self.source.setSizeAdjustPolicy(
            QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.source.setMinimumContentsLength(24)
        self.source.currentIndexChanged.connect(self._on_source_changed)
        self.open_checkpoint = QPushButton("Open Checkpoint…")
        self.open_checkpoint.clicked.connect(self._choose_checkpoint)
        self.source_note = NoteLabel()
        self.open_image = QPushButton("Open Image…")
        self.open_image.clicked.connect(self._choose_image)
        self.pick_image = QPushButton("From the Data Set")
        self.pick_image.setToolTip("A random image of the loaded data set")
        self.pick_image.clicked.connect(self.pick_from_dataset)
        self.model_busy = BusyIndicator()
        self.model_busy.attach(self.loader.controller, "Loading the model")
        self.model_busy.cancel_requested.connect(self._on_model_load_cancelled)
        top = QHBoxLayout()
        top.addWidget(QLabel("Model:"))
        top.addWidget(self.source, 1)
        top.addWidget(self.open_checkpoint)
        top.addSpacing(16)
        top.addWidget(QLabel("Image:"))
        top.addWidget(self.open_image)
        top.addWidget(self.pick_image)

        self.input_view = ImageView("Drop an image here,\nor open one", 220, accept_drops=True)
        self.input_view.file_dropped.connect(self.set_image)
        self.image_caption = QLabel()
        self.image_caption.setTextFormat(Qt.TextFormat.PlainText)  # file names are not markup
        self.image_caption.setWordWrap(True)
        self.image_caption.setMaximumWidth(220)
        self.predictions = QTableWidget(0, 2)
        self.predictions.setHorizontalHeaderLabels(["Class", "Probability"])
        self.predictions.horizontalHeader().setStretchLastSection(True)
        self.predictions.verticalHeader().setVisible(False)
        self.predictions.setMaximumWidth(220)
        self.predictions.setMinimumHeight(180)
        left = QVBoxLayout()
        left.addWidget(self.input_view)
        left.addWidget(self.image_caption)
        left.addWidget(QLabel("<b>Top predictions</b>"))
        left.addWidget(self.predictions, 1)

        self.features_tab = FeaturesTab(self.loader)
        self.gradcam_tab = GradcamTab(self.loader)
        self.ideal_tab = IdealTab(self.loader)
        self.adversarial_tab = AdversarialTab(self.loader)
        self.tabs = QTabWidget()
        self.tabs.addTab(self.features_tab, "Feature maps")
        self.tabs.addTab(self.gradcam_tab, "Why? (Grad-CAM)")
        self.tabs.addTab(self.ideal_tab, "Ideal image")
        self.tabs.addTab(self.adversarial_tab, "Adversarial")
        for tab in self._tabs():
            tab.failed.connect(self._on_failed)
        self.ideal_tab.message.connect(self.message)
        self.adversarial_tab.message.connect(self.message)

        body = QHBoxLayout()
        body.addLayout(left)
        body.addWidget(self.tabs, 1)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.model_busy)
        layout.addWidget(self.source_note)
        layout.addLayout(body, 1)
        self._rebuild_sources()
        self._sync()

    def _tabs(self) -> list:
        return [self.features_tab, self.gradcam_tab, self.ideal_tab, self.adversarial_tab]

    def controllers(self) -> list[TaskController]:
        """Every controller of the pane's background work: the model's, then each job's."""
        jobs = [self.predictions_job] + [tab.job for tab in self._tabs()]
        return ([self.loader.controller] + [job.controller for job in jobs]
                + [self.features_tab.grid_task])

    def is_running(self) -> bool:
        """True while the model loads or any view's work runs or waits."""
        jobs = [self.predictions_job] + [tab.job for tab in self._tabs()]
        return (self.loader.is_loading() or any(job.is_busy() for job in jobs)
                or self.features_tab.grid_task.is_running())

    # -- inputs from the rest of the window ----------------------------------------------------
    def set_backbone(self, name: str, weights_cached: bool) -> None:
        """The backbone chosen on the Model step (used as 'pretrained')."""
        if (name, weights_cached) != (self.backbone, self.weights_cached):
            self.backbone, self.weights_cached = name, weights_cached
            self._rebuild_sources()
            if self.source.currentData() == PRETRAINED:
                self._on_source_changed()  # the same entry, another network

    def add_checkpoints(self, run_dir, names, select_last: bool = True) -> None:
        """Offer the best.pt of each run of a training (and show the last, if asked)."""
        for name in names:
            path = os.path.join(str(run_dir), name, "best.pt")
            if os.path.isfile(path):
                self.checkpoints[_checkpoint_label(path)] = path
        self._rebuild_sources(select_last=select_last)

    def select_checkpoint(self, path: str) -> None:
        """Look inside the model of ``path`` (a run's best.pt), offering it first if needed:
        the run the Results step shows."""
        index = self._find_checkpoint(str(path))
        if index < 0:
            if not os.path.isfile(path):
                return
            self.checkpoints[_checkpoint_label(str(path))] = str(path)
            self._rebuild_sources()
            index = self._find_checkpoint(str(path))
        self.source.setCurrentIndex(index)

    def _find_checkpoint(self, path: str) -> int:
        """The source entry of ``path`` (however the path is spelled), or -1."""
        wanted = _same_file_key(path)
        for i in range(self.source.count()):
            data = self.source.itemData(i)
            if data != PRETRAINED and _same_file_key(data) == wanted:
                return i
        return -1

    def set_dataset(self, items: Sequence, classes: Sequence[str]) -> None:
        """The data set's images (with their labels) and class names, for *From the Data
        Set*. Keeps the sequence as it is: no work per image here."""
        self.dataset_items = items
        self.dataset_classes = list(classes)
        self._sync()

    def set_image(self, path: str, true_class: str | None = None) -> None:
        """Look at the image ``path`` (of class ``true_class``, when known)."""
        if path != self.image_path:
            self.predictions.setRowCount(0)  # those of the image before
        self.image_path = path
        name = os.path.basename(path)
        self.image_caption.setText(f"{name} — true class: {true_class}" if true_class else name)
        self.image_caption.setToolTip(path)
        self.gradcam_tab.set_image(path)
        self.adversarial_tab.set_image(path)
        self._refresh()

    def pick_from_dataset(self) -> None:
        """Look at a random image of the data set, named with its true class."""
        if self.dataset_items:
            item = random.choice(self.dataset_items)
            label = item.label
            true_class = (self.dataset_classes[label]
                          if 0 <= label < len(self.dataset_classes) else None)
            self.set_image(item.path, true_class)

    # -- sources -------------------------------------------------------------------------------
    def _rebuild_sources(self, select_last: bool = False) -> None:
        current = self.source.currentData()
        self.source.blockSignals(True)
        self.source.clear()
        weights = "ImageNet weights" if self.weights_cached else "random weights"
        self.source.addItem(f"Pretrained: {self.backbone} ({weights})", PRETRAINED)
        for label, path in self.checkpoints.items():
            self.source.addItem(label, path)
        index = self.source.count() - 1 if select_last else self.source.findData(current)
        self.source.setCurrentIndex(max(0, index))
        self.source.blockSignals(False)
        if self.source.currentData() != current or self.loader.key is None:
            self._on_source_changed()

    @Slot()
    def _on_source_changed(self) -> None:
        data = self.source.currentData()
        if data == PRETRAINED and not self.weights_cached:
            self.source_note.setText(
                f"ImageNet weights for {self.backbone} are not cached (see the Model step), "
                f"so this is the network with random weights: its features and predictions "
                f"mean nothing yet — a useful comparison.")
        else:
            self.source_note.setText("")
        self.source_note.setVisible(bool(self.source_note.text()))
        key = self._source_key()
        if key != self.loader.key:
            self.loader.select(key)
            self.predictions_job.cancel()
            self.predictions.setRowCount(0)  # the model before's
            for tab in self._tabs():
                tab.model_changed()
        self._refresh()

    def _source_key(self) -> SourceKey:
        data = self.source.currentData()
        if data == PRETRAINED:
            return (PRETRAINED, self.backbone, "imagenet" if self.weights_cached else "none")
        return ("checkpoint", data)

    def _choose_checkpoint(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "A model trained by tlgui", os.path.expanduser("~"),
            "tlgui checkpoints (best.pt *.pt);;All files (*)")
        if path:
            self.checkpoints[f"Fine-tuned: {path}"] = path
            self._rebuild_sources(select_last=True)

    def _choose_image(self) -> None:
        start = os.path.dirname(self.image_path) if self.image_path else os.path.expanduser("~")
        path, _ = QFileDialog.getOpenFileName(self, "An image to look at", start,
                                              "Images (*.jpg *.jpeg *.png *.bmp *.gif *.tif "
                                              "*.tiff *.webp);;All files (*)")
        if path:
            self.set_image(path)

    # -- work ----------------------------------------------------------------------------------
    def showEvent(self, event) -> None:
        super().showEvent(event)
        if self._stale:
            self._refresh()

    def _refresh(self) -> None:
        """Load the model and show what depends on it and the image — now if the pane is
        shown, else when it next is (loading a model is not free)."""
        self._sync()
        self._stale = not self.isVisible()
        if self._stale:
            return
        self.loader.ensure()
        if self.image_path is not None:
            image_path = self.image_path

            def compute(model, emit, control):
                from ...core.inspection import to_uint8

                x = model.load_image(image_path)
                return to_uint8(x), model.top_predictions(x, 5)

            self.predictions_job.request(compute, self._show_predictions)
        if self.features_tab.image_path != self.image_path:
            self.features_tab.set_image(self.image_path)

    @Slot()
    def _on_model_loaded(self) -> None:
        classes = list(self.loader.model.classes)
        for tab in (self.gradcam_tab, self.ideal_tab, self.adversarial_tab):
            tab.set_classes(classes)
        self.features_tab.set_layers(self.loader.layers)

    @Slot()
    def _on_model_load_cancelled(self) -> None:
        self.loader.cancel()  # a request made from now on loads the model anew
        # The requests waiting for the model would wait for good: none of them runs now.
        for job in [self.predictions_job] + [tab.job for tab in self._tabs()]:
            job.drop_waiting()

    def _show_predictions(self, result) -> None:
        image, predictions = result
        self.input_view.show_array(image)
        self.predictions.setRowCount(len(predictions))
        for r, (name, p) in enumerate(predictions):
            self.predictions.setItem(r, 0, QTableWidgetItem(name))
            self.predictions.setItem(r, 1, QTableWidgetItem(percent(p)))

    @Slot(str, str)
    def _on_failed(self, message: str, details: str) -> None:
        self.error.emit(message, details)

    def _sync(self) -> None:
        self.pick_image.setEnabled(bool(self.dataset_items))

    def shutdown(self) -> None:
        """Cancel every job and wait for them at most :data:`SHUTDOWN_SECONDS` in all."""
        for job in [self.predictions_job] + [tab.job for tab in self._tabs()]:
            job.cancel()  # forget the waiting requests, so none starts while others stop
        controllers = self.controllers()
        for controller in controllers:
            controller.cancel()
        deadline = time.monotonic() + SHUTDOWN_SECONDS
        for controller in controllers:
            controller.shutdown(max(0, round((deadline - time.monotonic()) * 1000)))


def _checkpoint_label(path: str) -> str:
    """``Fine-tuned: with_dropout (20261122-101500)`` for
    ``…/20261122-101500/with_dropout/best.pt``."""
    run_folder = os.path.dirname(path)
    run_dir = os.path.dirname(run_folder)
    return f"Fine-tuned: {os.path.basename(run_folder)} ({os.path.basename(run_dir)})"


def _same_file_key(path: str) -> str:
    return os.path.normcase(os.path.abspath(path))
