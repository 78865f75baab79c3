"""Results (runs, evaluation, predictions, export) and projects, driven as a user would."""

import csv
import json
import os
import shutil

from PySide6.QtWidgets import QFileDialog

from tlgui.core.sample import ensure_sample_data


def wait_idle(qtbot, pane):
    qtbot.waitUntil(lambda: not pane.busy(), timeout=60_000)


def test_runs_evaluation_predictions_and_export(make_window, train_tiny, qtbot, tmp_path,
                                                monkeypatch):
    window = make_window()
    data = ensure_sample_data(tmp_path / "shapes", images_per_class=10)
    train_tiny(window, data)
    pane = window.results_pane
    window.go_to(window.panes.index(pane))
    assert pane.runs_table.rowCount() == 2 and pane.checkpoint.count() == 2
    summary = json.loads((window.last_run_dir / "summary.json").read_text())["runs"]
    best = max(summary, key=lambda run: summary[run]["best_val_acc"])
    assert pane.checkpoint.currentData() == summary[best]["checkpoint"]  # the best is chosen
    # Look inside shows the same model as Results.
    assert window.inspect_pane.source.currentData() == summary[best]["checkpoint"]

    pane.runs_table.selectAll()
    overlay = pane.runs_tab.overlay
    assert len(overlay.getPlotItem().listDataItems()) == 2
    axis = overlay.getAxis("bottom")  # whole epochs, even over two epochs
    assert all(float(spacing).is_integer() for spacing, _ in axis.tickSpacing(1, 2, 500))

    tab = pane.evaluate_tab
    pane.tabs.setCurrentWidget(tab)
    tab.evaluate_button.click()
    wait_idle(qtbot, pane)
    e = tab.evaluation
    assert tab.matrix.rowCount() == 4 and tab.matrix.columnCount() == 4
    assert sum(int(tab.matrix.item(r, c).text()) for r in range(4) for c in range(4)) == len(
        e.paths)
    assert tab.metrics.rowCount() == 4
    assert tab.mistakes.row_count() == len(e.mistakes())
    assert tab.mistakes.paths() == [e.paths[i] for i in e.mistakes()]
    tab.mistakes.sort_by(3)  # the user clicks the header: least confident first
    confidences = [e.confidence[e.paths.index(p)] for p in tab.mistakes.paths()]
    assert confidences == sorted(confidences)
    if tab.mistakes.row_count():
        tab.mistakes.select_row(0)
        qtbot.waitUntil(lambda: tab.preview.pixmap() is not None
                        and not tab.preview.pixmap().isNull(), timeout=10_000)
        assert "true class" in tab.caption.text()
    cm = e.matrix()
    t, p = divmod(int(cm.argmax()), 4)
    tab.matrix.cellClicked.emit(t, p)
    assert tab.cell_images.row_count() == cm[t, p]
    assert all(e.true[e.paths.index(path)] == t and e.pred[e.paths.index(path)] == p
               for path in tab.cell_images.paths())
    tab.normalised.setChecked(True)
    assert tab.matrix.item(t, p).text().endswith("%")

    pane.tabs.setCurrentWidget(pane.predict_tab)
    pane.predict([str(data / "star")])
    wait_idle(qtbot, pane)
    assert pane.predict_tab.table.row_count() == 10
    out = tmp_path / "predictions.csv"
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (str(out), ""))
    with qtbot.waitSignal(pane.message, timeout=10_000):
        pane.predict_tab.csv_button.click()
    rows = list(csv.DictReader(out.open()))
    assert len(rows) == 10 and {"path", "class", "confidence"} <= set(rows[0])

    pane.tabs.setCurrentWidget(pane.export_tab)
    model_file = tmp_path / "model.pt"
    pane.export_to(str(model_file), "torchscript")
    wait_idle(qtbot, pane)
    assert model_file.is_file() and (tmp_path / "model.pt.usage.py").is_file()
    assert "torch.jit.load" in pane.export_tab.snippet.toPlainText()
    assert pane.export_tab.check.text().startswith(
        "Checked: loaded back with torch.jit.load and run through the usage script on ")


