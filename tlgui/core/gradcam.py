"""Grad-CAM: which parts of the image made the model choose a class.

The gradient of the class score with respect to the last convolutional stage's output,
averaged over space, weighs that stage's channels; their weighted sum, rectified and scaled
up to the image, is the heat map (Selvaraju et al., 2017). A transformer's stage gives tokens,
not maps: its patch tokens are put back on their grid first (Swin's channels-last output is
transposed), so the same sum applies.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.nn import functional as F

from .feature_maps import colormap
from .inspection import InspectModel, as_channel_maps, format_probability


def gradcam(model: InspectModel, x: torch.Tensor, class_index: int | None = None
            ) -> tuple[np.ndarray, int, float]:
    """(heat map (H, W) in [0, 1] at the image's size, class index, its probability)."""
    store = {}

    def hook(_module, _input, output):
        store["activation"] = output
        output.register_hook(lambda grad: store.__setitem__("gradient", grad))

    handle = model.cam_layer.register_forward_hook(hook)
    try:
        with torch.enable_grad():
            x = x.detach().requires_grad_(True)  # so that gradients flow through frozen layers
            logits = model.model(x)
            if class_index is None:
                class_index = int(logits.argmax(1)[0])
            model.model.zero_grad(set_to_none=True)
            logits[0, class_index].backward()
    finally:
        handle.remove()
    activation = as_channel_maps(store["activation"].detach(), model.cam_layout)[0]
    gradient = as_channel_maps(store["gradient"].detach(), model.cam_layout)[0]
    weights = gradient.mean(dim=(1, 2))
    cam = F.relu((weights[:, None, None] * activation).sum(0))
    cam = F.interpolate(cam[None, None], size=x.shape[-2:], mode="bilinear",
                        align_corners=False)[0, 0]
    cam = cam / cam.max() if cam.max() > 0 else cam
    probability = float(torch.softmax(logits.detach().float(), 1)[0, class_index])
    return cam.cpu().numpy(), class_index, probability


def describe(heat: np.ndarray, class_name: str, probability: float) -> str:
    """The sentence that goes with the heat map, in plain text. A map with nothing in it (no
    part of the image raised the class's score) says so rather than showing one colour as if
    it meant something."""
    if not np.any(heat > 0):
        return (f"Nothing in this image raised the score of {class_name} (probability "
                f"{format_probability(probability)}): Grad-CAM has nothing to show.")
    return (f"Where the model looked for {class_name} (probability "
            f"{format_probability(probability)}): yellow raised the score most, purple least.")


def overlay(image: np.ndarray, heat: np.ndarray, alpha: float = 0.45) -> np.ndarray:
    """The heat map, coloured, blended over the (H, W, 3) uint8 image."""
    coloured = colormap(heat).astype(np.float32)
    blended = (1 - alpha) * image.astype(np.float32) + alpha * coloured
    return blended.clip(0, 255).astype(np.uint8)
