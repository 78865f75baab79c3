"""The sentences about a trained model, on synthetic histories whose right answer is known."""

import math
import os

import pytest

from tlgui.core.verdicts import (
    dropout_verdict,
    is_at_chance,
    prediction_warnings,
    single_run_verdict,
    training_verdict,
)


def history(*epochs, dropout_active_train=None):
    """Per-epoch records from (eval-mode train accuracy, validation accuracy) pairs."""
    rows = []
    for train, val in epochs:
        row = {"train_acc_eval": train, "val_acc": val}
        if dropout_active_train is not None:
            row["train_acc"] = dropout_active_train
        rows.append(row)
    return rows


def climbing_to(train, val, epochs=5):
    """A history that ends at (train, val), having climbed from half of each."""
    steps = [(i + 1) / epochs for i in range(epochs)]
    return history(*[(0.5 * train * (1 + s), 0.5 * val * (1 + s)) for s in steps[:-1]],
                   (train, val))


def flat_at(train, val, epochs=5):
    return history(*[(train, val)] * epochs)


def test_both_runs_over_fitting_is_said_so():
    verdict = dropout_verdict(flat_at(1.0, 0.45), flat_at(1.0, 0.45))
    assert verdict.kind == "both_overfit"
    assert verdict.text.startswith("Both runs over-fit: ")
    assert "55 points above validation accuracy (100% against 45.0%)" in verdict.text
    assert "equally well" not in verdict.text


def test_both_over_fit_even_when_dropout_narrows_the_gap():
    verdict = dropout_verdict(flat_at(0.90, 0.60), flat_at(1.0, 0.55))
    assert verdict.kind == "both_overfit"
    assert "Dropout narrowed the gap by 15 points but did not close it." in verdict.text


def test_only_the_run_without_dropout_over_fits():
    verdict = dropout_verdict(climbing_to(0.82, 0.80), climbing_to(1.0, 0.78))
    assert verdict.kind == "dropout_reduces_overfitting"
    assert verdict.text.startswith("Without dropout the model over-fits, with dropout much less")
    assert "2 points above validation accuracy" in verdict.text  # with dropout
    assert "22 points above validation accuracy" in verdict.text  # without


def test_neither_over_fits():
    verdict = dropout_verdict(flat_at(0.80, 0.79), flat_at(0.81, 0.80))
    assert verdict.kind == "no_overfitting"
    assert verdict.text.startswith("Neither run over-fits: ")
    assert "dropout makes no clear difference" in verdict.text


def test_negative_gaps_are_not_over_fitting():
    # Validation above training: ten points with dropout, two without. The difference of the
    # gaps is eight points, yet neither run over-fits.
    verdict = dropout_verdict(flat_at(0.70, 0.80), flat_at(0.78, 0.80))
    assert verdict.kind == "no_overfitting"
    assert "10 points below validation accuracy" in verdict.text
    assert "2 points below validation accuracy" in verdict.text


def test_a_single_run_with_validation_above_training_does_not_over_fit():
    verdict = single_run_verdict(flat_at(0.60, 0.75))
    assert verdict.kind == "no_overfitting"
    assert "15 points below validation accuracy" in verdict.text


def test_dropout_slowed_learning_while_still_rising():
    with_dropout = history((0.30, 0.30), (0.42, 0.40), (0.52, 0.50), (0.62, 0.60))
    without = history((0.50, 0.50), (0.70, 0.70), (0.80, 0.78), (0.82, 0.80))
    verdict = dropout_verdict(with_dropout, without)
    assert verdict.kind == "dropout_slowed_learning"
    assert verdict.text.startswith("Dropout slowed learning: ")
    assert "20 points behind on validation at the last epoch but still rising" in verdict.text


def test_dropout_that_stopped_improving_cost_accuracy():
    verdict = dropout_verdict(flat_at(0.62, 0.60), flat_at(0.82, 0.80))
    assert verdict.kind == "dropout_costs_accuracy"
    assert ("20 points behind on validation at the last epoch and no longer improving"
            in verdict.text)


def test_only_the_run_with_dropout_over_fitting_is_not_praised():
    verdict = dropout_verdict(flat_at(0.95, 0.70), flat_at(0.80, 0.78))
    assert verdict.kind == "overfitting_not_reduced"
    assert verdict.text.startswith("Only the run with dropout over-fits")


