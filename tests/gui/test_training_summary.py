"""What the window says about the user's model: the core's verdict and warnings, curves in
evaluation mode, advice and defaults that follow the starting weights, and what to do offline."""

import html
import json

import pytest
import torch
from PySide6.QtWidgets import QApplication

from tlgui.core.sample import ensure_sample_data
from tlgui.core.verdicts import dropout_verdict


def test_the_summary_shows_the_verdict_and_warnings_the_core_computed(
        make_window, qtbot, tmp_path, train_tiny):
    window = make_window()
    data = ensure_sample_data(tmp_path / "shapes", images_per_class=8)
    train_tiny(window, data, epochs=3)
    summary = json.loads((window.last_run_dir / "summary.json").read_text())
    shown = window.training_pane.summary.text()
    assert summary["verdict"]["kind"] != "too_early"
    assert html.escape(summary["verdict"]["text"]) in shown
    for run in summary["runs"].values():
        for warning in run["warnings"]:
            assert html.escape(warning) in shown
        assert f"train–validation gap {run['train_val_gap'] * 100:+.1f} points" in shown
    # The dashed curves are the eval-mode figures, and the legend says so.
    from tlgui.core.project import read_history

    plot = window.training_pane.curves.accuracy
    for name in ("with_dropout", "without_dropout"):
        rows = read_history(window.last_run_dir / name / "metrics.csv")
        epochs, values = plot.points(name, "train")
        assert epochs == [1, 2, 3]
        assert values == [r["train_acc_eval"] * 100 for r in rows]
    labels = window.training_pane.curves.legend.labels()
    assert "with dropout" in labels and "train (eval mode)" in labels
    assert "eval mode" in window.training_pane.curves.toolTip()
    # The log gives both training figures, and says "dropout active" only where it was.
    log = window.training_pane.log.toPlainText().splitlines()
    with_line = next(line for line in log if "epoch 3/3 with dropout" in line)
    without_line = next(line for line in log if "epoch 3/3 without dropout" in line)
    assert "while it trained, with dropout active)" in with_line
    assert "while it trained)" in without_line and "dropout active" not in without_line


def test_the_summary_shows_the_core_sentences_for_known_cases():
    from tlgui.gui.training_pane import summary_html

    def run(train, val, warnings=()):
        return {"best_val_acc": val, "best_epoch": 5, "train_val_gap": train - val,
                "test_acc": None, "warnings": list(warnings)}

    history = [{"train_acc_eval": 1.0, "val_acc": 0.45}] * 5
    verdict = dropout_verdict(history, history)
    one_class = "It predicts \u201cstar\u201d for 100% of the validation images (9 of 9)."
    text = summary_html({
        "runs": {"with_dropout": run(1.0, 0.45), "without_dropout": run(1.0, 0.45, [one_class])},
        "verdict": {"kind": verdict.kind, "text": verdict.text},
    })
    assert html.escape(verdict.text) in text and "Both runs over-fit" in text
    assert "equally well" not in text
    assert "without dropout: " + html.escape(one_class) in text
    assert "train–validation gap +55.0 points (train in eval mode)" in text
    # the calibration's sentence, for each run that has one (escaped: it comes from a file)
    calibrated = run(1.0, 0.45)
    calibrated["calibration"] = {"text": 'Below 40.0% a prediction is "not sure" <b>'}
    text = summary_html({"runs": {"model": calibrated}})
    assert "model: Below 40.0% a prediction is &quot;not sure&quot; &lt;b&gt;" in text


def test_a_training_stopped_before_its_first_epoch_says_only_that():
    from tlgui.core.verdicts import training_verdict
    from tlgui.gui.training_pane import summary_html

    verdict = training_verdict({"with_dropout": [], "without_dropout": []})
    run = {"best_val_acc": None, "best_epoch": None, "train_val_gap": None, "test_acc": None,
           "warnings": []}
    assert summary_html({"runs": {"with_dropout": run, "without_dropout": run},
                         "verdict": {"kind": verdict.kind, "text": verdict.text}}) == (
        "No epoch completed.")


