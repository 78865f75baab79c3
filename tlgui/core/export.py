"""Taking a trained model away: TorchScript and ONNX files that carry their class names and
preprocessing, each with a usage snippet written beside it.

Both exported models take a batch of RGB images already resized and centre-cropped to the
input size, as float pixels in [0, 1] with shape (N, 3, S, S), and return class
probabilities (N, classes): normalisation is inside the model.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import torch
from torch import nn

from .models import load_trained
from .paths import atomic_output, atomic_write_text
from .preprocess import Preprocessing

FORMATS = ("torchscript", "onnx")
METADATA_KEY = "tlgui.json"


class Probabilities(nn.Module):
    """Pixels in [0, 1] -> normalised -> the network -> softmax."""

    def __init__(self, net: nn.Module, mean, std):
        super().__init__()
        self.net = net
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1))

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.net((pixels - self.mean) / self.std), dim=1)


def metadata(checkpoint: dict) -> dict:
    p = Preprocessing.from_dict(checkpoint["preprocessing"])
    return {
        "classes": list(checkpoint["classes"]),
        "input_size": p.crop_size,
        "resize_size": p.resize_size,
        "mean": list(p.mean),
        "std": list(p.std),
        "interpolation": p.interpolation,
        "model": checkpoint["spec"]["name"],
        "input": "float32 RGB pixels in [0, 1], shape (N, 3, input_size, input_size)",
        "output": "class probabilities, shape (N, classes)",
    }


def export(checkpoint_path, out_path, fmt: str) -> tuple[Path, Path]:
    """Export ``checkpoint_path`` (a tlgui best.pt) to ``out_path`` in ``fmt``.

    Returns the model file and the usage snippet written beside it (``<file>.usage.py``).
    """
    if fmt not in FORMATS:
        raise ValueError(f"unknown format '{fmt}'; choose one of {', '.join(FORMATS)}")
    net, checkpoint = load_trained(checkpoint_path)
    meta = metadata(checkpoint)
    model = Probabilities(net, meta["mean"], meta["std"]).eval()
    example = torch.rand(1, 3, meta["input_size"], meta["input_size"])
    out_path = Path(out_path)
    if fmt == "torchscript":
        with torch.no_grad(), warnings.catch_warnings():
            # Recent PyTorch marks TorchScript deprecated; it still loads everywhere, C++ too.
            warnings.simplefilter("ignore", FutureWarning)
            traced = torch.jit.trace(model, example)
            with atomic_output(out_path) as tmp:
                torch.jit.save(traced, str(tmp), _extra_files={METADATA_KEY: json.dumps(meta)})
        snippet = torchscript_snippet(out_path.name, meta)
    else:
        _export_onnx(model, example, out_path, meta)
        snippet = onnx_snippet(out_path.name, meta)
    usage = out_path.with_name(out_path.name + ".usage.py")
    atomic_write_text(usage, snippet)
    return out_path, usage


def _export_onnx(model, example, out_path: Path, meta: dict) -> None:
    try:
        import onnx
    except ImportError as e:
        raise RuntimeError("ONNX export needs the onnx package: pip install 'tlgui[onnx]'") from e
    with atomic_output(out_path) as tmp, warnings.catch_warnings():
        # The TorchScript-based exporter (the one that needs no extra compiler) warns that a
        # newer one exists.
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(model, (example,), str(tmp), input_names=["pixels"],
                          output_names=["probabilities"],
                          dynamic_axes={"pixels": {0: "batch"}, "probabilities": {0: "batch"}},
                          dynamo=False)
        proto = onnx.load(str(tmp))
        entry = proto.metadata_props.add()
        entry.key, entry.value = METADATA_KEY, json.dumps(meta)
        onnx.save(proto, str(tmp))


def read_metadata(path) -> dict:
    """The class names and preprocessing stored in an exported file."""
    path = str(path)
    if path.endswith(".onnx"):
        import onnx

        props = {p.key: p.value for p in onnx.load(path).metadata_props}
        return json.loads(props[METADATA_KEY])
    files = {METADATA_KEY: ""}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        torch.jit.load(path, map_location="cpu", _extra_files=files)
    return json.loads(files[METADATA_KEY])


_LOAD = '''

def load(path, resize={resize}, size={size}):
    """Resize the short side to `resize`, centre-crop `size` x `size`, pixels in [0, 1]."""
    image = Image.open(path).convert("RGB")
    w, h = image.size  # the short side becomes `resize`, as torchvision's Resize does it
    size_wh = (resize, int(resize * h / w)) if w <= h else (int(resize * w / h), resize)
    image = image.resize(size_wh, Image.{interpolation})
    w, h = image.size
    left, top = round((w - size) / 2), round((h - size) / 2)  # as torchvision's CenterCrop
    image = image.crop((left, top, left + size, top + size))
    return (np.asarray(image, dtype=np.float32) / 255).transpose(2, 0, 1)[None]

'''


def _snippet(file_name: str, meta: dict, runtime: str, body: str) -> str:
    """A script that classifies the images named on its command line with ``file_name``."""
    stdlib = sorted(["json", "sys"] + (["warnings"] if runtime == "torch" else []))
    third_party = ["import numpy as np", f"import {runtime}", "from PIL import Image"]
    return (f'"""Classify images with {file_name}, exported by tlgui.\n\n'
            f"Needs {runtime}, pillow and numpy. Run: python {file_name}.usage.py IMAGE...\n"
            '"""\n'
            + "".join(f"import {name}\n" for name in stdlib)
            + "from pathlib import Path\n\n"
            + "".join(f"{line}\n" for line in third_party)
            + "\nHERE = Path(__file__).parent\n"
            + _LOAD.format(resize=meta["resize_size"], size=meta["input_size"],
                           interpolation=meta["interpolation"].upper())
            + body
            + '''for path in sys.argv[1:]:
    probabilities = predict(load(path))[0]
    best = int(probabilities.argmax())
    print(f"{classes[best]}\\t{float(probabilities[best]):.3f}\\t{path}")
''')


def torchscript_snippet(file_name: str, meta: dict) -> str:
    return _snippet(file_name, meta, "torch", f'''
warnings.simplefilter("ignore", FutureWarning)  # TorchScript is marked deprecated, still works
extra = {{"{METADATA_KEY}": ""}}
model = torch.jit.load(str(HERE / "{file_name}"), map_location="cpu", _extra_files=extra)
classes = json.loads(extra["{METADATA_KEY}"])["classes"]


def predict(pixels):
    with torch.no_grad():
        return model(torch.from_numpy(pixels)).numpy()


''')


def onnx_snippet(file_name: str, meta: dict) -> str:
    return _snippet(file_name, meta, "onnxruntime", f'''
session = onnxruntime.InferenceSession(str(HERE / "{file_name}"))
classes = json.loads(session.get_modelmeta().custom_metadata_map["{METADATA_KEY}"])["classes"]


def predict(pixels):
    return session.run(None, {{"pixels": pixels}})[0]


''')


def default_name(checkpoint_path, fmt: str) -> str:
    run = Path(checkpoint_path).parent.name
    return f"{run}.{'pt' if fmt == 'torchscript' else 'onnx'}"

