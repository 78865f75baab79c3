"""Taking a trained model away: an ExportedProgram (``torch.export``, the exporter PyTorch
recommends), TorchScript or ONNX file that carries its class names and preprocessing, with a
usage snippet written beside it; and the check that the file, loaded back as a user would
load it, answers as the app does.

Every exported model takes a batch of RGB images already resized and centre-cropped to the
input size, as float pixels in [0, 1] with shape (N, 3, S, S), and return class
probabilities (N, classes): normalisation is inside the model.
"""

from __future__ import annotations

import contextlib
import inspect
import io
import json
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from .errors import UserError, one_line
from .images import to_rgb
from .models import load_trained
from .paths import atomic_output
from .preprocess import Preprocessing

FORMATS = ("exported", "torchscript", "onnx")
#: Each format's file name extension, and what the window calls it.
EXTENSIONS = {"exported": "pt2", "torchscript": "pt", "onnx": "onnx"}
FORMAT_NAMES = {"exported": "ExportedProgram", "torchscript": "TorchScript", "onnx": "ONNX"}
METADATA_KEY = "tlgui.json"


class Probabilities(nn.Module):
    """Pixels in [0, 1] -> normalised -> the network -> logits ÷ temperature -> softmax: the
    calibrated probabilities (see tlgui.core.calibration)."""

    def __init__(self, net: nn.Module, mean, std, temperature: float = 1.0):
        super().__init__()
        self.net = net
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1))
        self.register_buffer("temperature", torch.tensor(float(temperature)))

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.net((pixels - self.mean) / self.std) / self.temperature,
                             dim=1)


def metadata(checkpoint: dict) -> dict:
    """What an exported file carries about itself: class names, preprocessing, input/output."""
    p = Preprocessing.from_dict(checkpoint["preprocessing"])
    calibration = checkpoint.get("calibration") or {}
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
        # The probabilities are calibrated: the logits are divided by this first.
        "temperature": float(calibration.get("temperature", 1.0)),
        # A top probability below this is "not sure" (0: every answer stands).
        "not_sure_below": float(calibration.get("threshold", 0.0)),
    }


def export(checkpoint_path, out_path, fmt: str) -> tuple[Path, Path]:
    """Export ``checkpoint_path`` (a tlgui best.pt) to ``out_path`` in ``fmt``.

    Returns the model file and the usage snippet written beside it (``<file>.usage.py``).
    The folder must exist (a mistyped path creates nothing). Both files are complete or not
    written at all: on a full disk the previous files stay as they were.
    """
    if fmt not in FORMATS:
        raise ValueError(f"unknown format '{fmt}'; choose one of {', '.join(FORMATS)}")
    out_path = Path(out_path)
    if out_path.is_dir():
        raise UserError(f"{out_path}: is a folder; give the file to write, for example "
                        f"{out_path / default_name(checkpoint_path, fmt)}")
    if not out_path.parent.is_dir():
        raise UserError(f"{out_path.parent}: no such folder (create it first, or export "
                        f"somewhere else)")
    if fmt == "onnx":
        _require_onnx()  # before any work
    net, checkpoint = load_trained(checkpoint_path)
    meta = metadata(checkpoint)
    model = Probabilities(net, meta["mean"], meta["std"], meta["temperature"]).eval()
    example = torch.rand(1, 3, meta["input_size"], meta["input_size"])
    # The model is serialised in memory and written by Python: torch's own file writer can
    # abort the whole process when the disk fills up.
    if fmt == "exported":
        data = _exported_program_bytes(model, example, meta)
        snippet = exported_program_snippet(out_path.name, meta)
    elif fmt == "torchscript":
        data = _torchscript_bytes(model, example, meta)
        snippet = torchscript_snippet(out_path.name, meta)
    else:
        data = _onnx_bytes(model, example, meta)
        snippet = onnx_snippet(out_path.name, meta)
    usage = out_path.with_name(out_path.name + ".usage.py")
    # Both files are written in full before either replaces its old version, so a failure
    # (a full disk) leaves the previous model and usage script together, as they were.
    try:
        with atomic_output(out_path) as model_tmp:
            _write_synced(model_tmp, data)
            with atomic_output(usage) as usage_tmp:
                _write_synced(usage_tmp, snippet.encode("utf-8"))
    except OSError as e:  # atomic_output names the file that failed
        raise UserError(one_line(e)) from e
    return out_path, usage


