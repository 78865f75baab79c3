"""Following a training this window did not start: its run folder's event log (see
:mod:`tlgui.core.event_log`) read as it grows, on a mounted share or a synced folder, and
its events given out with the signals of :class:`~tlgui.gui.training_controller.
TrainingController`, so the Train step shows them as it shows a training of its own. It
only reads: nothing in the run folder is written."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject, QTimer, Signal

from ..core import events as ev
from ..core.event_log import QUIET_SECONDS, EventLogReader, TrainingFailed
from .training_controller import give_out

#: The most of the log read at a time (a few hundred events: some tens of milliseconds).
READ_BYTES = 64 * 2**10

#: How often the log is read while following (a share may be slow; a second is live enough).
POLL_MS = 1000


class RunFollower(QObject):
    """Reads a run folder's ``events.jsonl`` every :data:`POLL_MS` ms until it ends."""

    training_started = Signal(object)
    stage_progressed = Signal(object)
    batch_finished = Signal(object)
    epoch_finished = Signal(object)
    log_message = Signal(str)
    training_finished = Signal(dict)  #: the summary, when the log's training ends
    training_failed = Signal(str, str)
    following_changed = Signal(bool)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.folder: Path | None = None
        self.reader: EventLogReader | None = None
        self._quiet_said = False
        self._timer = QTimer(self)
        self._timer.setInterval(POLL_MS)
        self._timer.timeout.connect(self.poll)

    def is_following(self) -> bool:
        return self.reader is not None

    def follow(self, folder: str | Path) -> None:
        """Show the training of ``folder`` from its first event on, then as it goes."""
        self.stop()
        self.folder = Path(folder)
        self.reader = EventLogReader(self.folder)
        self._quiet_said = False
        self.following_changed.emit(True)
        self._timer.start()
        self.poll()

    def stop(self) -> None:
        if self.reader is not None:
            self._timer.stop()
            self.reader = None
            self.following_changed.emit(False)

    def poll(self) -> None:
        reader = self.reader
        if reader is None:
            return
        skipped = reader.log.skipped
        # A slice at a time: a long run's log (hours of it) is read on the window's thread in
        # bites that keep it responsive, the next one as soon as the window is free again.
        found = reader.read(READ_BYTES)
        if reader.behind:
            QTimer.singleShot(0, self, self.poll)
        if reader.log.skipped and not skipped:
            self.log_message.emit(f"skipped what is not an event: {reader.log.first_problem}")
        for event in found:
            if self.reader is not reader:
                return  # a handler stopped following
            self._give_out(event)
        if not found:
            quiet = reader.modified_seconds_ago()
            if quiet is not None and quiet > QUIET_SECONDS and not self._quiet_said:
                self._quiet_said = True
                self.log_message.emit(
                    f"no news from the training for {quiet / 60:.0f} min: it may have been "
                    f"stopped without a word (killed); still following {self.folder}")
        elif self._quiet_said:
            self._quiet_said = False

    def _give_out(self, event) -> None:
        if isinstance(event, TrainingFailed):
            self.training_failed.emit(event.message, f"{self.folder}: the training failed")
            self.stop()
            return
        give_out(self, event)
        if isinstance(event, ev.TrainingFinished):
            self.stop()
