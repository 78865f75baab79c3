"""Backbones: every registered one builds, strategies freeze the right blocks, heads and groups."""

import pytest
import torch
from torch import nn
from torchvision.models import get_model

from tlgui.core.models import ModelSpec, build_model, twin_without_dropout
from tlgui.core.registry import UnknownBackbone, backbone_info, backbone_names

REQUIRED = ["vgg16", "vgg16_bn", "vgg19", "resnet18", "resnet50", "mobilenet_v3_small",
            "mobilenet_v3_large", "efficientnet_b0", "efficientnet_v2_s", "regnet_y_800mf",
            "convnext_tiny", "swin_t", "vit_b_16"]


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


@pytest.mark.parametrize("name, classifier", [("swin_t", "head"), ("vit_b_16", "heads"),
                                              ("convnext_tiny", None)])
def test_reassembled_backbones_compute_what_torchvision_computes(name, classifier, tmp_path):
    """The transformers' blocks and necks are tlgui's own cut of torchvision's forward (ViT's
    embedding is rebuilt outside it): with the same weights, the features are the same."""
    torch.manual_seed(0)
    reference = get_model(name, weights=None).eval()
    path = tmp_path / "weights.pth"
    torch.save(reference.state_dict(), path)
    net = build_model(ModelSpec(name, num_classes=2, strategy="full"), str(path)).eval()
    if classifier:
        setattr(reference, classifier, nn.Identity())
    else:  # ConvNeXt: LayerNorm, Flatten, Linear; the norm is the backbone's
        reference.classifier[2] = nn.Identity()
    x = torch.rand(2, 3, 224, 224)
    with torch.no_grad():
        assert torch.allclose(net.features(x), reference(x), atol=1e-5)


def test_a_vision_transformer_freezes_its_embedding_with_its_first_block():
    net = build_model(ModelSpec("vit_b_16", 2, strategy="partial", trainable_blocks=12),
                      "none")
    assert net.num_blocks == 13 and net.frozen_blocks == 1
    embedding = dict(net.blocks[0].named_parameters())
    assert {"class_token", "pos_embedding", "conv_proj.weight"} <= set(embedding)
    assert not any(p.requires_grad for p in embedding.values())
    assert all(p.requires_grad for p in net.blocks[1].parameters())


def test_a_vision_transformer_takes_its_own_image_size_only():
    from tlgui.core.preprocess import preprocessing_for

    assert backbone_info("vit_b_16").fixed_size and not backbone_info("swin_t").fixed_size
    assert preprocessing_for("vit_b_16").crop_size == 224
    with pytest.raises(ValueError, match="vit_b_16 takes 224 px images only.*not 160 px"):
        preprocessing_for("vit_b_16", 160)
    with pytest.raises(ValueError, match="not 256 px"):
        preprocessing_for("vit_b_16", 256)
    assert preprocessing_for("swin_t", 256).crop_size == 256


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