def _write_synced(path: Path, data: bytes) -> None:
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def _exported_program_bytes(model, example, meta: dict) -> bytes:
    """The model as an ExportedProgram: its graph traced by ``torch.export`` for any batch
    size, loadable with ``torch.export.load`` (no Python class of tlgui needed)."""
    from torch.export import Dim, export, save

    batch = Dim("batch", min=1, max=65_536)
    # An example batch of two: with one, the exporter would take 1 for a constant.
    pair = torch.cat([example, example])
    with torch.no_grad():
        program = export(model, (pair,), dynamic_shapes={"pixels": {0: batch}})
    buffer = io.BytesIO()
    save(program, buffer, extra_files={METADATA_KEY: json.dumps(meta)})
    return buffer.getvalue()


def _torchscript_bytes(model, example, meta: dict) -> bytes:
    with torch.no_grad(), warnings.catch_warnings():
        # Recent PyTorch marks TorchScript deprecated; it still loads everywhere, C++ too.
        warnings.simplefilter("ignore", FutureWarning)
        traced = torch.jit.trace(model, example)
        buffer = io.BytesIO()
        torch.jit.save(traced, buffer, _extra_files={METADATA_KEY: json.dumps(meta)})
    return buffer.getvalue()


def _require_onnx():
    try:
        import onnx
    except ImportError as e:
        raise UserError("ONNX export needs the onnx package: pip install 'tlgui[onnx]'") from e
    return onnx


@contextlib.contextmanager
def _plain_attention():
    """Attention layers (a vision transformer's) computed step by step: in evaluation mode
    PyTorch fuses them into one kernel the ONNX exporter has no translation for."""
    before = torch.backends.mha.get_fastpath_enabled()
    torch.backends.mha.set_fastpath_enabled(False)
    try:
        yield
    finally:
        torch.backends.mha.set_fastpath_enabled(before)


def _onnx_bytes(model, example, meta: dict) -> bytes:
    onnx = _require_onnx()
    buffer = io.BytesIO()
    with warnings.catch_warnings(), _plain_attention():
        # The TorchScript-based exporter (the one that needs no extra compiler) warns that a
        # newer one exists.
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(model, (example,), buffer, input_names=["pixels"],
                          output_names=["probabilities"],
                          dynamic_axes={"pixels": {0: "batch"}, "probabilities": {0: "batch"}},
                          dynamo=False)
    proto = onnx.load_from_string(buffer.getvalue())
    entry = proto.metadata_props.add()
    entry.key, entry.value = METADATA_KEY, json.dumps(meta)
    return proto.SerializeToString()


def read_metadata(path) -> dict:
    """The class names and preprocessing stored in an exported file.

    Only for files you trust, such as tlgui's own exports: loading TorchScript runs the code
    stored in it."""
    path = str(path)
    if path.endswith(".onnx"):
        import onnx

        props = {p.key: p.value for p in onnx.load(path).metadata_props}
        return json.loads(props[METADATA_KEY])
    files = {METADATA_KEY: ""}
    if path.endswith(".pt2"):
        torch.export.load(path, extra_files=files)
        return json.loads(files[METADATA_KEY])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        torch.jit.load(path, map_location="cpu", _extra_files=files)
    return json.loads(files[METADATA_KEY])


