"""How far to trust a model's confidence, and when to answer "not sure".

A network's softmax is usually over-confident: of the images it gives 90 %, fewer than 90 %
are right. *Temperature scaling* (Guo et al., 2017) divides the logits by one number T, fitted
on the validation images to minimise their negative log-likelihood: the predicted classes do
not change, their probabilities become honest. The *expected calibration error* (ECE) measures
the gap: the images are put in bins of confidence, and the difference between each bin's
accuracy and its mean confidence is averaged, weighted by the bin's size.

A *rejection threshold* then turns the predictions whose (calibrated) confidence is below it
into "not sure": chosen on the validation images as the lowest confidence at which the
predictions kept are right at least a target share of the time (the precision), so that as
few as possible are rejected.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

#: Confidence bins of the reliability diagram and the ECE (equal widths over [0, 1]).
BINS = 15
#: The temperatures considered: outside, a handful of validation images would be steering.
TEMPERATURE_RANGE = (0.25, 10.0)
#: Fewer validation images than this leave the temperature at 1 (nothing fitted).
MIN_IMAGES = 20
#: The share of kept predictions that should be right, by default.
DEFAULT_TARGET_PRECISION = 0.95
#: What a prediction below the threshold is called.
NOT_SURE = "not sure"


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """Class probabilities of ``logits`` (N, C) divided by ``temperature``, in float64."""
    z = np.asarray(logits, dtype=np.float64) / temperature
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def negative_log_likelihood(logits: np.ndarray, labels: np.ndarray, temperature: float) -> float:
    """The mean negative log-probability of the true classes at ``temperature``."""
    z = np.asarray(logits, dtype=np.float64) / temperature
    z = z - z.max(axis=1, keepdims=True)
    log_norm = np.log(np.exp(z).sum(axis=1))
    return float(np.mean(log_norm - z[np.arange(len(z)), labels]))


def fit_temperature(logits: np.ndarray, labels: np.ndarray) -> float:
    """The temperature in :data:`TEMPERATURE_RANGE` that minimises the negative
    log-likelihood of ``labels`` (a bounded search over log T: the likelihood has one
    minimum there)."""
    from scipy.optimize import minimize_scalar

    labels = np.asarray(labels, dtype=np.int64)
    low, high = (math.log(t) for t in TEMPERATURE_RANGE)
    result = minimize_scalar(lambda log_t: negative_log_likelihood(logits, labels,
                                                                   math.exp(log_t)),
                             bounds=(low, high), method="bounded",
                             options={"xatol": 1e-5})
    return float(math.exp(result.x))


@dataclass(frozen=True)
class Reliability:
    """A reliability diagram: per confidence bin, its images, mean confidence and accuracy
    (NaN for an empty bin), and the expected calibration error."""

    edges: np.ndarray  #: BINS + 1 bin edges over [0, 1]
    counts: np.ndarray
    confidence: np.ndarray
    accuracy: np.ndarray
    ece: float


def reliability(confidence: np.ndarray, correct: np.ndarray, bins: int = BINS) -> Reliability:
    """The diagram of predictions with top-class probability ``confidence`` and whether each
    is ``correct``. A confidence on an edge goes to the bin above it (1.0 to the last)."""
    confidence = np.asarray(confidence, dtype=np.float64)
    correct = np.asarray(correct, dtype=bool)
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.searchsorted(edges, confidence, side="right") - 1, 0, bins - 1)
    counts = np.bincount(which, minlength=bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_conf = np.bincount(which, weights=confidence, minlength=bins) / counts
        accuracy = np.bincount(which, weights=correct.astype(float), minlength=bins) / counts
    total = counts.sum()
    gaps = np.where(counts > 0, np.abs(accuracy - mean_conf), 0.0)
    ece = float((counts * gaps).sum() / total) if total else math.nan
    return Reliability(edges, counts, mean_conf, accuracy, ece)


def threshold_for_precision(confidence: np.ndarray, correct: np.ndarray,
                            target: float) -> float:
    """The lowest confidence at which the predictions at or above it are right at least
    ``target`` of the time (0 when all of them are; above the highest confidence, so that
    every prediction is "not sure", when not even the most confident ones are). Ties are
    kept or rejected together: a threshold cannot split images of equal confidence."""
    confidence = np.asarray(confidence, dtype=np.float64)
    correct = np.asarray(correct, dtype=bool)
    if not len(confidence):
        return 0.0
    order = np.argsort(-confidence, kind="stable")
    conf, right = confidence[order], correct[order]
    kept_right = np.cumsum(right)
    kept = np.arange(1, len(conf) + 1)
    # Only the last of each run of equal confidences is a possible cut.
    cut = np.r_[conf[1:] != conf[:-1], True]
    precise = (kept_right / kept >= target - 1e-12) & cut
    if precise[-1]:
        return 0.0
    if not precise.any():
        return float(np.nextafter(conf[0], np.inf))
    return float(conf[np.flatnonzero(precise)[-1]])


@dataclass(frozen=True)
class Calibration:
    """A model's calibration on its validation images, as stored in its checkpoint."""

    temperature: float
    threshold: float  #: calibrated confidence below which a prediction is "not sure"
    target_precision: float | None  #: what the threshold was chosen for (None: by hand)
    images: int  #: validation images it was measured on
    ece_before: float
    ece_after: float
    not_sure: int  #: validation images below the threshold
    kept_accuracy: float | None  #: accuracy of the others (None when none is left)
    note: str = ""  #: why the temperature was not fitted, where it was not

    def to_dict(self) -> dict:
        return {k: (None if isinstance(v, float) and math.isnan(v) else v)
                for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, d) -> Calibration:
        """From a checkpoint's ``calibration``, every value checked (a crafted file reaches
        here): ``ValueError`` naming the first that is not right."""
        if not isinstance(d, dict):
            raise ValueError("calibration: not a table of values")
        unknown = sorted(set(d) - set(cls.__dataclass_fields__))
        if unknown:
            raise ValueError(f"calibration: unknown entry {unknown[0]!r}")

        def number(key, low, high, optional=False):
            value = d.get(key)
            if value is None and optional:
                return math.nan if key.startswith("ece") else None
            if (isinstance(value, bool) or not isinstance(value, (int, float))
                    or not math.isfinite(value) or not low <= value <= high):
                raise ValueError(f"calibration.{key}: {value!r} is not a number from {low} "
                                 f"to {high}")
            return float(value)

        images = d.get("images")
        not_sure = d.get("not_sure")
        for key, value in (("images", images), ("not_sure", not_sure)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"calibration.{key}: {value!r} is not a count of images")
        note = d.get("note", "")
        if not isinstance(note, str) or len(note) > 300 or not note.isprintable():
            raise ValueError("calibration.note: not a line of text")
        return cls(
            temperature=number("temperature", *TEMPERATURE_RANGE),
            threshold=number("threshold", 0.0, 1.0 + 1e-9),
            target_precision=number("target_precision", 0.0, 1.0, optional=True),
            images=images,
            ece_before=number("ece_before", 0.0, 1.0, optional=True),
            ece_after=number("ece_after", 0.0, 1.0, optional=True),
            not_sure=not_sure,
            kept_accuracy=number("kept_accuracy", 0.0, 1.0, optional=True),
            note=note,
        )

    def with_threshold(self, threshold: float, confidence: np.ndarray,
                       correct: np.ndarray) -> Calibration:
        """The same calibration with a threshold set by hand (figures measured anew on the
        validation images' calibrated ``confidence`` and ``correct``)."""
        not_sure, kept = _rejected(confidence, correct, threshold)
        return Calibration(self.temperature, threshold, None, self.images, self.ece_before,
                           self.ece_after, not_sure, kept, self.note)


