"""Benchmark: a VGG16 dropout pair trained by tlgui against a plain PyTorch loop.

The reference is written the way the usual tutorial does it: an ImageFolder, a DataLoader, and
for each variant (with and without dropout) every epoch runs the full network forward over
every image. With ``--strategy frozen`` (the default) the backbone is frozen: tlgui computes
its features once and trains both heads on them. With ``--strategy full`` every weight trains,
in both. Both run here, on the same data, in the same process, on ``--device``.

    python -m tlgui.benchmarks.training_speed [--device cuda] [--strategy full] [--augment]

Printed: each time and its images per second, the speedup (reference / tlgui), tlgui's time
over the floor (one forward pass of the backbone over the data set, the least any feature
extraction can cost) and, on CUDA, the GPU's name and its mean utilisation while each ran.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import tempfile
import threading
import time
from contextlib import contextmanager

import torch
from torch import nn


class Utilisation:
    """The GPU's mean utilisation while a block runs, sampled five times a second (through
    NVML, as ``nvidia-smi`` reports it); None where it cannot be read."""

    def __init__(self, device: torch.device):
        self.device = device
        self.samples: list[float] = []

    def read(self) -> float | None:
        if self.device.type != "cuda":
            return None
        try:
            return float(torch.cuda.utilization(self.device))
        except Exception:  # no NVML bindings: ask nvidia-smi
            pass
        if shutil.which("nvidia-smi") is None:
            return None
        try:
            out = subprocess.run(
                ["nvidia-smi", "--query-gpu=utilization.gpu", "--format=csv,noheader,nounits",
                 "-i", str(self.device.index or 0)], capture_output=True, text=True, timeout=5)
            return float(out.stdout.strip().splitlines()[0])
        except (OSError, ValueError, IndexError, subprocess.SubprocessError):
            return None

    @contextmanager
    def measuring(self):
        self.samples = []
        stop = threading.Event()

        def sample():
            while not stop.wait(0.2):
                value = self.read()
                if value is None:
                    return
                self.samples.append(value)

        thread = threading.Thread(target=sample, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            stop.set()
            thread.join()

    def text(self) -> str:
        if not self.samples:
            return ""
        return f", GPU busy {sum(self.samples) / len(self.samples):.0f}% of the time"


def _synchronise(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def reference_loop(data_dir, preprocessing, epochs, dropout, batch_size, augment, seed,
                   device, strategy) -> float:
    """The tutorial's loop for one variant; returns seconds."""
    from torchvision import datasets
    from torchvision.models import vgg16

    from tlgui.core.data import scan, split

    torch.manual_seed(seed)
    started = time.perf_counter()
    model = vgg16(weights=None)
    if strategy == "frozen":
        for p in model.features.parameters():
            p.requires_grad = False
    model.classifier = nn.Sequential(
        nn.Linear(512 * 7 * 7, 256), nn.ReLU(inplace=True), nn.Dropout(dropout), nn.Linear(256, 4)
    )
    # The same split as tlgui, so both see the same images.
    report = scan([str(data_dir)])
    s = split(report.items, 0.2, seed)
    train_paths = {it.path for it in s.train}
    folder = datasets.ImageFolder(str(data_dir), preprocessing.train_transform(augment))
    val_folder = datasets.ImageFolder(str(data_dir), preprocessing.eval_transform())
    train_idx = [i for i, (p, _) in enumerate(folder.samples) if p in train_paths]
    val_idx = [i for i, (p, _) in enumerate(folder.samples) if p not in train_paths]
    # The tutorial's loader, with the worker processes a GPU needs to be fed.
    workers = min(8, (os.cpu_count() or 1) - 1) if device.type == "cuda" else 0
    loader = dict(batch_size=batch_size, num_workers=workers,
                  pin_memory=device.type == "cuda")
    train = torch.utils.data.DataLoader(torch.utils.data.Subset(folder, train_idx),
                                        shuffle=True, **loader)
    val = torch.utils.data.DataLoader(torch.utils.data.Subset(val_folder, val_idx), **loader)
    model.to(device)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    for _ in range(epochs):
        model.train()
        for x, y in train:
            x, y = x.to(device), y.to(device)
            optimizer.zero_grad()
            loss = nn.functional.cross_entropy(model(x), y)
            loss.backward()
            optimizer.step()
        model.eval()
        with torch.no_grad():
            for x, _ in val:
                model(x.to(device))
    _synchronise(device)
    return time.perf_counter() - started