# Opens an image exactly as tlgui's own loader does (tlgui.core.images.load_rgb): JPEG decoded
# at a reduced scale that still covers the resize, EXIF orientation applied, then the very
# to_rgb tlgui uses (its source is copied into the script, which cannot import tlgui): 16-bit
# and float pixels scaled to 8 bits, transparency composited on white, every other mode RGB.
_LOAD = """

def open_rgb(path):
    \"\"\"The image at `path` as upright 8-bit RGB, as tlgui reads it for training.\"\"\"
    with Image.open(path) as image:
        if image.format == "JPEG":  # decode at a reduced scale that still covers RESIZE
            w, h = image.size
            scale = RESIZE / max(1, min(w, h))
            image.draft("RGB", (int(w * scale) + 1, int(h * scale) + 1))
        image = ImageOps.exif_transpose(image)
        image.load()
        return to_rgb(image)


""" + inspect.getsource(to_rgb) + """

def load(path):
    \"\"\"Resize the short side to RESIZE, centre-crop SIZE x SIZE, pixels in [0, 1].\"\"\"
    image = open_rgb(path)
    w, h = image.size  # the short side becomes RESIZE, as torchvision's Resize does it
    size_wh = (RESIZE, int(RESIZE * h / w)) if w <= h else (int(RESIZE * w / h), RESIZE)
    image = image.resize(size_wh, INTERPOLATION)
    w, h = image.size
    left, top = round((w - SIZE) / 2), round((h - SIZE) / 2)  # as torchvision's CenterCrop
    image = image.crop((left, top, left + SIZE, top + SIZE))
    return (np.asarray(image, dtype=np.float32) / 255).transpose(2, 0, 1)[None]

"""


def _snippet(file_name: str, meta: dict, runtime: str, body: str) -> str:
    """A script that classifies the images named on its command line with ``file_name``.

    Every value that comes from the model (sizes, the filter, the file name) is written as a
    Python literal with ``repr()``, so none of it can ever be read as code.
    """
    stdlib = sorted(["json", "sys"] + (["warnings"] if "warnings." in body else []))
    third_party = ["import numpy as np", f"import {runtime}", "from PIL import Image, ImageOps"]
    return ('"""Classify images with the model in MODEL_FILE (beside this script), exported '
            'by tlgui.\n\n'
            f"Needs {runtime}, pillow and numpy. Run it with the images to classify:\n"
            "python THIS_SCRIPT IMAGE...\n"
            "It prints the answer, its probability and the image, a line each. With --json\n"
            "first it prints every class's probability as a JSON line per image; the image\n"
            "- reads their paths from the standard input, one a line. Or import it and call\n"
            "predict(load(path)).\n"
            '"""\n'
            + "".join(f"import {name}\n" for name in stdlib)
            + "from pathlib import Path\n\n"
            + "".join(f"{line}\n" for line in third_party)
            + "\nHERE = Path(__file__).parent\n"
            + f"MODEL_FILE = {str(file_name)!r}\n"
            + f"METADATA_KEY = {METADATA_KEY!r}\n"
            + f"RESIZE, SIZE = {int(meta['resize_size'])!r}, {int(meta['input_size'])!r}\n"
            + f"INTERPOLATION = Image.Resampling[{str(meta['interpolation']).upper()!r}]\n"
            + "# Below this probability the model is right less often than it was asked to be\n"
            + "# on its validation images: its answer is \"not sure\".\n"
            + f"NOT_SURE_BELOW = {float(meta.get('not_sure_below', 0.0))!r}\n"
            + _LOAD
            + body
            + """def main(arguments):
    if "--help" in arguments or "-h" in arguments:
        print(__doc__)
        return 0
    as_json = "--json" in arguments
    paths = [a for a in arguments if a != "--json"]
    if "-" in paths:  # the paths from the standard input, one a line
        paths = [p for p in paths if p != "-"] + [
            line.rstrip("\\n") for line in sys.stdin if line.strip()]
    if not paths:
        sys.exit(f"usage: python {Path(__file__).name} [--json] IMAGE... (or - to read them)")
    classified = 0
    for path in paths:
        try:
            pixels = load(path)
        except Exception as e:  # not an image, unreadable, truncated: say so and go on
            print(f"skipped {path}: {e}", file=sys.stderr)
            continue
        probabilities = predict(pixels)[0]
        best = int(probabilities.argmax())
        p = float(probabilities[best])
        if as_json:
            print(json.dumps({"path": path, "answer": classes[best] if p >= NOT_SURE_BELOW
                              else "not sure", "most_probable": classes[best],
                              "classes": classes, "probabilities": probabilities.tolist()}))
        else:
            answer = classes[best] if p >= NOT_SURE_BELOW else f"not sure ({classes[best]}?)"
            print(f"{answer}\\t{p:.3f}\\t{path}")
        classified += 1
    return 0 if classified else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
""")


