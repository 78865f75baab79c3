"""Where a backbone's starting weights come from.

* ``imagenet``: torchvision's Weights API and the torch hub cache (``$TORCH_HOME/hub/checkpoints``).
  When the file is not cached it is downloaded with a progress callback and a cancel flag;
  offline, the error names the URL and the path where the file can be placed by hand. A cached
  file is checked against the SHA-256 prefix in its name and read as tensors only.
* a ``.pth`` file the user has: checked against the architecture before use.
* ``none``: random initialisation (training from scratch).
* a checkpoint of an earlier tlgui run: its backbone becomes the starting point.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import urllib.error
import urllib.request
from collections.abc import Callable
from functools import cache
from pathlib import Path

from .control import CancelFlag, Cancelled
from .paths import atomic_output
from .registry import BACKBONES, backbone_info, classifier_prefix, unweighted_model

# torch hub's convention: "<name>-<first hex digits of sha256>.pth"
_HASH_IN_NAME = re.compile(r"-([a-f0-9]{6,})\.")

CHECKPOINT_FORMAT = "tlgui-checkpoint"


class WeightsError(ValueError):
    """Weights that cannot be used; the message says what to do about it."""


def hub_checkpoint_dir() -> Path:
    import torch.hub

    return Path(torch.hub.get_dir()) / "checkpoints"


def cached_path(name: str) -> Path:
    """Where torch hub keeps (or would keep) the ImageNet weights of ``name``."""
    return hub_checkpoint_dir() / backbone_info(name).weights_file


def is_cached(name: str) -> bool:
    return cached_path(name).is_file()


def unavailable_message(name: str, reason: str = "") -> str:
    info = backbone_info(name)
    why = f" ({reason})" if reason else ""
    return (
        f"ImageNet weights for {name} are not cached and could not be downloaded{why}. "
        f"Download {info.url} ({info.weights_mb:.0f} MB) and place it at {cached_path(name)}, "
        f"or pass the file with --weights FILE"
    )


ProgressFn = Callable[[int, int], None]


def download_imagenet(
    name: str,
    progress: ProgressFn | None = None,
    cancel: CancelFlag | None = None,
    timeout: float = 30.0,
) -> Path:
    """Download the ImageNet weights of ``name`` into the torch hub cache.

    ``progress(bytes_done, bytes_total)`` is called as data arrives; setting ``cancel`` stops the
    download (raising :class:`Cancelled`) and leaves nothing behind. The file is checked against
    the hash in its name and renamed into place only when complete.
    """
    info = backbone_info(name)
    target = cached_path(name)
    with atomic_output(target, suffix=".part") as tmp, open(tmp, "wb") as out:
        try:
            response = urllib.request.urlopen(info.url, timeout=timeout)
        except (urllib.error.URLError, OSError) as e:
            raise WeightsError(unavailable_message(name, _reason(e))) from e
        with response:
            total = int(response.headers.get("Content-Length") or 0)
            digest = hashlib.sha256()
            done = 0
            while True:
                if cancel is not None and cancel.is_set():
                    raise Cancelled("download cancelled")
                try:
                    chunk = response.read(1 << 20)
                except OSError as e:
                    raise WeightsError(unavailable_message(name, _reason(e))) from e
                if not chunk:
                    break
                out.write(chunk)
                digest.update(chunk)
                done += len(chunk)
                if progress:
                    progress(done, total)
        _check_hash(target.name, digest.hexdigest(), info.url)
    _remember_verified(target)  # just checked while it arrived: no need to hash it again
    return target


def _reason(e: BaseException) -> str:
    reason = getattr(e, "reason", None) or e
    return f"offline? {reason}"


def _check_hash(file_name: str, hexdigest: str, source: str) -> None:
    match = _HASH_IN_NAME.search(file_name)
    if match and not hexdigest.startswith(match.group(1)):
        raise WeightsError(f"{source}: the download is damaged (checksum mismatch); try again")


def import_imagenet_file(name: str, path: str | os.PathLike) -> Path:
    """Copy a user's copy of the official ImageNet weights of ``name`` into the hub cache.

    The file must be the official one (its SHA-256 must match the hash in torchvision's file
    name), so that the cache never holds something else under the official name. For other
    compatible weights, use the file directly as a weights source instead.
    """
    path = Path(path)
    target = cached_path(name)
    state = read_state_dict(path)
    check_fits(name, state, str(path))
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    match = _HASH_IN_NAME.search(target.name)
    if match and not digest.hexdigest().startswith(match.group(1)):
        raise WeightsError(
            f"{path}: fits {name} but is not torchvision's {target.name} (different checksum); "
            f"use it directly as a weights file instead"
        )
    with atomic_output(target, suffix=".part") as tmp:
        shutil.copyfile(path, tmp)
    _remember_verified(target)
    return target


def read_state_dict(path: str | os.PathLike) -> dict:
    """Read a state dict from a ``.pth`` file, unwrapping the usual containers."""
    import torch

    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"{path}: no such weights file")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        if "Weights only load failed" in str(e):
            raise WeightsError(f"{path}: {_load_problem(e)}") from e
        raise WeightsError(f"{path}: not a PyTorch weights file ({_load_problem(e)})") from e
    if isinstance(obj, dict) and obj.get("format") == CHECKPOINT_FORMAT:
        return obj
    for key in ("state_dict", "model", "model_state_dict"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
            break
    if not isinstance(obj, dict) or not all(hasattr(v, "shape") for v in obj.values()):
        raise WeightsError(f"{path}: holds no state dict of tensors")
    return {k.removeprefix("module."): v for k, v in obj.items()}


#: torchvision models a weights file is compared with when it fits none of the backbones, so
#: that the message can say what the file most likely holds.
_OTHER_ARCHITECTURES = (
    "resnet34", "resnet101", "resnet152", "resnext50_32x4d", "wide_resnet50_2",
    "vgg11", "vgg11_bn", "vgg13", "vgg13_bn", "vgg19_bn",
    "mobilenet_v2", "efficientnet_b1", "efficientnet_b2", "efficientnet_b3",
)


def _classifier_prefix(name: str) -> str:
    """Where the ImageNet classifier's weights live in ``name``'s state dict."""
    if name in BACKBONES:
        return classifier_prefix(name)
    return "fc." if name.startswith(("resnet", "resnext", "wide_resnet", "regnet")) \
        else "classifier."


@cache
def expected_shapes(name: str) -> dict[str, tuple[int, ...]]:
    """The state-dict shapes of torchvision's ``name``, built on the meta device (no memory).

    Cached per name: treat the result as read-only."""
    return {k: tuple(v.shape) for k, v in unweighted_model(name).state_dict().items()}


def check_fits(name: str, state: dict, source: str) -> None:
    """Raise :class:`WeightsError` unless ``state`` holds exactly the backbone weights of
    ``name``: none missing, none of another shape, and none left over (weights of a larger
    network would otherwise be cut down without a word).

    The ImageNet classifier's weights may be missing or of another shape: tlgui replaces it.
    """
    if state.get("format") == CHECKPOINT_FORMAT:
        return
    expected = expected_shapes(name)
    head = _classifier_prefix(name)
    needed = {k: s for k, s in expected.items() if not k.startswith(head)}
    missing = [k for k in needed if k not in state]
    wrong = [k for k in needed if k in state and tuple(state[k].shape) != needed[k]]
    extra = [k for k in state if k not in needed and not k.startswith(head)]
    if not missing and not wrong and not extra:
        return
    parts = []
    if missing:
        parts.append(f"{len(missing)} of {len(needed)} weights missing (e.g. {missing[0]})")
    if wrong:
        k = wrong[0]
        parts.append(
            f"{len(wrong)} of the wrong shape (e.g. {k}: {_shape(state[k].shape)} in the file, "
            f"{_shape(needed[k])} in {name})"
        )
    if extra:
        parts.append(f"{len(extra)} weights not in {name} (e.g. {extra[0]})")
    guess = _guess_architecture(state)
    hint = f"; it looks like {guess} weights" if guess and guess != name else ""
    raise WeightsError(f"{source}: does not fit {name}: {'; '.join(parts)}{hint}")


def _shape(shape) -> str:
    return "×".join(str(int(s)) for s in shape) or "scalar"


def _guess_architecture(state: dict) -> str | None:
    """The torchvision model whose backbone weights are exactly those in ``state``, if any."""
    keys = {k: tuple(v.shape) for k, v in state.items()}
    for name in (*BACKBONES, *_OTHER_ARCHITECTURES):
        head = _classifier_prefix(name)
        backbone = {k: s for k, s in expected_shapes(name).items() if not k.startswith(head)}
        present = {k: s for k, s in keys.items() if not k.startswith(head)}
        if present == backbone:
            return name
    return None


def load_imagenet_state(
    name: str,
    allow_download: bool = True,
    progress: ProgressFn | None = None,
    cancel: CancelFlag | None = None,
) -> dict:
    """ImageNet state dict of ``name`` from the torch hub cache (downloaded first if needed).

    The cached file may have been put there by hand, so it is checked against the checksum in
    torchvision's file name and read as tensors only (``weights_only=True``): a file that is
    not the official one never reaches the model, and nothing in it can run.
    """
    if not is_cached(name):
        if not allow_download:
            raise WeightsError(unavailable_message(name, "downloads are off"))
        download_imagenet(name, progress=progress, cancel=cancel)
    path = cached_path(name)
    _check_cached_hash(path)
    import torch

    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise WeightsError(
            f"{path}: the cached ImageNet weights of {name} cannot be read "
            f"({_load_problem(e)}); delete the file and download it again"
        ) from e
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor)
                                              for v in state.values()):
        raise WeightsError(f"{path}: holds no state dict of tensors; delete the file and "
                           f"download it again")
    check_fits(name, state, str(path))
    return state


# (path, size, modification time) of cached files whose checksum has been verified: a large
# file (VGG's is 528 MB) is hashed once per session, and again whenever it changes.
_VERIFIED: set[tuple[str, int, int]] = set()


def _check_cached_hash(path: Path) -> None:
    match = _HASH_IN_NAME.search(path.name)
    if not match:
        return
    stat = path.stat()
    key = (str(path), stat.st_size, stat.st_mtime_ns)
    if key in _VERIFIED:
        return
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    expected = match.group(1)
    if not digest.hexdigest().startswith(expected):
        raise WeightsError(
            f"{path}: not torchvision's official file (its SHA-256 does not start with "
            f"{expected}, as the name says); delete it and download it again, or use the file "
            f"as a weights file of its own"
        )
    _VERIFIED.add(key)


def _remember_verified(path: Path) -> None:
    stat = path.stat()
    _VERIFIED.add((str(path), stat.st_size, stat.st_mtime_ns))


def _load_problem(e: BaseException) -> str:
    """torch's reason for refusing a file, in one line and without its advice to load the
    file with ``weights_only=False`` (which would let the file run code)."""
    from .errors import one_line

    return one_line(e)


def resolve_source(source: str) -> str:
    """Normalise a weights source: 'imagenet', 'none', or an existing file path."""
    lowered = source.lower()
    if lowered in ("imagenet", "none"):
        return lowered
    path = Path(source).expanduser()
    if path.is_dir() and (path / "best.pt").is_file():
        path = path / "best.pt"
    if not path.is_file():
        raise WeightsError(
            f"{source}: no such weights file (use 'imagenet', 'none' or a .pth/.pt file)"
        )
    return str(path.resolve())


__all__ = [
    "Cancelled",
    "WeightsError",
    "cached_path",
    "check_fits",
    "download_imagenet",
    "import_imagenet_file",
    "is_cached",
    "load_imagenet_state",
    "read_state_dict",
    "resolve_source",
]
