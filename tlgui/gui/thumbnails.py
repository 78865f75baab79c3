"""Thumbnails decoded at thumbnail size in a thread pool, never in the GUI thread.

A :class:`ThumbnailLoader` keeps its waiting requests in one queue that its pool threads drain
newest first: what the user looks at now is decoded before what they scrolled past. A request
that is withdrawn (:meth:`ThumbnailLoader.keep_only`, :meth:`ThumbnailLoader.clear`) before a
thread takes it is never decoded, and a result that arrives after :meth:`ThumbnailLoader.clear`
is dropped, so a view that replaced its rows never sees a thumbnail of the old ones. Each image
list owns its loader, so clearing one list never starves or cancels another.
"""

from __future__ import annotations

import threading
import weakref
from collections import OrderedDict
from collections.abc import Hashable, Iterable

from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal, Slot
from PySide6.QtGui import QImage

from ..core.images import load_rgb

#: Decoding threads per loader: enough to keep up with scrolling, few enough to leave the
#: other cores to training and to the window.
THREADS = 2

#: Every loader alive, so tests can check that none is left decoding.
_LOADERS: weakref.WeakSet = weakref.WeakSet()


def live_loaders() -> list[ThumbnailLoader]:
    """Every :class:`ThumbnailLoader` not yet garbage-collected whose Qt object still exists."""
    import shiboken6

    return [loader for loader in list(_LOADERS) if shiboken6.isValid(loader)]


def to_qimage(image) -> QImage:
    """A PIL RGB image as a QImage that owns its pixels (safe outside the GUI thread)."""
    data = image.tobytes("raw", "RGB")
    qimage = QImage(data, image.width, image.height, image.width * 3, QImage.Format.Format_RGB888)
    return qimage.copy()


def decode_thumbnail(path: str, size: int) -> QImage:
    """The image at ``path`` shrunk to fit ``size`` × ``size`` pixels (never enlarged)."""
    image = load_rgb(path, draft_size=size)
    image.thumbnail((size, size))
    return to_qimage(image)


class _Drain(QRunnable):
    """One pool thread's loop: take the newest waiting request until none is left."""

    def __init__(self, loader: ThumbnailLoader):
        super().__init__()
        self.loader = loader

    def run(self) -> None:
        loader = self.loader
        while True:
            job = loader._take()
            if job is None:
                return
            generation, key, path, size = job
            try:
                image = decode_thumbnail(path, size)
            except Exception:
                image = None  # a file that fails here was reported by the scan already
            finally:
                loader._done(key, generation)
            try:
                if image is None:
                    loader._failed.emit(generation, key)
                else:
                    loader.loaded.emit(generation, key, image)
            except RuntimeError:  # the loader was deleted while this image decoded
                return


class ThumbnailLoader(QObject):
    """Loads thumbnails for ``(key, path)`` pairs; ``ready(key, QImage)`` arrives in the GUI
    thread. Later requests are decoded first; ``keep_only(keys)`` withdraws waiting requests
    that are no longer wanted, and ``clear()`` withdraws every waiting request and drops every
    late result. Keys must be hashable; a key asked for again while it waits moves to the
    front instead of being decoded twice."""

    loaded = Signal(int, object, QImage)  # emitted from pool threads
    _failed = Signal(int, object)  # emitted from pool threads
    ready = Signal(object, QImage)  #: key, the decoded thumbnail (GUI thread)
    failed = Signal(object)  #: key of an image that could not be decoded (GUI thread)

    def __init__(self, size: int = 56, parent: QObject | None = None, threads: int = THREADS):
        super().__init__(parent)
        self.size = size
        self.generation = 0
        self.pool = QThreadPool(self)
        self.pool.setMaxThreadCount(threads)
        self._threads = threads
        # Guarded by _lock, shared with the pool threads. _waiting's last entry is the next
        # to decode (newest first).
        self._lock = threading.Lock()
        self._waiting: OrderedDict[Hashable, tuple[int, str, int]] = OrderedDict()
        self._decoding: dict[Hashable, int] = {}  # key -> generation it was asked in
        self._drains = 0
        self._closed = False
        _LOADERS.add(self)
        self.loaded.connect(self._on_loaded)
        self._failed.connect(self._on_failed)

    def request(self, items: Iterable[tuple[Hashable, str]], size: int | None = None) -> None:
        """Decode ``(key, path)`` pairs at ``size`` pixels (the loader's size by default).

        The first pair of the newest call is decoded first."""
        size = self.size if size is None else size
        with self._lock:
            if self._closed:
                return
            for key, path in reversed(list(items)):
                if self._decoding.get(key) == self.generation:
                    continue  # its result is on the way
                self._waiting.pop(key, None)
                self._waiting[key] = (self.generation, path, size)
            starting = min(self._threads - self._drains, len(self._waiting))
            self._drains += max(starting, 0)
        for _ in range(starting):
            self.pool.start(_Drain(self))

    def keep_only(self, keys: Iterable[Hashable]) -> list[Hashable]:
        """Withdraw every waiting request whose key is not in ``keys`` (images decoding now
        finish); returns the withdrawn keys."""
        wanted = set(keys)
        with self._lock:
            dropped = [key for key in self._waiting if key not in wanted]
            for key in dropped:
                del self._waiting[key]
        return dropped

    def decoding(self) -> bool:
        """True while a pool thread of this loader works (on a request, or taking the next)."""
        return self.pool.activeThreadCount() > 0

    def pending(self) -> int:
        """Requests waiting or decoding."""
        with self._lock:
            return len(self._waiting) + len(self._decoding)

    def clear(self) -> None:
        """Withdraw every waiting request; results of images decoding now are dropped."""
        with self._lock:
            self.generation += 1
            self._waiting.clear()

    def shutdown(self, timeout_ms: int = 2_000) -> bool:
        """Stop taking requests and wait for the images decoding now (a thumbnail takes
        milliseconds, so the wait is short); True when no thread is left working."""
        with self._lock:
            self._closed = True
        self.clear()
        return self.pool.waitForDone(timeout_ms)

    # -- pool threads ------------------------------------------------------------------------
    def _take(self) -> tuple[int, Hashable, str, int] | None:
        with self._lock:
            if not self._waiting:
                self._drains -= 1
                return None
            key, (generation, path, size) = self._waiting.popitem(last=True)
            self._decoding[key] = generation
            return generation, key, path, size

    def _done(self, key: Hashable, generation: int) -> None:
        with self._lock:
            if self._decoding.get(key) == generation:
                del self._decoding[key]

    # -- GUI thread --------------------------------------------------------------------------
    @Slot(int, object, QImage)
    def _on_loaded(self, generation: int, key, image: QImage) -> None:
        if generation == self.generation:
            self.ready.emit(key, image)

    @Slot(int, object)
    def _on_failed(self, generation: int, key) -> None:
        if generation == self.generation:
            self.failed.emit(key)