def exported_program_snippet(file_name: str, meta: dict) -> str:
    return _snippet(file_name, meta, "torch", """
extra = {METADATA_KEY: ""}
model = torch.export.load(str(HERE / MODEL_FILE), extra_files=extra).module()
classes = json.loads(extra[METADATA_KEY])["classes"]


def predict(pixels):
    with torch.no_grad():
        return model(torch.from_numpy(pixels)).numpy()


""")


def torchscript_snippet(file_name: str, meta: dict) -> str:
    return _snippet(file_name, meta, "torch", """
warnings.simplefilter("ignore", FutureWarning)  # TorchScript is marked deprecated, still works
extra = {METADATA_KEY: ""}
model = torch.jit.load(str(HERE / MODEL_FILE), map_location="cpu", _extra_files=extra)
classes = json.loads(extra[METADATA_KEY])["classes"]


def predict(pixels):
    with torch.no_grad():
        return model(torch.from_numpy(pixels)).numpy()


""")


def onnx_snippet(file_name: str, meta: dict) -> str:
    return _snippet(file_name, meta, "onnxruntime", """
session = onnxruntime.InferenceSession(str(HERE / MODEL_FILE))
classes = json.loads(session.get_modelmeta().custom_metadata_map[METADATA_KEY])["classes"]


def predict(pixels):
    return session.run(None, {"pixels": pixels})[0]


""")


def default_name(checkpoint_path, fmt: str) -> str:
    """The exported file's name: the run's (the checkpoint's folder's), never a hidden file.

    The path is resolved first: ``best.pt`` given alone lies in a folder with a name too."""
    run = Path(checkpoint_path).resolve().parent.name or "model"
    return f"{run}.{EXTENSIONS[fmt]}"



# -- the check: the exported file, loaded back as a user would, against the app --------------
#: At most this many of the run's validation images are classified by both.
CHECK_IMAGES = 200
#: Probabilities further apart than this are a broken export (float32 rounding differs by
#: about a millionth; a wrong resize or normalisation by hundredths).
CHECK_TOLERANCE = 1e-3
#: Top classes closer than this in the app may swap places by rounding alone.
TIE_MARGIN = 1e-4


class ExportMismatch(UserError):
    """The exported model does not answer as the app's does."""


@dataclass(frozen=True)
class ExportCheck:
    """What the check of an exported file found."""

    runtime: str  #: what loaded it back ("onnxruntime", "torch.export.load", …)
    images: int  #: images both classified
    same_answer: int  #: of them, those given the same top class by both
    largest_difference: float  #: the largest difference between any class's probabilities
    first_difference: str = ""  #: the first image answered differently, in words

    @property
    def agrees(self) -> bool:
        return self.same_answer == self.images and self.largest_difference <= CHECK_TOLERANCE

    def text(self) -> str:
        return (f"Checked: loaded back with {self.runtime} and run through the usage script on "
                f"{self.images} validation images, it gives the same top class as tlgui on "
                f"{self.same_answer} of {self.images}; the largest probability difference is "
                f"{self.largest_difference:.2g}.")


RUNTIMES = {"exported": "torch.export.load", "torchscript": "torch.jit.load",
            "onnx": "onnxruntime"}


