"""The pictures of the Look inside step: an image with a caption, the grid of a layer's channels,
and the helpers that turn arrays into pixmaps sharp on any screen."""

from __future__ import annotations

import os

import numpy as np
from PySide6.QtCore import QEvent, QRectF, QSize, Qt, QUrl, Signal
from PySide6.QtGui import QColor, QImage, QPainter, QPalette, QPen, QPixmap
from PySide6.QtWidgets import QComboBox, QLabel, QSizePolicy

#: The style of every picture frame: colours from the palette, so a dark theme stays readable.
FRAME_STYLE = "background: palette(base); border: 1px solid palette(mid);"


def to_pixmap(array: np.ndarray, size: int | None = None, ratio: float = 1.0) -> QPixmap:
    """An (H, W, 3) uint8 array as a pixmap that fits ``size`` logical pixels.

    The pixmap holds ``size × ratio`` device pixels and says so (``setDevicePixelRatio``), so
    at 200 % scaling it is drawn at the same size, twice as sharp. Small maps are enlarged
    with crisp pixels, larger images smoothly.
    """
    array = np.ascontiguousarray(array)
    h, w = array.shape[:2]
    image = QImage(array.data, w, h, 3 * w, QImage.Format.Format_RGB888).copy()
    pixmap = QPixmap.fromImage(image)
    if size:
        target = max(1, round(size * ratio))
        mode = (Qt.TransformationMode.FastTransformation if max(h, w) < target // 2
                else Qt.TransformationMode.SmoothTransformation)
        pixmap = pixmap.scaled(QSize(target, target), Qt.AspectRatioMode.KeepAspectRatio, mode)
    pixmap.setDevicePixelRatio(ratio)
    return pixmap


def percent(p: float) -> str:
    """A probability with the precision it needs: 87%, 4.2%, 0.13%; only 1 reads 100% and
    only 0 reads 0% (a model that is nearly sure is not sure)."""
    if p >= 1:
        return "100%"
    if p >= 0.9995:
        return ">99.9%"
    if p >= 0.995:
        return f"{p:.1%}"
    if p >= 0.1:
        return f"{p:.0%}"
    if p >= 0.01:
        return f"{p:.1%}"
    if p >= 0.00005:
        return f"{p:.2%}"
    return "<0.01%" if p > 0 else "0%"


def warning_colour(palette: QPalette) -> QColor:
    """An amber that reads on ``palette``'s window colour: dark on a light theme, light on a
    dark one."""
    dark_theme = palette.color(QPalette.ColorRole.Window).lightness() < 128
    return QColor("#f2b84b") if dark_theme else QColor("#8a5a00")


class NoteLabel(QLabel):
    """A warning sentence in amber, recoloured when the palette changes (a theme switch)."""

    def __init__(self, text: str = ""):
        super().__init__(text)
        self.setWordWrap(True)
        self._recolour()

    def changeEvent(self, event) -> None:
        super().changeEvent(event)
        if event.type() == QEvent.Type.PaletteChange:
            self._recolour()

    def _recolour(self) -> None:
        palette = self.palette()
        colour = warning_colour(palette)
        if palette.color(QPalette.ColorRole.WindowText) != colour:
            palette.setColor(QPalette.ColorRole.WindowText, colour)
            self.setPalette(palette)  # sends another PaletteChange, which finds nothing to do


class ImageView(QLabel):
    """A picture with a caption; accepts an image file dropped on it."""

    file_dropped = Signal(str)  #: the path of a file dropped on the view

    def __init__(self, caption: str = "", size: int = 260, accept_drops: bool = False):
        super().__init__()
        self.size_hint = size
        self.setMinimumSize(size, size)
        self.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.setStyleSheet(FRAME_STYLE)
        self.setWordWrap(True)
        self.empty_text = caption  #: the text shown while there is no picture
        self.setText(caption)
        self.setAcceptDrops(accept_drops)
        #: the pixmap last shown, as made (QLabel.pixmap() returns one for the label's screen)
        self.picture: QPixmap | None = None

    def reset(self) -> None:
        """Show no picture: the caption again, as at the start."""
        self.picture = None
        self.clear()
        self.setText(self.empty_text)

    def show_array(self, array: np.ndarray) -> None:
        """Show an (H, W, 3) uint8 image, fitted to the view at the screen's pixel density."""
        self.picture = to_pixmap(array, self.size_hint, self.devicePixelRatioF())
        self.setPixmap(self.picture)

    def dragEnterEvent(self, event):
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event):
        urls = event.mimeData().urls()
        if urls:
            path = QUrl(urls[0]).toLocalFile()
            if os.path.isfile(path):
                self.file_dropped.emit(path)


