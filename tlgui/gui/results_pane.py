"""Step 5, results: past runs with overlaid curves, evaluation (confusion matrix, per-class
metrics, mistakes), predictions on new images, and export."""

from __future__ import annotations

import math
import os

import pyqtgraph as pg
from PySide6.QtCore import Qt, QUrl, Signal, Slot
from PySide6.QtGui import QBrush, QColor, QDesktopServices, QPixmap
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from ..core.errors import one_line
from ..core.project import RunRecord
from .plots import RUN_LABELS
from .thumbnails import ThumbnailLoader
from .workers import TaskController

THUMB = 48
PREVIEW = 224
PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
           "#7f7f7f", "#bcbd22", "#17becf"]


class NumberItem(QTableWidgetItem):
    """A table cell that sorts by its number, not its text."""

    def __init__(self, text: str, value: float):
        super().__init__(text)
        self.value = value
        self.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)

    def __lt__(self, other):
        if isinstance(other, NumberItem):
            return self.value < other.value
        return super().__lt__(other)


def _table(headers: list[str]) -> QTableWidget:
    table = QTableWidget(0, len(headers))
    table.setHorizontalHeaderLabels(headers)
    table.verticalHeader().setVisible(False)
    table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
    table.horizontalHeader().setStretchLastSection(True)
    return table


class ImageTable(QTableWidget):
    """Rows of images with a thumbnail column, thumbnails decoded off the GUI thread."""

    def __init__(self, headers: list[str], loader: ThumbnailLoader):
        super().__init__(0, len(headers) + 1)
        self.setHorizontalHeaderLabels([""] + headers)
        self.verticalHeader().setVisible(False)
        self.verticalHeader().setDefaultSectionSize(THUMB + 4)
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        header = self.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Fixed)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        self.setColumnWidth(0, THUMB + 6)
        self.loader = loader
        self.loader.ready.connect(self._on_thumbnail)
        self._labels: dict[tuple, QLabel] = {}
        self._generation = 0  # so that a late thumbnail of earlier rows lands nowhere

    def set_rows(self, rows: list[tuple[str, list]]) -> None:
        """``rows``: (image path, [cell text or (text, number)])."""
        self.setSortingEnabled(False)
        self.setRowCount(len(rows))
        self._labels = {}
        self._generation += 1
        requests = []
        for r, (path, cells) in enumerate(rows):
            label = QLabel()
            label.setAlignment(Qt.AlignmentFlag.AlignCenter)
            label.setToolTip(path)
            self.setCellWidget(r, 0, label)
            key = (id(self), self._generation, r)
            self._labels[key] = label
            requests.append((key, path))
            holder = QTableWidgetItem()
            holder.setData(Qt.ItemDataRole.UserRole, path)
            self.setItem(r, 0, holder)
            for c, cell in enumerate(cells, 1):
                item = NumberItem(*cell) if isinstance(cell, tuple) else QTableWidgetItem(cell)
                self.setItem(r, c, item)
        self.loader.request(requests)
        self.setSortingEnabled(True)

    def _on_thumbnail(self, key, image) -> None:
        label = self._labels.get(key)
        if label is not None:
            label.setPixmap(QPixmap.fromImage(image))

    def paths(self) -> list[str]:
        return [self.item(r, 0).data(Qt.ItemDataRole.UserRole) for r in range(self.rowCount())]

    def selected_path(self) -> str | None:
        rows = self.selectionModel().selectedRows()
        return self.item(rows[0].row(), 0).data(Qt.ItemDataRole.UserRole) if rows else None


class ImagePreview(QLabel):
    """The selected image of a table, large, decoded off the GUI thread."""

    def __init__(self, size: int = PREVIEW):
        super().__init__("Select an image to see it larger.")
        self.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.setMinimumSize(size, size)
        self.setWordWrap(True)
        self.setStyleSheet("color: #666; background: #f7f8fa; border: 1px solid #dde;")
        self.loader = ThumbnailLoader(size, self)
        self.loader.ready.connect(self._on_ready)
        self._caption = ""

    def show_image(self, path: str | None, caption: str = "") -> None:
        self.loader.clear()
        if path is None:
            self.clear()
            self.setText("Select an image to see it larger.")
            return
        self._caption = caption
        self.setToolTip(f"{path}\n{caption}")
        self.loader.request([(path, path)])

    def _on_ready(self, key, image) -> None:
        pixmap = QPixmap.fromImage(image)
        if max(pixmap.width(), pixmap.height()) < self.loader.size:  # small images: enlarge
            pixmap = pixmap.scaled(self.loader.size, self.loader.size,
                                   Qt.AspectRatioMode.KeepAspectRatio,
                                   Qt.TransformationMode.SmoothTransformation)
        self.setPixmap(pixmap)

    def shutdown(self) -> None:
        self.loader.shutdown()


