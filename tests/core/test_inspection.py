"""Looking inside: feature maps, predictions, Grad-CAM, ideal images, adversarial examples."""

import math
import threading

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from tlgui.cli import main
from tlgui.core import feature_maps as fm
from tlgui.core.adversarial import adversarial
from tlgui.core.class_images import ideal_image, total_variation
from tlgui.core.control import Cancelled
from tlgui.core.gradcam import describe, gradcam, overlay
from tlgui.core.images import load_rgb
from tlgui.core.inspection import (
    InspectModel,
    PixelModel,
    fine_tuned,
    format_probability,
    pretrained,
)
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


def stripes_model(size=32, gain=12.0, head_weights=None):
    """A hand-built classifier whose ideal images are known: class "across" scores horizontal
    stripes (brightness changing down the image), "down" vertical stripes, "red" red over green
    (``head_weights``: other mixtures of the three). Global average pooling: the scores do not
    depend on the image size."""
    conv = nn.Conv2d(3, 3, 3, padding=1, bias=False)
    sobel = torch.tensor([[-1.0, -2.0, -1.0], [0.0, 0.0, 0.0], [1.0, 2.0, 1.0]]) / 4
    with torch.no_grad():
        conv.weight.zero_()
        for c in range(3):
            conv.weight[0, c] = sobel / 3
            conv.weight[1, c] = sobel.T / 3
        conv.weight[2, 0, 1, 1], conv.weight[2, 1, 1, 1] = 1.0, -1.0
    head = nn.Linear(3, 3)
    with torch.no_grad():
        head.weight.copy_(torch.eye(3) * gain if head_weights is None
                          else torch.tensor(head_weights))
        head.bias.zero_()
    body = nn.Sequential(conv, nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), head)
    p = Preprocessing(size, size, (0.0, 0.0, 0.0), (1.0, 1.0, 1.0))
    return InspectModel("stripes", "test", PixelModel(body, p.mean, p.std).eval(),
                        ["across", "down", "red"], p, [("conv", conv), ("relu", body[1])],
                        body[1])


def halves_model():
    """Class "red" is the mean redness (red minus green) of the image, class "green" its mean
    greenness: on an image red on the left and green on the right, each class is decided by one
    half only. 1×1 convolution, so the Grad-CAM layer has the image's own resolution."""
    conv = nn.Conv2d(3, 2, 1, bias=False)
    with torch.no_grad():
        conv.weight.copy_(torch.tensor([[1.0, -1.0, 0.0], [-1.0, 1.0, 0.0]]).view(2, 3, 1, 1))
    relu = nn.ReLU()
    head = nn.Linear(2, 2)
    with torch.no_grad():
        head.weight.copy_(torch.eye(2))
        head.bias.zero_()
    body = nn.Sequential(conv, relu, nn.AdaptiveAvgPool2d(1), nn.Flatten(), head)
    p = Preprocessing(16, 16, (0.0, 0.0, 0.0), (1.0, 1.0, 1.0))
    return InspectModel("halves", "test", PixelModel(body, p.mean, p.std).eval(),
                        ["red", "green"], p, [("conv", conv), ("relu", relu)], relu)


def scores_of(model, image: np.ndarray) -> torch.Tensor:
    """The model's logits for an (H, W, 3) uint8 image, as read back from a file."""
    x = torch.from_numpy(np.array(image)).permute(2, 0, 1)[None].float() / 255
    with torch.no_grad():
        return model.model(x)[0]


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


def test_gradcam_explains_the_class_asked_for_not_the_top_one():
    model = halves_model()
    x = torch.zeros(1, 3, 16, 16)
    x[0, 0, :, :8] = 1.0  # red on the left: "red" scores 0.5
    x[0, 1, :, 8:] = 0.6  # green on the right: "green" scores 0.3
    heat, index, p = gradcam(model, x, class_index=1)
    assert index == 1
    assert p == pytest.approx(float(torch.softmax(torch.tensor([0.5, 0.3]), 0)[1]), abs=1e-6)
    assert heat[:, 8:].min() > 0.99 and heat[:, :8].max() < 0.01
    heat, index, p = gradcam(model, x)  # the predicted class: red, on the left
    assert index == 0 and p > 0.5
    assert heat[:, :8].min() > 0.99 and heat[:, 8:].max() < 0.01
    assert describe(heat, "red", p).startswith("Where the model looked for red (probability")


