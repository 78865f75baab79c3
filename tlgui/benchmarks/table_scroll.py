"""Benchmark: an image list at 100,000 rows — load, sort, filter and scroll end to end.

Each phase's GUI-thread time is measured around the call and the events it posts (the paint
included); scrolling jumps through the list in equal steps, letting thumbnails arrive between
them. The images are hard links to a few small JPEGs, so only their names differ.

    python -m tlgui.benchmarks.table_scroll [--rows 100000] [--steps 200]
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import sys
import tempfile
import time

LINKS_PER_FILE = 50_000


def _peak_rss_mb() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 1024 / 1024 if sys.platform == "darwin" else peak / 1024


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--steps", type=int, default=200, help="scroll positions visited")
    args = parser.parse_args(argv)

    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    import numpy as np
    from PIL import Image
    from PySide6.QtCore import Qt
    from PySide6.QtWidgets import QApplication

    from tlgui.gui.image_table import ImageTableView

    app = QApplication.instance() or QApplication([])
    folder = tempfile.mkdtemp(prefix="tlgui-table-")
    try:
        paths = []
        for i in range(args.rows):
            if i % LINKS_PER_FILE == 0:  # file systems limit the links to one file
                source = os.path.join(folder, f"source_{i}.jpg")
                Image.new("RGB", (64, 48), (180, 90, 40)).save(source)
            path = os.path.join(folder, f"img_{i:06d}.jpg")
            os.link(source, path)
            paths.append(path)
        names = [os.path.basename(p) for p in paths]
        classes = [f"class {i % 37}" for i in range(args.rows)]
        confidence = np.random.default_rng(0).random(args.rows)
        print(f"{args.rows:,} rows; peak RSS before the list {_peak_rss_mb():.0f} MB")

        view = ImageTableView(["File", "True", "Confidence"])
        view.resize(800, 600)
        view.show()
        app.processEvents()

        def timed(name: str, action) -> None:
            start = time.perf_counter()
            action()
            app.processEvents()
            print(f"{name}: {(time.perf_counter() - start) * 1000:.1f} ms")

        timed("set_rows and first paint", lambda: view.set_rows(
            paths, [names, classes, confidence], formats={2: lambda v: f"{v:.1%}"}))
        timed("sort by confidence, descending",
              lambda: view.sort_by(2, Qt.SortOrder.DescendingOrder))
        timed("sort by class (first text sort)", lambda: view.sort_by(1))
        timed("sort by class, descending", lambda: view.sort_by(1, Qt.SortOrder.DescendingOrder))
        timed("filter 'class 3'", lambda: view.set_filter("class 3"))
        timed("filter cleared", lambda: view.set_filter(""))

        scroll = view.table.verticalScrollBar()
        steps = []
        requested = 0
        real_request = view.loader.request

        def counting(items, size=None):
            nonlocal requested
            items = list(items)
            requested += len(items)
            real_request(items, size=size)

        view.loader.request = counting
        for step in range(args.steps + 1):
            start = time.perf_counter()
            scroll.setValue(round(scroll.maximum() * step / args.steps))
            app.processEvents()
            steps.append(time.perf_counter() - start)
            deadline = time.monotonic() + 1.0
            while view.loader.pending() and time.monotonic() < deadline:
                app.processEvents()
                time.sleep(0.002)
        steps.sort()
        p99 = steps[min(len(steps) - 1, int(len(steps) * 0.99))]
        print(f"scroll end to end in {args.steps} steps: max {steps[-1] * 1000:.1f} ms, "
              f"p99 {p99 * 1000:.1f} ms; {requested:,} thumbnails asked for, "
              f"{len(view.cache):,} cached")
        print(f"peak RSS {_peak_rss_mb():.0f} MB")
        view.shutdown()
        view.close()
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
