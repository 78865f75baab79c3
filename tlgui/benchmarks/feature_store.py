"""Benchmark: what the feature store saves.

Two frozen-VGG16 trainings on the same images, one after the other as separate processes (as
a user would run them), the second with another dropout: the first computes the backbone's
features and stores them, the second reads them. Targets: the second costs at most a quarter
of the first, and the first at most 1.3× one plain backbone pass over the images (the floor:
a DataLoader and ``vgg16().features`` in this process, nothing stored).

    python -m tlgui.benchmarks.feature_store [--images 2000] [--image-size 128] [--epochs 5]
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time


def train_once(data_dir: str, out: str, dropout: float, args, env: dict) -> float:
    """Seconds for ``tlgui train`` in a new process."""
    command = [sys.executable, "-m", "tlgui", "train", data_dir, "--model", "vgg16",
               "--weights", "none", "--strategy", "frozen", "--epochs", str(args.epochs),
               "--image-size", str(args.image_size), "--batch-size", str(args.batch_size),
               "--dropout", str(dropout), "--device", "cpu", "--workers", "0", "--out", out]
    started = time.perf_counter()
    subprocess.run(command, env=env, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def main(argv=None) -> None:
    import torch

    from tlgui.benchmarks.gui_responsiveness import make_images
    from tlgui.benchmarks.training_speed import backbone_floor
    from tlgui.core.feature_store import ROOT_ENV
    from tlgui.core.preprocess import preprocessing_for

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--classes", type=int, default=4)
    parser.add_argument("--image-size", type=int, default=128)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--data", help="folder for the generated images (kept; reused)")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="tlgui-store-bench-") as tmp:
        data_dir = args.data or os.path.join(tmp, "images")
        if not os.path.isdir(os.path.join(data_dir, "class_00")):
            make_images(data_dir, args.images, args.classes, size=args.image_size)
        env = dict(os.environ, **{ROOT_ENV: os.path.join(tmp, "store")})
        print(f"machine: {platform.processor() or platform.machine()}, "
              f"{torch.get_num_threads()} threads, torch {torch.__version__}")
        print(f"data: {args.images:,} images, VGG16 at {args.image_size} px, frozen, "
              f"{args.epochs} epochs, on the CPU")
        floor = backbone_floor(data_dir, preprocessing_for("vgg16", args.image_size),
                               args.batch_size)
        print(f"floor (one backbone pass, this process):  {floor:7.1f} s")
        first = train_once(data_dir, os.path.join(tmp, "run1"), 0.5, args, env)
        print(f"first training (dropout 0.5), new process: {first:7.1f} s")
        second = train_once(data_dir, os.path.join(tmp, "run2"), 0.2, args, env)
        print(f"second training (dropout 0.2), new process:{second:7.1f} s")
        print(f"second / first:                            {second / first:7.2f}  "
              f"(target at most 0.25)")
        print(f"first / floor:                             {first / floor:7.2f}  "
              f"(target at most 1.3)")


if __name__ == "__main__":
    main()
