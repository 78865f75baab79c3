"""Cooperative cancellation and pausing for long work, safe to drive from any thread.

Long loops call :meth:`RunControl.checkpoint` at safe points (between batches, files or
chunks). Stop and pause are ``threading.Event`` flags, so a GUI thread can set them directly
while the worker's own event loop is busy.
"""

from __future__ import annotations

import threading
from typing import Protocol


class Cancelled(BaseException):
    """Raised when the user cancels. A BaseException, so ``except Exception`` cannot swallow it."""


class CancelFlag(Protocol):
    def is_set(self) -> bool: ...


class RunControl:
    """Stop, pause and resume flags for one run of long work.

    States: running -> (pause) paused -> (resume) running; running/paused -> (stop) stopping.
    ``checkpoint()`` blocks while paused and returns True once a stop was requested; stop also
    releases a paused worker.
    """

    def __init__(self) -> None:
        self._stop = threading.Event()
        self._running = threading.Event()
        self._running.set()

    def stop(self) -> None:
        self._stop.set()
        self._running.set()  # wake a paused worker so it can see the stop

    def pause(self) -> None:
        if not self._stop.is_set():
            self._running.clear()

    def resume(self) -> None:
        self._running.set()

    def is_set(self) -> bool:
        """True once stop was requested (lets a RunControl serve as a cancel flag)."""
        return self._stop.is_set()

    @property
    def stop_requested(self) -> bool:
        return self._stop.is_set()

    @property
    def paused(self) -> bool:
        return not self._running.is_set()

    def check(self) -> None:
        """Wait here while paused; raise :class:`Cancelled` once a stop was requested."""
        if self.checkpoint():
            raise Cancelled("cancelled")

    def checkpoint(self) -> bool:
        """Wait here while paused; return True if the work should stop now."""
        self._running.wait()
        return self._stop.is_set()
