"""Evaluating a trained model: predicting a saved run's images on a device, in batches, with
progress and cancel. The numbers that follow from the predictions are in :mod:`.metrics`."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from .control import Cancelled
from .data import DatasetError, ImageItem, scan, split, verify_images
from .device import autocast_dtype, memory_format, select_device, to_device, tune_for
from .heap import building_long_lived
from .images import ImageLoadError
from .metrics import (  # noqa: F401  (re-exported: evaluation's numbers live there)
    UNDEFINED,
    UNDEFINED_NOTE,
    ClassMetrics,
    Evaluation,
    class_metrics,
    confusion_matrix,
    decimal_text,
    matrix_texts,
    normalise_rows,
    share_text,
)
from .preprocess import ImageDataset, Preprocessing, UnreadableImage, collate_readable
from .priority import loader_worker_init


class _ListedImages(ImageDataset):
    """Images to classify: any that cannot be read, a file deleted since it was listed
    included, becomes an :class:`UnreadableImage` (listed with its reason), so one bad file
    never ends the run. The label is the image's place in the list, which tells the loop which
    paths each batch holds."""

    def __getitem__(self, index: int):
        try:
            return super().__getitem__(index)
        except ImageLoadError as e:
            return UnreadableImage(self.paths[index], e.reason)


#: With as few images as this many batches or fewer, the automatic choice reads them in this
#: process: starting loader processes (seconds each when spawned) would cost more than it saves.
FEW_BATCHES = 4


def loader_workers(requested: int, device: torch.device, images: int, batch_size: int) -> int:
    """How many loader processes read ``images`` images for classification on ``device``:
    ``requested``, or with -1 as many as training would use, none for a few batches."""
    if requested >= 0:
        return requested
    from .training import _auto_workers

    if images <= FEW_BATCHES * batch_size:
        return 0
    return _auto_workers(device)


def map_images(fn, preprocessing: Preprocessing, paths: Sequence[str], batch_size: int,
               device, workers: int, amp: bool, progress=None, cancel=None):
    """Yield ``(indices into paths, fn(batch) as a tensor, [(path, reason)])`` for the images
    of ``paths`` in batches, in order, read by a DataLoader (see :func:`predict_paths` for the
    arguments). ``fn`` runs in inference mode, in mixed precision unless ``amp`` is off."""
    device = select_device(device) if isinstance(device, str) else torch.device(device)
    workers = loader_workers(workers, device, len(paths), batch_size)
    dataset = _ListedImages([ImageItem(p, i, p) for i, p in enumerate(paths)],
                            preprocessing.eval_transform(),
                            draft_size=preprocessing.resize_size, skip_unreadable=True)
    loader = torch.utils.data.DataLoader(
        dataset,
        batch_size=batch_size,
        num_workers=workers,
        worker_init_fn=loader_worker_init,
        # Forking a process that runs other threads (a GUI) can deadlock the child.
        multiprocessing_context=(
            "spawn" if workers and threading.current_thread() is not threading.main_thread()
            else None),
        pin_memory=device.type == "cuda",
        collate_fn=collate_readable,
    )
    dtype = autocast_dtype(device) if amp else None
    done = 0
    if cancel is not None and cancel.is_set():
        raise Cancelled("cancelled")
    batches = iter(loader)
    try:
        for x, index, unreadable in batches:
            if cancel is not None and cancel.is_set():
                raise Cancelled("cancelled")
            output = None
            if x is not None:
                x = to_device(x, device)
                with torch.inference_mode(), torch.autocast(
                        device.type, dtype=dtype, enabled=dtype is not None):
                    output = fn(x)
                done += len(index)
            done += len(unreadable)
            yield (index.numpy() if index is not None else np.zeros(0, np.int64)), output, \
                unreadable
            if progress:
                progress(done, len(paths))
    finally:
        # On cancel (or an error) the worker processes end now, not when the garbage
        # collector reaches the iterator; a finished single-pass loader has ended them already.
        shutdown = getattr(batches, "_shutdown_workers", None)
        if shutdown is not None:
            shutdown()


def _predict(model, preprocessing: Preprocessing, paths: Sequence[str], batch_size: int,
             device, workers: int, amp: bool, progress, cancel, temperature: float = 1.0):
    """``(indices of the images read, probabilities (N, C) float32, [(path, reason)])``;
    the logits are divided by ``temperature`` first (a calibrated model's)."""
    device = select_device(device) if isinstance(device, str) else torch.device(device)
    tune_for(device)
    model = model.to(device, memory_format=memory_format(device)).eval()
    indices, probabilities, failed = [], [], []
    for index, logits, unreadable in map_images(model, preprocessing, paths, batch_size,
                                                device, workers, amp, progress, cancel):
        failed.extend(unreadable)
        if logits is not None:
            probabilities.append(torch.softmax(logits.float() / temperature, 1).cpu().numpy())
            indices.append(index)
    if not probabilities:
        return np.zeros(0, np.int64), np.zeros((0, 0), np.float32), failed
    return np.concatenate(indices), np.concatenate(probabilities), failed


def predict_paths(model, preprocessing: Preprocessing, paths: Sequence[str],
                  batch_size: int = 32, device: str | torch.device = "cpu", workers: int = -1,
                  amp: bool = True, progress=None, cancel=None, temperature: float = 1.0):
    """Class probabilities for each image that can be read, and the ones that cannot.

    The images are read by a DataLoader with ``workers`` processes (-1: see
    :func:`loader_workers`; spawned, not forked, when called from a thread other than the main
    one) and classified on ``device`` ("cpu", "cuda", "cuda:N", "mps", "auto" or a
    ``torch.device``) in batches of ``batch_size``, in mixed precision on CUDA unless ``amp``
    is off. ``progress(done, total)`` is called after each batch (``done`` counts unreadable
    images too); ``cancel.is_set()`` is checked before each batch, and :class:`Cancelled` is
    raised once it is true, after the loader's worker processes have ended.

    Returns ``(kept paths, probabilities (N, C) float32 array, [(path, reason)])``, in the
    order of ``paths``; the probabilities are those of the logits divided by ``temperature``.
    """
    indices, probs, failed = _predict(model, preprocessing, paths, batch_size, device, workers,
                                      amp, progress, cancel, temperature)
    return [paths[i] for i in indices.tolist()], probs, failed


def evaluate(model, preprocessing, classes, items: list[ImageItem], split: str = "", *,
             batch_size: int = 32, device: str | torch.device = "cpu", workers: int = -1,
             amp: bool = True, progress=None, cancel=None,
             calibration: dict | None = None) -> Evaluation:
    """Predict ``items`` and compare with their labels; ``split`` names what they are (see
    :data:`SPLIT_LABELS`). With a ``calibration`` (a checkpoint's), the confidences are
    calibrated ones, and those before calibration are kept beside them. The other arguments
    are those of :func:`predict_paths`."""
    temperature = float((calibration or {}).get("temperature", 1.0))
    indices, probs, failed = _predict(model, preprocessing, [it.path for it in items],
                                      batch_size, device, workers, amp, progress, cancel,
                                      temperature)
    kept = indices.tolist()
    pred = probs.argmax(1) if kept else np.zeros(0, int)
    confidence = probs.max(1) if kept else np.zeros(0, np.float32)
    raw = None
    if calibration is not None:
        # softmax(T · log p_T) = softmax(z): the probabilities before calibration, from the
        # calibrated ones (the constant log p_T differs from z / T by cancels out).
        with np.errstate(divide="ignore"):
            raw = _softmax_max(temperature * np.log(probs)) if kept else confidence.copy()
    true = np.array([items[i].label for i in kept], dtype=int)
    return Evaluation(list(classes), [items[i].path for i in kept], true, pred.astype(int),
                      confidence, failed, split, raw, calibration)


def _softmax_max(logits: np.ndarray) -> np.ndarray:
    """The largest softmax probability of each row (float32), for rows that may hold -inf."""
    z = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    return (1.0 / e.sum(axis=1)).astype(np.float32)


#: What :func:`evaluation_items` returns for each choice, as the result names it.
SPLIT_LABELS = {"val": "validation images", "test": "test folder images"}


#: The stages of :func:`evaluate_run`, as ``stage`` names them.
EVALUATION_STAGES = ("checking the images", "decoding every image", "evaluating")


def evaluate_run(checkpoint, which: str, progress=None, cancel=None, stage=None,
                 **kwargs) -> Evaluation:
    """Evaluate a saved run's ``best.pt`` (or any checkpoint in a run folder) on its
    validation images (``which="val"``) or its test folder's (``"test"``), labelled with
    :data:`SPLIT_LABELS`.

    The run's images are checked and decoded again first, as its training did, so that the
    split leaves out the same files: at 100,000 images that takes a while too. ``stage(name)``
    is called as each of :data:`EVALUATION_STAGES` begins, ``progress(done, total)`` reports
    within it, and ``cancel`` stops any of them. Other keyword arguments are those of
    :func:`predict_paths`."""
    from .models import load_trained

    def begin(name: str) -> None:
        if stage is not None:
            stage(name)

    net, ckpt = load_trained(checkpoint)
    classes, items = evaluation_items(Path(checkpoint).parent.parent, which,
                                      progress=progress, cancel=cancel, stage=begin)
    begin(EVALUATION_STAGES[2])
    return evaluate(net, Preprocessing.from_dict(ckpt["preprocessing"]), classes, items,
                    split=SPLIT_LABELS[which], progress=progress, cancel=cancel,
                    calibration=ckpt.get("calibration"), **kwargs)


def run_data(run_dir: str | os.PathLike, progress=None, cancel=None, stage=None):
    """The validation and test items of a saved run, rebuilt from its folders and split.

    Returns ``(classes, validation items, test items or None)``. Files that moved or changed
    since are left out (the scan reports them); a class folder that is gone is an error. The
    run's folders are the classes it trained on, under the names it gave them; classes left
    out of the training have no folder there, and their test sub-folders are ignored.
    ``progress(done, total)`` and ``cancel`` as for :func:`~tlgui.core.data.scan`;
    ``stage(name)`` is told when the check and the decoding begin.
    """
    run_dir = Path(run_dir)
    config = json.loads((run_dir / "config.json").read_text(encoding="utf-8"))
    classes = json.loads((run_dir / "classes.json").read_text(encoding="utf-8"))["classes"]
    folders = config["data"]
    missing = [f for f in folders if not os.path.isdir(f)]
    if missing:
        raise DatasetError(f"{missing[0]}: the run's image folder is gone (moved or deleted?)")
    if len(folders) != len(classes):
        raise DatasetError(f"{run_dir}: the run names {len(classes)} classes but has "
                           f"{len(folders)} class folders")
    if len(folders) < 2:
        raise DatasetError(f"{run_dir}: a run has at least two class folders, this one "
                           f"{len(folders)}")
    # One folder per class, each named after itself as when the run scanned it, so the split's
    # keys are the same (the names the run gave its classes are ``classes``). Decoded in full,
    # as the training's data was: the split then leaves out the same files. The test folder is
    # scanned with the data, so that a test image that is also a training image is kept out
    # of the test as it was then.
    test = config.get("test_folder")
    test = test if test and os.path.isdir(test) else None
    # Rebuilding 100,000 items and their split makes objects, not garbage: the collector
    # waits (its full passes would hold the interpreter's lock, and the window with it).
    with building_long_lived():
        if stage is not None:
            stage(EVALUATION_STAGES[0])
        report = scan(folders, test_folder=test, other_test_classes=True, progress=progress,
                      cancel=cancel)
        if stage is not None:
            stage(EVALUATION_STAGES[1])
        report = verify_images(report, progress=progress, cancel=cancel)
        # A class whose folder has no usable image left is not in the report: every other
        # class keeps the label the run gave it, its folder's place in ``folders``.
        label_of = {os.path.basename(os.path.normpath(f)): i for i, f in enumerate(folders)}

        def relabelled(items: list[ImageItem]) -> list[ImageItem]:
            return [ImageItem(it.path, label_of[report.classes[it.label]], it.key)
                    for it in items]

        data_split = split(report.items, config["val_fraction"], config["seed"])
        test_items = relabelled(report.test_items) if test else None
        return classes, relabelled(data_split.val), test_items


def evaluation_items(run_dir: str | os.PathLike, which: str, **kwargs
                     ) -> tuple[list[str], list[ImageItem]]:
    """The classes of a saved run and the images to evaluate it on: its validation images
    (``which="val"``) or its test folder's (``"test"``); one line says why there are none.
    Keyword arguments (progress, cancel, stage) are those of :func:`run_data`."""
    if which not in ("val", "test"):
        raise ValueError(f"which images: 'val' or 'test', not {which!r}")
    classes, val, test = run_data(run_dir, **kwargs)
    if which == "val":
        return classes, val
    if test is None:
        config = json.loads((Path(run_dir) / "config.json").read_text(encoding="utf-8"))
        folder = config.get("test_folder")
        if folder:
            raise DatasetError(f"{folder}: the run's test folder is gone (moved or deleted?)")
        raise DatasetError(f"{run_dir}: the run was trained without a test folder")
    return classes, test


def find_checkpoint(path, run: str | None = None) -> Path:
    """The ``best.pt`` meant by ``path``: a file, a run's folder, or a training's folder (then
    ``run`` by name, else the run with the best validation accuracy)."""
    path = Path(path)
    if path.is_file():
        return path
    if (path / "best.pt").is_file():
        return path / "best.pt"
    runs = sorted(p.parent.name for p in path.glob("*/best.pt"))
    if not runs:
        raise DatasetError(f"{path}: holds no trained model (no best.pt)")
    if run is not None:
        if run not in runs:
            raise DatasetError(f"{path}: has no run '{run}' (runs: {', '.join(runs)})")
        return path / run / "best.pt"
    summary = path / "summary.json"
    if summary.is_file():
        results = json.loads(summary.read_text(encoding="utf-8"))["runs"]
        runs.sort(key=lambda r: -(results.get(r, {}).get("best_val_acc") or 0.0))
    return path / runs[0] / "best.pt"


def image_files(paths) -> list[str]:
    """Image candidates among ``paths``: files as given, folders walked (junk skipped, a file
    reached twice through links listed once)."""
    from .data import _walk_files

    files: list[str] = []
    for p in paths:
        if os.path.isdir(p):
            seen = set()
            for path, identity in _walk_files(os.path.abspath(p)).files:
                if identity not in seen:
                    seen.add(identity)
                    files.append(path)
        else:
            files.append(p)
    return files
