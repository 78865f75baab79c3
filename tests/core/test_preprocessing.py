"""tlgui's preprocessing is each backbone's own, as torchvision defines it for its weights.

Compared with torchvision's ``weights.transforms()`` (an independent source) field by field and
on the tensor a real non-square image becomes, so that a swap (mean for std, resize for crop,
width for height) cannot stay hidden behind code that is merely consistent with itself."""

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision.models import get_model_weights
from torchvision.transforms import InterpolationMode

from tlgui.core.data import ImageItem
from tlgui.core.images import ImageLoadError, load_rgb
from tlgui.core.preprocess import (
    ImageDataset,
    Preprocessing,
    collate_readable,
    preprocessing_for,
)
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


def test_sizes_scale_by_the_weights_own_ratio_and_stop_at_the_minimum():
    # resnet18's weights resize to 256 and crop 224: 100 px crops come from 100 × 256 / 224
    assert (preprocessing_for("resnet18", 100).resize_size, preprocessing_for("resnet18").crop_size
            ) == (114, 224)
    assert preprocessing_for("resnet18", 1).crop_size == 1  # torchvision's minimum for resnet
    # torchvision's vgg16 weights state a 32 px minimum
    with pytest.raises(ValueError, match="image size 31 is below vgg16's minimum of 32 px"):
        preprocessing_for("vgg16", 31)
    assert preprocessing_for("vgg16", 32).crop_size == 32


VALID = {"resize_size": 37, "crop_size": 32, "mean": [0.485, 0.456, 0.406],
         "std": [0.229, 0.224, 0.225], "interpolation": "bilinear"}


def test_preprocessing_from_a_file_accepts_the_limits_and_fills_the_default():
    p = Preprocessing.from_dict({**VALID, "resize_size": 4096, "crop_size": 4096})
    assert (p.resize_size, p.crop_size) == (4096, 4096)  # the crop may be the whole image
    assert Preprocessing.from_dict({**VALID, "resize_size": 1, "crop_size": 1}).crop_size == 1
    without = {k: v for k, v in VALID.items() if k != "interpolation"}
    assert Preprocessing.from_dict(without).interpolation == "bilinear"
    ints = Preprocessing.from_dict({**VALID, "mean": [0, 1, 0], "std": (1, 2, 3)})
    assert ints.mean == (0.0, 1.0, 0.0) and ints.std == (1.0, 2.0, 3.0)
    assert all(isinstance(v, float) for v in ints.mean + ints.std)
    assert Preprocessing.from_dict({**VALID, "mean": [-2.5, 0, 1e3]}).mean == (-2.5, 0.0, 1e3)


@pytest.mark.parametrize("changes, message", [
    ({"resize_size": 4097},
     "preprocessing.resize_size: 4097 is not a whole number of pixels from 1 to 4096"),
    ({"crop_size": 0}, "preprocessing.crop_size: 0 is not a whole number of pixels from 1 to 4096"),
    ({"crop_size": 38},
     "preprocessing.crop_size: 38 px is larger than the resized image (37 px) it is cut from"),
    ({"interpolation": "lanczos"},
     "preprocessing.interpolation: 'lanczos' is not one of nearest, bilinear, bicubic"),
    ({"interpolation": "x" * 60},
     "preprocessing.interpolation: '" + "x" * 38 + "… is not one of nearest, bilinear, bicubic"),
    ({"mean": [0.5]},
     "preprocessing.mean: [0.5] is not three values (R, G, B), each a number"),
    ({"std": [1, 1, 0]},
     "preprocessing.std: [1, 1, 0] is not three values (R, G, B), each a number above 0"),
    ({"std": "abc"},
     "preprocessing.std: 'abc' is not three values (R, G, B), each a number above 0"),
])
def test_a_refused_field_is_named_with_its_value_and_the_rule(changes, message):
    with pytest.raises(ValueError) as info:
        Preprocessing.from_dict({**VALID, **changes})
    assert str(info.value) == message


