"""The background-task pattern: order of signals, cancel before start, typed handlers, kinds
of job that do not cancel each other, shutdown that never hangs, the busy indicator."""

import sys
import threading
import time

import pytest
from PySide6.QtCore import QEvent, QObject

from tlgui.core.progress import Progress
from tlgui.gui.busy import BusyIndicator
from tlgui.gui.workers import TaskController, abandoned_threads


def record(controller):
    seen = []
    controller.started.connect(lambda: seen.append("started"))
    controller.emitted.connect(lambda obj: seen.append(("emitted", obj)))
    controller.succeeded.connect(lambda result: seen.append(("succeeded", result)))
    controller.failed.connect(lambda message, details: seen.append(("failed", message)))
    controller.cancelled.connect(lambda: seen.append("cancelled"))
    controller.finished.connect(lambda: seen.append("finished"))
    return seen


def test_signals_arrive_in_order_and_handlers_get_the_result(qtbot):
    controller = TaskController("test")
    seen = record(controller)
    results, progress = [], []

    def task(emit, control):
        emit(1)
        emit(2)
        return "done"

    with qtbot.waitSignal(controller.finished, timeout=10_000):
        controller.start(task, on_succeeded=results.append, on_progress=progress.append)
    assert seen == ["started", ("emitted", 1), ("emitted", 2), ("succeeded", "done"),
                    "finished"]
    assert results == ["done"] and progress == [1, 2]
    assert controller.shutdown(5_000)


def test_a_task_cancelled_before_it_starts_never_runs(qtbot):
    controller = TaskController("test")
    release, blocking = threading.Event(), threading.Event()
    ran = []

    def blocker(emit, control):
        blocking.set()
        release.wait(10)

    controller.start(blocker)
    assert blocking.wait(10)  # the thread is busy: what is queued now waits behind it
    # Queued behind the blocker in the same thread, then replaced before it could start.
    controller.start(lambda emit, control: ran.append("second"))
    cancelled = []
    controller.start(lambda emit, control: ran.append("third"),
                     on_succeeded=lambda result: ran.append("third handled"),
                     on_cancelled=lambda: cancelled.append(True))
    release.set()
    qtbot.waitUntil(lambda: not controller.is_running(), timeout=10_000)
    assert ran == ["third", "third handled"]
    assert controller.shutdown(5_000)


def test_failures_reach_the_handler_as_one_line(qtbot):
    controller = TaskController("test")
    failures = []

    def broken(emit, control):
        raise OSError(28, "No space left on device", "/tmp/out.pt")

    with qtbot.waitSignal(controller.finished, timeout=10_000):
        controller.start(broken, on_failed=lambda message, details: failures.append(message))
    assert len(failures) == 1 and "/tmp/out.pt" in failures[0] and "\n" not in failures[0]
    assert controller.shutdown(5_000)


def test_two_kinds_of_job_do_not_cancel_each_other(qtbot):
    evaluation, prediction = TaskController("evaluation"), TaskController("prediction")
    release = threading.Event()
    outcome = []

    def slow(emit, control):
        release.wait(10)
        return "evaluated"

    evaluation.start(slow, on_succeeded=outcome.append,
                     on_cancelled=lambda: outcome.append("cancelled"))
    with qtbot.waitSignal(prediction.finished, timeout=10_000):
        prediction.start(lambda emit, control: "predicted", on_succeeded=outcome.append)
    release.set()
    qtbot.waitUntil(lambda: not evaluation.is_running(), timeout=10_000)
    assert outcome == ["predicted", "evaluated"]
    assert evaluation.shutdown(5_000) and prediction.shutdown(5_000)


def test_an_idle_controller_holds_no_thread(qtbot):
    controller = TaskController("test")
    assert not controller.thread_running()
    with qtbot.waitSignal(controller.finished, timeout=10_000):
        controller.start(lambda emit, control: None)
    qtbot.waitUntil(lambda: not controller.thread_running(), timeout=5_000)
    with qtbot.waitSignal(controller.succeeded, timeout=10_000):  # and starts again
        controller.start(lambda emit, control: 7)
    assert controller.shutdown(5_000)


def test_shutdown_abandons_a_task_that_ignores_cancel_without_hanging(qtbot):
    controller = TaskController("stubborn")
    release = threading.Event()
    started = threading.Event()
    late = []

    def stubborn(emit, control):
        started.set()
        release.wait(20)  # ignores the control, like a blocking call in a library
        return "late"

    controller.start(stubborn, on_succeeded=late.append)
    assert started.wait(10)
    begun = time.monotonic()
    assert controller.shutdown(200) is False
    assert time.monotonic() - begun < 5
    (thread,) = [t for t in abandoned_threads() if t.objectName() == "stubborn"]
    assert thread.parent() is None  # not destroyed with its controller
    del controller
    release.set()
    qtbot.waitUntil(lambda: not thread.isRunning(), timeout=10_000)
    assert late == []  # its result landed nowhere
    assert abandoned_threads() == [] or thread not in abandoned_threads()


