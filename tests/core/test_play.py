"""Play on a short video made here: frames classified as they come, the newest when the model
is free (dropped, never queued), cancel, no camera said in one line; and tlgui predict on a
video file, a line per sampled frame."""

import threading
import time

import numpy as np
import pytest

cv2 = pytest.importorskip("cv2")

from tlgui.cli import main  # noqa: E402
from tlgui.core.control import Cancelled  # noqa: E402
from tlgui.core.data import scan  # noqa: E402
from tlgui.core.play import (  # noqa: E402
    FrameClassifier,
    FrameSource,
    LatestFrame,
    SourceError,
    play,
    predict_video,
)
from tlgui.core.sample import ensure_sample_data  # noqa: E402
from tlgui.core.training import TrainConfig, Trainer  # noqa: E402

COLOURS = [(255, 0, 0), (0, 255, 0), (0, 0, 255)]  # RGB: a second of each at 10 frames a second


def make_video(path, frames=30, fps=10.0, size=(64, 48)):
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, size)
    assert writer.isOpened()
    for i in range(frames):
        rgb = np.zeros((size[1], size[0], 3), np.uint8)
        rgb[:] = COLOURS[i * len(COLOURS) // frames]
        writer.write(rgb[:, :, ::-1])  # OpenCV writes BGR
    writer.release()
    return path


@pytest.fixture(scope="module")
def video(tmp_path_factory):
    return make_video(tmp_path_factory.mktemp("video") / "colours.avi")


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    root = tmp_path_factory.mktemp("playrun")
    data = ensure_sample_data(root / "shapes", images_per_class=6)
    Trainer(TrainConfig(model="resnet18", weights="none", image_size=32, epochs=1, hidden=8,
                        workers=0), scan([str(data)]), root / "run").run()
    return root / "run" / "model" / "best.pt"


def test_a_video_file_gives_its_frames_in_rgb(video):
    source = FrameSource(str(video))
    try:
        assert source.fps == pytest.approx(10.0) and source.frame_count == 30
        first = source.read()
        assert first.shape == (48, 64, 3) and first.dtype == np.uint8
        assert abs(int(first[..., 0].mean()) - 255) < 8 and first[..., 2].mean() < 8  # red
        frames = 1
        while source.read() is not None:
            frames += 1
        assert frames == 30
    finally:
        source.close()


def test_a_slow_model_drops_frames_and_never_queues_them(video):
    """Read as fast as the file allows, classified at 20 a second at most: most frames are
    dropped, each either classified or dropped, and the slot never holds more than one."""
    source = FrameSource(str(video))
    seen = []

    def slow(frame):
        time.sleep(0.05)
        return [("red", 1.0)], "red", None

    stats = play(source, slow, seen.append, realtime=False)
    source.close()
    assert 0 < stats.classified < 30
    assert stats.classified + stats.dropped == stats.frames_read == 30
    assert [r.index for r in seen] == sorted(r.index for r in seen)  # in order, never behind
    assert all(a.dropped <= b.dropped for a, b in zip(seen, seen[1:]))  # counted as it goes


def test_at_its_own_pace_a_fast_model_sees_every_frame(video):
    source = FrameSource(str(video))
    started = time.monotonic()
    seen = []
    stats = play(source, lambda f: ([("x", 1.0)], "x", None), seen.append)
    source.close()
    took = time.monotonic() - started
    assert stats.classified == 30 and stats.dropped == 0
    assert took >= 2.5  # 30 frames at 10 a second, as a camera would give them
    assert seen[-1].seconds == pytest.approx(2.9)


def test_the_slot_holds_the_newest_frame_only():
    slot = LatestFrame()
    for i in range(5):
        slot.put(i, np.zeros(1))
    assert slot.waiting == 1 and slot.dropped == 4
    index, _ = slot.take()
    assert index == 4 and slot.waiting == 0
    assert slot.take(timeout=0.01) is None


def test_cancel_stops_play_and_its_reader(video):
    source = FrameSource(str(video))
    cancel = threading.Event()

    def on_frame(result):
        if result.index >= 2:
            cancel.set()

    with pytest.raises(Cancelled):
        play(source, lambda f: ([("x", 1.0)], "x", None), on_frame, cancel=cancel)
    source.close()
    assert not any(t.name == "play-reader" and t.is_alive() for t in threading.enumerate())


def test_no_camera_or_no_video_is_one_clear_line(tmp_path):
    with pytest.raises(SourceError, match="^no camera 9 on this computer"):
        FrameSource(9)
    text = tmp_path / "notes.avi"
    text.write_text("not a video")
    with pytest.raises(SourceError, match="notes.avi: not a video OpenCV can read"):
        FrameSource(str(text))
    with pytest.raises(SourceError, match="gone.avi: no such video file"):
        FrameSource(str(tmp_path / "gone.avi"))


def test_a_trained_model_plays_a_video_with_grad_cam(video, checkpoint):
    classifier = FrameClassifier(checkpoint)
    source = FrameSource(str(video))
    seen = []
    play(source, lambda f: classifier.classify(f, gradcam=True), seen.append, max_frames=3)
    source.close()
    assert len(seen) == 3
    result = seen[0]
    assert result.heat.shape == (48, 64) and 0 <= result.heat.min() <= result.heat.max() <= 1
    assert len(result.top) == 4 and sum(p for _, p in result.top) == pytest.approx(1, abs=1e-4)
    best, p = result.top[0]
    assert result.answer == (best if p >= classifier.threshold else f"not sure ({best}?)")


def test_predict_takes_a_video_a_line_per_sampled_frame(video, checkpoint, capsys, tmp_path):
    predictions = predict_video(checkpoint, str(video), every_seconds=1.0)
    assert predictions.paths == [f"{video}#t={s:.2f}" for s in (0.0, 1.0, 2.0)]
    table = tmp_path / "frames.csv"
    assert main(["predict", str(checkpoint), str(video), "--every", "0.5", "--csv",
                 str(table)]) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if "#t=" in line]
    assert len(lines) == 6 and lines[1].endswith(f"{video}#t=0.50")
    assert len(table.read_text().splitlines()) == 7


def test_every_samples_by_time_and_an_unreadable_video_is_skipped(video, checkpoint, capsys,
                                                                  tmp_path):
    source = FrameSource(str(video))
    from tlgui.core.play import sampled_frames

    times = [round(s, 2) for _, s, _ in sampled_frames(source, 0.25)][:5]
    source.close()
    assert times == [0.0, 0.3, 0.5, 0.8, 1.0]  # the first frame at or after each quarter
    fake = tmp_path / "fake.mp4"
    fake.write_text("not a video")
    assert main(["predict", str(checkpoint), str(fake), str(video)]) == 0
    captured = capsys.readouterr()
    assert f"skipped {fake}: not a video OpenCV can read" in captured.err
    assert sum("#t=" in line for line in captured.out.splitlines()) == 3
