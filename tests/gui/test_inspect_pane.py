"""The Look inside step, driven as a user would (offscreen)."""

import math
import threading
import time

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QPalette

from tlgui.core.data import ImageItem
from tlgui.core.sample import ensure_sample_data
from tlgui.gui.inspect import InspectPane, percent
from tlgui.gui.inspect.pane import SHUTDOWN_SECONDS
from tlgui.gui.inspect.views import GridView, ImageView, to_pixmap
from tlgui.gui.pane import Pane


def wait_idle(qtbot, pane, timeout=60_000):
    qtbot.waitUntil(lambda: not pane.is_running(), timeout=timeout)


def has_picture(view):
    return view.pixmap() is not None and not view.pixmap().isNull()


@pytest.fixture
def photo(tmp_path):
    path = tmp_path / "photo.png"
    Image.open(next((ensure_sample_data() / "star").glob("*.jpg"))).resize((200, 160)).save(path)
    return str(path)


@pytest.fixture
def pane(qtbot):
    """The pane alone, looking at ResNet-18 with random weights (nothing loads until it is
    shown)."""
    pane = InspectPane()
    qtbot.addWidget(pane)
    pane.set_backbone("resnet18", False)
    pane.resize(1100, 700)
    yield pane
    pane.shutdown()


def test_every_view_of_the_pretrained_backbone(make_window, qtbot, photo):
    window = make_window()
    window.model_pane.select_backbone("resnet18")
    pane = window.inspect_pane
    features, gradcam, ideal, adversarial = (pane.features_tab, pane.gradcam_tab, pane.ideal_tab,
                                             pane.adversarial_tab)
    assert pane.source.currentText() == "Pretrained: resnet18 (random weights)"
    assert "not cached" in pane.source_note.text()
    window.go_to(window.panes.index(pane))
    pane.set_image(photo)
    wait_idle(qtbot, pane)
    assert features.maps is not None
    assert features.layer_list.count() == 7 and "layer1" in features.layer_list.item(3).text()
    assert pane.predictions.rowCount() == 5
    assert has_picture(pane.input_view) and has_picture(features.grid_view)
    assert pane.image_caption.text() == "photo.png"

    features.layer_list.setCurrentRow(4)  # layer2
    wait_idle(qtbot, pane)
    assert features.maps.layer == "layer2"
    features.grid_view.channel_clicked.emit(2)
    assert "channel" in features.caption.text() and "#3" in features.caption.text()
    assert has_picture(features.channel_view)
    features.next_layer.click()
    wait_idle(qtbot, pane)
    assert features.maps.layer == "layer3"

    pane.tabs.setCurrentIndex(1)
    gradcam.button.click()
    wait_idle(qtbot, pane)
    assert has_picture(gradcam.view) and "Where the model looked" in gradcam.caption.text()

    pane.tabs.setCurrentIndex(2)
    ideal.class_combo.setCurrentText("goldfish")
    ideal.steps.setValue(10)
    ideal.button.click()
    wait_idle(qtbot, pane)
    assert has_picture(ideal.view) and has_picture(ideal.plain_view)
    assert "goldfish" in ideal.caption.text() and "without TV" in ideal.caption.text()
    _, result, plain = ideal.result
    for run in (result, plain):  # the caption gives each run's own figures
        assert (f"{run.start_score:.2f} → {run.score:.2f} (probability "
                f"{percent(run.probability)})") in ideal.caption.text()
    assert result.score >= result.start_score and plain.score >= plain.start_score

    pane.tabs.setCurrentIndex(3)
    adversarial.target.setCurrentText("tabby")
    adversarial.steps.setValue(3)
    adversarial.button.click()
    wait_idle(qtbot, pane)
    assert all(has_picture(v) for v in adversarial.views)
    assert "Before:" in adversarial.caption.text() and "tabby" in adversarial.caption.text()
    _, example = adversarial.result
    change = np.abs(example.adversarial.astype(int) - example.original.astype(int))
    assert change.max() == example.max_change <= 8  # the default bound, 8 levels
    assert f"largest change of a pixel is {example.max_change} of 255 levels" in (
        adversarial.caption.text())