def test_epochs_without_validation_images_are_summarised_with_the_verdict():
    """No validation images: no run has a best validation accuracy, yet epochs completed;
    the summary says what is known and gives the core's verdict, not 'No epoch completed.'"""
    from tlgui.core.verdicts import training_verdict
    from tlgui.gui.training_pane import summary_html

    history = [{"train_acc_eval": 0.9, "val_acc": float("nan")}] * 3
    verdict = training_verdict({"with_dropout": history, "without_dropout": history})
    assert verdict.kind == "no_validation"
    run = {"best_val_acc": None, "best_epoch": 2, "best_by": "training accuracy",
           "epochs_completed": 3, "last_train_acc": 0.9, "train_val_gap": None,
           "test_acc": 0.75, "warnings": []}
    text = summary_html({"runs": {"with_dropout": run, "without_dropout": run},
                         "verdict": {"kind": verdict.kind, "text": verdict.text}})
    assert "No epoch completed." not in text
    assert text.endswith(html.escape(verdict.text))
    assert ("<b>with dropout</b>: no validation images; best epoch 2 by training accuracy, "
            "last train 90.0%, test 75.0%") in text
    assert "nan" not in text.lower() and "None" not in text


def test_the_epoch_log_says_when_there_are_no_validation_images(make_window):
    import math

    from tlgui.core import events as ev

    pane = make_window().training_pane
    pane.on_epoch_finished(ev.EpochFinished(
        run="model", epoch=1, epochs=2, train_loss=0.7, train_acc=0.5, val_loss=math.nan,
        val_acc=math.nan, lr=1e-3, seconds=1.0, eta_seconds=1.0, improved=True,
        train_loss_eval=0.6, train_acc_eval=0.55))
    line = pane.log.toPlainText().splitlines()[-1]
    assert "no validation images" in line
    assert "nan" not in line.lower()


def test_the_backbone_rate_follows_the_starting_weights(make_window):
    window = make_window()
    model, training = window.model_pane, window.training_pane
    assert training.backbone_lr.value() == 0.1
    model.none_radio.setChecked(True)
    assert training.backbone_lr.value() == 1.0
    assert training.settings()["backbone_lr_factor"] == 1.0
    model.imagenet_radio.setChecked(True)
    assert training.backbone_lr.value() == 0.1
    training.backbone_lr.setValue(0.3)  # the user's own rate stays
    model.none_radio.setChecked(True)
    assert training.backbone_lr.value() == 0.3


def test_random_weights_are_never_advised_frozen_and_a_frozen_choice_is_explained(
        make_window):
    window = make_window()
    pane = window.model_pane
    pane.set_dataset(200, 4)
    assert "freeze the backbone" in pane.recommendation.text()
    pane.none_radio.setChecked(True)
    assert "random weights" in pane.recommendation.text()
    assert pane.frozen_radio.isChecked()  # the user's choice, not silently accepted:
    assert pane.strategy_note.text().startswith("A frozen backbone with random weights")
    assert not pane.strategy_note.isHidden()
    pane.apply_advice.click()
    assert pane.full_radio.isChecked()
    assert pane.strategy_note.isHidden()


def test_offline_the_window_proposes_what_works_now_in_its_own_words(make_window, qtbot):
    from tlgui.core.weights import cached_path

    path = cached_path("resnet18")  # a cached backbone (the file's content does not matter)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"conv1.weight": torch.zeros(1)}, path)
    window = make_window()
    pane = window.model_pane
    window.go_to(window.panes.index(pane))
    pane.select_backbone("vgg16")
    pane.download_button.click()  # the network is off in tests
    qtbot.waitUntil(lambda: pane.offline_box is not None, timeout=10_000)
    text = pane.offline_box.text()
    assert text.startswith("ImageNet weights for vgg16 could not be downloaded (")
    assert "Use a cached backbone: resnet18" in text
    assert "Import Weights File…" in text and "vgg16-397923af.pth" in text
    assert "None — random weights" in text
    assert "--" not in text
    assert pane.import_button.text() == "Import Weights File…"
    assert "use a cached backbone (resnet18)" in pane.problems()[0]


