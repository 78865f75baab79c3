"""The Stored Features tab: what the feature store on disk holds (a backbone's outputs for a
list of images, kept so that a second training, audit or map with the same backbone skips
the backbone pass), how much room it takes against its limit, and removing a set or all of
it. The store itself is :mod:`tlgui.core.feature_store`."""

from __future__ import annotations

import time
from collections.abc import Callable

from PySide6.QtCore import Qt, QUrl, Signal
from PySide6.QtGui import QDesktopServices, QKeySequence
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QMessageBox,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from ...core.units import format_bytes
from ..workers import TaskController

HEADERS = ["backbone", "weights", "frozen blocks", "input", "images", "size", "last used"]
#: Characters of the weights' fingerprint shown: enough to tell sets apart at a glance.
WEIGHTS_SHOWN = 8


def _listing() -> dict:
    """Read off the store (in a worker: at 100,000 images the indexes take a moment)."""
    from ...core.feature_store import FeatureStore, limit_bytes

    store = FeatureStore()
    contents = store.contents()
    return {"root": store.root, "contents": contents, "limit": limit_bytes(),
            "total": sum(k.size_bytes for k in contents)}


class NumberItem(QTableWidgetItem):
    """A cell shown as text but sorted by a number."""

    def __init__(self, text: str, number: float):
        super().__init__(text)
        self.number = number
        self.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)

    def __lt__(self, other) -> bool:
        if isinstance(other, NumberItem):
            return self.number < other.number
        return super().__lt__(other)


