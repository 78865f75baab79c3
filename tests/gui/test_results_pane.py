"""The Results step on its own: kinds of jobs that never cancel each other, results labelled
with what was evaluated, runs newest first with their data set, a matrix keyboard users can
open, colours that follow the theme, and predictions that stay cheap at 100,000 images."""

import json
import os
import shutil
import threading
import time

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QPalette

from tests.gui.palettes import DARK, dark_palette
from tlgui.core.data import scan
from tlgui.core.predictions import Predictions, rows_csv
from tlgui.core.project import read_run
from tlgui.core.sample import ensure_sample_data
from tlgui.core.training import TrainConfig, Trainer
from tlgui.gui.pane import Pane
from tlgui.gui.results import ResultsPane
from tlgui.gui.results.matrix_view import contrast_ratio


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny trained pair (with and without dropout) with a test folder: (run folder, data)."""
    root = tmp_path_factory.mktemp("results_run")
    data = ensure_sample_data(root / "shapes", images_per_class=6)
    test = ensure_sample_data(root / "test", images_per_class=2, seed=5)
    config = TrainConfig(model="resnet18", weights="none", image_size=32, epochs=1, hidden=8,
                         workers=0, compare_dropout=True)
    Trainer(config, scan([str(data)], test_folder=str(test)), root / "run").run()
    return root / "run", data


@pytest.fixture
def pane(qtbot):
    pane = ResultsPane()
    qtbot.addWidget(pane, before_close_func=lambda widget: widget.shutdown())
    return pane


def copy_run(source, target, when: float, data_root=None):
    """A copy of a run folder written at ``when``, trained on ``data_root``'s classes if given."""
    shutil.copytree(source, target)
    config_file = target / "config.json"
    if data_root is not None:
        config = json.loads(config_file.read_text())
        config["data"] = [str(data_root / os.path.basename(f)) for f in config["data"]]
        config_file.write_text(json.dumps(config))
    os.utime(config_file, (when, when))
    return target


@pytest.fixture
def held(monkeypatch):
    """Evaluations wait in the worker until ``release`` is set (at the latest when the test
    ends, before its pane shuts down); ``asked`` records which images each was asked for."""
    import tlgui.core.evaluation as evaluation

    real = evaluation.evaluation_items
    release, asked = threading.Event(), []

    def waiting(run_dir, which, **kwargs):
        asked.append(which)
        assert release.wait(30), "the test never released the evaluation"
        return real(run_dir, which, **kwargs)

    monkeypatch.setattr(evaluation, "evaluation_items", waiting)
    yield release, asked
    release.set()


def test_a_prediction_never_cancels_a_running_evaluation(pane, trained, qtbot, held):
    run_dir, data = trained
    pane.set_runs([str(run_dir)])
    release, asked = held
    pane.evaluate()
    qtbot.waitUntil(lambda: asked == ["val"], timeout=10_000)
    pane.predict([str(data / "star")])  # as a drop on the Predict tab does
    qtbot.waitUntil(lambda: pane.predict_tab.table.row_count() == 6, timeout=30_000)
    release.set()
    qtbot.waitUntil(lambda: pane.evaluate_tab.evaluation is not None, timeout=30_000)
    assert "validation images" in pane.evaluate_tab.summary.text()


def test_the_result_is_labelled_with_the_images_evaluated_not_the_choice_now(
        pane, trained, qtbot, held):
    run_dir, _ = trained
    pane.set_runs([str(run_dir)])
    tab = pane.evaluate_tab
    release, asked = held
    tab.split_choice.setCurrentIndex(tab.split_choice.findData("test"))
    tab.evaluate_button.click()
    qtbot.waitUntil(lambda: asked == ["test"], timeout=10_000)
    tab.split_choice.setCurrentIndex(tab.split_choice.findData("val"))  # chosen meanwhile
    release.set()
    qtbot.waitUntil(lambda: tab.evaluation is not None, timeout=30_000)
    assert "on 8 test folder images" in tab.summary.text()  # 2 per class, 4 classes


def test_evaluation_shows_progress_and_cancel_stops_it(pane, trained, qtbot, held):
    run_dir, _ = trained
    pane.set_runs([str(run_dir)])
    tab = pane.evaluate_tab
    release, asked = held
    messages = []
    pane.message.connect(messages.append)
    tab.evaluate_button.click()
    qtbot.waitUntil(lambda: asked == ["val"], timeout=10_000)
    assert not tab.busy.isHidden() and not tab.evaluate_button.isEnabled()
    tab.busy.cancel_button.click()
    release.set()
    qtbot.waitUntil(lambda: not tab.worker.is_running(), timeout=30_000)
    assert tab.evaluation is None and messages == ["evaluation cancelled"]
    assert tab.evaluate_button.isEnabled() and tab.busy.isHidden()