def test_project_save_and_reopen_restores_the_state(make_window, train_tiny, qtbot, tmp_path,
                                                     monkeypatch):
    window = make_window()
    data = ensure_sample_data(tmp_path / "shapes", images_per_class=8)
    train_tiny(window, data)
    names = window.dataset_pane.classes.model()
    names.setData(names.index(0, 0), "round")
    window.dataset_pane.seed.setValue(4)
    project = tmp_path / "mine.tlgui.json"
    window.save_project_to(str(project))
    state = window.project_state()
    assert state["data"]["class_names"][0] == "round" and len(state["runs"]) == 1
    window.close()

    # Another computer, say: nothing in the app's own runs folder, all from the project.
    monkeypatch.setenv("TLGUI_RUNS_DIR", str(tmp_path / "other_runs"))
    again = make_window()
    assert again.results_pane.runs == []
    assert again.open_project(str(project)) == []
    qtbot.waitUntil(lambda: again.dataset_pane.report is not None, timeout=30_000)
    assert again.project_state() == state
    assert again.results_pane.runs_table.rowCount() == 2
    assert str(project) in again._recent()
    offered = [again.inspect_pane.source.itemData(i)
               for i in range(again.inspect_pane.source.count())]
    assert sum(str(p).endswith("best.pt") for p in offered) == 2  # Look inside has them too


def test_past_runs_are_listed_at_start_and_can_be_taken_off_the_list(make_window, train_tiny,
                                                                      qtbot, tmp_path):
    window = make_window()
    data = ensure_sample_data(tmp_path / "shapes", images_per_class=8)
    train_tiny(window, data)
    run_dir = str(window.last_run_dir)
    window.setWindowModified(False)  # the session is not kept: closing does not ask to save it
    window.close()

    again = make_window()  # no project: the app's own runs folder is listed
    pane = again.results_pane
    assert pane.run_paths() == [run_dir] and pane.runs_table.rowCount() == 2
    summary = json.loads((window.last_run_dir / "summary.json").read_text())["runs"]
    best = max(summary, key=lambda run: summary[run]["best_val_acc"])
    assert pane.checkpoint.currentData() == summary[best]["checkpoint"]
    assert again.inspect_pane.source.currentData() == summary[best]["checkpoint"]
    pane.runs_table.selectRow(0)
    pane.runs_tab.remove_button.click()
    assert pane.run_paths() == [] and pane.checkpoint.count() == 0
    assert not pane.evaluate_tab.evaluate_button.isEnabled()
    assert os.path.isdir(run_dir)  # taken off the list, never deleted


def test_a_project_whose_images_moved_opens_and_says_so(make_window, train_tiny, qtbot, tmp_path):
    window = make_window()
    data = ensure_sample_data(tmp_path / "shapes", images_per_class=8)
    train_tiny(window, data)
    project = tmp_path / "p.tlgui.json"
    window.save_project_to(str(project))
    window.close()
    shutil.move(str(data), str(tmp_path / "elsewhere"))

    again = make_window()
    problems = again.open_project(str(project))
    assert problems and "is gone" in problems[0] and str(data) in problems[0]
    qtbot.waitUntil(lambda: again.error_box is not None and again.error_box.isVisible())
    assert "missing" in again.error_box.text()
    assert again.results_pane.runs_table.rowCount() == 2  # the runs are still there
    again.error_box.close()
    again.go_to(again.panes.index(again.results_pane))
    again.results_pane.evaluate()
    qtbot.waitUntil(lambda: again.error_box is not None and "gone" in again.error_box.text(),
                    timeout=30_000)


def test_a_project_with_a_wrong_value_changes_nothing_and_says_which(make_window, qtbot,
                                                                     tmp_path):
    window = make_window()
    window.training_pane.epochs.setValue(7)
    window.dataset_pane.seed.setValue(42)
    title = window.windowTitle()
    project = tmp_path / "crafted.tlgui.json"
    # A valid seed first, then an epoch count that is not a number: nothing may be applied.
    project.write_text(json.dumps({"format": "tlgui-project", "version": 1,
                                   "data": {"seed": 5, "val_fraction": 0.3},
                                   "training": {"epochs": "ten"}}))
    problems = window.open_project(str(project))
    assert len(problems) == 1 and str(project) in problems[0]
    assert "training.epochs" in problems[0] and "\n" not in problems[0]
    qtbot.waitUntil(lambda: window.error_box is not None and window.error_box.isVisible())
    assert window.error_box.text() == problems[0]
    assert window.training_pane.epochs.value() == 7
    assert window.dataset_pane.seed.value() == 42
    assert window.project_path is None and window.windowTitle() == title
    assert str(project) not in window._recent()
    window.error_box.close()


