"""The trainer: plain Python, no Qt. It reports events through one callback and honours a
:class:`~tlgui.core.control.RunControl` (pause, resume, stop) at every batch.

With ``compare_dropout`` the same model is trained twice in lockstep, with and without
dropout, from the same initial weights on the same batches. The frozen part of the backbone
(the *stem*) runs once per batch for both, and, when augmentation is off, once per image for
the whole training: its outputs are cached, so later epochs only train the head.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import os
import random
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
from torch import nn

from . import calibration, verdicts
from . import events as ev
from .advice import default_backbone_lr_factor
from .calibration import DEFAULT_TARGET_PRECISION, Calibration, calibrate
from .control import Cancelled, RunControl
from .data import (
    DatasetError,
    ImageItem,
    ScanReport,
    count_labels,
    decode_failures,
    split,
    without_files,
)
from .device import autocast_dtype, describe, memory_format, select_device, to_device, tune_for
from .distributed import (
    SINGLE,
    PeerFailed,
    Processes,
    Terminated,
    failure_elsewhere,
    signalled,
)
from .errors import one_line
from .event_log import EventLogWriter, TrainingFailed
from .feature_store import FeatureKey, FeatureStore, StoredFeatures, stored_features
from .features import feature_key
from .images import MIN_IMAGE_SIZE, ImageLoadError
from .models import (
    STRATEGIES,
    ModelSpec,
    TransferNet,
    block_count,
    build_model,
    twin_without_dropout,
)
from .paths import (
    atomic_torch_save,
    atomic_write_json,
    atomic_write_text,
    remove_orphan_temp_files,
)
from .preprocess import ImageDataset, Preprocessing, collate_readable, preprocessing_for
from .priority import loader_worker_init
from .registry import BACKBONES
from .weights import CHECKPOINT_FORMAT, WeightsError

SCHEDULES = ("cosine", "step", "none")

#: A best.pt larger than SMALL_CHECKPOINT_BYTES is rewritten at most this often while training
#: (and always when training ends), so a fast training does not spend its time writing a large
#: backbone again and again; a smaller one is written whenever the best changes. Either way
#: last.pt holds the best epoch's trainable weights, so a killed training resumes exactly.
BEST_CHECKPOINT_INTERVAL = 30.0
SMALL_CHECKPOINT_BYTES = 100 * 2**20

#: Settings that may differ when a training resumes: they change where and how fast it runs,
#: not what it computes. Every other setting must be the one the run started with.
RESUMABLE_CHANGES = ("device", "workers", "allow_download")

#: Rank r of a distributed training draws its dropout masks and augmentations from the seed
#: plus r times this, so that the ranks do not repeat each other's (rank 0: a single
#: process's).
RANK_SEED_STRIDE = 7919


@dataclass
class TrainConfig:
    """Every setting of a training; stored as ``config.json`` in the run folder."""

    model: str = "vgg16"
    weights: str = "imagenet"
    strategy: str = "frozen"
    trainable_blocks: int = 1
    epochs: int = 10
    batch_size: int = 32
    lr: float = 1e-3
    #: None: 1.0 with random weights, 0.1 with pretrained ones (see ``advice``).
    backbone_lr_factor: float | None = None
    weight_decay: float = 1e-4
    dropout: float = 0.5
    hidden: int = 256
    compare_dropout: bool = False
    image_size: int | None = None
    augment: bool = False
    schedule: str = "cosine"
    early_stopping: int = 0
    val_fraction: float = 0.2
    seed: int = 0
    device: str = "auto"
    amp: bool = True
    workers: int = -1
    feature_cache: bool = True
    allow_download: bool = True
    #: The share of kept predictions that should be right: it sets the confidence below which
    #: a prediction is "not sure" (see tlgui.core.calibration).
    target_precision: float = DEFAULT_TARGET_PRECISION

    def __post_init__(self) -> None:
        if self.backbone_lr_factor is None:
            self.backbone_lr_factor = default_backbone_lr_factor(self.weights)

    def validate(self) -> None:
        """Raise ``ValueError`` with one line naming the first setting that cannot train."""
        checks = [
            (self.epochs >= 1, "epochs must be at least 1"),
            # Batch normalisation cannot learn from a batch of one image.
            (self.batch_size >= 2, "batch size must be at least 2 (batch normalisation "
                                   "needs two images per batch)"),
            (self.lr > 0, "learning rate must be positive"),
            (0.0 <= self.dropout < 1.0, "dropout must be in [0, 1)"),
            (self.hidden >= 0, "hidden width must be 0 or more"),
            (self.schedule in SCHEDULES, f"schedule must be one of {', '.join(SCHEDULES)}"),
            (self.early_stopping >= 0, "early-stopping patience must be 0 (off) or more"),
            (not self.compare_dropout or self.dropout > 0,
             "the dropout comparison needs a dropout above 0"),
            (0.0 < self.val_fraction < 1.0,
             "validation fraction must be more than 0 and less than 1"),
            (self.image_size is None or self.image_size >= MIN_IMAGE_SIZE,
             f"image size must be at least {MIN_IMAGE_SIZE} px (the backbones halve it five "
             f"times; smaller images leave them nothing to see), not {self.image_size}"),
            (self.strategy in STRATEGIES, f"strategy must be one of {', '.join(STRATEGIES)}"),
            (0.0 < self.target_precision <= 1.0,
             "target precision must be more than 0 and at most 1"),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(message)
        if self.strategy == "partial" and self.model in BACKBONES:  # unknown: build_model says so
            blocks = block_count(self.model)
            if not 1 <= self.trainable_blocks <= blocks:
                raise ValueError(
                    f"{self.model} has {blocks} blocks: the trainable blocks must be 1 to "
                    f"{blocks}, not {self.trainable_blocks}"
                )

    def model_spec(self, num_classes: int, dropout: float | None = None) -> ModelSpec:
        return ModelSpec(
            name=self.model,
            num_classes=num_classes,
            dropout=self.dropout if dropout is None else dropout,
            hidden=self.hidden,
            strategy=self.strategy,
            trainable_blocks=self.trainable_blocks,
        )


@dataclass
class EpochRecord:
    """One epoch of one run. ``train_loss`` and ``train_acc`` are running figures over the
    epoch's batches, with dropout active; ``train_loss_eval`` and ``train_acc_eval`` are
    measured after the epoch in evaluation mode (dropout off), like the validation figures, on
    the images of :func:`train_eval_items`: the train–validation gap compares those."""

    epoch: int
    train_loss: float
    train_acc: float
    val_loss: float
    val_acc: float
    lr: float
    seconds: float
    train_loss_eval: float = math.nan
    train_acc_eval: float = math.nan


@dataclass
class RunState:
    """One model being trained: the one with dropout, the one without, or the only one."""

    name: str
    dropout: float
    model: TransferNet
    optimizer: torch.optim.Optimizer | None = None
    #: Its own loss scaler (float16 on CUDA only): a scale fitted to another run's losses
    #: would skip or under-use this run's steps.
    scaler: torch.amp.GradScaler | None = None
    history: list[EpochRecord] = field(default_factory=list)
    best_val_acc: float = -1.0
    best_val_loss: float = math.inf
    best_epoch: int = -1
    best_state: dict | None = None  #: trainable weights of the best epoch, in memory
    best_unsaved: bool = False  #: best_state is newer than best.pt
    epochs_without_gain: int = 0
    active: bool = True
    stop_reason: str = ""
    test_acc: float | None = None
    #: The validation confusion matrix at the best and the last epoch: ``[t][p]`` images of
    #: class ``t`` the model gave class ``p``.
    best_val_predictions: list[list[int]] | None = None
    last_val_predictions: list[list[int]] | None = None
    #: In a distributed training: the trainable part wrapped in DistributedDataParallel,
    #: which averages its gradients over the ranks.
    parallel: nn.Module | None = None
    #: Its confidences calibrated on the validation images with the best weights, when the
    #: training finished (see tlgui.core.calibration).
    calibration: Calibration | None = None


@dataclass
class TrainingStats:
    """Counters that show where the time went (used by tests and the benchmark)."""

    stem_images: int = 0
    feature_seconds: float = 0.0
    train_seconds: float = 0.0


#: Eval-mode training accuracy is measured on at most this many training images. With a
#: feature cache and no augmentation it is measured on all of them (the cache makes it cheap);
#: otherwise every measurement costs a pass over these images (the frozen part of the
#: backbone, when there is one, runs over them only once), so a fixed sample bounds the cost.
TRAIN_EVAL_LIMIT = 500


def image_digests(items: list[ImageItem], num_classes: int) -> list[str]:
    """A digest per class of its images in ``items``: their split keys (names in the class
    folder), sizes and modification times, so that a photo replaced under the same name is
    told apart without reading every file. A file gone counts as changed."""
    lines: list[list[str]] = [[] for _ in range(num_classes)]
    for item in items:
        try:
            st = os.stat(item.path)
            size, mtime = st.st_size, st.st_mtime_ns
        except OSError:
            size, mtime = -1, -1
        lines[item.label].append(f"{item.key}\0{size}\0{mtime}")
    return [hashlib.sha256("\n".join(sorted(class_lines)).encode()).hexdigest()
            for class_lines in lines]


def train_eval_items(items: list[ImageItem], limit: int = TRAIN_EVAL_LIMIT) -> list[ImageItem]:
    """The training images whose eval-mode accuracy is measured: all of them, or ``limit`` of
    them spread evenly over the list (which is ordered by class), the same ones every epoch."""
    if len(items) <= limit:
        return items
    return [items[i * len(items) // limit] for i in range(limit)]


def run_names(config: TrainConfig) -> list[tuple[str, float]]:
    if config.compare_dropout:
        return [("with_dropout", config.dropout), ("without_dropout", 0.0)]
    return [("model", config.dropout)]


def schedule_factor(schedule: str, epoch: int, epochs: int) -> float:
    """The learning-rate multiplier for ``epoch`` (0-based) of ``epochs``."""
    if schedule == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * epoch / epochs))
    if schedule == "step":
        return 0.1 ** (epoch // max(1, math.ceil(epochs / 3)))
    return 1.0


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


class Trainer:
    """Train one model, or the with/without-dropout pair, on a scanned data set.

    Parameters
    ----------
    config : TrainConfig
    report : ScanReport
        The scanned data set; ``report.test_items`` are evaluated with the best weights.
    out_dir : path or None
        The run folder for checkpoints, metrics and ``summary.json``; None writes nothing.
    on_event : callable, optional
        Receives the event records of :mod:`tlgui.core.events`, in the training thread.
    control : RunControl, optional
        Pause/resume/stop flags, honoured at every batch.
    resume : bool
        Continue the training in ``out_dir``: each run from its own last complete epoch, with
        the best epoch's weights it had found. A setting that changes the result (all but
        ``RESUMABLE_CHANGES``) or images that differ from the run's start are refused with a
        ``ValueError`` naming them; ``config.json`` and ``classes.json`` stay as written.
    processes : Processes
        This process's place in a distributed training (see :mod:`tlgui.core.distributed`):
        every rank trains on its share of each batch; rank 0 alone reads and writes
        ``out_dir`` and reports events. By default the one process of an ordinary training.
    """

    def __init__(
        self,
        config: TrainConfig,
        report: ScanReport,
        out_dir: str | os.PathLike | None = None,
        on_event: Callable[[object], None] | None = None,
        control: RunControl | None = None,
        resume: bool = False,
        processes: Processes = SINGLE,
    ):
        config.validate()
        report.require_trainable()
        self.processes = processes
        if processes.distributed:
            _check_batch_split(config.batch_size, processes.world_size)
        self.config = config
        self.report = report
        # Rank 0 alone reads and writes the run folder; the others get what it read.
        self.out_dir = Path(out_dir) if out_dir and processes.is_main else None
        if resume and processes.is_main:
            self._check_resumable()
        listener = (on_event if on_event and processes.is_main else None) or (lambda event: None)
        #: Every event also goes to the run folder's append-only log (see event_log).
        self.event_log = EventLogWriter(self.out_dir) if self.out_dir else None

        def report(event) -> None:
            if self.event_log is not None:
                self.event_log.write(event)
            listener(event)

        self.on_event = report
        self.control = control or RunControl()
        self.resume = resume
        self.stats = TrainingStats()
        self.runs: list[RunState] = []
        self.device = select_device(config.device)
        self.preprocessing: Preprocessing = preprocessing_for(config.model, config.image_size)
        self._last_batch_event = 0.0
        self._loaders: dict = {}
        #: Images that passed the scan but failed to decode here: path -> reason. They are
        #: left out of their batches, named in the log once, and listed in the summary.
        self.unreadable: dict[str, str] = {}
        #: A distributed rank's own feature store, removed when the training ends (see
        #: _feature_store).
        self._private_store: Path | None = None
        self._shares: dict[int, tuple[list, list]] = {}  #: see _share

    # -- public ----------------------------------------------------------------------------
    def run(self) -> dict:
        """Train and return the summary (also written to ``summary.json``)."""
        try:
            return self._run()
        except (KeyboardInterrupt, Terminated) as e:
            self._interrupted(e)
        except Exception as e:
            if self.processes.distributed and signalled():  # a write cut short by Ctrl+C
                self._interrupted(e)
            # In a distributed training the rank that failed first names the reason; the
            # others stop because it did, and say so.
            explained = self.processes.explain_failure(e)
            if self.event_log is not None:
                self.event_log.write(TrainingFailed(one_line(explained)))
            if explained is not e:
                raise explained from e
            raise
        finally:
            if self.event_log is not None:
                self.event_log.close()
            if self._private_store is not None:
                shutil.rmtree(self._private_store, ignore_errors=True)

    def _interrupted(self, e: BaseException):
        """Ctrl+C, or torchrun ending the processes: a stop (raised on as KeyboardInterrupt),
        unless another process failed first (then that is why: PeerFailed)."""
        cause = failure_elsewhere() if self.processes.distributed else None
        if cause is not None:
            if self.event_log is not None:
                self.event_log.write(TrainingFailed(cause))
            raise PeerFailed(cause) from e
        self._record_stop()
        raise KeyboardInterrupt from e

    def _record_stop(self) -> None:
        """A training ended by Ctrl+C or a signal: its best weights and a summary that says
        it stopped, as a stop asked for in the window leaves them (rank 0 writes)."""
        if self.out_dir is None or getattr(self, "_data_split", None) is None:
            return
        try:
            self._flush_best()
            summary = self._summary("stopped", self._data_split)
            atomic_write_json(self.out_dir / "summary.json", summary)
            self.on_event(ev.TrainingFinished(status="stopped", summary=summary))
        except Exception as e:  # a second fault on the way out: the stop is what to report
            self._log(f"could not record the stop: {one_line(e)}")

    def _run(self) -> dict:
        cfg = self.config
        self._verify_images()
        seed_everything(cfg.seed)
        data_split = split(self.report.items, cfg.val_fraction, cfg.seed)
        if len(data_split.train) < 2:
            raise ValueError(f"{len(data_split.train)} training image(s) after the split: "
                             "training needs at least 2")
        self._val_size = len(data_split.val)
        self._data_split = data_split
        if self.resume and self.processes.is_main:
            self._check_same_images(data_split)
        self._check_ranks_agree(data_split)
        self._log(f"device: {describe(self.device)}")
        self.prepare()
        if self.resume:
            if self.out_dir:
                self._remove_orphan_temp_files()
            start_epoch = self._restore()
        else:
            start_epoch = 0
            self._write_run_files(data_split)
        trainable, frozen = self.runs[0].model.parameter_counts()
        use_cache = cfg.feature_cache and self.runs[0].model.frozen_blocks > 0
        self.on_event(ev.TrainingStarted(
            runs=tuple(r.name for r in self.runs),
            dropouts=tuple(r.dropout for r in self.runs),
            epochs=cfg.epochs,
            start_epoch=start_epoch,
            train_size=len(data_split.train),
            val_size=len(data_split.val),
            device=describe(self.device),
            trainable_params=trainable,
            frozen_params=frozen,
            feature_cache=use_cache and not cfg.augment,
            train_eval_size=(len(data_split.train) if use_cache and not cfg.augment
                             else len(train_eval_items(data_split.train))),
        ))
        status = "finished"
        try:
            self._train(data_split.train, data_split.val, start_epoch, use_cache)
            if self.control.stop_requested:
                status = "stopped"
            else:
                self._calibrate(data_split.val, use_cache)  # best.pt is written with it
        except Cancelled:
            status = "stopped"
        finally:
            self._flush_best()  # also when training fails: keep the best weights found
        if status == "finished" and self.report.test_items:
            self._evaluate_test(self.report.test_items)
        summary = self._summary(status, data_split)
        if self.out_dir:
            atomic_write_json(self.out_dir / "summary.json", summary)
            self._remove_orphan_temp_files()
        self.on_event(ev.TrainingFinished(status=status, summary=summary))
        return summary

    def prepare(self) -> None:
        """Build the model(s) and optimizers (loading or downloading weights); run() calls it."""
        if not self.runs:
            self._build_runs()
        self._last_best_flush = -math.inf  # the first best.pt is written at once
        self._checkpoint_bytes: int | None = None

    # -- set-up ----------------------------------------------------------------------------
    def _build_runs(self) -> None:
        cfg = self.config
        spec = cfg.model_spec(len(self.report.classes))

        def download_progress(done: int, total: int) -> None:
            self.on_event(ev.StageProgress("download", done, total, "downloading ImageNet weights"))

        torch.manual_seed(cfg.seed)  # the head's initial weights depend on the seed alone
        model = build_model(spec, cfg.weights, cfg.allow_download, download_progress, self.control)
        tune_for(self.device)
        model.to(self.device, memory_format=memory_format(self.device))
        names = run_names(cfg)
        models = [model] + [twin_without_dropout(model) for _ in names[1:]]
        for (name, dropout), net in zip(names, models):
            net.set_dropout(dropout)
            groups = net.parameter_groups(cfg.lr, cfg.lr * cfg.backbone_lr_factor)
            for g in groups:
                g["initial_lr"] = g["lr"]
            optimizer = torch.optim.AdamW(groups, weight_decay=cfg.weight_decay)
            run = RunState(name, dropout, net, optimizer, self._grad_scaler())
            if self.processes.distributed:
                run.parallel = _data_parallel(net, self.device)
            self.runs.append(run)
        trainable, frozen = model.parameter_counts()
        self._log(
            f"{cfg.model}: {model.frozen_blocks} of {model.num_blocks} blocks frozen; "
            f"{trainable:,} trainable and {frozen:,} frozen parameters"
        )

    def _check_resumable(self) -> None:
        """Refuse, in one line, to resume a run whose settings changed since it started: the
        continued training would not be the one its first epochs belong to."""
        folder = self.out_dir
        if folder is None:
            raise ValueError("resuming needs the run folder")
        try:
            with open(folder / "config.json", encoding="utf-8") as f:
                started = json.load(f)
            with open(folder / "classes.json", encoding="utf-8") as f:
                classes = json.load(f)
        except FileNotFoundError as e:
            raise ValueError(f"cannot resume {folder}: {Path(e.filename).name} is missing "
                             "(not a tlgui run folder?)") from e
        except (OSError, ValueError) as e:
            raise ValueError(f"cannot resume {folder}: cannot read its settings ({e})") from e
        now = asdict(self.config)
        changed = []
        for name, value in now.items():
            if name in RESUMABLE_CHANGES:
                continue
            # A setting newer than the run folder had its default then.
            before = started.get(name, TrainConfig.__dataclass_fields__[name].default)
            if before != value:
                changed.append(f"'{name}' was {before!r} and is now {value!r}")
        # Every difference at once, so that one attempt shows all there is to put back.
        if len(changed) == 1:
            raise ValueError(f"cannot resume {folder}: the setting {changed[0]}")
        if changed:
            raise ValueError(f"cannot resume {folder}: {len(changed)} settings differ from the "
                             f"run's start: {'; '.join(changed)}")
        self._started_split = classes

    def _check_same_images(self, data_split) -> None:
        """Refuse to resume on other classes or images than the run started with, naming the
        class whose images changed: its classes.json holds a digest of each class's training
        and validation images (names, sizes and modification times), or, in a run folder
        written before those were kept, their counts."""
        started = self._started_split
        classes = self.report.classes
        refusal = f"cannot resume {self.out_dir}: the"
        if started.get("classes") != classes:
            raise ValueError(f"{refusal} classes changed since it started "
                             f"({', '.join(map(str, started.get('classes') or []))} then, "
                             f"{', '.join(classes)} now)")
        splits = (("train", "training", data_split.train), ("val", "validation", data_split.val))
        digests = started.get("image_digests")
        for key, what, items in splits:
            if digests is not None:
                before, now = digests.get(key), image_digests(items, len(classes))
                changed = "replaced, added or removed"
            else:
                before, now = started.get(f"{key}_counts"), count_labels(items, len(classes))
            if before == now:
                continue
            if not isinstance(before, list) or len(before) != len(classes):
                raise ValueError(f"{refusal} {what} images changed since it started")
            name = next(n for n, b, a in zip(classes, before, now) if b != a)
            if digests is None:
                i = classes.index(name)
                changed = f"{before[i]} then, {now[i]} now"
            raise ValueError(f"{refusal} {what} images of class '{name}' changed since it "
                             f"started ({changed})")

    def _restore(self) -> int:
        """Load each run's last complete epoch; return the first epoch still to train.

        Each run continues from its own last epoch (a run that stopped early, or that was
        saved one epoch ahead of the other when the training was killed, is not trained
        again). The frozen weights come from the model built as at the start (same settings,
        same seed); last.pt holds everything that training changed, the best epoch's
        trainable weights included. In a distributed training rank 0 reads the files and
        hands their contents to the others."""
        saved = self._read_last_checkpoints() if self.processes.is_main else None
        saved = self.processes.broadcast(saved)
        start = None
        for run, ckpt in zip(self.runs, saved):
            if ckpt is None:
                # Stopped or killed before its first epoch ended: its model is the one built
                # then (same settings, same seed), so it starts from its first epoch.
                self._log(f"{run.name}: no complete epoch yet; it starts from the first")
                start = 0
                continue
            run.model.load_state_dict(ckpt["trainable_state"], strict=False)
            run.optimizer.load_state_dict(ckpt["optimizer"])
            if run.scaler is not None and ckpt.get("scaler"):
                run.scaler.load_state_dict(ckpt["scaler"])
            run.history = [EpochRecord(**r) for r in ckpt["history"]]
            run.best_val_acc = ckpt["best_val_acc"]
            run.best_val_loss = ckpt["best_val_loss"]
            run.best_epoch = ckpt["best_epoch"]
            run.epochs_without_gain = ckpt["epochs_without_gain"]
            run.active = ckpt["active"]
            run.stop_reason = ckpt.get("stop_reason", "")
            run.best_val_predictions = ckpt.get("best_val_predictions")
            run.last_val_predictions = ckpt.get("last_val_predictions")
            run.best_state = ckpt.get("best_state")
            # best.pt may be older than last.pt (written at most every
            # BEST_CHECKPOINT_INTERVAL) or missing: write it again from last.pt.
            run.best_unsaved = run.best_state is not None
            if self.out_dir:
                folder = self.out_dir / run.name
                atomic_write_text(folder / "metrics.csv", _metrics_csv(run.history))
            if run.active:
                start = len(run.history) if start is None else min(start, len(run.history))
        start = self.config.epochs if start is None else start
        self._log(f"resuming at epoch {start + 1}" if start < self.config.epochs
                  else "resuming: every run has finished its epochs")
        return start

    def _read_last_checkpoints(self) -> list[dict | None]:
        """Each run's last.pt (None for a run without a complete epoch), with the best
        epoch's weights under ``best_state`` (from best.pt for a last.pt written before it
        held them)."""
        saved = []
        for run in self.runs:
            last = self.out_dir / run.name / "last.pt"
            if not last.is_file():
                saved.append(None)
                continue
            ckpt = torch.load(last, map_location="cpu", weights_only=True)
            if ckpt.get("classes") != self.report.classes:
                raise WeightsError(
                    f"{last}: was trained on classes {ckpt.get('classes')}, "
                    f"the data now has {self.report.classes}"
                )
            if "best_state" not in ckpt and ckpt["best_epoch"] > 0:
                run.best_epoch = ckpt["best_epoch"]
                ckpt["best_state"] = self._best_from_file(run)
            saved.append(ckpt)
        return saved

    def _best_from_file(self, run: RunState) -> dict:
        """The best epoch's trainable weights from best.pt, for a last.pt written before
        last.pt held them; only if best.pt holds that epoch."""
        best = self.out_dir / run.name / "best.pt"
        checkpoint = torch.load(best, map_location="cpu", weights_only=True) \
            if best.is_file() else {}
        if checkpoint.get("epoch") != run.best_epoch - 1:
            raise WeightsError(f"{best}: does not hold the best epoch ({run.best_epoch}) "
                               "that last.pt names; this run cannot be resumed")
        keys = _trainable_state(run.model).keys()
        return {k: v for k, v in checkpoint["model"].items() if k in keys}

    def _remove_orphan_temp_files(self) -> None:
        """Remove the temporary files a killed training left in the run folder."""
        for folder in [self.out_dir] + [self.out_dir / run.name for run in self.runs]:
            for path in remove_orphan_temp_files(folder):
                self._log(f"removed {path} (left by an interrupted write)")

    def _write_run_files(self, data_split) -> None:
        if not self.out_dir:
            return
        self.out_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_json(self.out_dir / "config.json", {
            **asdict(self.config),
            "data": self.report.class_folders,
            "test_folder": self.report.test_folder,
        })
        atomic_write_json(self.out_dir / "classes.json", {
            "classes": self.report.classes,
            "train_counts": count_labels(data_split.train, len(self.report.classes)),
            "val_counts": count_labels(data_split.val, len(self.report.classes)),
            # What a resume compares, to refuse images replaced since (same name, same count).
            "image_digests": {
                "train": image_digests(data_split.train, len(self.report.classes)),
                "val": image_digests(data_split.val, len(self.report.classes)),
            },
            "preprocessing": self.preprocessing.to_dict(),
        })

    # -- data ------------------------------------------------------------------------------
    def _loader(self, items: list[ImageItem], train: bool, epoch: int = 0, keep: bool = True):
        """One DataLoader per item list, kept across epochs so its worker processes are
        started once; its generator is re-seeded each epoch for a reproducible order. One
        read once (``keep=False``) is not kept, and holds no idle worker processes."""
        cfg = self.config
        key = (id(items), train)
        processes = self.processes
        # Each rank of a distributed training takes its share of every batch: the sampler
        # draws the same order as a single process does, and deals it out.
        shared = train and processes.distributed
        if key not in self._loaders or not keep:
            transform = (self.preprocessing.train_transform(cfg.augment) if train
                         else self.preprocessing.eval_transform())
            # A rank that left an image out would take a smaller step than the others, or
            # none, and they would wait for it: there, an image that no longer decodes
            # (checked before training) ends the training with its name.
            dataset = ImageDataset(items, transform, draft_size=self.preprocessing.resize_size,
                                   skip_unreadable=not shared)
            workers = cfg.workers if cfg.workers >= 0 else _auto_workers(self.device)
            sampler = (torch.utils.data.DistributedSampler(
                dataset, processes.world_size, processes.rank, shuffle=True,
                seed=cfg.seed * 1000) if shared else None)
            loader = torch.utils.data.DataLoader(
                dataset,
                batch_size=processes.local_batch_size(cfg.batch_size) if shared
                else cfg.batch_size,
                shuffle=train and not shared,
                sampler=sampler,
                generator=torch.Generator(),
                num_workers=workers,
                worker_init_fn=loader_worker_init,
                persistent_workers=keep and workers > 0,
                # Forking a process that runs other threads (a GUI) can deadlock the child.
                multiprocessing_context=(
                    "spawn" if workers and threading.current_thread() is not
                    threading.main_thread() else None),
                pin_memory=self.device.type == "cuda",
                collate_fn=collate_readable,
            )
            if not keep:
                return loader
            self._loaders[key] = loader
        loader = self._loaders[key]
        loader.generator.manual_seed(cfg.seed * 1000 + epoch + RANK_SEED_STRIDE * processes.rank)
        if shared:
            loader.sampler.set_epoch(epoch)  # its order: the seed above, without the rank
        return loader

    def _stem_batches(self, items, train: bool, epoch: int = 0) -> Iterator[tuple]:
        """Yield ``(stem output, labels)`` batches from images, honouring pause and stop."""
        model = self.runs[0].model
        read = failed = 0
        for x, y, unreadable in self._loader(items, train, epoch):
            self._note_unreadable(unreadable)
            failed += len(unreadable)
            if self.control.checkpoint():
                raise Cancelled
            if x is None:  # not one image of this batch decoded
                continue
            read += len(y)
            x = to_device(x, self.device)
            y = y.to(self.device, non_blocking=True)
            if model.frozen_blocks:
                with torch.inference_mode(), self._autocast():
                    x = model.stem(x)
                x = x.clone()  # leave inference mode: the trainable part needs autograd
                self.stats.stem_images += len(y)
            yield x, y
        if failed and not read:
            path = next(p for p in self.unreadable if p in {it.path for it in items})
            raise DatasetError(f"none of {failed} images could be decoded (the first: {path}: "
                               f"{self.unreadable[path]})")

    def _verify_images(self) -> None:
        """Decode every image once before training, unless the report was checked already:
        the split then leaves damaged files out, as the scan report lists them."""
        if self.report.verified:
            return

        def progress(done: int, total: int) -> None:
            self.on_event(ev.StageProgress("verify", done, total, "decoding every image"))

        processes = self.processes
        if processes.distributed:  # each rank decodes its share; all learn every failure
            test = self.report.test_items
            mine = replace(self.report, items=processes.share(self.report.items),
                           test_items=None if test is None else processes.share(test))
            failed = {}
            for found in processes.gather(decode_failures(mine, progress, cancel=self.control)):
                failed.update(found)
        else:
            failed = decode_failures(self.report, progress, cancel=self.control)
        gone = [path for path in failed if not os.path.exists(path)]
        if gone:  # not damaged but moved: the folder may have moved, as in the epochs
            raise ImageLoadError(gone[0], failed[gone[0]])
        before = self.report.classes
        self.report = without_files(self.report, failed)
        self._note_unreadable(list(failed.items()))
        for name in before:
            if name not in self.report.classes:
                self._log(f"class '{name}' has no usable image — left out")
        self.report.require_trainable()

    def _check_ranks_agree(self, data_split) -> None:
        """Refuse, in one line on every rank, a distributed training whose processes see
        other images (another copy of the folders on one machine, say): each would train on
        its own data set."""
        if not self.processes.distributed:
            return
        digest = hashlib.sha256()
        for part in (data_split.train, data_split.val, self.report.test_items or ()):
            for item in part:
                digest.update(f"{item.key}\0{item.label}\n".encode())
            digest.update(b"\1")
        digest.update(json.dumps(self.report.classes).encode())
        seen = self.processes.gather((digest.hexdigest(), len(data_split.train),
                                      len(data_split.val)))
        for rank, (other, train, val) in enumerate(seen):
            if other != seen[0][0]:
                raise ValueError(
                    f"process {rank + 1} of {len(seen)} sees other images than process 1 "
                    f"({train} training and {val} validation images there, {seen[0][1]} and "
                    f"{seen[0][2]} here): every process must read the same folders")

    def _note_unreadable(self, unreadable: list[tuple[str, str]]) -> None:
        """Name each image that failed to decode in the log, once (augmentation reads the
        training images every epoch)."""
        for path, reason in unreadable:
            if path not in self.unreadable:
                self.unreadable[path] = reason
                self._log(f"{path}: {reason} — left out of the training")

    def _cache(self, items: list[ImageItem], what: str) -> tuple[StoredFeatures, torch.Tensor]:
        """The frozen stem's outputs for ``items`` from the feature store, computing (and
        storing) those it lacks; and the labels of the images that have one."""
        started = time.perf_counter()
        store = self._feature_store()
        features = store.features(self._feature_key())
        seen: dict[str, int] = {}

        def progress(done: int, total: int) -> None:
            readable = total - len(seen)
            elapsed = time.perf_counter() - started
            self.on_event(ev.StageProgress(
                "features", done, readable, f"computing backbone features ({what})",
                eta_seconds=elapsed / max(done, 1) * max(readable - done, 0)))

        def compute(missing: list[int]):
            for positions, z in self._stem_outputs(items, missing, seen):
                yield positions, z.to(torch.float16).cpu().numpy()

        stored = stored_features(features, [it.path for it in items], compute, progress)
        if items and not len(stored):
            path = next((p for p in self.unreadable if p in {it.path for it in items}),
                        items[0].path)
            raise DatasetError(f"none of {len(items)} images could be decoded (the first: "
                               f"{path}: {self.unreadable.get(path, 'gone')})")
        labels = torch.tensor([it.label for it, ok in zip(items, stored.valid) if ok],
                              dtype=torch.long, device=self.device)
        self.stats.feature_seconds += time.perf_counter() - started
        try:
            if self._private_store is None:
                store.evict(keep=[features.folder])
        except (OSError, ValueError) as e:  # a full store is no reason to stop training
            self._log(f"feature store: {e}")
        return stored, labels

    def _feature_store(self) -> FeatureStore:
        """The user's feature store; in a distributed training, a store of this rank's own,
        removed at the end. The ranks must compute the same missing images together, so they
        start from the same (empty) store, and each holds every image's features, wherever
        it runs."""
        if not self.processes.distributed:
            return FeatureStore()
        if self._private_store is None:
            _remove_stores_of_dead_processes()
            self._private_store = Path(tempfile.mkdtemp(prefix=PRIVATE_STORE_PREFIX))
            (self._private_store / PRIVATE_STORE_OWNER).write_text(str(os.getpid()))
        return FeatureStore(self._private_store)

    def _feature_key(self) -> FeatureKey:
        """What the frozen stem's outputs depend on (see :mod:`tlgui.core.feature_store`)."""
        dtype = autocast_dtype(self.device) if self.config.amp else None
        return feature_key(self.runs[0].model, self.preprocessing, dtype)

    def _stem_outputs(self, items, positions: list[int], unreadable: dict[str, int]):
        """Yield ``(positions, stem outputs)`` for ``items[positions]`` in order, leaving out
        (and noting in ``unreadable``) those that fail to decode. In a distributed training
        each rank computes every N-th image, and every rank gets every output."""
        if self.processes.distributed:
            batches = self._shared_stem_outputs(items, positions)
        else:
            batches = self._computed_stem_outputs(items, positions)
        for rows, z, failed in batches:
            self._note_unreadable(failed)
            for path, _ in failed:
                unreadable[path] = 1
            if z is not None:
                yield rows, z

    def _computed_stem_outputs(self, items, positions: list[int]):
        """``(positions, stem outputs or None, [(path, reason), …])`` per batch of
        ``items[positions]``, computed here."""
        model = self.runs[0].model
        subset = [items[i] for i in positions]
        size = self.config.batch_size
        for b, (x, _labels, failed) in enumerate(self._loader(subset, train=False, keep=False)):
            if self.control.checkpoint():
                raise Cancelled
            if x is None:
                yield [], None, failed
                continue
            bad = {path for path, _ in failed}
            rows = [i for i in positions[b * size:(b + 1) * size] if items[i].path not in bad]
            x = to_device(x, self.device)
            with torch.inference_mode(), self._autocast():
                z = model.stem(x)
            self.stats.stem_images += len(rows)
            yield rows, z, failed

    def _shared_stem_outputs(self, items, positions: list[int]):
        """The feature pass shared among the ranks: each computes its share of ``positions``
        a batch at a time, and all ranks exchange their batches (one exchange per batch, so
        every rank holds one batch of each at a time)."""
        processes = self.processes
        size = self.config.batch_size
        steps = max(math.ceil(len(positions[r::processes.world_size]) / size)
                    for r in range(processes.world_size))
        mine = self._computed_stem_outputs(items, processes.share(positions))
        for _ in range(steps):
            rows, z, failed = next(mine, ([], None, []))
            batch = (rows, None if z is None else z.to(torch.float16).cpu().numpy(), failed)
            for their_rows, outputs, their_failed in processes.gather(batch):
                yield (their_rows, None if outputs is None else torch.from_numpy(outputs),
                       their_failed)

    def _cached_batches(self, feats: StoredFeatures, labels, shuffle: bool, epoch: int):
        """Batches of stored stem outputs, read from disk a batch at a time."""
        n = len(labels)
        processes = self.processes
        size = self.config.batch_size
        if shuffle:
            generator = torch.Generator().manual_seed(self.config.seed * 1000 + epoch)
            order = torch.randperm(n, generator=generator)
            if processes.distributed:  # dealt out as DistributedSampler deals images
                padded = math.ceil(n / processes.world_size) * processes.world_size
                order = torch.cat([order, order[: padded - n]])
                order = processes.share(order)
                size = processes.local_batch_size(size)
        else:
            order = processes.share(torch.arange(n))  # evaluation: each image once
        for start in range(0, len(order), size):
            if self.control.checkpoint():
                raise Cancelled
            idx = order[start : start + size]
            z = torch.from_numpy(feats[idx.numpy()]).to(self.device, non_blocking=True)
            yield z.float(), labels[idx.to(labels.device)]

    # -- training --------------------------------------------------------------------------
    def _train(self, train_items, val_items, start_epoch: int, use_cache: bool) -> None:
        cfg = self.config
        if start_epoch >= cfg.epochs:
            return  # a resumed training whose runs have all finished: no features to compute
        train_cache = val_cache = train_eval_cache = None
        if use_cache:
            val_cache = self._cache(val_items, "validation") if val_items else None
            self._val_cache = val_cache  # calibration reads it at the end
            if not cfg.augment:
                train_cache = self._cache(train_items, "training")
        eval_items = train_items if train_cache else train_eval_items(train_items)
        if train_cache:
            train_eval_cache = train_cache  # computed with the evaluation transform
        elif use_cache:
            train_eval_cache = self._cache(eval_items, "training accuracy")
        processes = self.processes
        per_rank = math.ceil(len(train_items) / processes.world_size)
        batches = math.ceil(per_rank / processes.local_batch_size(cfg.batch_size))
        epoch_times: list[float] = []
        for epoch in range(start_epoch, cfg.epochs):
            if not any(r.active for r in self.runs):
                break
            # After a resume, a run saved one epoch ahead of the other waits for it.
            active = [r for r in self.runs if r.active and len(r.history) == epoch]
            if not active:
                continue
            started = time.perf_counter()
            # dropout masks and augmentation
            torch.manual_seed(cfg.seed * 1000 + epoch + RANK_SEED_STRIDE * processes.rank)
            factor = schedule_factor(cfg.schedule, epoch, cfg.epochs)
            for run in active:
                for group in run.optimizer.param_groups:
                    group["lr"] = group["initial_lr"] * factor
                run.model.train()
            # loss sum, correct, seen: the first two stay on the device while the epoch runs
            # (reading them each step would make the CPU wait for the GPU every batch)
            zero = torch.zeros((), device=self.device)
            sums = {r.name: [zero, zero, 0] for r in active}
            source = (self._cached_batches(*train_cache, shuffle=True, epoch=epoch)
                      if train_cache else self._stem_batches(train_items, True, epoch))
            for b, (z, y) in enumerate(source, 1):
                for run in active if len(y) > 1 else ():  # batch norm cannot learn from one
                    loss, correct = self._step(run, z, y)
                    s = sums[run.name]
                    s[0] = s[0] + loss * len(y)
                    s[1] = s[1] + correct
                    s[2] += len(y)
                self._batch_event(epoch, b, batches, sums, started, epoch_times)
            if self.control.stop_requested:
                return
            sums = self._summed_over_ranks(
                {name: [float(s[0]), int(s[1]), s[2]] for name, s in sums.items()})
            train_seconds = time.perf_counter() - started
            self.stats.train_seconds += train_seconds
            val = self._evaluate(active, val_items, val_cache)
            train_eval = self._evaluate(active, eval_items, train_eval_cache)
            seconds = time.perf_counter() - started
            epoch_times.append(seconds)
            eta = _mean(epoch_times) * (cfg.epochs - epoch - 1)
            for run in active:
                loss_sum, correct, seen = sums[run.name]
                val_loss, val_acc, predictions = val[run.name]
                train_loss_eval, train_acc_eval, _ = train_eval[run.name]
                record = EpochRecord(
                    epoch=epoch + 1,
                    train_loss=loss_sum / seen,
                    train_acc=correct / seen,
                    val_loss=val_loss,
                    val_acc=val_acc,
                    lr=run.optimizer.param_groups[0]["lr"],
                    seconds=seconds,
                    train_loss_eval=train_loss_eval,
                    train_acc_eval=train_acc_eval,
                )
                run.history.append(record)
                improved = self._track_best(run, record)
                run.last_val_predictions = predictions
                if improved:
                    run.best_val_predictions = predictions
                self._save(run, epoch, improved)
                self.on_event(ev.EpochFinished(
                    run=run.name, epoch=epoch + 1, epochs=cfg.epochs,
                    train_loss=record.train_loss, train_acc=record.train_acc,
                    val_loss=record.val_loss, val_acc=record.val_acc, lr=record.lr,
                    seconds=seconds, eta_seconds=eta, improved=improved,
                    train_loss_eval=train_loss_eval, train_acc_eval=train_acc_eval,
                ))
                if run.stop_reason:
                    self._log(f"{run.name}: {run.stop_reason}")
            # After every run's last.pt: a kill in between leaves the best in last.pt.
            self._flush_best_if_due()

    def _share(self, items: list[ImageItem]) -> list[ImageItem]:
        """This rank's share of ``items`` to evaluate; the same list object every epoch, so
        that its loader (and its worker processes) is made once."""
        if not self.processes.distributed:
            return items
        if id(items) not in self._shares:  # the list is kept with its share: its id stays
            self._shares[id(items)] = (items, self.processes.share(items))
        return self._shares[id(items)][1]

    def _summed_over_ranks(self, sums: dict[str, list]) -> dict[str, list]:
        """Each run's ``[loss sum, correct, seen]`` over every rank's share of the epoch."""
        if not self.processes.distributed:
            return sums
        names = list(sums)
        total = self.processes.sum(torch.tensor([sums[n] for n in names], dtype=torch.float64))
        return {n: [float(row[0]), int(row[1]), int(row[2])]
                for n, row in zip(names, total.tolist())}

    def _step(self, run: RunState, z, y) -> tuple[torch.Tensor, torch.Tensor]:
        """One optimiser step: (the batch's mean loss, its correct predictions), as tensors
        on the device (not read back: see _train)."""
        with self._autocast():
            # In a distributed training the wrapper averages the gradients over the ranks as
            # backward runs: each rank's loss is the mean over its equal share of the batch,
            # so the step is the one a single process takes on the whole batch.
            logits = run.parallel(z) if run.parallel is not None else run.model.from_stem(z)
            loss = nn.functional.cross_entropy(logits, y)
        run.optimizer.zero_grad(set_to_none=True)
        scaler = run.scaler
        if scaler is not None:
            scaler.scale(loss).backward()
            scaler.step(run.optimizer)
            scaler.update()
        else:
            loss.backward()
            run.optimizer.step()
        return loss.detach().float(), (logits.detach().argmax(1) == y).sum()

    @torch.no_grad()
    def _evaluate(self, runs, items, cache) -> dict[str, tuple[float, float, list[list[int]]]]:
        """Loss, accuracy and confusion matrix (``[true][predicted]`` counts) of each run in
        evaluation mode on ``items`` (the stem runs once for all)."""
        for run in runs:
            run.model.eval()
        k = len(self.report.classes)
        # Summed on the device and read back once (float32 for the loss: MPS has no float64).
        losses = {r.name: torch.zeros((), device=self.device) for r in runs}
        counts = {r.name: torch.zeros(k * k, dtype=torch.long, device=self.device)
                  for r in runs}
        seen = 0
        if cache is not None:
            source = self._cached_batches(*cache, shuffle=False, epoch=0)
        elif self._share(items):
            source = self._stem_batches(self._share(items), train=False)
        else:
            source = iter(())
        for z, y in source:
            seen += len(y)
            for run in runs:
                with self._autocast():
                    logits = run.model.from_stem(z)
                losses[run.name] += nn.functional.cross_entropy(logits.float(), y,
                                                                reduction="sum")
                counts[run.name] += torch.bincount(y * k + logits.argmax(1), minlength=k * k)
        names = list(losses)
        packed = torch.stack([torch.cat([losses[n].double().cpu().view(1),
                                         counts[n].double().cpu()]) for n in names])
        if self.processes.distributed:  # each rank saw its share of the images
            packed = self.processes.sum(packed)
            seen = int(self.processes.sum(torch.tensor([seen], dtype=torch.float64))[0])
        totals = {}
        for name, row in zip(names, packed):
            matrix = row[1:].round().long().view(k, k)
            totals[name] = (float(row[0]), int(matrix.diagonal().sum()), matrix)
        if seen == 0:
            return {r.name: (math.nan, math.nan, [[0] * k for _ in range(k)]) for r in runs}
        return {name: (loss / seen, correct / seen, matrix.tolist())
                for name, (loss, correct, matrix) in totals.items()}

    def _calibrate(self, val_items: list[ImageItem], use_cache: bool) -> None:
        """Calibrate each run's confidences on the validation images with its best weights
        (the model keeps its last epoch's afterwards)."""
        if not val_items:
            return
        last = {run.name: _trainable_state(run.model) for run in self.runs}
        for run in self.runs:
            if run.best_state is not None:
                run.model.load_state_dict(run.best_state, strict=False)
        cache = getattr(self, "_val_cache", None)
        if cache is None and use_cache:
            cache = self._cache(val_items, "validation")
        outputs = self._logits(self.runs, val_items, cache)
        for run in self.runs:
            run.model.load_state_dict(last[run.name], strict=False)
            logits, labels = outputs[run.name]
            run.calibration = calibrate(logits, labels, self.config.target_precision)
            run.best_unsaved = run.best_state is not None
            self._log(f"{run.name}: {calibration.describe(run.calibration)}")

    @torch.no_grad()
    def _logits(self, runs, items, cache) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """Each run's logits (float32) and the labels, on ``items`` in evaluation mode (in a
        distributed training, every rank's share, gathered)."""
        for run in runs:
            run.model.eval()
        parts = {run.name: [] for run in runs}
        labels = []
        if cache is not None:
            source = self._cached_batches(*cache, shuffle=False, epoch=0)
        else:
            source = self._stem_batches(self._share(items), train=False) \
                if self._share(items) else iter(())
        for z, y in source:
            labels.append(y.cpu().numpy())
            for run in runs:
                with self._autocast():
                    parts[run.name].append(run.model.from_stem(z).float().cpu().numpy())
        k = len(self.report.classes)
        mine = ({name: np.concatenate(p) if p else np.zeros((0, k), np.float32)
                 for name, p in parts.items()},
                np.concatenate(labels) if labels else np.zeros(0, np.int64))
        gathered = self.processes.gather(mine)
        every_label = np.concatenate([g[1] for g in gathered])
        return {run.name: (np.concatenate([g[0][run.name] for g in gathered]), every_label)
                for run in runs}

    def _track_best(self, run: RunState, record: EpochRecord) -> bool:
        acc = record.val_acc if not math.isnan(record.val_acc) else record.train_acc
        loss = record.val_loss if not math.isnan(record.val_loss) else record.train_loss
        improved = acc > run.best_val_acc or (acc == run.best_val_acc and loss < run.best_val_loss)
        if improved:
            run.best_val_acc, run.best_val_loss, run.best_epoch = acc, loss, record.epoch
            run.epochs_without_gain = 0
        else:
            run.epochs_without_gain += 1
            patience = self.config.early_stopping
            if patience and run.epochs_without_gain >= patience:
                run.active = False
                measure = "training" if math.isnan(record.val_acc) else "validation"
                run.stop_reason = (
                    f"stopped early after epoch {record.epoch}: no better {measure} accuracy "
                    f"for {patience} epoch{'s' if patience > 1 else ''}"
                )
        return improved

    def _evaluate_test(self, items: list[ImageItem]) -> None:
        """Test accuracy of each run with its best weights."""
        for run in self.runs:
            if run.best_state is not None:
                run.model.load_state_dict(run.best_state, strict=False)
        cache = None
        if self.runs[0].model.frozen_blocks:
            cache = self._cache(items, "test")
        results = self._evaluate(self.runs, items, cache)
        for run in self.runs:
            run.test_acc = results[run.name][1]
            self._log(f"{run.name}: test accuracy {run.test_acc:.1%}")

    # -- saving ----------------------------------------------------------------------------
    def checkpoint_dict(self, run: RunState, epoch: int) -> dict:
        """A self-contained checkpoint of ``run`` (model weights and what they mean)."""
        model = run.model
        return {
            "format": CHECKPOINT_FORMAT,
            "version": 1,
            "run": run.name,
            "epoch": epoch,
            "spec": asdict(self.config.model_spec(len(self.report.classes), run.dropout)),
            "classes": list(self.report.classes),
            "preprocessing": self.preprocessing.to_dict(),
            "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
            "val_acc": run.best_val_acc if self._has_validation() else None,
            "config": asdict(self.config),
            "calibration": run.calibration.to_dict() if run.calibration else None,
        }

    def _save(self, run: RunState, epoch: int, improved: bool) -> None:
        trainable = _trainable_state(run.model)
        if improved:
            run.best_state = trainable  # the same tensors: last.pt stores them once
            run.best_unsaved = True
        if not self.out_dir:
            return
        folder = self.out_dir / run.name
        folder.mkdir(parents=True, exist_ok=True)
        # last.pt holds what training changes (the frozen weights are rebuilt from the
        # settings), including the best epoch's weights: best.pt may lag behind (see
        # BEST_CHECKPOINT_INTERVAL), and a resume restores the best from here.
        atomic_torch_save({
            "format": "tlgui-resume",
            "version": 2,
            "epoch": epoch,
            "classes": list(self.report.classes),
            "trainable_state": trainable,
            "best_state": run.best_state,
            "optimizer": run.optimizer.state_dict(),
            "scaler": run.scaler.state_dict() if run.scaler is not None else None,
            "history": [asdict(r) for r in run.history],
            "best_val_acc": run.best_val_acc,
            "best_val_loss": run.best_val_loss,
            "best_epoch": run.best_epoch,
            "epochs_without_gain": run.epochs_without_gain,
            "active": run.active,
            "stop_reason": run.stop_reason,
            "best_val_predictions": run.best_val_predictions,
            "last_val_predictions": run.last_val_predictions,
        }, folder / "last.pt")
        atomic_write_text(folder / "metrics.csv", _metrics_csv(run.history))

    def _flush_best_if_due(self) -> None:
        """Write best.pt now if it is small, else if the last write is long enough ago."""
        if self._checkpoint_bytes is None:
            self._checkpoint_bytes = sum(v.numel() * v.element_size()
                                         for v in self.runs[0].model.state_dict().values())
        if (self._checkpoint_bytes <= SMALL_CHECKPOINT_BYTES
                or time.monotonic() - self._last_best_flush >= BEST_CHECKPOINT_INTERVAL):
            self._flush_best()

    def _flush_best(self) -> None:
        """Write best.pt for every run whose best weights are newer than the file."""
        self._last_best_flush = time.monotonic()
        if not self.out_dir:
            return
        for run in self.runs:
            if run.best_unsaved:
                checkpoint = self.checkpoint_dict(run, run.best_epoch - 1)
                checkpoint["model"].update(run.best_state)
                atomic_torch_save(checkpoint, self.out_dir / run.name / "best.pt")
                run.best_unsaved = False

    def _has_validation(self) -> bool:
        return getattr(self, "_val_size", 1) > 0

    def _summary(self, status: str, data_split) -> dict:
        runs = {}
        classes = list(self.report.classes)
        for run in self.runs:
            last = run.history[-1] if run.history else None
            # The warnings are about the weights kept: those of the best epoch (after a resume
            # that found no better epoch, the last epoch's predictions are what is known).
            confusion, accuracy = run.best_val_predictions, run.best_val_acc
            if confusion is None and last is not None:
                confusion, accuracy = run.last_val_predictions, last.val_acc
            if not _is_matrix(confusion, len(classes)):
                confusion = None  # from a checkpoint that kept another form: not known
            best_pt = self.out_dir / run.name / "best.pt" if self.out_dir else None
            validated = self._has_validation()
            runs[run.name] = {
                "dropout": run.dropout,
                "epochs_completed": len(run.history),
                # Without validation images the best epoch is the one with the best training
                # accuracy, and no validation figure exists.
                "best_val_acc": run.best_val_acc if run.best_epoch > 0 and validated else None,
                "best_epoch": run.best_epoch if run.best_epoch > 0 else None,
                "best_by": "validation accuracy" if validated else "training accuracy",
                "last_val_acc": _number(last.val_acc) if last else None,
                # Training accuracy in evaluation mode, like the validation accuracy.
                "last_train_acc": _number(verdicts.train_accuracy(last)) if last else None,
                "train_val_gap": _number(verdicts.gap(last)) if last else None,
                # How many validation images the model gave each class, and the matrix.
                "val_predictions": ([sum(row[p] for row in confusion)
                                     for p in range(len(classes))] if confusion else None),
                "val_confusion": confusion,
                "warnings": (verdicts.prediction_warnings(confusion, accuracy, classes)
                             if confusion else []),
                "test_acc": run.test_acc,
                "calibration": ({**run.calibration.to_dict(),
                                 "text": calibration.describe(run.calibration)}
                                if run.calibration else None),
                "early_stopped": bool(run.stop_reason),
                "checkpoint": str(best_pt) if best_pt and best_pt.is_file() else None,
            }
        verdict = verdicts.training_verdict({run.name: run.history for run in self.runs},
                                            val_size=len(data_split.val))
        return {
            "status": status,
            "model": self.config.model,
            "weights": self.config.weights,
            "strategy": self.config.strategy,
            "device": str(self.device),
            "classes": list(self.report.classes),
            "train_size": len(data_split.train),
            "val_size": len(data_split.val),
            "test_size": len(self.report.test_items or []),
            "unreadable": sorted(self.unreadable),
            "runs": runs,
            "verdict": asdict(verdict) if verdict else None,
        }

    # -- helpers ---------------------------------------------------------------------------
    def _autocast(self):
        dtype = autocast_dtype(self.device) if self.config.amp else None
        if dtype is not None:
            return torch.autocast(self.device.type, dtype=dtype)
        return torch.autocast("cpu", enabled=False)

    def _grad_scaler(self) -> torch.amp.GradScaler | None:
        """A new loss scaler for one run where training is in float16, else None."""
        fp16 = self.config.amp and autocast_dtype(self.device) == torch.float16
        return torch.amp.GradScaler(self.device.type) if fp16 else None

    def _batch_event(self, epoch, batch, batches, sums, started, epoch_times) -> None:
        now = time.perf_counter()
        # Throttled: a listener (the GUI) needs a few updates a second, not one per batch.
        if batch != batches and now - self._last_batch_event < 0.1:
            return
        self._last_batch_event = now
        elapsed = now - started
        per_epoch = _mean(epoch_times) if epoch_times else elapsed / batch * batches
        eta = max(0.0, per_epoch - elapsed) + per_epoch * (self.config.epochs - epoch - 1)
        # At most ten times a second: reading the sums back waits for the device.
        losses = {name: float(s[0]) / s[2] for name, s in sums.items() if s[2]}
        self.on_event(ev.BatchFinished(
            epoch=epoch + 1, epochs=self.config.epochs, batch=batch, batches=batches,
            losses=losses, eta_seconds=eta,
        ))

    def _log(self, text: str) -> None:
        self.on_event(ev.LogMessage(text))


