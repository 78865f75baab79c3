"""Step 1, the data: drop or open image folders, see classes, examples, split and skipped files.

Scanning runs in a worker thread: a quick scan (headers and file endings) shows the data at
once, then every image is decoded in full in the same thread and the data set is updated with
what that finds. While it runs the pane is :meth:`~DatasetPane.busy` and training cannot start;
a cancelled scan leaves the data set it was to replace. A test folder is scanned on its own and
added to the data set, keeping the classes' renames and removals. Removing or renaming a class
happens in the app only — the folders on disk are never touched.

Split settings take effect once typing or clicking pauses (:data:`SPLIT_DELAY_MS`): the
numbers of the table come from :func:`~tlgui.core.data.split_sizes`, which hashes no file, and
the data set with the app's edits applied is kept until the edits change.
"""

from __future__ import annotations

import html
import json
import os

from PySide6.QtCore import Qt, QTimer, QUrl, Signal, Slot
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import (
    QDoubleSpinBox,
    QFileDialog,
    QFrame,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSpinBox,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from ..core.data import (
    DatasetError,
    ScanReport,
    class_problems,
    first_of_each_class,
    imbalance_warning,
    scan,
    split_sizes,
    verify_images,
    with_image_edits,
    with_test_folder,
)
from ..core.progress import Progress
from .busy import BusyIndicator
from .class_table import EXAMPLES_PER_CLASS, ClassTable
from .image_table import ImageTableView
from .pane import Pane
from .workers import TaskController, after_next_paint

#: How long the split settings must stay unchanged before the numbers follow them.
SPLIT_DELAY_MS = 250

#: Threads that check images. Checking is partly Python, so every thread more competes with
#: the window for Python's lock, and beyond the cores it is no faster: a few keep the window
#: answering while it scans.
SCAN_THREADS = 2
#: The full decoding starts this long after the quick scan's report is drawn: its start (the
#: worker processes' first results, the first progress) and the drawing of the report each
#: hold the interpreter a few tens of milliseconds; one after the other they stay short.
DECODE_DELAY_MS = 400

#: The line :meth:`DatasetPane.problems` gives while a scan runs.
STILL_CHECKING = "the images are still being checked"


def local_folders(mime) -> list[str]:
    """The local folders in a drag's ``text/uri-list`` (empty unless every URL is one)."""
    if not mime.hasUrls():
        return []
    paths = [QUrl(u).toLocalFile() for u in mime.urls()]
    if paths and all(p and os.path.isdir(p) for p in paths):
        return paths
    return []


def error_colour(palette: QPalette) -> str:
    """A red that reads on the palette's window colour: dark on a light theme, light on a
    dark one (palettes have no role for errors)."""
    dark_theme = palette.color(QPalette.ColorRole.Window).lightnessF() < 0.5
    return QColor("#ff8a80" if dark_theme else "#b00020").name()


class DropZone(QFrame):
    """A large target for folders dragged from the file manager.

    It is highlighted while folders are dragged over it (or over whatever forwards its drag
    events here); leaving, dropping or :meth:`reset_highlight` ends the highlight.
    """

    folders_dropped = Signal(list)  #: the local folders dropped (list of str)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setAcceptDrops(True)
        self.setObjectName("DropZone")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setMinimumHeight(90)
        self._highlighted = False
        self._set_style(False)
        layout = QVBoxLayout(self)
        self.title = QLabel("<b>Drop image folders here</b>")
        self.title.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.hint = QLabel(
            "one folder with a sub-folder per class, or several folders at once (one per class)"
        )
        self.hint.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.hint.setForegroundRole(QPalette.ColorRole.PlaceholderText)
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

    def highlighted(self) -> bool:
        """True while a drag of folders is over the zone."""
        return self._highlighted

    def reset_highlight(self) -> None:
        """End the highlight (a drag left the window, or went elsewhere)."""
        self._set_style(False)

    def _set_style(self, active: bool) -> None:
        self._highlighted = active
        # palette(...) follows the application's palette, so a dark theme stays readable.
        border = "palette(highlight)" if active else "palette(mid)"
        background = "palette(alternate-base)" if active else "palette(base)"
        self.setStyleSheet(
            f"#DropZone {{ border: 2px dashed {border}; border-radius: 8px; "
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


class DatasetPane(Pane):
    """Scans folders and shows the data set; :meth:`dataset` gives what training will use."""

    title = "Data"
    hint = "Drop folders of your images, or try the sample data."

    dataset_changed = Signal()  #: classes, removals, renames or split settings changed
    scan_failed = Signal(str)  #: one-line reason

    def __init__(self, parent=None):
        super().__init__(parent)
        self.report: ScanReport | None = None
        self.folders: list[str] = []
        self.test_folder: str | None = None
        self.removed: set[int] = set()
        self.names: list[str] = []
        #: Single images left out (None) or counted in another class (named as scanned), by
        #: path: the audit's suggestions the user took. In the app only; no file moves.
        self.image_edits: dict[str, str | None] = {}
        self._image_edited: tuple | None = None  # (report, edits, the report with them)
        self._pending_edits: tuple[list[str], list[str]] | None = None
        self._restoring = False  # data arriving from a project is not a change to it
        self._before_scan: tuple | None = None  # what a cancelled scan gives back
        # What dataset() builds, each step kept with what it was built from (compared by
        # identity: a new report may reuse an old one's id): (report, counts, test counts),
        # (report, removed, report without them), (that report, names, renamed).
        self._counts: tuple | None = None
        self._without: tuple | None = None
        self._named: tuple | None = None
        self._last_folders: list[str] = []

        self.scanner = TaskController("scanner", self)
        self.scanner.finished.connect(self._on_scan_finished)
        # Leaving classes out of 100,000 images takes a while: done here, off the GUI thread.
        self.preparer = TaskController("data set", self)
        self.busy_indicator = BusyIndicator()
        self.busy_indicator.attach(self.scanner, "Checking images")

        self.drop_zone = DropZone()
        self.drop_zone.folders_dropped.connect(self.load_folders)
        self.drop_zone.open_button.clicked.connect(self.open_folder_dialog)
        self.drop_zone.sample_button.clicked.connect(self.use_sample)

        self.summary = QLabel("No data yet.")
        self.summary.setWordWrap(True)
        self.warning = QLabel()
        self.warning.setWordWrap(True)
        self.warning.setObjectName("DataWarning")
        self.warning.setStyleSheet(
            "#DataWarning { background: palette(tool-tip-base); color: palette(tool-tip-text);"
            " border: 1px solid palette(mid); border-radius: 4px; padding: 4px; }")
        self.warning.setVisible(False)

        self.classes = ClassTable()
        self.classes.class_model.rename_requested.connect(self._on_rename_requested)

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
        self.seed = QSpinBox()
        self.seed.setRange(0, 999_999)
        self.seed.setPrefix("seed ")
        # Each step of a spin box (each digit of a typed seed) restarts the wait; the numbers
        # follow once, when the settings rest.
        self._split_timer = QTimer(self)
        self._split_timer.setSingleShot(True)
        self._split_timer.setInterval(SPLIT_DELAY_MS)
        self._split_timer.timeout.connect(self._apply_split)
        self.val_fraction.valueChanged.connect(self._on_split_changed)
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

        self.skipped = ImageTableView(["File or folder", "Why it was left out"],
                                      thumbnails=False)
        self.skipped_box = QGroupBox("Left out")
        box = QVBoxLayout(self.skipped_box)
        box.addWidget(self.skipped)
        self.skipped_box.setVisible(False)

        classes_part = QWidget()
        classes_layout = QVBoxLayout(classes_part)
        classes_layout.setContentsMargins(0, 0, 0, 0)
        classes_layout.addWidget(self.classes, 1)
        classes_layout.addLayout(controls)
        # A splitter gives the files left out room of their own, as much as the user wants.
        self.splitter = QSplitter(Qt.Orientation.Vertical)
        self.splitter.addWidget(classes_part)
        self.splitter.addWidget(self.skipped_box)
        self.splitter.setStretchFactor(0, 3)
        self.splitter.setStretchFactor(1, 2)
        self.splitter.setChildrenCollapsible(False)

        layout = QVBoxLayout(self)
        layout.addWidget(self.drop_zone)
        layout.addWidget(self.busy_indicator)
        layout.addWidget(self.summary)
        layout.addWidget(self.warning)
        layout.addWidget(self.splitter, 1)
        self.setAcceptDrops(True)
        self._sync_buttons()

    # -- loading -----------------------------------------------------------------------------
    @Slot(list)
    def load_folders(self, folders: list[str], test_folder: str | None = None) -> None:
        """Scan ``folders`` (one root of class folders, or one folder per class)."""
        folders = [os.path.abspath(f) for f in folders]
        self._pending_edits = None  # a project's edits belong to the project's own scan
        self._restoring = False
        self.image_edits = {}  # they name images of the data set being replaced
        self.summary.setText("Checking " + html.escape(", ".join(folders)) + "…")
        self.message.emit(f"scanning {', '.join(folders)}")

        self._start_scan(lambda: folders, test_folder)

    def use_sample(self) -> None:
        """Make (first time only) and load the built-in sample data set."""
        from ..core.sample import ensure_sample_data

        self.summary.setText("Preparing the sample data set…")
        self._pending_edits = None
        self._restoring = False

        self._start_scan(lambda: [str(ensure_sample_data())])

    def add_test_folder(self, folder: str) -> None:
        """Scan ``folder`` as the test set of the data shown, keeping renames and removals;
        the training images are not scanned again."""
        if self.report is None:
            return
        report = self.report
        self.message.emit(f"scanning the test folder {folder}")

        def task(emit, control):
            return with_test_folder(
                report, folder, progress=lambda d, t: emit(Progress(d, t, "Checking test images")),
                threads=SCAN_THREADS, cancel=control)

        self._remember_state()
        self.scanner.start(task, on_succeeded=self._on_test_folder_added,
                           on_failed=self._on_scan_failed, on_cancelled=self._on_scan_cancelled)
        self._sync_buttons()

    def _start_scan(self, find_folders, test_folder: str | None = None) -> None:
        """Scan the folders ``find_folders()`` gives (in the worker: making the sample data
        takes a while), show the quick scan's report, then decode every image."""

        def task(emit, control):
            folders = find_folders()
            report = scan(folders, test_folder=test_folder, threads=SCAN_THREADS,
                          progress=lambda d, t: emit(Progress(d, t, "Checking files")),
                          cancel=control)
            # Decoding waits until the window has drawn the report: its threads would
            # otherwise compete with that first drawing for the interpreter (a visible pause).
            control.pause()
            emit((folders, report))
            control.check()
            return verify_images(report, threads=SCAN_THREADS, cancel=control,
                                 progress=lambda d, t: emit(Progress(d, t, "Decoding images")))

        if not self.scanner.is_running():  # a scan replacing a scan keeps the first one's state
            self._remember_state()
        self.scanner.start(task, on_progress=self._on_scan_progress,
                           on_succeeded=self._on_verified, on_failed=self._on_scan_failed,
                           on_cancelled=self._on_scan_cancelled)
        self._sync_buttons()

    def _remember_state(self) -> None:
        self._before_scan = (self.report, list(self.folders), self.test_folder,
                             list(self.names), set(self.removed))

    def open_folder_dialog(self) -> None:
        start = self.folders[0] if self.folders else os.path.expanduser("~")
        folder = QFileDialog.getExistingDirectory(
            self, "Open a folder with one sub-folder per class", start)
        if folder:
            self.load_folders([folder])

    def _choose_test_folder(self) -> None:
        if not self.folders or self.report is None:
            return
        folder = QFileDialog.getExistingDirectory(
            self, "Open a test folder with the same class folders",
            os.path.dirname(self.folders[0]))
        if folder:
            self.add_test_folder(folder)

    def scrollable_tables(self) -> list[tuple[str, object]]:
        """The pane's lists a user scrolls through, by name (their table views)."""
        return [("the class table", self.classes), ("files left out", self.skipped.table)]

    def busy(self) -> bool:
        """True while images are being checked: the data set may still change."""
        return self.scanner.is_running()

    def _on_scan_progress(self, progress) -> None:
        if isinstance(progress, tuple) and isinstance(progress[-1], ScanReport):
            folders, report = progress  # the quick scan's report, shown while images decode
            self.folders = list(folders)
            self.test_folder = report.test_folder
            self._on_scanned(report)
            control = self.scanner.control
            if control is not None:  # the decoding goes on once the report is on screen
                after_next_paint(self.classes.viewport(), lambda: QTimer.singleShot(
                    DECODE_DELAY_MS, control.resume))

    def _on_scanned(self, report: ScanReport) -> None:
        self.report = report
        self.removed = set()
        self.names = list(report.classes)
        self._apply_pending_edits()
        self._show_report()
        self.message.emit(f"found {len(report.items)} images in {len(report.classes)} classes")
        self._data_changed()

    def _on_verified(self, result: ScanReport) -> None:
        """Every image decoded: keep the user's renames and removals (by class folder), and
        show what the full check left out (:meth:`_on_scan_finished` announces it)."""
        before = self.report
        self._before_scan = None
        self._restoring = False
        if before is None:
            return
        self.report = result
        # The full check only ever takes images and classes away: sizes tell the change.
        if (len(result.items) == len(before.items) and len(result.skipped) == len(before.skipped)
                and result.classes == before.classes):
            return
        shown = dict(zip(before.class_folders, self.names))
        removed = {before.class_folders[i] for i in self.removed}
        self.names = [shown.get(f, name) for f, name in zip(result.class_folders, result.classes)]
        self.removed = {i for i, f in enumerate(result.class_folders) if f in removed}
        self._show_report()
        self.message.emit(f"decoded every image: {len(result.items)} usable in "
                          f"{len(result.classes)} classes")

    def _on_test_folder_added(self, report: ScanReport) -> None:
        self._before_scan = None
        self.report = report  # same classes: the names and removals still hold
        self.test_folder = report.test_folder
        self._show_report()
        self.message.emit(f"test folder {report.test_folder}: {len(report.test_items)} images")
        self.changed.emit()

    def _on_scan_failed(self, message: str, details: str) -> None:
        self._before_scan = None
        self._restoring = False
        self.report = None
        self.summary.setText(f"<span style='color:{error_colour(self.palette())}'>"
                             f"{html.escape(message)}</span>")
        self._clear_tables()
        self.scan_failed.emit(message)

    def _on_scan_cancelled(self) -> None:
        """Put back the data set the scan was to replace, and say so."""
        restoring = self._before_scan
        self._before_scan = None
        self._restoring = False
        self._pending_edits = None
        if restoring is not None:
            report, self.folders, self.test_folder, self.names, self.removed = restoring
            replaced = report is not self.report
            self.report = report
            if self.report is None:
                self._clear_tables()
                self.summary.setText("No data yet.")
            elif replaced:
                self._show_report()
            else:
                self._refresh_numbers()
        kept = "the previous data set is kept" if self.report is not None else "no data loaded"
        self.message.emit(f"checking the images was cancelled; {kept}")

    @Slot()
    def _on_scan_finished(self) -> None:
        """No longer busy: what training may use is settled (the handlers above ran first)."""
        self._sync_buttons()
        self._prepare()

    def restore(self, folders, test_folder, names, removed) -> None:
        """Scan ``folders`` again and re-apply a saved project's renames and removals."""
        self.load_folders(folders, test_folder)
        # Set after the scan started, which forgets any earlier project's; its handlers run
        # later, in this thread.
        self._pending_edits = (list(names or []), list(removed or []))
        self._restoring = True

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

    def set_report(self, report: ScanReport, folders: list[str]) -> None:
        """Show ``report`` (what a scan of ``folders`` found) as the data set."""
        self.folders = list(folders)
        self.test_folder = report.test_folder
        self._on_scanned(report)
        self._sync_buttons()

    # -- what training uses ------------------------------------------------------------------
    def dataset(self) -> ScanReport | None:
        """The scanned data with the app's removals and renames applied, or None.

        Kept until the data or the edits change, so asking again costs nothing; after a
        removal it is usually built already (:meth:`_prepare`)."""
        if self.report is None:
            return None
        edited = self._edited_report()
        removed = frozenset(self.removed)
        cached = self._without
        if cached is None or cached[0] is not edited or cached[1] != removed:
            self._without = (edited, removed, _without(edited, removed))
        without = self._without[2]
        names = tuple(self.names[i] for i in self._kept())
        named = self._named
        if named is None or named[0] is not without or named[1] != names:
            self._named = (without, names, without.renamed(names))
        return self._named[2]

    def _prepare(self) -> None:
        """Build the data set without the removed classes in a worker thread, then say that
        the data set changed (at once when nothing needs building)."""
        report, removed = self._edited_report(), frozenset(self.removed)
        cached = self._without
        if (report is None or not removed
                or (cached is not None and cached[0] is report and cached[1] == removed)):
            self.dataset_changed.emit()
            return

        def prepared(without: ScanReport) -> None:
            if self._edited_report() is report and frozenset(self.removed) == removed:
                self._without = (report, removed, without)
            self.dataset_changed.emit()

        self.preparer.start(lambda emit, control: _without(report, removed),
                            on_succeeded=prepared,
                            on_failed=lambda message, details: self.dataset_changed.emit())

    def _edited_report(self) -> ScanReport | None:
        """The scanned report with :attr:`image_edits` applied (kept until either changes)."""
        if self.report is None or not self.image_edits:
            return self.report
        edits = dict(self.image_edits)
        cached = self._image_edited
        if cached is None or cached[0] is not self.report or cached[1] != edits:
            self._image_edited = (self.report, edits, with_image_edits(self.report, edits))
        return self._image_edited[2]

    def set_image_edit(self, path: str, target: str | None) -> None:
        """Leave the image at ``path`` out of training (``target`` None) or count it in the
        class ``target`` (named as scanned); the file is not touched."""
        if self.report is None or self.image_edits.get(path, "") == target:
            return
        self.image_edits[path] = target
        self._show_report()
        self._edited()

    def scanned_name(self, shown: str) -> str | None:
        """The class shown as ``shown`` (perhaps renamed) as it was scanned, or None."""
        if self.report is not None and shown in self.names:
            return self.report.classes[self.names.index(shown)]
        return None

    def shown_edits(self) -> dict[str, str | None]:
        """:attr:`image_edits` with the classes as shown (renamed)."""
        if self.report is None:
            return {}
        shown = dict(zip(self.report.classes, self.names))
        return {path: (shown.get(target, target) if target is not None else None)
                for path, target in self.image_edits.items()}

    def clear_image_edits(self) -> None:
        """Take back every single-image edit."""
        if self.image_edits:
            self.image_edits = {}
            self._show_report()
            self._edited()

    def _kept(self) -> list[int]:
        """Rows of the classes training will use."""
        return [i for i in range(len(self.names)) if i not in self.removed]

    def _class_counts(self) -> tuple[list[int], list[int] | None]:
        """Images and test images of each scanned class (counted once per report)."""
        report = self._edited_report()
        if self._counts is None or self._counts[0] is not report:
            self._counts = (report, report.counts(), report.test_counts())
        return self._counts[1], self._counts[2]

    def split_settings(self) -> tuple[float, int]:
        """(validation fraction, seed) as the spin boxes show them now."""
        return self.val_fraction.value() / 100.0, self.seed.value()

    def problems(self) -> list[str]:
        if self.busy():
            return [STILL_CHECKING]
        if self.report is None:
            return ["no data: drop image folders on the Data step, or use the sample data"]
        kept = self._kept()
        counts, _ = self._class_counts()
        return class_problems([self.names[i] for i in kept],
                              [self.report.class_folders[i] for i in kept],
                              [counts[i] for i in kept])

    # -- the Pane interface ------------------------------------------------------------------
    def remembered_settings(self) -> dict:
        fraction, seed = self.split_settings()
        # A session that loaded nothing keeps the folders of the one before.
        return {"split": {"val_fraction": fraction, "seed": seed},
                "data/folders": list(self.folders or self._last_folders)}

    def restore_settings(self, values: dict) -> None:
        """The split settings and the last folders (see :meth:`last_folders`); values may be
        JSON text, as earlier versions kept them."""
        split = _json_value(values.get("split"), dict)
        self._set_split(split.get("val_fraction"), split.get("seed"))
        folders = _json_value(values.get("data/folders"), list)
        self._last_folders = [f for f in folders if isinstance(f, str)]

    def last_folders(self) -> list[str]:
        """The folders of the last session that still exist."""
        return [f for f in self._last_folders if os.path.isdir(f)]

    def project_state(self) -> dict:
        names, removed = self.edits()
        fraction, seed = self.split_settings()
        return {"data": {"folders": list(self.folders), "test_folder": self.test_folder,
                         "class_names": names, "removed": removed,
                         "image_edits": dict(self.image_edits),
                         "val_fraction": fraction, "seed": seed}}

    def apply_project_state(self, state: dict) -> list[str]:
        """Set the project's split and scan its folders again with its renames and removals.

        Missing folders are not scanned; :func:`~tlgui.core.project.load_project` names them,
        so they are not listed again here."""
        data = state.get("data") or {}
        self._set_split(data.get("val_fraction"), data.get("seed"))
        folders = [f for f in data.get("folders") or [] if os.path.isdir(f)]
        test = data.get("test_folder")
        if folders:
            self.restore(folders, test if test and os.path.isdir(test) else None,
                         data.get("class_names"), data.get("removed"))
        edits = data.get("image_edits")
        self.image_edits = {str(path): (str(target) if target is not None else None)
                            for path, target in edits.items()
                            if isinstance(target, (str, type(None)))} \
            if isinstance(edits, dict) else {}
        return []

    def _set_split(self, fraction, seed) -> None:
        """Apply split settings at once and without a change mark (they come from a file)."""
        for box, value in ((self.val_fraction, fraction), (self.seed, seed)):
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                box.blockSignals(True)
                box.setValue(value * 100 if box is self.val_fraction else int(value))
                box.blockSignals(False)
        self._split_timer.stop()
        self._refresh_numbers()

    def shutdown(self) -> None:
        self._split_timer.stop()
        self.classes.shutdown()
        self.skipped.shutdown()
        self.preparer.shutdown()
        self.scanner.shutdown()

    # -- display -----------------------------------------------------------------------------
    def _clear_tables(self) -> None:
        self.classes.class_model.clear()
        self.skipped.clear()
        self.skipped_box.setVisible(False)
        self.warning.setVisible(False)

    def _show_report(self) -> None:
        report = self._edited_report()
        counts, _ = self._class_counts()
        examples = [[it.path for it in first] for first in
                    first_of_each_class(report.items, counts, EXAMPLES_PER_CLASS)]
        self.classes.class_model.set_classes(self.names, report.class_folders, counts, examples)
        skipped = report.skipped
        paths = [s.path for s in skipped]
        self.skipped.set_rows(paths, [paths, [s.reason for s in skipped]])
        self.skipped_box.setTitle(f"Left out ({len(skipped):,})")
        self.skipped_box.setVisible(bool(skipped))
        self._refresh_numbers()

    def _refresh_numbers(self) -> None:
        """Split sizes, summary and warnings for the current removals and split settings,
        from the counts of each class (no data set is built for them)."""
        if self.report is None:
            return
        fraction, _ = self.split_settings()
        counts, test_counts = self._class_counts()
        sizes = split_sizes(counts, fraction)
        self.classes.class_model.set_names(self.names)
        self.classes.class_model.set_split(sizes, self.removed)
        kept = self._kept()
        names = [self.names[i] for i in kept]
        kept_counts = [counts[i] for i in kept]
        train = sum(sizes[i][0] for i in kept)
        val = sum(sizes[i][1] for i in kept)
        where = html.escape(", ".join(self.folders))
        test = (f" · {sum(test_counts[i] for i in kept):,} test images"
                if test_counts is not None else "")
        muted = self.palette().color(QPalette.ColorRole.PlaceholderText).name()
        text = (f"<b>{sum(kept_counts):,} images in {len(kept):,} classes</b> — "
                f"{train:,} for training, {val:,} for validation{test}"
                f"<br><span style='color:{muted}'>{where}</span>")
        red = error_colour(self.palette())
        folders = [self.report.class_folders[i] for i in kept]
        for problem in class_problems(names, folders, kept_counts):  # every one at once
            text += f"<br><span style='color:{red}'>{html.escape(problem)}</span>"
        self.summary.setText(text)
        warning = imbalance_warning(names, kept_counts)
        self.warning.setText(f"⚠ {warning[0].upper()}{warning[1:]}." if warning else "")
        self.warning.setVisible(bool(warning))
        self._sync_buttons()

    # -- editing -----------------------------------------------------------------------------
    @Slot(int, str)
    def _on_rename_requested(self, row: int, text: str) -> None:
        if self.report is None or not 0 <= row < len(self.names):
            return
        names = list(self.names)
        names[row] = text.strip()
        if names == self.names:
            return
        try:
            self.report.renamed(names)
        except DatasetError as e:
            self.message.emit(str(e))
            return
        self.names = names
        self._refresh_numbers()
        self._edited()

    def _remove_selected(self) -> None:
        rows = {index.row() for index in self.classes.selectionModel().selectedRows()}
        if rows - self.removed:
            self.removed |= rows
            self._refresh_numbers()
            self._edited()

    def _restore_all(self) -> None:
        if self.removed:
            self.removed = set()
            self._refresh_numbers()
            self._edited()

    @Slot()
    def _on_split_changed(self) -> None:
        # Not valueChanged -> QTimer.start directly: the value would become the interval.
        self._split_timer.start()

    @Slot()
    def _apply_split(self) -> None:
        self._refresh_numbers()
        self._edited()

    def _edited(self) -> None:
        """The user changed what training will use."""
        self.changed.emit()
        self._prepare()

    def _data_changed(self) -> None:
        """New data arrived: a change to the project unless the project itself asked for it."""
        if not self._restoring:
            self.changed.emit()
        self._prepare()

    def _sync_buttons(self) -> None:
        loaded = self.report is not None
        self.remove_button.setEnabled(loaded)
        self.restore_button.setEnabled(loaded and bool(self.removed))
        self.test_button.setEnabled(loaded and bool(self.folders) and not self.busy())

    # Drops anywhere on the pane count, not only on the drop zone.
    def dragEnterEvent(self, event):
        self.drop_zone.dragEnterEvent(event)

    def dragLeaveEvent(self, event):
        self.drop_zone.reset_highlight()

    def dropEvent(self, event):
        self.drop_zone.dropEvent(event)


def _without(report: ScanReport, removed: frozenset[int]) -> ScanReport:
    """``report`` without the classes of rows ``removed`` (named as scanned, which are
    unique)."""
    if not removed:
        return report
    return report.without_classes([report.classes[i] for i in removed])


def _json_value(value, kind: type):
    """``value`` as ``kind`` (dict or list), reading JSON text; an empty one when it is not."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return kind()
    return value if isinstance(value, kind) else kind()