def test_a_project_keeps_its_own_backbone_rate(make_window, tmp_path):
    window = make_window()
    window.model_pane.none_radio.setChecked(True)
    window.training_pane.backbone_lr.setValue(0.1)  # a tenth, though the weights are random
    project = tmp_path / "mine.tlgui.json"
    window.save_project_to(str(project))
    window.model_pane.imagenet_radio.setChecked(True)  # what the next window starts with
    window.setWindowModified(False)  # that change is not saved: closing does not ask
    window.close()
    again = make_window()
    assert again.model_pane.weights() == "imagenet"
    again.open_project(str(project))
    assert again.model_pane.weights() == "none"
    assert again.training_pane.backbone_lr.value() == 0.1


def started(epochs: int = 10, start_epoch: int = 0):
    from tlgui.core import events as ev

    return ev.TrainingStarted(
        runs=("with_dropout", "without_dropout"), dropouts=(0.5, 0.0), epochs=epochs,
        start_epoch=start_epoch, train_size=40, val_size=10, device="cpu", trainable_params=10,
        frozen_params=0, feature_cache=False)


def batch(epoch: int, epochs: int = 10, eta: float = 660.0):
    from tlgui.core import events as ev

    return ev.BatchFinished(epoch=epoch, epochs=epochs, batch=3, batches=8,
                            losses={"with_dropout": 0.7, "without_dropout": 0.6},
                            eta_seconds=eta)


def summary(status: str, epochs_completed: int):
    run = {"best_val_acc": 0.5, "best_epoch": 1, "train_val_gap": 0.1, "test_acc": None,
           "warnings": [], "epochs_completed": epochs_completed}
    return {"status": status, "runs": {"with_dropout": run, "without_dropout": run}}


def test_after_stop_or_finish_the_progress_says_how_it_ended_not_the_time_left(qtbot):
    from tlgui.gui.training_pane import TrainingPane

    pane = TrainingPane()
    qtbot.addWidget(pane)
    pane.set_state("running")
    pane.on_training_started(started())
    pane.on_batch_finished(batch(4))
    assert pane.run_label.text() == "Epoch 4 of 10 — 11 min 00 s left"
    pane.set_state("paused")
    assert pane.run_label.text() == "Paused in epoch 4 of 10."
    pane.set_state("running")
    pane.on_batch_finished(batch(4))
    pane.set_state("stopping")
    pane.on_training_finished(summary("stopped", 3))
    pane.set_state("idle")
    assert pane.run_label.text() == "Stopped at epoch 4 of 10."
    assert pane.step_label.text() == "Stopped."

    pane.set_state("running")
    pane.on_training_started(started(epochs=2))
    pane.on_batch_finished(batch(2, epochs=2, eta=3))
    pane.on_training_finished(summary("finished", 2))
    pane.set_state("idle")
    assert pane.run_label.text() == "Finished."

    pane.on_training_started(started(epochs=10))  # early stopping after epoch 6
    pane.on_batch_finished(batch(6))
    pane.on_training_finished(summary("finished", 6))
    assert pane.run_label.text() == "Finished at epoch 6 of 10."

    pane.set_state("running")  # a training that fails sends no summary
    pane.on_training_started(started())
    pane.on_batch_finished(batch(2))
    pane.set_state("idle")
    assert "left" not in pane.run_label.text()
    assert pane.run_label.text() == "Stopped at epoch 2 of 10."


