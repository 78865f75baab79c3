"""A pretrained torchvision backbone cut into blocks, with a new classifier head on top.

``TransferNet`` = ``blocks`` (the backbone's stages) -> ``neck`` (pooling, flatten) -> ``head``.
The first ``frozen_blocks`` blocks are frozen; when all are, the neck is frozen too. The frozen
part (the *stem*) is deterministic, so its outputs can be computed once and cached.
"""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass
from functools import cache

import torch
from torch import nn

from .calibration import Calibration
from .errors import one_line
from .preprocess import Preprocessing
from .registry import BACKBONES, backbone_info, classifier_prefix, unweighted_model
from .weights import (
    CHECKPOINT_FORMAT,
    WeightsError,
    check_fits,
    load_imagenet_state,
    read_state_dict,
)

STRATEGIES = ("frozen", "partial", "full")


class VitEmbedding(nn.Module):
    """A vision transformer's first step as a block of its own: the image cut into 16 × 16
    patches, each projected to a token, the class token put in front and the learnt position
    embedding added (torchvision's ``VisionTransformer`` does this inside its ``forward``)."""

    def __init__(self, vit: nn.Module):
        super().__init__()
        self.conv_proj = vit.conv_proj
        self.class_token = vit.class_token
        self.pos_embedding = vit.encoder.pos_embedding
        self.dropout = vit.encoder.dropout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        patches = self.conv_proj(x).flatten(2).transpose(1, 2)  # (N, patches, width)
        token = self.class_token.expand(x.shape[0], -1, -1)
        return self.dropout(torch.cat([token, patches], dim=1) + self.pos_embedding)


class ClassToken(nn.Module):
    """The class token of a token sequence: what a vision transformer classifies."""

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return tokens[:, 0]


def _split_backbone(name: str, model: nn.Module) -> tuple[list[nn.Module], nn.Module, int]:
    """(blocks, neck, feature dimension) of a torchvision classification model."""
    family = BACKBONES[name][0]
    flatten = nn.Flatten(1)
    if family == "vgg":
        blocks, current = [], []
        for layer in model.features:
            current.append(layer)
            if isinstance(layer, nn.MaxPool2d):  # a VGG block ends at its pooling layer
                blocks.append(nn.Sequential(*current))
                current = []
        dim = model.classifier[0].in_features
        return blocks, nn.Sequential(model.avgpool, flatten), dim
    if family == "resnet":
        stem = nn.Sequential(model.conv1, model.bn1, model.relu, model.maxpool)
        blocks = [stem, model.layer1, model.layer2, model.layer3, model.layer4]
        return blocks, nn.Sequential(model.avgpool, flatten), model.fc.in_features
    if family in ("mobilenet", "efficientnet"):
        linear = next(m for m in model.classifier if isinstance(m, nn.Linear))
        return list(model.features), nn.Sequential(model.avgpool, flatten), linear.in_features
    if family == "regnet":
        blocks = [model.stem, *model.trunk_output]
        return blocks, nn.Sequential(model.avgpool, flatten), model.fc.in_features
    if family == "convnext":
        # Its classifier is LayerNorm -> Flatten -> Linear: the norm is the backbone's own.
        norm, _, linear = model.classifier
        return list(model.features), nn.Sequential(model.avgpool, norm, flatten), \
            linear.in_features
    if family == "swin":
        # features = patch embedding, stage 1, merging, stage 2, …: a block is a stage with
        # the step that feeds it. Outputs are channels-last (N, H, W, C) until the neck.
        features = list(model.features)
        blocks = [nn.Sequential(*features[i:i + 2]) for i in range(0, len(features), 2)]
        neck = nn.Sequential(model.norm, model.permute, model.avgpool, flatten)
        return blocks, neck, model.head.in_features
    if family == "vit":
        blocks = [VitEmbedding(model), *model.encoder.layers]
        neck = nn.Sequential(model.encoder.ln, ClassToken())
        return blocks, neck, model.heads.head.in_features
    raise ValueError(f"no block layout for {name}")


def make_head(in_features: int, num_classes: int, dropout: float, hidden: int) -> nn.Sequential:
    """The new classifier: [Linear -> ReLU ->] Dropout -> Linear."""
    if hidden > 0:
        return nn.Sequential(
            nn.Linear(in_features, hidden),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(hidden, num_classes),
        )
    return nn.Sequential(nn.Dropout(dropout), nn.Linear(in_features, num_classes))


