"""The Check step: before training, look at the data through a backbone's features. The
Audit tab lists images probably in the wrong folder, copies, leaks between training and
validation, and outliers; the Map tab places every image by its features. Both share the
features of the feature store with training, so the second look (and a frozen training with
the same backbone) costs no backbone pass."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QLabel,
    QSpinBox,
    QTabWidget,
    QVBoxLayout,
)

from ...core.images import MIN_IMAGE_SIZE
from ..pane import Pane
from .audit_tab import AuditTab
from .map_tab import MapTab
from .store_tab import StoreTab

#: The backbone the Check step uses until the user picks another: small and quick on a CPU.
DEFAULT_BACKBONE = "resnet18"


class CheckPane(Pane):
    """The audit and the map of the data set the Data step holds."""

    title = "Check"
    hint = "Find images in the wrong folder, copies and leaks; see how a backbone places them."

    #: Leave out (None) or move (a class as shown) the image at a path, in the app only.
    edit_requested = Signal(str, object)
    undo_requested = Signal()

    def __init__(self, parent=None):
        super().__init__(parent)
        #: Gives ``(data set, validation fraction, seed, device)`` when asked; set by the window.
        self.data_source: Callable[[], tuple] = lambda: (None, 0.2, 0, "auto")
        self.cached: dict[str, bool] = {}
        self._wanted_backbone = DEFAULT_BACKBONE  # remembered, offered once PyTorch loads
        self.backbone = QComboBox()
        self.backbone.addItem(DEFAULT_BACKBONE)
        self.weights = QComboBox()
        self.weights.addItem("ImageNet weights", "imagenet")
        self.weights.addItem("Random weights (works offline on simple images)", "none")
        self.image_size = QSpinBox()
        self.image_size.setRange(0, 1024)
        self.image_size.setSingleStep(32)
        self.image_size.setSpecialValueText("the weights' own")
        self.image_size.setSuffix(" px")
        self.image_size.setToolTip(f"Network input size; smaller is faster (at least "
                                   f"{MIN_IMAGE_SIZE} px)")
        self.audit_tab = AuditTab()
        self.map_tab = MapTab()
        self.store_tab = StoreTab()
        #: True while a training runs; set by the window (the store tab then keeps its files).
        self.training_running: Callable[[], bool] = lambda: False
        self.store_tab.in_use = lambda: (self.training_running()
                                         or self.audit_tab.worker.is_running()
                                         or self.map_tab.worker.is_running())
        self.tabs = QTabWidget()
        self.tabs.addTab(self.audit_tab, "Audit")
        self.tabs.addTab(self.map_tab, "Map")
        self.tabs.addTab(self.store_tab, "Stored Features")
        self.audit_tab.run_button.clicked.connect(self.audit)
        self.map_tab.draw_button.clicked.connect(self.draw_map)
        self.audit_tab.edit_requested.connect(self.edit_requested)
        self.audit_tab.undo_requested.connect(self.undo_requested)
        for tab in (self.audit_tab, self.map_tab, self.store_tab):
            tab.message.connect(self.message)
            tab.error.connect(self.error)
        self.audit_tab.worker.succeeded.connect(
            lambda result: self.map_tab.set_marked({f.path for f in result.findings}))

        features = QHBoxLayout()
        features.addWidget(QLabel("Features from:"))
        features.addWidget(self.backbone)
        features.addWidget(self.weights, 1)
        features.addWidget(QLabel("Input size:"))
        features.addWidget(self.image_size)
        layout = QVBoxLayout(self)
        layout.addLayout(features)
        layout.addWidget(self.tabs, 1)

    def set_backend(self, backend: dict) -> None:
        """The backbones and which weights are cached, once PyTorch has loaded."""
        chosen = self._wanted_backbone
        self.backbone.clear()
        for info in backend["backbones"]:
            self.backbone.addItem(info.name)
        self.cached = dict(backend["cached"])
        self.backbone.setCurrentText(chosen if self.backbone.findText(chosen) >= 0
                                     else DEFAULT_BACKBONE)
        if not self.cached.get(self.backbone.currentText(), False):
            self.weights.setCurrentIndex(self.weights.findData("none"))
        self.backbone.currentTextChanged.connect(self._on_backbone_chosen)

    def _on_backbone_chosen(self, name: str) -> None:
        self._wanted_backbone = name
        if name and not self.cached.get(name, False):
            self.weights.setCurrentIndex(self.weights.findData("none"))

    def choice(self) -> tuple[str, str, int | None]:
        """(backbone, weights, input size or None)."""
        size = self.image_size.value()
        return (self.backbone.currentText(), self.weights.currentData(),
                max(size, MIN_IMAGE_SIZE) if size else None)

    def audit(self) -> None:
        report, fraction, seed, device = self.data_source()
        backbone, weights, size = self.choice()
        self.audit_tab.audit(report, backbone, weights, size, device, fraction, seed)

    def draw_map(self) -> None:
        report, _fraction, seed, device = self.data_source()
        backbone, weights, size = self.choice()
        self.map_tab.draw(report, backbone, weights, size, device, seed)

    def set_edits(self, edits: dict[str, str | None]) -> None:
        self.audit_tab.set_edits(edits)

    def set_checkpoints(self, checkpoints: dict[str, str]) -> None:
        self.map_tab.set_checkpoints(checkpoints)

    def remembered_settings(self) -> dict:
        backbone, weights, size = self.choice()
        return {"check/backbone": backbone, "check/weights": weights,
                "check/image_size": size or 0,
                "check/map_method": self.map_tab.method.currentData(),
                "check/map_follow": self.map_tab.follow.isChecked()}

    def restore_settings(self, values: dict) -> None:
        backbone = values.get("check/backbone")
        if isinstance(backbone, str):
            self._wanted_backbone = backbone
            if self.backbone.findText(backbone) >= 0:
                self.backbone.setCurrentText(backbone)
        for box, key in ((self.weights, "check/weights"),
                         (self.map_tab.method, "check/map_method")):
            index = box.findData(values.get(key))
            if index >= 0:
                box.setCurrentIndex(index)
        if isinstance(values.get("check/map_follow"), bool):
            self.map_tab.follow.setChecked(values["check/map_follow"])
        size = values.get("check/image_size")
        if isinstance(size, int) and not isinstance(size, bool):
            self.image_size.setValue(size)

    def shutdown(self) -> None:
        self.audit_tab.shutdown()
        self.map_tab.shutdown()
        self.store_tab.shutdown()
