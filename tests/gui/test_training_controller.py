"""The training controller's held start: the window draws the Train step before the trainer
begins, and a pause given meanwhile is kept."""

import threading

import pytest

from tlgui.gui.training_controller import TrainingController


@pytest.fixture
def begun(monkeypatch):
    """A stand-in trainer that records that it began and returns at once."""
    import tlgui.core.training as training

    began = threading.Event()

    class Trainer:
        def __init__(self, config, report, out_dir, on_event, control):
            pass

        def run(self):
            began.set()
            return {"status": "finished"}

    monkeypatch.setattr(training, "Trainer", Trainer)
    return began


def test_a_held_training_begins_at_release(qtbot, begun):
    controller = TrainingController()
    finished = []
    controller.training_finished.connect(finished.append)
    controller.start(None, None, None, held=True)
    assert controller.is_running() and controller.state == "preparing"
    qtbot.wait(100)
    assert not begun.is_set()
    with pytest.raises(RuntimeError):  # a second start while held is refused
        controller.start(None, None, None)
    with qtbot.waitSignal(controller._task.finished, timeout=10_000):
        controller.release()
    assert begun.is_set() and controller.state == "idle"
    controller.release()  # a late release does nothing
    assert controller.shutdown(5_000)


def test_a_pause_while_held_outlasts_the_release(qtbot, begun):
    controller = TrainingController()
    controller.start(None, None, None, held=True)
    controller.pause()
    controller.release()  # the step was drawn; the user's pause still holds
    qtbot.wait(100)
    assert not begun.is_set() and controller.state == "paused"
    with qtbot.waitSignal(controller._task.finished, timeout=10_000):
        controller.resume()
    assert begun.is_set()
    assert controller.shutdown(5_000)


def test_a_stop_while_held_never_begins(qtbot, begun):
    controller = TrainingController()
    controller.start(None, None, None, held=True)
    with qtbot.waitSignal(controller._task.finished, timeout=10_000):
        controller.stop()
    assert not begun.is_set() and controller.state == "idle"
    assert controller.shutdown(5_000)
