"""What the Results tabs share: the large preview of a selected image, and hint text in the
palette's colours."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QPalette, QPixmap
from PySide6.QtWidgets import QFrame, QLabel

from ..thumbnails import ThumbnailLoader

#: The preview's side in logical pixels.
PREVIEW = 224


def hint_label(text: str) -> QLabel:
    """A line of secondary text in the palette's placeholder colour (readable on a dark theme
    too, unlike a fixed grey)."""
    label = QLabel(text)
    label.setWordWrap(True)
    label.setForegroundRole(QPalette.ColorRole.PlaceholderText)
    return label


class ImagePreview(QLabel):
    """The selected image of a list, large, decoded off the GUI thread at the screen's pixel
    ratio (sharp at 200 % scaling)."""

    EMPTY = "Select an image to see it larger."

    def __init__(self, size: int = PREVIEW):
        super().__init__(self.EMPTY)
        self.side = size
        self.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.setMinimumSize(size, size)
        self.setWordWrap(True)
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setAutoFillBackground(True)
        self.setBackgroundRole(QPalette.ColorRole.Base)
        self.setForegroundRole(QPalette.ColorRole.PlaceholderText)
        self.loader = ThumbnailLoader(size, self)
        self.loader.ready.connect(self._on_ready)
        self.loader.failed.connect(self._on_failed)
        self.path: str | None = None

    def show_image(self, path: str | None) -> None:
        """Show ``path`` once decoded; None shows the empty prompt."""
        self.loader.clear()
        self.path = path
        self.clear()
        if path is None:
            self.setToolTip("")
            self.setText(self.EMPTY)
            return
        self.setToolTip(path)
        ratio = self.devicePixelRatioF()
        self.loader.request([(path, path)], size=round(self.side * ratio))

    def _on_ready(self, key, image) -> None:
        if key != self.path:
            return
        ratio = self.devicePixelRatioF()
        pixmap = QPixmap.fromImage(image)
        target = round(self.side * ratio)
        if max(pixmap.width(), pixmap.height()) < target:  # small images: enlarge
            pixmap = pixmap.scaled(target, target, Qt.AspectRatioMode.KeepAspectRatio,
                                   Qt.TransformationMode.SmoothTransformation)
        pixmap.setDevicePixelRatio(ratio)
        self.setPixmap(pixmap)

    def _on_failed(self, key) -> None:
        if key == self.path:
            self.setText("This image cannot be shown.")

    def shutdown(self) -> None:
        """Stop decoding (waits only for the image decoding now)."""
        self.loader.shutdown()