def test_gradcam_says_when_nothing_raised_the_score():
    model = halves_model()
    x = torch.zeros(1, 3, 16, 16)
    x[0, 0] = 1.0  # all red: no green anywhere
    heat, index, p = gradcam(model, x, class_index=1)
    assert index == 1 and not heat.any()
    assert describe(heat, "green", p) == (
        f"Nothing in this image raised the score of green (probability "
        f"{format_probability(p)}): Grad-CAM has nothing to show.")


def test_the_ideal_image_is_what_the_model_calls_the_class():
    model = stripes_model(size=48)
    result = ideal_image(model, 0, steps=60)  # the default TV weight
    assert result.probability > 0.9 and result.score > result.start_score + 2
    image = result.image.astype(float)
    assert image.std() / 255 > 0.15  # structure, not a flat field
    down = np.abs(np.diff(image, axis=0)).mean()
    across = np.abs(np.diff(image, axis=1)).mean()
    assert down > 2 * across  # horizontal stripes: brightness changes down the image
    # The figures are those of the image as shown (8-bit, unshifted).
    logits = scores_of(model, result.image)
    assert float(logits[0]) == pytest.approx(result.score, abs=1e-4)
    assert float(torch.softmax(logits, 0)[0]) == pytest.approx(result.probability, abs=1e-5)


@pytest.mark.parametrize("size, gain", [(32, 1.0), (96, 1.0), (32, 10.0)])
def test_the_tv_weight_is_a_fraction_of_the_score(size, gain):
    """The same TV weight neither drowns the score on a large canvas nor on a model with small
    logits: a penalty growing with the image size, or blind to the score's scale, leaves a
    flat grey field."""
    model = stripes_model(size=size, gain=12.0 * gain)
    result = ideal_image(model, 1, steps=40, tv_weight=0.5)
    image = result.image.astype(float)
    assert image.std() / 255 > 0.15
    assert result.probability > 0.9


def test_the_ideal_image_wins_its_class_where_the_score_alone_would_not():
    """Vertical stripes raise "across" a little and "down" twice as much: climbing the score of
    "across" alone would add them (a high score, a low probability); the ideal image of
    "across" must be horizontal stripes only, which the model gives "across"."""
    model = stripes_model(size=32, head_weights=[[12.0, 6.0, 0.0], [0.0, 24.0, 0.0],
                                                 [0.0, 0.0, 12.0]])
    result = ideal_image(model, 0, steps=60)
    assert result.probability > 0.9 and result.score > result.start_score
    image = result.image.astype(float)
    assert np.abs(np.diff(image, axis=0)).mean() > 2 * np.abs(np.diff(image, axis=1)).mean()


def test_the_score_never_ends_below_the_start():
    """A TV weight far too strong flattens the image and lowers the score: the best image seen
    (at worst the start itself) is kept, with its own figures."""
    model = stripes_model(size=32)
    seen = []
    result = ideal_image(model, 0, steps=30, tv_weight=500.0,
                         callback=lambda step, image, score: seen.append(score))
    assert seen[-1] < result.start_score  # the last image is worse than the noise...
    assert result.score == result.start_score and result.best_step == 0  # ...so the start stays
    assert float(scores_of(model, result.image)[0]) == pytest.approx(result.score, abs=1e-4)


def test_gradient_ascent_raises_the_score_and_tv_keeps_the_image_smooth():
    model = tiny_model(size=32)
    plain = ideal_image(model, 1, steps=40, tv_weight=0.0, jitter=2, lr=0.05)
    smooth = ideal_image(model, 1, steps=40, tv_weight=2.0, jitter=2, lr=0.05)
    assert plain.score > plain.start_score + 1.0
    assert smooth.score > smooth.start_score
    assert smooth.total_variation < plain.total_variation
    assert smooth.total_variation == pytest.approx(
        float(total_variation(torch.from_numpy(smooth.image / 255.0).permute(2, 0, 1))),
        abs=1e-5)
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
    # Judged on the image as saved: 8-bit pixels read back give the same verdict and figures.
    saved = scores_of(model, result.adversarial)
    assert int(saved.argmax()) == target
    probabilities = torch.softmax(saved, 0)
    for name, p in result.after:
        assert p == pytest.approx(float(probabilities[model.classes.index(name)]), abs=1e-6)
    change = np.abs(result.adversarial.astype(int) - result.original.astype(int))
    assert change.max() == result.max_change <= int(0.3 * 255)


