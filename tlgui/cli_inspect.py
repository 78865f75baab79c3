"""``tlgui inspect``: look inside a network from the command line; each view writes a PNG."""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np
from PIL import Image, ImageDraw

from .cli import float_range, input_size, non_negative_float, positive_int, seed_int

VIEWS = ("layers", "features", "predict", "gradcam", "ideal", "adversarial", "map")


def add_parser(sub) -> None:
    p = sub.add_parser("inspect", help="feature maps, predictions, Grad-CAM, ideal and "
                                       "adversarial images (PNG files)")
    views = p.add_subparsers(dest="view", metavar="VIEW", required=True)

    def model_args(v: argparse.ArgumentParser) -> None:
        v.add_argument("--model", default="vgg16", help="a backbone as ImageNet has it")
        v.add_argument("--weights", default="imagenet", choices=("imagenet", "none"),
                       help="ImageNet weights, or random ones (to compare)")
        v.add_argument("--checkpoint", metavar="BEST_PT",
                       help="a model fine-tuned by tlgui: a best.pt, its run's folder, or the "
                            "training's folder (then its run with the best validation accuracy)")
        v.add_argument("--no-download", action="store_true",
                       help="never download weights; fail if they are not cached")

    v = views.add_parser("layers", help="list the layers with their output shapes")
    model_args(v)
    v = views.add_parser("features", help="a layer's feature maps for an image")
    model_args(v)
    v.add_argument("image")
    v.add_argument("--layer", help="layer name (see 'tlgui inspect layers'); default: a middle one")
    v.add_argument("--channels", type=positive_int, default=36, help="how many channels to show")
    v.add_argument("--out", required=True, metavar="PNG", type=image_file_name)
    v = views.add_parser("predict", help="top predictions for images")
    model_args(v)
    v.add_argument("images", nargs="+")
    v.add_argument("--top", type=positive_int, default=5)
    v = views.add_parser("gradcam", help="where the model looked for a class")
    model_args(v)
    v.add_argument("image")
    v.add_argument("--class", dest="cls", help="class name or index (default: the predicted)")
    v.add_argument("--out", required=True, metavar="PNG", type=image_file_name)
    v = views.add_parser("ideal", help="the image a class's score likes best")
    model_args(v)
    v.add_argument("--class", dest="cls", required=True, help="class name or index")
    v.add_argument("--steps", type=positive_int, default=200)
    v.add_argument("--tv", type=non_negative_float, default=0.5,
                   help="total-variation weight (0: off)")
    v.add_argument("--size", type=input_size, help="image size in pixels (default: the model's)")
    v.add_argument("--seed", type=seed_int, default=0)
    v.add_argument("--out", required=True, metavar="PNG", type=image_file_name)
    v = views.add_parser("adversarial", help="nudge an image until the model sees a target")
    model_args(v)
    v.add_argument("image")
    v.add_argument("--target", required=True, help="target class name or index")
    v.add_argument("--epsilon", type=float_range(0, 255, low_open=True), default=8.0,
                   help="largest change of a pixel, in 0–255 levels (default 8; the image "
                        "is judged as saved, so a fraction of a level is dropped)")
    v.add_argument("--steps", type=positive_int, default=100)
    v.add_argument("--out", required=True, metavar="PNG", type=image_file_name)
    v = views.add_parser("map", help="the images as points placed by their features, coloured "
                                     "by class; with --after, beside a fine-tuned model's map")
    v.add_argument("data", nargs="+", metavar="DATA", help="image folders, as for 'tlgui scan'")
    v.add_argument("--model", default="resnet18", help="backbone (default resnet18)")
    v.add_argument("--weights", default="imagenet", metavar="imagenet|none|FILE")
    v.add_argument("--after", metavar="BEST_PT",
                   help="a model fine-tuned by tlgui: its map is drawn beside the backbone's")
    v.add_argument("--method", default="tsne", choices=("pca", "tsne"),
                   help="PCA (at once) or t-SNE (clearer; default)")
    v.add_argument("--image-size", type=input_size, metavar="PX",
                   help="network input size (default: the weights' own)")
    v.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps")
    v.add_argument("--seed", type=seed_int, default=0)
    v.add_argument("--no-download", action="store_true",
                   help="never download weights; fail if they are not cached")
    v.add_argument("--out", required=True, metavar="PNG", type=image_file_name)


