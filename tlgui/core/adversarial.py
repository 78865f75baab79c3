"""Adversarial examples: nudge an image, within a small bound, until the model sees the target.

Targeted iterative fast-gradient-sign steps (Kurakin et al., 2016): each step moves every pixel
by ``step_size`` against the gradient of the loss for the target class, and the total change
stays within ``epsilon`` of the original in every pixel (an L-infinity bound), so the picture
still looks the same to a person.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch.nn import functional as F

from .control import Cancelled
from .inspection import InspectModel, to_uint8


@dataclass
class AdversarialResult:
    original: np.ndarray  #: (H, W, 3) uint8
    adversarial: np.ndarray
    perturbation: np.ndarray  #: the change, amplified to be visible (grey = none)
    success: bool  #: the model predicts the target
    steps: int
    linf: float  #: largest change of any pixel, in [0, 1] units
    l2: float  #: root-mean-square change
    before: list[tuple[str, float]]  #: top predictions of the original
    after: list[tuple[str, float]]  #: top predictions of the adversarial image


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
    """Targeted iterative FGSM on image ``x`` (1, 3, H, W) in [0, 1]."""
    module = model.model
    original = x.detach()
    adv = original.clone()
    target_tensor = torch.tensor([target])
    steps = 0
    for steps in range(1, max_steps + 1):  # noqa: B007 (steps is reported)
        if cancel is not None and cancel.is_set():
            raise Cancelled("cancelled")
        adv.requires_grad_(True)
        logits = module(adv)
        if int(logits.argmax(1)[0]) == target:
            steps -= 1
            break
        loss = F.cross_entropy(logits, target_tensor)
        grad, = torch.autograd.grad(loss, adv)
        with torch.no_grad():
            adv = adv - step_size * grad.sign()
            adv = torch.min(torch.max(adv, original - epsilon), original + epsilon).clamp(0, 1)
    adv = adv.detach()
    with torch.no_grad():
        success = int(module(adv).argmax(1)[0]) == target
    change = adv - original
    linf = float(change.abs().max())
    scale = 0.5 / max(linf, 1e-8)
    return AdversarialResult(
        original=to_uint8(original),
        adversarial=to_uint8(adv),
        perturbation=to_uint8(0.5 + change * scale),
        success=success,
        steps=steps,
        linf=linf,
        l2=float(change.pow(2).mean().sqrt()),
        before=model.top_predictions(original, top),
        after=model.top_predictions(adv, top),
    )
