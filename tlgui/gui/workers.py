"""Long work off the GUI thread: one controller per kind of job, living in the GUI thread, runs
each task in a QThread of its own.

Widgets talk only to controllers. The worker's signals are connected to the controller's
slots — bound methods of an object living in the GUI thread, so Qt queues them there (never
lambdas: those would run in the worker's thread) — and the controller re-emits them and calls
the typed handlers given to :meth:`TaskController.start`. Cancel, pause and stop set
:class:`~tlgui.core.control.RunControl` flags directly: a queued call would never reach a
worker whose thread is busy inside the work.

A controller runs one task at a time; starting one cancels the one before *of the same
controller*, so two kinds of job (say, an evaluation and a prediction) never cancel each other.
"""

from __future__ import annotations

import time
import traceback
import weakref
from collections.abc import Callable
from dataclasses import dataclass

from PySide6.QtCore import QEvent, QMetaObject, QObject, Qt, QThread, QTimer, Signal, Slot

from ..core.control import Cancelled, RunControl
from ..core.priority import lower_this_thread

#: ``fn(emit, control)``: ``emit(obj)`` reports progress or events; ``control`` says when to stop.
Task = Callable[[Callable[[object], None], RunControl], object]

#: Threads whose task did not stop in time at shutdown. They are kept referenced here (and
#: unparented) until they end, because Qt aborts the process when a running QThread object is
#: destroyed; see :func:`abandoned_threads`.
_ABANDONED: list[QThread] = []

#: How long a shutdown waits for a task by default, in milliseconds. Tasks check their control
#: between batches, files or steps, far more often than this; one that does not stop in time
#: is abandoned, so that quitting never waits long on a job that cannot be cancelled.
SHUTDOWN_WAIT_MS = 2_000

#: Every controller alive, so tests can check that none is left running.
_CONTROLLERS: weakref.WeakSet = weakref.WeakSet()


def abandoned_threads() -> list[QThread]:
    """Threads left running by a shutdown that timed out (their tasks could not be cancelled)."""
    _ABANDONED[:] = [t for t in _ABANDONED if t.isRunning()]
    return list(_ABANDONED)


def live_controllers() -> list[TaskController]:
    """Every :class:`TaskController` not yet garbage-collected whose Qt object still exists
    (one deleted with its parent widget took its ended thread with it)."""
    import shiboken6

    return [c for c in list(_CONTROLLERS) if shiboken6.isValid(c)]


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
        # Background work yields the processor to the window's thread (see core.priority).
        lower_this_thread()
        try:
            # A task started paused waits here, without the interpreter lock, until resumed;
            # one cancelled before it started never runs.
            if self.control.checkpoint():
                raise Cancelled
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


@dataclass
class _Handlers:
    on_succeeded: Callable[[object], None] | None = None
    on_progress: Callable[[object], None] | None = None
    on_failed: Callable[[str, str], None] | None = None
    on_cancelled: Callable[[], None] | None = None


