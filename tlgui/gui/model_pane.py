"""Step 2, the model: backbone, starting weights, what to freeze, and the new head."""

from __future__ import annotations

import os

from PySide6.QtCore import Qt, QTimer, Signal, Slot
from PySide6.QtGui import QFont, QPalette
from PySide6.QtWidgets import (
    QAbstractItemView,
    QButtonGroup,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QFrame,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QRadioButton,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from .pane import Pane
from .workers import SHUTDOWN_WAIT_MS, TaskController, Throttle


class BlockStrip(QWidget):
    """A row of boxes, one per backbone block and one for the head, each with its parameter
    count: in the palette's highlight colours when it trains, in its button colours when
    frozen (so a dark desktop theme stays readable)."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.row = QHBoxLayout(self)
        self.row.setContentsMargins(0, 0, 0, 0)
        self.row.setSpacing(4)
        self.boxes: list[QLabel] = []

    def set_layout(self, rows) -> None:
        for box in self.boxes:
            box.deleteLater()
        self.boxes = []
        while self.row.count():
            self.row.takeAt(0)
        for name, params, frozen in rows:
            box = QLabel(f"<b>{name}</b><br>{_count(params)}")
            box.setAlignment(Qt.AlignmentFlag.AlignCenter)
            box.setMinimumWidth(60)
            box.setMargin(4)
            box.setFrameShape(QFrame.Shape.Box)
            box.setAutoFillBackground(True)
            background, text = ((QPalette.ColorRole.Button, QPalette.ColorRole.ButtonText)
                                if frozen else (QPalette.ColorRole.Highlight,
                                                QPalette.ColorRole.HighlightedText))
            box.setBackgroundRole(background)
            box.setForegroundRole(text)
            box.setToolTip(f"{name}: {params:,} parameters, "
                           f"{'frozen (not trained)' if frozen else 'trained'}")
            self.row.addWidget(box, 1)
            self.boxes.append(box)


class _Unavailable:
    """What a download that could not be done returns: the backbone and why (a short reason)."""

    def __init__(self, name: str, reason: str):
        self.name, self.reason = name, reason


def offline_proposal(name: str, reason: str, cached: list[str], weights_file: str, url: str
                     ) -> str:
    """What the window says when the ImageNet weights of ``name`` cannot be downloaded: what
    works now, in the window's own words (its buttons and choices). ``cached``: the backbones
    whose ImageNet weights are cached; ``weights_file`` and ``url``: the official file of
    ``name`` and where it can be fetched on another computer."""
    why = f" ({reason})" if reason else ""
    options = []
    if cached:
        names = ", ".join(cached[:3]) + (" …" if len(cached) > 3 else "")
        options.append(f"Use a cached backbone: {names} — select it in the table; its ImageNet "
                       f"weights are ready offline.")
    options.append(f"Import Weights File… — if you have {weights_file} (from {url}, fetched "
                   f"on another computer), it is checked and kept for offline use.")
    options.append("Starting weights: “A weights file or an earlier tlgui run” — any "
                   "file that fits the backbone.")
    options.append("Train from scratch: starting weights “None — random weights”, "
                   "with “Fine-tune everything”.")
    return (f"ImageNet weights for {name} could not be downloaded{why}. What works now:\n"
            + "\n".join(f"• {option}" for option in options))


def _count(n: int) -> str:
    if n >= 1_000_000:
        return f"{n / 1e6:.1f} M"
    if n >= 1_000:
        return f"{n / 1e3:.0f} k"
    return str(n)


class ModelPane(Pane):
    """Chooses the backbone, the weights, the strategy and the head.

    It stays disabled until :meth:`set_backend` hands it what the background import of
    PyTorch found (backbone figures, cached weights); settings given to it before then are
    applied at that moment."""

    title = "Model"
    hint = "Pick a backbone and what to train; the helper suggests a strategy."

    #: Anything that changes what training would use or why it cannot start (the settings,
    #: or weights that became cached).
    settings_changed = Signal()

    def __init__(self, parent=None):
        super().__init__(parent)
        self.infos = []
        self.cached: dict[str, bool] = {}
        self.images = 0
        self.num_classes = 2
        self.weights_file: str | None = None
        self._pending: dict | None = None  #: settings given before the backbones were known
        self.offline_box: QMessageBox | None = None

        self.downloader = TaskController("downloader", self)
        self.downloader.emitted.connect(self._on_download_progress)
        self.downloader.succeeded.connect(self._on_weights_cached)
        self.downloader.failed.connect(self._on_download_failed)
        self.downloader.cancelled.connect(lambda: self.message.emit("download cancelled"))
        self.downloader.finished.connect(self._on_download_finished)
        self._download_throttle = Throttle(0.05)

        self.loading = QLabel("Loading PyTorch…")
        self.table = QTableWidget(0, 6)
        self.table.setHorizontalHeaderLabels(
            ["Backbone", "Parameters", "Input", "ImageNet top-1", "Weights", "Weights status"])
        header = self.table.horizontalHeader()
        for col in range(5):
            header.setSectionResizeMode(col, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(5, QHeaderView.ResizeMode.Stretch)
        self.table.verticalHeader().setVisible(False)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.itemSelectionChanged.connect(self._on_backbone_changed)
        self.advice = QLabel()

        # Starting weights
        self.weights_group = QButtonGroup(self)
        self.imagenet_radio = QRadioButton("ImageNet (pretrained)")
        self.file_radio = QRadioButton("A weights file or an earlier tlgui run:")
        self.none_radio = QRadioButton("None — random weights (train from scratch)")
        for i, radio in enumerate((self.imagenet_radio, self.file_radio, self.none_radio)):
            self.weights_group.addButton(radio, i)
        self.imagenet_radio.setChecked(True)
        self.weights_group.idToggled.connect(lambda *_: self._changed())
        self.download_button = QPushButton("Download")
        self.download_button.clicked.connect(self._download)
        self.cancel_download = QPushButton("Cancel")
        self.cancel_download.clicked.connect(self.downloader.cancel)
        self.cancel_download.setVisible(False)
        self.import_button = QPushButton("Import Weights File…")
        self.import_button.setToolTip("Copy your copy of torchvision's official weights file "
                                      "into the cache, for offline use")
        self.import_button.clicked.connect(self._import)
        self.download_progress = QProgressBar()
        self.download_progress.setVisible(False)
        self.weights_status = QLabel()
        self.weights_status.setWordWrap(True)
        self.choose_file = QPushButton("Choose…")
        self.choose_file.clicked.connect(self._choose_weights_file)
        self.file_label = QLabel("no file chosen")
        self.file_label.setForegroundRole(QPalette.ColorRole.PlaceholderText)
        weights_box = QGroupBox("Starting weights")
        grid = QGridLayout(weights_box)
        grid.addWidget(self.imagenet_radio, 0, 0)
        imagenet_buttons = QHBoxLayout()
        imagenet_buttons.addWidget(self.download_button)
        imagenet_buttons.addWidget(self.cancel_download)
        imagenet_buttons.addWidget(self.import_button)
        imagenet_buttons.addStretch()
        grid.addLayout(imagenet_buttons, 0, 1)
        grid.addWidget(self.download_progress, 1, 0, 1, 2)
        grid.addWidget(self.weights_status, 2, 0, 1, 2)
        grid.addWidget(self.file_radio, 3, 0)
        file_row = QHBoxLayout()
        file_row.addWidget(self.choose_file)
        file_row.addWidget(self.file_label, 1)
        grid.addLayout(file_row, 3, 1)
        grid.addWidget(self.none_radio, 4, 0, 1, 2)

        # Strategy
        self.strategy_group = QButtonGroup(self)
        self.frozen_radio = QRadioButton("Feature extraction — freeze the backbone, "
                                         "train only the new head")
        self.partial_radio = QRadioButton("Fine-tune the last")
        self.full_radio = QRadioButton("Fine-tune everything")
        for i, radio in enumerate((self.frozen_radio, self.partial_radio, self.full_radio)):
            self.strategy_group.addButton(radio, i)
        self.frozen_radio.setChecked(True)
        self.strategy_group.idToggled.connect(lambda *_: self._changed())
        self.blocks_spin = QSpinBox()
        self.blocks_spin.setRange(1, 20)
        self.blocks_spin.setValue(2)
        self.blocks_spin.setSuffix(" blocks")
        self.blocks_spin.valueChanged.connect(lambda *_: self._changed())
        self.strip = BlockStrip()
        self.counts = QLabel()
        self.strategy_note = QLabel()
        self.strategy_note.setWordWrap(True)
        bold = QFont(self.strategy_note.font())
        bold.setBold(True)  # a warning, in the theme's own text colour
        self.strategy_note.setFont(bold)
        self.strategy_note.setVisible(False)
        strategy_box = QGroupBox("What to train")
        strategy_layout = QVBoxLayout(strategy_box)
        strategy_layout.addWidget(self.frozen_radio)
        partial_row = QHBoxLayout()
        partial_row.addWidget(self.partial_radio)
        partial_row.addWidget(self.blocks_spin)
        partial_row.addWidget(QLabel("(at the backbone rate set on the Train step)"))
        partial_row.addStretch()
        strategy_layout.addLayout(partial_row)
        strategy_layout.addWidget(self.full_radio)
        strategy_layout.addWidget(self.strip)
        strategy_layout.addWidget(self.counts)
        strategy_layout.addWidget(self.strategy_note)

        # Decision helper
        self.similar_group = QButtonGroup(self)
        self.similar_radio = QRadioButton("everyday photos (animals, objects, scenes)")
        self.different_radio = QRadioButton(
            "something else (X-rays, microscopy, satellite, drawings…)")
        self.similar_group.addButton(self.similar_radio, 0)
        self.similar_group.addButton(self.different_radio, 1)
        self.similar_radio.setChecked(True)
        self.similar_group.idToggled.connect(lambda *_: self._update_advice())
        self.recommendation = QLabel()
        self.recommendation.setWordWrap(True)
        self.apply_advice = QPushButton("Use This")
        self.apply_advice.clicked.connect(self._apply_advice)
        helper_box = QGroupBox("Which strategy?")
        helper = QVBoxLayout(helper_box)
        self.helper_question = QLabel("Your images look like:")
        helper.addWidget(self.helper_question)
        similar_row = QHBoxLayout()
        similar_row.addWidget(self.similar_radio)
        similar_row.addWidget(self.different_radio)
        similar_row.addStretch()
        helper.addLayout(similar_row)
        advice_row = QHBoxLayout()
        advice_row.addWidget(self.recommendation, 1)
        advice_row.addWidget(self.apply_advice, 0, Qt.AlignmentFlag.AlignTop)
        helper.addLayout(advice_row)

        # Head
        self.dropout = QDoubleSpinBox()
        self.dropout.setRange(0.05, 0.9)
        self.dropout.setSingleStep(0.05)
        self.dropout.setValue(0.5)
        self.dropout.setToolTip("Probability of dropping each hidden neuron while training")
        self.dropout.valueChanged.connect(lambda *_: self._changed())
        self.hidden = QSpinBox()
        self.hidden.setRange(0, 4096)
        self.hidden.setSingleStep(64)
        self.hidden.setValue(256)
        self.hidden.setSpecialValueText("none (one linear layer)")
        self.hidden.valueChanged.connect(lambda *_: self._changed())
        head_box = QGroupBox("New classifier head")
        head = QFormLayout(head_box)
        head.addRow("Dropout", self.dropout)
        head.addRow("Hidden width", self.hidden)

        self.body = QWidget()
        right = QVBoxLayout()
        right.addWidget(weights_box)
        right.addWidget(head_box)
        right.addStretch()
        top = QHBoxLayout()
        left = QVBoxLayout()
        left.addWidget(self.table, 1)
        left.addWidget(self.advice)
        top.addLayout(left, 3)
        top.addLayout(right, 2)
        body = QVBoxLayout(self.body)
        body.setContentsMargins(0, 0, 0, 0)
        body.addLayout(top, 3)
        body.addWidget(strategy_box)
        body.addWidget(helper_box)
        self.body.setEnabled(False)
        layout = QVBoxLayout(self)
        layout.addWidget(self.loading)
        layout.addWidget(self.body)

    # -- inputs ------------------------------------------------------------------------------
    def set_backend(self, backend: dict) -> None:
        """Fill the backbone table from what the background import found."""
        self.infos = backend["backbones"]
        self.cached = dict(backend["cached"])
        self.table.setRowCount(len(self.infos))
        for row, info in enumerate(self.infos):
            cells = [info.name, f"{info.num_params / 1e6:.1f} M", f"{info.crop_size} px",
                     f"{info.imagenet_top1:.1f} %", f"{info.weights_mb:.0f} MB", ""]
            for col, text in enumerate(cells):
                item = QTableWidgetItem(text)
                if 0 < col < 5:
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight
                                          | Qt.AlignmentFlag.AlignVCenter)
                self.table.setItem(row, col, item)
        self._refresh_cache_column()
        self.table.resizeRowsToContents()
        height = self.table.horizontalHeader().height() + 2 + sum(
            self.table.rowHeight(r) for r in range(self.table.rowCount()))
        self.table.setMaximumHeight(height)
        self.loading.setVisible(False)
        self.body.setEnabled(True)
        if not self.table.selectedItems():
            self.select_backbone("vgg16")
        pending, self._pending = self._pending, None
        if pending:
            self.apply_settings(pending)

    def set_dataset(self, images: int, classes: int) -> None:
        self.images, self.num_classes = images, max(2, classes)
        self._update_advice()
        self._update_layout()

    def select_backbone(self, name: str) -> None:
        for row, info in enumerate(self.infos):
            if info.name == name:
                self.table.selectRow(row)
                return

    # -- outputs -----------------------------------------------------------------------------
    def backbone(self) -> str:
        rows = self.table.selectionModel().selectedRows() if self.infos else []
        return self.infos[rows[0].row()].name if rows else "vgg16"

    def backbone_info(self):
        """The chosen backbone's :class:`~tlgui.core.registry.BackboneInfo` (None before
        PyTorch has loaded)."""
        return next((i for i in self.infos if i.name == self.backbone()), None)

    def weights(self) -> str:
        checked = self.weights_group.checkedId()
        if checked == 1:
            return self.weights_file or ""
        return "none" if checked == 2 else "imagenet"

    def strategy(self) -> str:
        return ("frozen", "partial", "full")[self.strategy_group.checkedId()]

    def settings(self) -> dict:
        """The model half of a TrainConfig."""
        return {
            "model": self.backbone(),
            "weights": self.weights(),
            "strategy": self.strategy(),
            "trainable_blocks": self.blocks_spin.value(),
            "dropout": round(self.dropout.value(), 3),
            "hidden": self.hidden.value(),
        }

    def apply_settings(self, settings: dict) -> None:
        """Restore remembered settings (unknown keys and values are ignored)."""
        if settings.get("model"):
            self.select_backbone(settings["model"])
        strategies = ("frozen", "partial", "full")
        if settings.get("strategy") in strategies:
            self.strategy_group.button(strategies.index(settings["strategy"])).setChecked(True)
        for key, widget in (("trainable_blocks", self.blocks_spin), ("hidden", self.hidden)):
            if key in settings:
                widget.setValue(int(settings[key]))
        if "dropout" in settings:
            self.dropout.setValue(float(settings["dropout"]))
        weights = settings.get("weights")
        if weights == "none":
            self.none_radio.setChecked(True)
        elif weights and weights != "imagenet" and os.path.isfile(weights):
            self._set_weights_file(weights)

    # -- the Pane duties ---------------------------------------------------------------------
    def _model_state(self) -> dict:
        if self.infos:
            return self.settings()
        return dict(self._pending or {})  # not applied yet: kept as given

    def _take(self, settings) -> None:
        if not isinstance(settings, dict):
            return
        if self.infos:
            self.apply_settings(settings)
        else:
            self._pending = dict(settings)

    def remembered_settings(self) -> dict:
        return {"model": self._model_state()}

    def restore_settings(self, values: dict) -> None:
        self._take(values.get("model"))

    def project_state(self) -> dict:
        return {"model": self._model_state()}

    def apply_project_state(self, state: dict) -> list[str]:
        self._take(state.get("model", {}))
        return []

    def problems(self) -> list[str]:
        if not self.infos:
            return ["PyTorch is still loading"]
        name = self.backbone()
        if self.weights() == "imagenet" and not self.cached.get(name):
            cached = [i.name for i in self.infos if self.cached.get(i.name)]
            instead = f", use a cached backbone ({', '.join(cached[:3])})" if cached else ""
            return [f"ImageNet weights for {name} are not cached: download them, import the "
                    f"weights file{instead}, or choose other starting weights"]
        if self.weights_group.checkedId() == 1 and not self.weights_file:
            return ["choose a weights file, or other starting weights"]
        return []

    # -- reactions ---------------------------------------------------------------------------
    def _changed(self) -> None:
        from ..core.advice import strategy_warning

        self._update_layout()
        self._refresh_weights_status()
        self._update_advice()  # the advice depends on the starting weights too
        note = strategy_warning(self.strategy(), self.weights())
        self.strategy_note.setText(note)
        self.strategy_note.setVisible(bool(note))
        self.settings_changed.emit()
        self.changed.emit()

    def _on_backbone_changed(self) -> None:
        info = self.backbone_info()
        if info:
            self.advice.setText(f"<b>{info.name}</b>: {info.advice}.")
            blocks = len(self._layout_rows()) - 1
            self.blocks_spin.setMaximum(max(1, blocks))
        self._changed()

    def _layout_rows(self):
        from ..core.models import ModelSpec, block_layout

        spec = ModelSpec(self.backbone(), self.num_classes, self.dropout.value(),
                         self.hidden.value(), self.strategy(), self.blocks_spin.value())
        return block_layout(spec)

    def _update_layout(self) -> None:
        if not self.infos:
            return
        rows = self._layout_rows()
        self.strip.set_layout(rows)
        trainable = sum(n for _, n, frozen in rows if not frozen)
        frozen = sum(n for _, n, f in rows if f)
        self.counts.setText(f"Highlighted blocks train: <b>{trainable:,}</b> parameters · "
                            f"the others are frozen: <b>{frozen:,}</b>")

    def _update_advice(self) -> None:
        from ..core.advice import recommend

        if not self.images:
            self.recommendation.setText("Load a data set first: the advice depends on its size.")
            self.apply_advice.setEnabled(False)
            return
        self._advice = recommend(self.images, self.num_classes, self.similar_radio.isChecked(),
                                 self.weights())
        self.helper_question.setText(f"Your {self.images} images look like:")
        self.recommendation.setText(self._advice.reason)
        self.apply_advice.setEnabled(True)

    def _apply_advice(self) -> None:
        advice = self._advice
        index = ("frozen", "partial", "full").index(advice.strategy)
        self.strategy_group.button(index).setChecked(True)
        if advice.strategy == "partial":
            self.blocks_spin.setValue(advice.trainable_blocks)
        self.message.emit(f"strategy: {advice.strategy}"
                          + (" (turn on augmentation in the Train step)" if advice.augment
                             else ""))
        self._changed()

    # -- weights -----------------------------------------------------------------------------
    def _refresh_cache_column(self) -> None:
        from ..core.weights import is_cached

        for row, info in enumerate(self.infos):
            self.cached[info.name] = is_cached(info.name)
            item = self.table.item(row, 5)
            if self.cached[info.name]:
                item.setText("✔ cached — ready offline")
            else:
                item.setText(f"download {info.weights_mb:.0f} MB, or import a file")
        self._refresh_weights_status()

    def _refresh_weights_status(self) -> None:
        if not self.infos:
            return
        from ..core.weights import cached_path

        name = self.backbone()
        busy = self.downloader.is_running()
        cached = self.cached.get(name, False)
        self.download_button.setEnabled(not cached and not busy)
        self.import_button.setEnabled(not cached and not busy)
        self.cancel_download.setVisible(busy)
        if cached:
            self.weights_status.setText(f"✔ ImageNet weights of {name} are cached at "
                                        f"{cached_path(name)}")
        else:
            info = next(i for i in self.infos if i.name == name)
            self.weights_status.setText(
                f"Not cached. Download {info.weights_mb:.0f} MB from {info.url}, or import "
                f"that file if you have it (offline).")

    def offline_text(self, name: str, reason: str = "") -> str:
        """What to do without ``name``'s ImageNet weights, in the window's words."""
        info = next(i for i in self.infos if i.name == name)
        cached = [i.name for i in self.infos if self.cached.get(i.name)]
        return offline_proposal(name, reason, cached, info.weights_file, info.url)

    def _show_offline(self, name: str, reason: str) -> None:
        """Say what works without ``name``'s ImageNet weights, with a button for each way the
        text proposes (the window stays usable while it is open)."""
        if self.offline_box is not None:
            self.offline_box.close()
        text = self.offline_text(name, reason)
        box = QMessageBox(QMessageBox.Icon.Information, "ImageNet weights unavailable", text,
                          QMessageBox.StandardButton.Close, self)
        role = QMessageBox.ButtonRole.ActionRole
        cached = [i.name for i in self.infos if self.cached.get(i.name)]
        actions = {}
        if cached:
            actions[box.addButton(f"Use {cached[0]}", role)] = (
                lambda: self.select_backbone(cached[0]))
        actions[box.addButton("Import Weights File…", role)] = self._import
        actions[box.addButton("Choose Weights File…", role)] = self._choose_weights_file
        actions[box.addButton("Train from Scratch", role)] = self.train_from_scratch
        # After the box has closed: an action may open a file dialog of its own.
        box.buttonClicked.connect(
            lambda button: QTimer.singleShot(0, actions[button]) if button in actions else None)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.finished.connect(lambda _result, box=box: self._forget_offline_box(box))
        box.open()
        self.offline_box = box
        self.message.emit(text.splitlines()[0])

    def _forget_offline_box(self, box: QMessageBox) -> None:
        if self.offline_box is box:  # it deletes itself
            self.offline_box = None

    def train_from_scratch(self) -> None:
        """Random starting weights, every layer trained (a frozen random backbone learns
        nothing)."""
        self.none_radio.setChecked(True)
        self.full_radio.setChecked(True)

    def _download(self) -> None:
        from ..core.weights import download_imagenet

        name = self.backbone()
        self.download_progress.setVisible(True)
        self.download_progress.setRange(0, 0)
        self.message.emit(f"downloading ImageNet weights of {name}")

        def task(emit, control):
            from ..core.weights import WeightsError

            def progress(done, total):
                if self._download_throttle.ready(final=done >= total):
                    emit((done, total))

            try:
                download_imagenet(name, progress=progress, cancel=control)
            except WeightsError as e:  # offline, or a damaged download: say what works now
                cause = e.__cause__
                reason = str(getattr(cause, "reason", None) or cause) if cause else str(e)
                return _Unavailable(name, reason)
            return name

        self.downloader.start(task)
        self._refresh_weights_status()

    @Slot(object)
    def _on_download_progress(self, progress) -> None:
        done, total = progress
        if total:
            self.download_progress.setRange(0, 1000)
            self.download_progress.setValue(int(1000 * done / total))
            self.download_progress.setFormat(f"{done / 1e6:.0f} of {total / 1e6:.0f} MB")

    @Slot(object)
    def _on_weights_cached(self, name) -> None:
        if isinstance(name, _Unavailable):
            self._show_offline(name.name, name.reason)
            return
        self.message.emit(f"ImageNet weights of {name} are cached")
        self._refresh_cache_column()
        self.settings_changed.emit()

    @Slot(str, str)
    def _on_download_failed(self, message: str, details: str) -> None:
        self.error.emit(message, details)

    @Slot()
    def _on_download_finished(self) -> None:
        self.download_progress.setVisible(False)
        self._refresh_weights_status()

    def _import(self) -> None:
        from ..core.weights import import_imagenet_file

        name = self.backbone()
        info = next(i for i in self.infos if i.name == name)
        path, _ = QFileDialog.getOpenFileName(
            self, f"Import {info.weights_file}", os.path.expanduser("~"),
            "PyTorch weights (*.pth *.pt);;All files (*)")
        if not path:
            return
        self.download_progress.setVisible(True)
        self.download_progress.setRange(0, 0)
        self.downloader.start(lambda emit, control: (import_imagenet_file(name, path), name)[1])
        self._refresh_weights_status()

    def _choose_weights_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "Starting weights: a .pth state dict or a tlgui best.pt",
            os.path.expanduser("~"), "PyTorch weights (*.pth *.pt);;All files (*)")
        if path:
            self._set_weights_file(path)

    def _set_weights_file(self, path: str) -> None:
        self.weights_file = path
        self.file_label.setText(path)
        self.file_radio.setChecked(True)
        self._changed()

    def shutdown(self) -> None:
        if self.offline_box is not None:
            self.offline_box.close()
        self.downloader.shutdown(SHUTDOWN_WAIT_MS)

