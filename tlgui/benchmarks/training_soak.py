"""Soak: does the window hold up through a long training, with its plots live?

    python -m tlgui.benchmarks.training_soak [--events 50000] [--max-growth-mb 150]

A real main window (offscreen unless ``QT_QPA_PLATFORM`` says otherwise) trains a tiny model
(ResNet-18 from random weights, frozen, at 32 px, so the epochs reuse cached backbone
features and a batch costs about a millisecond) on the sample shapes until at least
``--events`` batch events have reached the window, then stops it. Every batch is sent to the
window, not the ten a second the trainer sends by default: that is the harsher load, and it
gets to the count in minutes instead of hours. Meanwhile the window steps through Data,
Train and Results every few seconds, so their tables paint while the curves grow.

It prints the events that arrived, the resident memory and the peak memory at 10 %, 50 % and
100 % of them, and the longest stall of the GUI thread (a 10 ms timer's longest gap), and
exits non-zero when the training failed, something raised in the GUI thread, or the memory
grew by more than ``--max-growth-mb`` between 10 % and 100 % (flat is the target: the running
loss curves thin themselves out and the log keeps a bounded number of lines).
"""

from __future__ import annotations

import argparse
import itertools
import math
import os
import shutil
import sys
import tempfile
import time
import traceback


def peak_rss_mb() -> float:
    """The most memory this process has held so far, in MB (Linux; 0 where unknown)."""
    try:
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    except (ImportError, OSError):
        return 0.0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=50_000,
                        help="batch events the window must receive (default 50,000)")
    parser.add_argument("--images-per-class", type=int, default=80)
    parser.add_argument("--max-growth-mb", type=float, default=150.0,
                        help="fail when memory grows more than this from 10%% to 100%%")
    parser.add_argument("--switch-seconds", type=float, default=3.0,
                        help="how long each step stays on screen")
    args = parser.parse_args(argv)
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    work = tempfile.mkdtemp(prefix="tlgui-soak-")
    os.environ["TLGUI_RUNS_DIR"] = os.path.join(work, "runs")

    from PySide6.QtCore import QSettings, QTimer
    from PySide6.QtWidgets import QApplication

    from ..core.sample import ensure_sample_data
    from .gui_responsiveness import Driver, TickMonitor, rss_mb

    app = QApplication.instance() or QApplication(sys.argv[:1])
    errors: list[str] = []

    def record_error(kind, value, tb) -> None:  # an exception in a slot: note it, go on
        errors.append("".join(traceback.format_exception(kind, value, tb)))
        print(errors[-1], file=sys.stderr, flush=True)

    sys.excepthook = record_error
    monitor = TickMonitor()
    driver = Driver(app)

    from ..core import training
    from ..gui.main_window import MainWindow

    # Every batch reaches the window (see the module docstring).
    throttled = training.Trainer._batch_event

    def every_batch(self, *args):
        self._last_batch_event = -math.inf
        throttled(self, *args)

    training.Trainer._batch_event = every_batch

    window = MainWindow(QSettings(os.path.join(work, "settings.ini"),
                                  QSettings.Format.IniFormat))
    window.resize(1280, 820)
    window.show()
    driver.wait(lambda: window.backend is not None, timeout=300)
    data = ensure_sample_data(os.path.join(work, "shapes"),
                              images_per_class=args.images_per_class)
    window.dataset_pane.load_folders([str(data)])
    driver.wait(lambda: window.dataset_pane.report is not None
                and not window.dataset_pane.problems(), timeout=300)
    model, train = window.model_pane, window.training_pane
    model.select_backbone("resnet18")
    model.none_radio.setChecked(True)
    model.frozen_radio.setChecked(True)
    model.hidden.setValue(8)
    train.batch_size.setValue(2)
    train.image_size.setValue(32)
    train.augment.setChecked(False)
    train.compare.setChecked(True)
    train.early_stopping.setValue(0)
    if window.problems():
        print(f"cannot train: {window.problems()[0]}", file=sys.stderr)
        return 2
    report = window.dataset_pane.dataset()
    fraction, _ = window.dataset_pane.split_settings()
    batches = math.ceil(len(report.items) * (1 - fraction) / 2)
    train.epochs.setValue(min(train.epochs.maximum(), math.ceil(args.events / batches) + 1))
    if train.epochs.value() * batches < args.events:
        print(f"too few images for {args.events:,} events in {train.epochs.maximum()} epochs: "
              f"raise --images-per-class", file=sys.stderr)
        return 2

    arrived = 0
    marks = {round(args.events * share): label
             for share, label in ((0.1, "10 %"), (0.5, "50 %"), (1.0, "100 %"))}
    memory: dict[str, tuple[float, float]] = {}
    failed: list[str] = []

    def on_batch(_event) -> None:
        nonlocal arrived
        arrived += 1
        label = marks.get(arrived)
        if label:
            memory[label] = (rss_mb(), peak_rss_mb())
            monitor.set_phase(f"after {label}")
            print(f"{arrived:,} events ({label}): RSS {memory[label][0]:.0f} MB, "
                  f"peak {memory[label][1]:.0f} MB", flush=True)

    window.controller.batch_finished.connect(on_batch)
    window.controller.training_failed.connect(lambda message, _details: failed.append(message))
    steps = [window.panes.index(p) for p in (window.dataset_pane, window.training_pane,
                                             window.results_pane, window.training_pane)]
    next_step = itertools.cycle(steps)
    switcher = QTimer()
    switcher.setInterval(int(args.switch_seconds * 1000))
    switcher.timeout.connect(lambda: window.go_to(next(next_step)))
    started = time.monotonic()
    monitor.set_phase("training to 10 %")
    window.start_training()
    switcher.start()
    driver.wait(lambda: arrived >= args.events or failed or not window.controller.is_running(),
                timeout=24 * 3600)
    switcher.stop()
    monitor.set_phase("done")
    window.controller.stop()
    driver.wait(lambda: not window.controller.is_running(), timeout=120)
    seconds = time.monotonic() - started
    window.shutdown()  # not close(): it would ask whether to save the project
    window.hide()
    shutil.rmtree(work, ignore_errors=True)  # the sample images and the run folder

    print(f"{arrived:,} batch events in {seconds:.0f} s "
          f"({train.epochs.value()} epochs of {batches} batches planned)")
    for line in monitor.report(skip=("start-up", "done")):
        print(line)
    worst = max((max(g) for p, g in monitor.gaps.items() if p not in ("start-up", "done") and g),
                default=0.0)
    print(f"max GUI stall while training: {worst * 1000:.0f} ms")
    problems = []
    if failed:
        problems.append(f"the training failed: {failed[0]}")
    if errors:
        problems.append(f"{len(errors)} exception(s) in the GUI thread; the first:\n{errors[0]}")
    if arrived < args.events:
        problems.append(f"only {arrived:,} of {args.events:,} events arrived")
    if "10 %" in memory and "100 %" in memory:
        growth = memory["100 %"][0] - memory["10 %"][0]
        print(f"memory growth from 10 % to 100 %: {growth:+.0f} MB "
              f"(bound {args.max_growth_mb:.0f} MB)")
        if growth > args.max_growth_mb:
            problems.append(f"memory grew {growth:.0f} MB")
    for problem in problems:
        print(f"FAILED: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