def test_a_fine_tuned_model_is_offered_after_training(make_window, train_tiny, qtbot, tmp_path):
    window = make_window()
    train_tiny(window, ensure_sample_data(tmp_path / "shapes", images_per_class=8), epochs=1)
    pane = window.inspect_pane
    labels = [pane.source.itemText(i) for i in range(pane.source.count())]
    assert any(label.startswith("Fine-tuned: with_dropout") for label in labels)
    assert any(label.startswith("Fine-tuned: without_dropout") for label in labels)
    window.go_to(window.panes.index(pane))
    assert pane.source.currentText().startswith("Fine-tuned")
    pane.pick_from_dataset()
    wait_idle(qtbot, pane)
    ideal = pane.ideal_tab.class_combo
    assert [ideal.itemText(i) for i in range(ideal.count())] == [
        "circle", "square", "star", "triangle"]
    assert pane.predictions.rowCount() == 4
    assert pane.features_tab.layer_list.item(0).text().startswith("stem")
    # The picked image is named, with its true class.
    name, true_class = pane.image_caption.text().split(" — true class: ")
    assert name.endswith(".jpg") and true_class in ("circle", "square", "star", "triangle")


def test_grad_cam_asked_for_while_the_model_loads_runs_once_it_has(pane, photo, qtbot):
    pane.show()
    pane.set_image(photo)
    assert pane.loader.is_loading()
    pane.tabs.setCurrentIndex(1)
    pane.gradcam_tab.button.click()
    wait_idle(qtbot, pane)
    assert has_picture(pane.gradcam_tab.view) and pane.gradcam_tab.result is not None
    # ... and what the load was for is not lost: predictions, layers and their maps.
    assert pane.predictions.rowCount() == 5 and has_picture(pane.input_view)
    assert pane.features_tab.layer_list.count() == 7 and pane.features_tab.maps is not None


def test_quick_layer_changes_run_at_most_two_passes(pane, photo, qtbot, monkeypatch):
    pane.show()
    from tlgui.core import feature_maps as module

    pane.set_image(photo)
    wait_idle(qtbot, pane)
    passes = []
    original = module.feature_maps

    def counted(model, x, layer):
        passes.append(layer)
        return original(model, x, layer)

    monkeypatch.setattr(module, "feature_maps", counted)
    for row in range(1, 7):  # six changes within a few milliseconds, ending at layer4
        pane.features_tab.layer_list.setCurrentRow(row)
    wait_idle(qtbot, pane)
    assert 1 <= len(passes) <= 2 and passes[-1] == "layer4"
    assert pane.features_tab.maps.layer == "layer4"


def test_one_tabs_work_is_not_cancelled_by_another(pane, photo, qtbot):
    pane.show()
    pane.set_image(photo)
    wait_idle(qtbot, pane)
    ideal = pane.ideal_tab
    ideal.class_combo.setCurrentText("goldfish")
    ideal.steps.setValue(10)
    ideal.compare.setChecked(False)
    ideal.button.click()
    pane.gradcam_tab.button.click()
    pane.features_tab.layer_list.setCurrentRow(4)
    wait_idle(qtbot, pane)
    assert ideal.result is not None and ideal.result[0] == "goldfish"
    assert has_picture(ideal.view) and "goldfish" in ideal.caption.text()
    assert pane.gradcam_tab.result is not None
    assert pane.features_tab.maps.layer == "layer2"


def test_no_tab_keeps_a_result_of_another_image_or_model(pane, photo, qtbot, tmp_path):
    features, gradcam, ideal, adversarial = (pane.features_tab, pane.gradcam_tab, pane.ideal_tab,
                                             pane.adversarial_tab)
    start = {gradcam: gradcam.caption.text(), ideal: ideal.caption.text(),
             adversarial: adversarial.caption.text()}
    pane.show()
    pane.set_image(photo)
    wait_idle(qtbot, pane)
    gradcam.button.click()
    ideal.class_combo.setCurrentText("goldfish")
    ideal.steps.setValue(10)
    ideal.compare.setChecked(False)
    ideal.button.click()
    adversarial.target.setCurrentText("tabby")
    adversarial.steps.setValue(2)
    adversarial.button.click()
    wait_idle(qtbot, pane)
    assert gradcam.result and ideal.result and adversarial.result and features.maps
    first_maps = features.maps

    other = tmp_path / "other.png"
    Image.open(photo).transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(other)
    pane.set_image(str(other))
    # What was made from the image before is gone, at once; the ideal image is not of an image.
    assert gradcam.result is None and not has_picture(gradcam.view)
    assert gradcam.caption.text() == start[gradcam]
    assert adversarial.result is None and not any(has_picture(v) for v in adversarial.views)
    assert adversarial.caption.text() == start[adversarial]
    assert ideal.result is not None and has_picture(ideal.view)
    assert features.maps is None and not has_picture(features.grid_view)
    assert pane.predictions.rowCount() == 0
    wait_idle(qtbot, pane)  # the visible maps and the predictions are of the new image
    assert features.maps is not None and features.maps is not first_maps
    assert pane.predictions.rowCount() == 5

    gradcam.button.click()
    wait_idle(qtbot, pane)
    pane.set_backbone("mobilenet_v3_small", False)  # another model: nothing of resnet18 stays
    for tab in (gradcam, ideal, adversarial):
        assert tab.result is None and tab.caption.text() == start[tab]
    assert not has_picture(gradcam.view) and not has_picture(ideal.view)
    assert features.maps is None and not has_picture(features.channel_view)
    assert features.caption.text() == "" and pane.predictions.rowCount() == 0
    wait_idle(qtbot, pane)
    assert features.maps is not None and gradcam.result is None


