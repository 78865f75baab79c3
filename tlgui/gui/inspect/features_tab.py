"""The Feature maps tab: every stage of the model with its output shape, the channels of the
chosen one as a grid, and one channel large."""

from __future__ import annotations

import math

from PySide6.QtCore import Signal, Slot
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from ..busy import BusyIndicator
from ..workers import TaskController
from .jobs import InspectJob, ModelLoader
from .views import GridView, ImageView

CELL = 64  #: a channel's side in the grid, in logical pixels
GAP = 2  #: between channels, in logical pixels
CHANNEL_SIZE = 240  #: the channel shown large, in logical pixels


class FeaturesTab(QWidget):
    """Feature maps of the current image at the chosen layer; one pass per layer change, the
    newest winning."""

    failed = Signal(str, str)  #: one-line message, details

    def __init__(self, loader: ModelLoader, parent: QWidget | None = None):
        super().__init__(parent)
        self.job = InspectJob("inspect-features", loader, self)
        self.job.failed.connect(self.failed)
        # Re-rendering the grid for another channel count needs no model: a task of its own
        # (a newer count cancels an older one that has not started).
        self.grid_task = TaskController("inspect-grid", self)
        self.image_path: str | None = None
        self.layers: list = []  #: the model's LayerInfo list, as shown
        self.maps = None  #: the FeatureMaps shown
        self._preferred = (None, -1)  # the layer chosen before another model loaded (name, row)

        self.layer_list = QListWidget()
        self.layer_list.setMinimumWidth(210)
        self.layer_list.setMaximumWidth(260)
        self.layer_list.currentRowChanged.connect(self._on_layer_changed)
        self.channel_count = QSpinBox()
        self.channel_count.setRange(1, 512)
        self.channel_count.setValue(36)
        self.channel_count.setPrefix("show ")
        self.channel_count.setSuffix(" channels")
        self.channel_count.valueChanged.connect(self._on_channel_count_changed)
        self.previous_layer = QPushButton("↑ Earlier layer")
        self.previous_layer.clicked.connect(lambda: self.step_layer(-1))
        self.next_layer = QPushButton("Deeper layer ↓")
        self.next_layer.clicked.connect(lambda: self.step_layer(1))
        self.busy = BusyIndicator()
        self.job.show_progress_in(self.busy, "Computing the feature maps")
        self.grid_view = GridView()
        self.grid_view.channel_clicked.connect(self.show_channel)
        self.channel_view = ImageView("Click a channel to see it large", CHANNEL_SIZE)
        self.caption = QLabel()
        self.caption.setWordWrap(True)
        controls = QHBoxLayout()
        controls.addWidget(self.previous_layer)
        controls.addWidget(self.next_layer)
        controls.addWidget(self.channel_count)
        controls.addWidget(self.busy, 1)
        right = QVBoxLayout()
        right.addWidget(self.channel_view)
        right.addWidget(self.caption)
        right.addStretch()
        grid = QHBoxLayout()
        grid.addWidget(self.grid_view, 1)
        grid.addLayout(right)
        column = QVBoxLayout()
        column.addLayout(controls)
        column.addLayout(grid, 1)
        layout = QHBoxLayout(self)
        layout.addWidget(self.layer_list)
        layout.addLayout(column, 1)

    # -- inputs ---------------------------------------------------------------------------------
    def set_layers(self, layers: list) -> None:
        """The stages of a newly loaded model; keeps the chosen layer where the new model has
        it (else the same row), and computes its maps."""
        name, row = self._chosen_layer()
        names = [layer.name for layer in layers]
        self.layers = layers
        self.layer_list.blockSignals(True)
        self.layer_list.clear()
        for layer in layers:
            c, h, w = layer.shape
            self.layer_list.addItem(QListWidgetItem(f"{layer.name:<9} {layer.kind:<5} {c}×{h}×{w}"))
        if name in names:
            row = names.index(name)
        self.layer_list.setCurrentRow(row if 0 <= row < len(layers) else 0)
        self.layer_list.blockSignals(False)
        self.compute()

    def set_image(self, path: str | None) -> None:
        """Look at ``path``: the maps of another image are cleared, those of this one
        computed."""
        if path != self.image_path:
            self.clear_result()
        self.image_path = path
        self.compute()

    def model_changed(self) -> None:
        """Another model is loading: its layers are not these, nor its maps."""
        self._preferred = self._chosen_layer()
        self.layers = []
        self.layer_list.clear()
        self.clear_result()

    def clear_result(self) -> None:
        """Cancel the pass under way and show no maps, as at the start."""
        self.job.cancel()  # a pass asked for before is not shown
        self.maps = None  # a grid rendered for the maps cleared is not shown either
        self.grid_view.reset()
        self.channel_view.reset()
        self.caption.setText("")

    def _chosen_layer(self) -> tuple[str | None, int]:
        row = self.layer_list.currentRow()
        if 0 <= row < len(self.layers):
            return self.layers[row].name, row
        return self._preferred

    def step_layer(self, delta: int) -> None:
        """Go ``delta`` layers deeper (negative: earlier)."""
        row = self.layer_list.currentRow() + delta
        if 0 <= row < self.layer_list.count():
            self.layer_list.setCurrentRow(row)

    # -- work -----------------------------------------------------------------------------------
    @Slot(int)
    def _on_layer_changed(self, _row: int) -> None:
        self.compute()

    def compute(self) -> None:
        """The maps of the chosen layer for the image (the newest request wins)."""
        row = self.layer_list.currentRow()
        if self.image_path is None or not 0 <= row < len(self.layers):
            return
        layer, image_path = self.layers[row].name, self.image_path
        grid = self._grid_settings()

        def compute(model, emit, control):
            from ...core.feature_maps import feature_maps

            maps = feature_maps(model, model.load_image(image_path), layer)
            return maps, render_grid(maps, *grid)

        self.job.request(compute, self._show_maps)

    def _grid_settings(self) -> tuple[int, int, int, float]:
        """(channels, cell, gap, pixel ratio): the grid as the view wants it now."""
        ratio = self.grid_view.devicePixelRatioF()
        return (self.channel_count.value(), round(CELL * ratio), max(1, round(GAP * ratio)),
                ratio)

    # -- results --------------------------------------------------------------------------------
    def _show_maps(self, result) -> None:
        self.maps, grid = result
        self.grid_view.current = 0
        self._show_grid(grid)
        self.show_channel(0)
        count, cell, gap, ratio = self._grid_settings()
        if (min(count, len(self.maps.maps)), cell, gap, ratio) != tuple(grid[2:]):
            self._on_channel_count_changed()  # the count changed while the maps were computed

    @Slot()
    def _on_channel_count_changed(self) -> None:
        """Render the grid again in the background: hundreds of channels take a few tenths of
        a second."""
        if self.maps is None:
            return
        maps, settings = self.maps, self._grid_settings()

        def show(grid) -> None:
            if maps is self.maps:  # not a grid of the maps of a layer or image shown before
                self._show_grid(grid)

        self.grid_task.start(lambda emit, control: render_grid(maps, *settings),
                             on_succeeded=show)

    def _show_grid(self, grid) -> None:
        image, columns, count, cell, gap, ratio = grid
        self.grid_view.show_grid(image, columns, count, cell, gap, ratio)

    @Slot(int)
    def show_channel(self, i: int) -> None:
        """Channel ``i`` (in order of mean activation) large, with what it is."""
        if self.maps is None or not 0 <= i < len(self.maps.maps):
            return
        ratio = self.channel_view.devicePixelRatioF()
        image = self.maps.channel_image(i, round(CHANNEL_SIZE * ratio))
        self.channel_view.show_array(image)
        c, h, w = self.maps.maps.shape
        self.caption.setText(
            f"<b>{self.maps.layer}</b>, channel {int(self.maps.channels[i])} "
            f"(#{i + 1} by mean activation, {self.maps.means[i]:.3f}); {c} channels of "
            f"{h}×{w}. Early layers respond to edges and colours, deeper ones to parts.")


def render_grid(maps, count: int, cell: int, gap: int, ratio: float) -> tuple:
    """The ``count`` strongest channels of ``maps`` as a grid image, with how it is laid out:
    (image, columns, count, cell, gap, ratio). Runs in a worker thread."""
    count = max(1, min(count, len(maps.maps)))
    return maps.grid(count, cell, gap), math.ceil(math.sqrt(count)), count, cell, gap, ratio