def test_the_adversarial_bound_holds_on_the_saved_pixels():
    """Grey horizontal stripes are "across" by a wide margin; 2 levels of red over green can
    raise "red" by at most 12 × 4/255 (and lower the others by no more), so the target is out
    of reach: every step pushes against the bound, which must hold on the 8-bit pixels saved,
    even for an original between two levels."""
    model = stripes_model(size=16)
    torch.manual_seed(3)
    rows = torch.tensor([0.2, 0.2, 0.8, 0.8] * 4).view(1, 1, 16, 1).expand(1, 3, 16, 16)
    x = rows + torch.rand(1, 3, 16, 16) / 255  # not on the 8-bit grid
    assert model.top_predictions(x, 1)[0][0] == "across"
    result = adversarial(model, x, 2, epsilon=2 / 255, step_size=1 / 255, max_steps=30)
    assert not result.success and result.steps == 30
    original = (x[0].permute(1, 2, 0).numpy() * 255 + 0.5).astype(int)
    assert np.array_equal(result.original, original)
    change = np.abs(result.adversarial.astype(int) - original)
    assert change.max() == result.max_change == 2  # reached, and never passed
    saved = scores_of(model, result.adversarial)
    assert int(saved.argmax()) == 0 and result.after[0][0] == "across"
    assert result.after[0][1] == pytest.approx(float(torch.softmax(saved, 0)[0]), abs=1e-6)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A tiny fine-tuned model's best.pt (resnet18 at 32 px from random weights, one epoch)."""
    from tlgui.core.data import scan
    from tlgui.core.training import TrainConfig, Trainer

    tmp_path = tmp_path_factory.mktemp("fine_tuned")
    root = ensure_sample_data(tmp_path / "shapes", images_per_class=6)
    config = TrainConfig(model="resnet18", weights="none", image_size=32, epochs=1,
                         hidden=8, workers=0)
    Trainer(config, scan([str(root)]), tmp_path / "run").run()
    return str(tmp_path / "run" / "model" / "best.pt")


def test_the_fine_tuned_model_can_be_inspected(checkpoint, photo):
    model = fine_tuned(checkpoint)
    assert model.classes == ["circle", "square", "star", "triangle"]
    assert [n for n, _ in model.stages] == ["stem", "layer1", "layer2", "layer3", "layer4"]
    x = model.load_image(photo)
    assert x.shape == (1, 3, 32, 32)
    # The model sees the image exactly as it was trained and evaluated on it.
    p = model.preprocessing
    trained_on = p.eval_transform()(load_rgb(photo, draft_size=p.resize_size))
    assert torch.allclose((x - model.model.mean) / model.model.std, trained_on[None], atol=1e-5)
    assert len(model.top_predictions(x)) == 4
    heat, _, _ = gradcam(model, x)
    assert heat.shape == (32, 32)
    assert fm.feature_maps(model, x, "layer2").maps.shape[0] == 128


def test_inspection_uses_the_weights_own_interpolation(tmp_path):
    """EfficientNet's weights were trained on bicubic resizing: the image the inspection views
    show the model is the one torchvision's own transforms give."""
    from torchvision.models import get_model_weights

    model = pretrained("efficientnet_b0", weights="none")
    assert model.preprocessing.interpolation == "bicubic"
    rng = np.random.default_rng(0)
    path = tmp_path / "photo.png"
    Image.fromarray(rng.integers(0, 256, (300, 260, 3), dtype=np.uint8)).save(path)
    x = model.load_image(str(path))
    expected = get_model_weights("efficientnet_b0").DEFAULT.transforms()(
        Image.open(path).convert("RGB"))
    normalised = (x - model.model.mean) / model.model.std
    assert normalised.shape == (1, *expected.shape)
    assert torch.allclose(normalised[0], expected, atol=1e-5)


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