class TransferNet(nn.Module):
    """A backbone's blocks, its pooling neck and a new head; the first blocks may be frozen."""

    def __init__(self, name: str, blocks, neck: nn.Module, head: nn.Module, feature_dim: int):
        super().__init__()
        self.name = name
        self.blocks = nn.Sequential(*blocks)
        self.neck = neck
        self.head = head
        self.feature_dim = feature_dim
        self.frozen_blocks = 0

    # -- freezing ---------------------------------------------------------------------------
    @property
    def num_blocks(self) -> int:
        return len(self.blocks)

    @property
    def fully_frozen(self) -> bool:
        return self.frozen_blocks == self.num_blocks

    def set_frozen_blocks(self, count: int) -> None:
        """Freeze the first ``count`` blocks (and the neck when all are frozen)."""
        self.frozen_blocks = max(0, min(count, self.num_blocks))
        for i, block in enumerate(self.blocks):
            block.requires_grad_(i >= self.frozen_blocks)
        self.neck.requires_grad_(not self.fully_frozen)
        self.head.requires_grad_(True)
        self.train(self.training)

    def train(self, mode: bool = True):
        super().train(mode)
        # Frozen blocks always run in inference mode: batch-norm statistics stay ImageNet's
        # and their output does not depend on the batch, which is what makes caching valid.
        for block in self.blocks[: self.frozen_blocks]:
            block.eval()
        return self

    # -- forward ---------------------------------------------------------------------------
    def stem(self, x: torch.Tensor) -> torch.Tensor:
        """The frozen part's output (the input itself when nothing is frozen)."""
        for block in self.blocks[: self.frozen_blocks]:
            x = block(x)
        if self.fully_frozen:
            x = self.neck(x)
        return x

    def frozen_part(self) -> nn.Module:
        """The modules :meth:`stem` runs (for fingerprinting what its output depends on)."""
        parts = list(self.blocks[: self.frozen_blocks])
        return nn.ModuleList(parts + [self.neck] if self.fully_frozen else parts)

    def from_stem(self, z: torch.Tensor) -> torch.Tensor:
        """Logits from the stem's output."""
        for block in self.blocks[self.frozen_blocks :]:
            z = block(z)
        if not self.fully_frozen:
            z = self.neck(z)
        return self.head(z)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.neck(self.blocks(x)))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The pooled backbone features (the head's input)."""
        return self.neck(self.blocks(x))

    # -- parameters --------------------------------------------------------------------------
    def parameter_counts(self) -> tuple[int, int]:
        """(trainable, frozen) parameter counts."""
        trainable = sum(p.numel() for p in self.parameters() if p.requires_grad)
        frozen = sum(p.numel() for p in self.parameters() if not p.requires_grad)
        return trainable, frozen

    def parameter_groups(self, head_lr: float, backbone_lr: float) -> list[dict]:
        """Optimizer groups: the head at ``head_lr``, the trainable backbone at ``backbone_lr``."""
        head = [p for p in self.head.parameters() if p.requires_grad]
        backbone = [
            p
            for module in (self.blocks, self.neck)
            for p in module.parameters()
            if p.requires_grad
        ]
        groups = [{"params": head, "lr": head_lr, "name": "head"}]
        if backbone:
            groups.append({"params": backbone, "lr": backbone_lr, "name": "backbone"})
        return groups

    def set_dropout(self, p: float) -> None:
        """Set the head's dropout probability."""
        for module in self.head.modules():
            if isinstance(module, nn.Dropout):
                module.p = p

    def dropout(self) -> float:
        return next((m.p for m in self.head.modules() if isinstance(m, nn.Dropout)), 0.0)


@dataclass(frozen=True)
class ModelSpec:
    """Everything needed to rebuild a TransferNet (stored in checkpoints)."""

    name: str
    num_classes: int
    dropout: float = 0.5
    hidden: int = 256
    strategy: str = "frozen"
    trainable_blocks: int = 1

    def frozen_blocks(self, num_blocks: int) -> int:
        if self.strategy == "frozen":
            return num_blocks
        if self.strategy == "full":
            return 0
        if self.strategy == "partial":
            return num_blocks - max(1, min(self.trainable_blocks, num_blocks))
        raise ValueError(f"unknown strategy '{self.strategy}'; choose one of {STRATEGIES}")


def build_model(
    spec: ModelSpec,
    weights: str = "imagenet",
    allow_download: bool = True,
    progress=None,
    cancel=None,
) -> TransferNet:
    """Build ``spec`` starting from ``weights``: 'imagenet', 'none', a .pth file, or a checkpoint.

    Raises :class:`~tlgui.core.weights.WeightsError` with a clear message when the weights
    cannot be had or do not fit the architecture.
    """
    from torchvision.models import get_model

    info = backbone_info(spec.name)
    checkpoint = None
    if weights == "none":
        tv_model = get_model(spec.name, weights=None)
    else:
        if weights == "imagenet":
            state = load_imagenet_state(spec.name, allow_download, progress, cancel)
            source = f"ImageNet weights of {spec.name}"
        else:
            state = read_state_dict(weights)
            check_fits(spec.name, state, weights)
            source = weights
        # Built without weights: no time is spent initialising weights about to be replaced
        # (VGG's ImageNet classifier alone holds over 100 million of them).
        tv_model = unweighted_model(spec.name)
        if state.get("format") == CHECKPOINT_FORMAT:
            checkpoint = state
        else:
            _load_backbone(tv_model, state, spec.name, source)
    blocks, neck, dim = _split_backbone(info.name, tv_model)
    head = make_head(dim, spec.num_classes, spec.dropout, spec.hidden)
    net = TransferNet(spec.name, blocks, neck, head, dim)
    if checkpoint is not None:
        _load_checkpoint_backbone(net, checkpoint, weights)
    net.set_frozen_blocks(spec.frozen_blocks(net.num_blocks))
    return net


def _load_backbone(tv_model: nn.Module, state: dict, name: str, source: str) -> None:
    head = classifier_prefix(name)
    own = tv_model.state_dict()
    state = {k: v for k, v in state.items() if not k.startswith(head) and k in own}
    missing = [k for k in own if not k.startswith(head) and k not in state]
    if missing:
        raise WeightsError(f"{source}: {len(missing)} backbone weights missing (e.g. {missing[0]})")
    try:
        tv_model.load_state_dict(state, strict=False, assign=True)
    except RuntimeError as e:  # torch's text spans many lines: one line instead
        raise WeightsError(f"{source}: does not fit {name} ({one_line(e)})") from e


def _load_checkpoint_backbone(net: TransferNet, checkpoint: dict, source: str) -> None:
    """Start ``net``'s backbone from a tlgui checkpoint, checked as :func:`load_trained`
    checks one: its description first, then every backbone weight (the head is new)."""
    spec = _checked_spec(checkpoint.get("spec"), source)
    if spec.name != net.name:
        raise WeightsError(
            f"{source}: is a {spec.name} model, not {net.name}; choose {spec.name} to start "
            f"from it"
        )
    state = checkpoint.get("model")
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor)
                                              for v in state.values()):
        raise WeightsError(f"{source}: model: no weights (not a set of tensors)")
    backbone = {k: v for k, v in state.items() if not k.startswith("head.")}
    mismatch = _state_mismatch(net, backbone, skip="head.")
    if mismatch:
        raise WeightsError(f"{source}: its backbone weights do not fit {net.name}: {mismatch}")
    net.load_state_dict(backbone, strict=False, assign=True)