def load_model(args):
    from .core.evaluation import find_checkpoint
    from .core.inspection import fine_tuned, pretrained
    from .core.registry import backbone_info

    if args.checkpoint:
        return fine_tuned(find_checkpoint(args.checkpoint))
    backbone_info(args.model)  # an unknown name: one line listing the backbones

    def progress(done, total):
        print(f"\rdownloading {args.model}: {done >> 20}/{total >> 20} MB", end="",
              file=sys.stderr, flush=True)

    return pretrained(args.model, args.weights, allow_download=not args.no_download,
                      progress=progress)


def run(args) -> int:
    from .core import feature_maps as fm
    from .core.inspection import format_probability as pct

    if args.view == "map":
        return draw_data_map(args)
    model = load_model(args)
    if args.view == "layers":
        for layer in fm.describe_layers(model):
            c, h, w = layer.shape
            print(f"{layer.name:<10} {layer.kind:<6} {c:>5} × {h:>3} × {w:>3}")
        return 0
    if args.view == "predict":
        for path in args.images:
            x = model.load_image(path)
            print(path)
            for name, p in model.top_predictions(x, args.top):
                print(f"  {pct(p):>6}  {name}")
        return 0
    if args.view == "features":
        x = model.load_image(args.image)
        layer = args.layer or model.stages[len(model.stages) // 2][0]
        maps = fm.feature_maps(model, x, layer)
        grid = maps.grid(args.channels, cell=72)
        shown = min(args.channels, len(maps.maps))
        image = _side_by_side(
            [_fit(model_image(x), grid.shape[0]), grid],
            [model.title, f"{layer}: {len(maps.maps)} channels, strongest {shown}"])
    elif args.view == "gradcam":
        from .core.gradcam import describe, gradcam, overlay

        x = model.load_image(args.image)
        cls = model.class_index(args.cls) if args.cls is not None else None
        heat, index, p = gradcam(model, x, cls)
        original = model_image(x)
        predicted, predicted_p = model.top_predictions(x, 1)[0]
        print(f"Grad-CAM of {model.classes[index]}: probability {pct(p)} "
              f"(predicted: {predicted} {pct(predicted_p)})")
        caption = f"Grad-CAM: {model.classes[index]} ({pct(p)})"
        if not heat.any():  # one flat colour would look like an answer
            print(describe(heat, model.classes[index], p))
            caption += ", nothing raised its score"
        image = _side_by_side([original, overlay(original, heat)], ["input", caption])
    elif args.view == "ideal":
        from .core.class_images import ideal_image

        index = model.class_index(args.cls)
        name = model.classes[index]
        runs = [(f"TV weight {args.tv:g}", name, args.tv)]
        if args.tv > 0:  # beside it, the same ascent without TV: why the term is there
            runs.append(("without TV", f"{name} without TV", 0.0))
        images, captions = [], []
        for caption, label, tv in runs:
            result = ideal_image(model, index, steps=args.steps, tv_weight=tv,
                                 size=args.size, seed=args.seed)
            print(f"{label}: score {result.start_score:.2f} -> {result.score:.2f}, "
                  f"probability {pct(result.probability)}")
            images.append(_fit(result.image, 320))
            captions.append(f"{name}, {caption}: score {result.start_score:.1f} -> "
                            f"{result.score:.1f}, p {pct(result.probability)}")
        image = _side_by_side(images, captions)
    else:  # adversarial
        from .core.adversarial import adversarial

        x = model.load_image(args.image)
        target = model.class_index(args.target)
        result = adversarial(model, x, target, epsilon=args.epsilon / 255,
                             max_steps=args.steps)
        (before, p_before), (after, p_after) = result.before[0], result.after[0]
        outcome = "reached" if result.success else "not reached"
        print(f"before: {before} {pct(p_before)}")
        print(f"after: {after} {pct(p_after)} ({model.classes[target]} {outcome} in "
              f"{result.steps} steps; largest pixel change {result.max_change} of 255 levels)")
        image = _side_by_side(
            [result.original, result.perturbation, result.adversarial],
            [f"original: {before} ({pct(p_before)})",
             f"change x{result.amplification:.0f} (max {result.max_change} of 255)",
             f"{'adversarial' if result.success else 'not reached'}: "
             f"{after} ({pct(p_after)}), {result.steps} steps"])
    save_image(image, args.out)
    print(args.out)
    return 0


def image_file_name(text: str) -> str:
    """An argparse type: a file name whose extension names an image format Pillow writes."""
    if _image_format(text) is None:
        raise argparse.ArgumentTypeError(
            f"'{text}' is not an image file name (end it in .png or .jpg)")
    return text


def _image_format(path: str) -> str | None:
    Image.init()
    extension = os.path.splitext(path)[1].lower()
    fmt = Image.registered_extensions().get(extension)
    return fmt if fmt in Image.SAVE else None


def save_image(image: np.ndarray, path: str) -> None:
    """Write ``image`` to ``path`` through a temporary file: a full disk leaves no partial
    file, and an older file of that name stays as it was."""
    from .core.errors import UserError, one_line
    from .core.paths import atomic_output

    try:
        with atomic_output(path) as tmp:
            Image.fromarray(image).save(tmp, format=_image_format(path))
    except OSError as e:
        raise UserError(one_line(e, path)) from e


def model_image(x) -> np.ndarray:
    from .core.inspection import to_uint8

    return to_uint8(x)


def _fit(image: np.ndarray, height: int) -> np.ndarray:
    h, w = image.shape[:2]
    size = (max(1, round(w * height / h)), height)
    return np.asarray(Image.fromarray(image).resize(size, Image.NEAREST if h < height // 2
                                                    else Image.BILINEAR))


#: Characters the captions' built-in font has no glyph for (it would draw a box), and the
#: plain text that stands in for each.
PLAIN_STAND_INS = {"→": "->", "×": "x", "–": "-", "—": "-", "−": "-", "…": "..."}


def caption_font():
    """Pillow's built-in TrueType font (Aileron), the same on every machine."""
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=13)
    except TypeError:  # Pillow before 10.1: the bitmap font, which has ASCII only
        return ImageFont.load_default()


