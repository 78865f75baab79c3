"""Lists of images that stay fast at 100,000 rows: a model, a proxy and a thumbnail delegate.

Every image list of the window (files left out, mistakes, the images of a matrix cell,
predictions, a class's images) is an :class:`ImageTableView`. Its rows live column-wise in an
:class:`ImageListModel` (Python lists of text, numpy arrays of numbers) and are turned into text
only when a cell is painted, so loading rows costs no widget, no text and no thumbnail per row.

Sorting and filtering are computed by the model in one numpy pass each (a stable argsort of the
column, a substring test over the text columns), never by a Python ``lessThan`` or
``filterAcceptsRow``, which Qt would call once per comparison or per row. The
:class:`ImageProxyModel` in front of it keeps Qt's usual entry point (a header click calls the
proxy's ``sort``) and hands the work to the model.

Thumbnails are asked for by the delegate, for the rows being painted only, from the view's own
:class:`~tlgui.gui.thumbnails.ThumbnailLoader`; requests for rows scrolled away are withdrawn
before they decode, and an LRU cache keeps the last few thousand pixmaps. Thumbnails are decoded
at the screen's device pixel ratio, so they stay sharp at 200 % scaling.
"""

from __future__ import annotations

import math
import numbers
from collections import OrderedDict
from collections.abc import Callable, Hashable, Sequence

import numpy as np
from PySide6.QtCore import (
    QAbstractTableModel,
    QModelIndex,
    QRect,
    QSortFilterProxyModel,
    Qt,
    QTimer,
    Signal,
    Slot,
)
from PySide6.QtGui import QImage, QKeySequence, QPalette, QPixmap, QShortcut
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QStyle,
    QStyledItemDelegate,
    QStyleOption,
    QStyleOptionHeader,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from .thumbnails import ThumbnailLoader

#: Thumbnail side in logical pixels.
THUMB = 48
#: Pixmaps an image list keeps (at 48 px and 200 % scaling about 18 MB).
CACHE_LIMIT = 2000
#: The item role that holds a row's image path.
PATH_ROLE = Qt.ItemDataRole.UserRole
#: Rows measured to fit a column's width to its contents (Qt measures 1,000 by default).
MEASURED_ROWS = 100
#: How long typing in a list's filter field pauses before the list is filtered, in ms: one
#: pass over 100,000 rows takes 70-150 ms, so it is not made for every letter of a word.
FILTER_DELAY_MS = 200
#: The widest a column is made by fitting it to its contents; the user may widen it.
MAX_FITTED_WIDTH = 400
_RIGHT = (Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter).value
_DISPLAY = Qt.ItemDataRole.DisplayRole.value
_TOOLTIP = Qt.ItemDataRole.ToolTipRole.value
_ALIGNMENT = Qt.ItemDataRole.TextAlignmentRole.value
_PATH = PATH_ROLE.value


def stable_order(keys: np.ndarray, descending: bool) -> np.ndarray:
    """Indexes that sort ``keys``, equal keys kept in their original order in both directions.

    Float keys are sorted with NaN last in both directions."""
    if keys.dtype.kind == "f":
        return np.argsort(-keys if descending else keys, kind="stable")
    if not descending:
        return np.argsort(keys, kind="stable")
    # Sorting the reversed keys and reversing the result puts equal keys back in their order.
    n = len(keys)
    return (n - 1 - np.argsort(keys[::-1], kind="stable"))[::-1]


def _as_text(value) -> str:
    return value if isinstance(value, str) else "" if value is None else str(value)


def _text_ranks(texts: Sequence) -> np.ndarray:
    """Each text's rank among the case-folded texts (equal texts share one): a small integer
    key that sorts like the texts and can be kept for later sorts."""
    if not texts:
        return np.zeros(0, dtype=np.int64)
    folded = [_as_text(text).casefold() for text in texts]
    distinct = set(folded)
    if len(distinct) * 4 < len(folded):  # class names and the like: rank the few distinct
        rank = {text: i for i, text in enumerate(sorted(distinct))}
        return np.fromiter(map(rank.__getitem__, folded), dtype=np.int64, count=len(folded))
    return np.unique(np.array(folded), return_inverse=True)[1].astype(np.int64).reshape(-1)


