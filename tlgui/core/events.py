"""Immutable event records the trainer reports; they hold plain numbers, never tensors, so a
listener in another thread may keep them."""

from __future__ import annotations

import math
from dataclasses import dataclass, field


@dataclass(frozen=True)
class LogMessage:
    text: str


@dataclass(frozen=True)
class TrainingStarted:
    runs: tuple[str, ...]  #: run names, e.g. ("with_dropout", "without_dropout")
    dropouts: tuple[float, ...]
    epochs: int
    start_epoch: int  #: 0, or the epoch a resumed training continues from
    train_size: int
    val_size: int
    device: str
    trainable_params: int
    frozen_params: int
    feature_cache: bool  #: True when training epochs reuse cached backbone features
    #: How many training images the eval-mode training accuracy is measured on.
    train_eval_size: int = 0


@dataclass(frozen=True)
class StageProgress:
    """Progress of a preparation stage: ``verify`` (decoding every image once), ``download``
    of weights or ``features`` caching."""

    stage: str
    done: int
    total: int
    message: str
    eta_seconds: float | None = None


@dataclass(frozen=True)
class BatchFinished:
    epoch: int  #: 1-based
    epochs: int
    batch: int  #: 1-based
    batches: int
    losses: dict = field(default_factory=dict)  #: run name -> mean training loss so far
    eta_seconds: float = 0.0  #: time left for the whole training


@dataclass(frozen=True)
class EpochFinished:
    run: str
    epoch: int  #: 1-based
    epochs: int
    train_loss: float
    train_acc: float
    val_loss: float
    val_acc: float
    lr: float
    seconds: float
    eta_seconds: float
    improved: bool  #: the best checkpoint was updated
    #: Measured after the epoch in evaluation mode (dropout off), like the validation figures;
    #: ``train_loss`` and ``train_acc`` are running figures with dropout active.
    train_loss_eval: float = math.nan
    train_acc_eval: float = math.nan


@dataclass(frozen=True)
class TrainingFinished:
    status: str  #: "finished" or "stopped"
    summary: dict
