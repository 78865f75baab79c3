"""Step 4, look inside: feature maps, predictions, Grad-CAM, ideal images and adversarial
examples, for the pretrained backbone or a fine-tuned model. Every computation runs in a worker
thread; the pane only shows the pictures it sends back."""

from __future__ import annotations

import os
import random

import numpy as np
from PySide6.QtCore import QSize, Qt, QUrl, Signal, Slot
from PySide6.QtGui import QImage, QPixmap
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from .workers import TaskController

PRETRAINED = "pretrained"


def to_pixmap(array: np.ndarray, size: int | None = None) -> QPixmap:
    """An (H, W, 3) uint8 array as a pixmap, scaled to fit ``size`` (keeping crisp pixels when
    enlarging a small map)."""
    array = np.ascontiguousarray(array)
    h, w = array.shape[:2]
    image = QImage(array.data, w, h, 3 * w, QImage.Format.Format_RGB888).copy()
    pixmap = QPixmap.fromImage(image)
    if size:
        mode = (Qt.TransformationMode.FastTransformation if max(h, w) < size // 2
                else Qt.TransformationMode.SmoothTransformation)
        pixmap = pixmap.scaled(QSize(size, size), Qt.AspectRatioMode.KeepAspectRatio, mode)
    return pixmap


def percent(p: float) -> str:
    """A probability with the precision it needs: 87%, 4.2%, 0.13%; only 1 reads 100% and
    only 0 reads 0% (a model that is nearly sure is not sure)."""
    if p >= 1:
        return "100%"
    if p >= 0.9995:
        return ">99.9%"
    if p >= 0.995:
        return f"{p:.1%}"
    if p >= 0.1:
        return f"{p:.0%}"
    if p >= 0.01:
        return f"{p:.1%}"
    if p >= 0.00005:
        return f"{p:.2%}"
    return "<0.01%" if p > 0 else "0%"


class ImageView(QLabel):
    """A picture with a caption; accepts an image file dropped on it."""

    file_dropped = Signal(str)

    def __init__(self, caption: str = "", size: int = 260, accept_drops: bool = False):
        super().__init__()
        self.size_hint = size
        self.setMinimumSize(size, size)
        self.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.setStyleSheet("background: #f4f5f7; border: 1px solid #dde;")
        self.setWordWrap(True)
        self.setText(caption)
        self.setAcceptDrops(accept_drops)

    def show_array(self, array: np.ndarray) -> None:
        self.setPixmap(to_pixmap(array, self.size_hint))

    def dragEnterEvent(self, event):
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event):
        urls = event.mimeData().urls()
        if urls:
            path = QUrl(urls[0]).toLocalFile()
            if os.path.isfile(path):
                self.file_dropped.emit(path)


class GridView(QLabel):
    """The grid of channel images; a click picks a channel."""

    channel_clicked = Signal(int)

    def __init__(self):
        super().__init__()
        self.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        self.setMinimumSize(280, 280)
        self.layout_info = None  # (cols, count, cell, gap, scale)

    def show_grid(self, grid: np.ndarray, cols: int, count: int, cell: int, gap: int) -> None:
        pixmap = to_pixmap(grid)
        available = min(self.width(), self.height())
        scale = min(1.0, available / max(pixmap.width(), pixmap.height()))
        if scale < 1.0:
            pixmap = pixmap.scaled(int(pixmap.width() * scale), int(pixmap.height() * scale),
                                   Qt.AspectRatioMode.KeepAspectRatio,
                                   Qt.TransformationMode.SmoothTransformation)
        self.setPixmap(pixmap)
        self.layout_info = (cols, count, cell, gap, scale)

    def mousePressEvent(self, event):
        if not self.layout_info:
            return
        cols, count, cell, gap, scale = self.layout_info
        pos = event.position()
        col = int(pos.x() / scale) // (cell + gap)
        row = int(pos.y() / scale) // (cell + gap)
        index = row * cols + col
        if 0 <= col < cols and 0 <= index < count:
            self.channel_clicked.emit(index)