class StoreTab(QWidget):
    """Lists the feature store and removes sets from it."""

    message = Signal(str)
    error = Signal(str, str)

    def __init__(self, parent=None):
        super().__init__(parent)
        #: True while something reads or writes the store (a training, an audit, a map):
        #: removing its files then would fail that work. Set by the pane and the window.
        self.in_use: Callable[[], bool] = lambda: False
        self.listing: dict | None = None
        self.worker = TaskController("feature store", self)  # reads the listing
        self.remover = TaskController("feature store removal", self)
        self.summary = QLabel("Reading the feature store…")
        self.summary.setWordWrap(True)
        self.summary.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.table = QTableWidget(0, len(HEADERS))
        self.table.setHorizontalHeaderLabels(HEADERS)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().hide()
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.table.setSortingEnabled(True)
        self.table.itemSelectionChanged.connect(self._sync_buttons)
        self.refresh_button = QPushButton("Refresh")
        self.refresh_button.setShortcut(QKeySequence(QKeySequence.StandardKey.Refresh))
        self.remove_button = QPushButton("Remove Selected")
        self.remove_button.setShortcut(QKeySequence(Qt.Key.Key_Delete))
        self.clear_button = QPushButton("Clear All…")
        self.open_button = QPushButton("Open Folder")
        self.refresh_button.clicked.connect(self.refresh)
        self.remove_button.clicked.connect(self.remove_selected)
        self.clear_button.clicked.connect(self.clear_all)
        self.open_button.clicked.connect(self._open_folder)

        buttons = QHBoxLayout()
        for button in (self.refresh_button, self.remove_button, self.clear_button):
            buttons.addWidget(button)
        buttons.addStretch()
        buttons.addWidget(self.open_button)
        layout = QVBoxLayout(self)
        layout.addWidget(self.summary)
        layout.addWidget(self.table, 1)
        layout.addLayout(buttons)
        self._sync_buttons()

    # -- reading -----------------------------------------------------------------------------
    def refresh(self) -> None:
        """Read the store again (a listing still being read is cancelled: this one is newer)."""
        self.worker.start(lambda emit, control: _listing(), on_succeeded=self.show_listing,
                          on_failed=self._failed)

    def show_listing(self, listing: dict) -> None:
        self.listing = listing
        contents = listing["contents"]
        self.table.setSortingEnabled(False)
        self.table.setRowCount(len(contents))
        for row, k in enumerate(contents):
            weights = QTableWidgetItem(k.weights[:WEIGHTS_SHOWN])
            weights.setToolTip("A fingerprint of the frozen weights these features came from: "
                               "sets that differ only here came from other weights (another "
                               "random start, ImageNet, a fine-tuned model)")
            cells = [QTableWidgetItem(k.backbone), weights, NumberItem(str(k.cut), k.cut),
                     NumberItem(f"{k.image_size} px" if k.image_size else "?", k.image_size),
                     NumberItem(f"{k.images:,}", k.images),
                     NumberItem(format_bytes(k.size_bytes), k.size_bytes),
                     NumberItem(time.strftime("%Y-%m-%d %H:%M", time.localtime(k.last_used)),
                                k.last_used)]
            cells[0].setData(Qt.ItemDataRole.UserRole, str(k.folder))
            for column, cell in enumerate(cells):
                self.table.setItem(row, column, cell)
        self.table.setSortingEnabled(True)
        sets = f"{len(contents)} set{'s' if len(contents) != 1 else ''}"
        self.summary.setText(
            f"Backbone outputs kept on disk, so that another training, audit or map with the "
            f"same backbone, weights, frozen blocks and input size skips the backbone pass. "
            f"{sets}, {format_bytes(listing['total'])} of a {format_bytes(listing['limit'])} "
            f"limit (the least recently used go first beyond it; TLGUI_FEATURE_STORE_GB "
            f"changes it). Folder: {listing['root']}" if contents else
            f"The feature store is empty. A training with frozen blocks, an audit or a map "
            f"keeps its backbone outputs here. Folder: {listing['root']}")
        self._sync_buttons()

    def _failed(self, message: str, details: str) -> None:
        self.summary.setText(f"The feature store could not be read: {message}")
        self.error.emit(message, details)

    # -- removing ----------------------------------------------------------------------------
    def selected_folders(self) -> list[str]:
        rows = {index.row() for index in self.table.selectionModel().selectedRows()}
        return [self.table.item(row, 0).data(Qt.ItemDataRole.UserRole) for row in sorted(rows)]

    def remove_selected(self) -> None:
        folders = self.selected_folders()
        if folders and self._may_remove():
            self._remove(folders)

    def clear_all(self) -> None:
        if not self.listing or not self.listing["contents"] or not self._may_remove():
            return
        answer = QMessageBox.question(
            self, "Clear the feature store",
            f"Remove every stored feature ({format_bytes(self.listing['total'])})? The next "
            f"training, audit or map computes them again. Your images are not touched.")
        if answer == QMessageBox.StandardButton.Yes:
            self._remove([str(k.folder) for k in self.listing["contents"]])

    def _may_remove(self) -> bool:
        if self.remover.is_running():
            return False
        if self.in_use():
            self.message.emit("the feature store is in use (a training, audit or map is "
                              "running): remove features once it ends")
            return False
        return True

    def _remove(self, folders: list[str]) -> None:
        def task(emit, control):
            from ...core.feature_store import FeatureStore

            store = FeatureStore()
            return sum(store.remove(folder) for folder in folders)

        self.remove_button.setEnabled(False)
        self.clear_button.setEnabled(False)
        self.remover.start(task, on_succeeded=self._removed, on_failed=self._remove_failed)

    def _removed(self, freed: int) -> None:
        self.table.clearSelection()  # a second Delete must not remove the next set unasked
        self.message.emit(f"feature store: {format_bytes(freed)} freed")
        self.refresh()

    def _remove_failed(self, message: str, details: str) -> None:
        self.error.emit(f"removing stored features: {message}", details)
        self.refresh()

    def _open_folder(self) -> None:
        if self.listing is not None:
            root = self.listing["root"]
            root.mkdir(parents=True, exist_ok=True)
            QDesktopServices.openUrl(QUrl.fromLocalFile(str(root)))

    def _sync_buttons(self) -> None:
        has = bool(self.listing and self.listing["contents"])
        self.remove_button.setEnabled(has and bool(self.table.selectionModel().selectedRows()))
        self.clear_button.setEnabled(has)
        self.open_button.setEnabled(self.listing is not None)

    def showEvent(self, event) -> None:
        super().showEvent(event)
        self.refresh()  # a training or audit may have added to the store since

    def shutdown(self) -> None:
        self.worker.shutdown()
        self.remover.shutdown()