class GridView(QLabel):
    """The grid of a layer's channels, strongest first.

    A click picks a channel; so does the keyboard: the view takes focus, the arrow keys (and
    Home/End) move a highlighted cell, and Enter or Space opens it.
    """

    channel_clicked = Signal(int)  #: the index of the channel picked, in grid order

    def __init__(self):
        super().__init__()
        self.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        self.setMinimumSize(280, 280)
        # The layout gives the grid its room; the picture then fits it (never the reverse).
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Ignored)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setAccessibleName("Channels of the layer")
        self.setToolTip("Click a channel, or move with the arrow keys and press Enter")
        self.columns = 0
        self.count = 0
        self.current = 0  #: the highlighted cell, in grid order
        self.picture: QPixmap | None = None  #: the grid last shown, as made
        self._grid: tuple | None = None  # (full-size pixmap, cell, gap, pixel ratio)
        self._cell = 0.0  # a cell's side on screen, in logical pixels
        self._pitch = 0.0  # from one cell to the next, in logical pixels

    def show_grid(self, grid: np.ndarray, cols: int, count: int, cell: int, gap: int,
                  ratio: float = 1.0) -> None:
        """Show ``grid`` (``count`` cells of ``cell`` device pixels in ``cols`` columns,
        ``gap`` apart), rendered for a screen of pixel ratio ``ratio``; shrunk to fit, again
        whenever the view is resized."""
        self._grid = (to_pixmap(grid), cell, gap, ratio)
        self.columns, self.count = cols, count
        self.current = min(self.current, count - 1)
        self._fit()

    def reset(self) -> None:
        """Show no grid, as at the start."""
        self._grid, self.picture = None, None
        self.columns = self.count = self.current = 0
        self._cell = self._pitch = 0.0
        self.clear()

    def _fit(self) -> None:
        if self._grid is None:
            return
        pixmap, cell, gap, ratio = self._grid
        logical = max(pixmap.width(), pixmap.height()) / ratio
        scale = min(1.0, min(self.width(), self.height()) / logical)
        if scale < 1.0:
            pixmap = pixmap.scaled(max(1, round(pixmap.width() * scale)),
                                   max(1, round(pixmap.height() * scale)),
                                   Qt.AspectRatioMode.KeepAspectRatio,
                                   Qt.TransformationMode.SmoothTransformation)
        else:
            pixmap = pixmap.copy()  # the device pixel ratio below is this copy's only
        pixmap.setDevicePixelRatio(ratio)
        self.picture = pixmap
        self.setPixmap(pixmap)
        self._cell = cell / ratio * scale
        self._pitch = (cell + gap) / ratio * scale

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self._fit()

    def cell_rect(self, index: int) -> QRectF:
        """Where cell ``index`` is drawn, in the view's logical pixels."""
        row, col = divmod(index, max(1, self.columns))
        return QRectF(col * self._pitch, row * self._pitch, self._cell, self._cell)

    def mousePressEvent(self, event):
        if not self.count or self._pitch <= 0:
            return
        pos = event.position()
        col, row = int(pos.x() // self._pitch), int(pos.y() // self._pitch)
        index = row * self.columns + col
        if 0 <= col < self.columns and 0 <= index < self.count:
            self.current = index
            self.update()
            self.channel_clicked.emit(index)

    def keyPressEvent(self, event):
        if not self.count:
            super().keyPressEvent(event)
            return
        key = event.key()
        moves = {Qt.Key.Key_Left: -1, Qt.Key.Key_Right: 1,
                 Qt.Key.Key_Up: -self.columns, Qt.Key.Key_Down: self.columns}
        if key in moves:
            target = self.current + moves[key]
            if 0 <= target < self.count:
                self.current = target
                self.update()
        elif key in (Qt.Key.Key_Home, Qt.Key.Key_End):
            self.current = 0 if key == Qt.Key.Key_Home else self.count - 1
            self.update()
        elif key in (Qt.Key.Key_Return, Qt.Key.Key_Enter, Qt.Key.Key_Space):
            self.channel_clicked.emit(self.current)
        else:
            super().keyPressEvent(event)

    def paintEvent(self, event):
        super().paintEvent(event)
        if self.hasFocus() and self.count:
            # The keyboard's place in the grid, in the palette's selection colour.
            painter = QPainter(self)
            pen = QPen(self.palette().color(QPalette.ColorRole.Highlight), 3)
            painter.setPen(pen)
            painter.drawRect(self.cell_rect(self.current).adjusted(-1, -1, 1, 1))
            painter.end()

    def focusInEvent(self, event):
        super().focusInEvent(event)
        self.update()

    def focusOutEvent(self, event):
        super().focusOutEvent(event)
        self.update()


class ClassCombo(QComboBox):
    """The model's classes, typed or picked; optionally led by an entry that means "the class
    the model predicts"."""

    def __init__(self, first: str | None = None):
        super().__init__()
        self.first = first
        self.setEditable(True)
        self.setInsertPolicy(QComboBox.InsertPolicy.NoInsert)
        self.setMinimumWidth(220)
        if first:
            self.addItem(first)

    def classes(self) -> list[str]:
        start = 1 if self.first else 0
        return [self.itemText(i) for i in range(start, self.count())]

    def set_classes(self, classes: list[str]) -> None:
        """Offer ``classes``, keeping the text typed so far when they have not changed."""
        if list(classes) == self.classes():
            return
        self.clear()
        if self.first:
            self.addItem(self.first)
        self.addItems(list(classes))

    def selected_class(self) -> int | None:
        """The index of the class chosen; None for the leading entry or a name that matches
        no class."""
        index = self.findText(self.currentText().strip())
        offset = 1 if self.first else 0
        return index - offset if index >= offset else None