def test_evaluation_and_prediction_run_on_the_device_chosen_for_training(
        pane, trained, qtbot, monkeypatch):
    import tlgui.core.evaluation as evaluation
    import tlgui.core.predictions as predictions

    run_dir, data = trained
    devices = []

    def recorded(real):
        def run(*args, device="cpu", **kwargs):
            devices.append(device)
            return real(*args, device="cpu", **kwargs)  # this machine has no such GPU
        return run

    monkeypatch.setattr(evaluation, "evaluate_run", recorded(evaluation.evaluate_run))
    monkeypatch.setattr(predictions, "predict_files", recorded(predictions.predict_files))
    pane.set_runs([str(run_dir)])
    pane.set_device("cuda:1")
    pane.evaluate()
    pane.predict([str(data / "circle")])
    qtbot.waitUntil(lambda: not pane.busy(), timeout=30_000)
    assert devices == ["cuda:1", "cuda:1"]
    assert pane.evaluate_tab.evaluation is not None and pane.predict_tab.predictions is not None


def test_runs_are_newest_first_with_their_data_set_and_the_newest_best_is_chosen(
        pane, trained, qtbot, tmp_path):
    run_dir, _ = trained
    flowers = ensure_sample_data(tmp_path / "flowers", images_per_class=2)
    older = copy_run(run_dir, tmp_path / "older", 1_600_000_000, data_root=flowers)
    newer = copy_run(run_dir, tmp_path / "newer", 1_700_000_000)
    chosen = []
    pane.checkpoint_changed.connect(chosen.append)

    pane.set_runs([str(older), str(newer)])  # as after a restart: oldest first on disk
    table = pane.runs_tab.table
    headers = [table.horizontalHeaderItem(c).text() for c in range(table.columnCount())]
    column = headers.index("Data set")
    assert [table.item(r, 0).text() for r in range(4)] == ["newer"] * 2 + ["older"] * 2
    assert [table.item(r, column).text() for r in range(4)] == ["shapes"] * 2 + ["flowers"] * 2
    assert str(flowers / "star") in table.item(2, column).toolTip()
    summary = json.loads((newer / "summary.json").read_text())["runs"]
    best = max(summary, key=lambda name: summary[name]["best_val_acc"])
    expected = str(newer / best / "best.pt")
    assert pane.checkpoint.currentData() == expected
    assert chosen == [expected]  # so that Look inside shows the same model


def test_the_data_set_of_a_run_is_the_folder_of_its_class_folders(tmp_path):
    run = read_run(copy_run_skeleton(tmp_path / "a", ["/photos/pets/cat", "/photos/pets/dog"]))
    assert run.data_set == "pets"
    run = read_run(copy_run_skeleton(tmp_path / "b", ["/x/2019/cat", "/y/new/dog", "/x/2019/cow"]))
    assert run.data_set == "2019, new"
    assert read_run(copy_run_skeleton(tmp_path / "c", [])).data_set == "–"


def copy_run_skeleton(folder, data):
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"model": "resnet18", "data": data}))
    return folder


def test_enough_runs_are_visible_without_dragging(pane, trained, qtbot, tmp_path):
    run_dir, _ = trained
    runs = [str(copy_run(run_dir, tmp_path / f"run{i}", 1_600_000_000 + i)) for i in range(6)]
    pane.set_runs(runs)
    pane.resize(1100, 720)  # the window's default size less its sidebar and footer
    pane.show()
    qtbot.waitExposed(pane)
    table = pane.runs_tab.table
    visible = table.viewport().height() // table.rowHeight(0)
    assert visible >= 9, f"only {visible} rows visible"


def test_the_pane_is_a_pane_and_keeps_its_runs_in_a_project(pane, trained, qtbot, tmp_path):
    run_dir, _ = trained
    assert isinstance(pane, Pane) and pane.title == "Results" and pane.hint
    problems = pane.apply_project_state({"runs": [str(run_dir), str(tmp_path / "gone")]})
    assert len(problems) == 1 and str(tmp_path / "gone") in problems[0]
    assert pane.project_state() == {"runs": [str(run_dir)]}
    with qtbot.waitSignal(pane.changed, timeout=1000):
        pane.runs_tab.table.selectRow(0)
        pane.runs_tab.remove_button.click()
    assert pane.project_state() == {"runs": []} and pane.checkpoint.count() == 0
    with qtbot.waitSignal(pane.changed, timeout=1000):
        pane.add_run(str(run_dir))
    started = time.monotonic()
    pane.shutdown()
    assert time.monotonic() - started < 5