def test_a_barely_smaller_gap_is_not_credited_to_dropout():
    verdict = dropout_verdict(flat_at(0.88, 0.80), flat_at(0.92, 0.80))
    assert verdict.kind == "overfitting_not_reduced"
    assert "dropout barely reduced it" in verdict.text


@pytest.mark.parametrize("epochs", [1, 2])
def test_too_few_epochs_to_say(epochs):
    runs = (flat_at(1.0, 0.4, epochs), flat_at(0.5, 0.4, epochs))
    verdict = dropout_verdict(*runs)
    assert verdict.kind == "too_early"
    assert verdict.text.startswith(f"After {epochs} epoch")
    assert single_run_verdict(runs[0]).kind == "too_early"
    assert dropout_verdict(flat_at(1.0, 0.4, 5), flat_at(1.0, 0.4, epochs)).kind == "too_early"


def test_ties_are_not_turned_into_a_difference():
    same = flat_at(0.85, 0.83)
    verdict = dropout_verdict(same, same)
    assert verdict.kind == "no_overfitting"
    assert "about the same validation accuracy" in verdict.text


def test_a_gap_of_exactly_the_threshold_is_over_fitting():
    # 0.9 - 0.8 is 0.0999… in floating point; it still reaches ten points.
    assert single_run_verdict(flat_at(0.9, 0.8)).kind == "overfits"
    assert single_run_verdict(flat_at(0.89, 0.8)).kind == "no_overfitting"


def test_the_single_run_sentence():
    verdict = single_run_verdict(climbing_to(1.0, 0.70))
    assert verdict.kind == "overfits"
    assert verdict.text.startswith("The model over-fits: its training accuracy (100%) is "
                                   "30 points above validation accuracy (70.0%).")
    assert "still rising" in verdict.text


def test_on_few_validation_images_a_gap_that_chance_explains_is_not_called_over_fitting():
    with_dropout, without = flat_at(0.344, 0.312), flat_at(0.438, 0.312)
    assert dropout_verdict(with_dropout, without).kind == "dropout_reduces_overfitting"
    assert dropout_verdict(with_dropout, without, val_size=2000).kind == (
        "dropout_reduces_overfitting")
    verdict = dropout_verdict(with_dropout, without, val_size=16)
    assert verdict.kind == "no_overfitting"
    assert verdict.text.startswith("Neither run clearly over-fits: ")
    assert verdict.text.endswith("On 16 validation images, differences under 23 points can be "
                                 "chance.")
    # A large gap stays over-fitting on few images too.
    assert dropout_verdict(flat_at(1.0, 0.45), flat_at(1.0, 0.45), val_size=16).kind == (
        "both_overfit")
    single = single_run_verdict(flat_at(0.65, 0.50), val_size=20)
    assert single.kind == "no_overfitting" and single.text.startswith("No clear sign")
    assert single_run_verdict(flat_at(0.65, 0.50), val_size=1000).kind == "overfits"
    # Where chance does not matter, nothing is added.
    assert "can be chance" not in dropout_verdict(flat_at(0.80, 0.79), flat_at(0.81, 0.80),
                                                  val_size=16).text


def test_eval_mode_accuracy_is_used_not_the_one_with_dropout_active():
    # With dropout active the training accuracy reads 70 %; in eval mode it is 100 %.
    runs = history(*[(1.0, 0.75)] * 4, dropout_active_train=0.70)
    assert single_run_verdict(runs).kind == "overfits"
    # A metrics.csv without the eval-mode column falls back to train_acc.
    old_rows = [{"train_acc": 0.70, "val_acc": 0.75}] * 4
    assert single_run_verdict(old_rows).kind == "no_overfitting"


def test_without_validation_images_nothing_is_claimed():
    verdict = dropout_verdict(flat_at(1.0, math.nan), flat_at(1.0, math.nan))
    assert verdict.kind == "no_validation"
    # A validation share of 0 is refused, so the advice is about the images.
    assert "validation share" not in verdict.text
    assert "every class has a single image, or no validation image could be read" in (
        verdict.text)
    assert single_run_verdict(flat_at(1.0, math.nan)).text == verdict.text


def points_in(text, after):
    """The whole number of points that ``text`` quotes right after ``after``."""
    import re

    return int(re.search(re.escape(after) + r" (\d+) points?", text).group(1))


