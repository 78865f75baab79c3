"""The backbones tlgui offers, described from torchvision's own weights metadata."""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cache

#: name -> (family, one-line advice). Order is the order people see.
BACKBONES: dict[str, tuple[str, str]] = {
    "vgg16": ("vgg", "simple and accurate; the recommended first choice to see transfer learning"),
    "vgg16_bn": ("vgg", "VGG-16 with batch normalisation; trains a little more easily"),
    "vgg19": ("vgg", "a deeper VGG; slightly more accurate, slower"),
    "resnet18": ("resnet", "small residual network; fast on a laptop CPU"),
    "resnet50": ("resnet", "deeper, heavier and more accurate residual network"),
    "mobilenet_v3_small": ("mobilenet", "tiny and fast, for weak hardware; a little less accurate"),
    "mobilenet_v3_large": ("mobilenet", "small and fast, good accuracy for its size"),
    "efficientnet_b0": ("efficientnet", "best accuracy per computation of the classics"),
    "efficientnet_v2_s": ("efficientnet", "a newer EfficientNet: more accurate, trains faster; "
                                          "384 px by default"),
    "regnet_y_800mf": ("regnet", "a small network found by architecture search; fast and "
                                 "accurate for its size"),
    "convnext_tiny": ("convnext", "a modern convolutional network built like a transformer; "
                                  "highly accurate"),
    "swin_t": ("swin", "a vision transformer that looks through shifted windows; highly "
                       "accurate, slower without a GPU; 224 px or more"),
    "vit_b_16": ("vit", "the original vision transformer: 86 million weights, 224 px images "
                        "only; for a GPU"),
}

#: Families whose networks take one image size only: ViT's position embedding is learnt for
#: its 14 × 14 grid of 16-pixel patches.
FIXED_SIZE_FAMILIES = ("vit",)

#: Where the ImageNet classifier's own weights lie in each family's state dict (what a new
#: head replaces). ConvNeXt's classifier begins with a LayerNorm that belongs to the backbone.
CLASSIFIER_PREFIX = {"vgg": "classifier.", "resnet": "fc.", "mobilenet": "classifier.",
                     "efficientnet": "classifier.", "regnet": "fc.", "convnext": "classifier.2.",
                     "swin": "head.", "vit": "heads."}


def classifier_prefix(name: str) -> str:
    """The state-dict prefix of backbone ``name``'s ImageNet classifier."""
    return CLASSIFIER_PREFIX[BACKBONES[name][0]]


class UnknownBackbone(ValueError):
    pass


@dataclass(frozen=True)
class BackboneInfo:
    """What a person needs to choose a backbone; figures from torchvision's metadata."""

    name: str
    family: str
    advice: str
    weights_name: str
    url: str
    num_params: int
    imagenet_top1: float
    imagenet_top5: float
    weights_mb: float
    crop_size: int
    resize_size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    interpolation: str
    min_size: int

    @property
    def fixed_size(self) -> bool:
        """Whether the network takes images of :attr:`crop_size` only."""
        return self.family in FIXED_SIZE_FAMILIES

    @property
    def weights_file(self) -> str:
        """The file name torch hub caches these ImageNet weights under."""
        return os.path.basename(self.url)


def backbone_names() -> list[str]:
    return list(BACKBONES)


@cache
def backbone_info(name: str) -> BackboneInfo:
    """Describe backbone ``name`` from its DEFAULT torchvision weights."""
    if name not in BACKBONES:
        raise UnknownBackbone(
            f"unknown model '{name}'; choose one of: {', '.join(BACKBONES)}"
        )
    from torchvision.models import get_model_weights

    family, advice = BACKBONES[name]
    weights = get_model_weights(name).DEFAULT
    meta = weights.meta
    preset = weights.transforms()
    metrics = meta["_metrics"]["ImageNet-1K"]
    return BackboneInfo(
        name=name,
        family=family,
        advice=advice,
        weights_name=str(weights),
        url=weights.url,
        num_params=int(meta["num_params"]),
        imagenet_top1=float(metrics["acc@1"]),
        imagenet_top5=float(metrics["acc@5"]),
        weights_mb=float(meta["_file_size"]),
        crop_size=int(preset.crop_size[0]),
        resize_size=int(preset.resize_size[0]),
        mean=tuple(preset.mean),
        std=tuple(preset.std),
        interpolation=preset.interpolation.value,
        min_size=int(max(meta["min_size"])),
    )


def unweighted_model(name: str):
    """torchvision's ``name`` built without spending time or memory on weights about to be
    replaced (on the meta device) where its layout allows. RegNet works out its widths with
    tensors, which the meta device cannot read back: it is built on the CPU, randomly
    initialised (6 million weights, a fraction of a second)."""
    import torch
    from torchvision.models import get_model

    try:
        with torch.device("meta"):
            return get_model(name, weights=None)
    except NotImplementedError:
        return get_model(name, weights=None)


def imagenet_weights(name: str):
    """The torchvision weights enum member tlgui uses for ``name``."""
    from torchvision.models import get_model_weights

    backbone_info(name)  # validates the name
    return get_model_weights(name).DEFAULT
