"""Benchmark: does the window stay responsive while tlgui works?

A 10 ms QTimer runs in the GUI thread throughout; the longest gap between two of its ticks is
how long the window could not react. Target: under 100 ms on a 2-core CPU.

Two modes:

    python -m tlgui.benchmarks.gui_responsiveness [--model vgg16] [--epochs 3]

imports PyTorch, scans the sample data and trains a dropout pair, as a user's first minutes;

    python -m tlgui.benchmarks.gui_responsiveness --images 100000 [--classes 10]

writes a data set of N small JPEGs (one in a hundred broken, so that the "Left out" table has
rows) and goes through a user's steps at that scale: loading and scanning it, the class table,
changing the split (a six-digit seed typed digit by digit, the validation share stepped up and
down), a short training of a tiny model, an evaluation of its N/5 validation images, a
prediction over all N images, and scrolling each image table end to end. Each phase prints
one line: ``PHASE: max stall X ms, p99 Y ms, peak RSS Z MB``.
"""

from __future__ import annotations

import argparse
import io
import os
import random
import shutil
import tempfile
import time


def rss_mb() -> float:
    """The resident memory of this process now, in MB (Linux; 0 where unknown)."""
    try:
        with open("/proc/self/statm") as f:
            pages = int(f.read().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / 1e6
    except (OSError, ValueError, IndexError):
        return 0.0


class TickMonitor:
    """Records the gaps between ticks of a 10 ms timer, and the memory, per phase."""

    def __init__(self):
        from PySide6.QtCore import QTimer

        self.phase = "start-up"
        self.gaps: dict[str, list[float]] = {}
        self.peak_rss: dict[str, float] = {}
        self._last = time.perf_counter()
        self._ticks = 0
        self.timer = QTimer()
        self.timer.setInterval(10)
        self.timer.timeout.connect(self._tick)
        self.timer.start()

    def _tick(self) -> None:
        now = time.perf_counter()
        self.gaps.setdefault(self.phase, []).append(now - self._last)
        self._last = now
        self._ticks += 1
        if self._ticks % 10 == 0:  # reading /proc costs little, but not nothing
            self._note_rss()

    def _note_rss(self) -> None:
        self.peak_rss[self.phase] = max(self.peak_rss.get(self.phase, 0.0), rss_mb())

    def set_phase(self, phase: str) -> None:
        self._tick()
        self._note_rss()
        self.phase = phase
        self._note_rss()

    def report(self, skip=("done",)) -> list[str]:
        lines = []
        for phase, gaps in self.gaps.items():
            if phase in skip or not gaps:
                continue
            gaps_ms = sorted(g * 1000 for g in gaps)
            p99 = gaps_ms[int(0.99 * (len(gaps_ms) - 1))]
            lines.append(f"{phase}: max stall {gaps_ms[-1]:.0f} ms, p99 {p99:.0f} ms, "
                         f"peak RSS {self.peak_rss.get(phase, 0.0):.0f} MB")
        return lines


def make_images(root: str, count: int, classes: int, size: int = 48) -> None:
    """``count`` small JPEGs in ``classes`` class folders; one file in a hundred is broken.

    A few hundred distinct images are encoded and written many times: writing is not what is
    measured. Each class has its own hue so that a model can learn something."""
    rng = random.Random(0)
    from PIL import Image

    blobs: dict[int, list[bytes]] = {}
    for c in range(classes):
        blobs[c] = []
        for _ in range(16):
            noise = Image.effect_noise((size, size), rng.uniform(20, 60)).convert("RGB")
            tint = Image.new("RGB", (size, size), tuple(
                int(128 + 120 * rng.random()) if k == c % 3 else rng.randrange(90)
                for k in range(3)))
            buf = io.BytesIO()
            Image.blend(noise, tint, 0.6).save(buf, "JPEG", quality=85)
            blobs[c].append(buf.getvalue())
    for c in range(classes):
        os.makedirs(os.path.join(root, f"class_{c:02d}"), exist_ok=True)
    for i in range(count):
        c = i % classes
        path = os.path.join(root, f"class_{c:02d}", f"img_{i:06d}.jpg")
        data = blobs[c][(i // classes) % len(blobs[c])]
        if i % 100 == 99:
            data = b"not an image"
        with open(path, "wb") as f:
            f.write(data)


class Driver:
    """Waits for the window the way a user would: by letting its event loop run."""

    def __init__(self, app):
        self.app = app

    def wait(self, condition, timeout: float = 3600.0) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                raise TimeoutError("the window did not get there in time")
            self.app.processEvents()
            time.sleep(0.002)

    def pause(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        self.wait(lambda: time.monotonic() >= end)

    def scroll_end_to_end(self, window, view, steps: int = 200) -> None:
        """Bring ``view`` on screen (its step, its tabs), then drag its vertical scroll bar
        from top to bottom in ``steps``, painting each."""
        reveal(window, view)
        self.pause(0.3)
        bar = view.verticalScrollBar()
        top, bottom = bar.minimum(), bar.maximum()
        for k in range(steps + 1):
            bar.setValue(top + (bottom - top) * k // steps)
            self.app.processEvents()


def first_sample_mode(args, app, monitor, window, driver) -> None:
    """The sample data and a real backbone: a user's first minutes."""
    monitor.set_phase("importing PyTorch in the background")
    driver.wait(lambda: window.backend is not None)
    monitor.set_phase("scanning and thumbnails")
    window.dataset_pane.use_sample()
    driver.wait(lambda: window.dataset_pane.report is not None
                and not window.dataset_pane.busy())
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
    driver.wait(lambda: finished and window.controller.state == "idle")
    print(f"{args.model} at {args.image_size} px, {args.epochs} epochs, dropout pair; "
          f"training took {time.perf_counter() - started:.1f} s")


def scale_mode(args, app, monitor, window, driver, data_root: str) -> None:
    """N generated images through every step that lists them."""
    from PySide6.QtCore import Qt
    from PySide6.QtTest import QTest

    monitor.set_phase("importing PyTorch in the background")
    driver.wait(lambda: window.backend is not None)

    monitor.set_phase("load and scan")
    started = time.perf_counter()
    window.dataset_pane.load_folders([data_root])
    driver.wait(lambda: window.dataset_pane.report is not None
                and not window.dataset_pane.busy())
    scanned = time.perf_counter() - started
    report = window.dataset_pane.dataset()

    monitor.set_phase("class table")
    window.go_to(0)
    driver.pause(1.0)

    monitor.set_phase("changing the split")
    seed = window.dataset_pane.seed
    seed.setFocus()
    seed.selectAll()
    QTest.keyClicks(seed, "123456", delay=40)  # typed, digit by digit
    fraction = window.dataset_pane.val_fraction
    for key in (Qt.Key.Key_Up, Qt.Key.Key_Up, Qt.Key.Key_Down, Qt.Key.Key_Down):
        QTest.keyClick(fraction, key, delay=60)
    driver.pause(1.5)  # let a debounced recomputation finish

    monitor.set_phase("choosing the model and the settings")
    m, t = window.model_pane, window.training_pane
    for choose in (lambda: m.select_backbone("mobilenet_v3_small"),
                   lambda: m.none_radio.setChecked(True), lambda: t.epochs.setValue(1),
                   lambda: t.image_size.setValue(32), lambda: t.compare.setChecked(False)):
        choose()  # one click each, with the window's events in between
        driver.pause(0.2)

    monitor.set_phase("training a tiny model (1 epoch)")
    finished = []
    window.controller.training_finished.connect(finished.append)
    started = time.perf_counter()
    window.start_training()
    driver.wait(lambda: finished and window.controller.state == "idle")
    trained = time.perf_counter() - started

    results = window.results_pane
    monitor.set_phase("opening the Results step")
    window.go_to(window.panes.index(results))
    driver.pause(0.5)  # a user sees the step before clicking Evaluate on it

    monitor.set_phase(f"evaluation ({len(report.items) // 5:,} rows)")
    started = time.perf_counter()
    results.evaluate()
    driver.wait(lambda: results.evaluation is not None and not results.busy())
    evaluated = time.perf_counter() - started

    monitor.set_phase(f"prediction over {args.images:,} images")
    started = time.perf_counter()
    results.predict([data_root])
    driver.wait(lambda: results.predictions is not None and not results.busy())
    predicted = time.perf_counter() - started

    # The biggest cell of the matrix, as a click on it opens it.
    cm = results.evaluation.matrix()
    biggest = divmod(int(cm.argmax()), cm.shape[1])
    results.evaluate_tab.open_cell(*biggest)
    app.processEvents()

    for name, view in scrollable_tables(window):
        monitor.set_phase(f"scrolling {name} end to end")
        driver.scroll_end_to_end(window, view)
        driver.pause(0.5)

    print(f"{args.images:,} images in {args.classes} classes: scanned in {scanned:.0f} s, "
          f"trained 1 epoch in {trained:.0f} s, evaluated in {evaluated:.0f} s, "
          f"predicted in {predicted:.0f} s")


def reveal(window, view) -> None:
    """Show the step and the tabs that hold ``view``, as a user's clicks would."""
    from PySide6.QtWidgets import QTabWidget

    for index, pane in enumerate(window.panes):
        if pane.isAncestorOf(view):
            window.go_to(index)
    for tabs in window.findChildren(QTabWidget):
        for i in range(tabs.count()):
            page = tabs.widget(i)
            if page is view or page.isAncestorOf(view):
                tabs.setCurrentIndex(i)


def scrollable_tables(window) -> list[tuple[str, object]]:
    """The window's image tables a user can scroll, with their names."""
    tables = []
    for pane in window.panes:
        for name, view in getattr(pane, "scrollable_tables", lambda: [])():
            tables.append((name, view))
    return tables


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="vgg16")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--image-size", type=int, default=128)
    parser.add_argument("--images", type=int, default=0,
                        help="go through every step with N generated images")
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--data", help="folder for the generated images (kept; reused when "
                                       "it already holds them)")
    args = parser.parse_args(argv)

    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QApplication

    tmp = tempfile.mkdtemp(prefix="tlgui-bench-")
    os.environ["TLGUI_RUNS_DIR"] = os.path.join(tmp, "runs")
    # An empty feature store: the training computes its features while the window is watched.
    from tlgui.core.feature_store import ROOT_ENV

    os.environ[ROOT_ENV] = os.path.join(tmp, "features")
    data_root = args.data or os.path.join(tmp, "images")
    if args.images and not os.path.isdir(os.path.join(data_root, "class_00")):
        print(f"writing {args.images:,} images to {data_root}…", flush=True)
        make_images(data_root, args.images, args.classes)

    from tlgui.gui.app import configure_interpreter

    configure_interpreter()  # as the app does
    app = QApplication.instance() or QApplication([])
    monitor = TickMonitor()
    from tlgui.gui.main_window import MainWindow

    window = MainWindow(QSettings(os.path.join(tmp, "s.ini"), QSettings.Format.IniFormat))
    window.show()
    driver = Driver(app)
    try:
        if args.images:
            scale_mode(args, app, monitor, window, driver, data_root)
        else:
            first_sample_mode(args, app, monitor, window, driver)
    finally:
        monitor.set_phase("done")
        window.shutdown()
        for line in monitor.report():
            print(line)
        # Runs, features, settings and generated images (unless --data keeps them elsewhere).
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
