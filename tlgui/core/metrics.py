"""What follows from a model's predictions: the confusion matrix, per-class precision, recall
and F1, the list of mistakes, and how each number is written. Numpy only (no PyTorch), so the
window can import it before PyTorch has loaded."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


def confusion_matrix(true: np.ndarray, pred: np.ndarray, num_classes: int) -> np.ndarray:
    """Counts: row = true class, column = predicted class."""
    cm = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(cm, (np.asarray(true, int), np.asarray(pred, int)), 1)
    return cm


def normalise_rows(cm: np.ndarray) -> np.ndarray:
    """Each row divided by its total (the share of each true class predicted as each class);
    a class without images keeps a row of zeros."""
    totals = cm.sum(axis=1, keepdims=True)
    return np.divide(cm, totals, out=np.zeros(cm.shape, float), where=totals > 0)


#: How a number that is 0/0 (undefined) is shown.
UNDEFINED = "–"

#: The sentence that explains :data:`UNDEFINED` wherever per-class metrics are shown.
UNDEFINED_NOTE = (f"{UNDEFINED}: undefined (a class never predicted has no precision, a class "
                  f"without images has no recall)")


def share_text(value: float | None, digits: int = 1) -> str:
    """A share as a percentage (``66.7%``), or :data:`UNDEFINED` for ``None``."""
    return UNDEFINED if value is None else f"{value:.{digits}%}"


def decimal_text(value: float | None, digits: int = 2) -> str:
    """A number with ``digits`` decimals (``0.62``), or :data:`UNDEFINED` for ``None``."""
    return UNDEFINED if value is None else f"{value:.{digits}f}"


def matrix_texts(cm: np.ndarray, percent: bool = False) -> list[list[str]]:
    """The confusion matrix's cells as shown: counts, or row percentages where a class without
    images has :data:`UNDEFINED` in every cell (rather than a row of 0 % that sums to nothing)."""
    if not percent:
        return [[str(int(v)) for v in row] for row in cm]
    shares = normalise_rows(cm)
    return [[f"{v:.0%}" if total else UNDEFINED for v in row]
            for row, total in zip(shares, cm.sum(axis=1))]


@dataclass(frozen=True)
class ClassMetrics:
    """One class's figures; a ratio that would be 0/0 is ``None`` (undefined), not 0."""

    precision: float | None  #: right among those predicted as the class; None: never predicted
    recall: float | None  #: found among the class's images; None: the class has no images
    f1: float | None  #: harmonic mean of the two; None: no images and never predicted
    support: int  #: images of this class
    predicted: int  #: images predicted as this class

    def note(self) -> str | None:
        """Why a figure is undefined, in a few words, or None when all are defined."""
        if not self.support and not self.predicted:
            return "no images of this class, and none predicted as it"
        if not self.predicted:
            return "never predicted, so precision is undefined"
        if not self.support:
            return "no images of this class, so recall is undefined"
        return None


def class_metrics(cm: np.ndarray) -> list[ClassMetrics]:
    """Precision, recall and F1 of each class from a confusion matrix (row = true class,
    column = predicted class).

    F1 is ``2·TP / (2·TP + FP + FN)``: the harmonic mean of precision and recall where both
    are defined, and 0 for a class that has images but is never predicted (none of them found)
    or is predicted but has no images (every such prediction wrong)."""
    metrics = []
    for k in range(len(cm)):
        tp = int(cm[k, k])
        predicted, actual = int(cm[:, k].sum()), int(cm[k, :].sum())
        precision = tp / predicted if predicted else None
        recall = tp / actual if actual else None
        errors = (predicted - tp) + (actual - tp)
        f1 = 2 * tp / (2 * tp + errors) if tp or errors else None
        metrics.append(ClassMetrics(precision, recall, f1, actual, predicted))
    return metrics


@dataclass
class Evaluation:
    """A model's predictions on a set of images, and what follows from them."""

    classes: list[str]
    paths: list[str]
    true: np.ndarray
    pred: np.ndarray
    confidence: np.ndarray  #: probability of the predicted class
    unreadable: list[tuple[str, str]] = field(default_factory=list)  #: (path, reason)
    #: what was evaluated, as the window and the command line name it (a value of
    #: :data:`SPLIT_LABELS`), so the result keeps its label when the choice changes later
    split: str = ""
    #: the probability of the predicted class before calibration (None: not calibrated, the
    #: same as ``confidence``)
    raw_confidence: np.ndarray | None = None
    #: the model's calibration (temperature and threshold; see tlgui.core.calibration)
    calibration: dict | None = None

    @property
    def accuracy(self) -> float | None:
        """The share of images predicted right; None when there are none."""
        return float((self.true == self.pred).mean()) if len(self.true) else None

    def matrix(self) -> np.ndarray:
        """Counts: row = true class, column = predicted class."""
        return confusion_matrix(self.true, self.pred, len(self.classes))

    def metrics(self) -> list[ClassMetrics]:
        """Precision, recall and F1 of each class, in class order."""
        return class_metrics(self.matrix())

    def assessment(self, threshold: float | None = None):
        """How calibrated the confidences are on these images, and how many the model's
        threshold (or ``threshold``) makes "not sure" (see tlgui.core.calibration)."""
        from .calibration import assess

        calibration = self.calibration or {}
        if threshold is None:
            threshold = float(calibration.get("threshold", 0.0))
        raw = self.confidence if self.raw_confidence is None else self.raw_confidence
        return assess(raw, self.confidence, self.true == self.pred,
                      float(calibration.get("temperature", 1.0)), threshold)

    def cell(self, true_class: int, predicted_class: int) -> list[int]:
        """Indices of the images of ``true_class`` predicted as ``predicted_class``."""
        return np.flatnonzero((self.true == true_class) & (self.pred == predicted_class)).tolist()

    def mistakes(self) -> list[int]:
        """Indices of the misclassified images, most confident mistakes first (equally
        confident ones in their original order)."""
        wrong = np.flatnonzero(self.true != self.pred)
        return wrong[np.argsort(-self.confidence[wrong], kind="stable")].tolist()