class _Column:
    """One column of rows: text kept as given, numbers as a numpy array (NaN where missing)."""

    def __init__(self, values: Sequence, formatter: Callable | None):
        self.formatter = formatter
        self.numbers: np.ndarray | None = None
        self.texts: list[str] | None = None
        self._ranks: np.ndarray | None = None
        if self._looks_numeric(values):
            try:
                array = np.asarray(values)
                if array.dtype.kind not in "iub":
                    array = np.asarray(values, dtype=np.float64)
                self.numbers = array
                return
            except (TypeError, ValueError):
                pass  # text among the numbers: show every value as text
        # Kept as given (no copy of each value): turned into text when painted or sorted.
        self.texts = list(values)

    @staticmethod
    def _looks_numeric(values: Sequence) -> bool:
        if isinstance(values, np.ndarray):
            return values.dtype.kind in "iufb"
        if len(values) == 0:
            return False
        first = values[0]
        return first is None or (isinstance(first, numbers.Number | np.number)
                                 and not isinstance(first, str))

    def __len__(self) -> int:
        return len(self.numbers) if self.numbers is not None else len(self.texts)

    def text(self, row: int) -> str:
        if self.texts is not None:
            return _as_text(self.texts[row])
        value = self.numbers[row].item()
        if isinstance(value, float) and math.isnan(value):
            return ""  # missing
        if self.formatter is not None:
            return self.formatter(value)
        return f"{value:.4g}" if isinstance(value, float) else str(value)

    def sort_keys(self) -> np.ndarray:
        if self.numbers is not None:
            return self.numbers.astype(np.float64, copy=False)
        if self._ranks is None:
            self._ranks = _text_ranks(self.texts)
        return self._ranks


