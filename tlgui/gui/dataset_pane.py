"""Step 1, the data: drop or open image folders, see classes, examples, split and skipped files.

Scanning runs in a worker thread: a quick scan (headers and file endings) shows the data at
once, then every image is decoded in full in the same thread and the data set is updated with
what that finds. Thumbnails decode in a thread pool. Removing or renaming a class happens in
the app only — the folders on disk are never touched.
"""

from __future__ import annotations

import os

from PySide6.QtCore import Qt, QUrl, Signal, Slot
from PySide6.QtGui import QImage, QPixmap
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDoubleSpinBox,
    QFileDialog,
    QFrame,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from ..core.data import DatasetError, ScanReport, scan, split, verify_images
from .thumbnails import ThumbnailLoader
from .workers import TaskController

EXAMPLES_PER_CLASS = 8
THUMB = 56


def local_folders(mime) -> list[str]:
    """The local folders in a drag's ``text/uri-list`` (empty unless every URL is one)."""
    if not mime.hasUrls():
        return []
    paths = [QUrl(u).toLocalFile() for u in mime.urls()]
    if paths and all(p and os.path.isdir(p) for p in paths):
        return paths
    return []


class DropZone(QFrame):
    """A large target for folders dragged from the file manager."""

    folders_dropped = Signal(list)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setAcceptDrops(True)
        self.setObjectName("DropZone")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setMinimumHeight(90)
        self._set_style(False)
        layout = QVBoxLayout(self)
        self.title = QLabel("<b>Drop image folders here</b>")
        self.title.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.hint = QLabel(
            "one folder with a sub-folder per class, or several folders at once (one per class)"
        )
        self.hint.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.hint.setStyleSheet("color: #666;")
        buttons = QHBoxLayout()
        self.open_button = QPushButton("Open Folder…")
        self.sample_button = QPushButton("Use Sample Data")
        self.sample_button.setToolTip("320 drawn shapes in four classes, made on this computer")
        buttons.addStretch()
        buttons.addWidget(self.open_button)
        buttons.addWidget(self.sample_button)
        buttons.addStretch()
        layout.addWidget(self.title)
        layout.addWidget(self.hint)
        layout.addLayout(buttons)

    def _set_style(self, active: bool) -> None:
        colour = "#1f77b4" if active else "#aab"
        background = "#eaf2fb" if active else "#f7f8fa"
        self.setStyleSheet(
            f"#DropZone {{ border: 2px dashed {colour}; border-radius: 8px; "
            f"background: {background}; }}"
        )

    def dragEnterEvent(self, event):
        if local_folders(event.mimeData()):
            event.acceptProposedAction()
            self._set_style(True)
        else:
            event.ignore()

    def dragLeaveEvent(self, event):
        self._set_style(False)

    def dropEvent(self, event):
        self._set_style(False)
        folders = local_folders(event.mimeData())
        if folders:
            event.acceptProposedAction()
            self.folders_dropped.emit(folders)