def backbone_floor(data_dir, preprocessing, batch_size, device) -> float:
    """One forward pass of VGG16's convolutional part over every image."""
    from torchvision.models import vgg16

    from tlgui.core.data import scan
    from tlgui.core.preprocess import ImageDataset

    report = scan([str(data_dir)])
    model = vgg16(weights=None).eval().to(device)
    loader = torch.utils.data.DataLoader(
        ImageDataset(report.items, preprocessing.eval_transform()), batch_size=batch_size
    )
    with torch.inference_mode():
        model.features(next(iter(loader))[0].to(device))  # warm-up: thread pools, allocator
        _synchronise(device)
        started = time.perf_counter()
        for x, _ in loader:
            model.avgpool(model.features(x.to(device)))
        _synchronise(device)
    return time.perf_counter() - started


def tlgui_pair(data_dir, epochs, image_size, batch_size, augment, seed, device, strategy
               ) -> tuple[float, object]:
    from tlgui.core.data import scan
    from tlgui.core.training import TrainConfig, Trainer

    config = TrainConfig(model="vgg16", weights="none", strategy=strategy, epochs=epochs,
                         image_size=image_size, batch_size=batch_size, compare_dropout=True,
                         augment=augment, seed=seed, device=str(device),
                         workers=-1 if device.type == "cuda" else 0)
    started = time.perf_counter()
    report = scan([str(data_dir)])
    with tempfile.TemporaryDirectory() as out:  # checkpoints included, as in real use
        trainer = Trainer(config, report, out)
        trainer.run()
    return time.perf_counter() - started, trainer.stats


def main(argv=None) -> None:
    from tlgui.core.preprocess import preprocessing_for
    from tlgui.core.sample import ensure_sample_data

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--image-size", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--augment", action="store_true", help="random crops, flips, jitter")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or mps")
    parser.add_argument("--strategy", default="frozen", choices=("frozen", "full"),
                        help="train the heads on a frozen backbone, or every weight")
    args = parser.parse_args(argv)
    from tlgui.core.device import describe, select_device

    device = select_device(args.device)

    # An empty feature store: the features are computed here, as in a first training.
    from tlgui.core.feature_store import ROOT_ENV

    store = tempfile.TemporaryDirectory(prefix="tlgui-features-")
    os.environ[ROOT_ENV] = store.name
    data_dir = ensure_sample_data()
    preprocessing = preprocessing_for("vgg16", args.image_size)
    print(f"machine: {platform.processor() or platform.machine()}, "
          f"{torch.get_num_threads()} threads, torch {torch.__version__}")
    print(f"device: {describe(device)}")
    print(f"data: sample set {data_dir}, VGG16 (random weights: as fast as ImageNet's) at "
          f"{args.image_size} px, {args.epochs} epoch{'s' if args.epochs != 1 else ''}, "
          f"{args.strategy} backbone, augmentation {'on' if args.augment else 'off'}")
    from tlgui.core.data import scan, split

    train_images = len(split(scan([str(data_dir)]).items, 0.2, args.seed).train)
    trained = train_images * args.epochs * 2  # images seen in training, both variants

    def rate(seconds: float) -> str:
        return f"{trained / seconds:8.1f} training images/s"

    gpu = Utilisation(device)
    floor = backbone_floor(data_dir, preprocessing, args.batch_size, device)
    print(f"floor (one backbone pass over the data): {floor:7.1f} s")
    with gpu.measuring():
        ours, stats = tlgui_pair(data_dir, args.epochs, args.image_size, args.batch_size,
                                 args.augment, args.seed, device, args.strategy)
    detail = (f"backbone features {stats.feature_seconds:.1f} s, {stats.stem_images} images "
              f"through the frozen backbone{gpu.text()}" if args.strategy == "frozen"
              else gpu.text()[2:])
    print(f"tlgui dropout pair:                      {ours:7.1f} s {rate(ours)}"
          + (f" ({detail})" if detail else ""))
    with gpu.measuring():
        reference = sum(
            reference_loop(data_dir, preprocessing, args.epochs, p, args.batch_size,
                           args.augment, args.seed, device, args.strategy)
            for p in (0.5, 0.0)
        )
    print(f"reference loop, both variants:           {reference:7.1f} s {rate(reference)}"
          f"{' (' + gpu.text()[2:] + ')' if gpu.text() else ''}")
    print(f"speedup (reference / tlgui):             {reference / ours:7.2f}×")
    if args.strategy == "frozen":  # the floor of feature extraction; full training has none
        print(f"tlgui / floor:                           {ours / floor:7.2f}×")


if __name__ == "__main__":
    main()