class ImageListModel(QAbstractTableModel):
    """Rows of images: a path per row and columns of text or numbers, stored column-wise.

    The model shows its rows sorted and filtered (``sort``, ``set_filter``); row ``r`` of the
    model is row ``r`` of the view. Column 0 is the thumbnail column when ``thumbnails`` is
    true; the columns named by ``headers`` follow it. Cell text is made when a cell is painted.
    """

    def __init__(self, headers: Sequence[str], thumbnails: bool = True, parent=None):
        super().__init__(parent)
        self.headers = list(headers)
        self.offset = 1 if thumbnails else 0  #: model columns before the first header
        self._paths: list[str] = []
        self._columns: list[_Column] = []
        self._path_ranks: np.ndarray | None = None
        self._order = np.zeros(0, dtype=np.int64)  # stored rows, sorted
        self._rows = np.zeros(0, dtype=np.int64)  # stored rows shown, in view order
        self._sort_column = -1
        self._sort_order = Qt.SortOrder.AscendingOrder
        self._filter = ""
        self._haystacks: list[str] | None = None  # case-folded text of each row, for filters

    # -- content -----------------------------------------------------------------------------
    def set_rows(self, paths: Sequence[str], columns: Sequence[Sequence],
                 formats: dict[int, Callable] | None = None) -> None:
        """Replace every row. ``columns[c]`` holds the values of ``headers[c]``, one per path:
        text, or numbers (sorted numerically, shown through ``formats[c]`` when given, which
        turns a number into text, e.g. a percentage)."""
        if len(columns) != len(self.headers):
            raise ValueError(f"{len(columns)} columns given for {len(self.headers)} headers")
        formats = formats or {}
        built = [_Column(values, formats.get(c)) for c, values in enumerate(columns)]
        for header, column in zip(self.headers, built):
            if len(column) != len(paths):
                raise ValueError(f"column {header!r} has {len(column)} values for "
                                 f"{len(paths)} images")
        self.beginResetModel()
        self._paths = list(paths)
        self._columns = built
        self._path_ranks = None
        self._haystacks = None
        self._order = self._sorted(self._sort_column, self._sort_order)
        self._rows = self._shown(self._order)
        self.endResetModel()

    def path(self, row: int) -> str:
        """The image path of view row ``row``."""
        return self._paths[self._rows[row]]

    def stored_row(self, row: int) -> int:
        """Where view row ``row`` was in the rows given to :meth:`set_rows`."""
        return int(self._rows[row])

    def paths(self) -> list[str]:
        """The image paths of the shown rows, in view order."""
        return [self._paths[i] for i in self._rows.tolist()]

    def row_of(self, path: str) -> int:
        """The view row showing ``path``, or -1 (hidden by the filter, or not a row)."""
        try:
            stored = self._paths.index(path)
        except ValueError:
            return -1
        found = np.flatnonzero(self._rows == stored)
        return int(found[0]) if len(found) else -1

    def cell_text(self, row: int, column: int) -> str:
        """The text of view row ``row`` in model column ``column`` ("" for thumbnails)."""
        column -= self.offset
        return "" if column < 0 else self._columns[column].text(int(self._rows[row]))

    def total_rows(self) -> int:
        """Rows stored, shown or not."""
        return len(self._paths)

    # -- Qt model ----------------------------------------------------------------------------
    def rowCount(self, parent=QModelIndex()) -> int:  # noqa: B008 - Qt's signature
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent=QModelIndex()) -> int:  # noqa: B008 - Qt's signature
        return 0 if parent.isValid() else self.offset + len(self.headers)

    def headerData(self, section, orientation, role=Qt.ItemDataRole.DisplayRole):
        if orientation != Qt.Orientation.Horizontal:
            return None
        if role == Qt.ItemDataRole.DisplayRole:
            return "" if section < self.offset else self.headers[section - self.offset]
        if role == Qt.ItemDataRole.InitialSortOrderRole:
            # A first click on a column sorts it ascending, whatever the previous column's order.
            return Qt.SortOrder.AscendingOrder.value
        return None

    def data(self, index, role=_DISPLAY):
        # Called a dozen times per painted cell: roles are compared as plain ints, because
        # looking up a Qt enum member costs a microsecond each time.
        if not index.isValid():
            return None
        if role == _DISPLAY:
            column = index.column() - self.offset
            return None if column < 0 else self._columns[column].text(self._rows[index.row()])
        if role == _PATH or role == _TOOLTIP:
            return self._paths[self._rows[index.row()]]
        if role == _ALIGNMENT:
            column = index.column() - self.offset
            if column >= 0 and self._columns[column].numbers is not None:
                return _RIGHT
        return None

    def sort(self, column: int, order=Qt.SortOrder.AscendingOrder) -> None:
        """Sort by model column ``column`` (the thumbnail column sorts by path; -1 restores
        the order the rows were given in), keeping selections and other persistent indexes
        on their rows."""
        if (column, order) == (self._sort_column, self._sort_order):
            return  # already so: QTableView.sortByColumn asks twice
        self._sort_column, self._sort_order = column, order
        self.layoutAboutToBeChanged.emit()
        before = self.persistentIndexList()
        stored = [int(self._rows[index.row()]) for index in before]
        self._order = self._sorted(column, order)
        self._rows = self._shown(self._order)
        position = np.full(len(self._paths), -1, dtype=np.int64)
        position[self._rows] = np.arange(len(self._rows))
        after = [self.index(int(position[s]), index.column()) for s, index in zip(stored, before)]
        self.changePersistentIndexList(before, after)
        self.layoutChanged.emit()

    def set_filter(self, text: str) -> None:
        """Show only the rows whose text columns contain ``text`` (case-insensitive); an empty
        text shows every row."""
        text = text.strip().casefold()
        if text == self._filter:
            return
        self.beginResetModel()
        self._filter = text
        self._rows = self._shown(self._order)
        self.endResetModel()

    def filter_text(self) -> str:
        return self._filter

    def sort_state(self) -> tuple[int, Qt.SortOrder]:
        """The model column sorted by (-1: the given order) and the order."""
        return self._sort_column, self._sort_order

    # -- sorting and filtering in one pass each -----------------------------------------------
    def _sorted(self, column: int, order: Qt.SortOrder) -> np.ndarray:
        n = len(self._paths)
        if column < 0 or column >= self.columnCount() or n == 0:
            return np.arange(n, dtype=np.int64)
        if column < self.offset:
            if self._path_ranks is None:
                self._path_ranks = _text_ranks(self._paths)
            keys = self._path_ranks
        else:
            keys = self._columns[column - self.offset].sort_keys()
        return stable_order(keys, order == Qt.SortOrder.DescendingOrder).astype(np.int64)

    def _shown(self, order: np.ndarray) -> np.ndarray:
        if not self._filter:
            return order
        if self._haystacks is None:
            texts = [column.texts for column in self._columns if column.texts is not None]
            # A separator no one types, so that a filter never matches across two columns.
            self._haystacks = ["\x00".join(map(_as_text, parts)).casefold()
                               for parts in zip(*texts)] \
                if texts else [""] * len(self._paths)
        needle = self._filter
        keep = np.fromiter((needle in h for h in self._haystacks), dtype=bool,
                           count=len(self._haystacks))
        return order[keep[order]]


