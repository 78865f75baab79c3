"""Runs the core trainer in a QThread and turns its events into GUI-thread signals."""

from __future__ import annotations

from PySide6.QtCore import QObject, Signal, Slot

from ..core import events as ev
from .workers import TaskController


def give_out(owner: QObject, event) -> None:
    """Emit ``event`` (from the trainer, or read from a run's log) with ``owner``'s signal of
    the same name as :class:`TrainingController`'s: one mapping for both."""
    if isinstance(event, ev.BatchFinished):
        owner.batch_finished.emit(event)
    elif isinstance(event, ev.EpochFinished):
        owner.epoch_finished.emit(event)
    elif isinstance(event, ev.StageProgress):
        owner.stage_progressed.emit(event)
    elif isinstance(event, ev.TrainingStarted):
        owner.training_started.emit(event)
    elif isinstance(event, ev.LogMessage):
        owner.log_message.emit(event.text)
    elif isinstance(event, ev.TrainingFinished):
        owner.training_finished.emit(event.summary)


class TrainingController(QObject):
    """The one object widgets use to train.

    States: ``idle`` -> ``preparing`` (weights, backbone features) -> ``running`` <->
    ``paused``; ``stopping`` after a stop request; back to ``idle`` when the worker ends.
    """

    state_changed = Signal(str)
    training_started = Signal(object)  #: events.TrainingStarted
    stage_progressed = Signal(object)  #: events.StageProgress
    batch_finished = Signal(object)  #: events.BatchFinished
    epoch_finished = Signal(object)  #: events.EpochFinished
    log_message = Signal(str)
    training_finished = Signal(dict)  #: the summary (status "finished" or "stopped")
    training_failed = Signal(str, str)  #: one-line message, details

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self._task = TaskController("trainer", self)
        self._task.emitted.connect(self._on_event)
        self._task.failed.connect(self.training_failed)
        self._task.finished.connect(self._on_finished)
        self.state = "idle"
        self._held = False  #: started held, not yet released

    def start(self, config, report, out_dir, *, held: bool = False) -> None:
        """Train ``config`` on ``report`` into ``out_dir`` (all plain core objects).

        A ``held`` training is running (``preparing``) at once but begins only at
        :meth:`release`: the window draws the step that shows it first."""
        if self.is_running():
            raise RuntimeError("a training is already running")

        def task(emit, control):
            from ..core.training import Trainer  # torch loads in the worker thread

            return Trainer(config, report, out_dir, on_event=emit, control=control).run()

        self._held = held
        self._set_state("preparing")
        self._task.start(task, paused=held)

    def release(self) -> None:
        """Let a held training begin (unless the user paused it meanwhile: then at resume)."""
        if self._held:
            self._held = False
            control = self._task.control
            if control is not None and self.state == "preparing":
                control.resume()

    def pause(self) -> None:
        control = self._task.control
        if control is not None and self.state in ("preparing", "running"):
            control.pause()
            self._set_state("paused")

    def resume(self) -> None:
        control = self._task.control
        if control is not None and self.state == "paused":
            self._held = False
            control.resume()
            self._set_state("running")

    def stop(self) -> None:
        if self.is_running():
            self._task.cancel()
            self._set_state("stopping")

    def is_running(self) -> bool:
        return self._task.is_running()

    def shutdown(self, timeout_ms: int = 10_000) -> bool:
        """Stop the training and wait at most ``timeout_ms`` for it (see
        :meth:`TaskController.shutdown`); True when it ended."""
        return self._task.shutdown(timeout_ms)

    def _set_state(self, state: str) -> None:
        if state != self.state:
            self.state = state
            self.state_changed.emit(state)

    @Slot(object)
    def _on_event(self, event) -> None:
        if isinstance(event, ev.BatchFinished) and self.state == "preparing":
            self._set_state("running")
        give_out(self, event)

    @Slot()
    def _on_finished(self) -> None:
        self._set_state("idle")