def test_an_image_from_the_data_set_is_named_with_its_true_class(pane, photo, qtbot):
    pane.show()
    assert not pane.pick_image.isEnabled()
    pane.set_dataset([ImageItem(photo, 1, "photo")], ["circle", "star"])
    assert pane.pick_image.isEnabled()
    pane.pick_image.click()
    assert pane.image_path == photo
    assert pane.image_caption.text() == "photo.png — true class: star"
    wait_idle(qtbot, pane)


def test_the_channel_grid_is_drawn_off_the_gui_thread(pane, photo, qtbot, monkeypatch):
    """Hundreds of channels take tenths of a second to lay out: never in the GUI thread."""
    from tlgui.core.feature_maps import FeatureMaps

    pane.show()
    threads = []
    original = FeatureMaps.grid

    def recorded(self, *args, **kwargs):
        threads.append(threading.current_thread())
        return original(self, *args, **kwargs)

    monkeypatch.setattr(FeatureMaps, "grid", recorded)
    pane.set_image(photo)
    wait_idle(qtbot, pane)
    features = pane.features_tab
    features.channel_count.setValue(100)  # more than conv1's 64 channels
    wait_idle(qtbot, pane)
    assert features.grid_view.count == 64 and features.grid_view.columns == 8
    assert len(threads) == 2 and threading.main_thread() not in threads


def test_a_channel_can_be_picked_with_the_keyboard(pane, photo, qtbot):
    pane.show()
    pane.set_image(photo)
    wait_idle(qtbot, pane)
    features = pane.features_tab
    grid = features.grid_view
    assert grid.focusPolicy() & Qt.FocusPolicy.TabFocus
    columns = math.ceil(math.sqrt(features.channel_count.value()))
    assert grid.columns == columns
    qtbot.keyClick(grid, Qt.Key.Key_Right)
    qtbot.keyClick(grid, Qt.Key.Key_Down)
    assert grid.current == 1 + columns
    qtbot.keyClick(grid, Qt.Key.Key_Return)
    assert f"#{2 + columns} by mean activation" in features.caption.text()
    qtbot.keyClick(grid, Qt.Key.Key_End)
    qtbot.keyClick(grid, Qt.Key.Key_Enter)
    assert f"#{features.channel_count.value()} by mean activation" in features.caption.text()


def test_the_keyboard_cell_is_drawn_in_the_selection_colour(pane, photo, qtbot, monkeypatch):
    pane.show()
    pane.set_image(photo)
    wait_idle(qtbot, pane)
    grid = pane.features_tab.grid_view
    qtbot.keyClick(grid, Qt.Key.Key_Right)
    monkeypatch.setattr(grid, "hasFocus", lambda: True)  # an offscreen window is never active
    image = grid.grab().toImage()
    cell = grid.cell_rect(1)
    left_edge = image.pixelColor(round(cell.left()) - 1, round(cell.center().y()))
    assert left_edge == grid.palette().color(QPalette.ColorRole.Highlight)


