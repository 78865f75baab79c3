"""A model to look inside: the pretrained ImageNet classifier or a fine-tuned tlgui model,
taking images as pixels in [0, 1] (normalisation is part of the model), with named stages whose
outputs can be shown."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from .images import load_rgb
from .preprocess import Preprocessing, preprocessing_for
from .registry import BACKBONES, FIXED_SIZE_FAMILIES

#: How a stage lays out its output: ``nchw`` (a convolutional network's channels first),
#: ``nhwc`` (Swin's channels last) or ``tokens`` (a vision transformer's class token followed
#: by one token per patch, in rows).
LAYOUTS = ("nchw", "nhwc", "tokens")


def as_channel_maps(output: torch.Tensor, layout: str = "nchw") -> torch.Tensor:
    """A stage's output as (N, C, H, W) maps, one per channel, whatever its ``layout``: a
    transformer's patch tokens are put back on their grid (the class token, which belongs to
    no place in the image, is left out)."""
    if layout == "nhwc":
        return output.permute(0, 3, 1, 2)
    if layout == "tokens":
        patches = output[:, 1:]
        side = math.isqrt(patches.shape[1])
        if side * side != patches.shape[1]:
            raise ValueError(f"{patches.shape[1]} patch tokens do not make a square grid")
        return patches.transpose(1, 2).reshape(len(output), -1, side, side)
    return output


class PixelModel(nn.Module):
    """Wraps a classifier so that it takes unnormalised pixels in [0, 1]."""

    def __init__(self, module: nn.Module, mean, std):
        super().__init__()
        self.module = module
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(std).view(1, 3, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.module((x - self.mean) / self.std)


@dataclass
class InspectModel:
    """What the views need: the model, its class names, its input and its stages."""

    title: str  #: e.g. "vgg16, ImageNet weights" or "run 20261122 with_dropout"
    family: str
    model: PixelModel
    classes: list[str]
    preprocessing: Preprocessing
    stages: list[tuple[str, nn.Module]]  #: (name, module) in forward order
    cam_layer: nn.Module  #: the last stage whose places the class score depends on
    #: stage name -> layout of its output (see :data:`LAYOUTS`); absent: ``nchw``
    layouts: dict[str, str] = field(default_factory=dict)
    cam_layout: str = "nchw"

    @property
    def input_size(self) -> int:
        return self.preprocessing.crop_size

    @property
    def fixed_size(self) -> bool:
        """Whether the model takes images of :attr:`input_size` only (a vision transformer)."""
        return self.family in FIXED_SIZE_FAMILIES

    def layout(self, stage: str) -> str:
        return self.layouts.get(stage, "nchw")

    def load_image(self, path: str) -> torch.Tensor:
        """``path`` resized (with the weights' own interpolation: bicubic for EfficientNet) and
        centre-cropped as the model expects: (1, 3, S, S) in [0, 1]."""
        from torchvision import transforms as T

        p = self.preprocessing
        transform = T.Compose([
            T.Resize(p.resize_size, interpolation=T.InterpolationMode(p.interpolation),
                     antialias=True),
            T.CenterCrop(p.crop_size), T.ToTensor()])
        return transform(load_rgb(path, draft_size=p.resize_size)).unsqueeze(0)

    @torch.no_grad()
    def top_predictions(self, x: torch.Tensor, k: int = 5) -> list[tuple[str, float]]:
        probs = torch.softmax(self.model(x).float(), 1)[0]
        values, indices = probs.topk(min(k, len(self.classes)))
        return [(self.classes[i], float(v)) for v, i in zip(values.tolist(), indices.tolist())]

    def class_index(self, name_or_index: str | int) -> int:
        """A class by index, exact name, or unique case-insensitive part of a name."""
        if isinstance(name_or_index, int) or str(name_or_index).isdigit():
            index = int(name_or_index)
            if not 0 <= index < len(self.classes):
                raise ValueError(f"class index {index} is out of range 0–{len(self.classes) - 1}")
            return index
        text = str(name_or_index).strip().lower()
        exact = [i for i, c in enumerate(self.classes) if c.lower() == text]
        if exact:
            return exact[0]
        partial = [i for i, c in enumerate(self.classes) if text in c.lower()]
        if len(partial) == 1:
            return partial[0]
        if not partial:
            raise ValueError(f"no class called '{name_or_index}'")
        examples = ", ".join(self.classes[i] for i in partial[:5])
        raise ValueError(f"'{name_or_index}' matches several classes: {examples}…")


def vgg_layer_names(features: nn.Sequential) -> list[str]:
    """conv1_1, relu1_1, …, pool1, conv2_1, … for a VGG ``features`` sequence."""
    names, block, conv = [], 1, 0
    for layer in features:
        if isinstance(layer, nn.Conv2d):
            conv += 1
            names.append(f"conv{block}_{conv}")
        elif isinstance(layer, nn.ReLU):
            names.append(f"relu{block}_{conv}")
        elif isinstance(layer, nn.BatchNorm2d):
            names.append(f"bn{block}_{conv}")
        elif isinstance(layer, nn.MaxPool2d):
            names.append(f"pool{block}")
            block, conv = block + 1, 0
        else:
            names.append(type(layer).__name__.lower())
    return names


def _stages_of_torchvision(name: str, model: nn.Module):
    family = BACKBONES[name][0]
    if family == "vgg":
        layers = list(model.features)
        stages = list(zip(vgg_layer_names(model.features), layers))
        cam = layers[-2]  # the last ReLU, before the last pooling
    elif family == "resnet":
        stages = [(n, getattr(model, n)) for n in ("conv1", "relu", "maxpool", "layer1",
                                                  "layer2", "layer3", "layer4")]
        cam = model.layer4
    elif family == "regnet":
        stages = [("stem", model.stem)] + [(f"block{i}", stage) for i, stage
                                           in enumerate(model.trunk_output, 1)]
        cam = model.trunk_output[-1]
    elif family == "swin":
        # As tlgui cuts it (see models): stage i is the i-th stage with the step that feeds
        # it, named by its last module, so that a name means the same layer in every view.
        features = list(model.features)
        stages = [(f"stage{i}", features[2 * i + 1]) for i in range(len(features) // 2)]
        cam = features[-1]
    elif family == "vit":
        layers = list(model.encoder.layers)
        stages = [("embed", model.conv_proj)] + [(f"layer{i}", layer) for i, layer
                                                 in enumerate(layers, 1)]
        cam = _vit_cam_layer(layers[-1])
    else:
        stages = [(f"stage{i}", m) for i, m in enumerate(model.features)]
        cam = model.features[-1]
    return family, stages, cam


def _layouts(family: str, stages, model_is_tlgui: bool) -> tuple[dict[str, str], str]:
    """(stage layouts, Grad-CAM layer layout) of a family's stages."""
    if family == "swin":
        return {name: "nhwc" for name, _ in stages}, "nhwc"
    if family == "vit":
        # torchvision's patch projection gives a grid; tlgui's embedding block gives tokens.
        first = "tokens" if model_is_tlgui else "nchw"
        return ({name: first if i == 0 else "tokens" for i, (name, _) in enumerate(stages)},
                "tokens")
    return {}, "nchw"


def _vit_cam_layer(last_layer: nn.Module) -> nn.Module:
    """Where Grad-CAM looks in a vision transformer: the last layer's input, normalised. The
    last layer's own output reaches the class score through the class token alone (its patch
    tokens get no gradient); its input reaches it through the last attention."""
    return last_layer.ln_1


def pretrained(name: str, weights: str = "imagenet", allow_download: bool = False,
               progress=None, cancel=None) -> InspectModel:
    """torchvision's ImageNet classifier ``name`` as it is (``weights='none'``: random)."""
    from torchvision.models import get_model

    from .registry import imagenet_weights
    from .weights import load_imagenet_state

    model = get_model(name, weights=None)
    if weights == "imagenet":
        model.load_state_dict(load_imagenet_state(name, allow_download, progress, cancel))
    model.eval()
    family, stages, cam = _stages_of_torchvision(name, model)
    p = preprocessing_for(name)
    title = f"{name}, {'ImageNet' if weights == 'imagenet' else 'random'} weights"
    classes = list(imagenet_weights(name).meta["categories"])
    layouts, cam_layout = _layouts(family, stages, model_is_tlgui=False)
    return InspectModel(title, family, PixelModel(model, p.mean, p.std).eval(), classes, p,
                        stages, cam, layouts, cam_layout)


def fine_tuned(checkpoint_path, loaded=None) -> InspectModel:
    """A model trained by tlgui, from its ``best.pt`` (or from what :func:`load_trained`
    returned for it, ``loaded``)."""
    from .models import block_names, load_trained

    net, checkpoint = loaded if loaded is not None else load_trained(checkpoint_path)
    family = BACKBONES[net.name][0]
    if family == "vgg":
        layers = [layer for block in net.blocks for layer in block]
        stages = list(zip(vgg_layer_names(nn.Sequential(*layers)), layers))
        cam = net.blocks[-1][-2]
    else:
        stages = list(zip(block_names(net.name, net.num_blocks), net.blocks))
        cam = _vit_cam_layer(net.blocks[-1]) if family == "vit" else net.blocks[-1]
    p = Preprocessing.from_dict(checkpoint["preprocessing"])
    title = f"{net.name} fine-tuned ({checkpoint.get('run', 'model')})"
    layouts, cam_layout = _layouts(family, stages, model_is_tlgui=True)
    return InspectModel(title, family, PixelModel(net, p.mean, p.std).eval(),
                        list(checkpoint["classes"]), p, stages, cam, layouts, cam_layout)


def format_probability(p: float) -> str:
    """A probability as a percentage with one decimal: 97.3%. Only 1 reads 100.0% and only 0
    reads 0.0%: a model that is nearly sure is not sure (>99.9%, <0.1%)."""
    if 0 < p < 1:
        if round(p * 100, 1) >= 100:
            return ">99.9%"
        if round(p * 100, 1) <= 0:
            return "<0.1%"
    return f"{p:.1%}"


def quantise(x: torch.Tensor) -> torch.Tensor:
    """Pixels in [0, 1] rounded to the 256 levels an 8-bit image file holds: what the model
    sees when the image is saved and read back."""
    return (x.detach().clamp(0, 1) * 255).round() / 255


def to_uint8(x: torch.Tensor) -> np.ndarray:
    """(1, 3, H, W) or (3, H, W) pixels in [0, 1] as an (H, W, 3) uint8 array."""
    x = x.detach().float().cpu()
    if x.dim() == 4:
        x = x[0]
    return (x.clamp(0, 1).permute(1, 2, 0).numpy() * 255 + 0.5).astype(np.uint8)