def test_the_evaluation_shows_rows_true_columns_predicted_and_each_class_figures(qtbot,
                                                                                 tmp_path):
    """An uneven matrix whose rows and columns differ: a transposed matrix, swapped precision
    and recall or shifted columns would all show."""
    import numpy as np
    from PIL import Image

    from tlgui.core.evaluation import UNDEFINED, UNDEFINED_NOTE, Evaluation
    from tlgui.gui.results import ResultsPane

    # rows true a, b, c, d; columns predicted: c is never predicted, d has no images
    uneven = [[3, 1, 0, 1], [2, 4, 0, 0], [1, 2, 0, 0], [0, 0, 0, 0]]
    pairs = [(t, p) for t, row in enumerate(uneven) for p, n in enumerate(row) for _ in range(n)]
    paths = []
    for i in range(len(pairs)):
        paths.append(str(tmp_path / f"{i}.png"))
        Image.new("RGB", (32, 32), (10 * i, 80, 160)).save(paths[-1])
    confidence = np.linspace(0.3, 0.95, len(pairs))
    evaluation = Evaluation(["a", "b", "c", "d"], paths, np.array([t for t, _ in pairs]),
                            np.array([p for _, p in pairs]), confidence)
    pane = ResultsPane()
    qtbot.addWidget(pane)
    try:
        tab = pane.evaluate_tab
        tab.show_evaluation(evaluation)
        m = tab.matrix
        assert [m.horizontalHeaderItem(c).text() for c in range(4)] == ["a", "b", "c", "d"]
        assert [m.verticalHeaderItem(r).text() for r in range(4)] == ["a", "b", "c", "d"]
        assert [[m.item(r, c).text() for c in range(4)] for r in range(4)] == [
            [str(n) for n in row] for row in uneven]
        assert m.item(1, 0).text() == "2"  # two images of b taken for a
        assert "2 b images predicted as a" in m.item(1, 0).toolTip()

        table = tab.metrics
        assert [table.horizontalHeaderItem(c).text() for c in range(5)] == [
            "Class", "Precision", "Recall", "F1", "Images"]
        shown = [[table.item(r, c).text() for c in range(5)] for r in range(4)]
        assert shown == [["a", "50.0%", "60.0%", "0.55", "5"],  # 3 of 6 predicted, 3 of 5
                         ["b", "57.1%", "66.7%", "0.62", "6"],  # 4 of 7 predicted, 4 of 6
                         ["c", UNDEFINED, "0.0%", "0.00", "3"],  # never predicted
                         ["d", "0.0%", UNDEFINED, "0.00", "0"]]  # no images
        assert "never predicted" in table.item(2, 1).toolTip()
        assert UNDEFINED_NOTE in tab.summary.text()
        assert "Accuracy 50.0%" in tab.summary.text()

        tab.normalised.setChecked(True)
        assert [m.item(0, c).text() for c in range(4)] == ["60%", "20%", "0%", "20%"]
        assert [m.item(3, c).text() for c in range(4)] == [UNDEFINED] * 4

        tab.matrix.cellClicked.emit(1, 0)  # the user clicks true b, predicted a
        cells = tab.cell_images
        assert cells.row_count() == 2
        model = cells.model
        assert {(model.index(r, 2).data(), model.index(r, 3).data())
                for r in range(2)} == {("b", "a")}
        wrong = [i for i, (t, p) in enumerate(pairs) if t != p]
        assert tab.mistakes.paths() == sorted((paths[i] for i in wrong),
                                              key=lambda p: -confidence[paths.index(p)])
    finally:
        pane.shutdown()
