"""The decision chart and the layout of frozen and trainable blocks."""

import pytest

from tlgui.core.advice import recommend
from tlgui.core.models import ModelSpec, block_layout


@pytest.mark.parametrize(
    "images, similar, strategy",
    [(200, True, "frozen"), (20_000, True, "partial"), (200, False, "partial"),
     (20_000, False, "full")],
)
def test_decision_chart(images, similar, strategy):
    advice = recommend(images, 4, similar)
    assert advice.strategy == strategy
    assert str(images) in advice.reason and advice.reason.endswith(".")


def test_block_layout_counts_match_the_built_model():
    from tlgui.core.models import build_model

    spec = ModelSpec("resnet18", 3, strategy="partial", trainable_blocks=2, hidden=32)
    rows = block_layout(spec)
    assert [r[0] for r in rows] == ["stem", "layer1", "layer2", "layer3", "layer4", "new head"]
    assert [r[2] for r in rows] == [True, True, True, False, False, False]
    trainable, frozen = build_model(spec, "none").parameter_counts()
    assert sum(n for _, n, f in rows if not f) == trainable
    assert sum(n for _, n, f in rows if f) == frozen


@pytest.mark.parametrize("images", [40, 200, 20_000])
@pytest.mark.parametrize("similar", [True, False])
def test_random_weights_are_never_advised_frozen(images, similar):
    advice = recommend(images, 4, similar, weights="none")
    assert advice.strategy == "full"
    assert "random weights" in advice.reason and advice.reason.endswith(".")
    assert "ImageNet" not in advice.reason


def test_pretrained_weights_keep_the_chart():
    assert recommend(200, 4, True, weights="imagenet").strategy == "frozen"
    assert recommend(200, 4, True, weights="/data/my_weights.pth").strategy == "frozen"


def test_a_frozen_random_backbone_is_explained_when_chosen():
    from tlgui.core.advice import strategy_warning

    text = strategy_warning("frozen", "none")
    assert text.startswith("A frozen backbone with random weights: only the new head learns")
    assert "\n" not in text and "--" not in text
    for strategy, weights in (("frozen", "imagenet"), ("partial", "none"), ("full", "none")):
        assert strategy_warning(strategy, weights) == ""


def test_the_backbone_learns_at_the_full_rate_from_random_weights():
    from tlgui.core.advice import default_backbone_lr_factor

    assert default_backbone_lr_factor("none") == 1.0
    assert default_backbone_lr_factor("imagenet") == 0.1
    assert default_backbone_lr_factor("/data/my_weights.pth") == 0.1


def test_config_and_command_line_defaults_follow_the_weights(tmp_path, capsys):
    import json

    from tlgui.cli import main
    from tlgui.core.sample import ensure_sample_data
    from tlgui.core.training import TrainConfig

    assert TrainConfig(weights="none").backbone_lr_factor == 1.0
    assert TrainConfig(weights="imagenet").backbone_lr_factor == 0.1
    assert TrainConfig(weights="none", backbone_lr_factor=0.5).backbone_lr_factor == 0.5
    data = ensure_sample_data(tmp_path / "shapes", images_per_class=6)
    out = tmp_path / "run"
    code = main(["train", str(data), "--model", "resnet18", "--weights", "none", "--strategy",
                 "frozen", "--epochs", "1", "--image-size", "32", "--hidden", "8",
                 "--device", "cpu", "--out", str(out), "--workers", "0"])
    assert code == 0
    assert json.loads((out / "config.json").read_text())["backbone_lr_factor"] == 1.0
    err = capsys.readouterr().err
    assert "warning: A frozen backbone with random weights: only the new head learns" in err
