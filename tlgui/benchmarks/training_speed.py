"""Benchmark: a frozen-VGG16 dropout pair trained by tlgui against a plain PyTorch loop.

The reference is written the way the usual tutorial does it: an ImageFolder, a DataLoader, the
backbone frozen, and for each variant (with and without dropout) every epoch runs the full
network forward over every image. tlgui computes the backbone features once and trains both
heads on them. Both run here, on the same data, in the same process.

    python -m tlgui.benchmarks.training_speed [--epochs 5] [--image-size 128] [--augment]

Printed: each time, the speedup (reference / tlgui) and tlgui's time over the floor (one
forward pass of the backbone over the data set, the least any feature extraction can cost).
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time

import torch
from torch import nn


def reference_loop(data_dir, preprocessing, epochs, dropout, batch_size, augment, seed) -> float:
    """The tutorial's loop for one variant; returns seconds."""
    from torchvision import datasets
    from torchvision.models import vgg16

    from tlgui.core.data import scan, split

    torch.manual_seed(seed)
    started = time.perf_counter()
    model = vgg16(weights=None)
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
    train = torch.utils.data.DataLoader(torch.utils.data.Subset(folder, train_idx),
                                        batch_size=batch_size, shuffle=True)
    val = torch.utils.data.DataLoader(torch.utils.data.Subset(val_folder, val_idx),
                                      batch_size=batch_size)
    optimizer = torch.optim.AdamW(model.classifier.parameters(), lr=1e-3)
    for _ in range(epochs):
        model.train()
        for x, y in train:
            optimizer.zero_grad()
            loss = nn.functional.cross_entropy(model(x), y)
            loss.backward()
            optimizer.step()
        model.eval()
        with torch.no_grad():
            for x, _ in val:
                model(x)
    return time.perf_counter() - started


def backbone_floor(data_dir, preprocessing, batch_size) -> float:
    """One forward pass of VGG16's convolutional part over every image."""
    from torchvision.models import vgg16

    from tlgui.core.data import scan
    from tlgui.core.preprocess import ImageDataset

    report = scan([str(data_dir)])
    model = vgg16(weights=None).eval()
    loader = torch.utils.data.DataLoader(
        ImageDataset(report.items, preprocessing.eval_transform()), batch_size=batch_size
    )
    with torch.inference_mode():
        model.features(next(iter(loader))[0])  # warm-up: thread pools, allocator
        started = time.perf_counter()
        for x, _ in loader:
            model.avgpool(model.features(x))
    return time.perf_counter() - started


def tlgui_pair(data_dir, epochs, image_size, batch_size, augment, seed) -> tuple[float, object]:
    from tlgui.core.data import scan
    from tlgui.core.training import TrainConfig, Trainer

    config = TrainConfig(model="vgg16", weights="none", strategy="frozen", epochs=epochs,
                         image_size=image_size, batch_size=batch_size, compare_dropout=True,
                         augment=augment, seed=seed, workers=0, device="cpu")
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
    args = parser.parse_args(argv)

    # An empty feature store: the features are computed here, as in a first training.
    from tlgui.core.feature_store import ROOT_ENV

    store = tempfile.TemporaryDirectory(prefix="tlgui-features-")
    os.environ[ROOT_ENV] = store.name
    data_dir = ensure_sample_data()
    preprocessing = preprocessing_for("vgg16", args.image_size)
    print(f"machine: {platform.processor() or platform.machine()}, "
          f"{torch.get_num_threads()} threads, torch {torch.__version__}")
    print(f"data: sample set {data_dir}, VGG16 at {args.image_size} px, {args.epochs} epochs, "
          f"augmentation {'on' if args.augment else 'off'}")
    floor = backbone_floor(data_dir, preprocessing, args.batch_size)
    print(f"floor (one backbone pass over the data): {floor:7.1f} s")
    ours, stats = tlgui_pair(data_dir, args.epochs, args.image_size, args.batch_size,
                             args.augment, args.seed)
    print(f"tlgui dropout pair:                      {ours:7.1f} s "
          f"(backbone features {stats.feature_seconds:.1f} s, "
          f"{stats.stem_images} images through the backbone)")
    reference = sum(
        reference_loop(data_dir, preprocessing, args.epochs, p, args.batch_size, args.augment,
                       args.seed)
        for p in (0.5, 0.0)
    )
    print(f"reference loop, both variants:           {reference:7.1f} s")
    print(f"speedup (reference / tlgui):             {reference / ours:7.2f}×")
    print(f"tlgui / floor:                           {ours / floor:7.2f}×")


if __name__ == "__main__":
    main()
