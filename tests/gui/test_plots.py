"""The Train step's live plots: numbers on the loss axis at any range, a legend that covers no
curve, a running batch-loss curve that moves before the first epoch ends and stays bounded for
hours, zoom, hover values, and colours from the desktop's palette."""

import math

import pyqtgraph as pg
import pytest
from PySide6.QtCore import QPointF, QRect
from PySide6.QtGui import QColor, QImage, QPainter, QPalette
from PySide6.QtWidgets import QApplication

from tlgui.core import events as ev
from tlgui.gui.plots import CurvesView, GrowingSeries, MetricPlot, log_ticks, tick_label


def drawn_tick_labels(axis) -> list[str]:
    """The tick labels the axis paints now (what a screenshot would show)."""
    image = QImage(10, 10, QImage.Format.Format_ARGB32)
    painter = QPainter(image)
    try:
        _, _, texts = axis.generateDrawSpecs(painter)
    finally:
        painter.end()
    return [text for _, _, text in texts]


def shown(qtbot, widget, width=600, height=360):
    qtbot.addWidget(widget)
    widget.resize(width, height)
    widget.show()
    qtbot.waitExposed(widget)
    QApplication.processEvents()
    return widget


@pytest.mark.parametrize("low, high", [(0.0101, 0.0103), (0.69314, 0.69316), (0.2, 0.25),
                                       (0.001, 3.0), (1e-6, 10.0)])
def test_the_loss_axis_labels_at_least_two_values_in_any_range(qtbot, low, high):
    plot = shown(qtbot, MetricPlot("Loss", "loss", percent=False))
    plot.reset(["model"], epochs=3)
    for epoch, value in enumerate((low, (low + high) / 2, high), 1):
        plot.add_point("model", "val", epoch, value)
    plot.setYRange(math.log10(low), math.log10(high), padding=0)
    QApplication.processEvents()
    labels = drawn_tick_labels(plot.getAxis("left"))
    values = [float(text) for text in labels]  # numbers, not 10⁻² or a scale factor
    assert len(values) >= 2
    assert all(low * (1 - 1e-9) <= v <= high * (1 + 1e-9) for v in values)
    assert len(set(labels)) == len(labels)


def test_narrow_ticks_are_round_values_labelled_alike():
    values, decimals = log_ticks(0.0101, 0.0103, 60)
    assert [tick_label(v, decimals) for v in values] == ["0.0101", "0.0103"]
    values, decimals = log_ticks(0.001, 10.0, 300)
    assert [tick_label(v, decimals) for v in values] == ["0.001", "0.01", "0.1", "1", "10"]


def test_the_loss_axis_label_never_carries_a_scale_factor(qtbot):
    plot = shown(qtbot, MetricPlot("Loss", "loss", percent=False))
    plot.reset(["model"], epochs=3)
    for epoch, value in enumerate((0.0012, 0.0011, 0.0010), 1):
        plot.add_point("model", "val", epoch, value)
    plot.setYRange(math.log10(0.001), math.log10(0.0012), padding=0)
    QApplication.processEvents()
    axis = plot.getAxis("left")
    assert "loss" in axis.labelString() and "(x" not in axis.labelString()
    assert axis.autoSIPrefixScale == 1.0


def test_the_legend_is_under_the_plots_not_over_the_curves(qtbot):
    view = shown(qtbot, CurvesView(), 1000, 480)
    view.reset(["with_dropout", "without_dropout"], epochs=10)
    QApplication.processEvents()
    for plot in (view.accuracy, view.loss):
        assert not [item for item in plot.scene().items() if isinstance(item, pg.LegendItem)]
        box = plot.getViewBox().sceneBoundingRect().toRect()
        box_in_view = QRect(plot.mapTo(view, plot.mapFromScene(box.topLeft())), box.size())
        legend = QRect(view.legend.mapTo(view, view.legend.rect().topLeft()),
                       view.legend.size())
        assert not legend.intersects(box_in_view)
    assert view.legend.labels() == ["with dropout", "without dropout", "validation",
                                    "train (eval mode)", "running training loss"]
    assert view.legend.isVisible() and view.legend.height() > 0