def test_keyboard_users_open_a_matrix_cell(pane, trained, qtbot):
    run_dir, _ = trained
    pane.set_runs([str(run_dir)])
    tab = pane.evaluate_tab
    pane.tabs.setCurrentWidget(tab)
    pane.show()
    tab.evaluate()
    qtbot.waitUntil(lambda: tab.evaluation is not None, timeout=30_000)
    cm = tab.evaluation.matrix()
    t, p = divmod(int(cm.argmax()), len(cm))
    for key in (Qt.Key.Key_Return, Qt.Key.Key_Space):
        tab.cell_images.clear()
        tab.image_tabs.setCurrentIndex(0)
        tab.matrix.setFocus()
        tab.matrix.setCurrentCell(t, p)
        qtbot.keyClick(tab.matrix, key)
        assert tab.cell_images.row_count() == cm[t, p]
        assert tab.image_tabs.currentIndex() == 1
        classes = tab.evaluation.classes
        assert tab.cell_caption.text() == (f"{cm[t, p]} {classes[t]} images predicted as "
                                           f"{classes[p]}")


def test_the_sort_arrows_of_the_image_lists_agree_with_their_order(pane, trained, qtbot):
    run_dir, _ = trained
    pane.set_runs([str(run_dir)])
    tab = pane.evaluate_tab
    tab.evaluate()
    qtbot.waitUntil(lambda: tab.evaluation is not None, timeout=30_000)
    e = tab.evaluation
    tab.open_cell(0, 0)
    for table, expected in ((tab.mistakes, e.mistakes()), (tab.cell_images, e.cell(0, 0))):
        header = table.table.horizontalHeader()
        assert header.isSortIndicatorShown()
        assert table.model.headers[header.sortIndicatorSection() - 1] == "Confidence"
        assert header.sortIndicatorOrder() == Qt.SortOrder.DescendingOrder
        shown = [e.paths.index(path) for path in table.paths()]
        assert sorted(shown) == sorted(expected)
        confidences = [float(e.confidence[i]) for i in shown]
        assert confidences == sorted(confidences, reverse=True)


def test_the_overlay_of_the_runs_follows_a_dark_theme(pane, trained, qtbot):
    run_dir, _ = trained
    TEXT, BASE = DARK[QPalette.ColorRole.Text], DARK[QPalette.ColorRole.Base]
    pane.set_runs([str(run_dir)])
    overlay = pane.runs_tab.overlay
    assert overlay.backgroundBrush().color().lightness() > 128  # the default, light palette
    pane.setPalette(dark_palette())  # a theme switch while the window is open
    pane.runs_tab.table.selectAll()
    assert overlay.backgroundBrush().color().name() == BASE
    for side in ("left", "bottom"):
        axis = overlay.getAxis(side)
        assert axis.textPen().color().name() == TEXT
        assert axis.pen().color().name() == TEXT
        assert TEXT in axis.labelStyle.get("color", "")
    title = overlay.getPlotItem().titleLabel
    assert QColor(title.opts["color"]).name() == TEXT
    legend = pane.runs_tab.overlay_legend
    assert len(legend.items) == 2  # both variants of the run, named in light text
    assert all(label.opts["color"].name() == TEXT for _, label in legend.items)
    assert legend.brush().color().lightness() < 80


