"""Live training curves: accuracy and loss per epoch, for the run with dropout and without.

Each run has one colour everywhere (with dropout: blue, without: orange); training curves are
dashed, validation curves solid, so the over-fitting gap of the run without dropout — the
space between its dashed and solid orange lines — shows at a glance.

The training curves show accuracy and loss measured after each epoch in evaluation mode
(dropout off), like the validation curves: measured while dropout is active they would read
low and hide the gap. The legend says so.

Before the first epoch ends the loss plot already moves: a thin, light curve per run follows
the training loss reported with each batch (the mean so far in the epoch, dropout active).
Training may run for hours, so these curves live in numpy buffers that grow by doubling and
thin themselves out beyond :data:`MAX_BATCH_POINTS`, and the plot redraws them on a timer, a
few times a second, instead of once per batch.

The legend sits in a row of its own under both plots, never over a curve. The mouse wheel
zooms, dragging pans, a double-click (or *Reset view*) returns to the whole training, and the
pointer shows the value of the nearest point.
"""

from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QEvent, QPointF, Qt, QTimer
from PySide6.QtGui import QColor, QPainter, QPalette, QPen, QPixmap
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

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
SPLIT_LABELS = {"val": "validation", "train": "train (eval mode)",
                "batch": "running training loss"}
#: The most points a running batch-loss curve keeps; beyond it every other point is dropped
#: and only every second new one is kept, so hours of training hold a bounded amount.
MAX_BATCH_POINTS = 100_000
#: How often the running curves are redrawn (ms): smooth enough to watch, cheap at any rate
#: of batches.
REDRAW_INTERVAL_MS = 100
#: The pointer shows a point's value when it is within this many pixels of it.
HOVER_RADIUS_PX = 12
#: Vertical pixels per labelled tick the loss axis aims for.
_PIXELS_PER_TICK = 45
_MIN_TICK_GAP_PX = 16


def train_curve_note(measured: int, total: int) -> str:
    """What the dashed curves show: ``measured`` of the ``total`` training images."""
    images = (f"all {total} training images" if measured >= total else
              f"a fixed sample of {measured} of the {total} training images")
    return (f"Dashed lines, train (eval mode): {images}, measured after each epoch with "
            f"dropout off, like the validation images (solid lines).")

pg.setConfigOptions(antialias=True, useOpenGL=False, background="w", foreground="#333")


