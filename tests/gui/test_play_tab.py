"""The Play tab on a generated video: frames shown with the answer and the rate, Space stops,
a missing camera is a line on the tab, and a frame goes to Look inside."""

import numpy as np
import pytest

cv2 = pytest.importorskip("cv2")

from tlgui.core.data import scan  # noqa: E402
from tlgui.core.sample import ensure_sample_data  # noqa: E402
from tlgui.core.training import TrainConfig, Trainer  # noqa: E402
from tlgui.gui.results.play_tab import PlayTab  # noqa: E402


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    root = tmp_path_factory.mktemp("playgui")
    data = ensure_sample_data(root / "shapes", images_per_class=6)
    Trainer(TrainConfig(model="resnet18", weights="none", image_size=32, epochs=1, hidden=8,
                        workers=0), scan([str(data)]), root / "run").run()
    return str(root / "run" / "model" / "best.pt")


def long_video(path, frames=300, fps=25.0):
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (64, 48))
    for i in range(frames):
        frame = np.full((48, 64, 3), (i * 7) % 255, np.uint8)
        writer.write(frame)
    writer.release()
    return str(path)


@pytest.fixture
def tab(qtbot):
    tab = PlayTab()
    qtbot.addWidget(tab, before_close_func=lambda widget: widget.shutdown())
    tab.resize(900, 600)
    tab.show()
    return tab


def test_a_video_plays_and_space_stops_it(tab, qtbot, checkpoint, tmp_path):
    tab.set_model(checkpoint)
    tab.video_path.setText(long_video(tmp_path / "long.avi"))
    tab.video_radio.setChecked(True)
    tab.gradcam.setChecked(True)
    tab.start()
    assert tab.start_button.text() == "Stop" and not tab.video_path.isEnabled()
    qtbot.waitUntil(lambda: tab.shown is not None and tab.shown.index >= 3, timeout=30_000)
    assert tab.view.pixmap() is not None and not tab.view.pixmap().isNull()
    assert "frames a second" in tab.rate.text() and "dropped" in tab.rate.text()
    assert tab.shown.heat is not None  # Grad-CAM on
    assert tab.shown.answer in tab.answer.text()
    tab.setFocus()
    qtbot.keyClick(tab, " ")  # Space stops
    qtbot.waitUntil(lambda: not tab.worker.is_running(), timeout=10_000)
    assert tab.status.text() == "Stopped." and tab.start_button.text() == "Start"
    saved = tab.save_frame(str(tmp_path / "frame.png"))
    assert saved and cv2.imread(saved).shape == (48, 64, 3)


def test_no_camera_is_a_line_on_the_tab(tab, qtbot, checkpoint):
    errors = []
    tab.error.connect(lambda *a: errors.append(a))
    tab.set_model(checkpoint)
    tab.camera_radio.setChecked(True)
    tab.camera.setValue(9)
    tab.start()
    qtbot.waitUntil(lambda: not tab.worker.is_running(), timeout=30_000)
    assert tab.status.text().startswith("No camera 9 on this computer")
    assert errors == []


def test_without_a_model_there_is_nothing_to_play(tab):
    assert not tab.start_button.isEnabled()
    assert tab.status.text().startswith("Train a model first")


def test_a_frame_goes_to_look_inside(make_window, qtbot, checkpoint, tmp_path, monkeypatch):
    monkeypatch.setenv("TLGUI_CACHE_DIR", str(tmp_path / "cache"))
    window = make_window()
    play = window.results_pane.play_tab
    play.set_model(checkpoint)
    play.video_path.setText(long_video(tmp_path / "clip.avi", frames=40))
    play.video_radio.setChecked(True)
    play.start()
    qtbot.waitUntil(lambda: play.shown is not None, timeout=30_000)
    play.stop()
    qtbot.waitUntil(lambda: not play.worker.is_running(), timeout=10_000)
    path = play.send_to_inspect()
    assert path and window.inspect_pane.image_path == path
    assert window.panes[window.steps.currentRow()] is window.inspect_pane
