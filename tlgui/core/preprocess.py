"""Preprocessing that follows each backbone's own ImageNet transforms, and the image data set."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch.utils.data import Dataset, default_collate

from .data import ImageItem
from .images import ImageLoadError, load_rgb
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
        """Preprocessing read from a file (a checkpoint, classes.json), every field checked.

        These values end up in transforms and in generated code, so anything unexpected is
        refused with a :class:`ValueError` naming the field (``preprocessing.<field>``).
        """
        if not isinstance(d, dict):
            raise ValueError("preprocessing: not a set of named values")
        resize = _size_field(d, "resize_size")
        crop = _size_field(d, "crop_size")
        if crop > resize:
            raise ValueError(f"preprocessing.crop_size: {crop} px is larger than the resized "
                             f"image ({resize} px) it is cut from")
        interpolation = d.get("interpolation", "bilinear")
        if not isinstance(interpolation, str) or interpolation not in INTERPOLATIONS:
            raise ValueError(f"preprocessing.interpolation: {_shorten(interpolation)} is not one "
                             f"of {', '.join(INTERPOLATIONS)}")
        mean = _channel_field(d, "mean", lambda v: True, "a number")
        std = _channel_field(d, "std", lambda v: v > 0, "a number above 0")
        return cls(resize, crop, mean, std, interpolation)

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


#: Resampling filters tlgui accepts from a file: the ones torchvision's weights use, which
#: torchvision and Pillow both implement the same way.
INTERPOLATIONS = ("nearest", "bilinear", "bicubic")
#: The largest image side (in pixels) a preprocessing read from a file may ask for.
MAX_SIDE = 4096


def _shorten(value, limit: int = 40) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _size_field(d: dict, key: str) -> int:
    if key not in d:
        raise ValueError(f"preprocessing.{key}: missing")
    value = d[key]
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_SIDE:
        raise ValueError(f"preprocessing.{key}: {_shorten(value)} is not a whole number of "
                         f"pixels from 1 to {MAX_SIDE}")
    return value


def _channel_field(d: dict, key: str, allowed, what: str) -> tuple[float, float, float]:
    """Three finite numbers, one per RGB channel, each passing ``allowed``."""
    if key not in d:
        raise ValueError(f"preprocessing.{key}: missing")
    value = d[key]
    numbers = value if isinstance(value, (list, tuple)) else ()
    if len(numbers) != 3 or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
            and allowed(v) for v in numbers):
        raise ValueError(f"preprocessing.{key}: {_shorten(value)} is not three values "
                         f"(R, G, B), each {what}")
    return tuple(float(v) for v in numbers)


def preprocessing_for(name: str, image_size: int | None = None) -> Preprocessing:
    """The backbone's own preprocessing, or scaled to ``image_size`` (crop side in pixels)."""
    info = backbone_info(name)
    crop = image_size or info.crop_size
    if info.fixed_size and crop != info.crop_size:
        raise ValueError(f"{name} takes {info.crop_size} px images only (its position "
                         f"embedding is learnt for that size), not {crop} px")
    if crop < info.min_size:
        raise ValueError(f"image size {crop} is below {name}'s minimum of {info.min_size} px")
    resize = round(crop * info.resize_size / info.crop_size)
    return Preprocessing(resize, crop, info.mean, info.std, info.interpolation)


@dataclass(frozen=True)
class UnreadableImage:
    """What :class:`ImageDataset` gives, when asked to, for an image that fails to decode."""

    path: str
    reason: str


class ImageDataset(Dataset):
    """Items read from disk through a transform; yields ``(tensor, label)``.

    With ``skip_unreadable``, an image that fails to decode yields an :class:`UnreadableImage`
    instead of raising, so that one damaged file costs a batch one image, not the training;
    :func:`collate_readable` then batches the rest. Otherwise, and always for a file that is
    gone, the :class:`~tlgui.core.images.ImageLoadError` is raised.
    """

    def __init__(self, items: Sequence[ImageItem], transform, draft_size: int | None = None,
                 skip_unreadable: bool = False):
        # Paths and labels, not the items: a DataLoader pickles the dataset for each of its
        # processes, and 100,000 item objects take a quarter of a second to pickle, all of it
        # holding the interpreter lock (the window's thread waits); strings and one array of
        # labels take a few milliseconds.
        self.paths = [item.path for item in items]
        self.labels = np.fromiter((item.label for item in items), dtype=np.int64,
                                  count=len(self.paths))
        self.transform = transform
        self.draft_size = draft_size
        self.skip_unreadable = skip_unreadable

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int):
        path = self.paths[index]
        try:
            image = load_rgb(path, draft_size=self.draft_size)
        except ImageLoadError as e:
            # A file that is gone is not damaged: the folder may have moved, and training on
            # what is left would mislead. That stays an error.
            if not self.skip_unreadable or isinstance(e.__cause__, FileNotFoundError):
                raise
            return UnreadableImage(path, e.reason)
        return self.transform(image), torch.tensor(int(self.labels[index]))


def collate_readable(batch: list) -> tuple:
    """Batch the images that decoded: ``(images, labels, [(path, reason), …])``.

    Images and labels are None when no image of the batch decoded.
    """
    readable = [sample for sample in batch if not isinstance(sample, UnreadableImage)]
    unreadable = [(s.path, s.reason) for s in batch if isinstance(s, UnreadableImage)]
    if not readable:
        return None, None, unreadable
    images, labels = default_collate(readable)
    return images, labels, unreadable