def run_cli(args, capsys) -> list[str]:
    """Run ``tlgui`` in this process; its standard output, line by line."""
    assert main(args) == 0
    return capsys.readouterr().out.splitlines()


def test_cli_predict_prints_the_models_predictions(checkpoint, photo, capsys):
    model = fine_tuned(checkpoint)
    expected = model.top_predictions(model.load_image(photo), 3)
    lines = run_cli(["inspect", "predict", photo, "--checkpoint", checkpoint, "--top", "3"],
                    capsys)
    assert lines == [photo] + [f"  {format_probability(p):>6}  {name}"
                               for name, p in expected]


def test_cli_gradcam_prints_the_class_it_explains(checkpoint, photo, tmp_path, capsys):
    model = fine_tuned(checkpoint)
    x = model.load_image(photo)
    heat, index, p = gradcam(model, x, 2)
    predicted, predicted_p = model.top_predictions(x, 1)[0]
    lines = run_cli(["inspect", "gradcam", photo, "--checkpoint", checkpoint, "--class",
                     "star", "--out", str(tmp_path / "cam.png")], capsys)
    empty = [] if heat.any() else [describe(heat, "star", p)]  # an empty map says so
    assert index == 2 and lines == [
        f"Grad-CAM of star: probability {format_probability(p)} "
        f"(predicted: {predicted} {format_probability(predicted_p)})",
        *empty, str(tmp_path / "cam.png")]


def test_cli_ideal_prints_the_scores_with_and_without_tv(checkpoint, tmp_path, capsys):
    model = fine_tuned(checkpoint)
    with_tv = ideal_image(model, 1, steps=5, tv_weight=0.5, seed=3)
    without = ideal_image(model, 1, steps=5, tv_weight=0.0, seed=3)
    out = tmp_path / "ideal.png"
    lines = run_cli(["inspect", "ideal", "--checkpoint", checkpoint, "--class", "square",
                     "--steps", "5", "--tv", "0.5", "--seed", "3", "--out", str(out)], capsys)
    assert lines == [
        f"square: score {with_tv.start_score:.2f} -> {with_tv.score:.2f}, "
        f"probability {format_probability(with_tv.probability)}",
        f"square without TV: score {without.start_score:.2f} -> {without.score:.2f}, "
        f"probability {format_probability(without.probability)}",
        str(out)]
    assert Image.open(out).width > 2 * 320  # both images, side by side


def test_cli_adversarial_prints_before_and_after(checkpoint, photo, tmp_path, capsys):
    model = fine_tuned(checkpoint)
    x = model.load_image(photo)
    result = adversarial(model, x, 0, epsilon=4 / 255, max_steps=3)
    out = tmp_path / "adv.png"
    lines = run_cli(["inspect", "adversarial", photo, "--checkpoint", checkpoint, "--target",
                     "circle", "--epsilon", "4", "--steps", "3", "--out", str(out)], capsys)
    (before, p_before), (after, p_after) = result.before[0], result.after[0]
    outcome = "reached" if result.success else "not reached"
    assert lines == [
        f"before: {before} {format_probability(p_before)}",
        f"after: {after} {format_probability(p_after)} (circle {outcome} in {result.steps} steps; "
        f"largest pixel change {result.max_change} of 255 levels)",
        str(out)]
    assert result.max_change <= 4


def test_probabilities_never_round_to_certainty():
    assert [format_probability(p) for p in (1.0, 0.9996, 0.973, 0.5, 0.0004, 0.0)] == [
        "100.0%", ">99.9%", "97.3%", "50.0%", "<0.1%", "0.0%"]


def test_png_captions_use_only_characters_their_font_draws():
    from tlgui.cli_inspect import caption_font, caption_text

    font = caption_font()
    missing = np.asarray(font.getmask("\ue000"))  # a private-use character: the box glyph

    def drawn(ch):
        mask = np.asarray(font.getmask(ch))
        return mask.shape != missing.shape or not np.array_equal(mask, missing)

    assert not drawn("→")  # the reason for the stand-ins
    text = caption_text("star: score 1.8 → 9.1, change ×32 – max 8 of 255")
    assert text == "star: score 1.8 -> 9.1, change x32 - max 8 of 255"
    assert all(drawn(ch) for ch in set(text) - {" "})