class DatasetPane(QWidget):
    """Scans folders and shows the data set; :meth:`dataset` gives what training will use."""

    dataset_changed = Signal()  #: classes, removals, renames or split settings changed
    scan_failed = Signal(str)  #: one-line reason
    message = Signal(str)  #: a line for the status bar / log

    def __init__(self, parent=None):
        super().__init__(parent)
        self.report: ScanReport | None = None
        self.folders: list[str] = []
        self.test_folder: str | None = None
        self.removed: set[int] = set()
        self.names: list[str] = []
        self._pending_edits: tuple[list[str], list[str]] | None = None
        self._updating = False

        self.scanner = TaskController("scanner", self)
        self.scanner.emitted.connect(self._on_scan_progress)
        self.scanner.succeeded.connect(self._on_verified)
        self.scanner.failed.connect(self._on_scan_failed)
        self.scanner.finished.connect(self._on_scan_finished)
        self.thumbnails = ThumbnailLoader(THUMB, self)
        self.thumbnails.ready.connect(self._on_thumbnail)

        self.drop_zone = DropZone()
        self.drop_zone.folders_dropped.connect(self.load_folders)
        self.drop_zone.open_button.clicked.connect(self.open_folder_dialog)
        self.drop_zone.sample_button.clicked.connect(self.use_sample)

        self.progress = QProgressBar()
        self.progress.setVisible(False)
        self.progress.setFormat("checking files… %v / %m")
        self.summary = QLabel("No data yet.")
        self.summary.setWordWrap(True)
        self.warning = QLabel()
        self.warning.setWordWrap(True)
        self.warning.setStyleSheet(
            "background: #fff4d6; border: 1px solid #e0c060; border-radius: 4px; padding: 4px;")
        self.warning.setVisible(False)

        self.classes = QTableWidget(0, 5)
        self.classes.setHorizontalHeaderLabels(["Class", "Images", "Train", "Val", "Examples"])
        header = self.classes.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        for col in (1, 2, 3):
            header.setSectionResizeMode(col, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(4, QHeaderView.ResizeMode.Stretch)
        self.classes.verticalHeader().setDefaultSectionSize(THUMB + 8)
        self.classes.verticalHeader().setVisible(False)
        self.classes.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.classes.setEditTriggers(QAbstractItemView.EditTrigger.DoubleClicked
                                     | QAbstractItemView.EditTrigger.EditKeyPressed)
        self.classes.itemChanged.connect(self._on_class_edited)
        self.classes.setToolTip("Double-click a name to rename the class (in tlgui only)")

        self.remove_button = QPushButton("Leave Out Class")
        self.remove_button.setToolTip("Train without the selected classes; nothing is deleted")
        self.remove_button.clicked.connect(self._remove_selected)
        self.restore_button = QPushButton("Restore All")
        self.restore_button.clicked.connect(self._restore_all)
        self.val_fraction = QDoubleSpinBox()
        self.val_fraction.setRange(5, 50)
        self.val_fraction.setSingleStep(5)
        self.val_fraction.setDecimals(0)
        self.val_fraction.setSuffix(" % validation")
        self.val_fraction.setValue(20)
        self.val_fraction.valueChanged.connect(self._on_split_changed)
        self.seed = QSpinBox()
        self.seed.setRange(0, 999_999)
        self.seed.setPrefix("seed ")
        self.seed.valueChanged.connect(self._on_split_changed)
        self.test_button = QPushButton("Test Folder…")
        self.test_button.setToolTip("Optional: a separate folder with the same class folders")
        self.test_button.clicked.connect(self._choose_test_folder)

        controls = QHBoxLayout()
        controls.addWidget(self.remove_button)
        controls.addWidget(self.restore_button)
        controls.addStretch()
        controls.addWidget(QLabel("Split:"))
        controls.addWidget(self.val_fraction)
        controls.addWidget(self.seed)
        controls.addWidget(self.test_button)

        self.skipped = QTableWidget(0, 2)
        self.skipped.setHorizontalHeaderLabels(["File or folder", "Why it was left out"])
        self.skipped.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.skipped.horizontalHeader().setSectionResizeMode(
            1, QHeaderView.ResizeMode.ResizeToContents)
        self.skipped.verticalHeader().setVisible(False)
        self.skipped.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.skipped_box = QGroupBox("Left out")
        box = QVBoxLayout(self.skipped_box)
        box.addWidget(self.skipped)
        self.skipped_box.setVisible(False)

        layout = QVBoxLayout(self)
        layout.addWidget(self.drop_zone)
        layout.addWidget(self.progress)
        layout.addWidget(self.summary)
        layout.addWidget(self.warning)
        layout.addWidget(self.classes, 3)
        layout.addLayout(controls)
        layout.addWidget(self.skipped_box, 1)
        self.setAcceptDrops(True)
        self._sync_buttons()

    # -- loading -----------------------------------------------------------------------------
    @Slot(list)
    def load_folders(self, folders: list[str], test_folder: str | None = None) -> None:
        """Scan ``folders`` (one root of class folders, or one folder per class)."""
        self.folders = [os.path.abspath(f) for f in folders]
        self.test_folder = test_folder
        self._start_scan()

    def _start_scan(self) -> None:
        folders, test = list(self.folders), self.test_folder
        self.progress.setRange(0, 0)
        self.progress.setVisible(True)
        self.summary.setText("Checking " + ", ".join(folders) + "…")
        self.message.emit(f"scanning {', '.join(folders)}")

        def task(emit, control):
            report = scan(folders, test_folder=test,
                          progress=lambda d, t: emit(("checking", d, t)), cancel=control)
            emit(("scanned", report))
            return verify_images(report, progress=lambda d, t: emit(("decoding", d, t)),
                                 cancel=control)

        self.scanner.start(task)

    def use_sample(self) -> None:
        """Make (first time only) and load the built-in sample data set."""
        from ..core.sample import ensure_sample_data

        self.progress.setRange(0, 0)
        self.progress.setVisible(True)
        self.summary.setText("Preparing the sample data set…")

        def task(emit, control):
            folder = str(ensure_sample_data())
            report = scan([folder], progress=lambda d, t: emit(("checking", d, t)),
                          cancel=control)
            emit(("scanned", (folder, report)))
            return folder, verify_images(report, progress=lambda d, t: emit(("decoding", d, t)),
                                         cancel=control)

        self.folders = []
        self.test_folder = None
        self.scanner.start(task)

    def open_folder_dialog(self) -> None:
        start = self.folders[0] if self.folders else os.path.expanduser("~")
        folder = QFileDialog.getExistingDirectory(
            self, "Open a folder with one sub-folder per class", start)
        if folder:
            self.load_folders([folder])

    def _choose_test_folder(self) -> None:
        if not self.folders:
            return
        folder = QFileDialog.getExistingDirectory(
            self, "Open a test folder with the same class folders",
            os.path.dirname(self.folders[0]))
        if folder:
            self.test_folder = folder
            self._start_scan()

    @Slot(object)
    def _on_scan_progress(self, progress) -> None:
        if progress[0] == "scanned":  # the quick scan's report, shown while images decode
            self._on_scanned(progress[1])
            return
        stage, done, total = progress
        self.progress.setFormat("checking files… %v / %m" if stage == "checking"
                                else "decoding every image… %v / %m")
        self.progress.setRange(0, max(total, 1))
        self.progress.setValue(done)

    def _on_scanned(self, result) -> None:
        if isinstance(result, tuple):  # the sample data set: (folder, report)
            self.folders = [result[0]]
            result = result[1]
        self.report = result
        self.removed = set()
        self.names = list(result.classes)
        self._apply_pending_edits()
        self._show_report()
        self.message.emit(f"found {len(result.items)} images in {len(result.classes)} classes")
        self.dataset_changed.emit()

    @Slot(object)
    def _on_verified(self, result) -> None:
        """Every image decoded: keep the user's renames and removals (by class folder), and
        show what the full check left out."""
        if isinstance(result, tuple):
            result = result[1]
        before = self.report
        if before is None:
            return
        self.report = result
        if (result.items == before.items and result.skipped == before.skipped
                and result.classes == before.classes):
            return
        shown = dict(zip(before.class_folders, self.names))
        removed = {before.class_folders[i] for i in self.removed}
        self.names = [shown.get(f, name) for f, name in zip(result.class_folders, result.classes)]
        self.removed = {i for i, f in enumerate(result.class_folders) if f in removed}
        self._show_report()
        self.message.emit(f"decoded every image: {len(result.items)} usable in "
                          f"{len(result.classes)} classes")
        self.dataset_changed.emit()

    @Slot(str, str)
    def _on_scan_failed(self, message: str, details: str) -> None:
        self.report = None
        self.summary.setText(f"<span style='color:#b00020'>{message}</span>")
        self._clear_tables()
        self.scan_failed.emit(message)
        self.dataset_changed.emit()

    @Slot()
    def _on_scan_finished(self) -> None:
        self.progress.setVisible(False)
        self._sync_buttons()

    def restore(self, folders, test_folder, names, removed) -> None:
        """Scan ``folders`` again and re-apply a saved project's renames and removals."""
        self._pending_edits = (list(names or []), list(removed or []))
        self.load_folders(folders, test_folder)

    def edits(self) -> tuple[list[str], list[str]]:
        """(class names as shown, names of the classes left out)."""
        return list(self.names), [self.names[i] for i in sorted(self.removed)]

    def _apply_pending_edits(self) -> None:
        if self._pending_edits is None:
            return
        names, removed = self._pending_edits
        self._pending_edits = None
        if len(names) == len(self.names):
            try:
                self.report.renamed(names)
                self.names = names
            except DatasetError:
                return
        self.removed = {i for i, n in enumerate(self.names) if n in removed}

    # -- what training uses ------------------------------------------------------------------
    def dataset(self) -> ScanReport | None:
        """The scanned data with the app's removals and renames applied, or None."""
        if self.report is None:
            return None
        report = self.report.renamed(self.names)
        if self.removed:
            report = report.without_classes([self.names[i] for i in self.removed])
        return report

    def split_settings(self) -> tuple[float, int]:
        return self.val_fraction.value() / 100.0, self.seed.value()

    def problems(self) -> list[str]:
        report = self.dataset()
        if report is None:
            return ["no data: drop image folders on the Data step, or use the sample data"]
        return report.problems()

    # -- display -----------------------------------------------------------------------------
    def _clear_tables(self) -> None:
        self.thumbnails.clear()
        self.classes.setRowCount(0)
        self.skipped.setRowCount(0)
        self.skipped_box.setVisible(False)
        self.warning.setVisible(False)

    def _show_report(self) -> None:
        report = self.report
        self._clear_tables()
        self._updating = True
        counts = report.counts()
        self.classes.setRowCount(len(report.classes))
        self._thumb_labels: dict[tuple[int, int], QLabel] = {}
        requests = []
        by_class: dict[int, list[str]] = {}
        for item in report.items:
            paths = by_class.setdefault(item.label, [])
            if len(paths) < EXAMPLES_PER_CLASS:
                paths.append(item.path)
        for row, name in enumerate(self.names):
            name_item = QTableWidgetItem(name)
            name_item.setToolTip(report.class_folders[row])
            self.classes.setItem(row, 0, name_item)
            for col in (1, 2, 3):
                cell = QTableWidgetItem()
                cell.setFlags(cell.flags() & ~Qt.ItemFlag.ItemIsEditable)
                cell.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                self.classes.setItem(row, col, cell)
            self.classes.item(row, 1).setText(str(counts[row]))
            strip = QWidget()
            strip_layout = QHBoxLayout(strip)
            strip_layout.setContentsMargins(2, 2, 2, 2)
            strip_layout.setSpacing(3)
            for i, path in enumerate(by_class.get(row, [])):
                label = QLabel()
                label.setFixedSize(THUMB, THUMB)
                label.setStyleSheet("background: #eee;")
                label.setToolTip(path)
                strip_layout.addWidget(label)
                self._thumb_labels[(row, i)] = label
                requests.append(((row, i), path))
            strip_layout.addStretch()
            self.classes.setCellWidget(row, 4, strip)
        self._updating = False
        self.thumbnails.request(requests)
        self.skipped.setRowCount(len(report.skipped))
        for row, skipped in enumerate(report.skipped):
            self.skipped.setItem(row, 0, QTableWidgetItem(skipped.path))
            self.skipped.setItem(row, 1, QTableWidgetItem(skipped.reason))
        self.skipped_box.setTitle(f"Left out ({len(report.skipped)})")
        self.skipped_box.setVisible(bool(report.skipped))
        self._refresh_numbers()

    def _refresh_numbers(self) -> None:
        """Split sizes, summary and warnings for the current removals and split settings."""
        if self.report is None:
            return
        try:
            report = self.dataset()
        except DatasetError as e:
            self.summary.setText(f"<span style='color:#b00020'>{e}</span>")
            return
        fraction, seed = self.split_settings()
        s = split(report.items, fraction, seed)
        train = [0] * len(self.report.classes)
        val = [0] * len(self.report.classes)
        kept = [i for i in range(len(self.report.classes)) if i not in self.removed]
        for item in s.train:
            train[kept[item.label]] += 1
        for item in s.val:
            val[kept[item.label]] += 1
        self._updating = True
        for row in range(len(self.report.classes)):
            gone = row in self.removed
            self.classes.item(row, 2).setText("–" if gone else str(train[row]))
            self.classes.item(row, 3).setText("–" if gone else str(val[row]))
            for col in range(4):
                font = self.classes.item(row, col).font()
                font.setStrikeOut(gone)
                self.classes.item(row, col).setFont(font)
        self._updating = False
        where = ", ".join(self.folders)
        test = (f" · {len(report.test_items)} test images" if report.test_items is not None
                else "")
        text = (f"<b>{len(report.items)} images in {len(report.classes)} classes</b> — "
                f"{len(s.train)} for training, {len(s.val)} for validation{test}"
                f"<br><span style='color:#666'>{where}</span>")
        for problem in report.problems():  # every one at once
            text += f"<br><span style='color:#b00020'>{problem}</span>"
        self.summary.setText(text)
        warning = report.imbalance_warning()
        self.warning.setText(f"⚠ {warning[0].upper()}{warning[1:]}." if warning else "")
        self.warning.setVisible(bool(warning))
        self._sync_buttons()

    @Slot(object, QImage)
    def _on_thumbnail(self, key, image: QImage) -> None:
        label = getattr(self, "_thumb_labels", {}).get(key)
        if label is not None:
            label.setPixmap(QPixmap.fromImage(image))

    # -- editing -----------------------------------------------------------------------------
    def _on_class_edited(self, item: QTableWidgetItem) -> None:
        if self._updating or item.column() != 0 or self.report is None:
            return
        names = list(self.names)
        names[item.row()] = item.text().strip()
        try:
            self.report.renamed(names)
        except DatasetError as e:
            self._updating = True
            item.setText(self.names[item.row()])
            self._updating = False
            self.message.emit(str(e))
            return
        self.names = names
        self._refresh_numbers()
        self.dataset_changed.emit()

    def _remove_selected(self) -> None:
        rows = {index.row() for index in self.classes.selectionModel().selectedRows()}
        if rows:
            self.removed |= rows
            self._refresh_numbers()
            self.dataset_changed.emit()

    def _restore_all(self) -> None:
        if self.removed:
            self.removed = set()
            self._refresh_numbers()
            self.dataset_changed.emit()

    def _on_split_changed(self) -> None:
        self._refresh_numbers()
        self.dataset_changed.emit()

    def _sync_buttons(self) -> None:
        loaded = self.report is not None
        self.remove_button.setEnabled(loaded)
        self.restore_button.setEnabled(loaded and bool(self.removed))
        self.test_button.setEnabled(loaded and bool(self.folders))

    def shutdown(self) -> None:
        self.thumbnails.shutdown()
        self.scanner.shutdown()

    # Drops anywhere on the pane count, not only on the drop zone.
    def dragEnterEvent(self, event):
        self.drop_zone.dragEnterEvent(event)

    def dropEvent(self, event):
        self.drop_zone.dropEvent(event)