# -- a log axis that always has numbers ------------------------------------------------------
def log_ticks(low: float, high: float, pixels: float) -> tuple[list[float], int | None]:
    """Tick values (in data units) for a logarithmic axis showing ``low``–``high`` over
    ``pixels``, and the number of decimals that labels them alike (None: label each value on
    its own).

    Always at least two ticks inside the range, whatever its width: decades and their 2× and
    5× multiples over wide ranges, evenly spaced round values over ranges narrower than that
    (0.0101–0.0103 gets 0.0101, 0.0102, 0.0103)."""
    if not (math.isfinite(low) and math.isfinite(high)) or low <= 0 or high <= low:
        return [], None
    pixels = max(pixels, 1.0)
    span = math.log10(high) - math.log10(low)
    most = max(2, int(pixels // _PIXELS_PER_TICK))

    def fits(values: list[float]) -> bool:
        if len(values) > most:
            return False
        logs = np.log10(values)
        return len(values) < 2 or np.min(np.diff(logs)) / span * pixels >= _MIN_TICK_GAP_PX

    first, last = math.floor(math.log10(low)), math.ceil(math.log10(high))
    sets = [[v for v in (m * 10.0 ** e for e in range(first, last + 1) for m in mantissas)
             if low <= v <= high]
            for mantissas in ((1,), (1, 2, 5), (1, 2, 3, 4, 5, 6, 7, 8, 9))]
    fitting = [values for values in sets if len(values) >= 2 and fits(values)]
    for values in fitting:  # the sparsest set with three labels or more …
        if len(values) >= 3:
            return values, None
    if fitting:  # … else the densest with two
        return fitting[-1], None
    decades = sets[0]
    if len(decades) > most:  # very many decades: every n-th
        return decades[::math.ceil(len(decades) / most)], None
    # Narrower than a few of those: round, evenly spaced values. The smallest step whose
    # ticks do not crowd near the top of the range (where a log axis squeezes them).
    step = 10.0 ** math.floor(math.log10(high - low)) / 100
    previous = step
    while True:
        for factor in (1, 2, 5):
            trial = step * factor
            values = _multiples(low, high, trial)
            if len(values) < 2:  # a larger step gives fewer still: two of the last step's
                two = _multiples(low, high, previous)
                return [two[0], two[-1]], _decimals(previous)
            if fits(values):
                return values, _decimals(trial)
            previous = trial
        step *= 10


def _multiples(low: float, high: float, step: float) -> list[float]:
    """The multiples of ``step`` from ``low`` to ``high``."""
    start = math.ceil(low / step - 1e-9)
    values = [(start + i) * step for i in range(int((high - low) / step) + 2)]
    return [v for v in values if low - step * 1e-6 <= v <= high + step * 1e-6]


def _decimals(step: float) -> int:
    return max(0, math.ceil(-math.log10(step) - 1e-9))


def tick_label(value: float, decimals: int | None = None) -> str:
    """A tick's text: ``0.0102`` with the decimals given, else as few as the value needs
    (``0.5``, ``20``, ``1e-05``)."""
    if decimals is not None:
        return f"{value:.{decimals}f}"
    if value != 0 and (abs(value) < 1e-4 or abs(value) >= 1e5):
        return f"{value:.3g}"
    return f"{value:.6f}".rstrip("0").rstrip(".")


class LogAxis(pg.AxisItem):
    """A value axis in log mode that labels at least two values over any range, with the
    values themselves (``0.0102``, not ``10⁻²``) and never a scale factor in its label."""

    def __init__(self, orientation: str = "left", **kwargs):
        super().__init__(orientation, **kwargs)
        self.enableAutoSIPrefix(False)
        self._decimals: int | None = None

    def tickValues(self, minVal, maxVal, size):  # noqa: N802, N803 (pyqtgraph's names)
        if not self.logMode:
            return super().tickValues(minVal, maxVal, size)
        low, high = sorted((minVal, maxVal))
        values, self._decimals = log_ticks(10.0 ** low, 10.0 ** high, size)
        # One level only: pyqtgraph always labels its first level, and may drop the others.
        return [(None, [math.log10(v) for v in values])]

    def tickStrings(self, values, scale, spacing):  # noqa: N802 (pyqtgraph's name)
        if not self.logMode:
            return super().tickStrings(values, scale, spacing)
        return [tick_label(10.0 ** v, self._decimals) for v in values]


# -- a running curve for hours of batches ----------------------------------------------------
class GrowingSeries:
    """x, y points in numpy buffers that double as they fill. Beyond ``max_points`` it keeps
    every other stored point and from then on only every second new one (then every fourth,
    …), so its memory stays bounded and the points stay evenly spread over the whole run."""

    def __init__(self, max_points: int = MAX_BATCH_POINTS, capacity: int = 1024):
        if max_points < 2:
            raise ValueError("max_points must be at least 2")
        self.max_points = max_points
        capacity = min(capacity, max_points)
        self._x = np.empty(capacity)
        self._y = np.empty(capacity)
        self._count = 0
        self._offered = 0  #: points appended so far, kept or not
        self.stride = 1  #: one point kept for every ``stride`` appended

    def __len__(self) -> int:
        return self._count

    @property
    def capacity(self) -> int:
        return len(self._x)

    def append(self, x: float, y: float) -> None:
        offered = self._offered
        self._offered += 1
        if offered % self.stride:
            return
        if self._count == self.capacity:
            if self.capacity < self.max_points:
                self._grow(min(self.max_points, 2 * self.capacity))
            else:
                self._thin_out()
        self._x[self._count] = x
        self._y[self._count] = y
        self._count += 1

    def data(self) -> tuple[np.ndarray, np.ndarray]:
        """The kept points (views: valid until the next append)."""
        return self._x[:self._count], self._y[:self._count]

    def clear(self) -> None:
        self.__init__(self.max_points)

    def _grow(self, capacity: int) -> None:
        # New arrays, not resized ones: a plot may still hold views of the old ones.
        for name in ("_x", "_y"):
            grown = np.empty(capacity)
            grown[:self._count] = getattr(self, name)[:self._count]
            setattr(self, name, grown)

    def _thin_out(self) -> None:
        kept = (self._count + 1) // 2
        for name in ("_x", "_y"):
            thinned = np.empty(self.capacity)
            thinned[:kept] = getattr(self, name)[:self._count:2]
            setattr(self, name, thinned)
        self._count = kept
        self.stride *= 2


# -- colours that follow the desktop's palette -----------------------------------------------
def _palette_colours(widget: QWidget) -> tuple[QColor, QColor]:
    """(background, text) of ``widget``'s palette: a dark desktop theme gives dark plots."""
    palette = widget.palette()
    return (palette.color(QPalette.ColorRole.Base), palette.color(QPalette.ColorRole.Text))


def _pen(run: str, split: str, colour: QColor | str | None = None) -> QPen:
    """The line of one curve: the run's colour (or ``colour``), the split's style."""
    colour = colour if colour is not None else RUN_COLOURS.get(run, "#2ca02c")
    if split == "batch":
        light = QColor(colour)
        light.setAlpha(110)
        return pg.mkPen(light, width=1)
    style = Qt.PenStyle.SolidLine if split == "val" else Qt.PenStyle.DashLine
    return pg.mkPen(colour, width=2.5 if split == "val" else 2, style=style)


class PalettePlot(pg.PlotWidget):
    """A plot whose background, axes, title and legend take their colours from the widget's
    palette, again whenever it changes (a switch between light and dark themes)."""

    def __init__(self, title: str, axis_labels: dict[str, str], parent=None, **kwargs):
        super().__init__(parent=parent, **kwargs)
        self._title = title
        self._axis_labels = dict(axis_labels)  #: side ("left", "bottom") -> label
        self._follows_palette = False

    def follow_palette(self) -> None:
        """Colour the plot from its palette now and at every palette change (call it once the
        subclass has made what :meth:`_apply_palette` colours)."""
        self._follows_palette = True
        self._apply_palette()

    def changeEvent(self, event) -> None:  # noqa: N802 (Qt's name)
        super().changeEvent(event)
        # Qt reports a palette change from inside the base constructor, before the axes exist.
        if event.type() == QEvent.Type.PaletteChange and getattr(self, "_follows_palette",
                                                                 False):
            self._apply_palette()

    def _apply_palette(self) -> tuple[QColor, QColor]:
        """Colour the plot from the palette; returns (background, text)."""
        background, text = _palette_colours(self)
        self.setBackground(background)
        for side, label in self._axis_labels.items():
            axis = self.getAxis(side)
            axis.setPen(text)
            axis.setTextPen(text)
            axis.setLabel(label, color=text.name())
        self.setTitle(self._title, size="11pt", color=text.name())
        legend = self.getPlotItem().legend
        if legend is not None:
            legend.setLabelTextColor(text)
            legend_background = QColor(background)
            legend_background.setAlpha(200)  # the curves beneath still show a little
            legend.setBrush(pg.mkBrush(legend_background))
        return background, text


class MetricPlot(PalettePlot):
    """One metric (accuracy or loss) over epochs: a train and a validation curve per run, and
    for the loss a running curve of each run's training batches."""

    def __init__(self, title: str, metric: str, percent: bool, parent=None):
        axis = {} if percent else {"left": LogAxis("left")}
        super().__init__(title, {"bottom": "epoch",
                                 "left": f"{title.lower()}{' (%)' if percent else ''}"},
                         parent=parent, axisItems=axis)
        self.metric = metric
        self.percent = percent
        for side in ("left", "bottom"):
            self.getAxis(side).enableAutoSIPrefix(False)
        self.showGrid(x=True, y=True, alpha=0.25)
        self.setMenuEnabled(False)
        if percent:
            self.setYRange(0, 100, padding=0.02)
        else:
            # Losses span orders of magnitude early in training; a log axis keeps them legible.
            self.setLogMode(y=True)
        self.epochs = 10
        self.batches = 0  #: batches per epoch of the running curves (for their hover text)
        self._curves: dict[tuple[str, str], pg.PlotDataItem] = {}  #: those of the runs shown
        self._made: dict[tuple[str, str], pg.PlotDataItem] = {}  #: every curve made so far
        self._data: dict[tuple[str, str], tuple[list, list]] = {}
        self._series: dict[str, GrowingSeries] = {}
        self._dirty: set[str] = set()
        self._prepared: tuple | None = None  #: (runs, epochs) of the last reset
        self._redraw = QTimer(self)
        self._redraw.setSingleShot(True)
        self._redraw.setInterval(REDRAW_INTERVAL_MS)
        self._redraw.timeout.connect(self.redraw_batches)
        # Epoch points are handed to their curves once per turn of the event loop: a run
        # followed from its folder brings hundreds of epochs at once, and a plot item redrawn
        # for each took seconds.
        self._dirty_points: set[tuple[str, str]] = set()
        self._redraw_points = QTimer(self)
        self._redraw_points.setSingleShot(True)
        self._redraw_points.setInterval(0)
        self._redraw_points.timeout.connect(self.redraw_points)
        self.hover_label = pg.TextItem(anchor=(0, 1))
        self.hover_label.setZValue(100)
        self.hover_label.hide()
        self.addItem(self.hover_label, ignoreBounds=True)
        self.scene().sigMouseMoved.connect(self._on_mouse_moved)
        self.scene().sigMouseClicked.connect(self._on_mouse_clicked)
        self.follow_palette()

    # -- curves ------------------------------------------------------------------------------
    def reset(self, runs, epochs: int = 10) -> None:
        """Clear the plot and prepare curves for ``runs`` over ``epochs`` epochs."""
        if self._prepared == (tuple(runs), max(1, epochs)) and self.is_empty():
            self.reset_view()  # as asked already (a start, then the trainer's first event)
            return
        self._prepared = (tuple(runs), max(1, epochs))
        for curve in self._curves.values():
            curve.setData([], [])
            curve.hide()  # hidden curves count for neither the view's range nor the pointer
        self._curves.clear()
        self._data.clear()
        self._series.clear()
        self._dirty.clear()
        self._redraw.stop()
        self._dirty_points.clear()
        self._redraw_points.stop()
        self.hover_label.hide()
        self.epochs = max(1, epochs)
        self.batches = 0
        for run in runs:
            for split in self._splits():
                curve = self._curve(run, split)
                curve.show()
                self._curves[(run, split)] = curve
                if split == "batch":
                    self._series[run] = GrowingSeries()
                else:
                    self._data[(run, split)] = ([], [])
        # Whole epochs only on the x axis, at most about ten labels.
        step = max(1, math.ceil(self.epochs / 10))
        self.getAxis("bottom").setTickSpacing(major=step, minor=step)
        self.reset_view()

    def _splits(self) -> tuple[str, ...]:
        """The curves each run has: the running one under the epoch curves (loss only)."""
        return ("val", "train") if self.percent else ("batch", "val", "train")

    def make_curves(self, runs) -> None:
        """Make the (hidden) curves of ``runs`` now rather than at a training's start, where
        the few milliseconds each costs would add up to a pause while the step is drawn."""
        for run in runs:
            for split in self._splits():
                self._curve(run, split)

    def _curve(self, run: str, split: str) -> pg.PlotDataItem:
        """The curve of ``run``'s ``split``, made once and kept from then on (hidden while
        its run is not shown)."""
        curve = self._made.get((run, split))
        if curve is not None:
            return curve
        if split == "batch":
            # Thousands of thin segments: antialiasing them costs tens of ms a paint.
            curve = self.plot([], [], pen=_pen(run, "batch"), antialias=False)
            curve.setClipToView(True)
            curve.setDownsampling(auto=True, method="peak")
            curve.setZValue(-1)  # under the epoch curves
        else:
            colour = RUN_COLOURS.get(run, "#2ca02c")
            curve = self.plot([], [], pen=_pen(run, split),
                              symbol="o" if split == "val" else None, symbolSize=6,
                              symbolBrush=colour, symbolPen=None)
        curve.hide()
        self._made[(run, split)] = curve
        return curve

    def is_empty(self) -> bool:
        """True while no curve has a point."""
        return (not any(xs for xs, _ in self._data.values())
                and not any(len(series) for series in self._series.values()))

    def reset_view(self) -> None:
        """Show the whole training again after a zoom: every epoch, and every value."""
        # Epoch 0 is the start: the running curves of the first epoch lie between 0 and 1.
        self.setXRange(0, max(1, self.epochs), padding=0.05)
        if self.percent:
            self.setYRange(0, 100, padding=0.02)
        else:
            self.enableAutoRange(axis="y")

    def add_point(self, run: str, split: str, epoch: int, value: float) -> None:
        key = (run, split)
        if key not in self._data:
            return
        xs, ys = self._data[key]
        xs.append(epoch)
        ys.append(value * 100 if self.percent else value)
        self._dirty_points.add(key)
        if not self._redraw_points.isActive():
            self._redraw_points.start()

    def redraw_points(self) -> None:
        """Hand the epoch curves that changed to their plot items."""
        for key in self._dirty_points:
            if key in self._curves:
                self._curves[key].setData(*self._data[key])
        self._dirty_points.clear()

    def points(self, run: str, split: str) -> tuple[list, list]:
        """The (epochs, values) shown for one curve (for tests and summaries)."""
        return self._data.get((run, split), ([], []))

    def add_batch(self, run: str, epoch: int, batch: int, batches: int, value: float) -> None:
        """Add the training loss of ``run`` after ``batch`` of ``batches`` in ``epoch``; the
        curve is redrawn within :data:`REDRAW_INTERVAL_MS`."""
        series = self._series.get(run)
        if series is None or not (value > 0 and math.isfinite(value)):
            return  # no running curve here, or nothing a log axis can show
        self.batches = batches
        series.append(epoch - 1 + batch / batches, value)
        self._dirty.add(run)
        if not self._redraw.isActive():
            self._redraw.start()

    def batch_points(self, run: str) -> tuple[np.ndarray, np.ndarray]:
        """The running curve of ``run`` as drawn: (fractional epochs, losses)."""
        curve = self._curves.get((run, "batch"))
        if curve is None or curve.xData is None:
            return np.empty(0), np.empty(0)
        return curve.xData, curve.yData

    def batch_series(self, run: str) -> GrowingSeries | None:
        return self._series.get(run)

    def redraw_batches(self) -> None:
        """Hand the running curves that changed to their plot items."""
        for run in self._dirty:
            self._curves[(run, "batch")].setData(*self._series[run].data())
        self._dirty.clear()

    # -- hover and double-click --------------------------------------------------------------
    def hover_text(self, scene_pos: QPointF) -> tuple[str, QPointF | None]:
        """What the pointer at ``scene_pos`` shows: the nearest point's run, epoch and value
        within :data:`HOVER_RADIUS_PX`, and where that point is (view coordinates); ``""`` and
        None when no point is that close."""
        box = self.getViewBox()
        if not box.sceneBoundingRect().contains(scene_pos):
            return "", None
        at = box.mapSceneToView(scene_pos)
        px, py = box.viewPixelSize()
        if not (px > 0 and py > 0):
            return "", None
        best = (HOVER_RADIUS_PX ** 2, None, -1)
        for (run, split), curve in self._curves.items():
            if not curve.isVisible():
                continue
            if split == "batch":
                xs, ys = self._series[run].data()
                # Only the points near the pointer's x: the series is ordered by x.
                lo = np.searchsorted(xs, at.x() - HOVER_RADIUS_PX * px)
                hi = np.searchsorted(xs, at.x() + HOVER_RADIUS_PX * px, side="right")
                xs, ys = xs[lo:hi], ys[lo:hi]
                offset = lo
            else:
                xs, ys = (np.asarray(v, dtype=float) for v in self._data[(run, split)])
                offset = 0
            if not len(xs):
                continue
            with np.errstate(all="ignore"):  # a missing value (nan) is never the nearest
                view_y = np.log10(ys) if not self.percent else ys
                d2 = ((xs - at.x()) / px) ** 2 + ((view_y - at.y()) / py) ** 2
            d2 = np.where(np.isfinite(d2), d2, np.inf)
            i = int(np.argmin(d2))
            if d2[i] < best[0]:
                best = (float(d2[i]), (run, split), offset + i)
        _, key, index = best
        if key is None:
            return "", None
        run, split = key
        name = RUN_LABELS.get(run, run)
        if split == "batch":
            xs, ys = self._series[run].data()
            x, value = float(xs[index]), float(ys[index])
            epoch = max(1, math.ceil(x - 1e-9))
            batch = round((x - (epoch - 1)) * self.batches)
            where = f"epoch {epoch}, batch {batch} of {self.batches}"
        else:
            xs, ys = self._data[key]
            x, value = float(xs[index]), float(ys[index])
            where = f"epoch {int(x)}"
        what = SPLIT_LABELS[split]
        shown = f"{value:.1f}%" if self.percent else f"{value:.4g}"
        point = QPointF(x, math.log10(value) if not self.percent else value)
        return f"{name} · {what}\n{where}: {shown}", point

    def _on_mouse_moved(self, scene_pos) -> None:
        text, point = self.hover_text(QPointF(scene_pos))
        if not text:
            self.hover_label.hide()
            return
        self.hover_label.setText(text)
        self.hover_label.setPos(point)
        # Left of the point in the right half of the view, so the text stays inside it.
        (x0, x1), _ = self.getViewBox().viewRange()
        self.hover_label.setAnchor((1, 1) if point.x() > (x0 + x1) / 2 else (0, 1))
        self.hover_label.show()

    def _on_mouse_clicked(self, event) -> None:
        if event.double():
            self.reset_view()
            event.accept()

    def leaveEvent(self, event) -> None:  # noqa: N802 (Qt's name)
        self.hover_label.hide()
        super().leaveEvent(event)

    # -- palette -----------------------------------------------------------------------------
    def _apply_palette(self) -> tuple[QColor, QColor]:
        background, text = super()._apply_palette()
        self.hover_label.setColor(text)
        self.hover_label.fill = pg.mkBrush(background)
        self.hover_label.border = pg.mkPen(text)
        return background, text


class LegendRow(QWidget):
    """The legend of both plots, in two lines of its own under them: each run's colour, then
    each kind of curve's line style (solid with dots: validation; dashed: training in eval
    mode; thin: the running training loss). ``trailing`` (a button, say) ends the first
    line, where it widens nothing."""

    def __init__(self, trailing: QWidget | None = None, parent=None):
        super().__init__(parent)
        self._trailing = trailing
        self._shown: tuple | None = None
        self._layout = QVBoxLayout(self)
        self._layout.setContentsMargins(4, 0, 4, 0)
        self._layout.setSpacing(2)
        self._labels: list[str] = []
        self.setToolTip("Running training loss: the mean loss of the epoch so far, measured "
                        "while the run trains (dropout active)")

    def set_runs(self, runs, splits=("val", "train", "batch")) -> None:
        if self._shown == (tuple(runs), tuple(splits)):
            return
        self._shown = (tuple(runs), tuple(splits))
        while self._layout.count():
            row = self._layout.takeAt(0).layout()
            while row is not None and row.count():
                widget = row.takeAt(0).widget()
                if widget is not None and widget is not self._trailing:
                    widget.deleteLater()
        self._labels = []
        if not runs:
            if self._trailing is not None:
                row = QHBoxLayout()
                row.addStretch(1)
                row.addWidget(self._trailing)
                self._layout.addLayout(row)
            return
        text_colour = self.palette().color(QPalette.ColorRole.WindowText)
        entries = [[(pg.mkPen(RUN_COLOURS.get(run, "#2ca02c"), width=3), False,
                     f"<b>{RUN_LABELS.get(run, run)}</b>", RUN_LABELS.get(run, run))
                    for run in runs],
                   [(_pen("", split, text_colour), split == "val", SPLIT_LABELS[split],
                     SPLIT_LABELS[split]) for split in splits]]
        for number, line in enumerate(entries):
            row = QHBoxLayout()
            row.setSpacing(4)
            for pen, symbol, text, plain in line:
                sample = QLabel()
                sample.setPixmap(_line_sample(pen, symbol))
                row.addWidget(sample)
                row.addWidget(QLabel(text))
                row.addSpacing(12)
                self._labels.append(plain)
            row.addStretch(1)
            if number == 0 and self._trailing is not None:
                row.addWidget(self._trailing)
            self._layout.addLayout(row)

    def labels(self) -> list[str]:
        """The entries shown: the runs, then the kinds of curve."""
        return list(self._labels)


def _line_sample(pen: QPen, symbol: bool) -> QPixmap:
    pixmap = QPixmap(30, 12)
    pixmap.fill(Qt.GlobalColor.transparent)
    painter = QPainter(pixmap)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    sample = QPen(pen)
    sample.setCosmetic(True)
    painter.setPen(sample)
    painter.drawLine(1, 6, 29, 6)
    if symbol:
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(pen.color())
        painter.drawEllipse(QPointF(15, 6), 3, 3)
    painter.end()
    return pixmap


class CurvesView(QWidget):
    """Accuracy and loss side by side, their legend and *Reset view* under them."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.accuracy = MetricPlot("Accuracy", "acc", percent=True)
        self.loss = MetricPlot("Loss", "loss", percent=False)
        self.reset_button = QPushButton("Reset view")
        self.reset_button.setToolTip("The mouse wheel zooms a plot and dragging moves it; "
                                     "this (or a double-click on the plot) shows the whole "
                                     "training again")
        self.reset_button.clicked.connect(self.reset_view)
        self.legend = LegendRow(trailing=self.reset_button)
        self.legend.set_runs([])
        for plot in (self.accuracy, self.loss):
            plot.make_curves(RUN_COLOURS)
        plots = QHBoxLayout()
        plots.addWidget(self.accuracy, 3)
        plots.addWidget(self.loss, 2)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(plots, 1)
        layout.addWidget(self.legend)

    def reset(self, runs, epochs: int = 10) -> None:
        self.accuracy.reset(runs, epochs)
        self.loss.reset(runs, epochs)
        self.legend.set_runs(runs)

    def clear(self) -> None:
        """No curves at all (a new data set: the old curves describe another one)."""
        self.reset([], self.accuracy.epochs)

    def reset_view(self) -> None:
        self.accuracy.reset_view()
        self.loss.reset_view()

    def add_epoch(self, event) -> None:
        """Add an :class:`~tlgui.core.events.EpochFinished` record to both plots: training
        accuracy and loss in evaluation mode, like validation."""
        self.accuracy.add_point(event.run, "train", event.epoch, event.train_acc_eval)
        self.accuracy.add_point(event.run, "val", event.epoch, event.val_acc)
        self.loss.add_point(event.run, "train", event.epoch, event.train_loss_eval)
        self.loss.add_point(event.run, "val", event.epoch, event.val_loss)

    def add_batch(self, event) -> None:
        """Add a :class:`~tlgui.core.events.BatchFinished` record's running training losses
        to the loss plot."""
        for run, loss in event.losses.items():
            self.loss.add_batch(run, event.epoch, event.batch, event.batches, loss)
