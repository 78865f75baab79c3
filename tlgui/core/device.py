"""Which compute devices this machine has, and the choice among them."""

from __future__ import annotations

import os
from functools import lru_cache

import torch


@lru_cache(maxsize=1)
def available_devices() -> list[tuple[str, str]]:
    """``(id, description)`` for every usable device, best first; CPU is always last."""
    devices = []
    if torch.cuda.is_available():
        for i in range(torch.cuda.device_count()):
            devices.append((f"cuda:{i}", torch.cuda.get_device_name(i)))
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        devices.append(("mps", "Apple GPU (Metal)"))
    devices.append(("cpu", f"CPU ({os.cpu_count() or 1} cores)"))
    return devices


def select_device(choice: str = "auto") -> torch.device:
    """``auto`` picks CUDA, then MPS, then CPU; otherwise the named device, if it exists."""
    if choice == "cpu":  # no need to probe the GPU drivers (slow to load)
        return torch.device("cpu")
    ids = [d for d, _ in available_devices()]
    if choice == "auto":
        return torch.device(ids[0])
    wanted = "cuda:0" if choice == "cuda" else choice
    if wanted not in ids:
        raise ValueError(
            f"device '{choice}' is not available on this machine (available: {', '.join(ids)})"
        )
    return torch.device(wanted)


def describe(device: torch.device) -> str:
    if device.type == "cpu":
        return f"cpu — CPU ({os.cpu_count() or 1} cores)"
    for dev_id, text in available_devices():
        if dev_id == str(device) or (device.type == "cuda" and dev_id == f"cuda:{device.index}"):
            return f"{dev_id} — {text}"
    return str(device)


def autocast_dtype(device: torch.device) -> torch.dtype | None:
    """The mixed-precision type for ``device``, or None where training stays in float32.

    On CUDA: bfloat16 where the GPU computes it natively, else float16 (which needs a gradient
    scaler). A GPU that only emulates bfloat16 (before Ampere) would run it far slower than
    float16, so emulation does not count.
    """
    if device.type != "cuda":
        return None
    try:
        native = torch.cuda.is_bf16_supported(including_emulation=False)
    except TypeError:  # an older torch, without the argument
        native = torch.cuda.is_bf16_supported()
    return torch.bfloat16 if native else torch.float16


def tune_for(device: torch.device) -> None:
    """Let PyTorch run ``device`` at full speed: on CUDA, cuDNN picks the fastest
    convolution algorithm for the (fixed) input size once, and float32 matrix products use
    TF32 tensor cores (on Ampere and later; 10 mantissa bits, far finer than the noise of
    training). Nothing changes elsewhere."""
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True


def memory_format(device: torch.device) -> torch.memory_format:
    """How image tensors are laid out on ``device``: channels last on CUDA, where tensor
    cores take convolutions in that layout without transposing them; PyTorch's default
    elsewhere."""
    return torch.channels_last if device.type == "cuda" else torch.contiguous_format


def to_device(x: torch.Tensor, device: torch.device) -> torch.Tensor:
    """A batch of images on ``device``, in :func:`memory_format`'s layout."""
    if x.dim() == 4:
        return x.to(device, non_blocking=True, memory_format=memory_format(device))
    return x.to(device, non_blocking=True)