def test_dropout_is_never_said_to_reduce_a_gap_it_widened():
    """With dropout the gap is 13 points, without it 10; each run's threshold allows for its
    own validation accuracy, yet the larger gap cannot be the one that is not over-fitting,
    nor can dropout have "barely reduced" it."""
    with_dropout = history(*[(0.5, 0.5)] * 2, (0.68, 0.55))
    without = history(*[(0.5, 0.5)] * 2, (1.0, 0.90))
    verdict = dropout_verdict(with_dropout, without, 50)
    assert "barely reduced" not in verdict.text
    assert verdict.kind == "both_overfit"
    assert "13 points above validation accuracy" in verdict.text
    assert "10 points above validation accuracy" in verdict.text
    assert "Dropout did not reduce the gap: it is 3 points wider with dropout." in verdict.text
    assert ("The run with dropout is 35 points behind on validation at the last epoch but "
            "still rising.") in verdict.text


def test_only_the_run_with_dropout_over_fits_only_with_the_larger_gap():
    """The mirror case: the run without dropout has the larger gap (13 points, at 55 %), the
    run with dropout 10 (at 90 %). Both over-fit, and dropout narrowed the gap a little."""
    with_dropout = history(*[(0.5, 0.5)] * 2, (1.0, 0.90))
    without = history(*[(0.5, 0.5)] * 2, (0.68, 0.55))
    verdict = dropout_verdict(with_dropout, without, 50)
    assert verdict.kind == "both_overfit"
    assert not verdict.text.startswith("Only the run with dropout")


@pytest.mark.parametrize("train_with, val_with, train_without, val_without, val_size", [
    (0.88, 0.80, 0.92, 0.80, None),  # barely reduced: 8 against 12 points
    (0.90, 0.80, 0.92, 0.80, None),  # both at the threshold or above
    (0.86, 0.75, 0.95, 0.85, 200),
    (0.70, 0.55, 1.0, 0.90, 50),
    (1.0, 0.90, 0.70, 0.55, 50),
    (0.95, 0.70, 0.80, 0.78, None),
    (0.60, 0.40, 1.0, 0.90, 30),
    (0.9996, 0.90, 0.98, 0.90, None),  # gaps of 9.96 and 8 points: shown as 10 and 8
])
def test_the_numbers_a_verdict_quotes_agree_with_what_it_says(
        train_with, val_with, train_without, val_without, val_size):
    """Whatever the branch, the gaps quoted agree with the claim made about them."""
    verdict = dropout_verdict(flat_at(train_with, val_with), flat_at(train_without, val_without),
                              val_size)
    text = verdict.text
    gap_with = points_in(text, "with dropout, training accuracy is")
    gap_without = points_in(text, "without, it is")
    if "barely reduced it" in text:
        by = points_in(text, "barely reduced it (by")
        assert by == gap_without - gap_with and 0 <= by < 5 or "can be chance" in text
    if text.startswith("Only the run with dropout over-fits"):
        assert gap_with > gap_without
    if text.startswith(("The run without dropout over-fits", "Without dropout the model")):
        assert gap_without > gap_with
    if "narrowed the gap by" in text:
        assert points_in(text, "narrowed the gap by") == gap_without - gap_with > 0
    if verdict.kind == "both_overfit" or "over-fits" in text.split(":")[0]:
        assert max(gap_with, gap_without) >= 10
    if text.startswith("Neither run over-fits"):
        assert max(gap_with, gap_without) < 10


def test_a_gap_shown_as_ten_points_is_over_fitting():
    """9.96 points is shown as 10, the threshold: it is over-fitting, as the sentence's
    number says, not 'no sign of over-fitting' beside '10 points above'."""
    verdict = single_run_verdict(flat_at(0.9996, 0.90))
    assert "10 points above validation accuracy" in verdict.text
    assert verdict.kind == "overfits"
    chance = single_run_verdict(flat_at(0.635, 0.50), val_size=50)  # margin 14.1 points
    assert "14 points above" in chance.text and chance.kind == "overfits"


def test_training_verdict_picks_the_comparison_or_the_single_run():
    pair = {"with_dropout": flat_at(1.0, 0.45), "without_dropout": flat_at(1.0, 0.45)}
    assert training_verdict(pair).kind == "both_overfit"
    assert training_verdict({"model": flat_at(0.8, 0.8)}).kind == "no_overfitting"
    assert training_verdict({}) is None


