"""Looking inside: feature maps, predictions, Grad-CAM, ideal images, adversarial examples."""

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from tlgui.cli import main
from tlgui.core import feature_maps as fm
from tlgui.core.adversarial import adversarial
from tlgui.core.class_images import ideal_image, total_variation
from tlgui.core.gradcam import gradcam, overlay
from tlgui.core.inspection import InspectModel, PixelModel, fine_tuned, pretrained
from tlgui.core.preprocess import Preprocessing
from tlgui.core.sample import ensure_sample_data


@pytest.fixture(scope="module")
def resnet():
    torch.manual_seed(0)
    return pretrained("resnet18", weights="none")


@pytest.fixture
def photo(tmp_path):
    path = tmp_path / "star.jpg"
    image = Image.open(next((ensure_sample_data() / "star").glob("*.jpg")))
    image.resize((300, 240)).save(path)
    return str(path)


def tiny_model(size=16, classes=3):
    """A small convolutional classifier whose every class is reachable."""
    torch.manual_seed(0)
    conv = nn.Conv2d(3, 8, 3, padding=1)
    body = nn.Sequential(conv, nn.ReLU(), nn.AdaptiveAvgPool2d(4), nn.Flatten(),
                         nn.Linear(8 * 16, classes))
    p = Preprocessing(size, size, (0.5, 0.5, 0.5), (0.25, 0.25, 0.25))
    return InspectModel("tiny", "test", PixelModel(body, p.mean, p.std).eval(),
                        [f"class{i}" for i in range(classes)], p,
                        [("conv", conv), ("relu", body[1])], body[1])


def test_vgg_layers_are_listed_with_their_output_shapes():
    vgg = pretrained("vgg16", weights="none")
    layers = {layer.name: layer for layer in fm.describe_layers(vgg)}
    assert list(layers)[:5] == ["conv1_1", "relu1_1", "conv1_2", "relu1_2", "pool1"]
    assert layers["conv1_1"].shape == (64, 224, 224) and layers["conv1_1"].kind == "conv"
    assert layers["relu3_2"].kind == "relu"
    assert layers["pool5"].shape == (512, 7, 7) and layers["pool5"].kind == "pool"
    assert len(vgg.classes) == 1000 and vgg.classes[281] == "tabby"


def test_feature_maps_are_ordered_by_mean_activation(resnet, photo):
    x = resnet.load_image(photo)
    assert x.shape == (1, 3, 224, 224) and 0 <= x.min() and x.max() <= 1
    maps = fm.feature_maps(resnet, x, "layer1")
    assert maps.maps.shape == (64, 56, 56)
    assert np.all(np.diff(maps.means) <= 1e-6)
    assert sorted(maps.channels.tolist()) == list(range(64))
    grid = maps.grid(count=10, cell=20, gap=2)
    assert grid.shape == (3 * 22 - 2, 4 * 22 - 2, 3) and grid.dtype == np.uint8
    assert maps.channel_image(0, 100).shape == (100, 100, 3)
    with pytest.raises(ValueError, match="no layer 'conv9'"):
        fm.feature_maps(resnet, x, "conv9")


def test_inplace_relu_does_not_overwrite_the_conv_output():
    vgg = pretrained("vgg16", weights="none")
    torch.manual_seed(1)
    x = torch.rand(1, 3, 64, 64)
    out = fm.activations(vgg, x, ["conv1_1", "relu1_1"])
    assert out["conv1_1"].min() < 0  # a raw convolution has negative responses
    assert torch.equal(out["relu1_1"], out["conv1_1"].clamp(min=0))


def test_colormap_is_viridis():
    rgb = fm.colormap(np.array([0.0, 1.0]))
    assert rgb.tolist() == [[68, 1, 84], [253, 231, 37]]


def test_gradcam_has_the_image_size(resnet, photo):
    x = resnet.load_image(photo)
    heat, index, p = gradcam(resnet, x)
    assert heat.shape == (224, 224) and 0 <= heat.min() and heat.max() <= 1
    assert index == int(resnet.model(x).argmax(1)) and 0 < p < 1
    heat7, index7, _ = gradcam(resnet, x, class_index=7)
    assert index7 == 7 and heat7.shape == (224, 224)
    assert overlay(np.zeros((224, 224, 3), np.uint8), heat).shape == (224, 224, 3)


