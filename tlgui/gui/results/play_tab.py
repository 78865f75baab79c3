"""The Play tab: the chosen model on a live camera or a video file, frame by frame."""

from __future__ import annotations

import threading
import time

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QImage, QKeySequence, QPixmap, QShortcut
from PySide6.QtWidgets import (
    QButtonGroup,
    QCheckBox,
    QFileDialog,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QRadioButton,
    QSizePolicy,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from ..workers import SHUTDOWN_WAIT_MS, TaskController

VIDEO_FILTER = "Videos (*.mp4 *.avi *.mov *.mkv *.webm *.m4v *.mpg *.mpeg *.wmv)"
START_TEXT = "Start"


class FrameView(QLabel):
    """The frame, scaled to fit, keeping its proportions."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.setMinimumSize(320, 240)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self._pixmap: QPixmap | None = None

    def show_frame(self, rgb: np.ndarray | None) -> None:
        if rgb is None:
            self._pixmap = None
            self.clear()
            return
        rgb = np.ascontiguousarray(rgb)
        h, w = rgb.shape[:2]
        image = QImage(rgb.data, w, h, 3 * w, QImage.Format.Format_RGB888).copy()
        self._pixmap = QPixmap.fromImage(image)
        self._fit()

    def resizeEvent(self, event) -> None:  # noqa: N802 (Qt's name)
        super().resizeEvent(event)
        self._fit()

    def _fit(self) -> None:
        if self._pixmap is not None:
            self.setPixmap(self._pixmap.scaled(self.size(), Qt.AspectRatioMode.KeepAspectRatio,
                                               Qt.TransformationMode.SmoothTransformation))


class PlayTab(QWidget):
    """Start plays the chosen model on the camera or the video; the newest frame is shown
    with the top classes ("not sure" below the model's threshold), optionally Grad-CAM over
    it, and how many frames a second it manages. A frame can be saved, or sent to Look
    inside."""

    message = Signal(str)
    error = Signal(str, str)
    look_inside = Signal(str)  #: a saved frame to look at on the Look inside step

    def __init__(self, parent=None):
        super().__init__(parent)
        self.checkpoint: str | None = None
        self.device = "auto"
        self.worker = TaskController("play", self)
        self.worker.finished.connect(self._sync)
        self._lock = threading.Lock()
        self._latest = None  #: the newest result, not shown yet
        self.shown = None  #: the result shown (a FrameResult)
        self.gradcam_on = threading.Event()  # read by the playing thread at every frame

        self.camera_radio = QRadioButton("Camera")
        self.camera = QSpinBox()
        self.camera.setRange(0, 9)
        self.camera.setToolTip("Which camera: 0 is the first")
        self.video_radio = QRadioButton("Video file")
        self.video_path = QLineEdit()
        self.video_path.setPlaceholderText("a video file…")
        self.video_button = QPushButton("Open Video…")
        self.video_button.clicked.connect(self.choose_video)
        group = QButtonGroup(self)
        group.addButton(self.camera_radio)
        group.addButton(self.video_radio)
        self.camera_radio.setChecked(True)
        self.gradcam = QCheckBox("Grad-CAM")
        self.gradcam.setToolTip("Colour where the model looked for its answer (slower)")
        self.gradcam.toggled.connect(self._gradcam_toggled)
        self.start_button = QPushButton(START_TEXT)
        self.start_button.clicked.connect(self.toggle)
        QShortcut(QKeySequence(Qt.Key.Key_Space), self, self.toggle,
                  context=Qt.ShortcutContext.WidgetWithChildrenShortcut)
        self.save_button = QPushButton("Save Frame…")
        self.save_button.clicked.connect(self.save_frame)
        self.inspect_button = QPushButton("Look Inside")
        self.inspect_button.setToolTip("Look at this frame on the Look inside step")
        self.inspect_button.clicked.connect(self.send_to_inspect)

        self.view = FrameView()
        self.answer = QLabel()
        self.answer.setWordWrap(True)
        self.answer.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.rate = QLabel()
        self.status = QLabel("Choose a camera or a video file and press Start (Space).")
        self.status.setWordWrap(True)

        source = QGridLayout()
        source.addWidget(self.camera_radio, 0, 0)
        source.addWidget(self.camera, 0, 1)
        source.addWidget(self.video_radio, 1, 0)
        source.addWidget(self.video_path, 1, 1)
        source.addWidget(self.video_button, 1, 2)
        source.setColumnStretch(1, 1)
        buttons = QHBoxLayout()
        buttons.addWidget(self.start_button)
        buttons.addWidget(self.gradcam)
        buttons.addStretch(1)
        buttons.addWidget(self.save_button)
        buttons.addWidget(self.inspect_button)
        side = QVBoxLayout()
        side.addWidget(self.answer)
        side.addWidget(self.rate)
        side.addStretch(1)
        body = QHBoxLayout()
        body.addWidget(self.view, 3)
        body.addLayout(side, 1)
        layout = QVBoxLayout(self)
        layout.addLayout(source)
        layout.addLayout(buttons)
        layout.addWidget(self.status)
        layout.addLayout(body, 1)
        self._sync()

    # -- the model and the source ---------------------------------------------------------------
    def set_model(self, checkpoint: str | None) -> None:
        if checkpoint != self.checkpoint and self.worker.is_running():
            self.stop()  # the frames shown must be the chosen model's
        self.checkpoint = checkpoint
        self._sync()

    def set_device(self, device: str) -> None:
        self.device = device or "auto"

    def choose_video(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open a video", "", VIDEO_FILTER)
        if path:
            self.video_path.setText(path)
            self.video_radio.setChecked(True)

    def source(self) -> int | str:
        return self.camera.value() if self.camera_radio.isChecked() else self.video_path.text()

    # -- playing ------------------------------------------------------------------------------
    def toggle(self) -> None:
        if self.worker.is_running():
            self.stop()
        else:
            self.start()

    def start(self) -> None:
        checkpoint, device, source = self.checkpoint, self.device, self.source()
        if not checkpoint or self.worker.is_running():
            return
        if source == "":
            self.status.setText("Choose a video file first (Open Video…), or the camera.")
            return
        self.shown = None
        self._latest = None
        gradcam_on = self.gradcam_on

        def task(emit, control):
            from ...core.play import FrameClassifier, FrameSource, SourceError, play

            classifier = FrameClassifier(checkpoint, device)
            try:
                frames = FrameSource(source)
            except SourceError as e:  # no camera: a line on the tab, not an error box
                return str(e)
            emit(("started", frames.fps))
            try:
                def on_frame(result) -> None:
                    with self._lock:
                        fresh = self._latest is None
                        self._latest = result  # the one before, not shown yet, is dropped
                    if fresh:  # one notice at a time: the window is never sent a queue
                        emit(None)

                return play(frames, lambda f: classifier.classify(f, gradcam_on.is_set()),
                            on_frame, cancel=control)
            finally:
                frames.close()

        self.status.setText("Starting…")
        self.worker.start(task, on_progress=self._on_progress, on_succeeded=self._ended,
                          on_failed=self._failed, on_cancelled=self._stopped)
        self._sync()

    def stop(self) -> None:
        self.worker.cancel()

    def _on_progress(self, value) -> None:
        if isinstance(value, tuple):  # started
            self.status.setText(f"Playing {self._source_name()} (Space stops).")
            return
        with self._lock:
            result, self._latest = self._latest, None
        if result is not None:
            self.show_result(result)

    def show_result(self, result) -> None:
        """Show one classified frame: the image (with Grad-CAM), the answer, the rate."""
        import html

        from ...core.gradcam import overlay

        self.shown = result
        image = result.image if result.heat is None else overlay(result.image, result.heat)
        self.view.show_frame(image)
        best, p = result.top[0]
        lines = [f"<p style='font-size:15pt'><b>{html.escape(result.answer)}</b></p>"]
        for name, value in result.top:
            bar = "█" * max(1, round(value * 20)) if value >= 0.005 else ""
            lines.append(f"{html.escape(name)} — {value:.1%} <span style='color:#1f77b4'>"
                         f"{bar}</span>")
        self.answer.setText("<br>".join(lines))
        self.rate.setText(f"{result.fps:.1f} frames a second · {result.dropped:,} dropped "
                          f"(the model had no time for them)")
        self._sync()

    def _ended(self, stats) -> None:
        if isinstance(stats, str):  # the source could not be opened
            self.status.setText(stats[0].upper() + stats[1:] + ".")
            return
        self.status.setText(f"The video ended: {stats.classified:,} frames classified, "
                            f"{stats.dropped:,} dropped.")

    def _stopped(self) -> None:
        self.status.setText("Stopped.")

    def _failed(self, message: str, detail: str) -> None:
        self.status.setText(message)
        self.error.emit(message, detail)

    def _source_name(self) -> str:
        source = self.source()
        return f"camera {source}" if isinstance(source, int) else str(source)

    def _gradcam_toggled(self, on: bool) -> None:
        (self.gradcam_on.set if on else self.gradcam_on.clear)()

    # -- the frame shown ----------------------------------------------------------------------
    def _frame_file(self, folder) -> str:
        from pathlib import Path

        name = f"frame-{time.strftime('%Y%m%d-%H%M%S')}-{self.shown.index}.png"
        return str(Path(folder) / name)

    def save_frame(self, path: str | None = None) -> str | None:
        """Save the frame shown (without Grad-CAM) as an image file; returns its path."""
        if self.shown is None:
            return None
        if path is None:
            path, _ = QFileDialog.getSaveFileName(self, "Save the frame",
                                                  self._frame_file("."), "PNG (*.png)")
            if not path:
                return None
        from PIL import Image

        from ...core.paths import atomic_output

        try:
            with atomic_output(path) as tmp:
                Image.fromarray(self.shown.image).save(tmp, format="PNG")
        except OSError as e:
            from ...core.errors import one_line

            self.error.emit(one_line(e, path), "")
            return None
        self.message.emit(f"saved {path}")
        return path

    def send_to_inspect(self) -> str | None:
        """Save the frame shown in tlgui's own folder and look at it on Look inside."""
        if self.shown is None:
            return None
        from ...core.paths import cache_dir

        folder = cache_dir() / "frames"
        folder.mkdir(parents=True, exist_ok=True)
        path = self.save_frame(self._frame_file(folder))
        if path:
            self.look_inside.emit(path)
        return path

    def _sync(self) -> None:
        playing = self.worker.is_running()
        self.start_button.setText("Stop" if playing else START_TEXT)
        self.start_button.setEnabled(bool(self.checkpoint) or playing)
        for widget in (self.camera_radio, self.camera, self.video_radio, self.video_path,
                       self.video_button):
            widget.setEnabled(not playing)
        has_frame = self.shown is not None
        self.save_button.setEnabled(has_frame)
        self.inspect_button.setEnabled(has_frame)
        if not self.checkpoint and not playing:
            self.status.setText("Train a model first: Play shows what it answers, live.")

    def shutdown(self, timeout_ms: int = SHUTDOWN_WAIT_MS) -> bool:
        return self.worker.shutdown(timeout_ms)