def test_the_batch_loss_moves_before_the_first_epoch_ends(qtbot):
    from tlgui.gui.training_pane import TrainingPane

    pane = shown(qtbot, TrainingPane(), 1100, 700)
    pane.on_training_started(ev.TrainingStarted(
        runs=("with_dropout", "without_dropout"), dropouts=(0.5, 0.0), epochs=3, start_epoch=0,
        train_size=40, val_size=10, device="cpu", trainable_params=10, frozen_params=0,
        feature_cache=False))
    pane.on_batch_finished(ev.BatchFinished(
        epoch=1, epochs=3, batch=2, batches=10,
        losses={"with_dropout": 0.9, "without_dropout": 0.8}, eta_seconds=30))
    loss = pane.curves.loss
    qtbot.waitUntil(lambda: len(loss.batch_points("with_dropout")[0]) == 1, timeout=2000)
    xs, ys = loss.batch_points("without_dropout")
    assert list(xs) == [pytest.approx(0.2)] and list(ys) == [pytest.approx(0.8)]
    (x0, x1), _ = loss.getViewBox().viewRange()
    assert x0 <= 0.2 <= x1  # in view: the x axis starts at epoch 0


def test_the_batch_curves_redraw_on_a_timer_not_per_batch(qtbot):
    plot = shown(qtbot, MetricPlot("Loss", "loss", percent=False))
    plot.reset(["model"], epochs=2)
    for batch in range(1, 51):
        plot.add_batch("model", 1, batch, 50, 1.0 / batch)
    assert len(plot.batch_points("model")[0]) == 0  # nothing handed to the plot yet
    qtbot.waitUntil(lambda: len(plot.batch_points("model")[0]) == 50, timeout=2000)
    curve = plot._curves[("model", "batch")]
    assert curve.opts["clipToView"] and curve.opts["autoDownsample"]
    assert curve.opts["downsampleMethod"] == "peak"


def test_a_running_series_grows_by_doubling_and_stays_bounded():
    series = GrowingSeries(max_points=1000, capacity=16)
    for i in range(17):
        series.append(i, 1.0)
    assert series.capacity == 32 and len(series) == 17
    for i in range(17, 100_000):
        series.append(i, 1.0)
    xs, _ = series.data()
    assert len(series) <= 1000 and series.capacity == 1000
    assert xs[0] == 0 and xs[-1] >= 100_000 - series.stride
    steps = set((xs[1:] - xs[:-1]).tolist())
    assert steps == {series.stride}  # evenly spread over the whole run
    assert series.stride == 128


def test_hovering_shows_the_run_epoch_and_value_of_the_nearest_point(qtbot):
    view = shown(qtbot, CurvesView(), 1000, 480)
    view.reset(["with_dropout", "without_dropout"], epochs=5)
    for epoch, (acc, loss) in enumerate(((0.5, 1.2), (0.6, 0.9), (0.75, 0.7)), 1):
        view.add_epoch(ev.EpochFinished(
            run="without_dropout", epoch=epoch, epochs=5, train_loss=1.0, train_acc=0.4,
            val_loss=loss, val_acc=acc, lr=1e-3, seconds=1.0, eta_seconds=1.0, improved=True,
            train_loss_eval=loss / 2, train_acc_eval=acc + 0.1))
    view.add_batch(ev.BatchFinished(epoch=4, epochs=5, batch=3, batches=4,
                                    losses={"with_dropout": 2.5}))
    view.loss.redraw_batches()
    QApplication.processEvents()

    def hover(plot, x, y):
        scene_pos = plot.getViewBox().mapViewToScene(QPointF(x, y))
        plot.scene().sigMouseMoved.emit(scene_pos + QPointF(3, -2))  # near, not on it
        return plot.hover_label.toPlainText() if plot.hover_label.isVisible() else ""

    assert hover(view.accuracy, 3, 75) == "without dropout · validation\nepoch 3: 75.0%"
    assert hover(view.accuracy, 2, 70) == "without dropout · train (eval mode)\nepoch 2: 70.0%"
    assert hover(view.loss, 2, math.log10(0.9)) == "without dropout · validation\nepoch 2: 0.9"
    assert hover(view.loss, 3.75, math.log10(2.5)) == (
        "with dropout · running training loss\nepoch 4, batch 3 of 4: 2.5")
    assert hover(view.accuracy, 4.5, 10) == ""  # nothing near: the label goes
    view.add_epoch(ev.EpochFinished(  # no validation images: nan is never the nearest
        run="with_dropout", epoch=1, epochs=5, train_loss=1.0, train_acc=0.4,
        val_loss=math.nan, val_acc=math.nan, lr=1e-3, seconds=1.0, eta_seconds=1.0,
        improved=True, train_loss_eval=0.0, train_acc_eval=0.5))
    assert hover(view.loss, 2, math.log10(0.9)) == "without dropout · validation\nepoch 2: 0.9"


