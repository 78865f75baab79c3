"""The Runs tab: every run on the list, one row per variant, newest first, and the validation
curves of the selected rows overlaid."""

from __future__ import annotations

import math
import os

import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QPushButton,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from ...core.project import RunRecord
from ..plots import RUN_LABELS, PalettePlot
from .preview import hint_label

#: Curve colours of the overlay, one per selected row (categorical, readable on light and dark).
CURVE_COLOURS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
                 "#7f7f7f", "#bcbd22", "#17becf"]

HEADERS = ["Run", "Data set", "Model", "Weights", "Strategy", "Epochs", "Variant", "Dropout",
           "Best validation", "Test", "Status"]

#: The share of the tab's height the runs table gets (the curves get the rest).
TABLE_SHARE = 0.6


def run_rows(runs: list[RunRecord]) -> list[tuple[RunRecord, str, dict]]:
    """One row per variant of each run, in the order of ``runs``."""
    return [(run, variant, info) for run in runs for variant, info in run.variants.items()]


class RunsTab(QWidget):
    """The runs table and the overlay of the selected rows' validation accuracy."""

    remove_requested = Signal(list)  #: paths of the runs the user takes off the list

    def __init__(self, parent=None):
        super().__init__(parent)
        self.runs: list[RunRecord] = []
        table = QTableWidget(0, len(HEADERS))
        table.setHorizontalHeaderLabels(HEADERS)
        table.verticalHeader().setVisible(False)
        table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        table.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        table.setWordWrap(False)
        header = table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setStretchLastSection(True)
        table.itemSelectionChanged.connect(self._overlay_selected)
        self.table = table

        # Its background, axes, title and legend follow the palette, as on the Train step.
        self.overlay = PalettePlot("Validation accuracy of the selected runs",
                                   {"bottom": "epoch", "left": "validation accuracy (%)"})
        self.overlay.showGrid(x=True, y=True, alpha=0.25)
        self.overlay.setYRange(0, 100)
        self.overlay.setMenuEnabled(False)
        self.overlay_legend = self.overlay.addLegend(offset=(-10, -10), labelTextSize="9pt")
        self.overlay.follow_palette()

        self.remove_button = QPushButton("Remove from List")
        self.remove_button.setToolTip("The run folders stay on disk; Open Run Folder… brings a "
                                      "run back.")
        self.remove_button.clicked.connect(self._remove_selected)
        hint_row = QHBoxLayout()
        hint_row.addWidget(hint_label("Select two or more rows (Ctrl- or Shift-click) to overlay "
                                      "their curves."), 1)
        hint_row.addWidget(self.remove_button)
        self.splitter = QSplitter(Qt.Orientation.Vertical)
        self.splitter.addWidget(table)
        self.splitter.addWidget(self.overlay)
        # The table first: a dozen runs should be visible without dragging the splitter.
        self.splitter.setStretchFactor(0, 3)
        self.splitter.setStretchFactor(1, 2)
        self.splitter.setChildrenCollapsible(False)
        layout = QVBoxLayout(self)
        layout.addLayout(hint_row)
        layout.addWidget(self.splitter, 1)

    def set_runs(self, runs: list[RunRecord]) -> None:
        """Show ``runs`` in the order given, one row per variant."""
        self.runs = list(runs)
        rows = run_rows(self.runs)
        self.table.setRowCount(len(rows))
        for r, (run, variant, info) in enumerate(rows):
            best, test = info.get("best_val_acc"), info.get("test_acc")
            weights = run.weights if run.weights in ("imagenet", "none") else os.path.basename(
                run.weights)
            cells = [run.name, run.data_set, run.model, weights, run.strategy, str(run.epochs),
                     RUN_LABELS.get(variant, variant), f"{info.get('dropout', 0):.2f}",
                     f"{best:.1%}" if best is not None else "–",
                     f"{test:.1%}" if test is not None else "–", run.status]
            for c, text in enumerate(cells):
                item = QTableWidgetItem(text)
                item.setData(Qt.ItemDataRole.UserRole, (run.path, variant))
                if c == 1:
                    item.setToolTip("\n".join(run.data))
                elif c == 0:
                    item.setToolTip(run.path)
                self.table.setItem(r, c, item)
        self._overlay_selected()

    def selected(self) -> list[tuple[str, str]]:
        """(run path, variant) of each selected row, in table order."""
        rows = sorted(i.row() for i in self.table.selectionModel().selectedRows())
        return [self.table.item(r, 0).data(Qt.ItemDataRole.UserRole) for r in rows]

    def _remove_selected(self) -> None:
        chosen = list(dict.fromkeys(path for path, _ in self.selected()))
        if chosen:
            self.remove_requested.emit(chosen)

    def resizeEvent(self, event) -> None:  # noqa: N802 - Qt's name
        super().resizeEvent(event)
        if not getattr(self, "_sized", False) and self.splitter.height() > 0:
            # Once, when the tab first gets its size: later the user's dragging wins.
            self._sized = True
            height = self.splitter.height()
            self.splitter.setSizes([int(height * TABLE_SHARE), int(height * (1 - TABLE_SHARE))])

    @Slot()
    def _overlay_selected(self) -> None:
        self.overlay.clear()
        self.overlay_legend.clear()
        runs = {r.path: r for r in self.runs}
        most = 2
        for n, (path, variant) in enumerate(self.selected()):
            run = runs.get(path)
            if run is None or variant not in run.variants:
                continue
            history = run.variants[variant]["history"]
            xs = [h["epoch"] for h in history]
            ys = [h["val_acc"] * 100 for h in history]
            most = max([most] + xs)
            colour = CURVE_COLOURS[n % len(CURVE_COLOURS)]
            self.overlay.plot(xs, ys, pen=pg.mkPen(colour, width=2.5), symbol="o", symbolSize=5,
                              symbolBrush=colour, symbolPen=None,
                              name=f"{run.name} · {RUN_LABELS.get(variant, variant)}")
        # Whole epochs only on the x axis, at most about ten labels, as on the Train step.
        step = max(1, math.ceil(most / 10))
        self.overlay.getAxis("bottom").setTickSpacing(major=step, minor=step)
        self.overlay.setXRange(1, most, padding=0.03)
