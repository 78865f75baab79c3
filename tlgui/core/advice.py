"""The decision chart: which transfer-learning strategy suits a data set.

Two questions decide it — how much data there is, and how much it looks like the photos the
backbone learnt from (ImageNet: everyday objects, animals and scenes).
"""

from __future__ import annotations

from dataclasses import dataclass

#: Below this many images per class a data set counts as small.
SMALL_PER_CLASS = 300

#: The backbone's learning rate as a share of the head's, by starting weights. Pretrained
#: features are already good: a tenth of the rate adapts them without wiping them out in the
#: first steps, while the new head starts from nothing. Random weights have nothing to
#: protect: every layer has everything to learn, at the full rate.
PRETRAINED_BACKBONE_LR_FACTOR = 0.1
RANDOM_BACKBONE_LR_FACTOR = 1.0


@dataclass(frozen=True)
class Recommendation:
    strategy: str  #: "frozen", "partial" or "full"
    trainable_blocks: int
    augment: bool
    reason: str  #: one sentence a person can read


def default_backbone_lr_factor(weights: str) -> float:
    """The default backbone learning-rate factor for starting ``weights`` ("imagenet",
    "none", or a file: a file holds trained weights, like ImageNet's)."""
    return RANDOM_BACKBONE_LR_FACTOR if weights == "none" else PRETRAINED_BACKBONE_LR_FACTOR


def strategy_warning(strategy: str, weights: str) -> str:
    """One line on what a choice means when it is not what it seems ('' when it is): a frozen
    backbone with random weights learns nothing but a head on random features."""
    if strategy == "frozen" and weights == "none":
        return ("A frozen backbone with random weights: only the new head learns, on the "
                "random features of an untrained network. That is a baseline, not transfer "
                "learning; to train from scratch, train the whole network.")
    return ""


def recommend(images: int, classes: int, similar: bool, weights: str = "imagenet"
              ) -> Recommendation:
    """Recommend a strategy for ``images`` images in ``classes`` classes.

    ``similar``: the images look like everyday photos (ImageNet-like). ``weights``: the
    starting weights ("imagenet", "none" or a file). With random weights ("none") the
    backbone has learnt nothing worth freezing, so the whole network trains, whatever the data.
    """
    per_class = images / max(1, classes)
    small = per_class < SMALL_PER_CLASS
    size = f"{images} images (about {per_class:.0f} a class)"
    if weights == "none":
        if small:
            return Recommendation("full", 0, True, (
                f"With random weights there are no learnt features to keep, so train the whole "
                f"network, with augmentation; {size} are few to learn from scratch, and "
                f"pretrained weights usually do much better on so few."))
        return Recommendation("full", 0, True, (
            f"With random weights there are no learnt features to keep: train the whole "
            f"network on your {size}, with augmentation, at the full learning rate."))
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
