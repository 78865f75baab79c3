"""Progress records and the time-left estimate."""

from tlgui.core.progress import Progress, TimeLeft, progress_text, time_left_text


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def test_fraction_is_clamped_and_unknown_without_a_total():
    assert Progress(5, 10).fraction == 0.5
    assert Progress(12, 10).fraction == 1.0
    assert Progress(3, 0).fraction is None


def test_time_left_from_the_rate_since_the_first_update():
    clock = Clock()
    left = TimeLeft(min_seconds=1.0, clock=clock)
    assert left.update(0, 100) is None  # nothing measured yet
    clock.now += 10  # a slow start-up before the first unit does not count...
    assert left.update(0, 100) is None
    clock.now += 2
    # ...the rate is 20 units in 12 s measured from the first update: 0.6 s a unit
    assert abs(left.update(20, 100) - 12 / 20 * 80) < 1e-9


def test_no_estimate_too_early_and_zero_when_done():
    clock = Clock()
    left = TimeLeft(min_seconds=1.0, clock=clock)
    left.update(0, 10)
    clock.now += 0.5
    assert left.update(5, 10) is None  # half a second is too little to judge
    clock.now += 0.5
    assert left.update(5, 10) == 1.0
    assert left.update(10, 10) == 0.0


def test_a_new_stage_restarts_the_measurement():
    clock = Clock()
    left = TimeLeft(min_seconds=1.0, clock=clock)
    left.update(0, 10)
    clock.now += 10
    assert left.update(5, 10) == 10.0
    left.update(0, 1000)  # the next stage: the old rate says nothing about it
    clock.now += 2
    assert left.update(100, 1000) == 2 / 100 * 900
    left.update(3, 1000)  # done went back: a restart of the same stage
    clock.now += 1
    assert left.update(4, 1000) == 1 / 1 * 996


def test_texts():
    assert time_left_text(None) == ""
    assert time_left_text(40) == "40 s left"
    assert progress_text("Evaluating", Progress(1200, 5000), 40) == \
        "Evaluating: 1,200 of 5,000 — 40 s left"
    assert progress_text("Evaluating", Progress(1200, 5000), None) == \
        "Evaluating: 1,200 of 5,000"
    assert progress_text("Evaluating", Progress(0, 0, "loading the model"), None) == \
        "loading the model…"