class ResultsPane(QWidget):
    """Runs, evaluation, predictions and export for trained models."""

    message = Signal(str)
    error = Signal(str, str)
    runs_changed = Signal()

    def __init__(self, parent=None):
        super().__init__(parent)
        self.runs: list[RunRecord] = []
        self.evaluation = None
        self.predictions: list[tuple[str, str, float]] = []
        self.exported = None  #: the last exported model file
        self.worker = TaskController("results", self)
        self.worker.emitted.connect(self._on_progress)
        self.worker.succeeded.connect(self._on_result)
        self.worker.failed.connect(self.error)
        self.worker.finished.connect(self._on_finished)
        self.thumbnails = ThumbnailLoader(THUMB, self)

        self.checkpoint = QComboBox()
        self.checkpoint.setSizeAdjustPolicy(
            QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.checkpoint.setMinimumContentsLength(30)
        self.checkpoint.currentIndexChanged.connect(self._sync)
        self.open_run_button = QPushButton("Open Run Folder…")
        self.open_run_button.clicked.connect(self._open_run)
        self.progress = QProgressBar()
        self.progress.setMaximumWidth(180)
        self.progress.setVisible(False)
        top = QHBoxLayout()
        top.addWidget(QLabel("Model:"))
        top.addWidget(self.checkpoint, 1)
        top.addWidget(self.open_run_button)
        top.addWidget(self.progress)

        self.tabs = QTabWidget()
        self.tabs.addTab(self._runs_tab(), "Runs")
        self.tabs.addTab(self._evaluate_tab(), "Evaluate")
        self.tabs.addTab(self._predict_tab(), "Predict")
        self.tabs.addTab(self._export_tab(), "Export")
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.tabs, 1)
        self._sync()

    # -- tabs --------------------------------------------------------------------------------
    def _runs_tab(self) -> QWidget:
        self.runs_table = _table(["Run", "Model", "Weights", "Strategy", "Epochs", "Variant",
                                  "Dropout", "Best validation", "Test", "Status"])
        self.runs_table.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.runs_table.itemSelectionChanged.connect(self._overlay_selected)
        self.overlay = pg.PlotWidget()
        self.overlay.setTitle("Validation accuracy of the selected runs", size="11pt")
        self.overlay.setLabel("bottom", "epoch")
        self.overlay.setLabel("left", "validation accuracy (%)")
        self.overlay.showGrid(x=True, y=True, alpha=0.25)
        self.overlay.setYRange(0, 100)
        self.overlay.setMenuEnabled(False)
        self.overlay_legend = self.overlay.addLegend(offset=(-10, -10), labelTextSize="9pt")
        hint = QLabel("Select two or more rows (Ctrl- or Shift-click) to overlay their curves.")
        hint.setStyleSheet("color: #555;")
        self.remove_runs_button = QPushButton("Remove from List")
        self.remove_runs_button.setToolTip("The run folders stay on disk; Open Run Folder… "
                                           "brings a run back.")
        self.remove_runs_button.clicked.connect(self.remove_selected_runs)
        hint_row = QHBoxLayout()
        hint_row.addWidget(hint, 1)
        hint_row.addWidget(self.remove_runs_button)
        splitter = QSplitter(Qt.Orientation.Vertical)
        splitter.addWidget(self.runs_table)
        splitter.addWidget(self.overlay)
        tab = QWidget()
        layout = QVBoxLayout(tab)
        layout.addLayout(hint_row)
        layout.addWidget(splitter, 1)
        return tab

    def _evaluate_tab(self) -> QWidget:
        self.split_choice = QComboBox()
        self.split_choice.addItem("Validation images", "val")
        self.split_choice.addItem("Test folder", "test")
        self.evaluate_button = QPushButton("Evaluate")
        self.evaluate_button.clicked.connect(self.evaluate)
        self.normalised = QCheckBox("Row percentages")
        self.normalised.toggled.connect(self._show_matrix)
        self.evaluation_summary = QLabel("Evaluate a trained model on its validation images "
                                         "(or its test folder).")
        self.evaluation_summary.setWordWrap(True)
        self.matrix = QTableWidget(0, 0)
        self.matrix.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.matrix.cellClicked.connect(self._on_cell_clicked)
        for header in (self.matrix.horizontalHeader(), self.matrix.verticalHeader()):
            header.setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
            header.setMinimumSectionSize(36)
        self.matrix.setToolTip("Rows: true class · columns: predicted class. Click a cell to "
                               "see its images.")
        self.metrics = _table(["Class", "Precision", "Recall", "F1", "Images"])
        self.cell_images = ImageTable(["File", "True", "Predicted", "Confidence"],
                                      self.thumbnails)
        self.cell_caption = QLabel("Click a cell of the matrix to list its images.")
        self.mistakes = ImageTable(["File", "True", "Predicted", "Confidence"], self.thumbnails)
        row = QHBoxLayout()
        row.addWidget(self.split_choice)
        row.addWidget(self.evaluate_button)
        row.addWidget(self.normalised)
        row.addStretch()
        left = QVBoxLayout()
        left.addWidget(QLabel("<b>Confusion matrix</b> (rows: true, columns: predicted)"))
        left.addWidget(self.matrix, 2)
        left.addWidget(QLabel("<b>Per class</b>"))
        left.addWidget(self.metrics, 1)
        inner = QTabWidget()
        cell_tab = QWidget()
        cell_layout = QVBoxLayout(cell_tab)
        cell_layout.addWidget(self.cell_caption)
        cell_layout.addWidget(self.cell_images)
        inner.addTab(self.mistakes, "Mistakes (most confident first)")
        inner.addTab(cell_tab, "Images of a cell")
        self.evaluation_tabs = inner
        self.evaluation_preview = ImagePreview()
        self.evaluation_caption = QLabel()
        self.evaluation_caption.setWordWrap(True)
        self.evaluation_caption.setTextInteractionFlags(
            Qt.TextInteractionFlag.TextSelectableByMouse)
        for table in (self.mistakes, self.cell_images):
            table.itemSelectionChanged.connect(
                lambda table=table: self._preview_evaluated(table))
        preview_row = QHBoxLayout()
        preview_row.addWidget(self.evaluation_preview)
        preview_row.addWidget(self.evaluation_caption, 1)
        right = QVBoxLayout()
        right.addWidget(inner, 1)
        right.addLayout(preview_row)
        body = QHBoxLayout()
        left_widget = QWidget()
        left_widget.setLayout(left)
        right_widget = QWidget()
        right_widget.setLayout(right)
        body.addWidget(left_widget, 1)
        body.addWidget(right_widget, 1)
        tab = QWidget()
        layout = QVBoxLayout(tab)
        layout.addLayout(row)
        layout.addWidget(self.evaluation_summary)
        layout.addLayout(body, 1)
        return tab

    def _predict_tab(self) -> QWidget:
        self.predict_drop = QLabel("<b>Drop images or folders here</b> to classify them with "
                                   "the chosen model")
        self.predict_drop.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.predict_drop.setMinimumHeight(60)
        self.predict_drop.setStyleSheet("border: 2px dashed #aab; border-radius: 8px; "
                                        "background: #f7f8fa;")
        self.predict_open = QPushButton("Open Images…")
        self.predict_open.clicked.connect(self._open_predict_images)
        self.predict_csv = QPushButton("Export CSV…")
        self.predict_csv.clicked.connect(self._export_csv)
        self.prediction_table = ImageTable(["File", "Class", "Confidence"], self.thumbnails)
        self.prediction_summary = QLabel()
        self.prediction_preview = ImagePreview()
        self.prediction_table.itemSelectionChanged.connect(self._preview_prediction)
        row = QHBoxLayout()
        row.addWidget(self.predict_open)
        row.addWidget(self.predict_csv)
        row.addWidget(self.prediction_summary, 1)
        results = QHBoxLayout()
        results.addWidget(self.prediction_table, 1)
        results.addWidget(self.prediction_preview, 0, Qt.AlignmentFlag.AlignTop)
        tab = QWidget()
        tab.setAcceptDrops(True)
        tab.dragEnterEvent = self._predict_drag_enter
        tab.dropEvent = self._predict_drop
        layout = QVBoxLayout(tab)
        layout.addWidget(self.predict_drop)
        layout.addLayout(row)
        layout.addLayout(results, 1)
        self.predict_tab = tab
        return tab

    def _export_tab(self) -> QWidget:
        self.export_format = QComboBox()
        self.export_format.addItem("TorchScript (.pt) — PyTorch, C++, mobile", "torchscript")
        self.export_format.addItem("ONNX (.onnx) — ONNX Runtime, many languages", "onnx")
        self.export_button = QPushButton("Export…")
        self.export_button.clicked.connect(self._export)
        self.snippet = QPlainTextEdit()
        self.snippet.setReadOnly(True)
        self.snippet.setPlaceholderText("A usage snippet appears here after exporting; it is "
                                        "also written beside the file.")
        font = self.snippet.font()
        font.setFamily("monospace")
        self.snippet.setFont(font)
        self.export_location = QLabel()
        self.export_location.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.show_folder_button = QPushButton("Show Folder")
        self.show_folder_button.setVisible(False)
        self.show_folder_button.clicked.connect(self._show_export_folder)
        row = QHBoxLayout()
        row.addWidget(self.export_format)
        row.addWidget(self.export_button)
        row.addWidget(self.export_location, 1)
        row.addWidget(self.show_folder_button)
        text = QLabel("The exported model carries the class names and the preprocessing "
                      "(input size, mean, standard deviation); it takes RGB pixels in [0, 1] "
                      "and returns class probabilities.")
        text.setWordWrap(True)
        tab = QWidget()
        layout = QVBoxLayout(tab)
        layout.addLayout(row)
        layout.addWidget(text)
        layout.addWidget(self.snippet, 1)
        return tab

    # -- runs --------------------------------------------------------------------------------
    def set_runs(self, paths: list[str]) -> list[str]:
        """Show these run folders; returns problems (folders that are not runs)."""
        from ..core.project import ProjectError, read_run

        self.runs, problems = [], []
        for path in paths:
            try:
                self.runs.append(read_run(path))
            except (ProjectError, OSError, ValueError) as e:
                problems.append(one_line(e, path))
        self._fill_runs()
        self.runs_changed.emit()
        return problems

    def remove_selected_runs(self) -> None:
        """Take the selected runs off the list (their folders stay on disk)."""
        chosen = {self.runs_table.item(i.row(), 0).data(Qt.ItemDataRole.UserRole)[0]
                  for i in self.runs_table.selectionModel().selectedRows()}
        if chosen:
            self.runs = [r for r in self.runs if r.path not in chosen]
            self._fill_runs()
            self._overlay_selected()
            self.runs_changed.emit()

    def add_run(self, path) -> None:
        from ..core.project import read_run

        run = read_run(path)
        self.runs = [r for r in self.runs if r.path != run.path] + [run]
        best = max(run.variants.values(), default=None,
                   key=lambda info: info.get("best_val_acc") or 0.0)
        self._fill_runs(select=best["checkpoint"] if best else None)
        self.runs_changed.emit()

    def run_paths(self) -> list[str]:
        return [r.path for r in self.runs]

    def _fill_runs(self, select: str | None = None) -> None:
        """Fill the runs table and the model list; ``select`` a checkpoint, else keep the
        current one."""
        rows = [(run, variant, info) for run in self.runs for variant, info in
                run.variants.items()]
        self.runs_table.setSortingEnabled(False)
        self.runs_table.setRowCount(len(rows))
        for r, (run, variant, info) in enumerate(rows):
            best, test = info.get("best_val_acc"), info.get("test_acc")
            weights = run.weights if run.weights in ("imagenet", "none") else os.path.basename(
                run.weights)
            cells = [run.name, run.model, weights, run.strategy, str(run.epochs),
                     RUN_LABELS.get(variant, variant), f"{info.get('dropout', 0):.2f}",
                     f"{best:.1%}" if best is not None else "–",
                     f"{test:.1%}" if test is not None else "–", run.status]
            for c, text in enumerate(cells):
                item = QTableWidgetItem(text)
                item.setData(Qt.ItemDataRole.UserRole, (run.path, variant))
                self.runs_table.setItem(r, c, item)
        current = self.checkpoint.currentData()
        self.checkpoint.blockSignals(True)
        self.checkpoint.clear()
        for run, variant, info in rows:
            if os.path.isfile(info["checkpoint"]):
                best = info.get("best_val_acc")
                self.checkpoint.addItem(
                    f"{run.name} · {RUN_LABELS.get(variant, variant)} · {run.model}"
                    + (f" · best {best:.1%}" if best is not None else ""), info["checkpoint"])
        index = self.checkpoint.findData(select or current)
        self.checkpoint.setCurrentIndex(max(0, index))
        self.checkpoint.blockSignals(False)
        self._sync()

    def _overlay_selected(self) -> None:
        self.overlay.clear()
        self.overlay_legend.clear()
        selected = {self.runs_table.item(i.row(), 0).data(Qt.ItemDataRole.UserRole)
                    for i in self.runs_table.selectionModel().selectedRows()}
        runs = {r.path: r for r in self.runs}
        most = 2
        for n, (path, variant) in enumerate(sorted(selected)):
            history = runs[path].variants[variant]["history"]
            xs = [h["epoch"] for h in history]
            ys = [h["val_acc"] * 100 for h in history]
            most = max([most] + xs)
            colour = PALETTE[n % len(PALETTE)]
            self.overlay.plot(xs, ys, pen=pg.mkPen(colour, width=2.5), symbol="o", symbolSize=5,
                              symbolBrush=colour, symbolPen=None,
                              name=f"{runs[path].name} · {RUN_LABELS.get(variant, variant)}")
        # Whole epochs only on the x axis, at most about ten labels, as on the Train step.
        step = max(1, math.ceil(most / 10))
        self.overlay.getAxis("bottom").setTickSpacing(major=step, minor=step)
        self.overlay.setXRange(1, most, padding=0.03)

    def _open_run(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "A tlgui run folder")
        if folder:
            try:
                self.add_run(folder)
            except Exception as e:  # shown to the user, not raised into Qt
                self.error.emit(one_line(e, folder), "")

    # -- evaluation ----------------------------------------------------------------------------
    def evaluate(self) -> None:
        checkpoint = self.checkpoint.currentData()
        which = self.split_choice.currentData()
        if not checkpoint:
            return

        def task(emit, control):
            from ..core.evaluation import evaluate, evaluation_items
            from ..core.models import load_trained
            from ..core.preprocess import Preprocessing

            net, ckpt = load_trained(checkpoint)
            classes, items = evaluation_items(os.path.dirname(os.path.dirname(checkpoint)), which)
            return "evaluation", evaluate(
                net, Preprocessing.from_dict(ckpt["preprocessing"]), classes, items,
                progress=lambda d, t: emit((d, t)), cancel=control)

        self._start(task)

    def _show_evaluation(self, result) -> None:
        from ..core.evaluation import UNDEFINED_NOTE, decimal_text, share_text

        self.evaluation = result
        which = self.split_choice.currentText().lower()
        metrics = result.metrics()
        text = (f"<b>Accuracy {share_text(result.accuracy)}</b> on {len(result.paths)} "
                f"{which}; {len(result.mistakes())} mistakes.")
        if result.unreadable:
            text += (f" {len(result.unreadable)} images could not be read (first: "
                     f"{result.unreadable[0][0]}: {result.unreadable[0][1]}).")
        if any(m.note() for m in metrics):
            text += f"<br>{UNDEFINED_NOTE}."
        self.evaluation_summary.setText(text)
        self._show_matrix()
        self.metrics.setRowCount(len(result.classes))
        for r, (name, m) in enumerate(zip(result.classes, metrics)):
            self.metrics.setItem(r, 0, QTableWidgetItem(name))
            for c, (text, value) in enumerate(((share_text(m.precision), m.precision),
                                               (share_text(m.recall), m.recall),
                                               (decimal_text(m.f1), m.f1),
                                               (str(m.support), m.support)), 1):
                # an undefined figure sorts below every defined one
                item = NumberItem(text, -1.0 if value is None else value)
                item.setToolTip(m.note() or "")
                self.metrics.setItem(r, c, item)
        self.mistakes.set_rows([self._image_row(i) for i in result.mistakes()])
        self.mistakes.sortItems(4, Qt.SortOrder.DescendingOrder)
        if self.mistakes.rowCount():
            self.mistakes.selectRow(0)  # the most confident mistake, large

    def _image_row(self, i: int):
        e = self.evaluation
        return (e.paths[i], [os.path.basename(e.paths[i]), e.classes[e.true[i]],
                             e.classes[e.pred[i]],
                             (f"{e.confidence[i]:.1%}", float(e.confidence[i]))])

    def _show_matrix(self) -> None:
        e = self.evaluation
        if e is None:
            return
        cm = e.matrix()
        shares = cm / max(1, cm.sum(1, keepdims=True).max())
        from ..core.evaluation import matrix_texts, normalise_rows

        rows = normalise_rows(cm)
        texts = matrix_texts(cm, percent=self.normalised.isChecked())
        n = len(e.classes)
        self.matrix.setRowCount(n)
        self.matrix.setColumnCount(n)
        self.matrix.setHorizontalHeaderLabels(e.classes)
        self.matrix.setVerticalHeaderLabels(e.classes)
        for t in range(n):
            for p in range(n):
                item = QTableWidgetItem(texts[t][p])
                item.setTextAlignment(Qt.AlignmentFlag.AlignCenter)
                strength = rows[t, p] if rows.any() else shares[t, p]
                base = (31, 119, 180) if t == p else (214, 39, 40)
                colour = QColor(*[int(255 - (255 - c) * strength * 0.8) for c in base])
                item.setBackground(QBrush(colour))
                item.setToolTip(f"{cm[t, p]} {e.classes[t]} images predicted as "
                                f"{e.classes[p]}")
                self.matrix.setItem(t, p, item)

    def _preview_evaluated(self, table: ImageTable) -> None:
        path = table.selected_path()
        e = self.evaluation
        if path is None or e is None:
            self.evaluation_preview.show_image(None)
            self.evaluation_caption.clear()
            return
        i = e.paths.index(path)
        verdict = "right" if e.true[i] == e.pred[i] else "wrong"
        caption = (f"<b>{os.path.basename(path)}</b><br>true class: {e.classes[e.true[i]]}"
                   f"<br>predicted: {e.classes[e.pred[i]]} ({e.confidence[i]:.1%}, {verdict})"
                   f"<br><span style='color:#666'>{os.path.dirname(path)}</span>")
        self.evaluation_caption.setText(caption)
        self.evaluation_preview.show_image(path)

    @Slot(int, int)
    def _on_cell_clicked(self, true_class: int, predicted_class: int) -> None:
        e = self.evaluation
        if e is None:
            return
        indices = e.cell(true_class, predicted_class)
        self.cell_caption.setText(f"{len(indices)} {e.classes[true_class]} images predicted "
                                  f"as {e.classes[predicted_class]}")
        self.cell_images.set_rows([self._image_row(i) for i in indices])
        self.evaluation_tabs.setCurrentIndex(1)

    # -- prediction ----------------------------------------------------------------------------
    def _predict_drag_enter(self, event) -> None:
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def _predict_drop(self, event) -> None:
        paths = [QUrl(u).toLocalFile() for u in event.mimeData().urls()]
        self.predict([p for p in paths if p])

    def _open_predict_images(self) -> None:
        paths, _ = QFileDialog.getOpenFileNames(
            self, "Images to classify", os.path.expanduser("~"),
            "Images (*.jpg *.jpeg *.png *.bmp *.gif *.tif *.tiff *.webp);;All files (*)")
        if paths:
            self.predict(paths)

    def predict(self, paths: list[str]) -> None:
        """Classify image files and folders with the chosen model."""
        checkpoint = self.checkpoint.currentData()
        if not checkpoint:
            self.message.emit("train or open a run first")
            return

        def task(emit, control):
            from ..core.predictions import prediction_rows

            return "predictions", prediction_rows(
                checkpoint, paths, progress=lambda d, t: emit((d, t)), cancel=control)

        self._start(task)

    def _show_predictions(self, value) -> None:
        rows, failed = value
        self.predictions = rows
        self.prediction_table.set_rows([
            (path, [os.path.basename(path), name, (f"{p:.1%}", p)]) for path, name, p in rows])
        text = f"{len(rows)} images classified"
        if failed:
            text += f"; {len(failed)} could not be read (first: {failed[0][0]}: {failed[0][1]})"
        self.prediction_summary.setText(text)
        self.prediction_preview.show_image(None)
        if rows:
            self.prediction_table.selectRow(0)
        self._sync()

    def _preview_prediction(self) -> None:
        self.prediction_preview.show_image(self.prediction_table.selected_path())

    def _export_csv(self) -> None:
        from ..core.paths import atomic_write_text
        from ..core.predictions import rows_csv

        path, _ = QFileDialog.getSaveFileName(self, "Save predictions", "predictions.csv",
                                              "CSV (*.csv)")
        if path:
            try:
                atomic_write_text(path, rows_csv(self.predictions))
            except OSError as e:  # a full disk or a read-only folder: say so, keep the table
                self.message.emit(one_line(e, path))
                return
            self.message.emit(f"saved {path}")

    # -- export --------------------------------------------------------------------------------
    def _export(self) -> None:
        from ..core.export import default_name

        checkpoint = self.checkpoint.currentData()
        fmt = self.export_format.currentData()
        if not checkpoint:
            return
        suffix = "TorchScript (*.pt)" if fmt == "torchscript" else "ONNX (*.onnx)"
        path, _ = QFileDialog.getSaveFileName(
            self, "Export the model", default_name(checkpoint, fmt), suffix)
        if path:
            self.export_to(path, fmt)

    def export_to(self, path: str, fmt: str) -> None:
        checkpoint = self.checkpoint.currentData()
        self.export_format.setCurrentIndex(self.export_format.findData(fmt))

        def task(emit, control):
            from ..core.export import export

            return "export", export(checkpoint, path, fmt)

        self._start(task)

    def _show_export(self, value) -> None:
        model_file, usage = value
        self.exported = model_file
        self.snippet.setPlainText(usage.read_text(encoding="utf-8"))
        self.export_location.setText(f"Wrote <b>{model_file}</b> and {usage.name}")
        self.show_folder_button.setVisible(True)
        self.message.emit(f"exported {model_file} (usage: {usage})")

    def _show_export_folder(self) -> None:
        if self.exported is not None:
            QDesktopServices.openUrl(QUrl.fromLocalFile(str(self.exported.parent)))

    # -- plumbing ------------------------------------------------------------------------------
    def _start(self, task) -> None:
        self.progress.setRange(0, 0)
        self.progress.setVisible(True)
        self.worker.start(task)
        self._sync()

    @Slot(object)
    def _on_progress(self, progress) -> None:
        done, total = progress
        self.progress.setRange(0, max(1, total))
        self.progress.setValue(done)

    @Slot(object)
    def _on_result(self, result) -> None:
        what, value = result
        getattr(self, f"_show_{what}")(value)

    @Slot()
    def _on_finished(self) -> None:
        self.progress.setVisible(False)
        self._sync()

    def current_run(self) -> RunRecord | None:
        checkpoint = self.checkpoint.currentData()
        return next((r for r in self.runs for info in r.variants.values()
                     if info["checkpoint"] == checkpoint), None)

    def _sync(self) -> None:
        run = self.current_run()
        test_item = self.split_choice.model().item(1)
        test_item.setEnabled(bool(run and run.test_folder))
        test_item.setToolTip("" if run and run.test_folder else
                             "This run was trained without a test folder.")
        if not test_item.isEnabled():
            self.split_choice.setCurrentIndex(0)
        ready = bool(self.checkpoint.currentData()) and not self.worker.is_running()
        for button in (self.evaluate_button, self.export_button, self.predict_open):
            button.setEnabled(ready)
        self.predict_csv.setEnabled(bool(self.predictions))

    def shutdown(self) -> None:
        self.thumbnails.shutdown()
        self.evaluation_preview.shutdown()
        self.prediction_preview.shutdown()
        self.worker.shutdown()