def twin_without_dropout(net: TransferNet) -> TransferNet:
    """An exact copy of ``net`` (same initial weights) whose head has no dropout."""
    twin = copy.deepcopy(net)
    twin.set_dropout(0.0)
    return twin


def load_trained(path) -> tuple[TransferNet, dict]:
    """A trained model from a tlgui ``best.pt`` (in eval mode), and the checkpoint's contents.

    Everything in the file is checked before use (it is read as data only, never as code):
    the model description, the class names, the preprocessing and the calibration, whose
    values later reach transforms and generated scripts. Raises :class:`WeightsError` with
    one line naming the file and the first problem.
    """

    checkpoint = read_state_dict(path)
    if checkpoint.get("format") != CHECKPOINT_FORMAT:
        raise WeightsError(f"{path}: not a tlgui checkpoint")
    spec = _checked_spec(checkpoint.get("spec"), path)
    classes = checkpoint.get("classes")
    if (not isinstance(classes, list) or len(classes) != spec.num_classes
            or not all(isinstance(c, str) and c for c in classes)):
        raise WeightsError(f"{path}: classes: not {spec.num_classes} class names, as the "
                           f"model has {spec.num_classes} outputs")
    run = checkpoint.get("run", "model")
    if not isinstance(run, str) or not run.isprintable() or not 0 < len(run) <= 100:
        raise WeightsError(f"{path}: run: not a run name (up to 100 printable characters)")
    try:
        preprocessing = Preprocessing.from_dict(checkpoint.get("preprocessing"))
        calibration = checkpoint.get("calibration")  # absent before training ends, or older
        if calibration is not None:
            calibration = Calibration.from_dict(calibration).to_dict()
    except ValueError as e:
        raise WeightsError(f"{path}: {e}") from e
    checkpoint = {**checkpoint, "spec": asdict(spec), "classes": list(classes),
                  "preprocessing": preprocessing.to_dict(), "calibration": calibration}
    tv_model = unweighted_model(spec.name)  # every weight comes from the file
    blocks, neck, dim = _split_backbone(spec.name, tv_model)
    with torch.device("meta"):
        head = make_head(dim, spec.num_classes, spec.dropout, spec.hidden)
    net = TransferNet(spec.name, blocks, neck, head, dim)
    state = checkpoint.get("model")
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor)
                                              for v in state.values()):
        raise WeightsError(f"{path}: model: no weights (not a set of tensors)")
    mismatch = _state_mismatch(net, state)
    if mismatch:
        raise WeightsError(f"{path}: the weights do not match the model the file describes "
                           f"({spec.name}, {spec.num_classes} classes, hidden width "
                           f"{spec.hidden}): {mismatch}")
    net.load_state_dict(state, assign=True)
    net.set_frozen_blocks(spec.frozen_blocks(net.num_blocks))
    return net.eval(), checkpoint