def test_cli_inspect_needs_weights_or_says_where_to_get_them(photo, capsys):
    assert main(["inspect", "predict", photo, "--model", "resnet18", "--no-download"]) == 1
    assert "place it at" in capsys.readouterr().err


def test_gradcam_overlay_blends_the_viridis_colours_over_the_image():
    white = np.full((2, 2, 3), 255, np.uint8)
    heat = np.array([[0.0, 1.0], [0.0, 1.0]])
    # 0.55 × 255 + 0.45 × viridis: (68, 1, 84) where the map is 0, (253, 231, 37) where it is 1
    blended = overlay(white, heat)
    assert blended[0, 0].tolist() == [170, 140, 178]
    assert blended[0, 1].tolist() == [254, 244, 156]
    assert overlay(white, heat, alpha=0.0).tolist() == white.tolist()
    assert overlay(white, heat, alpha=1.0)[1, 1].tolist() == [253, 231, 37]
    # over black: 0.45 × (68, 1, 84), the green below one level
    assert overlay(np.zeros((1, 1, 3), np.uint8), np.zeros((1, 1)))[0, 0].tolist() == [30, 0, 37]


def test_gradcam_sentence_names_the_class_and_its_probability():
    heat = np.array([[0.0, 0.5]])
    assert describe(heat, "star", 0.973) == (
        "Where the model looked for star (probability 97.3%): yellow raised the score most, "
        "purple least.")
    assert describe(np.zeros((2, 2)), "star", 0.25).startswith("Nothing in this image raised")


def test_gradcam_of_a_half_image_is_bilinear_and_peaks_at_one():
    """The halves model's map is 1 on the red half and 0 on the other at full resolution; at
    half the resolution (2×2 pooling first) the bilinear enlargement is the known ramp."""
    model = halves_model()
    pooled = nn.Sequential(nn.AvgPool2d(2), *model.model.module)
    p = model.preprocessing
    small = InspectModel("halves", "test", PixelModel(pooled, p.mean, p.std).eval(),
                         model.classes, p, model.stages, model.cam_layer)
    x = torch.zeros(1, 3, 16, 16)
    x[0, 0, :, :8] = 0.8  # red on the left only: "red" wins
    heat, index, probability = gradcam(small, x)
    assert index == 0
    assert probability == pytest.approx(float(torch.softmax(torch.tensor([0.4, 0.0]), 0)[0]))
    # the 8 columns of the 8-wide map are [1, 1, 1, 1, 0, 0, 0, 0]; enlarged twice, bilinear
    # without aligned corners: columns 7 and 8 fall a quarter and three quarters of the way
    assert heat[0, :6].tolist() == [1.0] * 6 and heat[0, 10:].tolist() == [0.0] * 6
    assert heat[0, 7] == pytest.approx(0.75) and heat[0, 8] == pytest.approx(0.25)
    assert heat.max() == 1.0 and np.all(heat == heat[0])


def test_gradcam_works_through_frozen_layers():
    """A fine-tuned model's frozen backbone has no gradients of its own: the map must come
    from the image's, and be the same as with trainable layers."""
    model = halves_model()
    x = torch.zeros(1, 3, 16, 16)
    x[0, 0, :, :8] = 1.0
    trainable, _, _ = gradcam(model, x)
    for parameter in model.model.parameters():
        parameter.requires_grad_(False)
    frozen, index, _ = gradcam(model, x)
    assert index == 0 and np.array_equal(frozen, trainable) and frozen[:, :8].min() > 0.99


