"""Backbone features of a list of images, from the feature store: what the trainer's frozen
part computes, keyed the same way, so a training, the map and the audit share them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from .device import autocast_dtype, select_device
from .feature_store import FeatureKey, FeatureStore, module_fingerprint, stored_features
from .models import ModelSpec, TransferNet, build_model
from .preprocess import Preprocessing, preprocessing_for
from .registry import BACKBONES


def feature_key(model: TransferNet, preprocessing: Preprocessing,
                precision: torch.dtype | None) -> FeatureKey:
    """What ``model.stem``'s outputs depend on: the backbone, its frozen part's weights, how
    much of it is frozen, the preprocessing and the precision it runs in."""
    details = preprocessing.to_dict() | {
        "precision": str(precision).removeprefix("torch.") if precision else "float32"}
    return FeatureKey(model.name, module_fingerprint(model.frozen_part()), model.frozen_blocks,
                      details)


def compact(vectors: np.ndarray, backbone: str) -> np.ndarray:
    """One number per channel: VGG's head input is its last feature maps pooled to 7×7
    (25,088 values); averaged over the 49 places they become 512, like the other backbones'
    globally pooled features."""
    if BACKBONES[backbone][0] == "vgg" and vectors.ndim == 2 and vectors.shape[1] % 49 == 0:
        return vectors.reshape(len(vectors), -1, 49).mean(axis=2)
    return vectors.reshape(len(vectors), -1)


def frozen_backbone(backbone: str, weights: str = "imagenet", allow_download: bool = False,
                    seed: int = 0, cancel=None) -> TransferNet:
    """``backbone`` with ``weights``, every block frozen: its stem gives the pooled features
    (a random start, with ``"none"``, is ``seed``'s, so its features are stored once)."""
    torch.manual_seed(seed)
    return build_model(ModelSpec(backbone, num_classes=2, strategy="frozen"), weights,
                       allow_download, cancel=cancel)


@dataclass
class ImageFeatures:
    """Pooled backbone features of the images that could be read (``valid`` marks them
    among the paths asked for)."""

    vectors: np.ndarray  #: float32, one row per valid image
    valid: np.ndarray  #: bool, one per path
    unreadable: list[tuple[str, str]]
    computed: int  #: images whose features were computed now (the rest came from the store)
    #: With ``classify``: the model's class index for each valid image (its head on the
    #: features), else None.
    predictions: np.ndarray | None = None
    #: With ``classify``: what the head's last layer takes in (its hidden layer's output, or
    #: the features themselves for a head without one, reduced as by :func:`compact`): the
    #: space in which the model draws its boundaries between the classes.
    last_layer_inputs: np.ndarray | None = None


#: Stored rows read and reduced at a time: VGG's 25,088 values per image would take 10 GB as
#: float32 for 100,000 images; a block of them takes 400 MB at most.
READ_ROWS = 4096


def image_features(paths: Sequence[str], backbone: str, weights: str = "imagenet",
                   image_size: int | None = None, device: str = "auto", batch_size: int = 32,
                   workers: int = -1, amp: bool = True, allow_download: bool = False,
                   seed: int = 0, progress=None, cancel=None,
                   model: TransferNet | None = None,
                   preprocessing: Preprocessing | None = None,
                   classify: bool = False) -> ImageFeatures:
    """The whole frozen backbone's pooled features for ``paths`` (see :func:`compact`),
    computed once and kept in the feature store. ``weights`` as for
    :func:`~tlgui.core.models.build_model`; with ``"none"`` the random start is ``seed``'s.
    ``model``: that backbone built already (:func:`frozen_backbone`, or a trained model with
    every block frozen), to use it again; ``preprocessing``: its own, instead of the
    backbone's at ``image_size``. ``classify``: also the model's prediction for each image,
    from its head on the stored features (no second pass over the images)."""
    from .evaluation import map_images

    if model is None:
        model = frozen_backbone(backbone, weights, allow_download, seed, cancel)
    if classify and not model.fully_frozen:
        raise ValueError("classify needs a model whose every block is frozen")
    torch_device = select_device(device)
    model = model.to(torch_device).eval()
    if preprocessing is None:
        preprocessing = preprocessing_for(backbone, image_size)
    precision = autocast_dtype(torch_device) if amp else None
    unreadable: list[tuple[str, str]] = []
    computed = [0]

    def compute(missing: list[int]):
        chosen = [paths[i] for i in missing]
        for index, outputs, failed in map_images(model.stem, preprocessing, chosen, batch_size,
                                                 torch_device, workers, amp, progress=None,
                                                 cancel=cancel):
            unreadable.extend(failed)
            if outputs is not None:
                computed[0] += len(index)
                yield [missing[i] for i in index.tolist()], \
                    outputs.to(torch.float16).cpu().numpy()

    store = FeatureStore()
    features = store.features(feature_key(model, preprocessing, precision))
    stored = stored_features(features, list(paths), compute, progress)
    blocks, predicted, inputs = [], [], []
    body, last = (model.head[:-1], model.head[-1]) if classify else (None, None)
    for start in range(0, len(stored), READ_ROWS):
        if cancel is not None:
            cancel.check()
        rows = stored[np.arange(start, min(start + READ_ROWS, len(stored)))]
        vectors = rows.astype(np.float32)
        blocks.append(compact(vectors, backbone))
        if classify:
            with torch.no_grad():
                z = body(torch.from_numpy(vectors).to(torch_device).reshape(len(vectors), -1))
                predicted.append(last(z).argmax(1).cpu().numpy())
            z = z.float().cpu().numpy()
            inputs.append(compact(z, backbone) if z.shape[1] == model.feature_dim else z)
    width = compact(np.zeros((1, model.feature_dim), np.float32), backbone).shape[1]
    vectors = np.concatenate(blocks) if blocks else np.zeros((0, width), np.float32)
    predictions = last_layer_inputs = None
    if classify:
        predictions = np.concatenate(predicted) if predicted else np.zeros(0, np.int64)
        last_layer_inputs = np.concatenate(inputs) if inputs else \
            np.zeros((0, last.in_features), np.float32)
    try:
        store.evict(keep=[features.folder])
    except (OSError, ValueError):
        pass  # the features are read already; a store that cannot shrink is no reason to fail
    return ImageFeatures(vectors, stored.valid, unreadable, computed[0], predictions,
                         last_layer_inputs)
