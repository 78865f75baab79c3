"""An audit of a data set: images probably in the wrong folder, duplicates, duplicates that
leak between training, validation and test, and images far from every class.

Everything is computed on the frozen backbone's features (:mod:`.features`, from the feature
store), so an audit of 20,000 images costs one backbone pass the first time and seconds after.

- **Probably mislabelled.** A simple classifier (logistic regression on the features) is
  trained k times, each time without one fold, and predicts the fold it did not see: each
  image gets probabilities from a model that never saw its label. As in confident learning
  (Northcutt et al., 2021), an image is flagged when the model is confident, by each class's
  own standard (its mean probability on its own images), that it belongs to another class;
  the score is how strongly the model disagrees with the folder (1 − the probability of it).
- **Duplicates.** Same bytes, or features nearly the same: cosine similarity at least the
  threshold calibrated on this data set (what a resized, re-compressed copy of its own images
  scores). Across classes the label cannot be right twice; across the training / validation
  / test split it is a *leak*: the model is tested on what it learned, and the accuracy
  reported is too high.
- **Outliers.** Images whose distance to every class's centre is unusual for that class
  (more than :data:`OUTLIER_Z` robust deviations beyond its median distance).

How far to trust it: the classifier's out-of-fold accuracy is reported with the findings.
"""

from __future__ import annotations

import csv
import hashlib
import io
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from .data import ImageItem, ScanReport, split

#: The kinds of finding, in the order they are listed.
ISSUES = ("leak", "duplicate", "mislabelled", "outlier")
#: Images are judged mislabelled only when the classifier is right on at least this share of
#: the images it never saw, and this far above always answering the largest class: a
#: classifier barely better than a guess would flag most images, each flag a guess.
MIN_JUDGING_ACCURACY = 0.6
MIN_GAIN_OVER_CHANCE = 0.2
#: Folds of the out-of-fold predictions (fewer where a class has fewer images).
FOLDS = 5
#: The features are reduced to at most this many principal components for the classifier:
#: it trains in seconds on 20,000 images and loses nothing it needs.
CLASSIFIER_DIMENSIONS = 128
#: An outlier is this many robust deviations beyond the median distance of every class.
OUTLIER_Z = 4.0
#: See :func:`outlier_scores`: the least deviation, as a share of the gap between classes.
SEPARATION_SHARE = 0.1
#: The near-duplicate threshold is this quantile of the similarities of images to their own
#: resized and re-compressed copies (so 95 % of such copies are caught).
COPY_QUANTILE = 0.05
#: A similarity threshold is never below this: features of unrelated images of one class can
#: be that close with weak (random) weights.
MIN_NEAR_DUPLICATE = 0.9
#: Blocks of rows compared at a time when looking for near duplicates (bounded memory).
_BLOCK = 2048
#: Similarities held at once by the nearest-neighbour search (float32: 256 MB).
_BLOCK_VALUES = 2**26

CSV_COLUMNS = ("path", "issue", "label", "suggested", "score", "detail")


@dataclass(frozen=True)
class Finding:
    """One suspicious image: what is wrong, its folder's class, the class the audit suggests
    (or ""), a score (higher: more suspicious; comparable within one issue) and a sentence."""

    path: str
    issue: str
    label: str
    suggested: str
    score: float
    detail: str


