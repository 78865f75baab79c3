"""Adversarial examples: nudge an image, within a small bound, until the model sees the target.

Targeted iterative fast-gradient-sign steps (Kurakin et al., 2016): each step moves every pixel
by ``step_size`` against the gradient of the loss for the target class, and the total change
stays within ``epsilon`` of the original in every pixel (an L-infinity bound), so the picture
still looks the same to a person.

The result is judged as it is saved: 8-bit pixels. The bound is a whole number of levels
around the original's own 8-bit pixels, every step's success check and every reported figure
are those of the rounded image, so what the model says about the saved file is what was shown.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch.nn import functional as F

from .control import Cancelled
from .inspection import InspectModel, quantise, to_uint8


@dataclass
class AdversarialResult:
    """The original and the adversarial image (8-bit, as saved) with the figures of both."""

    original: np.ndarray  #: (H, W, 3) uint8
    adversarial: np.ndarray  #: (H, W, 3) uint8, within the bound of ``original``
    perturbation: np.ndarray  #: the change, amplified to be visible (grey = none)
    amplification: float  #: the factor the change is multiplied by in ``perturbation``
    success: bool  #: the model predicts the target for ``adversarial`` as saved
    steps: int  #: gradient steps taken
    max_change: int  #: largest change of any pixel, in 8-bit levels
    l2: float  #: root-mean-square change, in [0, 1] units
    before: list[tuple[str, float]]  #: top predictions of ``original``
    after: list[tuple[str, float]]  #: top predictions of ``adversarial``

    @property
    def linf(self) -> float:
        """The largest change of any pixel, in [0, 1] units."""
        return self.max_change / 255


def adversarial(
    model: InspectModel,
    x: torch.Tensor,
    target: int,
    epsilon: float = 8 / 255,
    step_size: float = 1 / 255,
    max_steps: int = 100,
    cancel=None,
    top: int = 5,
) -> AdversarialResult:
    """Targeted iterative FGSM on image ``x`` (1, 3, H, W) in [0, 1].

    ``epsilon`` is rounded down to whole 8-bit levels (a smaller change cannot be saved).
    """
    module = model.model
    original = quantise(x)
    levels = math.floor(epsilon * 255 + 1e-6)
    low = (original - levels / 255).clamp(0, 1)
    high = (original + levels / 255).clamp(0, 1)
    adv = original.clone()  # the float iterate; the model is always shown its 8-bit rounding
    target_tensor = torch.tensor([target])
    steps = 0
    while True:
        if cancel is not None and cancel.is_set():
            raise Cancelled("cancelled")
        shown = quantise(adv).requires_grad_(True)
        logits = module(shown)
        if int(logits.argmax(1)[0]) == target or steps == max_steps:
            break
        loss = F.cross_entropy(logits, target_tensor)
        # The gradient at the rounded image moves the float iterate (straight through).
        grad, = torch.autograd.grad(loss, shown)
        with torch.no_grad():
            adv = torch.min(torch.max(adv - step_size * grad.sign(), low), high)
        steps += 1
    saved = shown.detach()
    success = int(logits.argmax(1)[0]) == target
    change = saved - original
    max_change = int(round(float(change.abs().max()) * 255))
    amplification = 0.5 / max(max_change / 255, 1 / 255)
    return AdversarialResult(
        original=to_uint8(original),
        adversarial=to_uint8(saved),
        perturbation=to_uint8(0.5 + change * amplification),
        amplification=amplification,
        success=success,
        steps=steps,
        max_change=max_change,
        l2=float(change.pow(2).mean().sqrt()),
        before=model.top_predictions(original, top),
        after=model.top_predictions(saved, top),
    )
