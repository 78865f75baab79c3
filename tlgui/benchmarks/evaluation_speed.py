"""Benchmark: tlgui's prediction over N images against a plain PyTorch loop.

The reference is the loop a tutorial writes: a Dataset that opens each file with PIL and
applies the same transform, a DataLoader with the same batch size and worker processes, and the
model under ``torch.inference_mode()`` on the same device. tlgui's :func:`predict_paths` adds
what the window needs on top (unreadable files listed, progress each batch, a cancel check);
mixed precision is off here so that both compute the same numbers. Both run here, on the same
generated JPEGs, in the same process, each after a warm-up batch.

    python -m tlgui.benchmarks.evaluation_speed --images 2000 [--model resnet18]
        [--image-size 32] [--jpeg-size 96] [--batch-size 32] [--device auto] [--workers -1]

Printed: each time, images per second, the ratio tlgui / reference (1.00 is as fast as the
plain loop; above 1 is slower), and the largest difference between the two's probabilities:
tlgui decodes a JPEG at a reduced scale when it is at least twice the size the network needs
(as training does), so with ``--jpeg-size`` under twice the resize size both see the same
pixels and the difference is rounding only.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time

import numpy as np
import torch


class PlainImages(torch.utils.data.Dataset):
    """The tutorial's dataset: PIL opens the file, the transform makes the tensor."""

    def __init__(self, paths, transform):
        self.paths = paths
        self.transform = transform

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int):
        from PIL import Image

        with Image.open(self.paths[index]) as image:
            return self.transform(image.convert("RGB"))


def write_images(folder: str, count: int, size: int) -> list[str]:
    """``count`` small JPEGs of noise, each different."""
    from PIL import Image

    rng = np.random.default_rng(0)
    paths = []
    for i in range(count):
        path = os.path.join(folder, f"{i:06d}.jpg")
        Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(path)
        paths.append(path)
    return paths


def reference_loop(model, paths, transform, batch_size, workers, device) -> tuple[float, object]:
    """The plain loop; returns (seconds, probabilities)."""
    loader = torch.utils.data.DataLoader(PlainImages(paths, transform), batch_size=batch_size,
                                         num_workers=workers,
                                         pin_memory=device.type == "cuda")
    started = time.perf_counter()
    out = []
    with torch.inference_mode():
        for x in loader:
            out.append(torch.softmax(model(x.to(device)).float(), 1).cpu().numpy())
    return time.perf_counter() - started, np.concatenate(out)


def main(argv=None) -> None:
    from torchvision.models import get_model

    from tlgui.core.device import select_device
    from tlgui.core.evaluation import predict_paths
    from tlgui.core.preprocess import preprocessing_for
    from tlgui.core.training import _auto_workers

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--model", default="resnet18", help="a torchvision classifier")
    parser.add_argument("--image-size", type=int, default=32)
    parser.add_argument("--jpeg-size", type=int, default=96, help="side of the JPEGs, px")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--workers", type=int, default=-1, help="-1: as training would use")
    args = parser.parse_args(argv)

    device = select_device(args.device)
    workers = args.workers if args.workers >= 0 else _auto_workers(device)
    preprocessing = preprocessing_for(args.model, args.image_size)
    torch.manual_seed(0)
    model = get_model(args.model, weights=None, num_classes=4).to(device).eval()
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"{torch.get_num_threads()} threads, torch {torch.__version__}, device {device}")
    print(f"data: {args.images} JPEGs of {args.jpeg_size} px, {args.model} at "
          f"{args.image_size} px, batch {args.batch_size}, {workers} loader processes")
    with tempfile.TemporaryDirectory() as folder:
        paths = write_images(folder, args.images, args.jpeg_size)
        transform = preprocessing.eval_transform()
        # Warm-up: thread pools, the allocator, cuDNN's choice of algorithms.
        predict_paths(model, preprocessing, paths[:args.batch_size], args.batch_size, device,
                      workers=0)
        reference_loop(model, paths[:args.batch_size], transform, args.batch_size, 0, device)

        started = time.perf_counter()
        kept, ours, _ = predict_paths(model, preprocessing, paths, args.batch_size, device,
                                      workers=workers, amp=False,
                                      progress=lambda done, total: None)
        tlgui_seconds = time.perf_counter() - started
        reference_seconds, theirs = reference_loop(model, paths, transform, args.batch_size,
                                                   workers, device)
    assert len(kept) == len(paths)
    print(f"tlgui predict_paths: {tlgui_seconds:7.2f} s  "
          f"({len(paths) / tlgui_seconds:7.0f} images/s)")
    print(f"plain PyTorch loop:  {reference_seconds:7.2f} s  "
          f"({len(paths) / reference_seconds:7.0f} images/s)")
    print(f"tlgui / reference:   {tlgui_seconds / reference_seconds:7.2f}×")
    print(f"largest difference in a probability: {np.abs(ours - theirs).max():.2e}")


if __name__ == "__main__":
    main()
