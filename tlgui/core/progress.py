"""Progress of long work as people read it: how far, and how long is left.

Plain Python, no Qt: tasks emit :class:`Progress` records; the window and the command line
turn them into a bar and a "2 min left" with :class:`TimeLeft`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from .units import format_duration


@dataclass(frozen=True)
class Progress:
    """``done`` of ``total`` units of one stage of a task (``total`` 0: not known yet)."""

    done: int
    total: int
    stage: str = ""

    @property
    def fraction(self) -> float | None:
        """How much is done, 0–1; None while the total is unknown."""
        if self.total <= 0:
            return None
        return min(1.0, max(0.0, self.done / self.total))


class TimeLeft:
    """Estimates the time left from the rate of progress so far.

    The rate is measured from the first update of the current stage (a restart of ``done``
    or a new ``total`` begins a new one), so start-up costs before the first unit — loading a
    model, starting worker processes — do not count as work. No estimate until ``min_seconds``
    have passed and some work is done: an early rate misleads more than none.
    """

    def __init__(self, min_seconds: float = 1.0, clock=time.monotonic):
        self.min_seconds = min_seconds
        self._clock = clock
        self._start: tuple[float, int] | None = None
        self._total = -1
        self._last_done = -1

    def update(self, done: int, total: int) -> float | None:
        """Seconds left after ``done`` of ``total`` units, or None when not known yet."""
        now = self._clock()
        if total != self._total or done < self._last_done or self._start is None:
            self._start = (now, done)
            self._total = total
        self._last_done = done
        if total <= 0:
            return None
        if done >= total:
            return 0.0
        started, done_at_start = self._start
        elapsed = now - started
        units = done - done_at_start
        if elapsed < self.min_seconds or units <= 0:
            return None
        return elapsed / units * (total - done)


def time_left_text(seconds: float | None) -> str:
    """``"40 s left"``, ``"3 min 05 s left"``; ``""`` when unknown."""
    if seconds is None:
        return ""
    return f"{format_duration(seconds)} left"


def progress_text(what: str, progress: Progress, seconds_left: float | None) -> str:
    """One line: ``"Evaluating: 1,200 of 5,000 — 40 s left"``."""
    stage = progress.stage or what
    if progress.total <= 0:
        return f"{stage}…"
    text = f"{stage}: {progress.done:,} of {progress.total:,}"
    left = time_left_text(seconds_left)
    return f"{text} — {left}" if left else text