class TaskController(QObject):
    """Runs one task at a time in its own QThread; starting a task cancels the one before.

    Results of a superseded task are dropped by request number, so a slow scan of the previous
    folder can never overwrite the newer one. Signals and handlers run in the GUI thread, in
    this order for each task: ``started``, any number of ``emitted``, then one of
    ``succeeded`` / ``failed`` / ``cancelled`` (only for the newest task), then ``finished``.

    The thread starts with the first task and ends when no task is left, so an idle
    controller holds no thread.
    """

    started = Signal()
    emitted = Signal(object)  #: whatever the task reported (Progress records, events)
    succeeded = Signal(object)  #: the task's return value
    failed = Signal(str, str)  #: one-line message, details
    cancelled = Signal()
    finished = Signal()  #: after succeeded, failed or cancelled

    def __init__(self, name: str, parent: QObject | None = None):
        super().__init__(parent)
        self.name = name
        self._thread: QThread | None = None
        self._request = 0
        self._workers: dict[int, FunctionWorker] = {}
        self._handlers = _Handlers()
        self._closed = False
        self._quit_requested = False
        _CONTROLLERS.add(self)

    def start(self, fn: Task, *, on_succeeded=None, on_progress=None, on_failed=None,
              on_cancelled=None, paused: bool = False) -> None:
        """Run ``fn(emit, control)`` in the worker thread, cancelling any task still running.

        The handlers are called in the GUI thread, for this task only: ``on_progress(obj)``
        for what it emits, then ``on_succeeded(result)``, ``on_failed(message, details)`` or
        ``on_cancelled()``. A task started ``paused`` counts as running but begins only once
        :attr:`control` is resumed (or ends, cancelled, once stopped).
        """
        if self._closed:
            return
        self.cancel()
        self._request += 1
        self._handlers = _Handlers(on_succeeded, on_progress, on_failed, on_cancelled)
        control = RunControl()
        if paused:
            control.pause()
        worker = FunctionWorker(self._request, fn, control)
        thread = self._ensure_thread()
        worker.moveToThread(thread)
        worker.emitted.connect(self._on_emitted)
        worker.succeeded.connect(self._on_succeeded)
        worker.failed.connect(self._on_failed)
        worker.cancelled.connect(self._on_cancelled)
        worker.finished.connect(self._on_finished)
        self._workers[self._request] = worker
        self.started.emit()
        QMetaObject.invokeMethod(worker, "run", Qt.ConnectionType.QueuedConnection)

    def _ensure_thread(self) -> QThread:
        if self._thread is None:
            self._thread = QThread(self)
            self._thread.setObjectName(self.name)
        if self._quit_requested:
            # An idle thread asked to quit may still be winding down, and a task queued to it
            # now would never run: wait for it to end (it has no task, so this takes
            # milliseconds) and start it again.
            self._thread.wait(5_000)
            self._quit_requested = False
        if not self._thread.isRunning():
            self._thread.start()
        return self._thread

    @property
    def control(self) -> RunControl | None:
        """The control of the current task (pause, resume, stop)."""
        worker = self._workers.get(self._request)
        return worker.control if worker else None

    def cancel(self) -> None:
        """Ask every task of this controller to stop; one that has not started never runs."""
        for worker in self._workers.values():
            worker.control.stop()

    def is_running(self) -> bool:
        """True while a task of this controller has not finished."""
        return bool(self._workers)

    def thread_running(self) -> bool:
        """True while this controller's thread runs (a task, or winding down after one)."""
        import shiboken6

        # The thread is deleted with its controller's parent widget; it had ended by then.
        thread = self._thread
        return thread is not None and shiboken6.isValid(thread) and thread.isRunning()

    def shutdown(self, timeout_ms: int = SHUTDOWN_WAIT_MS) -> bool:
        """Cancel the task, end the thread and wait at most ``timeout_ms``; True when it ended.

        A task that does not stop in time is abandoned: its thread keeps running, unparented
        and referenced until it ends (destroying a running QThread aborts the process), and
        its results land nowhere. No task starts on this controller afterwards.
        """
        self._closed = True
        self.cancel()
        thread = self._thread
        if thread is None:
            return True
        thread.quit()
        if thread.wait(timeout_ms):
            # A task queued but not yet picked up never runs now that the thread has ended
            # (its event loop left the queued call behind): it is not running either.
            self._workers.clear()
            return True
        for worker in self._workers.values():  # whatever it still says lands nowhere
            worker.blockSignals(True)
        self._workers.clear()
        thread.setParent(None)
        _ABANDONED.append(thread)
        self._thread = None
        return False

    @Slot(int, object)
    def _on_emitted(self, request: int, obj: object) -> None:
        if request == self._request:
            self.emitted.emit(obj)
            if self._handlers.on_progress is not None:
                self._handlers.on_progress(obj)

    @Slot(int, object)
    def _on_succeeded(self, request: int, result: object) -> None:
        if request == self._request:
            self.succeeded.emit(result)
            if self._handlers.on_succeeded is not None:
                self._handlers.on_succeeded(result)

    @Slot(int, str, str)
    def _on_failed(self, request: int, message: str, details: str) -> None:
        if request == self._request:
            self.failed.emit(message, details)
            if self._handlers.on_failed is not None:
                self._handlers.on_failed(message, details)

    @Slot(int)
    def _on_cancelled(self, request: int) -> None:
        if request == self._request:
            self.cancelled.emit()
            if self._handlers.on_cancelled is not None:
                self._handlers.on_cancelled()

    @Slot(int)
    def _on_finished(self, request: int) -> None:
        worker = self._workers.pop(request, None)
        if worker is not None:
            worker.deleteLater()
        if not self._workers and self._thread is not None:
            self._thread.quit()  # idle: hold no thread (it starts again with the next task)
            self._quit_requested = True
        if request == self._request:
            self.finished.emit()


def after_next_paint(widget, callback: Callable[[], None], fallback_ms: int = 300) -> None:
    """Call ``callback`` once, in the GUI thread, after ``widget`` has next been painted.

    Work that competes with the window for the interpreter (a background task that begins
    in Python) makes a first drawing of a step slow; started after it, both go at full speed.
    A widget that is not visible is never painted: the callback then runs at the next turn
    of the event loop, and after ``fallback_ms`` at the latest if no paint comes (a
    minimised window)."""
    watch = widget.findChild(_PaintWatch, options=Qt.FindChildOption.FindDirectChildrenOnly)
    if watch is None:
        watch = _PaintWatch(widget)
    watch.add(callback, fallback_ms)


class _PaintWatch(QObject):
    """The event filter behind :func:`after_next_paint`, one per widget, kept with it (it
    filters only while a callback waits)."""

    def __init__(self, widget):
        super().__init__(widget)
        self._widget = widget
        self._callbacks: list[Callable[[], None]] = []
        self._soon = QTimer(self)  # the next turn of the event loop, after the paint
        self._soon.setSingleShot(True)
        self._soon.setInterval(0)
        self._soon.timeout.connect(self._fire)
        self._fallback = QTimer(self)
        self._fallback.setSingleShot(True)
        self._fallback.timeout.connect(self._fire)

    def add(self, callback: Callable[[], None], fallback_ms: int) -> None:
        if not self._callbacks:
            self._widget.installEventFilter(self)
        self._callbacks.append(callback)
        if not self._widget.isVisible():
            self._soon.start()
        elif not self._fallback.isActive() or self._fallback.remainingTime() > fallback_ms:
            self._fallback.start(fallback_ms)

    def eventFilter(self, watched, event) -> bool:
        if event.type() == QEvent.Type.Paint and self._callbacks:
            self._soon.start()  # called from inside the paint: run once it is over
        return False

    def _fire(self) -> None:
        self._soon.stop()
        self._fallback.stop()
        self._widget.removeEventFilter(self)
        callbacks, self._callbacks = self._callbacks, []
        for callback in callbacks:
            callback()


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
