"""What a training shows, in sentences: the dropout verdict and warnings about a model.

The window and ``tlgui train`` show the same sentences; both come from here. Each function
takes plain numbers (per-epoch histories, prediction counts), so every case can be checked on
synthetic histories where the right answer is known.

A history is a list of per-epoch records: :class:`~tlgui.core.training.EpochRecord` objects or
rows of ``metrics.csv`` (dicts). The training accuracy used is ``train_acc_eval``: measured in
evaluation mode (dropout off), like the validation accuracy, so that the gap between the two
compares like with like. The running accuracy measured while dropout drops half the neurons is
biased low and would hide over-fitting.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

#: Training accuracy this far above validation accuracy (10 points) is over-fitting: well above
#: the few points that the noise of a validation set of a few hundred images explains.
OVERFIT_GAP = 0.10
#: Two runs whose gaps or validation accuracies differ by less than this (5 points) count as a
#: tie: on small validation sets a few images make that much difference.
CLEAR_DIFFERENCE = 0.05
#: Fewer epochs than this say nothing about over-fitting: in the first epochs the training and
#: validation curves still climb together, and dropout's slower start dominates.
MIN_EPOCHS_FOR_VERDICT = 3
#: Validation accuracy still "rising" when it gained at least this much (2 points) over the
#: last ``RISING_WINDOW`` epochs.
RISING_GAIN = 0.02
RISING_WINDOW = 2
#: A model that gives one class to at least this share of the validation images predicts
#: (almost) one class for everything ...
ONE_CLASS_SHARE = 0.9
#: ... and has not learnt to tell the classes apart when it also gives that class to at least
#: this share of the images of the other classes. (A model that is right on a validation set
#: made mostly of one class is not flagged.)
OTHERS_TAKEN_SHARE = 0.5
#: Differences within this many standard errors of an accuracy measured on the validation
#: images can be chance (two: a difference that size turns up by chance about one time in
#: twenty). On a small validation set this raises the thresholds above, and a validation
#: accuracy this close to that of guessing cannot be told from guessing.
STANDARD_ERRORS = 2.0


@dataclass(frozen=True)
class Verdict:
    """What a training shows: ``kind`` names the case (stable, for tests and tools), ``text``
    says it in sentences a person can read."""

    kind: str
    text: str


def train_accuracy(record) -> float:
    """The eval-mode training accuracy of one history record (``train_acc`` for records that
    lack it, such as ``metrics.csv`` files written before it was measured)."""
    value = _field(record, "train_acc_eval")
    return _field(record, "train_acc") if value is None or math.isnan(value) else value


def validation_accuracy(record) -> float:
    value = _field(record, "val_acc")
    return math.nan if value is None else value


def gap(record) -> float:
    """Training minus validation accuracy (negative when validation is the higher)."""
    return train_accuracy(record) - validation_accuracy(record)


def describe_gap(value: float) -> str:
    """A gap in words: '12 points above validation', or 'validation 3 points above training'."""
    points = round(abs(value) * 100)
    unit = "point" if points == 1 else "points"
    if points == 0:
        return "equal to validation accuracy"
    if value > 0:
        return f"{points} {unit} above validation accuracy"
    return f"{points} {unit} below validation accuracy"


def still_rising(history: Sequence) -> bool:
    """Validation accuracy gained at least ``RISING_GAIN`` over the last epochs."""
    if len(history) <= RISING_WINDOW:
        return False
    gain = validation_accuracy(history[-1]) - validation_accuracy(history[-1 - RISING_WINDOW])
    return _reaches(gain, RISING_GAIN)


def noise_margin(accuracy: float, images: int | None) -> float:
    """``STANDARD_ERRORS`` standard errors of ``accuracy`` measured on ``images`` images: how
    far it can move by chance (0 when the number of images is not known)."""
    if not images or math.isnan(accuracy):
        return 0.0
    p = min(max(accuracy, 0.0), 1.0)
    return STANDARD_ERRORS * math.sqrt(p * (1 - p) / images)


def single_run_verdict(history: Sequence, val_size: int | None = None) -> Verdict:
    """What one run shows about over-fitting. ``val_size``: the number of validation images,
    so that a gap within what chance gives on so few is not called over-fitting."""
    early = _too_early_or_unmeasured({"model": history})
    if early:
        return early
    last = history[-1]
    train_gap = gap(last)
    margin = noise_margin(validation_accuracy(last), val_size)
    rising = (" Validation accuracy was still rising at the end: more epochs may help."
              if still_rising(history) else "")
    if _in_points(train_gap) >= _in_points(max(OVERFIT_GAP, margin)):
        return Verdict("overfits", (
            f"The model over-fits: its training accuracy ({_pct(train_accuracy(last))}) is "
            f"{describe_gap(train_gap)} ({_pct(validation_accuracy(last))}). Dropout, "
            f"augmentation, more images or fewer trainable blocks reduce that.{rising}"))
    # Only the size of the validation set hides it.
    unclear = _in_points(train_gap) >= _in_points(OVERFIT_GAP)
    return Verdict("no_overfitting", (
        f"{'No clear sign' if unclear else 'No sign'} of over-fitting: training accuracy "
        f"({_pct(train_accuracy(last))}) is {describe_gap(train_gap)} "
        f"({_pct(validation_accuracy(last))}).{rising}"
        + (_chance_note(val_size, margin) if unclear else "")))


def dropout_verdict(with_dropout: Sequence, without_dropout: Sequence,
                    val_size: int | None = None) -> Verdict:
    """What the comparison of the run with dropout and the run without shows.

    Each history argument is that run's history. The verdict looks at the last epoch of each
    run: its gap (eval-mode training accuracy minus validation accuracy) and its validation
    accuracy. ``val_size``, the number of validation images, raises the thresholds to what
    chance alone could give on so few. Kinds: ``too_early``, ``no_validation``,
    ``both_overfit``, ``dropout_reduces_overfitting``, ``overfitting_not_reduced``,
    ``dropout_slowed_learning``, ``dropout_costs_accuracy`` and ``no_overfitting``.
    """
    early = _too_early_or_unmeasured({"with": with_dropout, "without": without_dropout})
    if early:
        return early
    w, wo = with_dropout[-1], without_dropout[-1]
    gap_with, gap_without = gap(w), gap(wo)
    val_with, val_without = validation_accuracy(w), validation_accuracy(wo)
    # Every comparison is made in the whole points the sentences quote, so that no number in a
    # sentence contradicts what the sentence says of it.
    points_with, points_without = _in_points(gap_with), _in_points(gap_without)
    margin = noise_margin((val_with + val_without) / 2, val_size)
    clear = _in_points(max(CLEAR_DIFFERENCE, margin))
    gaps = (f"with dropout, training accuracy is {describe_gap(gap_with)} "
            f"({_pct(train_accuracy(w))} against {_pct(val_with)}); without, it is "
            f"{describe_gap(gap_without)} ({_pct(train_accuracy(wo))} against "
            f"{_pct(val_without)})")
    behind = _in_points(val_without - val_with)  # how far the run with dropout trails
    rising = still_rising(with_dropout)
    over_with = points_with >= _in_points(max(OVERFIT_GAP, noise_margin(val_with, val_size)))
    over_without = points_without >= _in_points(max(OVERFIT_GAP,
                                                    noise_margin(val_without, val_size)))
    # Each run's threshold allows for the chance in its own validation accuracy, so one run
    # can over-fit with a smaller gap than the other's. A gap at least as large as one called
    # over-fitting is over-fitting too: the two runs are then judged alike.
    over_with, over_without = (over_with or (over_without and points_with >= points_without),
                               over_without or (over_with and points_without >= points_with))
    narrowed = points_without - points_with
    clearly_narrowed = narrowed >= clear
    clearly_behind = behind >= clear
    behind_text = ""
    if clearly_behind:
        behind_text = (f" The run with dropout is {_count_points(behind)} behind on validation "
                       "at the last epoch" + (" but still rising." if rising else "."))
    # A gap or difference the fixed thresholds would count, hidden by the size of the
    # validation set: the sentence says "clearly" and why.
    fixed_clear = _in_points(CLEAR_DIFFERENCE)
    hidden = (clear > fixed_clear and (
        max(points_with, points_without) >= _in_points(OVERFIT_GAP)
        or abs(behind) >= fixed_clear or narrowed >= fixed_clear))
    note = _chance_note(val_size, margin) if hidden else ""

    if over_with and over_without:
        text = f"Both runs over-fit: {gaps}."
        if clearly_narrowed:
            text += (f" Dropout narrowed the gap by {_count_points(narrowed)} but did not "
                     f"close it.")
        elif narrowed < 0:
            text += (f" Dropout did not reduce the gap: it is {_count_points(-narrowed)} "
                     f"wider with dropout.")
        text += behind_text
        text += (" Dropout alone is not enough here: more images, augmentation or fewer "
                 "trainable blocks would help.")
        return Verdict("both_overfit", text)
    if over_without and clearly_narrowed:
        text = f"Without dropout the model over-fits, with dropout much less: {gaps}."
        if clearly_behind:
            text += (f" The run with dropout is still {_count_points(behind)} behind on "
                     f"validation at the last epoch"
                     + (" and rising: more epochs may let it catch up." if rising else "."))
        return Verdict("dropout_reduces_overfitting", text)
    if over_with:  # the run without dropout has the smaller gap
        return Verdict("overfitting_not_reduced", (
            f"Only the run with dropout over-fits, so dropout did not help against "
            f"over-fitting here: {gaps}.{behind_text}"))
    if over_without:  # the run with dropout has a smaller gap, though not clearly smaller
        return Verdict("overfitting_not_reduced", (
            f"The run without dropout over-fits, and dropout barely reduced it (by "
            f"{_count_points(narrowed)}): {gaps}.{behind_text}{note}"))
    neither = "neither run clearly over-fits" if hidden else "neither run over-fits"
    if clearly_behind and rising:
        return Verdict("dropout_slowed_learning", (
            f"Dropout slowed learning: {neither}, and the run with dropout is "
            f"{_count_points(behind)} behind on validation at the last epoch but still rising. "
            f"More epochs may close "
            f"the difference. In detail, {gaps}.{note}"))
    if clearly_behind:
        return Verdict("dropout_costs_accuracy", (
            f"Dropout cost accuracy here: {neither}, and the run with dropout is "
            f"{_count_points(behind)} behind on validation at the last epoch and no longer "
            f"improving; a lower "
            f"dropout may suit this data. In detail, {gaps}.{note}"))
    lead = (f" The run with dropout is {_count_points(-behind)} ahead on validation at the "
            "last epoch."
            if -behind >= clear else
            " Both end at about the same validation accuracy: dropout makes no clear "
            "difference here.")
    return Verdict("no_overfitting", f"{neither.capitalize()}: {gaps}.{lead}{note}")


def training_verdict(histories: dict[str, Sequence], val_size: int | None = None
                     ) -> Verdict | None:
    """The verdict for a training's runs (by name): the dropout comparison when both runs of
    the pair are there, else the single run's; None without any run. ``val_size``: the
    number of validation images."""
    if "with_dropout" in histories and "without_dropout" in histories:
        return dropout_verdict(histories["with_dropout"], histories["without_dropout"],
                               val_size)
    if len(histories) == 1:
        return single_run_verdict(next(iter(histories.values())), val_size)
    return None


def chance_accuracy(num_classes: int) -> float:
    """The accuracy of guessing among ``num_classes`` classes."""
    return 1.0 / max(1, num_classes)


def is_at_chance(accuracy: float, num_classes: int, images: int) -> bool:
    """``accuracy`` on ``images`` validation images cannot be told from guessing: it lies
    within ``STANDARD_ERRORS`` standard errors above chance (or below it)."""
    if num_classes < 2 or images < 1 or math.isnan(accuracy):
        return False
    p = chance_accuracy(num_classes)
    return accuracy <= p + noise_margin(p, images) + 1e-9


def prediction_warnings(confusion: Sequence[Sequence[int]], accuracy: float,
                        classes: Sequence[str]) -> list[str]:
    """Warnings about a model from its validation predictions.

    ``confusion[t][p]``: how many validation images of class ``t`` the model gave class ``p``;
    ``accuracy``: its validation accuracy on them. Warns when it gives one class to (almost)
    every image, the images of the other classes included, and when its accuracy cannot be
    told from chance.
    """
    predicted = [sum(row[p] for row in confusion) for p in range(len(classes))]
    images = sum(predicted)
    if images == 0 or len(classes) < 2:
        return []
    warnings = []
    top = max(range(len(predicted)), key=lambda i: predicted[i])
    share = predicted[top] / images
    others = images - sum(confusion[top])  # images of the other classes
    others_taken = predicted[top] - confusion[top][top]  # ... that were given class ``top``
    if (_reaches(share, ONE_CLASS_SHARE) and others
            and _reaches(others_taken / others, OTHERS_TAKEN_SHARE)):
        warnings.append(
            f"It predicts \u201c{classes[top]}\u201d for {_pct(share)} of the validation images "
            f"({predicted[top]} of {images}, {others_taken} of the {others} of other classes "
            f"among them): it has not learnt to tell the classes apart.")
    if is_at_chance(accuracy, len(classes), images):
        warnings.append(
            f"Its validation accuracy ({_pct(accuracy)}) cannot be told from guessing among "
            f"{len(classes)} classes ({_pct(chance_accuracy(len(classes)))}) on {images} "
            f"validation image{'s' if images != 1 else ''}.")
    return warnings


# -- helpers -------------------------------------------------------------------------------
def _too_early_or_unmeasured(histories: dict[str, Sequence]) -> Verdict | None:
    epochs = min(len(h) for h in histories.values())
    if epochs < MIN_EPOCHS_FOR_VERDICT:
        done = "no epoch" if epochs == 0 else f"{epochs} epoch{'s' if epochs != 1 else ''}"
        return Verdict("too_early", (
            f"After {done} it is too early to say whether the model over-fits: train for at "
            f"least {MIN_EPOCHS_FOR_VERDICT} epochs."))
    if any(math.isnan(validation_accuracy(h[-1])) for h in histories.values()):
        return Verdict("no_validation", (
            "There are no validation images, so over-fitting cannot be measured: every class "
            "has a single image, or no validation image could be read. Add images to the "
            "classes (two or more each) to measure it."))
    return None


def _chance_note(val_size: int | None, margin: float) -> str:
    return (f" On {val_size} validation images, differences under {_points(margin)} can be "
            f"chance.")


def _reaches(value: float, threshold: float) -> bool:
    """``value >= threshold``, where a difference like 0.9 - 0.8 (0.0999…) reaches 0.1."""
    return value >= threshold - 1e-9


def _in_points(value: float) -> int:
    """``value`` (an accuracy, a gap or a threshold) in whole percentage points, rounded as
    the sentences show it: 0.9 - 0.8 (0.0999…) is 10 points."""
    return round(value * 100)


def _field(record, name: str):
    value = record.get(name) if isinstance(record, dict) else getattr(record, name, None)
    return None if value is None or value == "" else float(value)


def _pct(value: float) -> str:
    return f"{value:.0%}" if value in (0.0, 1.0) else f"{value:.1%}"


def _points(value: float) -> str:
    return _count_points(abs(_in_points(value)))


def _count_points(points: int) -> str:
    return f"{points} point{'s' if points != 1 else ''}"