#: A distributed rank's own feature store: a temporary folder named so, holding the owning
#: process's id (a process killed outright leaves it; the next distributed training removes
#: it, see _remove_stores_of_dead_processes).
PRIVATE_STORE_PREFIX = "tlgui-features-rank-"
PRIVATE_STORE_OWNER = "owner.pid"


def _remove_stores_of_dead_processes() -> None:
    """Remove the private feature stores whose process is gone (killed before it could)."""
    for folder in Path(tempfile.gettempdir()).glob(f"{PRIVATE_STORE_PREFIX}*"):
        try:
            pid = int((folder / PRIVATE_STORE_OWNER).read_text())
            os.kill(pid, 0)  # raises when no such process
        except ProcessLookupError:
            shutil.rmtree(folder, ignore_errors=True)
        except (OSError, ValueError):  # not ours to judge (no owner file yet, another user's)
            continue


def _check_batch_split(batch_size: int, world_size: int) -> None:
    """A batch is dealt out equally to the ranks, two images at least each (batch
    normalisation needs two)."""
    if batch_size % world_size or batch_size // world_size < 2:
        raise ValueError(
            f"batch size {batch_size} does not split into {world_size} equal shares (one for "
            f"each process) of at least 2 images: choose a multiple of {world_size}, "
            f"{2 * world_size} or more")


