"""Benchmark: scanning a folder of many photos.

Writes N camera-sized JPEGs (default 10,000 at 640×480, a few bad ones among them) into a
temporary folder, then times :func:`tlgui.core.data.scan` (headers and file endings) and
:func:`tlgui.core.data.verify_images` (every image decoded, JPEGs in draft mode) on it, against
a reference that fully decodes every image at full size with Pillow.

    python -m tlgui.benchmarks.scan_speed [--files 10000] [--classes 10]
"""

from __future__ import annotations

import argparse
import io
import os
import random
import tempfile
import time

from PIL import Image


def make_folder(root: str, files: int, classes: int, size=(640, 480)) -> None:
    rng = random.Random(0)
    # A handful of distinct encoded images, written many times: writing is not what we measure.
    blobs = []
    for _ in range(8):
        im = Image.effect_noise(size, rng.uniform(20, 80)).convert("RGB")
        buf = io.BytesIO()
        im.save(buf, "JPEG", quality=85)
        blobs.append(buf.getvalue())
    for c in range(classes):
        os.makedirs(os.path.join(root, f"class_{c:02d}"), exist_ok=True)
    for i in range(files):
        path = os.path.join(root, f"class_{i % classes:02d}", f"img_{i:05d}.jpg")
        data = blobs[i % len(blobs)]
        if i % 997 == 0:
            data = data[: len(data) // 2]  # truncated
        with open(path, "wb") as f:
            f.write(data)


def full_decode(root: str) -> int:
    good = 0
    for dirpath, _, names in os.walk(root):
        for name in names:
            try:
                with Image.open(os.path.join(dirpath, name)) as im:
                    im.load()
                good += 1
            except OSError:
                pass
    return good


def main(argv=None) -> None:
    from tlgui.core.data import scan, verify_images

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--classes", type=int, default=10)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as root:
        make_folder(root, args.files, args.classes)
        started = time.perf_counter()
        report = scan([root])
        ours = time.perf_counter() - started
        print(f"tlgui quick scan: {args.files} files in {ours:.2f} s "
              f"({len(report.items)} usable, {len(report.skipped)} skipped)")
        started = time.perf_counter()
        checked = verify_images(report)
        check = time.perf_counter() - started
        print(f"tlgui full check: {check:.2f} s more ({len(checked.items)} usable, "
              f"{len(checked.skipped)} skipped)")
        started = time.perf_counter()
        good = full_decode(root)
        reference = time.perf_counter() - started
        print(f"reference, full decode of every file: {reference:.2f} s ({good} usable)")
        print(f"quick scan: {reference / ours:.1f}× faster than the reference; "
              f"quick scan and full check together: {reference / (ours + check):.1f}×")


if __name__ == "__main__":
    main()