def test_an_adversarial_step_is_worked_out_by_hand():
    """Grey with one level more green: the halves model says "green" by 1/255. One step of one
    level against the gradient adds red and takes green in every pixel (blue plays no part),
    and red wins: every figure of the result follows."""
    model = halves_model()
    x = torch.full((1, 3, 16, 16), 128 / 255)
    x[0, 1] = 129 / 255
    result = adversarial(model, x, 0, epsilon=8 / 255, step_size=1 / 255, max_steps=10)
    assert result.success and result.steps == 1 and result.max_change == 1
    assert result.adversarial[0, 0].tolist() == [129, 128, 128]
    assert result.original[0, 0].tolist() == [128, 129, 128]
    assert result.l2 == pytest.approx(math.sqrt(2 / 3) / 255)
    # the change amplified to half the grey range: +1 level white, -1 black, none grey
    assert result.amplification == pytest.approx(127.5)
    assert result.perturbation[0, 0].tolist() == [255, 0, 128]
    green = 1 / (1 + math.exp(-1 / 255))
    assert result.before == [("green", pytest.approx(green)), ("red", pytest.approx(1 - green))]
    assert result.after[0] == ("red", pytest.approx(green)) and len(result.after) == 2
    one = adversarial(model, x, 0, top=1)
    assert len(one.before) == len(one.after) == 1


def test_an_adversarial_bound_of_two_levels_is_reached_and_never_passed():
    """Green three levels above red: two one-level steps (red up, green down) turn the halves
    model to "red"; a bound just under two levels allows one step only, and the search runs
    its 100 steps in vain."""
    model = halves_model()
    x = torch.full((1, 3, 16, 16), 128 / 255)
    x[0, 1] = 131 / 255
    reached = adversarial(model, x, 0, epsilon=2 / 255, step_size=1 / 255)
    assert reached.success and reached.steps == 2 and reached.max_change == 2
    assert reached.adversarial[0, 0].tolist() == [130, 129, 128]
    assert reached.amplification == pytest.approx(63.75)  # 2 levels shown as half the range
    assert reached.perturbation[0, 0].tolist() == [255, 0, 128]
    short = adversarial(model, x, 0, epsilon=2 / 256, step_size=1 / 255)  # 1.99 levels
    assert not short.success and short.steps == 100 and short.max_change == 1
    assert short.adversarial[0, 0].tolist() == [129, 130, 128]
    # the five most likely classes, when there are more
    many = adversarial(tiny_model(classes=7), torch.rand(1, 3, 16, 16), 1, max_steps=1)
    assert len(many.before) == len(many.after) == 5


def test_an_adversarial_bound_below_one_level_changes_nothing():
    model = halves_model()
    x = torch.full((1, 3, 16, 16), 128 / 255)
    x[0, 1] = 129 / 255
    result = adversarial(model, x, 0, epsilon=0.9 / 255, max_steps=5)
    assert not result.success and result.steps == 5 and result.max_change == 0
    assert result.l2 == 0.0 and np.array_equal(result.adversarial, result.original)
    assert result.amplification == pytest.approx(127.5)
    # exactly one level is one level, despite 1/255 × 255 not being 1 in floats
    assert adversarial(model, x, 0, epsilon=1 / 255).max_change == 1


def test_a_cancelled_adversarial_search_stops():
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(Cancelled, match="^cancelled$"):
        adversarial(halves_model(), torch.full((1, 3, 16, 16), 0.5), 0, cancel=cancel)


def _check_every_view(model, size: int) -> None:
    """Layers, feature maps, Grad-CAM, the ideal image and the adversarial example."""
    x = torch.rand(1, 3, size, size)
    layers = fm.describe_layers(model)
    assert len(layers) >= 4 and all(len(info.shape) == 3 for info in layers)
    maps = fm.feature_maps(model, x, layers[-1].name)
    assert len(maps.maps) == layers[-1].shape[0] and maps.grid(count=4).shape[2] == 3
    heat, index, probability = gradcam(model, x)
    assert heat.shape == (size, size) and 0 <= heat.min() <= heat.max() <= 1
    assert heat.max() == 1  # the class score depends on the layer Grad-CAM looks at
    assert 0 <= index < len(model.classes) and 0 < probability <= 1
    image = ideal_image(model, 1, steps=2, size=size, every=1)
    assert image.image.shape == (size, size, 3)
    result = adversarial(model, x, target=0 if index else 1, max_steps=2)
    assert result.steps <= 2 and result.max_change <= 8


@pytest.mark.parametrize("name, size", [("efficientnet_v2_s", 64), ("regnet_y_800mf", 64),
                                        ("convnext_tiny", 64), ("swin_t", 64),
                                        ("vit_b_16", 224)])