def test_pictures_are_sharp_at_double_pixel_density(pane, photo, qtbot, monkeypatch):
    pane.show()
    features = pane.features_tab
    for view in (ImageView, GridView):  # a screen at 200 % scaling
        monkeypatch.setattr(view, "devicePixelRatioF", lambda self: 2.0)
    pane.set_image(photo)
    wait_idle(qtbot, pane)
    picture = pane.input_view.picture
    assert picture.devicePixelRatio() == 2.0 and picture.width() == 2 * 220
    channel = features.channel_view.picture
    assert channel.devicePixelRatio() == 2.0 and channel.width() == 2 * 240
    grid = features.grid_view.picture
    assert grid.devicePixelRatio() == 2.0
    columns = features.grid_view.columns
    assert grid.width() / 2 <= features.grid_view.width()
    assert features.grid_view.cell_rect(columns).top() > 0  # the second row, in logical pixels


def test_a_pixmap_holds_the_device_pixels_of_its_logical_size():
    pixmap = to_pixmap(np.zeros((10, 20, 3), np.uint8), 100, 2.0)
    assert (pixmap.width(), pixmap.height(), pixmap.devicePixelRatio()) == (200, 100, 2.0)
    assert to_pixmap(np.zeros((10, 20, 3), np.uint8), 100).width() == 100


def test_look_inside_shows_the_run_it_is_told_to(qtbot, tmp_path):
    pane = InspectPane()  # hidden: nothing is loaded
    qtbot.addWidget(pane)
    run = tmp_path / "20261122-101500"
    for name in ("with_dropout", "without_dropout"):
        (run / name).mkdir(parents=True)
        (run / name / "best.pt").write_bytes(b"")
    pane.add_checkpoints(run, ["with_dropout", "without_dropout"])
    assert pane.source.currentText() == "Fine-tuned: without_dropout (20261122-101500)"
    pane.select_checkpoint(str(run / "with_dropout" / "best.pt"))
    assert pane.source.currentText() == "Fine-tuned: with_dropout (20261122-101500)"
    pane.select_checkpoint(str(run / "without_dropout" / ".." / "without_dropout" / "best.pt"))
    assert pane.source.currentText() == "Fine-tuned: without_dropout (20261122-101500)"
    assert pane.source.count() == 3  # the pretrained backbone and the two runs, no copy
    elsewhere = tmp_path / "20261001-090000" / "without_dropout" / "best.pt"
    elsewhere.parent.mkdir(parents=True)
    elsewhere.write_bytes(b"")
    pane.select_checkpoint(str(elsewhere))
    assert pane.source.currentData() == str(elsewhere)
    assert pane.source.currentText() == "Fine-tuned: without_dropout (20261001-090000)"