class InspectPane(QWidget):
    """Looks inside the pretrained backbone or a fine-tuned model."""

    message = Signal(str)
    error = Signal(str, str)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.backbone = "vgg16"
        self.weights_cached = False
        self.checkpoints: dict[str, str] = {}  # label -> best.pt
        self.dataset_paths: list[str] = []
        self.image_path: str | None = None
        self.model = None  # the InspectModel, used only inside worker tasks
        self.model_key = None
        self.layers = []
        self.maps = None
        self.shown: dict[str, object] = {}  # the last result each view shows, by view
        self._stale = True

        self.worker = TaskController("inspector", self)
        self.worker.emitted.connect(self._on_emitted)
        self.worker.succeeded.connect(self._on_result)
        self.worker.failed.connect(self._on_failed)
        self.worker.finished.connect(self._on_finished)

        # Source and image
        self.source = QComboBox()
        self.source.setSizeAdjustPolicy(
            QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.source.setMinimumContentsLength(24)
        self.source.currentIndexChanged.connect(self._on_source_changed)
        self.open_checkpoint = QPushButton("Open Checkpoint…")
        self.open_checkpoint.clicked.connect(self._choose_checkpoint)
        self.source_note = QLabel()
        self.source_note.setWordWrap(True)
        self.source_note.setStyleSheet("color: #8a5a00;")
        self.open_image = QPushButton("Open Image…")
        self.open_image.clicked.connect(self._choose_image)
        self.pick_image = QPushButton("From the Data Set")
        self.pick_image.setToolTip("A random image of the loaded data set")
        self.pick_image.clicked.connect(self._pick_from_dataset)
        self.busy = QProgressBar()
        self.busy.setMaximumWidth(160)
        self.busy.setVisible(False)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setVisible(False)
        self.cancel_button.clicked.connect(self.worker.cancel)
        top = QHBoxLayout()
        top.addWidget(QLabel("Model:"))
        top.addWidget(self.source, 1)
        top.addWidget(self.open_checkpoint)
        top.addSpacing(16)
        top.addWidget(QLabel("Image:"))
        top.addWidget(self.open_image)
        top.addWidget(self.pick_image)
        top.addWidget(self.busy)
        top.addWidget(self.cancel_button)

        self.input_view = ImageView("Drop an image here,\nor open one", 220, accept_drops=True)
        self.input_view.file_dropped.connect(self.set_image)
        self.predictions = QTableWidget(0, 2)
        self.predictions.setHorizontalHeaderLabels(["Class", "Probability"])
        self.predictions.horizontalHeader().setStretchLastSection(True)
        self.predictions.verticalHeader().setVisible(False)
        self.predictions.setMaximumWidth(220)
        self.predictions.setMinimumHeight(180)
        left = QVBoxLayout()
        left.addWidget(self.input_view)
        left.addWidget(QLabel("<b>Top predictions</b>"))
        left.addWidget(self.predictions, 1)

        self.tabs = QTabWidget()
        self.tabs.addTab(self._features_tab(), "Feature maps")
        self.tabs.addTab(self._gradcam_tab(), "Why? (Grad-CAM)")
        self.tabs.addTab(self._ideal_tab(), "Ideal image")
        self.tabs.addTab(self._adversarial_tab(), "Adversarial")

        body = QHBoxLayout()
        body.addLayout(left)
        body.addWidget(self.tabs, 1)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.source_note)
        layout.addLayout(body, 1)
        self._rebuild_sources()
        self._sync()

    # -- tabs --------------------------------------------------------------------------------
    def _features_tab(self) -> QWidget:
        self.layer_list = QListWidget()
        self.layer_list.setMinimumWidth(210)
        self.layer_list.setMaximumWidth(260)
        self.layer_list.currentRowChanged.connect(lambda *_: self._compute_features())
        self.channel_count = QSpinBox()
        self.channel_count.setRange(1, 512)
        self.channel_count.setValue(36)
        self.channel_count.setPrefix("show ")
        self.channel_count.setSuffix(" channels")
        self.channel_count.valueChanged.connect(lambda *_: self._show_grid())
        self.previous_layer = QPushButton("↑ Earlier layer")
        self.previous_layer.clicked.connect(lambda: self._step_layer(-1))
        self.next_layer = QPushButton("Deeper layer ↓")
        self.next_layer.clicked.connect(lambda: self._step_layer(1))
        self.grid_view = GridView()
        self.grid_view.channel_clicked.connect(self._show_channel)
        self.channel_view = ImageView("Click a channel to see it large", 240)
        self.feature_caption = QLabel()
        self.feature_caption.setWordWrap(True)
        controls = QHBoxLayout()
        controls.addWidget(self.previous_layer)
        controls.addWidget(self.next_layer)
        controls.addWidget(self.channel_count)
        controls.addStretch()
        right = QVBoxLayout()
        right.addWidget(self.channel_view)
        right.addWidget(self.feature_caption)
        right.addStretch()
        grid = QHBoxLayout()
        grid.addWidget(self.grid_view, 1)
        grid.addLayout(right)
        column = QVBoxLayout()
        column.addLayout(controls)
        column.addLayout(grid, 1)
        tab = QWidget()
        layout = QHBoxLayout(tab)
        layout.addWidget(self.layer_list)
        layout.addLayout(column, 1)
        return tab

    def _class_combo(self) -> QComboBox:
        combo = QComboBox()
        combo.setEditable(True)
        combo.setInsertPolicy(QComboBox.InsertPolicy.NoInsert)
        combo.setMinimumWidth(220)
        return combo

    def _gradcam_tab(self) -> QWidget:
        self.cam_class = self._class_combo()
        self.cam_button = QPushButton("Show Where It Looked")
        self.cam_button.clicked.connect(self._compute_gradcam)
        self.cam_view = ImageView("The heat map appears here", 360)
        self.cam_caption = QLabel("Grad-CAM colours the parts of the image that raised the "
                                  "class's score most (yellow) to least (purple).")
        self.cam_caption.setWordWrap(True)
        self.cam_caption.setTextFormat(Qt.TextFormat.PlainText)  # class names are not markup
        row = QHBoxLayout()
        row.addWidget(QLabel("Class:"))
        row.addWidget(self.cam_class)
        row.addWidget(self.cam_button)
        row.addStretch()
        tab = QWidget()
        layout = QVBoxLayout(tab)
        layout.addLayout(row)
        layout.addWidget(self.cam_view, 1)
        layout.addWidget(self.cam_caption)
        return tab

    def _ideal_tab(self) -> QWidget:
        self.ideal_class = self._class_combo()
        self.ideal_steps = QSpinBox()
        self.ideal_steps.setRange(10, 2000)
        self.ideal_steps.setValue(200)
        self.ideal_tv = QDoubleSpinBox()
        self.ideal_tv.setRange(0.0, 10.0)
        self.ideal_tv.setSingleStep(0.1)
        self.ideal_tv.setValue(0.5)  # class_images.DEFAULT_TV_WEIGHT (importing it needs torch)
        self.ideal_tv.setToolTip("The total-variation penalty as a fraction of the class "
                                 "score: the same weight works for any model and image size")
        self.ideal_compare = QCheckBox("Also without the TV term")
        self.ideal_compare.setChecked(True)
        self.ideal_button = QPushButton("Generate")
        self.ideal_button.clicked.connect(self._compute_ideal)
        self.ideal_view = ImageView("With total variation", 220)
        self.ideal_plain_view = ImageView("Without total variation", 220)
        self.ideal_caption = QLabel(
            "Starting from noise, the image is changed step by step to raise the class's "
            "score. The total-variation (TV) term keeps neighbouring pixels alike; without it "
            "the result is noise the network nevertheless scores highly.")
        self.ideal_caption.setWordWrap(True)
        form = QFormLayout()
        form.addRow("Class", self.ideal_class)
        form.addRow("Steps", self.ideal_steps)
        form.addRow("TV weight", self.ideal_tv)
        form.addRow(self.ideal_compare)
        form.addRow(self.ideal_button)
        views = QHBoxLayout()
        views.addWidget(self.ideal_view)
        views.addWidget(self.ideal_plain_view)
        tab = QWidget()
        layout = QGridLayout(tab)
        layout.addLayout(form, 0, 0, Qt.AlignmentFlag.AlignTop)
        layout.addLayout(views, 0, 1)
        layout.addWidget(self.ideal_caption, 1, 0, 1, 2)
        layout.setColumnStretch(1, 1)
        return tab

    def _adversarial_tab(self) -> QWidget:
        self.adv_target = self._class_combo()
        self.adv_epsilon = QSpinBox()  # whole levels: the image is judged as saved, in 8 bits
        self.adv_epsilon.setRange(1, 64)
        self.adv_epsilon.setValue(8)
        self.adv_epsilon.setSuffix(" of 255")
        self.adv_epsilon.setToolTip("The most any pixel may change, in 8-bit levels")
        self.adv_steps = QSpinBox()
        self.adv_steps.setRange(1, 1000)
        self.adv_steps.setValue(100)
        self.adv_button = QPushButton("Fool the Model")
        self.adv_button.clicked.connect(self._compute_adversarial)
        self.adv_views = [ImageView(t, 200) for t in ("Original", "Change (amplified)",
                                                       "Adversarial")]
        self.adv_caption = QLabel("Pick a target class: small steps against the model's "
                                  "gradient change the image until the model sees the target.")
        self.adv_caption.setWordWrap(True)
        row = QHBoxLayout()
        row.addWidget(QLabel("Target:"))
        row.addWidget(self.adv_target)
        row.addWidget(QLabel("Largest change:"))
        row.addWidget(self.adv_epsilon)
        row.addWidget(QLabel("Steps:"))
        row.addWidget(self.adv_steps)
        row.addWidget(self.adv_button)
        row.addStretch()
        views = QHBoxLayout()
        for view in self.adv_views:
            views.addWidget(view)
        tab = QWidget()
        layout = QVBoxLayout(tab)
        layout.addLayout(row)
        layout.addLayout(views, 1)
        layout.addWidget(self.adv_caption)
        return tab

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
                label = f"Fine-tuned: {name} ({os.path.basename(str(run_dir))})"
                self.checkpoints[label] = path
        self._rebuild_sources(select_last=select_last)

    def set_dataset_paths(self, paths: list[str]) -> None:
        self.dataset_paths = paths
        self._sync()

    def set_image(self, path: str) -> None:
        self.image_path = path
        self._refresh()

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
        if self.source.currentData() != current or self.model is None:
            self._on_source_changed()

    def _on_source_changed(self) -> None:
        data = self.source.currentData()
        if data == PRETRAINED and not self.weights_cached:
            self.source_note.setText(
                f"ImageNet weights for {self.backbone} are not cached (see the Model step), "
                f"so this is the network with random weights: its features and predictions "
                f"mean nothing yet — a useful comparison.")
        else:
            self.source_note.setText("")
        self.model = None
        self._refresh()

    def showEvent(self, event) -> None:
        super().showEvent(event)
        if self._stale:
            self._refresh()

    def _source_key(self):
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

    def _pick_from_dataset(self) -> None:
        if self.dataset_paths:
            self.set_image(random.choice(self.dataset_paths))

    # -- work ----------------------------------------------------------------------------------
    def _run(self, what: str, compute) -> None:
        """Run ``compute(model, emit, control)`` in the worker, loading the model first."""
        key = self._source_key()
        model = self.model if self.model_key == key else None
        image_path = self.image_path

        def task(emit, control):
            from ..core import inspection

            m = model
            if m is None:
                if key[0] == PRETRAINED:
                    m = inspection.pretrained(key[1], key[2])
                else:
                    m = inspection.fine_tuned(key[1])
            x = m.load_image(image_path) if image_path else None
            return what, m, key, compute(m, x, emit, control)

        self.busy.setRange(0, 0)
        self.busy.setVisible(True)
        self.cancel_button.setVisible(True)
        self.worker.start(task)

    def _refresh(self) -> None:
        """Recompute what depends on the model and the image — now if the pane is shown,
        else when it next is (loading a model is not free)."""
        self._sync()
        self._stale = not self.isVisible()
        if self._stale:
            return

        def compute(m, x, emit, control):
            from ..core.feature_maps import describe_layers

            if not hasattr(m, "layer_list"):
                m.layer_list = describe_layers(m)  # one forward pass, once per model
            layers = m.layer_list
            predictions = m.top_predictions(x, 5) if x is not None else []
            image = None
            if x is not None:
                from ..core.inspection import to_uint8

                image = to_uint8(x)
            return layers, predictions, image, list(m.classes)

        self._run("refresh", compute)

    def _compute_features(self) -> None:
        row = self.layer_list.currentRow()
        if self.image_path is None or row < 0 or row >= len(self.layers):
            return
        layer = self.layers[row].name

        def compute(m, x, emit, control):
            from ..core.feature_maps import feature_maps

            return feature_maps(m, x, layer)

        self._run("features", compute)

    def _compute_gradcam(self) -> None:
        if self.image_path is None:
            return
        target = self._selected_class(self.cam_class)

        def compute(m, x, emit, control):
            from ..core.gradcam import describe, gradcam, overlay
            from ..core.inspection import to_uint8

            heat, index, p = gradcam(m, x, target)
            return overlay(to_uint8(x), heat), m.classes[index], p, describe(
                heat, m.classes[index], p)

        self._run("gradcam", compute)

    def _compute_ideal(self) -> None:
        target = self._selected_class(self.ideal_class)
        if target is None:
            self.message.emit("choose a class to imagine")
            return
        steps, tv, compare = (self.ideal_steps.value(), self.ideal_tv.value(),
                              self.ideal_compare.isChecked())

        def compute(m, x, emit, control):
            from ..core.class_images import ideal_image

            size = min(m.input_size, 160)  # smaller canvas: much faster on a CPU, same idea
            result = ideal_image(m, target, steps=steps, tv_weight=tv, size=size,
                                 callback=lambda s, im, sc: emit(("ideal", s, im, sc)),
                                 every=5, cancel=control)
            plain = None
            if compare:
                plain = ideal_image(m, target, steps=steps, tv_weight=0.0, size=size,
                                    callback=lambda s, im, sc: emit(("plain", s, im, sc)),
                                    every=5, cancel=control)
            return m.classes[target], result, plain

        self.ideal_plain_view.clear()
        self.ideal_plain_view.setText("Without total variation")
        self._run("ideal", compute)

    def _compute_adversarial(self) -> None:
        target = self._selected_class(self.adv_target)
        if self.image_path is None or target is None:
            self.message.emit("choose an image and a target class")
            return
        epsilon, steps = self.adv_epsilon.value() / 255, self.adv_steps.value()

        def compute(m, x, emit, control):
            from ..core.adversarial import adversarial

            return m.classes[target], adversarial(m, x, target, epsilon=epsilon,
                                                  max_steps=steps, cancel=control)

        self._run("adversarial", compute)

    def _selected_class(self, combo: QComboBox) -> int | None:
        """The class index chosen in ``combo``; None for '(predicted class)' or no match."""
        index = combo.findText(combo.currentText().strip())
        offset = 1 if combo is self.cam_class else 0
        return index - offset if index >= offset else None

    # -- results -------------------------------------------------------------------------------
    @Slot(object)
    def _on_emitted(self, item) -> None:
        which, step, image, score = item
        view = self.ideal_view if which == "ideal" else self.ideal_plain_view
        view.show_array(image)
        self.ideal_caption.setText(f"{'With' if which == 'ideal' else 'Without'} total "
                                   f"variation: step {step}, class score {score:.2f}")

    @Slot(object)
    def _on_result(self, result) -> None:
        what, model, key, value = result
        self.model, self.model_key = model, key
        self.shown[what] = value
        getattr(self, f"_show_{what}")(value)

    def _show_refresh(self, value) -> None:
        layers, predictions, image, classes = value
        if [c for c in classes] != self._classes_in(self.cam_class):
            for combo, first in ((self.cam_class, "(predicted class)"),
                                 (self.ideal_class, None), (self.adv_target, None)):
                combo.clear()
                if first:
                    combo.addItem(first)
                combo.addItems(classes)
        row = self.layer_list.currentRow()
        self.layers = layers
        self.layer_list.blockSignals(True)
        self.layer_list.clear()
        for layer in layers:
            c, h, w = layer.shape
            item = QListWidgetItem(f"{layer.name:<9} {layer.kind:<5} {c}×{h}×{w}")
            self.layer_list.addItem(item)
        self.layer_list.setCurrentRow(row if 0 <= row < len(layers) else 0)
        self.layer_list.blockSignals(False)
        self.predictions.setRowCount(len(predictions))
        for r, (name, p) in enumerate(predictions):
            self.predictions.setItem(r, 0, QTableWidgetItem(name))
            self.predictions.setItem(r, 1, QTableWidgetItem(percent(p)))
        if image is not None:
            self.input_view.show_array(image)
            self._compute_features()

    def _classes_in(self, combo: QComboBox) -> list[str]:
        start = 1 if combo is self.cam_class else 0
        return [combo.itemText(i) for i in range(start, combo.count())]

    def _show_features(self, maps) -> None:
        self.maps = maps
        self._show_grid()
        self._show_channel(0)

    def _show_grid(self) -> None:
        if self.maps is None:
            return
        import math

        count = min(self.channel_count.value(), len(self.maps.maps))
        cell, gap = 64, 2
        self.grid_view.show_grid(self.maps.grid(count, cell, gap), math.ceil(math.sqrt(count)),
                                 count, cell, gap)

    @Slot(int)
    def _show_channel(self, i: int) -> None:
        if self.maps is None or i >= len(self.maps.maps):
            return
        self.channel_view.show_array(self.maps.channel_image(i, 240))
        c, h, w = self.maps.maps.shape
        self.feature_caption.setText(
            f"<b>{self.maps.layer}</b>, channel {int(self.maps.channels[i])} "
            f"(#{i + 1} by mean activation, {self.maps.means[i]:.3f}); {c} channels of "
            f"{h}×{w}. Early layers respond to edges and colours, deeper ones to parts.")

    def _step_layer(self, delta: int) -> None:
        row = self.layer_list.currentRow() + delta
        if 0 <= row < self.layer_list.count():
            self.layer_list.setCurrentRow(row)

    def _show_gradcam(self, value) -> None:
        image, _name, _p, sentence = value
        self.cam_view.show_array(image)
        self.cam_caption.setText(sentence)

    def _show_ideal(self, value) -> None:
        name, result, plain = value
        self.ideal_view.show_array(result.image)
        text = (f"<b>{name}</b> with TV: score {result.start_score:.2f} → {result.score:.2f} "
                f"(probability {percent(result.probability)}), total variation "
                f"{result.total_variation:.3f}")
        if plain is not None:
            self.ideal_plain_view.show_array(plain.image)
            text += (f"; without TV: score {plain.start_score:.2f} → {plain.score:.2f} "
                     f"(probability {percent(plain.probability)}), total variation "
                     f"{plain.total_variation:.3f}")
        self.ideal_caption.setText(text + ".")

    def _show_adversarial(self, value) -> None:
        name, r = value
        for view, image in zip(self.adv_views, (r.original, r.perturbation, r.adversarial)):
            view.show_array(image)
        before = ", ".join(f"{c} {percent(p)}" for c, p in r.before[:3])
        after = ", ".join(f"{c} {percent(p)}" for c, p in r.after[:3])
        outcome = (f"The model now sees <b>{name}</b> after {r.steps} steps"
                   if r.success else f"<b>{name}</b> was not reached in {r.steps} steps")
        self.adv_caption.setText(
            f"{outcome}; the largest change of a pixel is {r.max_change} of 255 levels "
            f"(typical {r.l2 * 255:.1f}), in the image as saved.<br>Before: {before}<br>"
            f"After: {after}")

    @Slot(str, str)
    def _on_failed(self, message: str, details: str) -> None:
        self.error.emit(message, details)

    @Slot()
    def _on_finished(self) -> None:
        self.busy.setVisible(False)
        self.cancel_button.setVisible(False)
        self._sync()

    def _sync(self) -> None:
        has_image = self.image_path is not None
        self.pick_image.setEnabled(bool(self.dataset_paths))
        self.cam_button.setEnabled(has_image)
        self.adv_button.setEnabled(has_image)

    def shutdown(self) -> None:
        self.worker.shutdown()