@dataclass
class AuditResult:
    findings: list[Finding]
    images: int  #: images audited
    oof_accuracy: float | None  #: the classifier's out-of-fold accuracy (None: not trained)
    near_duplicate_threshold: float | None  #: None: near duplicates not looked for
    unreadable: list[tuple[str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        return {issue: sum(f.issue == issue for f in self.findings) for issue in ISSUES}

    def trust_line(self) -> str:
        """How much to trust the audit, in one sentence."""
        if self.oof_accuracy is None:
            return ("No classifier could be trained (a class has fewer than 2 images): "
                    "no image is judged mislabelled.")
        share = f"{self.oof_accuracy * 100:.1f} %"
        if self.oof_accuracy < MIN_JUDGING_ACCURACY:
            verdict = ("low: the features barely separate the classes, so the mislabelled "
                       "list is mostly guesswork (try ImageNet weights)")
        elif self.oof_accuracy < 0.85:
            verdict = "moderate: check each suggestion by eye"
        else:
            verdict = "good: most suggestions are worth a look"
        return (f"The classifier behind the suggestions is right on {share} of images it "
                f"never saw; trust is {verdict}.")

    def csv_text(self) -> str:
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(CSV_COLUMNS)
        for f in self.findings:
            writer.writerow([f.path, f.issue, f.label, f.suggested, f"{f.score:.4f}", f.detail])
        return out.getvalue()


# -- mislabelled -----------------------------------------------------------------------------
def out_of_fold_probabilities(vectors: np.ndarray, labels: np.ndarray, classes: int,
                              seed: int = 0, folds: int = FOLDS) -> np.ndarray | None:
    """Probabilities (n, classes) for each image from a classifier that did not see it;
    None when some class has fewer than 2 images."""
    from sklearn.decomposition import PCA
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    counts = np.bincount(labels, minlength=classes)
    present = counts[counts > 0]
    if len(present) < 2 or present.min() < 2:
        return None
    k = int(min(folds, present.min()))
    x = _unit_rows(vectors)
    probabilities = np.zeros((len(labels), classes), dtype=np.float64)
    splitter = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed)
    for train, test in splitter.split(x, labels):
        dims = int(min(CLASSIFIER_DIMENSIONS, x.shape[1], len(train) - 1))
        model = make_pipeline(StandardScaler(), PCA(dims, random_state=seed),
                              LogisticRegression(C=0.5, max_iter=500))
        model.fit(x[train], labels[train])
        seen = model.classes_
        probabilities[np.ix_(test, seen)] = model.predict_proba(x[test])
    return probabilities


def mislabelled(probabilities: np.ndarray, labels: np.ndarray) -> list[tuple[int, int, float]]:
    """``(index, suggested class, score)`` of each image the out-of-fold ``probabilities``
    confidently place in another class (confident learning's off-diagonal), most suspicious
    first; score = 1 − the probability of its own label."""
    n, k = probabilities.shape
    thresholds = np.array([probabilities[labels == j, j].mean() if np.any(labels == j)
                           else np.inf for j in range(k)])
    above = probabilities >= thresholds[None, :]
    found = []
    for i in range(n):
        candidates = np.nonzero(above[i])[0]
        if not len(candidates):
            continue
        best = int(candidates[np.argmax(probabilities[i, candidates])])
        if best != labels[i]:
            found.append((i, best, float(1.0 - probabilities[i, labels[i]])))
    return sorted(found, key=lambda t: (-t[2], t[0]))


# -- duplicates ------------------------------------------------------------------------------
def exact_duplicate_groups(paths: Sequence[str], progress=None,
                           cancel=None) -> list[list[int]]:
    """Groups (of indices into ``paths``, in order) of files with the same bytes; sizes are
    compared first, so only files with a same-sized partner are read. ``progress(done,
    total)`` counts the files read."""
    by_size: dict[int, list[int]] = {}
    for i, path in enumerate(paths):
        try:
            by_size.setdefault(os.path.getsize(path), []).append(i)
        except OSError:
            continue
    groups: dict[str, list[int]] = {}
    to_read = [i for same in by_size.values() if len(same) > 1 for i in same]
    for done, i in enumerate(to_read):
        if done % 256 == 0:
            _check(cancel)
            if progress is not None:
                progress(done, len(to_read))
        try:
            with open(paths[i], "rb") as f:
                digest = hashlib.file_digest(f, "blake2b").hexdigest() \
                    if hasattr(hashlib, "file_digest") else \
                    hashlib.blake2b(f.read()).hexdigest()  # Python 3.10
        except OSError:
            continue
        groups.setdefault(digest, []).append(i)
    if progress is not None:
        progress(len(to_read), len(to_read))
    return sorted((g for g in groups.values() if len(g) > 1), key=lambda g: g[0])


def centred(vectors: np.ndarray, mean: np.ndarray | None = None) -> np.ndarray:
    """Rows minus the data set's mean feature (``mean``, default their own), at unit length.

    Backbone features share a large common part (after a ReLU every value is positive; with
    random weights the common part is nearly all of it): without it, similarities measure
    what differs between images, so unrelated images of one colour are no longer "nearly
    the same"."""
    x = np.asarray(vectors, dtype=np.float64)
    return _unit_rows(x - (x.mean(0) if mean is None else mean))


def nearest_neighbours(vectors: np.ndarray, cancel=None,
                       progress=None) -> tuple[np.ndarray, np.ndarray]:
    """For each row, the most similar other row (cosine of :func:`centred` features) and that
    similarity; computed a block of rows at a time (at most :data:`_BLOCK_VALUES`
    similarities), so memory stays bounded at any size; ``cancel`` (anything with
    ``is_set()``) is honoured and ``progress(done, total)`` called between blocks."""
    x = centred(vectors).astype(np.float32)
    n = len(x)
    best = np.full(n, -1, dtype=np.int64)
    similarity = np.full(n, -np.inf, dtype=np.float32)
    rows_per_block = int(min(_BLOCK, max(16, _BLOCK_VALUES // max(n, 1))))
    for start in range(0, n, rows_per_block):
        _check(cancel)
        if progress is not None:
            progress(start, n)
        block = x[start:start + rows_per_block] @ x.T
        rows = np.arange(len(block))
        block[rows, start + rows] = -np.inf  # not itself
        best[start:start + len(block)] = block.argmax(1)
        similarity[start:start + len(block)] = block[rows, best[start:start + len(block)]]
    if progress is not None:
        progress(n, n)
    return best, similarity


def calibrated_threshold(copy_similarities: Sequence[float]) -> float:
    """The near-duplicate threshold from the similarities of images to their own altered
    copies: the :data:`COPY_QUANTILE` quantile, never below :data:`MIN_NEAR_DUPLICATE`."""
    values = np.asarray(copy_similarities, dtype=np.float64)
    values = values[np.isfinite(values)]
    if not len(values):
        return 0.98
    return float(min(0.999, max(MIN_NEAR_DUPLICATE, np.quantile(values, COPY_QUANTILE))))


#: Near duplicates are looked for only when at least this share of altered copies is more
#: like its own original than like any other image: otherwise the features cannot tell a
#: copy from a look-alike, and every "near duplicate" would be a guess.
MIN_COPY_RETRIEVAL = 0.9


def calibrate(copies: np.ndarray, originals: Sequence[int],
              vectors: np.ndarray) -> tuple[float | None, str]:
    """The near-duplicate threshold from altered ``copies`` of the images ``originals``
    (indices into ``vectors``), or None when the features cannot tell copies from other
    images; and a sentence saying which."""
    if not len(originals):
        return None, "near duplicates not looked for: no image could be altered to calibrate"
    mean = np.asarray(vectors, dtype=np.float64).mean(0)
    x = centred(vectors, mean)
    c = centred(copies, mean)
    originals = np.asarray(originals)
    own = np.sum(c * x[originals], axis=1)
    others = c @ x.T
    others[np.arange(len(originals)), originals] = -np.inf
    best_other = others.max(1) if x.shape[0] > 1 else np.full(len(originals), -np.inf)
    retrieved = float(np.mean(own > best_other))
    if retrieved < MIN_COPY_RETRIEVAL:
        return None, (f"near duplicates not looked for: only {retrieved * 100:.0f} % of "
                      f"{len(originals)} altered copies are more like their own image than "
                      f"like another, so these features cannot tell a copy from a look-alike "
                      f"(exact copies are still found)")
    # Above what any copy scored against another image, too: closer than that, two images
    # are copies; less close, they may be look-alikes.
    threshold = max(calibrated_threshold(own), float(np.max(best_other)) + 1e-6)
    if threshold > float(np.median(own)):
        return None, (f"near duplicates not looked for: half of {len(originals)} altered "
                      f"copies are no closer to their own image than the closest other "
                      f"image is, so these features cannot tell a copy from a look-alike "
                      f"(exact copies are still found)")
    caught = float(np.mean(own >= threshold))
    return threshold, (f"near duplicates: similarity of at least {threshold:.3f}, which "
                       f"{caught * 100:.0f} % of {len(originals)} resized and re-compressed "
                       f"copies of these images reach and no copy reaches with another image")


# -- outliers --------------------------------------------------------------------------------
def outlier_scores(vectors: np.ndarray, labels: np.ndarray, classes: int) -> np.ndarray:
    """For each image, how unusual its distance to the nearest class centre is: in robust
    deviations beyond that class's median distance (the smallest over classes).

    A deviation is never taken smaller than :data:`SEPARATION_SHARE` of the gap between a
    class's own images and the next class's centre: in a class of near-identical images, an
    image a hair further out than the rest is not unlike them in any way that matters."""
    x = centred(vectors)
    kept = [c for c in range(classes) if np.sum(labels == c) >= 3]
    if not kept:
        return np.zeros(len(x))
    centres = np.stack([x[labels == c].mean(0) for c in kept])
    centres /= np.maximum(np.linalg.norm(centres, axis=1, keepdims=True), 1e-12)
    distance = 1.0 - x @ centres.T  # (images, kept classes)
    scores = np.full(len(x), np.inf)
    for k, c in enumerate(kept):
        members = labels == c
        own = distance[members, k]
        median = np.median(own)
        spread = 1.4826 * np.median(np.abs(own - median))
        if len(kept) > 1:
            nearest_other = np.delete(distance[members], k, axis=1).min(1)
            spread = max(spread, SEPARATION_SHARE * (np.median(nearest_other) - median))
        spread = max(spread, 1e-6)
        scores = np.minimum(scores, (distance[:, k] - median) / spread)
    return scores


# -- the whole audit -------------------------------------------------------------------------
def audit_features(items: Sequence[ImageItem], where: Sequence[str], vectors: np.ndarray,
                   classes: Sequence[str], threshold: float | None,
                   seed: int = 0, cancel=None,
                   progress: Callable[[str, int, int], None] | None = None) -> AuditResult:
    """The audit of ``items`` (one row of ``vectors`` each; ``where`` says "train", "val" or
    "test" for each) with the near-duplicate ``threshold`` (None: exact copies only).
    ``progress(stage, done, total)`` reports each stage (total 0: no count)."""

    def stage(name: str):
        if progress is None:
            return None
        progress(name, 0, 0)
        return lambda done, total: progress(name, done, total)

    labels = np.array([it.label for it in items], dtype=np.int64)
    paths = [it.path for it in items]
    k = len(classes)
    findings: list[Finding] = []
    name = list(classes).__getitem__

    def pair_finding(i: int, j: int, score: float, how: str) -> Finding:
        """The finding for ``i``, a copy of ``j`` (listed before it)."""
        if where[i] != where[j]:
            issue = "leak"
            detail = (f"{how} {paths[j]} ({_SPLIT_NAMES[where[j]]}); this one is in "
                      f"{_SPLIT_NAMES[where[i]]}")
        else:
            issue = "duplicate"
            detail = f"{how} {paths[j]}"
        if labels[j] != labels[i]:  # which of the two folders is right, the audit cannot say
            detail += f", filed under '{name(labels[j])}': one of the two labels is wrong"
        return Finding(paths[i], issue, name(labels[i]), "", score, detail)

    exact_pairs = set()
    for group in exact_duplicate_groups(paths, stage("looking for files with the same bytes"),
                                        cancel):
        first = group[0]
        for i in group[1:]:
            exact_pairs.add((min(i, first), max(i, first)))
            findings.append(pair_finding(i, first, 1.0, "same bytes as"))
    if len(items) > 1 and threshold is not None:
        best, similarity = nearest_neighbours(vectors, cancel,
                                              stage("looking for near duplicates"))
        seen_pairs = set(exact_pairs)
        for i in np.argsort(-similarity, kind="stable"):
            j = int(best[i])
            s = float(similarity[i])
            if s < threshold:
                break
            if best[j] != i:
                continue  # copies are each other's nearest; an image many are near is not
            pair = (min(int(i), j), max(int(i), j))
            if pair in seen_pairs:
                continue
            seen_pairs.add(pair)
            later, earlier = pair[1], pair[0]
            findings.append(pair_finding(later, earlier, s, f"nearly the same "
                                         f"(similarity {s:.3f}) as"))

    _check(cancel)
    stage(f"classifying each image with a model that never saw it ({FOLDS} folds)")
    probabilities = out_of_fold_probabilities(vectors, labels, k, seed)
    _check(cancel)
    accuracy = None
    notes = []
    if probabilities is not None:
        accuracy = float((probabilities.argmax(1) == labels).mean())
        chance = float(np.bincount(labels).max() / len(labels))
        judged = accuracy >= max(MIN_JUDGING_ACCURACY, chance + MIN_GAIN_OVER_CHANCE)
        if not judged:
            notes.append(f"no image is judged mislabelled: the classifier is right on "
                         f"{accuracy * 100:.0f} % of the images it never saw, against "
                         f"{chance * 100:.0f} % for always answering the largest class, so "
                         f"each suggestion would be a guess")
        for i, suggested, score in (mislabelled(probabilities, labels) if judged else ()):
            findings.append(Finding(
                paths[i], "mislabelled", name(labels[i]), name(suggested), score,
                f"the classifier gives '{name(suggested)}' "
                f"{probabilities[i, suggested] * 100:.0f} % and its folder's class "
                f"{probabilities[i, labels[i]] * 100:.0f} %"))

    stage("looking for outliers")
    scores = outlier_scores(vectors, labels, k)
    for i in np.argsort(-scores, kind="stable"):
        if scores[i] <= OUTLIER_Z:
            break
        findings.append(Finding(paths[i], "outlier", name(labels[i]), "", float(scores[i]),
                                f"far from every class ({scores[i]:.1f} deviations beyond "
                                f"the usual distance)"))
    order = {issue: n for n, issue in enumerate(ISSUES)}
    findings.sort(key=lambda f: (order[f.issue], -f.score, f.path))
    return AuditResult(findings, len(items), accuracy, threshold, notes=notes)


_SPLIT_NAMES = {"train": "training", "val": "validation", "test": "the test folder"}


def audit_items(report: ScanReport, val_fraction: float = 0.2,
                seed: int = 0) -> tuple[list[ImageItem], list[str]]:
    """Every image of ``report`` with the part of the split it falls in, as training would
    split it (``"train"``, ``"val"``, ``"test"``)."""
    parts = split(report.items, val_fraction, seed)
    items = list(parts.train) + list(parts.val) + list(report.test_items or [])
    where = (["train"] * len(parts.train) + ["val"] * len(parts.val)
             + ["test"] * len(report.test_items or []))
    return items, where


def altered_copy(image):
    """A copy of a PIL image as copies usually differ: resized to 80 %, a little cropped,
    JPEG-compressed at quality 75."""
    from PIL import Image

    w, h = image.size
    crop = image.crop((w // 40, h // 40, w - w // 40, h - h // 40))
    small = crop.resize((max(1, int(crop.width * 0.8)), max(1, int(crop.height * 0.8))),
                        Image.Resampling.BILINEAR)
    buffer = io.BytesIO()
    small.convert("RGB").save(buffer, "JPEG", quality=75)
    buffer.seek(0)
    return Image.open(buffer).convert("RGB")


def run_audit(report: ScanReport, backbone: str, weights: str = "imagenet",
              image_size: int | None = None, device: str = "auto", val_fraction: float = 0.2,
              seed: int = 0, allow_download: bool = False, calibration_images: int = 48,
              progress: Callable[[str, int, int], None] | None = None,
              cancel=None) -> AuditResult:
    """Audit ``report``'s images (and its test folder's) with ``backbone``'s features.
    ``progress(stage, done, total)`` reports each stage, the backbone pass counted."""
    import torch

    from .features import compact, frozen_backbone, image_features
    from .images import load_rgb
    from .preprocess import preprocessing_for

    items, where = audit_items(report, val_fraction, seed)
    paths = [it.path for it in items]
    model = frozen_backbone(backbone, weights, allow_download, seed, cancel)
    features = image_features(
        paths, backbone, weights, image_size, device, allow_download=allow_download,
        seed=seed, cancel=cancel, model=model,
        progress=(lambda d, t: progress("computing backbone features", d, t))
        if progress else None)
    kept = [i for i in range(len(items)) if features.valid[i]]
    items = [items[i] for i in kept]
    where = [where[i] for i in kept]

    if progress:
        progress("altering a few images to calibrate what counts as a copy", 0, 0)
    # Calibrate the near-duplicate threshold: altered copies of a sample of the images,
    # compared with the originals' stored features.
    rng = np.random.default_rng(seed)
    sample = rng.choice(len(items), size=min(calibration_images, len(items)), replace=False) \
        if items else np.zeros(0, int)
    copies, originals = [], []
    preprocessing = preprocessing_for(backbone, image_size)
    transform = preprocessing.eval_transform()
    for i in sample.tolist():
        try:
            copies.append(transform(altered_copy(load_rgb(items[i].path))))
            originals.append(i)
        except Exception:  # an image that cannot be altered is simply not in the sample
            continue
    copy_vectors = np.zeros((0, features.vectors.shape[1]))
    if copies:
        model = model.cpu().eval()  # 48 images: the copies are compared on the CPU
        with torch.inference_mode():
            out = torch.cat([model.stem(torch.stack(copies[s:s + 16]))
                             for s in range(0, len(copies), 16)]).float().numpy()
        copy_vectors = compact(out, backbone)
    threshold, note = calibrate(copy_vectors, originals, features.vectors)
    result = audit_features(items, where, features.vectors, report.classes, threshold, seed,
                            cancel, progress)
    result.unreadable = features.unreadable
    result.notes.insert(0, note)
    return result


def _check(cancel) -> None:
    if cancel is not None and cancel.is_set():
        from .control import Cancelled

        raise Cancelled("audit cancelled")


def _unit_rows(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.maximum(norms, 1e-12)
