"""Step 3, training: settings, start / pause / stop, progress with time left, live curves of the
runs with and without dropout, a summary and a log.

Training may run for hours: the progress lines shorten themselves (the whole line in their
tooltip) rather than being cut off, and say how the training ended once it has, never an
estimate of time left that no longer runs. A new data set clears the curves and the summary,
which describe the previous one (:meth:`TrainingPane.clear_for_new_data`).
"""

from __future__ import annotations

import html
import json
import math
import time

from PySide6.QtCore import QEvent, Qt, Signal, Slot
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QSizePolicy,
    QSpinBox,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from ..core import events as ev
from ..core.advice import default_backbone_lr_factor
from ..core.images import MIN_IMAGE_SIZE
from ..core.units import format_duration as duration
from .pane import Pane
from .plots import RUN_COLOURS, RUN_LABELS, CurvesView, train_curve_note

#: What the summary says before any training, and again after the data set changes.
SIZE_TIP = "Smaller images train faster on weak machines"
SUMMARY_PLACEHOLDER = ("Curves appear here as each epoch ends: solid lines are validation "
                       "accuracy, dashed lines training accuracy (measured with dropout off, "
                       "like validation). The thin line is the training loss of the epoch "
                       "so far.")


class TrainingPane(Pane):
    """Training settings and live results. Start/pause/stop requests go out as signals; the
    main window owns the :class:`~tlgui.gui.training_controller.TrainingController`."""

    title = "Train"
    hint = "Start training and watch the runs with and without dropout."

    start_requested = Signal()
    pause_requested = Signal()
    resume_requested = Signal()
    stop_requested = Signal()

    def __init__(self, parent=None):
        super().__init__(parent)
        self.device = QComboBox()
        self.device.addItem("Auto", "auto")
        self.epochs = _spin(1, 1000, 10)
        self.batch_size = _spin(2, 1024, 32)  # batch normalisation learns nothing from one
        self.lr = QDoubleSpinBox()
        self.lr.setDecimals(5)
        self.lr.setRange(1e-5, 1.0)
        self.lr.setSingleStep(1e-4)
        self.lr.setValue(1e-3)
        self.backbone_lr = QDoubleSpinBox()
        self.backbone_lr.setRange(0.001, 1.0)
        self.backbone_lr.setDecimals(3)
        self.backbone_lr.setSingleStep(0.05)
        self._backbone_lr_default = default_backbone_lr_factor("imagenet")
        self.backbone_lr.setValue(self._backbone_lr_default)
        self.backbone_lr.setPrefix("× ")
        self.backbone_lr.setToolTip(
            "Backbone learning rate = this × head learning rate (only for blocks that train). "
            "By default 0.1 with pretrained weights, which protects their features, and 1 with "
            "random weights, which have everything to learn.")
        self.schedule = QComboBox()
        for text, value in (("Cosine decay", "cosine"), ("Step (÷10 twice)", "step"),
                            ("Constant", "none")):
            self.schedule.addItem(text, value)
        self.augment = QCheckBox("Augment (random crops, flips, colour)")
        self.augment.setToolTip("Helps against over-fitting; the backbone then runs every epoch")
        self.early_stopping = _spin(0, 100, 0)
        self.early_stopping.setSpecialValueText("off")
        self.early_stopping.setSuffix(" epochs without gain")
        self.image_size = ImageSizeBox()
        self._fixed_size = False  #: the backbone takes its own size only
        self._size_before_fixed = 0
        self.image_size.setSpecialValueText("backbone default (224 px)")
        self.image_size.setSuffix(" px")
        self.image_size.setToolTip(SIZE_TIP)
        self.compare = QCheckBox("Compare with and without dropout")
        self.compare.setChecked(True)
        self.compare.setToolTip("Train the same model twice, side by side: one with the head's "
                                "dropout, one without")

        form = QFormLayout()
        form.addRow("Device", self.device)
        form.addRow("Epochs", self.epochs)
        form.addRow("Batch size", self.batch_size)
        form.addRow("Learning rate", self.lr)
        form.addRow("Backbone rate", self.backbone_lr)
        form.addRow("Schedule", self.schedule)
        form.addRow("Early stopping", self.early_stopping)
        form.addRow("Image size", self.image_size)
        form.addRow(self.augment)
        form.addRow(self.compare)
        self.settings_box = QGroupBox("Settings")
        self.settings_box.setLayout(form)

        self.start_button = QPushButton("Start Training")
        self.start_button.setDefault(True)
        self.start_button.clicked.connect(self.start_requested)
        self.pause_button = QPushButton("Pause")
        self.pause_button.clicked.connect(self._on_pause_clicked)
        self.stop_button = QPushButton("Stop")
        self.stop_button.clicked.connect(self.stop_requested)
        self.problem = QLabel()
        self.problem.setWordWrap(True)
        self.problem.setStyleSheet(f"color: {warning_colour(self.palette())};")
        buttons = QHBoxLayout()
        buttons.addWidget(self.start_button)
        buttons.addWidget(self.pause_button)
        buttons.addWidget(self.stop_button)

        self.step_progress = QProgressBar()
        self.step_progress.setFormat("")
        self.run_progress = QProgressBar()
        self.run_progress.setFormat("")
        self.step_label = ElidedLabel("Ready.")
        self.run_label = ElidedLabel("")

        left = QVBoxLayout()
        left.addWidget(self.settings_box)
        left.addLayout(buttons)
        left.addWidget(self.problem)
        left.addWidget(self.step_label)
        left.addWidget(self.step_progress)
        left.addWidget(self.run_label)
        left.addWidget(self.run_progress)
        left.addStretch()
        left_widget = QWidget()
        left_widget.setLayout(left)
        left_widget.setMaximumWidth(380)

        self.curves = CurvesView()
        self.summary = QLabel(SUMMARY_PLACEHOLDER)
        self.summary.setWordWrap(True)
        self.summary.setTextFormat(Qt.TextFormat.RichText)
        self.summary.setMinimumHeight(64)
        self.summary.setAlignment(Qt.AlignmentFlag.AlignTop)
        self.log = QPlainTextEdit()
        self.log.setReadOnly(True)
        self.log.setMaximumBlockCount(5000)
        self.log.setPlaceholderText("What happened appears here.")
        right = QSplitter(Qt.Orientation.Vertical)
        plots = QWidget()
        plots_layout = QVBoxLayout(plots)
        plots_layout.setContentsMargins(0, 0, 0, 0)
        plots_layout.addWidget(self.curves, 1)
        plots_layout.addWidget(self.summary)
        right.addWidget(plots)
        right.addWidget(self.log)
        right.setStretchFactor(0, 4)
        right.setStretchFactor(1, 1)

        layout = QHBoxLayout(self)
        layout.addWidget(left_widget)
        layout.addWidget(right, 1)
        self._started_at = None
        self._dropouts: dict[str, float] = {}  #: run name -> its dropout, for the log
        self._epoch = 0  #: the epoch training is in (1-based; 0 before the first batch)
        self._epochs = 0
        self._live = False  #: a training's progress is shown and it has not ended yet
        self.set_state("idle")
        for spin in (self.epochs, self.batch_size, self.lr, self.backbone_lr,
                     self.early_stopping, self.image_size):
            spin.valueChanged.connect(self.changed)
        for box in (self.augment, self.compare):
            box.toggled.connect(self.changed)
        for combo in (self.schedule, self.device):
            combo.currentIndexChanged.connect(self.changed)

    # -- settings ----------------------------------------------------------------------------
    def set_devices(self, devices) -> None:
        """Offer Auto and each device this machine has."""
        current = self.device.currentData()
        self.device.clear()
        best = devices[0][1] if devices else "CPU"
        self.device.addItem(f"Auto — {best}", "auto")
        for dev_id, text in devices:
            self.device.addItem(f"{dev_id} — {text}", dev_id)
        index = self.device.findData(current)
        self.device.setCurrentIndex(max(0, index))

    def settings(self) -> dict:
        """The training half of a TrainConfig."""
        return {
            "device": self.device.currentData(),
            "epochs": self.epochs.value(),
            "batch_size": self.batch_size.value(),
            "lr": self.lr.value(),
            "backbone_lr_factor": self.backbone_lr.value(),
            "schedule": self.schedule.currentData(),
            "augment": self.augment.isChecked(),
            "early_stopping": self.early_stopping.value(),
            "image_size": None if self._fixed_size else self.image_size.value() or None,
            "compare_dropout": self.compare.isChecked(),
        }

    def apply_settings(self, s: dict) -> None:
        for key, widget in (("epochs", self.epochs), ("batch_size", self.batch_size),
                            ("early_stopping", self.early_stopping)):
            if key in s:
                widget.setValue(int(s[key]))
        if "image_size" in s:
            if self._fixed_size:  # shown when a backbone that takes other sizes is chosen
                self._size_before_fixed = int(s["image_size"] or 0)
            else:
                self.image_size.setValue(int(s["image_size"] or 0))
        for key, widget in (("lr", self.lr), ("backbone_lr_factor", self.backbone_lr)):
            if key in s:
                widget.setValue(float(s[key]))
        for key, widget in (("augment", self.augment), ("compare_dropout", self.compare)):
            if key in s:
                widget.setChecked(s[key] in (True, "true", "1", 1))
        for key, combo in (("schedule", self.schedule), ("device", self.device)):
            index = combo.findData(s.get(key))
            if index >= 0:
                combo.setCurrentIndex(index)

    def set_backbone(self, crop_size: int, fixed_size: bool) -> None:
        """Name the backbone's own image size; a backbone that takes that size only (a vision
        transformer) has none to choose: the box shows its size, greyed, and the size chosen
        before comes back with another backbone."""
        self.image_size.setSpecialValueText(f"backbone default ({crop_size} px)")
        if fixed_size and not self._fixed_size:
            self._size_before_fixed = self.image_size.value()
            self.image_size.setValue(0)
        elif not fixed_size and self._fixed_size:
            self.image_size.setValue(self._size_before_fixed)
        self._fixed_size = fixed_size
        self.image_size.setEnabled(not fixed_size)
        self.image_size.setToolTip(f"This backbone takes {crop_size} px images only"
                                   if fixed_size else SIZE_TIP)

    def set_starting_weights(self, weights: str) -> None:
        """Follow the Model step's starting weights: the backbone rate's default is the full
        rate for random weights and a tenth for pretrained ones. A rate the user set stays."""
        default = default_backbone_lr_factor(weights)
        if abs(self.backbone_lr.value() - self._backbone_lr_default) < 1e-9:
            self.backbone_lr.setValue(default)
        self._backbone_lr_default = default

    # -- the Pane interface ------------------------------------------------------------------
    def remembered_settings(self) -> dict:
        return {"training": self.settings()}

    def restore_settings(self, values: dict) -> None:
        self.apply_settings(_as_dict(values.get("training")))

    def project_state(self) -> dict:
        return {"training": self.settings()}

    def apply_project_state(self, state: dict) -> list[str]:
        self.apply_settings(_as_dict(state.get("training")))
        return []

    def set_problem(self, text: str) -> None:
        """Why training cannot start now ('' when it can)."""
        self.problem.setText(text)
        self._can_start = not text
        self.set_state(self._state)

    # -- state -------------------------------------------------------------------------------
    def set_state(self, state: str) -> None:
        """idle, preparing, running, paused, stopping, or following (a training elsewhere,
        which this window cannot pause or stop; a training of its own may start)."""
        self._state = state
        busy = state not in ("idle", "following")
        self.start_button.setEnabled(not busy and getattr(self, "_can_start", True))
        self.pause_button.setEnabled(state in ("running", "paused", "preparing"))
        self.pause_button.setText("Resume" if state == "paused" else "Pause")
        self.stop_button.setEnabled(state in ("running", "paused", "preparing"))
        # Following a run trained elsewhere, these settings are not its own: they wait.
        self.settings_box.setEnabled(not busy and state != "following")
        if state == "idle" and self._live:  # ended without a summary (it failed)
            self._show_ended("stopped")
        elif state == "paused" and self._live and self._epoch:  # no time passes while paused
            self.run_label.setText(f"Paused in epoch {self._epoch} of {self._epochs}.")

    def changeEvent(self, event) -> None:  # noqa: N802 (Qt's name)
        super().changeEvent(event)
        if event.type() == QEvent.Type.PaletteChange and hasattr(self, "problem"):
            self.problem.setStyleSheet(f"color: {warning_colour(self.palette())};")

    def _on_pause_clicked(self) -> None:
        if self._state == "paused":
            self.resume_requested.emit()
        else:
            self.pause_requested.emit()

    # -- events from the trainer -------------------------------------------------------------
    def reset(self, runs, epochs: int = 10) -> None:
        """Prepare for a training of ``runs`` over ``epochs`` epochs."""
        self.curves.reset(runs, epochs)
        self.summary.setText("")
        self.step_progress.setValue(0)
        self.run_progress.setValue(0)
        self._started_at = time.monotonic()
        self._epoch, self._epochs = 0, epochs
        self._live = True

    def clear_for_new_data(self) -> None:
        """Forget the last training's curves, summary and progress: they describe a data set
        that is no longer loaded. The main window calls it when the data set changes while
        no training runs; the settings and the log stay."""
        self.curves.clear()
        self.curves.setToolTip("")
        self.summary.setText(SUMMARY_PLACEHOLDER)
        self.step_progress.setValue(0)
        self.run_progress.setValue(0)
        self.step_label.setText("Ready.")
        self.run_label.setText("")
        self._live = False

    @Slot(object)
    def on_training_started(self, event: ev.TrainingStarted) -> None:
        self.reset(event.runs, event.epochs)
        self._epoch = event.start_epoch + 1
        self._dropouts = dict(zip(event.runs, event.dropouts))
        self.curves.setToolTip(train_curve_note(event.train_eval_size or event.train_size,
                                                event.train_size))
        self.run_progress.setRange(0, event.epochs * 1000)
        self.run_progress.setValue(event.start_epoch * 1000)
        self.run_label.setText(f"Epoch {event.start_epoch + 1} of {event.epochs}")
        self.add_log(
            f"training {' and '.join(RUN_LABELS.get(r, r) for r in event.runs)} on "
            f"{event.train_size} images, validating on {event.val_size}; "
            f"{event.trainable_params:,} trainable and {event.frozen_params:,} frozen "
            f"parameters on {event.device}"
            + ("; backbone features are computed once and reused" if event.feature_cache
               else ""))

    @Slot(object)
    def on_stage_progressed(self, event: ev.StageProgress) -> None:
        self.step_progress.setRange(0, max(event.total, 1))
        self.step_progress.setValue(event.done)
        left = f" — {duration(event.eta_seconds)} left" if event.eta_seconds else ""
        self.step_label.setText(f"{event.message[0].upper()}{event.message[1:]}: "
                                f"{event.done:,} of {event.total:,}{left}")

    @Slot(object)
    def on_batch_finished(self, event: ev.BatchFinished) -> None:
        self._epoch, self._epochs = event.epoch, event.epochs
        self.curves.add_batch(event)
        self.step_progress.setRange(0, event.batches)
        self.step_progress.setValue(event.batch)
        self.step_label.setText(f"Epoch {event.epoch}: batch {event.batch} of {event.batches}")
        done = (event.epoch - 1) * 1000 + int(1000 * event.batch / event.batches)
        self.run_progress.setValue(done)
        self.run_label.setText(f"Epoch {event.epoch} of {event.epochs} — "
                               f"{duration(event.eta_seconds)} left")

    @Slot(object)
    def on_epoch_finished(self, event: ev.EpochFinished) -> None:
        self.curves.add_epoch(event)
        self.run_progress.setValue(event.epoch * 1000)
        self.run_label.setText(f"Epoch {event.epoch} of {event.epochs} done — "
                               f"{duration(event.eta_seconds)} left")
        self.add_log(
            f"epoch {event.epoch}/{event.epochs} {RUN_LABELS.get(event.run, event.run)}: "
            f"train {event.train_acc_eval:.1%} (loss {event.train_loss_eval:.3f}; "
            f"{event.train_acc:.1%} while it trained"
            + (", with dropout active" if self._dropouts.get(event.run) else "") + "), "
            + (f"validation {event.val_acc:.1%} (loss {event.val_loss:.3f}), "
               if not math.isnan(event.val_acc) else "no validation images, ")
            + f"{event.seconds:.1f} s" + (" — best so far" if event.improved else ""))

    @Slot(dict)
    def on_training_finished(self, summary: dict) -> None:
        self.summary.setText(summary_html(summary, warning_colour(self.palette())))
        self.step_label.setText("Stopped." if summary["status"] == "stopped" else "Finished.")
        if summary["status"] != "stopped":
            self.run_progress.setValue(self.run_progress.maximum())
        completed = [run.get("epochs_completed") for run in summary["runs"].values()]
        self._show_ended(summary["status"], max((c for c in completed if c), default=None))
        self.add_log(f"training {summary['status']}")

    def _show_ended(self, status: str, epochs_completed: int | None = None) -> None:
        """Replace the time left with how the training ended."""
        self._live = False
        epochs = self._epochs
        if status != "stopped":
            done = epochs_completed or epochs
            self.run_label.setText("Finished." if done >= epochs else
                                   f"Finished at epoch {done} of {epochs}.")
        elif self._epoch:
            self.run_label.setText(f"Stopped at epoch {self._epoch} of {epochs}.")
        else:
            self.run_label.setText("Stopped before the first epoch.")

    def add_log(self, text: str) -> None:
        self.log.appendPlainText(f"{time.strftime('%H:%M:%S')}  {text}")


