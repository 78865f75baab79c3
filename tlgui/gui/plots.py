"""Live training curves: accuracy and loss per epoch, for the run with dropout and without.

Each run has one colour everywhere (with dropout: blue, without: orange); training curves are
dashed, validation curves solid, so the over-fitting gap of the run without dropout — the
space between its dashed and solid orange lines — shows at a glance.

The training curves show accuracy and loss measured after each epoch in evaluation mode
(dropout off), like the validation curves: measured while dropout is active they would read
low and hide the gap. The legend says so.
"""

from __future__ import annotations

import math

import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QHBoxLayout, QWidget

RUN_COLOURS = {
    "with_dropout": "#1f77b4",
    "without_dropout": "#ff7f0e",
    "model": "#1f77b4",
}
RUN_LABELS = {
    "with_dropout": "with dropout",
    "without_dropout": "without dropout",
    "model": "model",
}
SPLIT_LABELS = {"val": "validation", "train": "train (eval mode)"}


def train_curve_note(measured: int, total: int) -> str:
    """What the dashed curves show: ``measured`` of the ``total`` training images."""
    images = (f"all {total} training images" if measured >= total else
              f"a fixed sample of {measured} of the {total} training images")
    return (f"Dashed lines, train (eval mode): {images}, measured after each epoch with "
            f"dropout off, like the validation images (solid lines).")

pg.setConfigOptions(antialias=True, useOpenGL=False, background="w", foreground="#333")


class MetricPlot(pg.PlotWidget):
    """One metric (accuracy or loss) over epochs: a train and a validation curve per run."""

    def __init__(self, title: str, metric: str, percent: bool, parent=None):
        super().__init__(parent=parent)
        self.metric = metric
        self.percent = percent
        self.setTitle(title, size="11pt")
        self.setLabel("bottom", "epoch")
        self.setLabel("left", f"{title.lower()}{' (%)' if percent else ''}")
        self.showGrid(x=True, y=True, alpha=0.25)
        self.setMouseEnabled(x=False, y=False)
        self.setMenuEnabled(False)
        if percent:
            self.setYRange(0, 100, padding=0.02)
        else:
            # Losses span orders of magnitude early in training; a log axis keeps them legible.
            self.setLogMode(y=True)
        # Accuracy climbs towards the top right and loss falls from the top left, so the
        # legends sit where the curves rarely are.
        self.legend = self.addLegend(offset=(-10, -10) if percent else (-10, 10),
                                     labelTextSize="9pt")
        self._curves: dict[tuple[str, str], pg.PlotDataItem] = {}
        self._data: dict[tuple[str, str], tuple[list, list]] = {}

    def reset(self, runs, epochs: int = 10) -> None:
        """Clear the plot and prepare curves for ``runs`` over ``epochs`` epochs."""
        for curve in self._curves.values():
            self.removeItem(curve)
        self.legend.clear()
        self._curves.clear()
        self._data.clear()
        for run in runs:
            colour = RUN_COLOURS.get(run, "#2ca02c")
            for split, style in (("val", Qt.PenStyle.SolidLine), ("train", Qt.PenStyle.DashLine)):
                pen = pg.mkPen(colour, width=2.5 if split == "val" else 2, style=style)
                name = f"{RUN_LABELS.get(run, run)} · {SPLIT_LABELS[split]}"
                symbol = "o" if split == "val" else None
                curve = self.plot([], [], pen=pen, name=name, symbol=symbol, symbolSize=6,
                                  symbolBrush=colour, symbolPen=None)
                self._curves[(run, split)] = curve
                self._data[(run, split)] = ([], [])
        if self.percent:
            self.setYRange(0, 100, padding=0.02)
        # Whole epochs only on the x axis, at most about ten labels.
        step = max(1, math.ceil(epochs / 10))
        self.getAxis("bottom").setTickSpacing(major=step, minor=step)
        self.setXRange(1, max(2, epochs), padding=0.03)

    def add_point(self, run: str, split: str, epoch: int, value: float) -> None:
        key = (run, split)
        if key not in self._curves:
            return
        xs, ys = self._data[key]
        xs.append(epoch)
        ys.append(value * 100 if self.percent else value)
        self._curves[key].setData(xs, ys)

    def points(self, run: str, split: str) -> tuple[list, list]:
        """The (epochs, values) shown for one curve (for tests and summaries)."""
        return self._data.get((run, split), ([], []))


class CurvesView(QWidget):
    """Accuracy and loss side by side."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.accuracy = MetricPlot("Accuracy", "acc", percent=True)
        self.loss = MetricPlot("Loss", "loss", percent=False)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.accuracy, 3)
        layout.addWidget(self.loss, 2)

    def reset(self, runs, epochs: int = 10) -> None:
        self.accuracy.reset(runs, epochs)
        self.loss.reset(runs, epochs)

    def add_epoch(self, event) -> None:
        """Add an :class:`~tlgui.core.events.EpochFinished` record to both plots: training
        accuracy and loss in evaluation mode, like validation."""
        self.accuracy.add_point(event.run, "train", event.epoch, event.train_acc_eval)
        self.accuracy.add_point(event.run, "val", event.epoch, event.val_acc)
        self.loss.add_point(event.run, "train", event.epoch, event.train_loss_eval)
        self.loss.add_point(event.run, "val", event.epoch, event.val_loss)
