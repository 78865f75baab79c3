"""Background work yields the processor to the window.

Loader processes, checking processes and the threads that train, evaluate or scan run at a
lower scheduling priority than the window's own thread. An idle window costs them nothing;
a window that has to paint gets the processor first, instead of waiting behind them for
hundreds of milliseconds on a machine with two cores.
"""

from __future__ import annotations

import os
import sys
import threading

#: How much lower than normal background work runs (a Unix "nice" increment, 0–19).
BACKGROUND_NICENESS = 10


def lower_this_process() -> None:
    """Run the calling process at background priority (where the system allows it)."""
    try:
        os.nice(BACKGROUND_NICENESS)
    except (AttributeError, OSError):  # Windows has no nice; a sandbox may refuse it
        pass


def lower_this_thread() -> None:
    """Run the calling thread at background priority: on Linux, where threads have their own
    priority, this thread only (threads it starts inherit it); elsewhere nothing changes, since
    lowering the whole process would slow the window too. It cannot be raised back, so call it
    only in a thread that does background work until it ends."""
    if not sys.platform.startswith("linux"):
        return
    try:
        tid = threading.get_native_id()
        current = os.getpriority(os.PRIO_PROCESS, tid)
        os.setpriority(os.PRIO_PROCESS, tid, min(19, max(current, BACKGROUND_NICENESS)))
    except (AttributeError, OSError):
        pass


def loader_worker_init(worker_id: int) -> None:
    """A DataLoader's ``worker_init_fn``: its processes run at background priority."""
    lower_this_process()
