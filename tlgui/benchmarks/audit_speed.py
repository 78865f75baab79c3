"""Benchmark: what an audit of N images costs, the first time (one backbone pass, stored) and
again (features from the store: the classifier, the duplicate search and the outliers only).

    python -m tlgui.benchmarks.audit_speed [--images 20000] [--model resnet18] [--image-size 64]

The images are generated (ten hues, 16 distinct images per class written many times, one
file in a hundred broken), so exact duplicates abound: the point is the time, not the
findings. Random weights: the machine is offline.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time


def main(argv=None) -> None:
    import torch

    from tlgui.benchmarks.gui_responsiveness import make_images
    from tlgui.core.audit import run_audit
    from tlgui.core.data import scan
    from tlgui.core.feature_store import ROOT_ENV

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=20_000)
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--model", default="resnet18")
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--data", help="folder for the generated images (kept; reused)")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="tlgui-audit-bench-") as tmp:
        os.environ[ROOT_ENV] = os.path.join(tmp, "store")
        data_dir = args.data or os.path.join(tmp, "images")
        if not os.path.isdir(os.path.join(data_dir, "class_00")):
            make_images(data_dir, args.images, args.classes, size=args.image_size)
        print(f"machine: {platform.processor() or platform.machine()}, "
              f"{torch.get_num_threads()} threads, torch {torch.__version__}")
        report = scan([data_dir])
        print(f"data: {len(report.items):,} images in {len(report.classes)} classes, "
              f"{args.model} at {args.image_size} px, random weights, CPU")
        for label in ("first audit (features computed and stored)",
                      "second audit (features from the store)"):
            started = time.perf_counter()
            result = run_audit(report, args.model, "none", args.image_size, "cpu")
            seconds = time.perf_counter() - started
            counts = ", ".join(f"{n:,} {issue}" for issue, n in result.counts().items())
            print(f"{label}: {seconds:7.1f} s  ({counts})")


if __name__ == "__main__":
    main()
