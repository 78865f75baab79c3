"""Preprocessing that follows each backbone's own ImageNet transforms, and the image data set."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import torch
from torch.utils.data import Dataset

from .data import ImageItem
from .images import load_rgb
from .registry import backbone_info


@dataclass(frozen=True)
class Preprocessing:
    """Resize, centre-crop and normalise, as the weights were trained with."""

    resize_size: int
    crop_size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    interpolation: str = "bilinear"

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> Preprocessing:
        return cls(
            int(d["resize_size"]), int(d["crop_size"]), tuple(d["mean"]), tuple(d["std"]),
            d.get("interpolation", "bilinear"),
        )

    def eval_transform(self):
        from torchvision import transforms as T

        return T.Compose([
            T.Resize(self.resize_size, interpolation=self._mode(), antialias=True),
            T.CenterCrop(self.crop_size),
            T.ToTensor(),
            T.Normalize(self.mean, self.std),
        ])

    def train_transform(self, augment: bool):
        """The evaluation transform, or standard light augmentation when ``augment`` is on."""
        if not augment:
            return self.eval_transform()
        from torchvision import transforms as T

        return T.Compose([
            T.RandomResizedCrop(self.crop_size, scale=(0.6, 1.0), interpolation=self._mode(),
                                antialias=True),
            T.RandomHorizontalFlip(),
            T.ColorJitter(brightness=0.2, contrast=0.2, saturation=0.2),
            T.ToTensor(),
            T.Normalize(self.mean, self.std),
        ])

    def _mode(self):
        from torchvision.transforms import InterpolationMode

        return InterpolationMode(self.interpolation)


def preprocessing_for(name: str, image_size: int | None = None) -> Preprocessing:
    """The backbone's own preprocessing, or scaled to ``image_size`` (crop side in pixels)."""
    info = backbone_info(name)
    crop = image_size or info.crop_size
    if crop < info.min_size:
        raise ValueError(f"image size {crop} is below {name}'s minimum of {info.min_size} px")
    resize = round(crop * info.resize_size / info.crop_size)
    return Preprocessing(resize, crop, info.mean, info.std, info.interpolation)


class ImageDataset(Dataset):
    """Items read from disk through a transform; yields ``(tensor, label)``."""

    def __init__(self, items: Sequence[ImageItem], transform, draft_size: int | None = None):
        self.items = list(items)
        self.transform = transform
        self.draft_size = draft_size

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int):
        item = self.items[index]
        image = load_rgb(item.path, draft_size=self.draft_size)
        return self.transform(image), torch.tensor(item.label)