def _rejected(confidence: np.ndarray, correct: np.ndarray, threshold: float
              ) -> tuple[int, float | None]:
    """(images below ``threshold``, accuracy of the others or None)."""
    keep = np.asarray(confidence) >= threshold
    kept = int(keep.sum())
    return int(len(keep) - kept), (float(np.asarray(correct)[keep].mean()) if kept else None)


def calibrate(logits: np.ndarray, labels: np.ndarray,
              target_precision: float = DEFAULT_TARGET_PRECISION) -> Calibration:
    """Fit the temperature on validation ``logits`` (N, C) and their ``labels``, then choose
    the threshold for ``target_precision``. With fewer than :data:`MIN_IMAGES` images, or no
    mistake among them (the likelihood would only grow as the temperature shrinks, whatever
    the model would do on other images), the temperature stays 1 and ``note`` says why."""
    logits = np.asarray(logits, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.int64)
    n = len(labels)
    predicted = logits.argmax(1) if n else np.zeros(0, np.int64)
    correct = predicted == labels
    note = ""
    if n < MIN_IMAGES:
        note = (f"{n} validation images are too few to fit a temperature (at least "
                f"{MIN_IMAGES})")
    elif correct.all():
        note = "the model makes no mistake on its validation images: nothing to fit on"
    temperature = 1.0 if note else fit_temperature(logits, labels)
    before = softmax(logits).max(1) if n else np.zeros(0)
    after = softmax(logits, temperature).max(1) if n else np.zeros(0)
    # A threshold chosen on a handful of images would claim a precision it cannot know.
    threshold = (0.0 if n < MIN_IMAGES
                 else threshold_for_precision(after, correct, target_precision))
    not_sure, kept = _rejected(after, correct, threshold)
    return Calibration(temperature, min(threshold, 1.0), target_precision, n,
                       reliability(before, correct).ece, reliability(after, correct).ece,
                       not_sure, kept, note)