class _FromStem(nn.Module):
    """What trains: the model from its stem's output on (what DistributedDataParallel
    wraps; it calls ``forward``)."""

    def __init__(self, net: TransferNet):
        super().__init__()
        self.net = net

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net.from_stem(z)


def _data_parallel(net: TransferNet, device: torch.device) -> nn.Module:
    """``net``'s trainable part wrapped in DistributedDataParallel (which first gives every
    rank rank 0's weights)."""
    from torch.nn.parallel import DistributedDataParallel

    return DistributedDataParallel(
        _FromStem(net), device_ids=[device.index] if device.type == "cuda" else None)


def _trainable_state(model: TransferNet) -> dict:
    """Parameters that train, and the buffers of the modules that are not frozen."""
    frozen = {id(p) for p in model.parameters() if not p.requires_grad}
    state = {}
    frozen_prefixes = tuple(f"blocks.{i}." for i in range(model.frozen_blocks))
    for key, value in model.state_dict(keep_vars=True).items():
        if id(value) in frozen or key.startswith(frozen_prefixes):
            continue
        state[key] = value.detach().cpu().clone()
    return state


def _auto_workers(device: torch.device) -> int:
    cpus = os.cpu_count() or 1
    if device.type == "cuda":
        return min(8, max(0, cpus - 1))
    return min(2, cpus // 4)  # on CPU the model itself uses every core


def _number(value: float | None) -> float | None:
    """``value``, or None where it is missing or not a number (no validation images)."""
    return None if value is None or math.isnan(value) else value


def _mean(values) -> float:
    return sum(values) / len(values)


def _is_matrix(value, size: int) -> bool:
    """``value`` is a ``size`` × ``size`` table of whole numbers."""
    return (isinstance(value, list) and len(value) == size
            and all(isinstance(row, list) and len(row) == size
                    and all(isinstance(n, int) for n in row) for row in value))


def _metrics_csv(history: list[EpochRecord]) -> str:
    out = io.StringIO()
    # New columns go at the end: readers that know only the first seven keep working.
    fields = ["epoch", "train_loss", "train_acc", "val_loss", "val_acc", "lr", "seconds",
              "train_loss_eval", "train_acc_eval"]
    writer = csv.DictWriter(out, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    for record in history:
        writer.writerow(asdict(record))
    return out.getvalue()


def load_summary(run_dir: str | os.PathLike) -> dict:
    with open(Path(run_dir) / "summary.json", encoding="utf-8") as f:
        return json.load(f)