def caption_text(text: str) -> str:
    """``text`` with every symbol the caption font lacks replaced by plain text."""
    for symbol, plain in PLAIN_STAND_INS.items():
        text = text.replace(symbol, plain)
    return text


def _side_by_side(images: list[np.ndarray], captions: list[str]) -> np.ndarray:
    """Images in a row, each with a caption above it, on white; a column is as wide as its
    image or its caption, whichever is wider."""
    gap, caption_height = 12, 22
    font = caption_font()
    captions = [caption_text(c) for c in captions]
    widths = [max(i.shape[1], int(font.getlength(c)) + 1) for i, c in zip(images, captions)]
    height = max(i.shape[0] for i in images)
    width = sum(widths) + gap * (len(images) + 1)
    canvas = Image.new("RGB", (width, height + caption_height + 2 * gap), "white")
    draw = ImageDraw.Draw(canvas)
    x = gap
    for image, caption, column in zip(images, captions, widths):
        draw.text((x, gap // 2), caption, fill=(30, 30, 30), font=font)
        canvas.paste(Image.fromarray(image), (x + (column - image.shape[1]) // 2,
                                              gap + caption_height))
        x += column + gap
    return np.asarray(canvas)


def draw_data_map(args) -> int:
    """``tlgui inspect map``: the map of the data, and of a fine-tuned model's view of it."""
    from .core.data import scan
    from .core.data_map import data_maps, draw_map
    from .core.evaluation import find_checkpoint
    from .core.paths import atomic_output

    report = scan(args.data)
    checkpoint = str(find_checkpoint(args.after)) if args.after else None
    titles = (f"{args.model} ({args.weights} weights)",
              f"fine-tuned: {os.path.basename(os.path.dirname(checkpoint))}"
              if checkpoint else "")
    maps = data_maps([it.path for it in report.items],
                     np.array([it.label for it in report.items]), report.classes, args.model,
                     args.weights, args.image_size, args.method, checkpoint=checkpoint,
                     titles=titles, device=args.device, seed=args.seed,
                     allow_download=not args.no_download)
    wrong = {maps[-1].paths[i] for i in maps[-1].mistakes}
    images = []
    for one in maps:
        line = (f"{one.title}: {len(one.points):,} images, {args.method}; nearest neighbour on "
                f"the map of the same class for {one.separation * 100:.0f} %"
                if one.separation is not None else f"{one.title}: {len(one.points):,} images")
        if checkpoint:
            line += f"; x: the fine-tuned model's {len(wrong):,} mistakes"
        print(line)
        crossed = [i for i, p in enumerate(one.paths) if p in wrong]
        images.append(draw_map(one.points, one.labels, report.classes, line, crossed=crossed))
    width = sum(i.width for i in images)
    sheet = Image.new("RGB", (width, max(i.height for i in images)), "white")
    x = 0
    for part in images:
        sheet.paste(part, (x, 0))
        x += part.width
    with atomic_output(args.out, suffix=".png") as tmp:
        sheet.save(tmp, "PNG")
    print(f"wrote {args.out}")
    return 0