def summary_html(summary: dict, warning: str = "#b00020") -> str:
    """The summary of a training, as the core computed it: each run's best validation
    accuracy and train–validation gap (training accuracy in evaluation mode), the warnings
    about each model (in the colour ``warning``), and the verdict on what the training
    shows."""
    runs = summary["runs"]
    # A summary written before it counted the epochs: a best epoch means one completed.
    if not any(run.get("epochs_completed", run["best_epoch"] or 0) for run in runs.values()):
        return "No epoch completed."
    parts = []
    for name, run in runs.items():
        colour = RUN_COLOURS.get(name, "#2ca02c")
        gap = run["train_val_gap"]
        text = f"<span style='color:{colour}'>■</span> <b>{RUN_LABELS.get(name, name)}</b>: "
        if run["best_val_acc"] is not None:
            text += (f"best validation {run['best_val_acc']:.1%} "
                     f"(epoch {run['best_epoch']})")
        elif run["best_epoch"] is not None:  # no validation images: the best by training
            text += f"no validation images; best epoch {run['best_epoch']} by training accuracy"
            if run.get("last_train_acc") is not None:
                text += f", last train {run['last_train_acc']:.1%}"
        else:
            text += "no epoch completed"
        if gap is not None and not math.isnan(gap):
            text += f", train–validation gap {gap * 100:+.1f} points (train in eval mode)"
        if run.get("test_acc") is not None:
            text += f", test {run['test_acc']:.1%}"
        parts.append(text)
        for warning in run.get("warnings", []):
            parts.append(f"<span style='color:{warning}'>⚠ {RUN_LABELS.get(name, name)}: "
                         f"{html.escape(warning)}</span>")
        calibration = run.get("calibration")
        if isinstance(calibration, dict) and isinstance(calibration.get("text"), str):
            parts.append(f"{RUN_LABELS.get(name, name)}: {html.escape(calibration['text'])}")
    verdict = summary.get("verdict")
    if verdict:
        parts.append(html.escape(verdict["text"]))
    return "<br>".join(parts)


