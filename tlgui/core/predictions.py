"""Classifying image files with a trained run: the table the window and ``tlgui predict`` show,
and the CSV file both write."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from .calibration import NOT_SURE


@dataclass(frozen=True, eq=False)
class Predictions(Sequence):
    """The class and confidence of each image that could be read, held as arrays so that
    100,000 of them cost a few megabytes and go to a table column by column.

    As a sequence it is the table's rows, ``(path, class name, confidence)``, each made when
    asked for (the command line and :func:`rows_csv` read them in turn).
    """

    classes: list[str]
    paths: list[str]  #: the images read, in the order given
    predicted: np.ndarray  #: index into ``classes`` of each image's most probable class
    confidence: np.ndarray  #: that class's probability (float32)
    unreadable: list[tuple[str, str]] = field(default_factory=list)  #: (path, reason)
    #: Below this confidence a prediction is "not sure" (0: never; see core.calibration).
    threshold: float = 0.0

    @classmethod
    def from_probabilities(cls, classes, paths, probabilities: np.ndarray,
                           unreadable=(), threshold: float = 0.0) -> Predictions:
        """From class probabilities, ``(len(paths), len(classes))``."""
        if len(paths):
            predicted, confidence = probabilities.argmax(1), probabilities.max(1)
        else:
            predicted, confidence = np.zeros(0, np.int64), np.zeros(0, np.float32)
        return cls(list(classes), list(paths), predicted, confidence, list(unreadable),
                   threshold)

    @classmethod
    def joined(cls, parts: Sequence[Predictions]) -> Predictions:
        """Predictions of the same model, one after the other."""
        first = parts[0]
        return cls(first.classes, [p for part in parts for p in part.paths],
                   np.concatenate([part.predicted for part in parts]),
                   np.concatenate([part.confidence for part in parts]).astype(np.float32),
                   [u for part in parts for u in part.unreadable], first.threshold)

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index):
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        return (self.paths[index], str(self.answers()[index]), float(self.confidence[index]))

    def __iter__(self):
        return zip(self.paths, self.answers().tolist(), self.confidence.tolist())

    def predicted_names(self) -> np.ndarray:
        """The most probable class name of each image, sure or not (an object array)."""
        return np.asarray(self.classes, dtype=object)[self.predicted]

    def not_sure(self) -> np.ndarray:
        """Whether each prediction is below the threshold."""
        return self.confidence < self.threshold

    def not_sure_count(self) -> int:
        return int(self.not_sure().sum())

    def answers(self) -> np.ndarray:
        """What the model answers for each image: its class, or "not sure (class?)" below the
        threshold (an object array, for a table column)."""
        names = self.predicted_names()
        doubtful = self.not_sure()
        if doubtful.any():
            names = names.copy()
            names[doubtful] = [f"{NOT_SURE} ({name}?)" for name in names[doubtful]]
        return names


def predict_files(checkpoint, paths, *, device="cpu", batch_size: int = 32, workers: int = -1,
                  progress=None, cancel=None) -> Predictions:
    """Classify image files and folders (walked) with a trained run's checkpoint.

    ``device``, ``batch_size``, ``workers``, ``progress(done, total)`` and ``cancel`` are those
    of :func:`~tlgui.core.evaluation.predict_paths`.
    """
    from .evaluation import image_files, predict_paths
    from .models import load_trained
    from .preprocess import Preprocessing

    net, ckpt = load_trained(checkpoint)
    files = image_files(paths)
    calibration = ckpt.get("calibration") or {}  # none before a training's end
    kept, probs, failed = predict_paths(net, Preprocessing.from_dict(ckpt["preprocessing"]),
                                        files, batch_size=batch_size, device=device,
                                        workers=workers, progress=progress, cancel=cancel,
                                        temperature=calibration.get("temperature", 1.0))
    return Predictions.from_probabilities(ckpt["classes"], kept, probs, failed,
                                          calibration.get("threshold", 0.0))


def prediction_rows(checkpoint, paths, progress=None, cancel=None, **kwargs):
    """``(rows, [(path, reason)])`` for the images that can and cannot be read: the rows are
    :class:`Predictions`, a sequence of ``(path, class, confidence)``. Keyword arguments are
    those of :func:`predict_files`."""
    predictions = predict_files(checkpoint, paths, progress=progress, cancel=cancel, **kwargs)
    return predictions, predictions.unreadable


def rows_csv(predictions: Predictions) -> str:
    """The prediction table as CSV text: path, class ("not sure" below the threshold),
    confidence (four decimals, calibrated where the model is), and the most probable class
    whether sure or not."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["path", "class", "confidence", "most_probable"])
    doubtful = predictions.not_sure().tolist()
    for path, name, p, unsure in zip(predictions.paths, predictions.predicted_names().tolist(),
                                     predictions.confidence.tolist(), doubtful):
        writer.writerow([path, NOT_SURE if unsure else name, f"{p:.4f}", name])
    return out.getvalue()