def test_epoch_records_of_the_trainer_are_histories_too():
    from tlgui.core.training import EpochRecord

    def record(epoch, train_eval, val):
        return EpochRecord(epoch=epoch, train_loss=0.1, train_acc=0.5, val_loss=0.2,
                           val_acc=val, lr=1e-3, seconds=1.0, train_acc_eval=train_eval)

    runs = [record(e, 1.0, 0.45) for e in (1, 2, 3)]
    assert dropout_verdict(runs, runs).kind == "both_overfit"


CLASSES = ["circle", "square", "star", "triangle"]


def test_a_model_that_predicts_one_class_is_warned_about():
    always_square = [[0, 5, 0, 0]] * 4
    warnings = prediction_warnings(always_square, 0.25, CLASSES)
    assert warnings[0] == ("It predicts \u201csquare\u201d for 100% of the validation images "
                           "(20 of 20, 15 of the 15 of other classes among them): it has not "
                           "learnt to tell the classes apart.")
    assert len(warnings) == 2  # and its 25 % is chance
    almost = [[1, 9, 0, 0], [0, 10, 0, 0], [0, 9, 1, 0], [0, 8, 0, 2]]
    assert prediction_warnings(almost, 14 / 40, CLASSES)[0].startswith(
        "It predicts \u201csquare\u201d for 90.0% of the validation images (36 of 40, 26 of "
        "the 30 of other classes among them)")


def test_a_right_model_on_a_validation_set_of_mostly_one_class_is_not_flagged():
    assert prediction_warnings([[18, 0], [0, 2]], 1.0, ["a", "b"]) == []
    majority = prediction_warnings([[18, 0], [2, 0]], 0.9, ["a", "b"])
    assert majority == ["It predicts \u201ca\u201d for 100% of the validation images (20 of 20, "
                        "2 of the 2 of other classes among them): it has not learnt to tell "
                        "the classes apart."]
    # All validation images of one class: nothing tells whether it tells classes apart.
    assert prediction_warnings([[20, 0], [0, 0]], 1.0, ["a", "b"]) == []


def test_accuracy_at_chance_is_warned_about():
    spread = [[7 if t == p else 6 for p in range(4)] for t in range(4)]
    warnings = prediction_warnings(spread, 0.28, CLASSES)
    assert warnings == ["Its validation accuracy (28.0%) cannot be told from guessing among 4 "
                        "classes (25.0%) on 100 validation images."]
    good = [[22 if t == p else 1 for p in range(4)] for t in range(4)]
    assert prediction_warnings(good, 0.88, CLASSES) == []


def test_chance_depends_on_how_many_images_measured_it():
    # Two classes, 100 images: two standard errors of guessing are 10 points.
    assert is_at_chance(0.60, 2, 100)
    assert not is_at_chance(0.61, 2, 100)
    # Below chance is no better than chance.
    assert is_at_chance(0.10, 4, 1000)
    # On 4 images even 100 % cannot be told from guessing between two classes.
    assert is_at_chance(1.0, 2, 4)
    assert not is_at_chance(math.nan, 2, 100)


def test_no_predictions_no_warnings():
    assert prediction_warnings([[0, 0], [0, 0]], math.nan, ["a", "b"]) == []


# -- the trainer measures what the verdict needs ---------------------------------------------
@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    from tlgui.core.data import scan
    from tlgui.core.sample import ensure_sample_data

    root = ensure_sample_data(tmp_path_factory.mktemp("tiny") / "shapes", images_per_class=12)
    return scan([str(root)])


def fast_config(**kw):
    from tlgui.core.training import TrainConfig

    base = dict(model="resnet18", weights="none", image_size=32, epochs=3, batch_size=8,
                hidden=16, workers=0, compare_dropout=True, dropout=0.8)
    return TrainConfig(**{**base, **kw})


def eval_mode_accuracy(trainer, run, items):
    """The accuracy of ``run``'s model in evaluation mode on ``items``, computed here."""
    import torch

    from tlgui.core.preprocess import ImageDataset

    dataset = ImageDataset(items, trainer.preprocessing.eval_transform())
    run.model.eval()
    with torch.no_grad():
        correct = sum(int(run.model(x.unsqueeze(0)).argmax(1).item() == y)
                      for x, y in (dataset[i] for i in range(len(dataset))))
    return correct / len(items)


