"""The decision chart and the layout of frozen and trainable blocks."""

import pytest

from tlgui.core.advice import recommend
from tlgui.core.models import ModelSpec, block_layout


@pytest.mark.parametrize(
    "images, similar, strategy",
    [(200, True, "frozen"), (20_000, True, "partial"), (200, False, "partial"),
     (20_000, False, "full")],
)
def test_decision_chart(images, similar, strategy):
    advice = recommend(images, 4, similar)
    assert advice.strategy == strategy
    assert str(images) in advice.reason and advice.reason.endswith(".")


def test_block_layout_counts_match_the_built_model():
    from tlgui.core.models import build_model

    spec = ModelSpec("resnet18", 3, strategy="partial", trainable_blocks=2, hidden=32)
    rows = block_layout(spec)
    assert [r[0] for r in rows] == ["stem", "layer1", "layer2", "layer3", "layer4", "new head"]
    assert [r[2] for r in rows] == [True, True, True, False, False, False]
    trainable, frozen = build_model(spec, "none").parameter_counts()
    assert sum(n for _, n, f in rows if not f) == trainable
    assert sum(n for _, n, f in rows if f) == frozen
