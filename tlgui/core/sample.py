"""The built-in sample data set: procedurally drawn shapes, made on first use, no download.

Four classes of light shapes, filled or outlined, in random colours, sizes, positions and
rotations, on dark noisy gradients, some crossed by a distracting stroke: easy for a pretrained
network, learnable from scratch by a small one, and still with room to over-fit.
"""

from __future__ import annotations

import math
import os
import random
import shutil
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from .paths import cache_dir

CLASSES = ("circle", "square", "triangle", "star")
IMAGES_PER_CLASS = 80
IMAGE_SIZE = 96
VERSION = 1


def sample_dir() -> Path:
    """Where the sample data set lives once made."""
    return cache_dir() / f"sample-shapes-v{VERSION}"


def ensure_sample_data(
    target: str | os.PathLike | None = None,
    images_per_class: int = IMAGES_PER_CLASS,
    seed: int = 0,
) -> Path:
    """Make the sample data set at ``target`` (default :func:`sample_dir`) unless it is there.

    The images are drawn into a temporary folder that is renamed into place when complete, so
    an interrupted run never leaves half a data set behind.
    """
    target = Path(target) if target else sample_dir()
    if (target / ".complete").exists():
        return target
    if target.exists() and any(target.iterdir()):
        raise FileExistsError(f"{target}: exists and is not a tlgui sample data set")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        rng = random.Random(seed)
        for name in CLASSES:
            (tmp / name).mkdir()
            for i in range(images_per_class):
                draw_sample(name, rng).save(tmp / name / f"{name}_{i:03d}.jpg", quality=92)
        (tmp / ".complete").write_text("tlgui sample data set\n")
        if target.exists():
            target.rmdir()  # empty, checked above
        try:
            os.replace(tmp, target)
        except OSError:  # made meanwhile by another process (torchrun starts several)
            if not (target / ".complete").exists():
                raise
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target


def draw_sample(shape: str, rng: random.Random, size: int = IMAGE_SIZE) -> Image.Image:
    """Draw one image of ``shape`` (one of :data:`CLASSES`): a light shape on a dark ground."""
    scale = 4  # draw large, then downsample, for smooth edges
    s = size * scale
    im = _background(rng, s)
    draw = ImageDraw.Draw(im)
    if rng.random() < 0.4:  # a distracting stroke
        pts = [(rng.uniform(0, s), rng.uniform(0, s)) for _ in range(2)]
        draw.line(pts, fill=_colour(rng, 70, 150), width=rng.randint(2, 4) * scale)
    radius = rng.uniform(0.22, 0.4) * s
    cx = rng.uniform(radius, s - radius)
    cy = rng.uniform(radius, s - radius)
    angle = rng.uniform(0, 2 * math.pi)
    colour = _colour(rng, 150, 255)
    filled = rng.random() < 0.7
    width = rng.randint(4, 8) * scale
    if shape == "circle":
        rx, ry = radius, radius * rng.uniform(0.85, 1.0)
        box = [cx - rx, cy - ry, cx + rx, cy + ry]
        if filled:
            draw.ellipse(box, fill=colour)
        else:
            draw.ellipse(box, outline=colour, width=width)
    else:
        points = _polygon(shape, cx, cy, radius, angle)
        if filled:
            draw.polygon(points, fill=colour)
        else:
            draw.line(points + points[:1], fill=colour, width=width, joint="curve")
    im = im.resize((size, size), Image.LANCZOS)
    return im.filter(ImageFilter.GaussianBlur(rng.uniform(0.0, 0.7)))


def _polygon(shape, cx, cy, radius, angle):
    if shape == "square":
        corners, radii = 4, [radius * 0.9]
    elif shape == "triangle":
        corners, radii = 3, [radius]
    elif shape == "star":
        corners, radii = 10, [radius, radius * 0.45]
    else:
        raise ValueError(f"unknown shape {shape!r}")
    return [
        (
            cx + radii[i % len(radii)] * math.cos(angle + 2 * math.pi * i / corners),
            cy + radii[i % len(radii)] * math.sin(angle + 2 * math.pi * i / corners),
        )
        for i in range(corners)
    ]


def _colour(rng: random.Random, low: int = 0, high: int = 255) -> tuple[int, int, int]:
    return tuple(rng.randint(low, high) for _ in range(3))


def _background(rng: random.Random, s: int) -> Image.Image:
    a, b = (np.array(_colour(rng, 0, 100), np.float32) for _ in range(2))
    theta = rng.uniform(0, 2 * math.pi)
    yy, xx = np.mgrid[0:s, 0:s] / (s - 1) - 0.5
    t = np.clip((xx * math.cos(theta) + yy * math.sin(theta)) / math.sqrt(0.5) + 0.5, 0, 1)
    im = Image.fromarray((a + (b - a) * t[..., None]).astype(np.uint8), "RGB")
    noise = Image.effect_noise((s // 8, s // 8), rng.uniform(10, 40)).resize((s, s))
    return Image.blend(im, Image.merge("RGB", [noise] * 3), 0.12)