def test_zoom_is_allowed_and_reset_view_returns_to_the_whole_training(qtbot):
    view = shown(qtbot, CurvesView(), 1000, 480)
    view.reset(["model"], epochs=8)
    for plot in (view.accuracy, view.loss):
        assert plot.getViewBox().state["mouseEnabled"] == [True, True]
    view.accuracy.getViewBox().setRange(xRange=(2, 3), yRange=(40, 50), padding=0)
    view.reset_button.click()
    (x0, x1), (y0, y1) = view.accuracy.getViewBox().viewRange()
    assert x0 <= 0 and x1 >= 8 and y0 <= 0 and y1 >= 100

    class DoubleClick:  # what pyqtgraph's scene reports for a double-click
        accepted = False

        def double(self):
            return True

        def accept(self):
            self.accepted = True

    view.accuracy.getViewBox().setRange(xRange=(2, 3), yRange=(40, 50), padding=0)
    click = DoubleClick()
    view.accuracy.scene().sigMouseClicked.emit(click)
    (x0, x1), (y0, y1) = view.accuracy.getViewBox().viewRange()
    assert click.accepted and x0 <= 0 and x1 >= 8 and y0 <= 0 and y1 >= 100


def test_plot_colours_follow_a_dark_palette(qtbot):
    view = CurvesView()
    dark = QPalette(view.palette())
    dark.setColor(QPalette.ColorRole.Base, QColor("#202124"))
    dark.setColor(QPalette.ColorRole.Text, QColor("#e8eaed"))
    view.setPalette(dark)
    shown(qtbot, view)
    for plot in (view.accuracy, view.loss):
        assert plot.backgroundBrush().color().name() == "#202124"
        assert plot.getAxis("left").textPen().color().name() == "#e8eaed"


def test_the_train_step_fits_a_window_1000_pixels_wide(qtbot):
    """The sidebar takes 150 px of it; the legend must not widen the step beyond the rest."""
    from tlgui.gui.training_pane import TrainingPane

    pane = shown(qtbot, TrainingPane(), 830, 700)
    pane.on_training_started(ev.TrainingStarted(
        runs=("with_dropout", "without_dropout"), dropouts=(0.5, 0.0), epochs=3, start_epoch=0,
        train_size=40, val_size=10, device="cpu", trainable_params=10, frozen_params=0,
        feature_cache=False))
    QApplication.processEvents()
    assert pane.minimumSizeHint().width() <= 1000 - 150 - 20
    assert pane.width() == 830


def test_the_train_step_warning_colour_follows_a_dark_palette(qtbot):
    from tlgui.gui.training_pane import TrainingPane

    pane = TrainingPane()
    qtbot.addWidget(pane)
    assert "#b00020" in pane.problem.styleSheet()  # dark red on a light window
    dark = QPalette(pane.palette())
    dark.setColor(QPalette.ColorRole.Window, QColor("#202124"))
    pane.setPalette(dark)
    assert "#ff6b6b" in pane.problem.styleSheet()  # light red on a dark one


def test_many_epochs_at_once_are_drawn_once(qtbot, monkeypatch):
    """A run followed from its folder brings hundreds of epochs in one go: each curve is
    handed its points once, when the window is free again, not once per epoch."""
    view = shown(qtbot, CurvesView())
    view.reset(["model"], epochs=300)
    curve = view.accuracy._curves[("model", "val")]
    calls = []
    original = curve.setData
    monkeypatch.setattr(curve, "setData", lambda *a, **k: (calls.append(1), original(*a, **k)))
    for epoch in range(1, 301):
        view.add_epoch(ev.EpochFinished(
            run="model", epoch=epoch, epochs=300, train_loss=1.0, train_acc=0.4,
            val_loss=0.5, val_acc=epoch / 300, lr=1e-3, seconds=1.0, eta_seconds=1.0,
            improved=True, train_loss_eval=0.5, train_acc_eval=0.5))
    assert calls == []  # not yet: later in this turn of the event loop
    qtbot.waitUntil(lambda: calls == [1], timeout=2_000)
    assert list(curve.xData) == list(range(1, 301)) and curve.yData[-1] == 100
    assert view.accuracy.points("model", "val")[0] == list(range(1, 301))
