"""The Look inside step, driven as a user would (offscreen)."""

import numpy as np
from PIL import Image

from tlgui.core.sample import ensure_sample_data
from tlgui.gui.inspect_pane import percent


def wait_idle(qtbot, pane, timeout=60_000):
    qtbot.wait(50)
    qtbot.waitUntil(lambda: not pane.worker.is_running(), timeout=timeout)


def has_picture(view):
    return view.pixmap() is not None and not view.pixmap().isNull()


def test_every_view_of_the_pretrained_backbone(make_window, qtbot, tmp_path):
    window = make_window()
    window.model_pane.select_backbone("resnet18")
    pane = window.inspect_pane
    assert pane.source.currentText() == "Pretrained: resnet18 (random weights)"
    assert "not cached" in pane.source_note.text()
    photo = tmp_path / "photo.png"
    Image.open(next((ensure_sample_data() / "star").glob("*.jpg"))).resize((200, 160)).save(photo)
    window.go_to(3)
    pane.set_image(str(photo))
    wait_idle(qtbot, pane)
    qtbot.waitUntil(lambda: pane.maps is not None, timeout=30_000)
    assert pane.layer_list.count() == 7 and "layer1" in pane.layer_list.item(3).text()
    assert pane.predictions.rowCount() == 5
    assert has_picture(pane.input_view) and has_picture(pane.grid_view)

    pane.layer_list.setCurrentRow(4)  # layer2
    wait_idle(qtbot, pane)
    assert pane.maps.layer == "layer2"
    pane.grid_view.channel_clicked.emit(2)
    assert "channel" in pane.feature_caption.text() and "#3" in pane.feature_caption.text()
    assert has_picture(pane.channel_view)
    pane.next_layer.click()
    wait_idle(qtbot, pane)
    assert pane.maps.layer == "layer3"

    pane.tabs.setCurrentIndex(1)
    pane.cam_button.click()
    wait_idle(qtbot, pane)
    assert has_picture(pane.cam_view) and "Where the model looked" in pane.cam_caption.text()

    pane.tabs.setCurrentIndex(2)
    pane.ideal_class.setCurrentText("goldfish")
    pane.ideal_steps.setValue(10)
    pane.ideal_button.click()
    wait_idle(qtbot, pane)
    assert has_picture(pane.ideal_view) and has_picture(pane.ideal_plain_view)
    assert "goldfish" in pane.ideal_caption.text() and "without TV" in pane.ideal_caption.text()
    _, result, plain = pane.shown["ideal"]
    for run in (result, plain):  # the caption gives each run's own figures
        assert (f"{run.start_score:.2f} → {run.score:.2f} (probability "
                f"{percent(run.probability)})") in pane.ideal_caption.text()
    assert result.score >= result.start_score and plain.score >= plain.start_score

    pane.tabs.setCurrentIndex(3)
    pane.adv_target.setCurrentText("tabby")
    pane.adv_steps.setValue(3)
    pane.adv_button.click()
    wait_idle(qtbot, pane)
    assert all(has_picture(v) for v in pane.adv_views)
    assert "Before:" in pane.adv_caption.text() and "tabby" in pane.adv_caption.text()
    _, adversarial = pane.shown["adversarial"]
    change = np.abs(adversarial.adversarial.astype(int) - adversarial.original.astype(int))
    assert change.max() == adversarial.max_change <= 8  # the default bound, 8 levels
    assert f"largest change of a pixel is {adversarial.max_change} of 255 levels" in (
        pane.adv_caption.text())


def test_a_fine_tuned_model_is_offered_after_training(make_window, train_tiny, qtbot, tmp_path):
    window = make_window()
    train_tiny(window, ensure_sample_data(tmp_path / "shapes", images_per_class=8), epochs=1)
    pane = window.inspect_pane
    labels = [pane.source.itemText(i) for i in range(pane.source.count())]
    assert any(label.startswith("Fine-tuned: with_dropout") for label in labels)
    assert any(label.startswith("Fine-tuned: without_dropout") for label in labels)
    window.go_to(3)
    assert pane.source.currentText().startswith("Fine-tuned")
    pane._pick_from_dataset()
    wait_idle(qtbot, pane)
    assert [pane.ideal_class.itemText(i) for i in range(pane.ideal_class.count())] == [
        "circle", "square", "star", "triangle"]
    assert pane.predictions.rowCount() == 4
    assert pane.layer_list.item(0).text().startswith("stem")


def test_probabilities_never_round_to_certainty():
    """A probability just short of 1 (or just above 0) must not read as certain."""
    assert [percent(p) for p in (1.0, 0.99996, 0.997, 0.87, 0.042, 0.0013, 1e-7, 0.0)] == [
        "100%", ">99.9%", "99.7%", "87%", "4.2%", "0.13%", "<0.01%", "0%"]
