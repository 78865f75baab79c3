"""The Train step's controls cannot reach a value the trainer refuses."""

from tlgui.core.images import MIN_IMAGE_SIZE
from tlgui.gui.training_pane import ImageSizeBox, TrainingPane


def test_image_size_steps_from_the_default_to_the_smallest_size_that_trains(qtbot):
    box = ImageSizeBox()
    qtbot.addWidget(box)
    assert box.value() == 0 and box.text() == "0"  # 0 means the backbone's own size
    box.stepUp()
    assert box.value() == MIN_IMAGE_SIZE == 32
    box.stepUp()
    assert box.value() == 48
    box.stepDown()
    box.stepDown()
    assert box.value() == 0
    box.stepBy(3)
    assert box.value() == 64


def test_batch_size_cannot_go_below_two(qtbot):
    pane = TrainingPane()
    qtbot.addWidget(pane)
    pane.batch_size.setValue(1)
    assert pane.batch_size.value() == 2