class ImageProxyModel(QSortFilterProxyModel):
    """The proxy between an :class:`ImageListModel` and its view: Qt's sort entry point (a
    header click, ``sortByColumn``) sorts the source model with numpy instead of comparing
    rows in Python, and filtering is the source model's ``set_filter``. Its own sort and
    filter stay off, so a proxy row is the source row of the same number."""

    def sort(self, column: int, order=Qt.SortOrder.AscendingOrder) -> None:
        self.sourceModel().sort(column, order)

    def set_filter(self, text: str) -> None:
        self.sourceModel().set_filter(text)


class PixmapCache:
    """The last ``limit`` pixmaps used, by key; the least recently used goes first."""

    def __init__(self, limit: int = CACHE_LIMIT):
        self.limit = limit
        self._items: OrderedDict[Hashable, QPixmap] = OrderedDict()

    def get(self, key: Hashable) -> QPixmap | None:
        pixmap = self._items.get(key)
        if pixmap is not None:
            self._items.move_to_end(key)
        return pixmap

    def put(self, key: Hashable, pixmap: QPixmap) -> None:
        self._items[key] = pixmap
        self._items.move_to_end(key)
        while len(self._items) > self.limit:
            self._items.popitem(last=False)

    def clear(self) -> None:
        self._items.clear()

    def __contains__(self, key: Hashable) -> bool:
        return key in self._items

    def __len__(self) -> int:
        return len(self._items)


class ThumbnailDelegate(QStyledItemDelegate):
    """Paints a row's thumbnail, or a placeholder in the palette's colours while it loads;
    painting a row is what asks for its thumbnail."""

    def __init__(self, view: ImageTableView):
        super().__init__(view)
        self._view = view

    def paint(self, painter, option, index) -> None:
        super().paint(painter, option, index)  # background, selection and focus
        view = self._view
        side = view.thumbnail_size
        box = QRect(0, 0, side, side)
        box.moveCenter(option.rect.center())
        pixmap, failed = view._thumbnail(index.data(PATH_ROLE))
        if pixmap is not None:
            size = pixmap.deviceIndependentSize().toSize()
            target = QRect(0, 0, size.width(), size.height())
            target.moveCenter(box.center())
            painter.drawPixmap(target, pixmap)
            return
        palette = option.palette
        painter.save()
        painter.fillRect(box, palette.color(QPalette.ColorRole.Midlight))
        if failed:  # no preview: a crossed frame
            painter.setPen(palette.color(QPalette.ColorRole.Mid))
            painter.drawRect(box.adjusted(0, 0, -1, -1))
            painter.drawLine(box.topLeft(), box.bottomRight())
            painter.drawLine(box.topRight(), box.bottomLeft())
        painter.restore()


class SortArrowHeader(QHeaderView):
    """A header whose sort arrow points up for ascending and down for descending on every
    platform. Qt leaves the direction to the style, and Fusion on Linux draws the opposite
    (GTK's convention), so a list sorted by descending confidence showed ▲."""

    def initStyleOptionForIndex(self, option, logical_index: int) -> None:
        super().initStyleOptionForIndex(option, logical_index)
        option.sortIndicator = QStyleOptionHeader.SortIndicator.None_  # drawn by paintSection

    def paintSection(self, painter, rect: QRect, logical_index: int) -> None:
        painter.save()
        super().paintSection(painter, rect, logical_index)
        painter.restore()
        if not (self.isSortIndicatorShown() and logical_index == self.sortIndicatorSection()):
            return
        style = self.style()
        header = QStyleOptionHeader()
        self.initStyleOption(header)
        header.rect, header.section = rect, logical_index
        header.sortIndicator = QStyleOptionHeader.SortIndicator.SortUp  # so a place is kept
        arrow = QStyleOption()
        arrow.initFrom(self)
        arrow.rect = style.subElementRect(QStyle.SubElement.SE_HeaderArrow, header, self)
        ascending = self.sortIndicatorOrder() == Qt.SortOrder.AscendingOrder
        primitive = (QStyle.PrimitiveElement.PE_IndicatorArrowUp if ascending
                     else QStyle.PrimitiveElement.PE_IndicatorArrowDown)
        style.drawPrimitive(primitive, arrow, painter, self)


