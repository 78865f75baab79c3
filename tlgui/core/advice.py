"""The decision chart: which transfer-learning strategy suits a data set.

Two questions decide it — how much data there is, and how much it looks like the photos the
backbone learnt from (ImageNet: everyday objects, animals and scenes).
"""

from __future__ import annotations

from dataclasses import dataclass

#: Below this many images per class a data set counts as small.
SMALL_PER_CLASS = 300


@dataclass(frozen=True)
class Recommendation:
    strategy: str  #: "frozen", "partial" or "full"
    trainable_blocks: int
    augment: bool
    reason: str  #: one sentence a person can read


def recommend(images: int, classes: int, similar: bool) -> Recommendation:
    """Recommend a strategy for ``images`` images in ``classes`` classes.

    ``similar``: the images look like everyday photos (ImageNet-like).
    """
    per_class = images / max(1, classes)
    small = per_class < SMALL_PER_CLASS
    size = f"{images} images (about {per_class:.0f} a class)"
    if small and similar:
        return Recommendation("frozen", 1, False, (
            f"With {size} that look like everyday photos, freeze the backbone and train only "
            f"the new head: ImageNet's features already describe your images, and so few "
            f"images would over-fit a larger trainable model."))
    if not small and similar:
        return Recommendation("partial", 2, False, (
            f"With {size} that look like everyday photos, fine-tune the last two blocks at a "
            f"low learning rate: there is enough data to adapt the high-level features "
            f"without losing the generic ones."))
    if small and not similar:
        return Recommendation("partial", 1, True, (
            f"With only {size} unlike everyday photos, fine-tune just the last block, with "
            f"augmentation and dropout: the generic early features still help, and strong "
            f"regularisation keeps so few images from being memorised."))
    return Recommendation("full", 0, True, (
        f"With {size} unlike everyday photos, fine-tune the whole network: there is enough "
        f"data to adapt every layer, and ImageNet weights are still a better start than "
        f"random ones."))