def test_gradient_ascent_raises_the_score_and_tv_keeps_the_image_smooth():
    model = tiny_model(size=32)
    plain = ideal_image(model, 1, steps=40, tv_weight=0.0, jitter=2, lr=0.05)
    smooth = ideal_image(model, 1, steps=40, tv_weight=2.0, jitter=2, lr=0.05)
    assert plain.score > plain.start_score + 1.0
    assert smooth.score > smooth.start_score
    assert smooth.total_variation < plain.total_variation
    seen = []
    ideal_image(model, 0, steps=20, callback=lambda s, im, sc: seen.append((s, im.shape)),
                every=10)
    assert seen == [(10, (32, 32, 3)), (20, (32, 32, 3))]


def test_total_variation_of_a_flat_image_is_zero():
    assert float(total_variation(torch.full((1, 3, 8, 8), 0.3))) == 0.0
    assert float(total_variation(torch.rand(1, 3, 8, 8))) > 0


def test_adversarial_reaches_the_target_within_the_bound():
    model = tiny_model()
    torch.manual_seed(3)
    x = torch.rand(1, 3, 16, 16)
    source = int(model.model(x).argmax(1))
    target = (source + 1) % 3
    result = adversarial(model, x, target, epsilon=0.3, step_size=0.02, max_steps=200)
    assert result.success and result.after[0][0] == f"class{target}"
    assert result.before[0][0] == f"class{source}"
    assert result.linf <= 0.3 + 1e-6 and 0 < result.steps <= 200
    assert result.perturbation.shape == result.adversarial.shape == (16, 16, 3)


def test_the_fine_tuned_model_can_be_inspected(tmp_path, photo):
    from tlgui.core.data import scan
    from tlgui.core.training import TrainConfig, Trainer

    root = ensure_sample_data(tmp_path / "shapes", images_per_class=6)
    config = TrainConfig(model="resnet18", weights="none", image_size=32, epochs=1,
                         hidden=8, workers=0)
    Trainer(config, scan([str(root)]), tmp_path / "run").run()
    model = fine_tuned(tmp_path / "run" / "model" / "best.pt")
    assert model.classes == ["circle", "square", "star", "triangle"]
    assert [n for n, _ in model.stages] == ["stem", "layer1", "layer2", "layer3", "layer4"]
    x = model.load_image(photo)
    assert x.shape == (1, 3, 32, 32)
    assert len(model.top_predictions(x)) == 4
    heat, _, _ = gradcam(model, x)
    assert heat.shape == (32, 32)
    assert fm.feature_maps(model, x, "layer2").maps.shape[0] == 128


def test_class_lookup(resnet):
    assert resnet.class_index("tabby") == 281
    assert resnet.class_index("281") == 281
    with pytest.raises(ValueError, match="several classes"):
        resnet.class_index("cat")
    with pytest.raises(ValueError, match="no class called"):
        resnet.class_index("unicorn")


@pytest.mark.parametrize(
    "view",
    [["features", "{img}", "--layer", "layer2", "--channels", "9"],
     ["gradcam", "{img}", "--class", "tabby"],
     ["ideal", "--class", "goldfish", "--steps", "3", "--size", "48"],
     ["adversarial", "{img}", "--target", "1", "--steps", "2"]],
)
def test_cli_views_write_pngs(tmp_path, photo, view, capsys):
    out = tmp_path / "view.png"
    args = ["inspect"] + [a.replace("{img}", photo) for a in view]
    assert main(args + ["--model", "resnet18", "--weights", "none", "--out", str(out)]) == 0
    image = Image.open(out)
    assert image.mode == "RGB" and image.width > 48


def test_cli_inspect_needs_weights_or_says_where_to_get_them(photo, capsys):
    assert main(["inspect", "predict", photo, "--model", "resnet18", "--no-download"]) == 1
    assert "place it at" in capsys.readouterr().err