def describe(c: Calibration) -> str:
    """What the calibration means for a user, in one or two sentences."""
    if c.images == 0:
        return "No validation images: the confidences could not be calibrated."
    if c.note:
        start = f"Confidences not calibrated: {c.note}."
    else:
        edge = any(abs(c.temperature - t) / t < 1e-3 for t in TEMPERATURE_RANGE)
        start = (f"Confidences calibrated on {c.images} validation images (temperature "
                 f"{c.temperature:.2f}{', the end of the range tried' if edge else ''}): the "
                 f"expected calibration error went from {c.ece_before:.1%} to "
                 f"{c.ece_after:.1%}.")
    if c.threshold <= 0:
        if c.images < MIN_IMAGES:
            return f"{start} No prediction is \"not sure\": too few images to choose when."
        rule = "No prediction is \"not sure\"" + (
            f": the model is right {c.target_precision:.0%} of the time or more on all of "
            f"them." if c.target_precision else ".")
        return f"{start} {rule}"
    if c.not_sure == c.images:
        return (f"{start} Every validation image would be \"not sure\": even the model's most "
                f"confident predictions are right less than {c.target_precision:.0%} of the "
                f"time." if c.target_precision else
                f"{start} Every validation image is below the threshold: all \"not sure\".")
    aim = (f", chosen so that the predictions kept are right {c.target_precision:.0%} of the "
           f"time" if c.target_precision else ", set by hand")
    return (f"{start} Below {c.threshold:.1%} confidence{aim}, a prediction is \"not sure\": "
            f"{c.not_sure} of {c.images} validation images ({c.not_sure / c.images:.0%}); the "
            f"others are right {c.kept_accuracy:.1%} of the time.")


@dataclass(frozen=True)
class Assessment:
    """How calibrated a model's confidences are on some images, and what its threshold does
    to them: what the Evaluate tab shows."""

    images: int
    before: Reliability  #: the confidences as the network gives them
    after: Reliability  #: divided by the temperature
    temperature: float
    threshold: float
    not_sure: int  #: images below the threshold
    kept_accuracy: float | None  #: accuracy on the others (None when none is left)


