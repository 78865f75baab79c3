"""tlgui's preprocessing is each backbone's own, as torchvision defines it for its weights.

Compared with torchvision's ``weights.transforms()`` (an independent source) field by field and
on the tensor a real non-square image becomes, so that a swap (mean for std, resize for crop,
width for height) cannot stay hidden behind code that is merely consistent with itself."""

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision.models import get_model_weights

from tlgui.core.images import load_rgb
from tlgui.core.preprocess import preprocessing_for
from tlgui.core.sample import ensure_sample_data

# Different resize/crop ratios, interpolations and families.
BACKBONES = ["resnet18", "resnet50", "vgg16", "mobilenet_v3_small", "efficientnet_b0"]


def official(name):
    return get_model_weights(name).DEFAULT.transforms()


@pytest.fixture(scope="module")
def photo(tmp_path_factory):
    """A non-square RGB image (wider than tall) from the sample set, with fine detail."""
    root = tmp_path_factory.mktemp("photo")
    data = ensure_sample_data(root / "shapes", images_per_class=1)
    image = load_rgb(str(next((data / "star").glob("*.jpg")))).resize((331, 217))
    noise = np.random.default_rng(0).integers(0, 40, (217, 331, 3), dtype=np.uint8)
    return Image.fromarray(np.asarray(image) // 2 + noise)


@pytest.mark.parametrize("name", BACKBONES)
def test_preprocessing_fields_are_torchvisions(name):
    ours, theirs = preprocessing_for(name), official(name)
    assert ours.resize_size == theirs.resize_size[0]
    assert ours.crop_size == theirs.crop_size[0]
    assert ours.interpolation == theirs.interpolation.value
    assert ours.mean == pytest.approx(tuple(theirs.mean))
    assert ours.std == pytest.approx(tuple(theirs.std))


def test_imagenet_statistics_are_the_known_ones():
    p = preprocessing_for("resnet18")
    assert p.mean == pytest.approx((0.485, 0.456, 0.406))
    assert p.std == pytest.approx((0.229, 0.224, 0.225))
    assert (p.resize_size, p.crop_size) == (256, 224)
    assert preprocessing_for("efficientnet_b0").interpolation == "bicubic"


@pytest.mark.parametrize("name", BACKBONES)
def test_a_non_square_image_becomes_the_tensor_torchvision_makes(name, photo):
    ours = preprocessing_for(name).eval_transform()(photo)
    theirs = official(name)(photo)
    assert ours.shape == theirs.shape == (3, 224, 224)
    assert torch.allclose(ours, theirs, atol=1e-5)
    # Not trivially equal: the normalised image has both signs and varies across channels.
    assert ours.min() < 0 < ours.max() and not torch.allclose(ours[0], ours[1])


def test_a_smaller_image_size_keeps_the_ratio_of_resize_to_crop(photo):
    p = preprocessing_for("resnet18", 112)
    assert (p.resize_size, p.crop_size) == (128, 112)
    assert p.eval_transform()(photo).shape == (3, 112, 112)
