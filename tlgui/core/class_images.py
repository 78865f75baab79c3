"""The "ideal" image of a class: start from noise and climb the class score.

Plain gradient ascent turns the image into high-frequency noise that the network scores highly;
a total-variation penalty (neighbouring pixels should be alike) and random jitter (small shifts
every step) make the features come out as shapes a person can recognise.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from .control import Cancelled
from .inspection import InspectModel, to_uint8


def total_variation(x: torch.Tensor) -> torch.Tensor:
    """Mean absolute difference between neighbouring pixels of a (N, C, H, W) batch."""
    dx = (x[..., :, 1:] - x[..., :, :-1]).abs().mean()
    dy = (x[..., 1:, :] - x[..., :-1, :]).abs().mean()
    return dx + dy


@dataclass
class ClassImage:
    image: np.ndarray  #: (H, W, 3) uint8
    score: float  #: the class score (logit) reached
    start_score: float
    probability: float
    total_variation: float
    steps: int


def ideal_image(
    model: InspectModel,
    class_index: int,
    steps: int = 200,
    tv_weight: float = 0.5,
    lr: float = 0.05,
    jitter: int = 8,
    size: int | None = None,
    seed: int = 0,
    callback: Callable[[int, np.ndarray, float], None] | None = None,
    every: int = 10,
    cancel=None,
) -> ClassImage:
    """Gradient ascent from noise on ``class_index``'s score, minus ``tv_weight`` × TV.

    ``callback(step, image, score)`` sees the image every ``every`` steps (for a live view).
    """
    size = size or model.input_size
    generator = torch.Generator().manual_seed(seed)
    x = (0.5 + 0.1 * torch.randn(1, 3, size, size, generator=generator)).clamp(0, 1)
    x.requires_grad_(True)
    optimizer = torch.optim.Adam([x], lr=lr)
    module = model.model
    with torch.no_grad():
        start_score = float(module(x)[0, class_index])
    for step in range(1, steps + 1):
        if cancel is not None and cancel.is_set():
            raise Cancelled("cancelled")
        dy, dx = (torch.randint(-jitter, jitter + 1, (2,), generator=generator).tolist()
                  if jitter else (0, 0))
        shifted = torch.roll(x, shifts=(dy, dx), dims=(2, 3))
        score = module(shifted)[0, class_index]
        loss = -score + tv_weight * total_variation(x) * size
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        with torch.no_grad():
            x.clamp_(0, 1)
        if callback and (step % every == 0 or step == steps):
            callback(step, to_uint8(x), float(score.detach()))
    with torch.no_grad():
        logits = module(x)
    return ClassImage(
        image=to_uint8(x),
        score=float(logits[0, class_index]),
        start_score=start_score,
        probability=float(torch.softmax(logits.float(), 1)[0, class_index]),
        total_variation=float(total_variation(x.detach())),
        steps=steps,
    )
