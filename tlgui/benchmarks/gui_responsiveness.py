"""Benchmark: does the window stay responsive while tlgui scans, loads thumbnails and trains?

A 10 ms QTimer runs in the GUI thread throughout; the longest gap between two of its ticks is
how long the window could not react. Target: under 100 ms on a 2-core CPU.

    python -m tlgui.benchmarks.gui_responsiveness [--model vgg16] [--epochs 3]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time


class TickMonitor:
    """Records the gaps between ticks of a 10 ms timer, per phase."""

    def __init__(self):
        from PySide6.QtCore import QTimer

        self.phase = "start-up"
        self.gaps: dict[str, list[float]] = {}
        self._last = time.perf_counter()
        self.timer = QTimer()
        self.timer.setInterval(10)
        self.timer.timeout.connect(self._tick)
        self.timer.start()

    def _tick(self) -> None:
        now = time.perf_counter()
        self.gaps.setdefault(self.phase, []).append(now - self._last)
        self._last = now

    def set_phase(self, phase: str) -> None:
        self._tick()
        self.phase = phase


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="vgg16")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--image-size", type=int, default=128)
    args = parser.parse_args(argv)

    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QApplication

    tmp = tempfile.mkdtemp(prefix="tlgui-bench-")
    os.environ["TLGUI_RUNS_DIR"] = os.path.join(tmp, "runs")
    app = QApplication.instance() or QApplication([])
    monitor = TickMonitor()
    from tlgui.gui.main_window import MainWindow

    window = MainWindow(QSettings(os.path.join(tmp, "s.ini"), QSettings.Format.IniFormat))
    window.show()

    def wait(condition, timeout=600.0):
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                raise TimeoutError
            app.processEvents()
            time.sleep(0.001)

    monitor.set_phase("importing PyTorch in the background")
    wait(lambda: window.backend is not None)
    monitor.set_phase("scanning and thumbnails")
    window.dataset_pane.use_sample()
    wait(lambda: window.dataset_pane.report is not None
         and not window.dataset_pane.scanner.is_running())
    wait(lambda: window.dataset_pane.thumbnails.pool.activeThreadCount() == 0)
    monitor.set_phase("training")
    m, t = window.model_pane, window.training_pane
    m.select_backbone(args.model)
    m.none_radio.setChecked(True)  # timing does not depend on the weights' values
    t.epochs.setValue(args.epochs)
    t.image_size.setValue(args.image_size)
    finished = []
    window.controller.training_finished.connect(finished.append)
    started = time.perf_counter()
    window.start_training()
    wait(lambda: finished and window.controller.state == "idle")
    seconds = time.perf_counter() - started
    monitor.set_phase("done")
    window.shutdown()

    print(f"{args.model} at {args.image_size} px, {args.epochs} epochs, dropout pair; "
          f"training took {seconds:.1f} s")
    for phase, gaps in monitor.gaps.items():
        if phase == "done" or not gaps:
            continue
        gaps_ms = sorted(g * 1000 for g in gaps)
        p99 = gaps_ms[int(0.99 * (len(gaps_ms) - 1))]
        print(f"{phase:<38} longest gap {gaps_ms[-1]:6.1f} ms, 99th percentile {p99:5.1f} ms "
              f"({len(gaps_ms)} ticks)")


if __name__ == "__main__":
    main()