def check_images(checkpoint, limit: int = CHECK_IMAGES, progress=None, cancel=None
                 ) -> list[str]:
    """Up to ``limit`` of the validation images of the run ``checkpoint`` belongs to, spread
    over all of them (its test folder's when it has no validation images). Raises
    ``ValueError`` or ``OSError`` when its run folder or images cannot be read."""
    from .evaluation import run_data

    _, val, test = run_data(Path(checkpoint).parent.parent, progress=progress, cancel=cancel)
    items = val or test or []
    if not items:
        raise ValueError("the run has neither validation nor test images")
    if len(items) > limit:
        items = [items[i * len(items) // limit] for i in range(limit)]
    return [it.path for it in items]


def check_export(model_file, usage_file, checkpoint, images: list[str], cancel=None,
                 timeout: float = 600.0, fmt: str | None = None) -> ExportCheck:
    """Classify ``images`` with the exported ``model_file`` through its usage script, run as a
    user runs it (``python USAGE --json -``, in a process of its own), and with the app's
    model from ``checkpoint``; compare. Raises :class:`ExportMismatch` with one line when
    they disagree."""
    import subprocess
    import sys
    import time

    import numpy as np

    from .control import Cancelled
    from .evaluation import predict_paths

    model_file, usage_file = Path(model_file).resolve(), Path(usage_file).resolve()
    if fmt is None:  # from the file's ending, where it is a format's own
        fmt = next((f for f, ext in EXTENSIONS.items() if model_file.suffix == f".{ext}"),
                   "torchscript")
    net, ckpt = load_trained(checkpoint)
    temperature = float((ckpt.get("calibration") or {}).get("temperature", 1.0))
    kept, app, _ = predict_paths(net, Preprocessing.from_dict(ckpt["preprocessing"]), images,
                                 workers=0, amp=False, cancel=cancel, temperature=temperature)
    if not kept:
        raise UserError(f"{model_file}: no image to check the export on")
    process = subprocess.Popen([sys.executable, str(usage_file), "--json", "-"],
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, cwd=usage_file.parent)
    given, started = "\n".join(kept) + "\n", time.monotonic()
    while True:
        try:
            out, err = process.communicate(given, timeout=0.5)
            break
        except subprocess.TimeoutExpired:
            given = None  # sent already; asking again keeps what was read
            if (cancel is not None and cancel.is_set()) or time.monotonic() - started > timeout:
                process.kill()
                process.communicate()
                if cancel is not None and cancel.is_set():
                    raise Cancelled("cancelled") from None
                raise ExportMismatch(f"{usage_file}: classified nothing within "
                                     f"{timeout:.0f} s") from None
    answers = {}
    for line in out.splitlines():
        try:
            record = json.loads(line)
            answers[record["path"]] = np.asarray(record["probabilities"], dtype=np.float64)
        except (ValueError, KeyError, TypeError):
            continue
    missing = [p for p in kept if p not in answers]
    if process.returncode not in (0, None) and len(missing) == len(kept):
        last = (err.strip().splitlines() or ["no message"])[-1]
        raise ExportMismatch(f"{usage_file}: failed ({last})")
    if missing:
        raise ExportMismatch(f"{usage_file}: gave no answer for {len(missing)} of {len(kept)} "
                             f"images (the first: {missing[0]})")
    classes = ckpt["classes"]
    same, largest, first = 0, 0.0, ""
    for path, ours in zip(kept, app):
        theirs = answers[path]
        if theirs.shape != ours.shape:
            raise ExportMismatch(f"{model_file}: gives {theirs.size} probabilities, the model "
                                 f"has {ours.size} classes")
        largest = max(largest, float(np.abs(theirs - ours).max()))
        top = np.sort(ours)[-2:] if ours.size > 1 else ours
        tie = ours.size > 1 and top[1] - top[0] < TIE_MARGIN
        if int(theirs.argmax()) == int(ours.argmax()) or tie:
            same += 1
        elif not first:
            first = (f"{path}: tlgui says {classes[int(ours.argmax())]} "
                     f"({ours.max():.1%}), the export {classes[int(theirs.argmax())]} "
                     f"({theirs.max():.1%})")
    result = ExportCheck(RUNTIMES[fmt], len(kept), same, largest, first)
    if not result.agrees:
        where = f"; first: {first}" if first else ""
        raise ExportMismatch(
            f"{model_file}: the exported model does not answer as tlgui does (the same top "
            f"class on {same} of {len(kept)} images, probabilities up to {largest:.2g} "
            f"apart{where}): do not use it")
    return result