def test_matrix_and_panels_stay_readable_on_a_dark_theme(pane, trained, qtbot):
    run_dir, _ = trained
    pane.setPalette(dark_palette())
    pane.set_runs([str(run_dir)])
    tab = pane.evaluate_tab
    tab.evaluate()
    qtbot.waitUntil(lambda: tab.evaluation is not None, timeout=30_000)
    m = tab.matrix
    for r in range(m.rowCount()):
        for c in range(m.columnCount()):
            item = m.item(r, c)
            assert item.foreground().style() != Qt.BrushStyle.NoBrush
            ratio = contrast_ratio(item.foreground().color(), item.background().color())
            assert ratio >= 4.5, (r, c, item.background().color().name())
    # The empty cells blend from the dark table, not from white.
    empty = [m.item(r, c) for r in range(m.rowCount()) for c in range(m.columnCount())
             if m.item(r, c).text() == "0"]
    assert all(item.background().color().lightness() < 80 for item in empty)
    # The drop zone and the preview are painted in the theme's colours too.
    pane.resize(900, 600)
    pane.show()
    pane.tabs.setCurrentWidget(pane.predict_tab)
    for widget in (pane.predict_tab.drop_zone, pane.predict_tab.preview):
        image = widget.grab().toImage()
        inside = image.pixelColor(image.width() // 2, 6)
        assert inside.lightness() < 80, (type(widget).__name__, inside.name())


def test_a_hundred_thousand_predictions_reach_the_table_as_arrays(pane, qtbot, tmp_path):
    n = 100_000
    paths = [f"/photos/batch{i // 1000}/img{i:06d}.jpg" for i in range(n)]
    predicted = np.arange(n) % 3
    confidence = np.linspace(0.34, 1.0, n).astype(np.float32)
    predictions = Predictions(["cat", "cow", "dog"], paths, predicted, confidence)
    tab = pane.predict_tab
    from tlgui.gui.results.predict_tab import ClassifiedImages

    classified = ClassifiedImages.of(predictions)  # what the prediction task hands over
    started = time.perf_counter()
    tab.show_predictions(classified)
    took = time.perf_counter() - started
    assert tab.table.row_count() == n and tab.summary.text() == "100,000 images classified"
    assert tab.table.paths()[:2] == paths[:2] and tab.table.selected_path() == paths[0]
    # Far below the minutes a widget per row took; the table's own work is in numpy.
    assert took < 1.5, f"showing {n:,} predictions took {took:.2f} s"

    out = tmp_path / "predictions.csv"
    with qtbot.waitSignal(pane.predict_tab.message, timeout=30_000) as said:
        tab.save_csv(str(out))
    assert said.args == [f"saved {out}"]
    text = out.read_text()
    assert text.startswith("path,class,confidence,most_probable\n"
                           "/photos/batch0/img000000.jpg,cat,0.3400,cat\n")
    assert text == rows_csv(predictions)
    assert len(text.splitlines()) == n + 1


def test_results_name_the_model_that_made_them_not_the_one_chosen_since(pane, trained, qtbot,
                                                                         held):
    from pathlib import Path

    from tlgui.gui.plots import RUN_LABELS

    def label(checkpoint):
        return f"{run_dir.name} · {RUN_LABELS[Path(checkpoint).parent.name]}"

    run_dir, data = trained
    pane.set_runs([str(run_dir)])
    release, asked = held
    evaluated = pane.checkpoint.currentData()
    pane.evaluate()
    qtbot.waitUntil(lambda: asked == ["val"], timeout=10_000)
    pane.checkpoint.setCurrentIndex(1 - pane.checkpoint.currentIndex())  # chosen meanwhile
    chosen = pane.checkpoint.currentData()
    assert label(chosen) != label(evaluated)
    pane.predict([str(data / "star")])
    qtbot.waitUntil(lambda: pane.predictions is not None, timeout=30_000)
    assert pane.predict_tab.summary.text().startswith(
        f"6 images classified by {label(chosen)}")  # then how many are "not sure", if any
    release.set()
    qtbot.waitUntil(lambda: pane.evaluation is not None, timeout=30_000)
    assert f"Model: {label(evaluated)}." in pane.evaluate_tab.summary.text()


def test_the_confidence_tab_shows_the_calibration_and_keeps_a_threshold(pane, trained, qtbot,
                                                                       tmp_path):
    import shutil

    from tlgui.core.predictions import predict_files

    run_dir = tmp_path / "run"  # this test changes the model: a copy of the run
    shutil.copytree(trained[0], run_dir)
    pane.set_runs([str(run_dir)])
    tab = pane.evaluate_tab
    pane.tabs.setCurrentWidget(tab)
    pane.show()
    tab.evaluate()
    qtbot.waitUntil(lambda: tab.evaluation is not None, timeout=30_000)
    view = tab.calibration
    e = tab.evaluation
    stored = e.calibration["threshold"]
    assert view.threshold.value() == pytest.approx(stored * 100, abs=0.05)
    assert view.text.text().startswith(f"Expected calibration error on these {len(e.paths)} "
                                       f"validation images")
    assert not view.keep.isEnabled()  # nothing changed yet
    # Try a threshold above every confidence: all "not sure"
    view.threshold.setValue(100.0)
    assert f"{len(e.paths)} of {len(e.paths)} (100%); none is left." in view.text.text()
    assert view.plot.threshold_line.isVisible()
    view.threshold.setValue(0.0)
    assert 'No answer is "not sure"' in view.text.text()
    assert view.keep.isEnabled() == (stored > 0)
    view.threshold.setValue(99.0)
    assert view.keep.isEnabled()
    checkpoint = tab.shown.checkpoint
    with qtbot.waitSignal(view.threshold_saved, timeout=30_000):
        view.keep.click()
    assert not view.keep.isEnabled()  # kept: nothing to keep any more
    predictions = predict_files(checkpoint, e.paths[:4], workers=0)
    assert predictions.threshold == pytest.approx(0.99)
    assert e.calibration["threshold"] == pytest.approx(0.99)
    import json  # the run's summary says so too (the Train step shows its sentence)
    from pathlib import Path

    from tlgui.core.calibration import Calibration, describe

    def kept_calibration(d):
        return Calibration.from_dict({k: v for k, v in d.items() if k != "text"})

    variant = Path(checkpoint).parent.name
    kept = json.loads((run_dir / "summary.json").read_text())["runs"][variant]["calibration"]
    assert kept["threshold"] == pytest.approx(0.99)
    assert kept["text"] == describe(kept_calibration(kept))
