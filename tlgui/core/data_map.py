"""A map of the data: every image as a point in 2-D, placed by its backbone features, coloured
by class. Classes that a backbone already separates are islands on the map; that is why a
new head on frozen features can learn them from few images. Next to the map of the same
images through a fine-tuned model, it shows the classes separating as the network adapts.

PCA gives a map at once; t-SNE (scikit-learn) a clearer one, in seconds to minutes. Both are
deterministic for a seed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

METHODS = ("pca", "tsne")
#: Features are reduced to this many principal components before t-SNE (the usual practice:
#: faster, and the noise of the last components is left out).
TSNE_INPUT_DIMENSIONS = 50
#: Distinct colours for up to 20 classes (Tableau 20); beyond, they repeat.
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
           "#7f7f7f", "#bcbd22", "#17becf", "#aec7e8", "#ffbb78", "#98df8a", "#ff9896",
           "#c5b0d5", "#c49c94", "#f7b6d2", "#c7c7c7", "#dbdb8d", "#9edae5")


def map_coordinates(vectors: np.ndarray, method: str = "pca", seed: int = 0) -> np.ndarray:
    """``(n, 2)`` coordinates of ``vectors`` (one row per image), scaled to [-1, 1] on the
    longer axis and centred."""
    from sklearn.decomposition import PCA

    x = np.asarray(vectors, dtype=np.float64)
    n = len(x)
    if method not in METHODS:
        raise ValueError(f"unknown map method '{method}': choose one of {', '.join(METHODS)}")
    if n == 0:
        return np.zeros((0, 2), np.float32)
    if n < 3:
        return np.zeros((n, 2), np.float32) if n == 1 else np.array([[-1, 0], [1, 0]],
                                                                    np.float32)
    x = x - x.mean(0)
    x /= np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    if method == "pca":
        points = PCA(2, random_state=seed).fit_transform(x)
    else:
        from sklearn.manifold import TSNE

        dims = min(TSNE_INPUT_DIMENSIONS, x.shape[1], n)
        reduced = PCA(dims, random_state=seed).fit_transform(x)
        perplexity = float(min(30.0, max(2.0, (n - 1) / 3)))
        points = TSNE(2, perplexity=perplexity, init="pca", random_state=seed,
                      learning_rate="auto").fit_transform(reduced)
    points = points - points.mean(0)
    scale = np.abs(points).max()
    return (points / scale if scale > 0 else points).astype(np.float32)


def class_separation(points: np.ndarray, labels: np.ndarray) -> float | None:
    """How well the classes separate on a map: the share of points whose nearest other point
    is of their own class (1: islands; 1/classes: mixed). None with fewer than 2 points."""
    if len(points) < 2:
        return None
    d = ((points[:, None, :] - points[None, :, :]) ** 2).sum(-1) if len(points) <= 5000 \
        else None
    if d is None:  # large maps: a sample, in blocks
        rng = np.random.default_rng(0)
        sample = rng.choice(len(points), 5000, replace=False)
        d = ((points[sample, None, :] - points[None, :, :]) ** 2).sum(-1)
        d[np.arange(len(sample)), sample] = np.inf
        return float(np.mean(labels[d.argmin(1)] == labels[sample]))
    np.fill_diagonal(d, np.inf)
    return float(np.mean(labels[d.argmin(1)] == labels))


def model_mistakes(labels: np.ndarray, classes: Sequence[str], model_classes: Sequence[str],
                   predictions: np.ndarray) -> np.ndarray:
    """Positions where a model's prediction (an index into ``model_classes``) names another
    class than the image's label (an index into ``classes``). Classes are matched by name;
    an image of a class the model does not know is no mistake of its."""
    known = {name: k for k, name in enumerate(model_classes)}
    expected = np.array([known.get(classes[int(k)], -1) for k in labels], dtype=np.int64)
    predictions = np.asarray(predictions, dtype=np.int64)
    return np.flatnonzero((expected >= 0) & (predictions != expected))


@dataclass
class DataMap:
    """One map: the images that could be read, their 2-D places and labels."""

    title: str
    points: np.ndarray  #: (n, 2)
    labels: np.ndarray  #: class index per point
    paths: list[str]
    separation: float | None  #: see :func:`class_separation`
    #: Positions of the points a fine-tuned model gets wrong (its map only, else empty).
    mistakes: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))


def data_maps(paths: Sequence[str], labels: np.ndarray, classes: Sequence[str], backbone: str,
              weights: str, image_size: int | None, method: str = "pca", *,
              checkpoint: str | None = None, titles: tuple[str, str] | None = None,
              backbone_map: bool = True, device: str = "auto", seed: int = 0,
              allow_download: bool = False, progress=None, cancel=None) -> list[DataMap]:
    """The map of ``paths`` through ``backbone`` with ``weights`` (unless ``backbone_map`` is
    off), and with ``checkpoint`` (a trained model's ``best.pt``) the map of what that model's
    last layer takes in (its hidden layer, or its features when its head has none): the space
    in which it separates the classes. That map's title gets the checkpoint's epoch, and its
    ``mistakes`` the images the model gets wrong. ``progress(stage, done, total)``."""
    from .features import frozen_backbone, image_features
    from .models import load_trained
    from .preprocess import Preprocessing, preprocessing_for

    labels = np.asarray(labels)
    before, after = titles or (f"{backbone} ({weights} weights)", "fine-tuned")
    sources = []
    if backbone_map:
        sources.append((before, backbone, frozen_backbone(backbone, weights, allow_download,
                                                          seed, cancel),
                        preprocessing_for(backbone, image_size), None))
    if checkpoint:
        model, info = load_trained(checkpoint)
        model.set_frozen_blocks(model.num_blocks)  # its features, then its head on them
        epoch = info.get("epoch")
        if isinstance(epoch, int) and not isinstance(epoch, bool) and epoch >= 0:
            after = f"{after}, epoch {epoch + 1}"
        sources.append((after, info["spec"]["name"], model,
                        Preprocessing.from_dict(info["preprocessing"]), info["classes"]))
    maps = []
    for title, name, model, preprocessing, model_classes in sources:
        report = None if progress is None else (
            lambda d, t, title=title: progress(f"features ({title})", d, t))
        features = image_features(paths, name, device=device, seed=seed, cancel=cancel,
                                  model=model, preprocessing=preprocessing,
                                  classify=model_classes is not None, progress=report)
        if cancel is not None:
            cancel.check()
        if progress is not None:
            progress(f"placing the images ({title})", 0, 0)
        vectors = features.vectors if model_classes is None else features.last_layer_inputs
        points = map_coordinates(vectors, method, seed)
        kept = labels[features.valid]
        shown = [p for p, ok in zip(paths, features.valid) if ok]
        one = DataMap(title, points, kept, shown, class_separation(points, kept))
        if model_classes is not None:
            one.mistakes = model_mistakes(kept, classes, model_classes, features.predictions)
        maps.append(one)
    return maps


def draw_map(points: np.ndarray, labels: np.ndarray, classes: Sequence[str], title: str,
             size: int = 640, marked: Sequence[int] = (), crossed: Sequence[int] = ()):
    """A PIL image of the map: a dot per image in its class's colour, ``marked`` images
    ringed (audit findings), ``crossed`` ones crossed (a model's mistakes), the title and a
    legend."""
    from PIL import Image, ImageDraw

    margin, legend_width = 24, 180
    image = Image.new("RGB", (size + legend_width, size + 40), "white")
    draw = ImageDraw.Draw(image)
    draw.text((margin, 10), title, fill="#222")
    span = size - 2 * margin

    def place(p):
        return (margin + (p[0] + 1) / 2 * span, 40 + (1 - (p[1] + 1) / 2) * span)

    radius = 3 if len(points) < 2000 else 2 if len(points) < 20000 else 1
    for point, label in zip(points, labels):
        x, y = place(point)
        draw.ellipse((x - radius, y - radius, x + radius, y + radius),
                     fill=PALETTE[int(label) % len(PALETTE)])
    for i in marked:
        x, y = place(points[i])
        draw.ellipse((x - 6, y - 6, x + 6, y + 6), outline="#000", width=2)
    for i in crossed:
        x, y = place(points[i])
        draw.line((x - 4, y - 4, x + 4, y + 4), fill="#000", width=2)
        draw.line((x - 4, y + 4, x + 4, y - 4), fill="#000", width=2)
    for k, name in enumerate(classes):
        y = 40 + 18 * k
        if y > size:
            draw.text((size + 8, y), f"… {len(classes) - k} more classes", fill="#444")
            break
        draw.ellipse((size + 8, y + 3, size + 18, y + 13), fill=PALETTE[k % len(PALETTE)])
        draw.text((size + 24, y + 2), str(name)[:22], fill="#222")
    return image