class ImageTableView(QWidget):
    """A sortable, filterable list of images with a thumbnail column.

    ``headers`` names the text columns; the thumbnail column is added in front of them when
    ``thumbnails`` is true. Column numbers in this class's methods (``columns`` and ``formats``
    of :meth:`set_rows`, :meth:`sort_by`) count ``headers`` only; view rows count the rows
    shown (sorted and filtered).
    """

    selection_changed = Signal()  #: the selected row changed (or was cleared)
    activated = Signal(str)  #: path of the row opened with Enter or a double-click

    def __init__(self, headers: list[str], thumbnails: bool = True, parent=None, *,
                 thumbnail_size: int = THUMB, cache_limit: int = CACHE_LIMIT,
                 filterable: bool = True):
        super().__init__(parent)
        self.thumbnail_size = thumbnail_size
        self.model = ImageListModel(headers, thumbnails, self)
        self.proxy = ImageProxyModel(self)
        self.proxy.setSourceModel(self.model)
        self.table = QTableView(self)
        header = SortArrowHeader(Qt.Orientation.Horizontal, self.table)
        header.setSectionsClickable(True)  # as QTableView's own header is
        self.table.setHorizontalHeader(header)
        self.table.setModel(self.proxy)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        #: The filter field above the list (None when not ``filterable``); Ctrl+F goes to it.
        self.filter_field: QLineEdit | None = None
        self.shown_label = QLabel(self)  # "12 of 100,000 shown" while a filter hides rows
        self.shown_label.setVisible(False)
        if filterable:
            self.filter_field = QLineEdit(self)
            self.filter_field.setPlaceholderText(
                "Filter: part of a file name or of any text shown (Ctrl+F)")
            self.filter_field.setClearButtonEnabled(True)
            self.filter_field.setAccessibleName("Filter the list")
            self._filter_timer = QTimer(self, singleShot=True, interval=FILTER_DELAY_MS)
            self._filter_timer.timeout.connect(self._filter_now)
            self.filter_field.textEdited.connect(lambda _text: self._filter_timer.start())
            self.filter_field.returnPressed.connect(self._filter_now)
            find = QShortcut(QKeySequence.StandardKey.Find, self)
            find.setContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
            find.activated.connect(self._focus_filter)
            bar = QHBoxLayout()
            bar.setContentsMargins(0, 0, 0, 0)
            bar.addWidget(self.filter_field, 1)
            bar.addWidget(self.shown_label)
            layout.addLayout(bar)
        layout.addWidget(self.table)

        table = self.table
        table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        table.setWordWrap(False)
        table.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        table.setAlternatingRowColors(True)
        rows = table.verticalHeader()
        rows.setVisible(False)
        # Fixed heights: Qt then never measures a row, whatever the number of rows.
        rows.setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
        rows.setResizeContentsPrecision(MEASURED_ROWS)
        line = table.fontMetrics().height() + 6
        rows.setDefaultSectionSize(max(line, thumbnail_size + 6) if thumbnails else line)
        header = table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        header.setStretchLastSection(True)
        if thumbnails:
            header.setSectionResizeMode(0, QHeaderView.ResizeMode.Fixed)
            table.setColumnWidth(0, thumbnail_size + 8)
        # No sort until asked for: Qt would otherwise sort by its default indicator.
        header.setSortIndicator(-1, Qt.SortOrder.AscendingOrder)
        table.setSortingEnabled(True)

        self.cache = PixmapCache(cache_limit)
        self._failed: set[Hashable] = set()
        self._wanted: dict[Hashable, str] = {}  # asked for by this paint, in paint order
        self.loader: ThumbnailLoader | None = None
        if thumbnails:
            self.loader = ThumbnailLoader(thumbnail_size, self)
            self.loader.ready.connect(self._on_thumbnail)
            self.loader.failed.connect(self._on_thumbnail_failed)
            table.setItemDelegateForColumn(0, ThumbnailDelegate(self))
            # Requests are sent once a paint is over, and the ones for rows no longer shown
            # are withdrawn whenever what is shown changes.
            self._request_timer = QTimer(self, singleShot=True, interval=0)
            self._request_timer.timeout.connect(self._send_requests)
            self._drop_timer = QTimer(self, singleShot=True, interval=0)
            self._drop_timer.timeout.connect(self._drop_unseen)
            scroll = table.verticalScrollBar()
            scroll.valueChanged.connect(self._schedule_drop)
            scroll.rangeChanged.connect(self._schedule_drop)
            self.proxy.layoutChanged.connect(self._schedule_drop)
            self.proxy.modelReset.connect(self._schedule_drop)
        table.selectionModel().selectionChanged.connect(self._on_selection_changed)
        table.activated.connect(self._on_activated)

    # -- content -----------------------------------------------------------------------------
    def set_rows(self, paths: Sequence[str], columns: Sequence[Sequence],
                 formats: dict[int, Callable] | None = None) -> None:
        """Replace every row; ``columns[c]`` holds the values of ``headers[c]`` (text, or
        numbers shown through ``formats[c]``). The current sort and filter apply to the new
        rows. Thumbnails of the old rows still on their way are dropped."""
        had_selection = self.selected_path() is not None
        if self.loader is not None:
            self.loader.clear()
            self._wanted.clear()
            self._failed.clear()
        self.model.set_rows(paths, columns, formats)
        self._fit_columns()
        self._show_count()
        if had_selection:  # a reset clears the selection without saying so
            self.selection_changed.emit()

    def clear(self) -> None:
        """No rows."""
        self.set_rows([], [[] for _ in self.model.headers])

    def set_filter(self, text: str) -> None:
        """Show only rows whose text columns contain ``text`` (case-insensitive); the selected
        row stays selected when it is still shown. The filter field shows ``text``."""
        if self.filter_field is not None:
            self._filter_timer.stop()
            if self.filter_field.text() != text:
                self.filter_field.setText(text)
        selected = self.selected_path()
        self.model.set_filter(text)
        row = self.model.row_of(selected) if selected is not None else -1
        if row >= 0:
            self.select_row(row)
        elif selected is not None:
            self.selection_changed.emit()
        self._show_count()

    def _filter_now(self) -> None:
        self.set_filter(self.filter_field.text())

    def _focus_filter(self) -> None:
        self.filter_field.setFocus(Qt.FocusReason.ShortcutFocusReason)
        self.filter_field.selectAll()

    def _show_count(self) -> None:
        shown, total = self.model.rowCount(), self.model.total_rows()
        filtered = bool(self.model.filter_text())
        self.shown_label.setText(f"{shown:,} of {total:,} shown")
        self.shown_label.setVisible(filtered and self.filter_field is not None)

    def sort_by(self, column: int, order=Qt.SortOrder.AscendingOrder) -> None:
        """Sort by ``headers[column]``; the header's indicator shows the same column and
        order."""
        if not 0 <= column < len(self.model.headers):
            raise IndexError(f"no column {column}: the headers are {self.model.headers}")
        self.table.sortByColumn(column + self.model.offset, order)

    # -- rows --------------------------------------------------------------------------------
    def row_count(self) -> int:
        """Rows shown (the filter applied)."""
        return self.proxy.rowCount()

    def paths(self) -> list[str]:
        """The paths of the rows shown, in view order."""
        return self.model.paths()

    def path_at(self, row: int) -> str:
        """The path of view row ``row``."""
        return self.model.path(row)

    def selected_path(self) -> str | None:
        """The path of the selected row, or None."""
        rows = self.table.selectionModel().selectedRows()
        return self.model.path(self.proxy.mapToSource(rows[0]).row()) if rows else None

    def selected_stored_row(self) -> int | None:
        """Where the selected row was in the rows given to :meth:`set_rows` (a path may be
        in several rows), or None."""
        rows = self.table.selectionModel().selectedRows()
        return self.model.stored_row(self.proxy.mapToSource(rows[0]).row()) if rows else None

    def select_row(self, row: int) -> None:
        """Select view row ``row`` and scroll it into view."""
        index = self.proxy.index(row, self.model.offset)
        if not index.isValid():
            return
        self.table.setCurrentIndex(index)
        self.table.selectRow(row)
        self.table.scrollTo(index)

    def shutdown(self) -> None:
        """Stop decoding thumbnails (waits only for the few decoding now)."""
        if self.loader is not None:
            self.loader.shutdown()

    # -- thumbnails --------------------------------------------------------------------------
    def _device_pixel_ratio(self) -> float:
        return self.table.viewport().devicePixelRatioF()

    def _key(self, path: str) -> tuple[str, int]:
        return path, round(self.thumbnail_size * self._device_pixel_ratio())

    def _thumbnail(self, path: str) -> tuple[QPixmap | None, bool]:
        """The cached pixmap of ``path`` at this screen's resolution, or None and whether
        decoding it failed; a missing one is asked for once the paint is over."""
        key = self._key(path)
        pixmap = self.cache.get(key)
        if pixmap is not None:
            return pixmap, False
        if key in self._failed:
            return None, True
        if self.loader is not None and key not in self._wanted:
            self._wanted[key] = path
            self._request_timer.start()
        return None, False

    @Slot()
    def _send_requests(self) -> None:
        wanted, self._wanted = self._wanted, {}
        by_size: dict[int, list] = {}
        for key, path in wanted.items():
            by_size.setdefault(key[1], []).append((key, path))
        for size, items in by_size.items():
            self.loader.request(items, size=size)

    def _schedule_drop(self, *_) -> None:
        # Not QTimer.start itself: a signal's int argument would become the interval.
        self._drop_timer.start()

    @Slot()
    def _drop_unseen(self) -> None:
        """Withdraw the requests for rows that are no longer on screen."""
        self.loader.keep_only(self._keys_on_screen())

    def _keys_on_screen(self) -> set[tuple[str, int]]:
        count = self.proxy.rowCount()
        top = self.table.rowAt(0)
        if count == 0 or top < 0 or not self.table.isVisible():
            return set()
        bottom = self.table.rowAt(self.table.viewport().height() - 1)
        bottom = count - 1 if bottom < 0 else bottom
        return {self._key(self.model.path(row)) for row in range(top, bottom + 1)}

    @Slot(object, QImage)
    def _on_thumbnail(self, key, image: QImage) -> None:
        pixmap = QPixmap.fromImage(image)
        # Decoded at size × ratio device pixels, drawn at size logical pixels: sharp at 200 %.
        pixmap.setDevicePixelRatio(key[1] / self.thumbnail_size)
        self.cache.put(key, pixmap)
        self._repaint_thumbnails()

    @Slot(object)
    def _on_thumbnail_failed(self, key) -> None:
        self._failed.add(key)
        self._repaint_thumbnails()

    def _repaint_thumbnails(self) -> None:
        viewport = self.table.viewport()
        x = self.table.columnViewportPosition(0)
        viewport.update(QRect(x, 0, self.table.columnWidth(0), viewport.height()))

    # -- layout and signals ------------------------------------------------------------------
    def _fit_columns(self) -> None:
        """Fit each text column but the last to its header and its first MEASURED_ROWS rows,
        once per set of rows (Qt's own fitting asks the model a dozen roles per cell)."""
        metrics = self.table.fontMetrics()
        header = self.table.horizontalHeader()
        shown = min(self.model.rowCount(), MEASURED_ROWS)
        for column in range(self.model.offset, self.model.columnCount() - 1):
            widest = max((metrics.horizontalAdvance(self.model.cell_text(row, column))
                          for row in range(shown)), default=0)
            width = max(header.sectionSizeHint(column), widest + 16)
            self.table.setColumnWidth(column, min(width, MAX_FITTED_WIDTH))

    @Slot()
    def _on_selection_changed(self, *args) -> None:
        self.selection_changed.emit()

    @Slot(QModelIndex)
    def _on_activated(self, index) -> None:
        if index.isValid():
            self.activated.emit(self.model.path(self.proxy.mapToSource(index).row()))