def test_no_task_starts_after_shutdown(qtbot):
    controller = TaskController("test")
    assert controller.shutdown(1_000)
    ran = []
    controller.start(lambda emit, control: ran.append(1))
    qtbot.wait(50)
    assert ran == [] and not controller.is_running()
    assert not controller.thread_running()


def test_busy_indicator_shows_progress_time_left_and_cancels(qtbot):
    controller = TaskController("test")
    busy = BusyIndicator()
    qtbot.addWidget(busy)
    busy.attach(controller, "Evaluating")
    busy.show()
    step = threading.Event()
    stopped = []

    def task(emit, control):
        emit(Progress(0, 5000))
        emit(Progress(1200, 5000))
        step.wait(10)
        if control.stop_requested:
            stopped.append(True)
        control.check()

    controller.start(task)
    qtbot.waitUntil(lambda: "1,200 of 5,000" in busy.label.text(), timeout=10_000)
    assert busy.isVisible() and busy.label.text().startswith("Evaluating: ")
    assert busy.bar.value() == 240
    with qtbot.waitSignal(controller.cancelled, timeout=10_000):
        busy.cancel_button.click()
        step.set()
    assert stopped == [True]
    qtbot.waitUntil(lambda: not busy.isVisible(), timeout=5_000)
    assert controller.shutdown(5_000)


@pytest.mark.skipif(not sys.platform.startswith("linux"),
                    reason="threads have their own priority on Linux only")
def test_tasks_run_below_the_window_priority(qtbot):
    import os

    from tlgui.core.priority import BACKGROUND_NICENESS

    controller = TaskController("test")
    with qtbot.waitSignal(controller.succeeded, timeout=10_000) as result:
        controller.start(lambda emit, control: os.getpriority(
            os.PRIO_PROCESS, threading.get_native_id()))
    window = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    assert result.args[0] == max(window, BACKGROUND_NICENESS)
    assert controller.shutdown(5_000)


def test_a_task_started_paused_waits_for_resume_and_a_cancel_ends_it_unrun(qtbot):
    controller = TaskController("test")
    ran = []
    controller.start(lambda emit, control: ran.append("first") or "done", paused=True)
    qtbot.wait(100)  # time enough to have run, were it not paused
    assert ran == [] and controller.is_running()
    with qtbot.waitSignal(controller.succeeded, timeout=10_000) as result:
        controller.control.resume()
    assert ran == ["first"] and result.args == ["done"]

    cancelled = []
    controller.start(lambda emit, control: ran.append("second"), paused=True,
                     on_cancelled=lambda: cancelled.append(True))
    with qtbot.waitSignal(controller.finished, timeout=10_000):
        controller.cancel()
    assert ran == ["first"] and cancelled == [True]
    assert controller.shutdown(5_000)


def test_after_next_paint_waits_for_the_paint(qtbot):
    from PySide6.QtWidgets import QLabel

    from tlgui.gui.workers import after_next_paint

    label = QLabel("drawn")
    qtbot.addWidget(label)
    label.show()
    qtbot.waitExposed(label)
    qtbot.wait(50)  # the first paint is over
    painted, called = [], []

    class Spy(QObject):
        def eventFilter(self, watched, event):
            if event.type() == QEvent.Type.Paint:
                painted.append(time.monotonic())
            return False

    spy = Spy()
    label.installEventFilter(spy)
    after_next_paint(label, lambda: called.append(time.monotonic()), fallback_ms=5_000)
    qtbot.wait(50)
    assert called == []  # nothing asked for a paint yet
    label.update()
    qtbot.waitUntil(lambda: len(called) == 1, timeout=3_000)
    assert painted and called[0] >= painted[0]
    qtbot.wait(100)
    assert len(called) == 1


def test_after_next_paint_of_a_hidden_widget_or_one_never_painted(qtbot):
    from PySide6.QtWidgets import QLabel

    from tlgui.gui.workers import after_next_paint

    hidden = QLabel("never shown")
    qtbot.addWidget(hidden)
    called = []
    after_next_paint(hidden, lambda: called.append("hidden"), fallback_ms=5_000)
    qtbot.waitUntil(lambda: called == ["hidden"], timeout=1_000)  # at once, not after 5 s

    frozen = QLabel("shown, updates off")
    qtbot.addWidget(frozen)
    frozen.show()
    qtbot.waitExposed(frozen)
    qtbot.wait(50)
    frozen.setUpdatesEnabled(False)  # no paint comes: the fallback calls
    started = time.monotonic()
    after_next_paint(frozen, lambda: called.append("fallback"), fallback_ms=200)
    qtbot.waitUntil(lambda: "fallback" in called, timeout=3_000)
    assert time.monotonic() - started >= 0.19
