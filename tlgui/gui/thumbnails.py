"""Thumbnails decoded at thumbnail size in a thread pool, never in the GUI thread."""

from __future__ import annotations

from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal, Slot
from PySide6.QtGui import QImage

from ..core.images import load_rgb


def to_qimage(image) -> QImage:
    """A PIL RGB image as a QImage that owns its pixels (safe outside the GUI thread)."""
    data = image.tobytes("raw", "RGB")
    qimage = QImage(data, image.width, image.height, image.width * 3, QImage.Format.Format_RGB888)
    return qimage.copy()


class _Job(QRunnable):
    def __init__(self, loader: ThumbnailLoader, generation: int, key, path: str, size: int):
        super().__init__()
        self.loader, self.generation, self.key, self.path, self.size = (
            loader, generation, key, path, size)

    def run(self) -> None:
        if self.generation != self.loader.generation:  # superseded: skip the work
            return
        try:
            image = load_rgb(self.path, draft_size=self.size)
            image.thumbnail((self.size, self.size))
            qimage = to_qimage(image)
        except Exception:
            return  # a file that fails here was reported by the scan already
        self.loader.loaded.emit(self.generation, self.key, qimage)


class ThumbnailLoader(QObject):
    """Loads thumbnails for ``(key, path)`` pairs; ``ready(key, QImage)`` arrives in the GUI
    thread. ``clear()`` drops every pending and late result."""

    loaded = Signal(int, object, QImage)  # emitted from pool threads
    ready = Signal(object, QImage)

    def __init__(self, size: int = 56, parent: QObject | None = None):
        super().__init__(parent)
        self.size = size
        self.generation = 0
        self.pool = QThreadPool(self)
        self.pool.setMaxThreadCount(2)
        self.loaded.connect(self._on_loaded)

    def request(self, items) -> None:
        for key, path in items:
            self.pool.start(_Job(self, self.generation, key, path, self.size))

    def clear(self) -> None:
        self.generation += 1
        self.pool.clear()

    def shutdown(self) -> None:
        self.clear()
        self.pool.waitForDone(10_000)

    @Slot(int, object, QImage)
    def _on_loaded(self, generation: int, key, image: QImage) -> None:
        if generation == self.generation:
            self.ready.emit(key, image)
