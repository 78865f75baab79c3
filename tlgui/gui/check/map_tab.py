"""The Map tab: every image a dot placed by its features, coloured by class, beside the same
images as a fine-tuned model sees them. Hovering a dot shows the image, a click opens it; the
audit's findings are ringed. The maths is in :mod:`tlgui.core.data_map`."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QFileSystemWatcher, QSize, Qt, QUrl, Signal
from PySide6.QtGui import QDesktopServices, QImageReader, QPixmap
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from ...core.data_map import PALETTE
from ...core.progress import Progress
from ..busy import BusyIndicator
from ..workers import TaskController

#: Said of an image under the pointer that the fine-tuned model gets wrong.
WRONG = " · the fine-tuned model gets it wrong"
#: Side of the image shown for the dot under the pointer, in pixels.
PREVIEW = 160


class MapPlot(pg.PlotWidget):
    """One map: a dot per image; hovering one shows its image, a click opens it."""

    hovered = Signal(str, str)  #: path, what to say about it ("" and "" when none)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setMenuEnabled(False)
        self.hideAxis("left")
        self.hideAxis("bottom")
        self.setAspectLocked(True)
        self.scatter = pg.ScatterPlotItem(size=7, pen=None, hoverable=True,
                                          hoverSize=12, hoverPen=pg.mkPen("k", width=1.5))
        self.rings = pg.ScatterPlotItem(size=14, pen=pg.mkPen("k", width=1.5), brush=None)
        self.crosses = pg.ScatterPlotItem(size=9, symbol="x", pen=None, brush=pg.mkBrush("k"))
        self.addItem(self.scatter)
        self.addItem(self.rings)
        self.addItem(self.crosses)
        self.setToolTip("Each dot is an image, placed by its features. \"Next to their own "
                        "class\": the share of images whose nearest dot is of their class.")
        self.scatter.sigHovered.connect(self._on_hovered)
        self.scatter.sigClicked.connect(self._on_clicked)
        self.points = np.zeros((0, 2))
        self.paths: list[str] = []
        self.texts: list[str] = []

    def show_map(self, title: str, points: np.ndarray, labels: np.ndarray,
                 paths: list[str], classes: list[str], marked: set[str],
                 wrong: set[str] = frozenset()) -> None:
        """``marked`` paths are ringed (audit findings), ``wrong`` ones crossed (mistakes)."""
        self.setTitle(title)
        self.points = np.asarray(points)
        self.paths = list(paths)
        self.texts = [classes[int(k)] for k in labels]
        brushes = [pg.mkBrush(PALETTE[int(k) % len(PALETTE)]) for k in labels]
        self.scatter.setData(pos=points, brush=brushes, data=np.arange(len(points)))
        ringed = [i for i, p in enumerate(self.paths) if p in marked]
        self.rings.setData(pos=points[ringed] if ringed else np.zeros((0, 2)))
        self.cross(wrong)
        self.autoRange()

    def cross(self, wrong: set[str]) -> None:
        """Cross the points of ``wrong`` paths (and no others)."""
        crossed = [i for i, p in enumerate(self.paths) if p in wrong]
        self.crosses.setData(pos=self.points[crossed] if crossed else np.zeros((0, 2)))
        self.texts = [text.removesuffix(WRONG) for text in self.texts]
        for i in crossed:
            self.texts[i] += WRONG

    def clear_map(self) -> None:
        self.setTitle("")
        self.points, self.paths, self.texts = np.zeros((0, 2)), [], []
        self.scatter.clear()
        self.rings.clear()
        self.crosses.clear()

    def _on_hovered(self, item, points, event) -> None:
        if len(points):
            i = int(points[0].data())
            self.hovered.emit(self.paths[i], self.texts[i])
        else:
            self.hovered.emit("", "")

    def _on_clicked(self, item, points, event) -> None:
        if len(points):
            QDesktopServices.openUrl(QUrl.fromLocalFile(self.paths[int(points[0].data())]))


class MapTab(QWidget):
    """Draws maps in the background: the backbone's, and a fine-tuned model's beside it."""

    message = Signal(str)
    error = Signal(str, str)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.worker = TaskController("map", self)
        self.busy = BusyIndicator()
        self.busy.attach(self.worker, "Drawing the map")
        self.method = QComboBox()
        self.method.addItem("t-SNE (clearer, takes longer)", "tsne")
        self.method.addItem("PCA (at once)", "pca")
        self.after = QComboBox()
        self.after.setToolTip("Beside the backbone's map, the same images through a model "
                              "trained on them: its classes should stand further apart")
        self.after.addItem("No trained model", None)
        self.follow = QCheckBox("Follow the training")
        self.follow.setToolTip("While a training runs, draw its best model so far beside the "
                               "backbone's map each time it improves")
        self.draw_button = QPushButton("Draw Map")
        self.draw_button.setToolTip("Place every image by its features (Ctrl+Shift+M)")
        self.draw_button.setShortcut("Ctrl+Shift+M")
        self.before_plot = MapPlot()
        self.after_plot = MapPlot()
        self.after_plot.setVisible(False)
        self.preview = QLabel("Hover over a dot to see its image; click to open it.")
        self.preview.setWordWrap(True)
        self.preview.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignHCenter)
        self.preview.setFixedWidth(PREVIEW + 20)
        self.legend = QLabel()
        self.legend.setWordWrap(True)
        for plot in (self.before_plot, self.after_plot):
            plot.hovered.connect(self._show_preview)
        self.marked: set[str] = set()
        self.classes: list[str] = []
        self._drawn: dict | None = None  #: what the maps shown were drawn from
        self._followed: Path | None = None  #: the running training's best.pt
        self._followed_time = 0  #: its modification time when last drawn
        self.watcher = QFileSystemWatcher(self)
        self.watcher.directoryChanged.connect(lambda _folder: self._follow_update())

        controls = QHBoxLayout()
        controls.addWidget(QLabel("Method:"))
        controls.addWidget(self.method)
        controls.addWidget(QLabel("Beside it:"))
        controls.addWidget(self.after, 1)
        controls.addWidget(self.follow)
        controls.addWidget(self.draw_button)
        plots = QHBoxLayout()
        plots.addWidget(self.before_plot, 1)
        plots.addWidget(self.after_plot, 1)
        side = QVBoxLayout()
        side.addWidget(self.preview)
        side.addWidget(self.legend)
        side.addStretch()
        plots.addLayout(side)
        layout = QVBoxLayout(self)
        layout.addLayout(controls)
        layout.addWidget(self.busy)
        layout.addLayout(plots, 1)

    def set_checkpoints(self, checkpoints: dict[str, str]) -> None:
        """Trained models to offer beside the backbone's map (label -> best.pt)."""
        current = self.after.currentData()
        self.after.blockSignals(True)
        self.after.clear()
        self.after.addItem("No trained model", None)
        for label, path in checkpoints.items():
            self.after.addItem(label, path)
        index = self.after.findData(current)
        self.after.setCurrentIndex(max(index, 0))
        self.after.blockSignals(False)

    def draw(self, report, backbone: str, weights: str, image_size: int | None,
             device: str, seed: int = 0) -> None:
        """Compute and show the maps of ``report``'s images (training and validation)."""
        if report is None:
            self.message.emit("no data to map: open image folders on the Data step")
            return
        self._drawn = {"report": report, "backbone": backbone, "weights": weights,
                       "image_size": image_size, "device": device, "seed": seed,
                       "method": self.method.currentData()}
        self.classes = list(report.classes)
        self._start(self.after.currentData(), backbone_map=True)

    def _start(self, checkpoint: str | None, backbone_map: bool) -> None:
        d = self._drawn
        report = d["report"]
        label = (f"{d['backbone']} ({'ImageNet' if d['weights'] == 'imagenet' else 'random'} "
                 f"weights)")

        def task(emit, control):
            from ...core.data_map import data_maps

            return data_maps([it.path for it in report.items],
                             np.array([it.label for it in report.items]), report.classes,
                             d["backbone"], d["weights"], d["image_size"], d["method"],
                             checkpoint=checkpoint, titles=(label, "fine-tuned"),
                             backbone_map=backbone_map, device=d["device"], seed=d["seed"],
                             progress=lambda stage, done, t: emit(Progress(done, t, stage)),
                             cancel=control)

        shown = self.show_maps if backbone_map else self.show_fine_tuned
        self.worker.start(task, on_succeeded=shown, on_failed=self.error.emit,
                          on_cancelled=lambda: self.message.emit("map cancelled"))

    # -- following a training ----------------------------------------------------------------
    def follow_run(self, run_folder: str | Path) -> None:
        """A training writes ``run_folder``: with *Follow the training* on, its best model is
        drawn beside the backbone's map each time its ``best.pt`` is written."""
        if self.watcher.directories():
            self.watcher.removePaths(self.watcher.directories())
        self._followed = Path(run_folder) / "best.pt"
        self._followed_time = 0
        self._watch()

    def _watch(self) -> None:
        """Watch the run's folder, or the training's folder until the run's appears (it is
        only read: a run followed from elsewhere may be on a share that is not ours)."""
        folder = self._followed.parent
        for watched in (folder.parent, folder):
            if watched.is_dir() and str(watched) not in self.watcher.directories():
                self.watcher.addPath(str(watched))

    def stop_following(self) -> None:
        self._follow_update()  # the last best.pt, if it came after the last drawing
        self._followed = None
        if self.watcher.directories():
            self.watcher.removePaths(self.watcher.directories())

    def _follow_update(self) -> None:
        best = self._followed
        if best is not None:
            self._watch()  # the run's folder may have appeared
        if (best is None or not self.follow.isChecked() or self._drawn is None
                or not self.isVisible() or self.worker.is_running()):
            return
        try:
            modified = best.stat().st_mtime_ns
        except OSError:
            return  # not written yet
        if modified != self._followed_time:
            self._followed_time = modified
            self._start(str(best), backbone_map=False)

    def showEvent(self, event) -> None:
        super().showEvent(event)
        self._follow_update()  # what the training improved while the map was not shown

    def show_fine_tuned(self, maps) -> None:
        """Show a fine-tuned model's map beside the backbone's map already shown."""
        (one,) = maps
        wrong = {one.paths[i] for i in one.mistakes}
        self._show_one(self.after_plot, one, wrong)
        self.after_plot.setVisible(True)
        self.before_plot.cross(wrong)
        self._show_legend(wrong, len(one.points))
        self.message.emit(f"map drawn: {one.title}")
        self._follow_update()  # written again while this one was drawn

    def show_maps(self, maps) -> None:
        """Show :class:`~tlgui.core.data_map.DataMap` s: the backbone's, and a fine-tuned
        model's beside it (whose mistakes are crossed on both)."""
        wrong = {maps[-1].paths[i] for i in maps[-1].mistakes} if len(maps) > 1 else set()
        for plot, one in zip((self.before_plot, self.after_plot), maps):
            self._show_one(plot, one, wrong)
        self.after_plot.setVisible(len(maps) > 1)
        if len(maps) < 2:
            self.after_plot.clear_map()
        self._show_legend(wrong, len(maps[-1].points) if len(maps) > 1 else None)
        lines = [f"{one.title}: {one.separation * 100:.0f} %" for one in maps
                 if one.separation is not None]
        self.message.emit("map drawn: " + ", ".join(lines))

    def _show_one(self, plot: MapPlot, one, wrong: set[str]) -> None:
        near = (f" · {one.separation * 100:.0f} % next to their own class"
                if one.separation is not None else "")
        plot.show_map(f"{one.title}<br>{len(one.points):,} images{near}", one.points,
                      one.labels, one.paths, self.classes, self.marked, wrong)

    def _show_legend(self, wrong: set[str], fine_tuned_points: int | None) -> None:
        swatches = "".join(f"<span style='color:{PALETTE[k % len(PALETTE)]}'>●</span> "
                           f"{name}<br>" for k, name in enumerate(self.classes))
        if self.marked:
            swatches += "<br>◯ an audit finding"
        if fine_tuned_points is not None:
            swatches += (f"<br>✕ the fine-tuned model's mistakes: {len(wrong):,} of "
                         f"{fine_tuned_points:,}")
        self.legend.setText(swatches)

    def set_marked(self, paths: set[str]) -> None:
        """Images to ring on the maps (the audit's findings)."""
        self.marked = set(paths)

    def _show_preview(self, path: str, text: str) -> None:
        if not path:
            return
        reader = QImageReader(path)
        reader.setAutoTransform(True)
        size = reader.size()
        if size.isValid():
            size.scale(QSize(PREVIEW, PREVIEW), Qt.AspectRatioMode.KeepAspectRatio)
            reader.setScaledSize(size)
        image = reader.read()
        self.preview.setPixmap(QPixmap.fromImage(image) if not image.isNull() else QPixmap())
        self.preview.setToolTip(f"{path}\n{text}")
        self.message.emit(f"{text}: {path}")

    def shutdown(self) -> None:
        self.worker.shutdown()
