"""Results (runs, evaluation, predictions, export) and projects, driven as a user would."""

import csv
import json
import os
import shutil

from PySide6.QtWidgets import QFileDialog

from tlgui.core.sample import ensure_sample_data


def wait_idle(qtbot, pane):
    qtbot.wait(50)
    qtbot.waitUntil(lambda: not pane.worker.is_running(), timeout=60_000)


def test_runs_evaluation_predictions_and_export(make_window, train_tiny, qtbot, tmp_path,
                                                monkeypatch):
    window = make_window()
    data = ensure_sample_data(tmp_path / "shapes", images_per_class=10)
    train_tiny(window, data)
    pane = window.results_pane
    window.go_to(4)
    assert pane.runs_table.rowCount() == 2 and pane.checkpoint.count() == 2
    summary = json.loads((window.last_run_dir / "summary.json").read_text())["runs"]
    best = max(summary, key=lambda run: summary[run]["best_val_acc"])
    assert pane.checkpoint.currentData() == summary[best]["checkpoint"]  # the best is chosen

    pane.runs_table.selectAll()
    assert len(pane.overlay.getPlotItem().listDataItems()) == 2
    axis = pane.overlay.getAxis("bottom")  # whole epochs, even over two epochs
    assert all(float(spacing).is_integer() for spacing, _ in axis.tickSpacing(1, 2, 500))

    pane.tabs.setCurrentIndex(1)
    pane.evaluate_button.click()
    wait_idle(qtbot, pane)
    e = pane.evaluation
    assert pane.matrix.rowCount() == 4 and pane.matrix.columnCount() == 4
    assert sum(int(pane.matrix.item(r, c).text()) for r in range(4) for c in range(4)) == len(
        e.paths)
    assert pane.metrics.rowCount() == 4
    assert pane.mistakes.rowCount() == len(e.mistakes())
    confidences = [pane.mistakes.item(r, 4).value for r in range(pane.mistakes.rowCount())]
    assert confidences == sorted(confidences, reverse=True)
    pane.mistakes.sortItems(4)  # the user clicks the header: least confident first
    confidences = [pane.mistakes.item(r, 4).value for r in range(pane.mistakes.rowCount())]
    assert confidences == sorted(confidences)
    if pane.mistakes.rowCount():
        pane.mistakes.selectRow(0)
        qtbot.waitUntil(lambda: pane.evaluation_preview.pixmap() is not None
                        and not pane.evaluation_preview.pixmap().isNull(), timeout=10_000)
        assert "true class" in pane.evaluation_caption.text()
    cm = e.matrix()
    t, p = divmod(int(cm.argmax()), 4)
    pane.matrix.cellClicked.emit(t, p)
    assert pane.cell_images.rowCount() == cm[t, p]
    assert all(e.classes[t] in pane.cell_images.item(r, 2).text()
               for r in range(pane.cell_images.rowCount()))
    pane.normalised.setChecked(True)
    assert pane.matrix.item(t, p).text().endswith("%")

    pane.tabs.setCurrentIndex(2)
    pane.predict([str(data / "star")])
    wait_idle(qtbot, pane)
    assert pane.prediction_table.rowCount() == 10
    out = tmp_path / "predictions.csv"
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (str(out), ""))
    pane.predict_csv.click()
    rows = list(csv.DictReader(out.open()))
    assert len(rows) == 10 and {"path", "class", "confidence"} <= set(rows[0])

    pane.tabs.setCurrentIndex(3)
    model_file = tmp_path / "model.pt"
    pane.export_to(str(model_file), "torchscript")
    wait_idle(qtbot, pane)
    assert model_file.is_file() and (tmp_path / "model.pt.usage.py").is_file()
    assert "torch.jit.load" in pane.snippet.toPlainText()


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
    window.close()

    again = make_window()  # no project: the app's own runs folder is listed
    pane = again.results_pane
    assert pane.run_paths() == [run_dir] and pane.runs_table.rowCount() == 2
    pane.runs_table.selectRow(0)
    pane.remove_runs_button.click()
    assert pane.run_paths() == [] and pane.checkpoint.count() == 0
    assert not pane.evaluate_button.isEnabled()
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
    again.go_to(4)
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
    from tlgui.gui.results_pane import ResultsPane

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
        with qtbot.waitSignal(pane.worker.finished, timeout=10_000):
            pane._start(lambda emit, control: ("evaluation", evaluation))
        m = pane.matrix
        assert [m.horizontalHeaderItem(c).text() for c in range(4)] == ["a", "b", "c", "d"]
        assert [m.verticalHeaderItem(r).text() for r in range(4)] == ["a", "b", "c", "d"]
        assert [[m.item(r, c).text() for c in range(4)] for r in range(4)] == [
            [str(n) for n in row] for row in uneven]
        assert m.item(1, 0).text() == "2"  # two images of b taken for a
        assert "2 b images predicted as a" in m.item(1, 0).toolTip()

        table = pane.metrics
        assert [table.horizontalHeaderItem(c).text() for c in range(5)] == [
            "Class", "Precision", "Recall", "F1", "Images"]
        shown = [[table.item(r, c).text() for c in range(5)] for r in range(4)]
        assert shown == [["a", "50.0%", "60.0%", "0.55", "5"],  # 3 of 6 predicted, 3 of 5
                         ["b", "57.1%", "66.7%", "0.62", "6"],  # 4 of 7 predicted, 4 of 6
                         ["c", UNDEFINED, "0.0%", "0.00", "3"],  # never predicted
                         ["d", "0.0%", UNDEFINED, "0.00", "0"]]  # no images
        assert "never predicted" in table.item(2, 1).toolTip()
        assert UNDEFINED_NOTE in pane.evaluation_summary.text()
        assert "Accuracy 50.0%" in pane.evaluation_summary.text()

        pane.normalised.setChecked(True)
        assert [m.item(0, c).text() for c in range(4)] == ["60%", "20%", "0%", "20%"]
        assert [m.item(3, c).text() for c in range(4)] == [UNDEFINED] * 4

        pane.matrix.cellClicked.emit(1, 0)  # the user clicks true b, predicted a
        rows = pane.cell_images.rowCount()
        assert rows == 2
        assert {(pane.cell_images.item(r, 2).text(), pane.cell_images.item(r, 3).text())
                for r in range(rows)} == {("b", "a")}
        wrong = [i for i, (t, p) in enumerate(pairs) if t != p]
        assert pane.mistakes.paths() == sorted((paths[i] for i in wrong),
                                               key=lambda p: -confidence[paths.index(p)])
    finally:
        pane.shutdown()
