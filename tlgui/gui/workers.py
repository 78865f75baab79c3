"""Long work off the GUI thread: a QObject worker moved to a long-lived QThread, behind a
controller that lives in the GUI thread.

Widgets talk only to controllers. The worker's signals are connected to the controller's
slots — bound methods of an object living in the GUI thread, so Qt queues them there (never
lambdas: those would run in the worker's thread) — and the controller re-emits them. Cancel,
pause and stop set :class:`~tlgui.core.control.RunControl` flags directly: a queued call would
never reach a worker whose thread is busy inside the work.
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable

from PySide6.QtCore import QMetaObject, QObject, Qt, QThread, Signal, Slot

from ..core.control import Cancelled, RunControl

#: ``fn(emit, control)``: ``emit(obj)`` reports progress or events; ``control`` says when to stop.
Task = Callable[[Callable[[object], None], RunControl], object]


class FunctionWorker(QObject):
    """Runs one task in the thread it was moved to. Every signal carries the request number."""

    emitted = Signal(int, object)
    succeeded = Signal(int, object)
    failed = Signal(int, str, str)  #: request, one-line message, details (traceback)
    cancelled = Signal(int)
    finished = Signal(int)

    def __init__(self, request: int, fn: Task, control: RunControl):
        super().__init__()
        self._request = request
        self._fn = fn
        self.control = control

    def _emit(self, obj: object) -> None:
        self.emitted.emit(self._request, obj)

    @Slot()
    def run(self) -> None:
        request = self._request
        try:
            result = self._fn(self._emit, self.control)
        except Cancelled:
            self.cancelled.emit(request)
        except Exception as e:  # every error reaches the user; none takes the app down
            self.failed.emit(request, error_line(e), traceback.format_exc())
        else:
            if self.control.stop_requested:
                self.cancelled.emit(request)
            else:
                self.succeeded.emit(request, result)
        finally:
            self.finished.emit(request)


class TaskController(QObject):
    """Runs one task at a time in its own QThread; starting a task cancels the one before.

    Results of a superseded task are dropped by request number, so a slow scan of the previous
    folder can never overwrite the newer one. Signals are emitted in the GUI thread.
    """

    started = Signal()
    emitted = Signal(object)  #: whatever the task reported (progress tuples, events)
    succeeded = Signal(object)  #: the task's return value
    failed = Signal(str, str)  #: one-line message, details
    cancelled = Signal()
    finished = Signal()  #: after succeeded, failed or cancelled

    def __init__(self, name: str, parent: QObject | None = None):
        super().__init__(parent)
        self._thread = QThread(self)
        self._thread.setObjectName(name)
        self._thread.start()
        self._request = 0
        self._workers: dict[int, FunctionWorker] = {}

    def start(self, fn: Task) -> None:
        """Run ``fn(emit, control)`` in the worker thread, cancelling any task still running."""
        self.cancel()
        self._request += 1
        worker = FunctionWorker(self._request, fn, RunControl())
        worker.moveToThread(self._thread)
        worker.emitted.connect(self._on_emitted)
        worker.succeeded.connect(self._on_succeeded)
        worker.failed.connect(self._on_failed)
        worker.cancelled.connect(self._on_cancelled)
        worker.finished.connect(self._on_finished)
        self._workers[self._request] = worker
        self.started.emit()
        QMetaObject.invokeMethod(worker, "run", Qt.ConnectionType.QueuedConnection)

    @property
    def control(self) -> RunControl | None:
        """The control of the current task (pause, resume, stop)."""
        worker = self._workers.get(self._request)
        return worker.control if worker else None

    def cancel(self) -> None:
        for worker in self._workers.values():
            worker.control.stop()

    def is_running(self) -> bool:
        return bool(self._workers)

    def shutdown(self, timeout_ms: int = 60_000) -> bool:
        """Cancel the task, end the thread and wait for it; True when the thread has ended."""
        self.cancel()
        self._thread.quit()
        return self._thread.wait(timeout_ms)

    @Slot(int, object)
    def _on_emitted(self, request: int, obj: object) -> None:
        if request == self._request:
            self.emitted.emit(obj)

    @Slot(int, object)
    def _on_succeeded(self, request: int, result: object) -> None:
        if request == self._request:
            self.succeeded.emit(result)

    @Slot(int, str, str)
    def _on_failed(self, request: int, message: str, details: str) -> None:
        if request == self._request:
            self.failed.emit(message, details)

    @Slot(int)
    def _on_cancelled(self, request: int) -> None:
        if request == self._request:
            self.cancelled.emit()

    @Slot(int)
    def _on_finished(self, request: int) -> None:
        worker = self._workers.pop(request, None)
        if worker is not None:
            worker.deleteLater()
        if request == self._request:
            self.finished.emit()


class Throttle:
    """Lets a call through at most every ``interval`` seconds, and always the last one."""

    def __init__(self, interval: float = 0.05):
        self.interval = interval
        self._last = 0.0

    def ready(self, final: bool = False) -> bool:
        now = time.monotonic()
        if final or now - self._last >= self.interval:
            self._last = now
            return True
        return False


def error_line(e: BaseException) -> str:
    """One line for the user, as the command line prints it."""
    from ..core.errors import one_line

    return one_line(e)
