"""The "ideal" image of a class: start from noise and climb the class score (together with
its log-probability, so that the image is one the model gives that class).

Plain gradient ascent turns the image into high-frequency noise that the network scores highly.
The usual recipe (Olah et al., "Feature Visualization", 2017) makes the features come out as
shapes a person can recognise:

- robustness: every step, the model sees the image slightly shifted, scaled and rotated, so
  only patterns that survive those small changes raise the score;
- a total-variation (TV) penalty: neighbouring pixels should be alike.

The TV term is a mean over pixels, weighted by ``tv_weight`` times the size of the current
score. The gradients of both terms then shrink alike with the image's pixel count and grow
alike with the model's logit scale, so one weight means the same for a 32 px canvas and a
224 px one, and for a model whose scores are 2 or 20: the penalty is a fraction of the score.
(A penalty that ignores the score's scale, or grows with the image size, drowns the score and
leaves a flat grey field whose score is lower than the noise it started from.)

Every figure reported is that of the image as shown: 8-bit pixels, without any shift. The
image kept is the best one seen, so the score never ends below where it started.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch.nn import functional as F

from .control import Cancelled
from .inspection import InspectModel, quantise, to_uint8

#: The default TV weight: the penalty of a noisy start is about a tenth of the score.
DEFAULT_TV_WEIGHT = 0.5
#: Robustness transforms, as in the usual recipe: scale factors and rotations (degrees).
SCALE_RANGE = (0.9, 1.1)
ROTATION_DEGREES = 10.0


def total_variation(x: torch.Tensor) -> torch.Tensor:
    """Mean absolute difference between neighbouring pixels of a (N, C, H, W) batch."""
    dx = (x[..., :, 1:] - x[..., :, :-1]).abs().mean()
    dy = (x[..., 1:, :] - x[..., :-1, :]).abs().mean()
    return dx + dy


@dataclass
class ClassImage:
    """The image kept, with the figures of that very image (8-bit, unshifted)."""

    image: np.ndarray  #: (H, W, 3) uint8
    score: float  #: the class score (logit) of ``image``
    start_score: float  #: the class score of the noise it started from
    probability: float  #: the class probability of ``image``
    total_variation: float  #: of ``image``, pixels in [0, 1]
    steps: int  #: steps run
    best_step: int  #: the step that produced ``image`` (0: the start)


def climbed(logits: torch.Tensor, class_index: int) -> torch.Tensor:
    """What the ascent climbs: the class score plus its log-probability. The score alone can
    rise while other classes rise faster (a high score, a low probability); the
    log-probability alone stops climbing once the class wins. Together: an image the model
    gives the class, with a high score."""
    return logits[0, class_index] + torch.log_softmax(logits.float(), 1)[0, class_index]


@dataclass
class _Judged:
    step: int
    image: torch.Tensor  #: (1, 3, H, W), 8-bit levels
    logits: torch.Tensor
    score: float
    objective: float


def random_view(x: torch.Tensor, jitter: int, generator: torch.Generator) -> torch.Tensor:
    """``x`` shifted by up to ``jitter`` pixels, scaled and rotated a little (differentiably);
    the edges are filled by reflection."""
    size = x.shape[-1]
    values = torch.rand(4, generator=generator).tolist()
    scale = SCALE_RANGE[0] + (SCALE_RANGE[1] - SCALE_RANGE[0]) * values[0]
    angle = math.radians(ROTATION_DEGREES * (2 * values[1] - 1))
    shift = [(2 * v - 1) * jitter * 2 / size for v in values[2:]]  # in grid units: 2 = the side
    cos, sin = math.cos(angle) / scale, math.sin(angle) / scale
    theta = torch.tensor([[[cos, -sin, shift[0]], [sin, cos, shift[1]]]], dtype=x.dtype)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection",
                         align_corners=False)


def ideal_image(
    model: InspectModel,
    class_index: int,
    steps: int = 200,
    tv_weight: float = DEFAULT_TV_WEIGHT,
    lr: float = 0.05,
    jitter: int | None = None,
    size: int | None = None,
    seed: int = 0,
    callback: Callable[[int, np.ndarray, float], None] | None = None,
    every: int = 10,
    cancel=None,
) -> ClassImage:
    """Gradient ascent from noise on ``class_index``'s score, minus the score-relative TV term.

    ``jitter`` is the largest shift in pixels (default: 1/28 of the side, 8 px at 224); 0 turns
    the robustness transforms off (shift, scale and rotation: the plain ascent).
    ``callback(step, image, score)`` sees the image and its score every ``every`` steps (for a
    live view); the best of those images, and of the start, is the one returned.
    """
    size = size or model.input_size
    if model.fixed_size and size != model.input_size:
        raise ValueError(f"{model.title} takes {model.input_size} px images only, not "
                         f"{size} px")
    jitter = max(1, round(size / 28)) if jitter is None else jitter
    module = model.model
    generator = torch.Generator().manual_seed(seed)
    x = (0.5 + 0.1 * torch.randn(1, 3, size, size, generator=generator)).clamp(0, 1)
    x = quantise(x).requires_grad_(True)
    optimizer = torch.optim.Adam([x], lr=lr)

    def judge(step: int) -> _Judged:
        """The image as shown (8-bit, unshifted), with its figures."""
        with torch.no_grad():
            shown = quantise(x)
            logits = module(shown).float()
        return _Judged(step, shown, logits, float(logits[0, class_index]),
                       float(climbed(logits, class_index)))

    best = start = judge(0)
    for step in range(1, steps + 1):
        if cancel is not None and cancel.is_set():
            raise Cancelled("cancelled")
        view = random_view(x, jitter, generator) if jitter else x
        logits = module(view)
        score = logits[0, class_index]
        objective = climbed(logits, class_index)
        # The penalty is scaled by the score's size (not followed by the gradient): a fraction
        # of the score whatever the model's logit scale. Near a score of zero, the spread of
        # the logits stands in for it, so that the penalty never vanishes.
        spread = float(logits.detach().float().std(correction=0))
        scale = max(abs(float(score.detach())), spread, 1e-6)
        loss = -objective + tv_weight * scale * total_variation(x)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        with torch.no_grad():
            x.clamp_(0, 1)
        if step % every == 0 or step == steps:
            judged = judge(step)
            if judged.objective > best.objective and judged.score >= start.score:
                best = judged
            if callback:
                callback(step, to_uint8(judged.image), judged.score)
    return ClassImage(
        image=to_uint8(best.image),
        score=best.score,
        start_score=start.score,
        probability=float(torch.softmax(best.logits, 1)[0, class_index]),
        total_variation=float(total_variation(best.image)),
        steps=steps,
        best_step=best.step,
    )
