"""Take the README's screenshots: drive the real window through every step and grab it.

    xvfb-run -a -s "-screen 0 1400x900x24" \
        .venv/bin/python resources/screenshots/take_screenshots.py [PHOTO]

Everything it writes besides the PNGs (a copy of the sample data with a few bad files, the
runs, the settings) goes into a temporary folder. The optional image is the photo for the
Look inside step (the README's come from scikit-image's ``chelsea.png``); without it, a
sample image is used. It needs a few minutes on a 2-core CPU, the last of them writing and
scanning a data set of 100,000 small images for the last screenshot.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
if __name__ == "__main__":  # worker processes import this file too (as __mp_main__)
    WORK = Path(tempfile.mkdtemp(prefix="tlgui-screenshots-"))
    os.environ["TLGUI_RUNS_DIR"] = str(WORK / "runs")
    os.environ["TLGUI_FEATURE_STORE_DIR"] = str(WORK / "features")

from PySide6.QtCore import QSettings, Qt  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from tlgui.core.sample import ensure_sample_data  # noqa: E402
from tlgui.gui.main_window import MainWindow  # noqa: E402

app = QApplication(sys.argv)


def settle(seconds: float) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        app.processEvents()
        time.sleep(0.01)


def wait(condition, timeout: float = 900) -> None:
    end = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > end:
            raise TimeoutError("the window did not get there in time")
        settle(0.02)


def shoot(window, name: str, pause: float = 1.0) -> None:
    settle(pause)
    window.grab().save(str(HERE / f"{name}.png"))
    print("wrote", HERE / f"{name}.png")


def shoot_when_done(window, worker, name: str, pause: float = 1.0) -> None:
    """Wait for the background work of ``worker`` (a controller, or a pane with
    ``is_running()``) to end, then take the screenshot."""
    settle(0.2)
    wait(lambda: not worker.is_running())
    shoot(window, name, pause)


def data_with_bad_files() -> Path:
    data = ensure_sample_data(WORK / "shapes")
    good = next((data / "circle").glob("*.jpg")).read_bytes()
    (data / "circle" / "scan_0412.jpg").write_bytes(good[: len(good) // 2])
    (data / "square" / "notes.txt").write_text("not a picture")
    (data / "star" / "empty.jpg").write_bytes(b"")
    # For the audit: a star filed under "circle", and a circle saved twice.
    star = sorted((data / "star").glob("*.jpg"))[3]
    (data / "circle" / "IMG_2031.jpg").write_bytes(star.read_bytes())
    circle = sorted((data / "circle").glob("*.jpg"))[5]
    (data / "circle" / "IMG_2031 (copy).jpg").write_bytes(circle.read_bytes())
    return data


def shapes_video(folder: Path, path: Path) -> Path:
    """A video of the test images, each shown for a second: what Play is shown."""
    import cv2
    import numpy as np
    from PIL import Image

    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 8.0, (320, 240))
    for image_path in sorted(folder.glob("*/*.jpg")):
        frame = np.zeros((240, 320, 3), np.uint8)
        frame[:, 40:280] = np.asarray(Image.open(image_path).convert("RGB").resize((240, 240)))
        for _ in range(8):
            writer.write(frame[:, :, ::-1])
    writer.release()
    return path


def main() -> None:
    photo = sys.argv[1] if len(sys.argv) > 1 else None
    window = MainWindow(QSettings(str(WORK / "settings.ini"), QSettings.Format.IniFormat))
    window.resize(1360, 860)
    window.show()
    wait(lambda: window.backend is not None)

    data = data_with_bad_files()
    test = ensure_sample_data(WORK / "shapes_test", images_per_class=10, seed=7)
    d = window.dataset_pane
    d.load_folders([str(data)], str(test))
    wait(lambda: d.report is not None)
    shoot(window, "data", 2.0)

    m, t = window.model_pane, window.training_pane
    window.go_to(window.panes.index(m))
    m.select_backbone("resnet18")
    m.none_radio.setChecked(True)
    m.full_radio.setChecked(True)
    shoot(window, "model")

    t.apply_settings({"epochs": 12, "image_size": 48, "lr": 3e-3, "backbone_lr_factor": 1.0,
                      "batch_size": 32, "compare_dropout": True})
    window.start_training()
    wait(lambda: window.controller.state == "running")
    wait(lambda: len(t.curves.accuracy.points("without_dropout", "val")[0]) >= 6)
    shoot(window, "training_live", 0.3)
    wait(lambda: window.controller.state == "idle")
    shoot(window, "training")

    c = window.check_pane
    window.go_to(window.panes.index(c))
    c.backbone.setCurrentText("resnet18")
    c.weights.setCurrentIndex(c.weights.findData("none"))
    c.image_size.setValue(64)
    c.audit()
    shoot_when_done(window, c.audit_tab.worker, "check_audit", 0.5)
    table = c.audit_tab.table
    for row in range(table.row_count()):
        if table.path_at(row).endswith("IMG_2031.jpg"):
            table.select_row(row)
            break
    shoot(window, "check_audit", 1.5)
    c.tabs.setCurrentWidget(c.map_tab)
    c.map_tab.after.setCurrentIndex(c.map_tab.after.findText("with_dropout",
                                                             Qt.MatchFlag.MatchContains))
    c.draw_map()
    shoot_when_done(window, c.map_tab.worker, "check_map", 1.5)
    c.tabs.setCurrentWidget(c.store_tab)
    shoot_when_done(window, c.store_tab.worker, "check_store", 1.0)

    r = window.results_pane
    window.go_to(window.panes.index(r))
    r.runs_table.selectAll()
    shoot(window, "results_runs")
    r.tabs.setCurrentWidget(r.evaluate_tab)
    r.evaluate()
    shoot_when_done(window, r.evaluate_tab.worker, "results_evaluate", 1.5)
    r.evaluate_tab.image_tabs.setCurrentWidget(r.evaluate_tab.calibration)
    shoot(window, "results_confidence", 1.0)
    r.evaluate_tab.image_tabs.setCurrentIndex(0)
    r.tabs.setCurrentWidget(r.predict_tab)
    r.predict([str(test / "star"), str(test / "circle")])
    shoot_when_done(window, r.predict_tab.worker, "results_predict", 1.5)
    r.tabs.setCurrentWidget(r.play_tab)
    play = r.play_tab
    play.video_path.setText(str(shapes_video(test, WORK / "shapes.avi")))
    play.video_radio.setChecked(True)
    play.gradcam.setChecked(True)
    play.start()
    wait(lambda: play.shown is not None and play.shown.index >= 20)
    shoot(window, "results_play", 0.2)
    play.stop()
    wait(lambda: not play.worker.is_running())
    r.tabs.setCurrentWidget(r.export_tab)
    (WORK / "export").mkdir()
    r.export_to(str(WORK / "export" / "shapes.onnx"), "onnx")
    shoot_when_done(window, r.export_tab.worker, "results_export")

    i = window.inspect_pane
    features, gradcam, ideal, adversarial = (i.features_tab, i.gradcam_tab, i.ideal_tab,
                                             i.adversarial_tab)
    m.select_backbone("vgg16")
    window.go_to(window.panes.index(i))
    i.source.setCurrentIndex(0)
    i.set_image(photo or str(next((data / "star").glob("*.jpg"))))
    settle(0.2)
    wait(lambda: not i.is_running())
    features.layer_list.setCurrentRow(8)  # relu2_2: edges and textures
    shoot_when_done(window, i, "inspect_features", 1.5)
    i.tabs.setCurrentIndex(1)
    gradcam.button.click()
    shoot_when_done(window, i, "inspect_gradcam")
    i.tabs.setCurrentIndex(3)
    adversarial.target.setCurrentText("tabby")
    adversarial.steps.setValue(20)
    adversarial.button.click()
    shoot_when_done(window, i, "inspect_adversarial")
    # The ideal image of one of the user's own classes, from the model trained above.
    i.source.setCurrentIndex(i.source.findText("with_dropout", Qt.MatchFlag.MatchContains))
    i.set_image(str(next((data / "star").glob("*.jpg"))), "star")
    settle(0.2)
    wait(lambda: not i.is_running())
    i.tabs.setCurrentIndex(2)
    ideal.class_combo.setCurrentText("star")
    ideal.steps.setValue(300)
    ideal.button.click()
    shoot_when_done(window, i, "inspect_ideal")

    # The Data step holding 100,000 images (small generated JPEGs, one in a hundred broken).
    from tlgui.benchmarks.gui_responsiveness import make_images

    many = WORK / "many"
    make_images(str(many), 100_000, 10)
    window.go_to(0)
    d.load_folders([str(many)])
    settle(0.5)
    wait(lambda: d.report is not None and not d.busy())
    shoot(window, "data_100k", 2.0)

    window.shutdown()


if __name__ == "__main__":
    try:
        main()
    finally:
        shutil.rmtree(WORK, ignore_errors=True)  # about 1 GB of images, runs and features