def warning_colour(palette: QPalette) -> str:
    """A red that reads on the palette's window colour: dark on a light theme, light on a
    dark one."""
    dark = palette.color(QPalette.ColorRole.Window).lightness() < 128
    return "#ff6b6b" if dark else "#b00020"


def _as_dict(value) -> dict:
    """Settings kept as a dict, or as the JSON text of one (what earlier versions stored)."""
    if isinstance(value, str):
        try:
            value = json.loads(value or "{}")
        except ValueError:
            return {}
    return value if isinstance(value, dict) else {}


class ElidedLabel(QLabel):
    """A one-line label that is never cut off: text too long for its width ends in "…", and
    the tooltip holds the whole line. It never widens its column either."""

    def __init__(self, text: str = "", parent=None):
        super().__init__(parent)
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self._full = ""
        self.setText(text)

    def setText(self, text: str) -> None:  # noqa: N802 (Qt's name)
        self._full = text
        self.setToolTip(text)
        self._elide()

    def text(self) -> str:
        """The whole line, shortened or not."""
        return self._full

    def displayed_text(self) -> str:
        """The line as shown, "…" included."""
        return super().text()

    def resizeEvent(self, event) -> None:  # noqa: N802 (Qt's name)
        super().resizeEvent(event)
        self._elide()

    def _elide(self) -> None:
        width = self.contentsRect().width()
        super().setText(self.fontMetrics().elidedText(self._full, Qt.TextElideMode.ElideRight,
                                                      width))


class ImageSizeBox(QSpinBox):
    """Image size in pixels, or 0 for the backbone's own size.

    Sizes between 0 and :data:`MIN_IMAGE_SIZE` cannot train, so the arrows step from the
    default straight to the smallest size that can, and back."""

    def __init__(self):
        super().__init__()
        self.setRange(0, 512)
        self.setSingleStep(16)

    def stepBy(self, steps: int) -> None:  # noqa: N802 (Qt's name)
        value = self.value()
        if value == 0 and steps > 0:
            self.setValue(MIN_IMAGE_SIZE + (steps - 1) * self.singleStep())
        elif value <= MIN_IMAGE_SIZE and steps < 0:
            self.setValue(0)
        else:
            super().stepBy(steps)


def _spin(low: int, high: int, value: int) -> QSpinBox:
    spin = QSpinBox()
    spin.setRange(low, high)
    spin.setValue(value)
    return spin