def test_missing_fields_are_named():
    for key in ("resize_size", "crop_size", "mean", "std"):
        with pytest.raises(ValueError) as info:
            Preprocessing.from_dict({k: v for k, v in VALID.items() if k != key})
        assert str(info.value) == f"preprocessing.{key}: missing"
    with pytest.raises(ValueError) as info:
        Preprocessing.from_dict(None)
    assert str(info.value) == "preprocessing: not a set of named values"


def test_training_without_augmentation_is_the_evaluation_transform(photo):
    p = preprocessing_for("resnet18", 32)
    assert torch.equal(p.train_transform(False)(photo), p.eval_transform()(photo))
    torch.manual_seed(0)
    augmented = p.train_transform(True)(photo)
    assert augmented.shape == (3, 32, 32)
    assert not torch.equal(augmented, p.eval_transform()(photo))


def test_a_batch_of_damaged_images_is_named_and_the_rest_batched(tmp_path):
    good = tmp_path / "good.png"
    Image.new("RGB", (40, 30), (200, 10, 10)).save(good)
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image")
    items = [ImageItem(str(good), 1, "a/good.png"), ImageItem(str(bad), 0, "a/bad.png")]
    transform = preprocessing_for("resnet18", 32).eval_transform()
    dataset = ImageDataset(items, transform, skip_unreadable=True)
    assert len(dataset) == 2
    images, labels, unreadable = collate_readable([dataset[0], dataset[1]])
    assert images.shape == (1, 3, 32, 32) and labels.tolist() == [1]
    assert [path for path, _ in unreadable] == [str(bad)]
    assert collate_readable([dataset[1]]) == (None, None, unreadable)
    with pytest.raises(ImageLoadError):
        ImageDataset(items, transform)[1]  # without skip_unreadable a damaged file is an error
    gone = ImageDataset([ImageItem(str(tmp_path / "gone.png"), 0, "a/gone.png")], transform,
                        skip_unreadable=True)
    with pytest.raises(ImageLoadError):
        gone[0]  # a file that is gone is never skipped


def test_a_large_jpeg_is_decoded_at_the_reduced_scale_asked_for(tmp_path):
    """JPEG decodes at 1/2, 1/4 or 1/8 scale: for at least 32 px on the short side of a
    400 × 300 photo, 1/8 (50 × 38) is enough."""
    path = tmp_path / "photo.jpg"
    Image.new("RGB", (400, 300), (10, 120, 200)).save(path)
    item = ImageItem(str(path), 0, "a/photo.jpg")

    def size_of(image):  # the transform: what the decoder gave
        return image.size

    assert ImageDataset([item], size_of, draft_size=32)[0][0] == (50, 38)
    assert ImageDataset([item], size_of)[0][0] == (400, 300)


def test_a_file_keeps_its_interpolation_and_training_augments_as_documented():
    p = Preprocessing.from_dict({**VALID, "interpolation": "bicubic"})
    assert p.interpolation == "bicubic"
    assert p.eval_transform().transforms[0].interpolation == InterpolationMode.BICUBIC
    crop, flip, jitter = p.train_transform(True).transforms[:3]
    # the weights' own resampling, 60–100 % of the image, ±20 % brightness, contrast, saturation
    assert crop.interpolation == InterpolationMode.BICUBIC and crop.size == (32, 32)
    assert tuple(crop.scale) == (0.6, 1.0)
    assert flip.p == 0.5
    assert jitter.brightness == jitter.contrast == jitter.saturation == (0.8, 1.2)
    assert jitter.hue is None


@pytest.mark.parametrize("length, shown", [(38, "'" + "x" * 38 + "'"),
                                           (39, "'" + "x" * 38 + "…")])
def test_a_refused_value_is_quoted_whole_up_to_forty_characters(length, shown):
    with pytest.raises(ValueError) as info:
        Preprocessing.from_dict({**VALID, "interpolation": "x" * length})
    assert str(info.value).startswith(f"preprocessing.interpolation: {shown} is not one of")
