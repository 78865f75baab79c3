"""Weights sources: the torch hub cache (through a temporary TORCH_HOME), downloads without a
network, user files checked against the architecture, and tlgui checkpoints."""

import hashlib
import io
import os

import pytest
import torch
from torchvision.models import get_model

from tlgui.core import weights as W
from tlgui.core.control import Cancelled, RunControl
from tlgui.core.models import ModelSpec, build_model

NAME = "mobilenet_v3_small"  # the smallest registered backbone keeps these tests quick


def fake_imagenet_state(name=NAME, seed=1):
    torch.manual_seed(seed)
    return get_model(name, weights=None).state_dict()


def save_in_hub_cache(state, monkeypatch, name=NAME):
    """Save ``state`` in the hub cache as torch hub names files, ``<name>-<sha256 prefix>.pth``,
    and make it the file tlgui looks for (the official name carries the official hash, which a
    test's random weights cannot have)."""
    folder = W.hub_checkpoint_dir()
    folder.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    torch.save(state, buffer)
    data = buffer.getvalue()
    path = folder / f"{name}-{hashlib.sha256(data).hexdigest()[:8]}.pth"
    path.write_bytes(data)
    monkeypatch.setattr(W, "cached_path", lambda n: path if n == name else folder / n)
    return path


def test_cached_imagenet_weights_load_from_the_hub_cache(monkeypatch):
    state = fake_imagenet_state()
    assert not W.is_cached(NAME)
    path = W.cached_path(NAME)
    assert str(path).startswith(os.environ["TORCH_HOME"])
    assert path.name == "mobilenet_v3_small-047dcff4.pth"  # the name torchvision expects
    save_in_hub_cache(state, monkeypatch)
    assert W.is_cached(NAME)
    net = build_model(ModelSpec(NAME, 2), "imagenet", allow_download=False)
    assert torch.equal(net.blocks[0][0].weight, state["features.0.0.weight"])


@pytest.mark.parametrize("name, norm", [("convnext_tiny", "classifier.0.weight"),
                                        ("regnet_y_800mf", None), ("swin_t", "norm.weight"),
                                        ("vit_b_16", "encoder.ln.weight")])
def test_every_backbone_weight_is_loaded_and_only_the_classifier_left(name, norm, monkeypatch):
    """ConvNeXt's classifier starts with a LayerNorm of the backbone: it is loaded, not left
    at random as the new head is."""
    state = fake_imagenet_state(name)
    save_in_hub_cache(state, monkeypatch, name)
    net = build_model(ModelSpec(name, 2), "imagenet", allow_download=False)
    own = dict(net.blocks.named_parameters(prefix="blocks"))
    first = next(k for k in state if k.endswith("weight"))
    assert any(torch.equal(v, state[first]) for v in own.values())
    if norm is not None:  # the norm before the classifier belongs to the backbone
        neck_norm = next(m for m in net.neck if hasattr(m, "weight"))
        assert torch.equal(neck_norm.weight, state[norm])
    if name == "vit_b_16":  # parameters of the model itself, outside its layers
        assert torch.equal(net.blocks[0].class_token, state["class_token"])
        assert torch.equal(net.blocks[0].pos_embedding, state["encoder.pos_embedding"])


def test_a_changed_cached_file_is_checked_again(monkeypatch):
    path = save_in_hub_cache(fake_imagenet_state(), monkeypatch)
    W.load_imagenet_state(NAME, allow_download=False)
    torch.save(fake_imagenet_state(seed=2), path)  # replaced by hand after the first check
    with pytest.raises(W.WeightsError, match="not torchvision's official file"):
        W.load_imagenet_state(NAME, allow_download=False)


def test_not_cached_and_no_download_names_url_and_path():
    with pytest.raises(W.WeightsError) as info:
        build_model(ModelSpec(NAME, 2), "imagenet", allow_download=False)
    text = str(info.value)
    assert "https://download.pytorch.org/models/mobilenet_v3_small-047dcff4.pth" in text
    assert str(W.cached_path(NAME)) in text


def test_offline_download_fails_with_the_same_advice():
    with pytest.raises(W.WeightsError, match="offline.*place it at"):
        W.download_imagenet(NAME)
    assert not any(W.hub_checkpoint_dir().glob("*"))  # no partial file left


class FakeResponse(io.BytesIO):
    def __init__(self, data):
        super().__init__(data)
        self.headers = {"Content-Length": str(len(data))}


def test_download_reports_progress_checks_the_hash_and_can_be_cancelled(monkeypatch):
    payload = os.urandom(3 * (1 << 20) + 5)
    monkeypatch.setattr(W.urllib.request, "urlopen", lambda url, timeout: FakeResponse(payload))
    with pytest.raises(W.WeightsError, match="damaged"):  # random bytes: wrong checksum
        W.download_imagenet(NAME)
    assert not W.is_cached(NAME)

    control = RunControl()
    seen = []

    def progress(done, total):
        seen.append((done, total))
        control.stop()

    with pytest.raises(Cancelled):
        W.download_imagenet(NAME, progress=progress, cancel=control)
    assert seen == [(1 << 20, len(payload))]
    assert not any(W.hub_checkpoint_dir().glob("*"))

    monkeypatch.setattr(W, "_check_hash", lambda *a: None)
    seen.clear()
    path = W.download_imagenet(NAME, progress=lambda d, t: seen.append(d))
    assert path.read_bytes() == payload and seen[-1] == len(payload)


def test_user_file_is_checked_against_the_architecture(tmp_path):
    good = tmp_path / "mine.pth"
    state = fake_imagenet_state()
    torch.save({"state_dict": {f"module.{k}": v for k, v in state.items()}}, good)
    net = build_model(ModelSpec(NAME, 2), str(good))
    assert torch.equal(net.blocks[0][0].weight, state["features.0.0.weight"])

    wrong = tmp_path / "resnet.pth"
    torch.save(fake_imagenet_state("resnet18"), wrong)
    with pytest.raises(W.WeightsError) as info:
        build_model(ModelSpec(NAME, 2), str(wrong))
    assert f"{wrong}: does not fit {NAME}" in str(info.value)
    assert "looks like resnet18" in str(info.value)

    text = tmp_path / "notes.pth"
    text.write_text("hello")
    with pytest.raises(W.WeightsError, match="not a PyTorch weights file"):
        build_model(ModelSpec(NAME, 2), str(text))


def test_import_accepts_only_the_official_file(tmp_path, monkeypatch):
    mine = tmp_path / "copy.pth"
    torch.save(fake_imagenet_state(), mine)
    with pytest.raises(W.WeightsError, match="not torchvision's"):
        W.import_imagenet_file(NAME, mine)
    assert not W.is_cached(NAME)
    # Pretend the file's checksum matches the official one.
    monkeypatch.setattr(W, "_HASH_IN_NAME", W.re.compile(r"(?!)"))
    target = W.import_imagenet_file(NAME, mine)
    assert target == W.cached_path(NAME) and target.read_bytes() == mine.read_bytes()


def test_resolve_source(tmp_path):
    assert W.resolve_source("ImageNet") == "imagenet"
    assert W.resolve_source("none") == "none"
    with pytest.raises(W.WeightsError, match="no such weights file"):
        W.resolve_source(str(tmp_path / "missing.pth"))
    run = tmp_path / "run"
    run.mkdir()
    (run / "best.pt").write_bytes(b"x")
    assert W.resolve_source(str(run)) == str(run / "best.pt")