#: Checkpoint ``spec`` fields: type and allowed range (inclusive), or the allowed values.
_SPEC_FIELDS = {
    "name": (str, tuple(BACKBONES)),
    "num_classes": (int, (1, 100_000)),
    "dropout": (float, (0.0, 0.999)),
    "hidden": (int, (0, 65_536)),
    "strategy": (str, STRATEGIES),
    "trainable_blocks": (int, (0, 1000)),
}


def _checked_spec(spec, path) -> ModelSpec:
    """The checkpoint's model description, refused field by field when it is not sane."""
    if not isinstance(spec, dict):
        raise WeightsError(f"{path}: spec: no model description")
    unknown = sorted(set(spec) - set(_SPEC_FIELDS))
    if unknown:
        raise WeightsError(f"{path}: spec: unknown entry {unknown[0]!r}")
    for key, (kind, allowed) in _SPEC_FIELDS.items():
        if key not in spec:
            if key in ("name", "num_classes"):
                raise WeightsError(f"{path}: spec.{key}: missing")
            continue
        value = spec[key]
        if kind is str:
            ok = isinstance(value, str) and value in allowed
            what = f"one of {', '.join(allowed)}"
        else:
            number = (int,) if kind is int else (int, float)
            ok = (isinstance(value, number) and not isinstance(value, bool)
                  and allowed[0] <= value <= allowed[1])
            what = f"a {'whole ' if kind is int else ''}number from {allowed[0]} to {allowed[1]}"
        if not ok:
            shown = repr(value) if len(repr(value)) <= 40 else repr(value)[:39] + "…"
            raise WeightsError(f"{path}: spec.{key}: {shown} is not {what}")
    return ModelSpec(**spec)


def _state_mismatch(net: nn.Module, state: dict, skip: str | None = None) -> str:
    """What keeps ``state`` from loading into ``net`` exactly, in words ('' when it fits);
    ``net``'s weights whose names start with ``skip`` are not compared."""
    own = {k: tuple(v.shape) for k, v in net.state_dict().items()
           if not (skip and k.startswith(skip))}
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    wrong = [k for k in own if k in state and tuple(state[k].shape) != own[k]]
    parts = []
    for label, keys in (("missing", missing), ("not in the model", unexpected),
                        ("of the wrong shape", wrong)):
        if keys:
            parts.append(f"{len(keys)} {label} (e.g. {keys[0]})")
    return "; ".join(parts)


def block_names(name: str, count: int) -> list[str]:
    """Readable names of a backbone's blocks."""
    family = BACKBONES[name][0]
    if family == "vgg":
        return [f"conv{i + 1}" for i in range(count)]
    if family == "resnet":
        return ["stem"] + [f"layer{i}" for i in range(1, count)]
    if family == "regnet":
        return ["stem"] + [f"block{i}" for i in range(1, count)]
    if family == "vit":
        return ["embed"] + [f"layer{i}" for i in range(1, count)]
    return [f"stage{i}" for i in range(count)]


@cache
def _block_sizes(name: str) -> tuple[tuple[int, ...], int]:
    """Parameters per block and the feature dimension (see unweighted_model)."""
    blocks, _, dim = _split_backbone(name, unweighted_model(name))
    return tuple(sum(p.numel() for p in block.parameters()) for block in blocks), dim


def block_count(name: str) -> int:
    """How many blocks backbone ``name`` is cut into (no weights are built)."""
    return len(_block_sizes(name)[0])


def block_layout(spec: ModelSpec) -> list[tuple[str, int, bool]]:
    """``(block name, parameters, frozen)`` for each block and the new head, without building
    any weights (cached per backbone after the first call)."""
    sizes, dim = _block_sizes(spec.name)
    frozen = spec.frozen_blocks(len(sizes))
    names = block_names(spec.name, len(sizes))
    rows = [(names[i], n, i < frozen) for i, n in enumerate(sizes)]
    if spec.hidden > 0:
        head = dim * spec.hidden + spec.hidden + spec.hidden * spec.num_classes
    else:
        head = dim * spec.num_classes
    rows.append(("new head", head + spec.num_classes, False))
    return rows
