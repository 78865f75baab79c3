"""The class table of the Data step: one row per class, with a strip of example thumbnails.

A model (:class:`ClassTableModel`) holds the names, counts and example paths; a delegate
(:class:`ExamplesDelegate`) paints the examples of the rows on screen from a pixmap cache, so
1,000 classes cost 1,000 rows of plain data and no widget per cell. The view
(:class:`ClassTable`) owns its thumbnail loader: it asks for the examples of the rows being
painted and withdraws the requests of rows scrolled out of sight before they are decoded.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Sequence

from PySide6.QtCore import (
    QAbstractTableModel,
    QRect,
    Qt,
    QTimer,
    Signal,
    Slot,
)
from PySide6.QtGui import QFont, QImage, QPalette, QPixmap
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHeaderView,
    QStyle,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QTableView,
)

from .thumbnails import ThumbnailLoader

#: Example images shown per class.
EXAMPLES_PER_CLASS = 8
#: Thumbnail side in device-independent pixels.
THUMB = 56
#: Space between two thumbnails of a strip.
GAP = 3
#: Decoded thumbnails kept; about 12 KB each at normal scaling.
CACHE_SIZE = 1500

#: The model role that holds a row's example paths (a list of str).
EXAMPLES_ROLE = Qt.ItemDataRole.UserRole + 1

NAME, IMAGES, TRAIN, VAL, EXAMPLES = range(5)
HEADERS = ("Class", "Images", "Train", "Val", "Examples")


class ClassTableModel(QAbstractTableModel):
    """Classes as rows: name (editable), images, training and validation counts, examples.

    The model never validates a new name itself: an edit emits :attr:`rename_requested`, and
    the pane that owns the data set decides and calls :meth:`set_names`.
    """

    rename_requested = Signal(int, str)  #: row, the name typed (not yet accepted)

    def __init__(self, parent=None):
        super().__init__(parent)
        self._names: list[str] = []
        self._folders: list[str] = []
        self._counts: list[int] = []
        self._examples: list[list[str]] = []
        self._sizes: list[tuple[int, int]] = []
        self._removed: frozenset[int] = frozenset()

    def set_classes(self, names: Sequence[str], folders: Sequence[str], counts: Sequence[int],
                    examples: Sequence[Sequence[str]]) -> None:
        """Replace every row (split sizes start empty; see :meth:`set_split`)."""
        self.beginResetModel()
        self._names = list(names)
        self._folders = list(folders)
        self._counts = list(counts)
        self._examples = [list(e) for e in examples]
        self._sizes = []
        self._removed = frozenset()
        self.endResetModel()

    def clear(self) -> None:
        self.set_classes([], [], [], [])

    def set_names(self, names: Sequence[str]) -> None:
        self._names = list(names)
        self._changed(NAME, NAME)

    def set_split(self, sizes: Sequence[tuple[int, int]], removed: set[int]) -> None:
        """``(training, validation)`` per row, and the rows left out (struck through)."""
        self._sizes = list(sizes)
        self._removed = frozenset(removed)
        self._changed(NAME, VAL)

    def name(self, row: int) -> str:
        return self._names[row]

    def examples(self, row: int) -> list[str]:
        return self._examples[row]

    def _changed(self, first: int, last: int) -> None:
        if self._names:
            self.dataChanged.emit(self.index(0, first), self.index(len(self._names) - 1, last))

    # -- QAbstractTableModel -----------------------------------------------------------------
    def rowCount(self, parent=None) -> int:
        return 0 if parent is not None and parent.isValid() else len(self._names)

    def columnCount(self, parent=None) -> int:
        return 0 if parent is not None and parent.isValid() else len(HEADERS)

    def headerData(self, section, orientation, role=Qt.ItemDataRole.DisplayRole):
        if (orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole
                and 0 <= section < len(HEADERS)):
            return HEADERS[section]
        return None

    def data(self, index, role=Qt.ItemDataRole.DisplayRole):
        if not index.isValid():
            return None
        row, column = index.row(), index.column()
        gone = row in self._removed
        if role in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.EditRole):
            if column == NAME:
                return self._names[row]
            if column == IMAGES:
                return f"{self._counts[row]:,}"
            if column in (TRAIN, VAL):
                if gone:
                    return "–"
                if row < len(self._sizes):
                    return f"{self._sizes[row][column - TRAIN]:,}"
            return None
        if role == EXAMPLES_ROLE and column == EXAMPLES:
            return self._examples[row]
        if role == Qt.ItemDataRole.ToolTipRole:
            if column == NAME:
                return f"{self._folders[row]}\nDouble-click to rename (in tlgui only)"
            if column == EXAMPLES:
                return f"the first {len(self._examples[row])} images of {self._folders[row]}"
            return None
        if role == Qt.ItemDataRole.FontRole and column != EXAMPLES and gone:
            font = QFont()
            font.setStrikeOut(True)
            return font
        if role == Qt.ItemDataRole.TextAlignmentRole and column in (IMAGES, TRAIN, VAL):
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None

    def flags(self, index):
        flags = super().flags(index)
        if index.isValid() and index.column() == NAME:
            flags |= Qt.ItemFlag.ItemIsEditable
        return flags

    def setData(self, index, value, role=Qt.ItemDataRole.EditRole) -> bool:
        if not index.isValid() or index.column() != NAME or role != Qt.ItemDataRole.EditRole:
            return False
        self.rename_requested.emit(index.row(), str(value))
        return True


class ExampleThumbnails:
    """A least-recently-used cache of example thumbnails, decoded by the view's own loader.

    :meth:`pixmap` answers at once: the thumbnail, or None while it is being decoded (it is
    then asked for). Pixmaps are decoded at the view's device pixel ratio (``ratio``), so they
    stay sharp at 200 % scaling.
    """

    def __init__(self, loader: ThumbnailLoader, ratio: float, capacity: int = CACHE_SIZE):
        self.loader = loader
        self.ratio = ratio
        self.capacity = capacity
        self._pixmaps: OrderedDict[str, QPixmap] = OrderedDict()
        self._failed: set[str] = set()
        self.wanted: set[str] = set()  #: asked for by paints since the last flush

    def pixmap(self, path: str) -> QPixmap | None:
        pixmap = self._pixmaps.get(path)
        if pixmap is not None:
            self._pixmaps.move_to_end(path)
        elif path not in self._failed:
            self.wanted.add(path)
        return pixmap

    def store(self, path: str, image: QImage) -> None:
        pixmap = QPixmap.fromImage(image)
        pixmap.setDevicePixelRatio(self.ratio)
        self._pixmaps[path] = pixmap
        while len(self._pixmaps) > self.capacity:
            self._pixmaps.popitem(last=False)

    def failed(self, path: str) -> None:
        self._failed.add(path)

    def has_failed(self, path: str) -> bool:
        """True when ``path`` could not be decoded (it is not asked for again)."""
        return path in self._failed

    def clear(self) -> None:
        self._pixmaps.clear()
        self._failed.clear()
        self.wanted.clear()
        self.loader.clear()

    def __len__(self) -> int:
        return len(self._pixmaps)


class ExamplesDelegate(QStyledItemDelegate):
    """Paints a row's example thumbnails side by side; a square in the palette's alternate
    base colour stands for one still being decoded, crossed out for one that cannot be."""

    def __init__(self, thumbnails: ExampleThumbnails, on_missing, parent=None):
        super().__init__(parent)
        self.thumbnails = thumbnails
        self._on_missing = on_missing

    def paint(self, painter, option, index) -> None:
        style = option.widget.style() if option.widget else None
        if style is not None:  # the selection and focus background, without text
            background = QStyleOptionViewItem(option)
            self.initStyleOption(background, index)
            background.text = ""
            style.drawControl(QStyle.ControlElement.CE_ItemViewItem, background, painter,
                              option.widget)
        paths = index.data(EXAMPLES_ROLE) or []
        rect = option.rect
        x, y = rect.x() + 2, rect.y() + (rect.height() - THUMB) // 2
        placeholder = option.palette.color(QPalette.ColorRole.AlternateBase)
        missing = False
        for path in paths:
            if x + THUMB > rect.right():
                break
            cell = QRect(x, y, THUMB, THUMB)
            pixmap = self.thumbnails.pixmap(path)
            if pixmap is None:
                painter.fillRect(cell, placeholder)
                if self.thumbnails.has_failed(path):  # no preview: a crossed frame
                    painter.save()
                    painter.setPen(option.palette.color(QPalette.ColorRole.Mid))
                    painter.drawRect(cell.adjusted(0, 0, -1, -1))
                    painter.drawLine(cell.topLeft(), cell.bottomRight())
                    painter.drawLine(cell.topRight(), cell.bottomLeft())
                    painter.restore()
                else:
                    missing = True
            else:
                size = pixmap.deviceIndependentSize()
                w, h = int(size.width()), int(size.height())
                painter.drawPixmap(x + (THUMB - w) // 2, y + (THUMB - h) // 2, pixmap)
            x += THUMB + GAP
        if missing:
            self._on_missing()

    def sizeHint(self, option, index):
        size = super().sizeHint(option, index)
        paths = index.data(EXAMPLES_ROLE) or []
        size.setWidth(max(size.width(), len(paths) * (THUMB + GAP) + 4))
        size.setHeight(THUMB + 8)
        return size


class ClassTable(QTableView):
    """The class table: a :class:`ClassTableModel`, its example strips and their loader."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.class_model = ClassTableModel(self)
        self.setModel(self.class_model)
        self.loader = ThumbnailLoader(THUMB, self)
        self.thumbnails = ExampleThumbnails(self.loader, 1.0)
        self.loader.ready.connect(self._on_thumbnail)
        self.loader.failed.connect(self._on_thumbnail_failed)
        # Requests are gathered while a paint runs and sent once it is over.
        self._flush = QTimer(self)
        self._flush.setSingleShot(True)
        self._flush.setInterval(0)
        self._flush.timeout.connect(self._request_visible)
        self.setItemDelegateForColumn(
            EXAMPLES, ExamplesDelegate(self.thumbnails, self._flush.start, self))
        self._rows_of: dict[str, list[int]] = {}
        self.class_model.modelReset.connect(self._on_reset)

        header = self.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        header.setStretchLastSection(True)
        header.setHighlightSections(False)
        self.verticalHeader().setVisible(False)
        self.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
        self.verticalHeader().setDefaultSectionSize(THUMB + 8)
        self.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.setEditTriggers(QAbstractItemView.EditTrigger.DoubleClicked
                             | QAbstractItemView.EditTrigger.EditKeyPressed)
        self.setToolTip("Double-click a name to rename the class (in tlgui only)")
        self.setColumnWidth(NAME, 160)
        for column in (IMAGES, TRAIN, VAL):
            self.setColumnWidth(column, 70)

    def visible_rows(self) -> range:
        """The rows on screen now."""
        rows = self.class_model.rowCount()
        if rows == 0:
            return range(0)
        first = self.rowAt(0)
        last = self.rowAt(self.viewport().height() - 1)
        first = 0 if first < 0 else first
        last = rows - 1 if last < 0 else last
        return range(first, last + 1)

    def shutdown(self) -> None:
        self._flush.stop()
        self.loader.shutdown()

    @Slot()
    def _on_reset(self) -> None:
        self.thumbnails.clear()
        model = self.class_model
        self._rows_of = {}
        for row in range(model.rowCount()):
            for path in model.examples(row):
                self._rows_of.setdefault(path, []).append(row)

    @Slot()
    def _request_visible(self) -> None:
        """Ask for the missing thumbnails of the rows on screen; withdraw the rest."""
        model = self.class_model
        ratio = self.viewport().devicePixelRatioF()
        if ratio != self.thumbnails.ratio:  # moved to a screen of another scaling: decode anew
            self.thumbnails.clear()
            self.thumbnails.ratio = ratio
            self.viewport().update()
            return
        on_screen = [path for row in self.visible_rows() for path in model.examples(row)]
        self.loader.keep_only(on_screen)
        wanted = [path for path in on_screen if path in self.thumbnails.wanted]
        self.thumbnails.wanted.clear()
        self.loader.request(((path, path) for path in wanted), size=math.ceil(THUMB * ratio))

    def scrollContentsBy(self, dx: int, dy: int) -> None:
        super().scrollContentsBy(dx, dy)
        self._flush.start()  # withdraw what scrolled away, even if nothing new is missing

    @Slot(object, QImage)
    def _on_thumbnail(self, path, image: QImage) -> None:
        self.thumbnails.store(path, image)
        self._repaint_rows(path)

    @Slot(object)
    def _on_thumbnail_failed(self, path) -> None:
        self.thumbnails.failed(path)
        self._repaint_rows(path)  # no longer drawn as on its way

    def _repaint_rows(self, path: str) -> None:
        for row in self._rows_of.get(path, ()):
            self.viewport().update(self.visualRect(self.class_model.index(row, EXAMPLES)))