@pytest.mark.parametrize("width", [1280, 1000])
def test_progress_lines_are_never_cut_off(make_window, qtbot, width):
    from tlgui.core import events as ev

    window = make_window()
    window.resize(width, 820)
    pane = window.training_pane
    window.go_to(window.panes.index(pane))
    pane.on_training_started(started())
    pane.on_batch_finished(batch(4))
    pane.on_stage_progressed(ev.StageProgress(
        stage="features", done=12_000, total=100_000, eta_seconds=3725.0,
        message="computing backbone features of the training and validation images"))
    qtbot.waitUntil(lambda: pane.width() > 0.6 * width, timeout=5000)
    QApplication.processEvents()
    for label in (pane.step_label, pane.run_label):
        shown = label.displayed_text()
        assert label.fontMetrics().horizontalAdvance(shown) <= label.contentsRect().width()
        assert shown == label.text() or (shown.endswith("…") and
                                         label.toolTip() == label.text())
    assert pane.run_label.displayed_text() == "Epoch 4 of 10 — 11 min 00 s left"  # it fits
    assert pane.step_label.toolTip().endswith("12,000 of 100,000 — 1 h 02 min left")


def test_a_new_data_set_clears_the_curves_summary_and_progress(make_window, qtbot, tmp_path):
    from tlgui.core import events as ev

    window = make_window()
    pane = window.training_pane
    pane.on_training_started(started(epochs=2))
    pane.on_batch_finished(batch(1, epochs=2))
    pane.on_epoch_finished(ev.EpochFinished(
        run="with_dropout", epoch=1, epochs=2, train_loss=0.7, train_acc=0.5, val_loss=0.6,
        val_acc=0.55, lr=1e-3, seconds=1.0, eta_seconds=1.0, improved=True,
        train_loss_eval=0.6, train_acc_eval=0.55))
    pane.on_training_finished(summary("stopped", 1))
    pane.curves.loss.redraw_batches()
    assert pane.curves.accuracy.points("with_dropout", "val") == ([1], [pytest.approx(55.0)])
    assert "best validation" in pane.summary.text()

    data = ensure_sample_data(tmp_path / "shapes", images_per_class=4)
    window.dataset_pane.load_folders([str(data)])
    qtbot.waitUntil(lambda: window.dataset_pane.report is not None, timeout=30_000)
    qtbot.waitUntil(lambda: not pane.curves.legend.labels(), timeout=5000)
    assert pane.curves.accuracy.points("with_dropout", "val") == ([], [])
    assert len(pane.curves.loss.batch_points("with_dropout")[0]) == 0
    assert "best validation" not in pane.summary.text()
    assert pane.run_label.text() == "" and pane.step_label.text() == "Ready."
    assert pane.run_progress.value() == 0


def test_editing_the_data_keeps_the_curves_of_the_last_training(make_window, qtbot, tmp_path):
    """A new seed, a rename or a class left out changes the data set, not what the curves
    describe: they stay to compare the next run with; new folders clear them."""
    from tlgui.core import events as ev

    window = make_window()
    data = ensure_sample_data(tmp_path / "shapes", images_per_class=4)
    window.dataset_pane.load_folders([str(data)])
    qtbot.waitUntil(lambda: window.dataset_pane.report is not None
                    and not window.dataset_pane.busy(), timeout=30_000)
    pane = window.training_pane
    window.controller.training_started.emit(started(epochs=2))
    pane.on_epoch_finished(ev.EpochFinished(
        run="with_dropout", epoch=1, epochs=2, train_loss=0.7, train_acc=0.5, val_loss=0.6,
        val_acc=0.55, lr=1e-3, seconds=1.0, eta_seconds=1.0, improved=True,
        train_loss_eval=0.6, train_acc_eval=0.55))
    pane.on_training_finished(summary("finished", 1))
    changed = []
    window.dataset_pane.dataset_changed.connect(lambda: changed.append(True))
    window.dataset_pane.seed.setValue(window.dataset_pane.seed.value() + 7)
    qtbot.waitUntil(lambda: bool(changed), timeout=10_000)
    assert pane.curves.accuracy.points("with_dropout", "val") == ([1], [pytest.approx(55.0)])
    assert "best validation" in pane.summary.text()

    other = ensure_sample_data(tmp_path / "other", images_per_class=4, seed=3)
    window.dataset_pane.load_folders([str(other)])
    qtbot.waitUntil(lambda: pane.curves.accuracy.points("with_dropout", "val") == ([], []),
                    timeout=30_000)