@pytest.mark.parametrize("feature_cache", [False, True])
def test_training_accuracy_is_measured_in_eval_mode(tiny, tmp_path, feature_cache):
    from tlgui.core import events as ev
    from tlgui.core.data import split
    from tlgui.core.project import read_history
    from tlgui.core.training import Trainer

    events = []
    trainer = Trainer(fast_config(feature_cache=feature_cache), tiny, tmp_path / "run",
                      on_event=events.append)
    summary = trainer.run()
    train_items = split(tiny.items, 0.2, 0).train
    for run in trainer.runs:
        last = run.history[-1]
        expected = eval_mode_accuracy(trainer, run, train_items)
        # The cache keeps features in half precision: allow one image of difference.
        assert last.train_acc_eval == pytest.approx(expected, abs=1.01 / len(train_items))
        assert summary["runs"][run.name]["train_val_gap"] == pytest.approx(
            last.train_acc_eval - last.val_acc)
        assert summary["runs"][run.name]["last_train_acc"] == last.train_acc_eval
        rows = read_history(tmp_path / "run" / run.name / "metrics.csv")
        assert [r["train_acc_eval"] for r in rows] == pytest.approx(
            [r.train_acc_eval for r in run.history])
    finished = [e for e in events if isinstance(e, ev.EpochFinished)]
    assert all(0.0 <= e.train_acc_eval <= 1.0 and e.train_loss_eval > 0 for e in finished)
    verdict = summary["verdict"]
    assert verdict["kind"] in ("both_overfit", "dropout_reduces_overfitting",
                               "overfitting_not_reduced", "dropout_slowed_learning",
                               "dropout_costs_accuracy", "no_overfitting")
    assert verdict == dataclass_dict(dropout_verdict(
        trainer.runs[0].history, trainer.runs[1].history,
        val_size=len(split(tiny.items, 0.2, 0).val)))


def dataclass_dict(verdict):
    return {"kind": verdict.kind, "text": verdict.text}


def test_eval_mode_accuracy_uses_a_fixed_sample_of_a_large_training_set():
    from tlgui.core.training import train_eval_items

    items = list(range(1234))
    sample = train_eval_items(items, 500)
    assert len(sample) == 500 and sample == train_eval_items(items, 500)
    assert sample[0] == 0 and sample[-1] >= 1230  # spread over every class, not the first
    assert train_eval_items(items[:300], 500) == items[:300]


def test_a_model_that_predicts_one_class_is_warned_about_by_the_trainer(tiny):
    import torch

    from tlgui.core.training import Trainer

    trainer = Trainer(fast_config(compare_dropout=False, epochs=1, lr=1e-9), tiny)
    trainer.prepare()
    with torch.no_grad():  # a head that gives class 2 ("star") to every image
        trainer.runs[0].model.head[-1].bias.copy_(torch.tensor([0.0, 0.0, 1e4, 0.0]))
    summary = trainer.run()
    run = summary["runs"]["model"]
    assert run["val_predictions"] == [0, 0, summary["val_size"], 0]
    assert run["warnings"][0].startswith("It predicts \u201cstar\u201d for 100% of the "
                                         "validation images")
    assert "cannot be told from guessing among 4 classes" in run["warnings"][1]
    assert summary["verdict"]["kind"] == "too_early"


def test_tlgui_train_prints_the_verdict_and_the_warnings(tiny, tmp_path, capsys):
    import json

    from tlgui.cli import main

    data = os.path.dirname(tiny.class_folders[0])
    out = tmp_path / "run"
    code = main(["train", data, "--model", "resnet18", "--weights", "none", "--epochs", "3",
                 "--image-size", "32", "--batch-size", "8", "--compare-dropout", "--hidden",
                 "16", "--device", "cpu", "--out", str(out), "--workers", "0"])
    assert code == 0
    printed = capsys.readouterr().out
    summary = json.loads((out / "summary.json").read_text())
    assert summary["verdict"]["text"] in printed.splitlines()
    for name, run in summary["runs"].items():
        for warning in run["warnings"]:
            assert f"  warning: {name}: {warning}" in printed.splitlines()
    assert "(eval mode; train−val gap" in printed