def assess(raw_confidence: np.ndarray, confidence: np.ndarray, correct: np.ndarray,
           temperature: float, threshold: float) -> Assessment:
    """The reliability before and after calibration of predictions with top probabilities
    ``raw_confidence`` (before) and ``confidence`` (after), right where ``correct``, and the
    images ``threshold`` makes "not sure"."""
    correct = np.asarray(correct, dtype=bool)
    not_sure, kept = _rejected(confidence, correct, threshold)
    return Assessment(len(correct), reliability(raw_confidence, correct),
                      reliability(confidence, correct), temperature, threshold, not_sure, kept)


def assessment_text(a: Assessment, what: str = "images") -> str:
    """The sentence beside the reliability diagram."""
    if a.images == 0:
        return "No image to measure the confidences on."
    if a.temperature == 1.0:
        start = (f"Expected calibration error on these {a.images:,} {what}: "
                 f"{a.after.ece:.1%} (not calibrated: temperature 1).")
    else:
        start = (f"Expected calibration error on these {a.images:,} {what}: "
                 f"{a.before.ece:.1%} as the network gives them, {a.after.ece:.1%} after "
                 f"calibration (temperature {a.temperature:.2f}).")
    if a.threshold <= 0:
        return f"{start} No answer is \"not sure\" (no threshold)."
    kept = ("none is left" if a.kept_accuracy is None
            else f"the others are right {a.kept_accuracy:.1%} of the time")
    return (f"{start} Below {a.threshold:.1%} confidence an answer is \"not sure\": "
            f"{a.not_sure:,} of {a.images:,} ({a.not_sure / a.images:.0%}); {kept}.")


def save_threshold(checkpoint_path, threshold: float, confidence: np.ndarray,
                   correct: np.ndarray) -> Calibration:
    """Set a run's "not sure" threshold by hand in its ``best.pt``, with its figures measured
    on the validation images' calibrated ``confidence`` and ``correct``; the file is replaced
    whole or not at all. Returns the calibration written."""
    import torch

    from .paths import atomic_torch_save

    if not 0.0 <= threshold <= 1.0:
        raise ValueError(f"a threshold is a confidence from 0 to 1, not {threshold}")
    checkpoint = torch.load(checkpoint_path, map_location="cpu", weights_only=True)
    stored = checkpoint.get("calibration") if isinstance(checkpoint, dict) else None
    if stored is None:
        raise ValueError(f"{checkpoint_path}: has no calibration (its training did not finish, "
                         f"or an older tlgui wrote it)")
    try:
        calibration = Calibration.from_dict(stored)
    except ValueError as e:
        raise ValueError(f"{checkpoint_path}: {e}") from e
    updated = calibration.with_threshold(threshold, confidence, correct)
    checkpoint["calibration"] = updated.to_dict()
    atomic_torch_save(checkpoint, checkpoint_path)
    _update_summary(Path(checkpoint_path), updated)
    return updated


def _update_summary(checkpoint_path: Path, calibration: Calibration) -> None:
    """The run folder's summary.json says what best.pt now holds (its calibration there is
    what the Train step shows); a summary that cannot be read is left as it is."""
    import json

    from .paths import atomic_write_json

    summary_path = checkpoint_path.parent.parent / "summary.json"
    try:
        summary = json.loads(summary_path.read_text(encoding="utf-8"))
        run = summary["runs"][checkpoint_path.parent.name]
    except (OSError, ValueError, KeyError, TypeError):
        return
    if isinstance(run, dict):  # the run of that name in the folder holding best.pt's run
        run["calibration"] = {**calibration.to_dict(), "text": describe(calibration)}
        atomic_write_json(summary_path, summary)