def test_every_view_works_on_the_newer_backbones(name, size):
    """On a small input where the network takes one (the views are the same for every size);
    a vision transformer takes 224 px only."""
    torch.manual_seed(0)
    model = pretrained(name, weights="none")
    if name == "vit_b_16":  # torchvision starts its classifier at zero: every score is 0
        nn.init.normal_(model.model.module.heads.head.weight, std=0.02)
    _check_every_view(model, size)


@pytest.mark.parametrize("name, size", [("swin_t", 224), ("vit_b_16", 224)])
def test_every_view_works_on_fine_tuned_transformers(name, size, tmp_path):
    """tlgui's own cut of the transformers: Swin's channels-last stages and ViT's tokens
    (its embedding block included) are shown as maps on the patch grid."""
    from dataclasses import asdict

    from tlgui.core.models import ModelSpec, build_model
    from tlgui.core.preprocess import preprocessing_for
    from tlgui.core.weights import CHECKPOINT_FORMAT

    torch.manual_seed(0)
    spec = ModelSpec(name, num_classes=3, hidden=8)
    net = build_model(spec, "none")
    torch.save({"format": CHECKPOINT_FORMAT, "version": 1, "run": "r", "epoch": 1,
                "spec": asdict(spec), "classes": ["a", "b", "c"],
                "preprocessing": preprocessing_for(name).to_dict(),
                "model": net.state_dict(), "val_acc": None}, tmp_path / "best.pt")
    model = fine_tuned(tmp_path / "best.pt")
    grid = size // (16 if name == "vit_b_16" else 32)
    assert fm.describe_layers(model)[-1].shape == (768, grid, grid)
    _check_every_view(model, size)


def test_channel_maps_of_tokens_and_of_channels_last_outputs():
    from tlgui.core.inspection import as_channel_maps

    # a class token, then 4 patch tokens of 2 channels, in rows: (0,0) (0,1) (1,0) (1,1)
    tokens = torch.tensor([[[9, 9], [1, 10], [2, 20], [3, 30], [4, 40]]])
    maps = as_channel_maps(tokens, "tokens")
    assert maps.tolist() == [[[[1, 2], [3, 4]], [[10, 20], [30, 40]]]]
    channels_last = torch.arange(12).reshape(1, 2, 3, 2)  # N, H, W, C
    assert torch.equal(as_channel_maps(channels_last, "nhwc")[0, 1],
                       channels_last[0, :, :, 1])
    assert as_channel_maps(channels_last).shape == (1, 2, 3, 2)  # channels first: as it is
    with pytest.raises(ValueError, match="3 patch tokens"):
        as_channel_maps(torch.zeros(1, 4, 2), "tokens")


def test_gradcam_on_tokens_puts_the_patches_back_in_their_places():
    """A hand-made token model whose score is channel 0 summed over the patches; channel 0
    is bright in the right column only. Grad-CAM lights that column (tokens in row order:
    read in column order, it would light the bottom row)."""

    class Tokens(nn.Module):
        def forward(self, x):  # (N, 3, 2, 2) -> class token + 4 patch tokens, 2 channels
            patches = x[:, :2].flatten(2).transpose(1, 2)
            return torch.cat([torch.ones_like(patches[:, :1]), patches], 1)

    class Score(nn.Module):
        def forward(self, tokens):
            total = tokens[:, :, 0].sum(1)  # the class token too: it is not a place
            return torch.stack([total, -total], 1)

    tokens = Tokens()
    net = nn.Sequential(tokens, Score())
    model = InspectModel("tokens", "vit", PixelModel(net, (0, 0, 0), (1, 1, 1)), ["a", "b"],
                         Preprocessing(2, 2, (0, 0, 0), (1, 1, 1), "bilinear"),
                         [("tokens", tokens)], tokens, {"tokens": "tokens"}, "tokens")
    x = torch.zeros(1, 3, 2, 2)
    x[0, 0, :, 1] = 0.5
    heat, index, _ = gradcam(model, x)
    assert index == 0
    assert heat.tolist() == [[0, 1], [0, 1]]
    with pytest.raises(ValueError, match="takes 2 px images only, not 4 px"):
        ideal_image(model, 0, steps=1, size=4)
