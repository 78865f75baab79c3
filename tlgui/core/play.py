"""Play: a trained model on a live camera or a video file, frame by frame.

Frames are read by one thread into a slot that holds the newest frame only; the model takes
whatever frame is newest when it is ready for the next. A model slower than the frames drops
the ones it had no time for (they are counted), and never falls behind: what it shows is at
most one frame old. A video file is read at its own frame rate, as a camera would give it.

Camera capture is OpenCV's ``VideoCapture`` (the headless build): a camera index or a video
file path.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from .calibration import NOT_SURE
from .control import Cancelled


class SourceError(ValueError):
    """A camera or video that cannot be opened or read, in one line."""


def _cv2():
    import os

    # FFmpeg's own messages about a file it cannot read ("moov atom not found") would come
    # before tlgui's one line that says so.
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
    try:
        import cv2
    except ImportError as e:  # pragma: no cover - a dependency; said clearly all the same
        raise SourceError("Play needs OpenCV: pip install opencv-python-headless") from e
    return cv2


def describe_source(source: int | str) -> str:
    return f"camera {source}" if isinstance(source, int) else str(source)


class FrameSource:
    """Frames from a camera (``source`` an index) or a video file (a path), as RGB arrays."""

    def __init__(self, source: int | str):
        cv2 = _cv2()
        self.source = source
        self.is_camera = isinstance(source, int)
        if not self.is_camera:
            from pathlib import Path

            if not Path(source).is_file():
                raise SourceError(f"{source}: no such video file")
        self.capture = cv2.VideoCapture(source)
        if not self.capture.isOpened():
            self.capture.release()
            if self.is_camera:
                raise SourceError(f"no camera {source} on this computer (or it is in use by "
                                  f"another program)")
            raise SourceError(f"{source}: not a video OpenCV can read")
        fps = float(self.capture.get(cv2.CAP_PROP_FPS) or 0.0)
        #: the source's own frame rate (a camera that does not say: 30)
        self.fps = fps if 0 < fps <= 1000 else 30.0
        count = int(self.capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        self.frame_count = count if not self.is_camera and count > 0 else None

    def read(self) -> np.ndarray | None:
        """The next frame as (H, W, 3) uint8 RGB, or None at the end."""
        ok, frame = self.capture.read()
        if not ok or frame is None:
            return None
        if frame.ndim == 2:
            frame = np.repeat(frame[:, :, None], 3, axis=2)
        return np.ascontiguousarray(frame[:, :, 2::-1])  # OpenCV gives BGR(A)

    def close(self) -> None:
        self.capture.release()


class LatestFrame:
    """A slot for one frame: a new frame replaces the one not taken yet (which counts as
    dropped); taking waits for a frame."""

    def __init__(self):
        self._condition = threading.Condition()
        self._frame: tuple[int, np.ndarray] | None = None
        self.ended = False
        self.dropped = 0
        self.error: BaseException | None = None

    def put(self, index: int, frame: np.ndarray) -> None:
        with self._condition:
            if self._frame is not None:
                self.dropped += 1
            self._frame = (index, frame)
            self._condition.notify_all()

    def end(self, error: BaseException | None = None) -> None:
        with self._condition:
            self.ended, self.error = True, error
            self._condition.notify_all()

    def take(self, timeout: float = 0.1) -> tuple[int, np.ndarray] | None:
        """The newest frame (None when none came within ``timeout``, or the source ended)."""
        with self._condition:
            if self._frame is None and not self.ended:
                self._condition.wait(timeout)
            frame, self._frame = self._frame, None
            return frame

    @property
    def waiting(self) -> int:
        """Frames held (0 or 1: never a queue)."""
        return 0 if self._frame is None else 1


@dataclass
class FrameResult:
    """One classified frame."""

    index: int  #: the frame's number in the source (from 0)
    image: np.ndarray  #: the frame, (H, W, 3) uint8 RGB
    top: list[tuple[str, float]]  #: the most probable classes, best first, with probabilities
    answer: str  #: the top class, or "not sure (class?)" below the model's threshold
    fps: float  #: frames classified per second, lately
    dropped: int  #: frames the model had no time for, so far
    heat: np.ndarray | None = None  #: Grad-CAM heat map (H, W) in [0, 1] at the frame's size
    seconds: float = 0.0  #: where the frame is in a video file


@dataclass
class PlayStats:
    classified: int = 0
    dropped: int = 0
    frames_read: int = 0
    seconds: float = 0.0
    fps_history: list[float] = field(default_factory=list)


class FrameClassifier:
    """A trained run's model (its ``best.pt``) on single frames, with its preprocessing,
    temperature and "not sure" threshold, on ``device``; Grad-CAM on request."""

    def __init__(self, checkpoint, device: str = "cpu", top: int = 5):
        import torch

        from .device import select_device
        from .inspection import fine_tuned
        from .models import load_trained

        net, ckpt = load_trained(checkpoint)
        # The Grad-CAM view's model: it takes pixels in [0, 1].
        self.model = fine_tuned(checkpoint, loaded=(net, ckpt))
        calibration = ckpt.get("calibration") or {}
        self.temperature = float(calibration.get("temperature", 1.0))
        self.threshold = float(calibration.get("threshold", 0.0))
        self.classes = list(ckpt["classes"])
        self.device = select_device(device)
        self.model.model.to(self.device)
        self.top = max(1, min(top, len(self.classes)))
        self._torch = torch
        from torchvision import transforms as T

        p = self.model.preprocessing  # made once: it runs for every frame
        self._transform = T.Compose([
            T.Resize(p.resize_size, interpolation=T.InterpolationMode(p.interpolation),
                     antialias=True),
            T.CenterCrop(p.crop_size), T.ToTensor()])

    def tensor(self, frame: np.ndarray):
        """The frame resized and centre-cropped as the model expects: (1, 3, S, S) in [0, 1]."""
        from PIL import Image

        return self._transform(Image.fromarray(frame)).unsqueeze(0).to(self.device)

    def classify(self, frame: np.ndarray, gradcam: bool = False
                 ) -> tuple[list[tuple[str, float]], str, np.ndarray | None]:
        """(top classes with calibrated probabilities, the answer, heat map or None)."""
        torch = self._torch
        x = self.tensor(frame)
        heat = None
        if gradcam:
            from .gradcam import gradcam as grad_cam

            heat_small, _, _ = grad_cam(self.model, x)
            heat = _resize_heat(heat_small, frame.shape[:2], x.shape[-1])
        with torch.inference_mode():
            logits = self.model.model(x).float()[0]
        probabilities = torch.softmax(logits / self.temperature, 0)
        values, indices = probabilities.topk(self.top)
        top = [(self.classes[i], float(v)) for v, i in zip(values.tolist(), indices.tolist())]
        best, p = top[0]
        answer = best if p >= self.threshold else f"{NOT_SURE} ({best}?)"
        return top, answer, heat


def _resize_heat(heat: np.ndarray, shape: tuple[int, int], crop: int) -> np.ndarray:
    """The heat map of the centre crop placed over the whole frame (zero outside the crop)."""
    from PIL import Image

    h, w = shape
    side = min(h, w)
    square = np.asarray(Image.fromarray((heat * 255).astype(np.uint8)).resize(
        (side, side), Image.BILINEAR), dtype=np.float32) / 255
    out = np.zeros((h, w), np.float32)
    top, left = (h - side) // 2, (w - side) // 2
    out[top:top + side, left:left + side] = square
    return out


def play(source: FrameSource, classify: Callable[[np.ndarray], tuple],
         on_frame: Callable[[FrameResult], None], cancel=None, realtime: bool = True,
         max_frames: int | None = None) -> PlayStats:
    """Read ``source`` in a thread of its own (at its frame rate when ``realtime``, as a camera
    gives frames; as fast as it reads otherwise) and classify the newest frame whenever the
    model is free; ``on_frame`` gets each result. Ends at the end of a video, after
    ``max_frames`` classified, or when ``cancel`` is set (then raises :class:`Cancelled`)."""
    slot = LatestFrame()
    stop = threading.Event()
    stats = PlayStats()

    def reader() -> None:
        started = time.monotonic()
        index = 0
        try:
            while not stop.is_set():
                frame = source.read()
                if frame is None:
                    break
                if realtime and not source.is_camera:  # a file: at its own pace
                    due = started + index / source.fps
                    delay = due - time.monotonic()
                    if delay > 0 and stop.wait(delay):
                        break
                slot.put(index, frame)
                index += 1
                stats.frames_read = index
        except Exception as e:  # a camera unplugged: said once, and the play ends
            slot.end(e)
            return
        slot.end()

    thread = threading.Thread(target=reader, name="play-reader", daemon=True)
    thread.start()
    recent: list[float] = []
    started = time.monotonic()
    try:
        while True:
            if cancel is not None and cancel.is_set():
                raise Cancelled("cancelled")
            taken = slot.take()
            if taken is None:
                if slot.ended and slot.waiting == 0:
                    break
                continue
            index, frame = taken
            top, answer, heat = classify(frame)
            now = time.monotonic()
            recent.append(now)
            recent = [t for t in recent if now - t <= 2.0]
            fps = (len(recent) - 1) / (recent[-1] - recent[0]) if len(recent) > 1 else 0.0
            stats.classified += 1
            stats.dropped = slot.dropped
            on_frame(FrameResult(index, frame, top, answer, fps, slot.dropped, heat,
                                 index / source.fps))
            if max_frames is not None and stats.classified >= max_frames:
                break
        if slot.error is not None:
            raise SourceError(f"{describe_source(source.source)}: reading stopped "
                              f"({slot.error})")
    finally:
        stop.set()
        thread.join(timeout=5)
        stats.dropped = slot.dropped
        stats.seconds = time.monotonic() - started
    return stats


def sampled_frames(source: FrameSource, every_seconds: float = 1.0):
    """``(frame index, seconds, frame)`` of a video file: the first frame at or after each
    multiple of ``every_seconds`` (the first frame included), read in order without waiting:
    for ``tlgui predict``. The seconds are the frame's own."""
    index, due = 0, 0.0
    while True:
        frame = source.read()
        if frame is None:
            return
        seconds = index / source.fps
        if seconds >= due - 1e-9:
            yield index, seconds, frame
            while due <= seconds + 1e-9:
                due += every_seconds
        index += 1


VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv")


def is_video(path: str) -> bool:
    return str(path).lower().endswith(VIDEO_SUFFIXES)


def predict_video(checkpoint, path: str, every_seconds: float = 1.0, device: str = "cpu",
                  cancel=None, classifier: FrameClassifier | None = None):
    """A video file's frames, one every ``every_seconds``, classified by a trained run: a
    :class:`~tlgui.core.predictions.Predictions` whose paths are ``VIDEO#t=SECONDS`` (a
    media fragment: where in the video the frame is)."""
    from .predictions import Predictions

    classifier = classifier or FrameClassifier(checkpoint, device)
    source = FrameSource(path)
    paths, predicted, confidence = [], [], []
    try:
        for _, seconds, frame in sampled_frames(source, every_seconds):
            if cancel is not None and cancel.is_set():
                raise Cancelled("cancelled")
            top, _, _ = classifier.classify(frame)
            paths.append(f"{path}#t={seconds:.2f}")
            predicted.append(classifier.classes.index(top[0][0]))
            confidence.append(top[0][1])
    finally:
        source.close()
    if not paths:
        raise SourceError(f"{path}: no frame could be read")
    return Predictions(classifier.classes, paths, np.asarray(predicted, np.int64),
                       np.asarray(confidence, np.float32), threshold=classifier.threshold)
