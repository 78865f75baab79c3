"""Backbones: every registered one builds, strategies freeze the right blocks, heads and groups."""

import pytest
import torch

from tlgui.core.models import ModelSpec, build_model, twin_without_dropout
from tlgui.core.registry import UnknownBackbone, backbone_info, backbone_names

REQUIRED = ["vgg16", "vgg16_bn", "vgg19", "resnet18", "resnet50", "mobilenet_v3_small",
            "mobilenet_v3_large", "efficientnet_b0", "efficientnet_v2_s", "regnet_y_800mf",
            "convnext_tiny"]


def test_registry_has_the_required_backbones_with_their_figures():
    assert set(REQUIRED) <= set(backbone_names())
    vgg = backbone_info("vgg16")
    assert vgg.num_params == 138_357_544
    assert vgg.crop_size == 224 and vgg.resize_size == 256
    assert vgg.imagenet_top1 == pytest.approx(71.592)
    assert vgg.weights_mb == pytest.approx(527.8, abs=0.1)
    assert vgg.weights_file == "vgg16-397923af.pth"


def test_unknown_backbone_lists_the_choices():
    with pytest.raises(UnknownBackbone, match="vgg16"):
        backbone_info("alexnet2")


@pytest.mark.parametrize("name", REQUIRED)
def test_every_backbone_builds_and_runs_on_a_tiny_input(name):
    torch.manual_seed(0)
    net = build_model(ModelSpec(name, num_classes=3, hidden=16), weights="none").eval()
    size = max(32, backbone_info(name).min_size)
    x = torch.rand(2, 3, size, size)
    with torch.no_grad():
        out = net(x)
        assert out.shape == (2, 3)
        assert torch.allclose(net.from_stem(net.stem(x)), out, atol=1e-5)
    trainable, frozen = net.parameter_counts()
    head = sum(p.numel() for p in net.head.parameters())
    assert trainable == head and frozen > 0  # default strategy: frozen backbone


def test_strategies_freeze_the_right_blocks():
    spec = dict(name="resnet18", num_classes=2, hidden=0)
    partial = build_model(ModelSpec(**spec, strategy="partial", trainable_blocks=2), "none")
    assert partial.frozen_blocks == partial.num_blocks - 2
    trainable_blocks = [all(p.requires_grad for p in b.parameters()) for b in partial.blocks]
    assert trainable_blocks == [False, False, False, True, True]
    full = build_model(ModelSpec(**spec, strategy="full"), "none")
    assert full.parameter_counts()[1] == 0
    groups = full.parameter_groups(1e-3, 1e-4)
    assert [(g["name"], g["lr"]) for g in groups] == [("head", 1e-3), ("backbone", 1e-4)]


def test_frozen_batch_norm_stays_in_eval_mode():
    net = build_model(ModelSpec("resnet18", 2, strategy="partial", trainable_blocks=1), "none")
    net.train()
    assert not net.blocks[0].training and net.blocks[-1].training


def test_head_has_the_requested_dropout_and_width():
    net = build_model(ModelSpec("vgg16", 5, dropout=0.3, hidden=64), "none")
    assert net.dropout() == pytest.approx(0.3)
    assert net.head[0].in_features == 512 * 7 * 7 and net.head[0].out_features == 64
    twin = twin_without_dropout(net)
    assert twin.dropout() == 0.0
    for a, b in zip(net.state_dict().values(), twin.state_dict().values()):
        assert torch.equal(a, b)
