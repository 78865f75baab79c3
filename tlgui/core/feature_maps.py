"""Feature maps: what each layer of the network responds to in an image."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from .inspection import InspectModel, as_channel_maps

# Viridis (perceptually uniform), sampled at 0, 32, …, 224, 255 of matplotlib's 256 colours.
_VIRIDIS = np.array([
    (0.267004, 0.004874, 0.329415), (0.282623, 0.140926, 0.457517),
    (0.253935, 0.265254, 0.529983), (0.163625, 0.471133, 0.558148),
    (0.127568, 0.566949, 0.550556), (0.134692, 0.658636, 0.517649),
    (0.369214, 0.788888, 0.382914), (0.741388, 0.873449, 0.149561),
    (0.993248, 0.906157, 0.143936),
])
_POSITIONS = np.array([0, 32, 64, 96, 128, 160, 192, 224, 255]) / 255


def colormap(values: np.ndarray) -> np.ndarray:
    """Map values in [0, 1] to viridis RGB, uint8, shape ``values.shape + (3,)``."""
    v = np.clip(values, 0.0, 1.0)
    rgb = np.stack([np.interp(v, _POSITIONS, _VIRIDIS[:, c]) for c in range(3)], axis=-1)
    return (rgb * 255 + 0.5).astype(np.uint8)


@dataclass(frozen=True)
class LayerInfo:
    name: str
    kind: str  #: conv, relu, pool, norm or stage
    shape: tuple[int, int, int]  #: channels, height, width of the output


def _kind(module) -> str:
    from torch import nn

    if isinstance(module, nn.Conv2d):
        return "conv"
    if isinstance(module, (nn.ReLU, nn.ReLU6, nn.Hardswish, nn.SiLU)):
        return "relu"
    if isinstance(module, (nn.MaxPool2d, nn.AvgPool2d)):
        return "pool"
    if isinstance(module, nn.BatchNorm2d):
        return "norm"
    return "stage"


@torch.no_grad()
def activations(model: InspectModel, x: torch.Tensor, names=None) -> dict[str, torch.Tensor]:
    """The outputs of the named stages (all when ``names`` is None) for the image batch ``x``,
    each as (N, C, H, W) channel maps (see :func:`~tlgui.core.inspection.as_channel_maps`)."""
    wanted = set(names) if names is not None else None
    outputs: dict[str, torch.Tensor] = {}
    handles = []
    for name, module in model.stages:
        if wanted is None or name in wanted:
            def hook(_module, _input, output, name=name):
                # Clone: VGG's ReLUs work in place and would overwrite a conv's output later.
                maps = as_channel_maps(output.detach(), model.layout(name))
                outputs.setdefault(name, maps.clone())
            handles.append(module.register_forward_hook(hook))
    try:
        model.model(x)
    finally:
        for handle in handles:
            handle.remove()
    return outputs


def describe_layers(model: InspectModel) -> list[LayerInfo]:
    """Every stage with its kind and output shape (one forward pass of a blank image)."""
    size = model.input_size
    outputs = activations(model, torch.zeros(1, 3, size, size))
    return [
        LayerInfo(name, _kind(module), tuple(outputs[name].shape[1:]))
        for name, module in model.stages if name in outputs
    ]


@dataclass
class FeatureMaps:
    """One layer's channels for one image, strongest first."""

    layer: str
    maps: np.ndarray  #: (channels, H, W) float32, ordered by mean activation, descending
    channels: np.ndarray  #: the original channel index of each map
    means: np.ndarray  #: mean activation of each map

    def channel_image(self, i: int, size: int | None = None) -> np.ndarray:
        """Map ``i`` coloured (H, W, 3) uint8, scaled to its own range; enlarged to ``size``."""
        image = colormap(_normalise(self.maps[i]))
        if size:
            image = _enlarge(image, size)
        return image

    def grid(self, count: int = 64, cell: int = 64, gap: int = 2) -> np.ndarray:
        """The ``count`` strongest channels as a near-square grid image (uint8 RGB)."""
        count = max(1, min(count, len(self.maps)))
        cols = math.ceil(math.sqrt(count))
        rows = math.ceil(count / cols)
        out = np.full((rows * (cell + gap) - gap, cols * (cell + gap) - gap, 3), 255, np.uint8)
        for i in range(count):
            r, c = divmod(i, cols)
            out[r * (cell + gap): r * (cell + gap) + cell,
                c * (cell + gap): c * (cell + gap) + cell] = self.channel_image(i, cell)
        return out


def feature_maps(model: InspectModel, x: torch.Tensor, layer: str) -> FeatureMaps:
    """The channels of ``layer`` for image ``x``, ordered by mean activation."""
    if layer not in dict(model.stages):
        raise ValueError(f"no layer '{layer}'; choose one of: "
                         f"{', '.join(n for n, _ in model.stages)}")
    output = activations(model, x, [layer])[layer][0].float().cpu().numpy()
    means = output.mean(axis=(1, 2))
    order = np.argsort(-means, kind="stable")
    return FeatureMaps(layer, output[order], order, means[order])


def _normalise(a: np.ndarray) -> np.ndarray:
    lo, hi = float(a.min()), float(a.max())
    return (a - lo) / (hi - lo) if hi > lo else np.zeros_like(a)


def _enlarge(image: np.ndarray, size: int) -> np.ndarray:
    """Nearest-neighbour resize to (size, size): feature maps are coarse; keep them crisp."""
    h, w = image.shape[:2]
    rows = (np.arange(size) * h // size).clip(0, h - 1)
    cols = (np.arange(size) * w // size).clip(0, w - 1)
    return image[rows][:, cols]