def contrast(a: QColor, b: QColor) -> float:
    """The WCAG contrast ratio of two colours."""

    def luminance(c: QColor) -> float:
        def channel(v: float) -> float:
            return v / 12.92 if v <= 0.03928 else ((v + 0.055) / 1.055) ** 2.4

        return 0.2126 * channel(c.redF()) + 0.7152 * channel(c.greenF()) + 0.0722 * channel(
            c.blueF())

    high, low = sorted((luminance(a), luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


@pytest.mark.parametrize("window, text", [("#202124", "#e8eaed"), ("#efefef", "#000000")])
def test_the_warning_about_random_weights_reads_on_dark_and_light_themes(qtbot, window, text):
    pane = InspectPane()
    qtbot.addWidget(pane)
    palette = QPalette()
    for group in (QPalette.ColorGroup.Active, QPalette.ColorGroup.Inactive):
        palette.setColor(group, QPalette.ColorRole.Window, QColor(window))
        palette.setColor(group, QPalette.ColorRole.WindowText, QColor(text))
    pane.setPalette(palette)
    note = pane.source_note
    assert "not cached" in note.text()
    pane.resize(900, 600)
    pane.layout().activate()
    image = pane.grab(note.geometry()).toImage()  # the note over the pane's own background
    background = QColor(window)
    strongest = max(contrast(image.pixelColor(x, y), background)
                    for x in range(image.width()) for y in range(image.height()))
    assert strongest >= 4.5


def test_the_pane_plugs_into_the_window_and_shuts_down_promptly(pane, photo, qtbot):
    assert isinstance(pane, Pane) and pane.title == "Look inside" and pane.hint
    pane.show()
    pane.set_image(photo)
    wait_idle(qtbot, pane)
    ideal = pane.ideal_tab
    ideal.class_combo.setCurrentText("goldfish")
    ideal.steps.setValue(2000)  # minutes of work, unless cancelled
    ideal.button.click()
    qtbot.waitUntil(lambda: "variation: step" in ideal.caption.text(), timeout=30_000)
    started = time.monotonic()
    pane.shutdown()
    assert time.monotonic() - started < SHUTDOWN_SECONDS
    assert not any(c.thread_running() for c in pane.controllers())
    qtbot.waitUntil(lambda: not pane.is_running(), timeout=5_000)  # the last signals arrive
    assert ideal.result is None


def test_probabilities_never_round_to_certainty():
    """A probability just short of 1 (or just above 0) must not read as certain."""
    assert [percent(p) for p in (1.0, 0.99996, 0.997, 0.87, 0.042, 0.0013, 1e-7, 0.0)] == [
        "100%", ">99.9%", "99.7%", "87%", "4.2%", "0.13%", "<0.01%", "0%"]


def test_cancel_on_a_tab_forgets_the_request_waiting_behind_the_running_pass(qtbot,
                                                                             monkeypatch):
    from tlgui.gui.inspect import jobs
    from tlgui.gui.inspect.gradcam_tab import GradcamTab

    monkeypatch.setattr(jobs, "private_copy", lambda model: model)
    loader = jobs.ModelLoader()
    loader.key, loader.model = ("checkpoint", "best.pt"), object()
    tab = GradcamTab(loader)
    qtbot.addWidget(tab)
    started, release, passes, shown = threading.Event(), threading.Event(), [], []

    def slow(model, emit, control):
        passes.append(model)
        started.set()
        release.wait(10)
        return "a heat map"

    tab.job.request(slow, shown.append)
    assert started.wait(10)
    tab.job.request(slow, shown.append)  # waits behind the running pass
    tab.busy.cancel_button.click()
    release.set()
    qtbot.waitUntil(lambda: not tab.job.is_busy(), timeout=10_000)
    assert len(passes) == 1 and shown == []


def test_cancelling_the_model_load_forgets_what_waited_for_the_model(pane, qtbot, photo,
                                                                     monkeypatch):
    from tlgui.gui.inspect import jobs

    started, release, loads = threading.Event(), threading.Event(), []

    class Model:
        classes = []

    def slow_load(key):  # a load cannot stop midway
        loads.append(key)
        started.set()
        release.wait(10)
        return Model(), []

    monkeypatch.setattr(jobs, "load_model", slow_load)
    pane.show()
    pane.set_image(photo)  # its predictions wait for the model
    assert started.wait(10)
    assert pane.predictions_job.is_busy()
    pane.model_busy.cancel_button.click()
    assert not pane.predictions_job.is_busy()
    pane.loader.ensure()  # asked for again before the cancelled load has ended: loads anew
    release.set()
    qtbot.waitUntil(lambda: len(loads) == 2, timeout=10_000)
    wait_idle(qtbot, pane, timeout=10_000)


def test_a_grid_of_earlier_maps_never_replaces_the_maps_shown_since(qtbot, monkeypatch):
    from tlgui.core.feature_maps import FeatureMaps
    from tlgui.gui.inspect import jobs
    from tlgui.gui.inspect.features_tab import FeaturesTab, render_grid

    def maps_of(layer, channels):
        values = np.random.default_rng(0).random((channels, 4, 4), dtype=np.float32)
        return FeatureMaps(layer, values, np.arange(channels), np.ones(channels))

    tab = FeaturesTab(jobs.ModelLoader())
    qtbot.addWidget(tab)
    old, new = maps_of("layer1", 64), maps_of("layer2", 8)
    tab._show_maps((old, render_grid(old, *tab._grid_settings())))
    started, release = threading.Event(), threading.Event()
    grid = FeatureMaps.grid

    def slow_grid(self, *args):
        if self is old:
            started.set()
            release.wait(10)
        return grid(self, *args)

    monkeypatch.setattr(FeatureMaps, "grid", slow_grid)
    tab.channel_count.setValue(50)  # the old maps' grid, rendered again in the background
    assert started.wait(10)
    tab._show_maps((new, render_grid(new, *tab._grid_settings())))  # newer maps meanwhile
    release.set()
    qtbot.waitUntil(lambda: not tab.grid_task.is_running(), timeout=10_000)
    assert tab.maps is new and tab.grid_view.count == 8

    # Maps computed for an earlier channel count are shown with the count chosen since.
    newest = maps_of("layer3", 16)
    tab._show_maps((newest, render_grid(newest, 4, *tab._grid_settings()[1:])))
    qtbot.waitUntil(lambda: tab.grid_view.count == 16, timeout=10_000)
