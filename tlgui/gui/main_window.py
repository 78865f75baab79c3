"""The main window: a sidebar of three steps — Data, Model, Train — over one pane each."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from PySide6.QtCore import QSettings, QSize, QStandardPaths, Qt, QTimer, Slot
from PySide6.QtGui import QAction, QCloseEvent, QIcon, QKeySequence
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QMainWindow,
    QMessageBox,
    QPushButton,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from .dataset_pane import DatasetPane
from .inspect import InspectPane
from .model_pane import ModelPane
from .results import ResultsPane
from .training_controller import TrainingController
from .training_pane import TrainingPane
from .workers import TaskController

STEPS = ("1  Data", "2  Model", "3  Train", "4  Look inside", "5  Results")
MAX_RECENT = 8
STATE_TEXT = {"idle": "Idle", "preparing": "Preparing…", "running": "Training",
              "paused": "Paused", "stopping": "Stopping…"}
RESOURCES = Path(__file__).resolve().parents[2] / "resources"


def load_backend(emit, control) -> dict:
    """Import PyTorch and gather what the panes show (runs off the GUI thread at start-up)."""
    from ..core import training  # noqa: F401  (so that starting a training imports nothing)
    from ..core.device import available_devices
    from ..core.models import ModelSpec, block_layout
    from ..core.registry import backbone_info, backbone_names
    from ..core.weights import is_cached

    infos = [backbone_info(name) for name in backbone_names()]
    for info in infos:  # lay each backbone out once here, not in the GUI thread later
        block_layout(ModelSpec(info.name, 2))
    return {
        "backbones": infos,
        "cached": {info.name: is_cached(info.name) for info in infos},
        "devices": available_devices(),
    }


def runs_dir() -> Path:
    """Where the app keeps its training runs."""
    override = os.environ.get("TLGUI_RUNS_DIR")
    if override:
        return Path(override)
    base = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.AppDataLocation)
    return Path(base or Path.home() / ".tlgui") / "runs"


def problem_text(problems: list[str]) -> str:
    """Every reason training cannot start, one sentence a line ('' when it can)."""
    return "\n".join(p[0].upper() + p[1:] + "." for p in problems)


class MainWindow(QMainWindow):
    def __init__(self, settings: QSettings | None = None):
        super().__init__()
        self.settings = settings or QSettings("tlgui", "tlgui")
        self.setWindowTitle("tlgui — transfer learning")
        icon = RESOURCES / "tlgui.svg"
        if icon.exists():
            self.setWindowIcon(QIcon(str(icon)))
        self.resize(1280, 820)
        self._close_when_idle = False
        self.backend: dict | None = None
        self.last_run_dir: Path | None = None
        self.error_box: QMessageBox | None = None

        self.dataset_pane = DatasetPane()
        self.model_pane = ModelPane()
        self.training_pane = TrainingPane()
        self.inspect_pane = InspectPane()
        self.results_pane = ResultsPane()
        self.project_path: str | None = None
        self._pending_settings: dict | None = None
        self.controller = TrainingController(self)
        self.loader = TaskController("loader", self)

        self.steps = QListWidget()
        self.steps.setFixedWidth(150)
        self.steps.setIconSize(QSize(20, 20))
        self.steps.setStyleSheet(
            "QListWidget { font-size: 15px; border: none; background: #f0f2f5; }"
            "QListWidget::item { padding: 14px 10px; }"
            "QListWidget::item:selected { background: #1f77b4; color: white; }")
        for step in STEPS:
            self.steps.addItem(QListWidgetItem(step))
        self.stack = QStackedWidget()
        for pane in (self.dataset_pane, self.model_pane, self.training_pane, self.inspect_pane,
                     self.results_pane):
            self.stack.addWidget(pane)
        self.steps.currentRowChanged.connect(self._on_step_changed)

        self.back_button = QPushButton("← Back")
        self.back_button.clicked.connect(lambda: self.go_to(self.stack.currentIndex() - 1))
        self.next_button = QPushButton("Next →")
        self.next_button.clicked.connect(lambda: self.go_to(self.stack.currentIndex() + 1))
        self.step_hint = QLabel()
        self.step_hint.setStyleSheet("color: #555;")
        footer = QHBoxLayout()
        footer.addWidget(self.back_button)
        footer.addWidget(self.step_hint, 1)
        footer.addWidget(self.next_button)
        right = QVBoxLayout()
        right.addWidget(self.stack, 1)
        right.addLayout(footer)
        central = QWidget()
        layout = QHBoxLayout(central)
        layout.setContentsMargins(0, 0, 6, 6)
        layout.addWidget(self.steps)
        layout.addLayout(right, 1)
        self.setCentralWidget(central)

        self.device_label = QLabel("Device: loading PyTorch…")
        self.state_label = QLabel("Idle")
        self.state_label.setMinimumWidth(110)
        self.statusBar().addPermanentWidget(self.device_label)
        self.statusBar().addPermanentWidget(self.state_label)

        self.setAcceptDrops(True)
        self._build_menus()
        self._connect()
        self._restore_settings()
        self.steps.setCurrentRow(0)
        # Import PyTorch once the window is on screen, in the background.
        QTimer.singleShot(0, lambda: self.loader.start(load_backend))

    # -- structure ---------------------------------------------------------------------------
    def _build_menus(self) -> None:
        def action(menu, text, slot, shortcut=None, tip=None):
            a = QAction(text, self)
            if shortcut:
                a.setShortcut(QKeySequence(shortcut))
            if tip:
                a.setStatusTip(tip)
            a.triggered.connect(slot)
            menu.addAction(a)
            return a

        file_menu = self.menuBar().addMenu("&File")
        action(file_menu, "&Open Folder…", self._open_folder, QKeySequence.StandardKey.Open,
               "Open a folder with one sub-folder per class")
        action(file_menu, "Use &Sample Data", self._use_sample, "Ctrl+Shift+S",
               "Load the built-in sample data set")
        file_menu.addSeparator()
        action(file_menu, "Open &Project…", self.open_project_dialog, "Ctrl+Shift+O")
        self.recent_menu = file_menu.addMenu("Open &Recent Project")
        action(file_menu, "&Save Project", self.save_project, QKeySequence.StandardKey.Save)
        action(file_menu, "Save Project &As…", self.save_project_as, "Ctrl+Shift+A")
        file_menu.addSeparator()
        quit_action = action(file_menu, "&Quit", self.close)
        # The platform's Quit key where it has one (Windows and some Linux desktops have none),
        # and Ctrl+Q everywhere, as the README promises.
        quit_keys = QKeySequence.keyBindings(QKeySequence.StandardKey.Quit)
        ctrl_q = QKeySequence("Ctrl+Q")
        quit_action.setShortcuts(quit_keys + ([ctrl_q] if ctrl_q not in quit_keys else []))
        self._rebuild_recent()

        train_menu = self.menuBar().addMenu("&Training")
        self.start_action = action(train_menu, "&Start", self.start_training, "F5")
        self.pause_action = action(train_menu, "&Pause / Resume", self._toggle_pause, "F6")
        self.stop_action = action(train_menu, "S&top", self.controller.stop, "Shift+F5")

        view_menu = self.menuBar().addMenu("&View")
        for i, step in enumerate(STEPS):
            action(view_menu, step.split(maxsplit=1)[1], lambda checked=False, i=i: self.go_to(i),
                   f"Ctrl+{i + 1}")

        help_menu = self.menuBar().addMenu("&Help")
        action(help_menu, "&About tlgui", self._about)

    def _connect(self) -> None:
        d, m, t, c = self.dataset_pane, self.model_pane, self.training_pane, self.controller
        d.dataset_changed.connect(self._on_dataset_changed)
        d.message.connect(self.show_message)
        m.message.connect(self.show_message)
        m.error.connect(self.show_error)
        m.settings_changed.connect(self._update_problems)
        m.settings_changed.connect(self._update_inspect_backbone)
        m.settings_changed.connect(lambda: t.set_starting_weights(m.weights()))
        self.inspect_pane.message.connect(self.show_message)
        self.inspect_pane.error.connect(self.show_error)
        self.results_pane.message.connect(self.show_message)
        self.results_pane.error.connect(self.show_error)
        self.results_pane.runs_changed.connect(self._on_runs_changed)
        # Look inside shows the model Results shows; both run on the Train step's device.
        self.results_pane.checkpoint_changed.connect(self.inspect_pane.select_checkpoint)
        t.device.currentIndexChanged.connect(
            lambda: self.results_pane.set_device(t.device.currentData()))
        t.start_requested.connect(self.start_training)
        t.pause_requested.connect(c.pause)
        t.resume_requested.connect(c.resume)
        t.stop_requested.connect(c.stop)
        c.state_changed.connect(self._on_state_changed)
        c.training_started.connect(t.on_training_started)
        c.stage_progressed.connect(t.on_stage_progressed)
        c.batch_finished.connect(t.on_batch_finished)
        c.epoch_finished.connect(t.on_epoch_finished)
        c.log_message.connect(t.add_log)
        c.training_finished.connect(self._on_training_finished)
        c.training_failed.connect(self._on_training_failed)
        self.loader.succeeded.connect(self._on_backend_loaded)
        self.loader.failed.connect(self.show_error)

    def go_to(self, index: int) -> None:
        if 0 <= index < len(STEPS):
            self.steps.setCurrentRow(index)

    @Slot(int)
    def _on_step_changed(self, index: int) -> None:
        self.stack.setCurrentIndex(index)
        self.back_button.setEnabled(index > 0)
        self.next_button.setVisible(index < len(STEPS) - 1)
        self.next_button.setText(f"Next: {STEPS[index + 1].split(maxsplit=1)[1]} →"
                                 if index < len(STEPS) - 1 else "")
        hints = ("Drop folders of your images, or try the sample data.",
                 "Pick a backbone and what to train; the helper suggests a strategy.",
                 "Start training and watch the runs with and without dropout.",
                 "See what the network sees: feature maps, where it looks, what it imagines.",
                 "Compare runs, evaluate a model, classify new images, export it.")
        self.step_hint.setText(hints[index])

    # -- actions -----------------------------------------------------------------------------
    def _open_folder(self) -> None:
        self.go_to(0)
        self.dataset_pane.open_folder_dialog()

    def _use_sample(self) -> None:
        self.go_to(0)
        self.dataset_pane.use_sample()

    def _toggle_pause(self) -> None:
        if self.controller.state == "paused":
            self.controller.resume()
        else:
            self.controller.pause()

    def problems(self) -> list[str]:
        return self.dataset_pane.problems() + self.model_pane.problems()

    def start_training(self) -> None:
        """Start training with the settings of the three panes."""
        from ..core.training import TrainConfig

        if self.controller.is_running():
            return
        problems = self.problems()
        if problems:
            self.training_pane.set_problem(problem_text(problems))
            self.go_to(2)
            return
        fraction, seed = self.dataset_pane.split_settings()
        config = TrainConfig(**self.model_pane.settings(), **self.training_pane.settings(),
                             val_fraction=fraction, seed=seed)
        if config.compare_dropout and config.dropout <= 0:
            config.compare_dropout = False
        self.last_run_dir = runs_dir() / time.strftime("%Y%m%d-%H%M%S")
        report = self.dataset_pane.dataset()
        self.training_pane.reset(["with_dropout", "without_dropout"] if config.compare_dropout
                                 else ["model"], config.epochs)
        self.training_pane.add_log(f"run folder: {self.last_run_dir}")
        self._save_settings()
        self.go_to(2)
        self.controller.start(config, report, self.last_run_dir)

    # -- reactions ---------------------------------------------------------------------------
    @Slot(object)
    def _on_backend_loaded(self, backend: dict) -> None:
        self.backend = backend
        self.model_pane.set_backend(backend)
        self.training_pane.set_devices(backend["devices"])
        pending = self._pending_settings or {}
        self._pending_settings = None
        self.model_pane.apply_settings(pending.get("model") or self._json_setting("model"))
        self.training_pane.apply_settings(pending.get("training") or
                                          self._json_setting("training"))
        best = backend["devices"][0]
        self.device_label.setText(f"Device: {best[1]}")
        if self.project_path is None and not self.results_pane.runs:
            from ..core.project import list_runs

            self.results_pane.set_runs(list_runs(runs_dir()))
        self._on_dataset_changed()

    @Slot()
    def _on_dataset_changed(self) -> None:
        report = self.dataset_pane.dataset() if self.dataset_pane.report else None
        if report is not None and self.backend is not None:
            self.model_pane.set_dataset(len(report.items), len(report.classes))
        self.inspect_pane.set_dataset(report.items if report else [],
                                      report.classes if report else [])
        if self.dataset_pane.folders:
            self.settings.setValue("data/folders", json.dumps(self.dataset_pane.folders))
        self._update_problems()

    def _update_problems(self) -> None:
        self.training_pane.set_problem(problem_text(self.problems()))

    @Slot(str)
    def _on_state_changed(self, state: str) -> None:
        self.state_label.setText(STATE_TEXT.get(state, state))
        self.training_pane.set_state(state)
        busy = state != "idle"
        self.start_action.setEnabled(not busy)
        self.pause_action.setEnabled(busy and state != "stopping")
        self.stop_action.setEnabled(busy and state != "stopping")
        if state == "idle" and self._close_when_idle:
            QTimer.singleShot(0, self.close)

    def _update_inspect_backbone(self) -> None:
        name = self.model_pane.backbone()
        self.inspect_pane.set_backbone(name, self.model_pane.cached.get(name, False))

    @Slot(dict)
    def _on_training_finished(self, summary: dict) -> None:
        self.training_pane.on_training_finished(summary)
        self.inspect_pane.add_checkpoints(self.last_run_dir, list(summary["runs"]))
        try:
            self.results_pane.add_run(self.last_run_dir)
        except Exception as e:  # the run folder is unreadable: say so, keep going
            self.show_error(f"{self.last_run_dir}: {e}")
        self.show_message(f"training {summary['status']}; saved in {self.last_run_dir}")

    @Slot()
    def _on_runs_changed(self) -> None:
        for run in self.results_pane.runs:
            self.inspect_pane.add_checkpoints(run.path, list(run.variants), select_last=False)

    @Slot(str, str)
    def _on_training_failed(self, message: str, details: str) -> None:
        self.training_pane.add_log(f"error: {message}")
        self.training_pane.step_label.setText("Training failed.")
        self.show_error(message, details)

    @Slot(str)
    def show_message(self, text: str) -> None:
        self.statusBar().showMessage(text, 8000)

    @Slot(str, str)
    def show_error(self, message: str, details: str = "") -> None:
        """A non-blocking message box: the window stays usable behind it."""
        box = QMessageBox(QMessageBox.Icon.Warning, "tlgui", message,
                          QMessageBox.StandardButton.Ok, self)
        if details:
            box.setDetailedText(details)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.finished.connect(lambda _result, box=box: self._forget_error_box(box))
        box.open()
        self.error_box = box
        self.show_message(message)

    def _forget_error_box(self, box: QMessageBox) -> None:
        # Closed boxes delete themselves; never hand out a deleted one.
        if self.error_box is box:
            self.error_box = None

    def _about(self) -> None:
        from .. import __version__

        QMessageBox.about(self, "About tlgui", (
            f"<b>tlgui {__version__}</b><p>Transfer learning on your own images: fine-tune an "
            f"ImageNet-pretrained network and watch it train, with and without dropout.</p>"))

    # -- settings ----------------------------------------------------------------------------
    def _json_setting(self, key: str) -> dict:
        try:
            return json.loads(self.settings.value(key, "{}") or "{}")
        except (TypeError, ValueError):
            return {}

    def _restore_settings(self) -> None:
        geometry = self.settings.value("window/geometry")
        if geometry is not None:
            self.restoreGeometry(geometry)
        split = self._json_setting("split")
        if "val_fraction" in split:
            self.dataset_pane.val_fraction.setValue(float(split["val_fraction"]) * 100)
        if "seed" in split:
            self.dataset_pane.seed.setValue(int(split["seed"]))
        self.training_pane.apply_settings(self._json_setting("training"))

    def _save_settings(self) -> None:
        self.settings.setValue("window/geometry", self.saveGeometry())
        if self.backend is not None:
            self.settings.setValue("model", json.dumps(self.model_pane.settings()))
            self.settings.setValue("training", json.dumps(self.training_pane.settings()))
        fraction, seed = self.dataset_pane.split_settings()
        self.settings.setValue("split", json.dumps({"val_fraction": fraction, "seed": seed}))
        self.settings.sync()

    def last_folders(self) -> list[str]:
        try:
            folders = json.loads(self.settings.value("data/folders", "[]") or "[]")
        except (TypeError, ValueError):
            return []
        return [f for f in folders if os.path.isdir(f)]

    # -- projects ----------------------------------------------------------------------------
    def project_state(self) -> dict:
        """Everything a project file keeps (see :mod:`tlgui.core.project`)."""
        names, removed = self.dataset_pane.edits()
        fraction, seed = self.dataset_pane.split_settings()
        return {
            "data": {"folders": self.dataset_pane.folders,
                     "test_folder": self.dataset_pane.test_folder,
                     "class_names": names, "removed": removed,
                     "val_fraction": fraction, "seed": seed},
            "model": self.model_pane.settings() if self.backend else
            self._json_setting("model"),
            "training": self.training_pane.settings(),
            "runs": self.results_pane.run_paths(),
        }

    def save_project(self) -> None:
        if self.project_path:
            self.save_project_to(self.project_path)
        else:
            self.save_project_as()

    def save_project_as(self) -> None:
        from PySide6.QtWidgets import QFileDialog

        path, _ = QFileDialog.getSaveFileName(self, "Save project", "project.tlgui.json",
                                              "tlgui projects (*.tlgui.json)")
        if path:
            self.save_project_to(path)

    def save_project_to(self, path: str) -> None:
        from ..core.project import save_project

        try:
            saved = save_project(path, self.project_state())
        except OSError as e:
            self.show_error(f"{path}: cannot save the project ({e.strerror or e})")
            return
        self.project_path = str(saved)
        self._remember_recent(self.project_path)
        self.setWindowTitle(f"tlgui — {os.path.basename(self.project_path)}")
        self.show_message(f"saved {saved}")

    def open_project_dialog(self) -> None:
        from PySide6.QtWidgets import QFileDialog

        path, _ = QFileDialog.getOpenFileName(self, "Open project", os.path.expanduser("~"),
                                              "tlgui projects (*.tlgui.json);;All files (*)")
        if path:
            self.open_project(path)

    def open_project(self, path: str) -> list[str]:
        """Open a project; returns (and shows) what could not be found."""
        from ..core.project import ProjectError, load_project

        try:
            state, problems = load_project(path)
        except ProjectError as e:
            self.show_error(str(e))
            return [str(e)]
        data = state.get("data", {})
        if "val_fraction" in data:
            self.dataset_pane.val_fraction.setValue(float(data["val_fraction"]) * 100)
        if "seed" in data:
            self.dataset_pane.seed.setValue(int(data["seed"]))
        self.training_pane.apply_settings(state.get("training", {}))
        if self.backend is not None:
            self.model_pane.apply_settings(state.get("model", {}))
            # The starting weights reset the backbone rate's default; the project's rate wins.
            self.training_pane.apply_settings(state.get("training", {}))
        else:  # applied when PyTorch has loaded, over the remembered settings
            self._pending_settings = state
        problems += self.results_pane.set_runs(state.get("runs", []))
        folders = [f for f in data.get("folders", []) if os.path.isdir(f)]
        test = data.get("test_folder")
        if folders:
            self.dataset_pane.restore(folders, test if test and os.path.isdir(test) else None,
                                      data.get("class_names"), data.get("removed"))
        self.project_path = str(path)
        self._remember_recent(self.project_path)
        self.setWindowTitle(f"tlgui — {os.path.basename(self.project_path)}")
        if problems:
            self.show_error("The project opened, but some of it is missing:\n• "
                            + "\n• ".join(problems))
        else:
            self.show_message(f"opened {path}")
        return problems

    def _remember_recent(self, path: str) -> None:
        recent = [path] + [p for p in self._recent() if p != path]
        self.settings.setValue("projects/recent", json.dumps(recent[:MAX_RECENT]))
        self._rebuild_recent()

    def _recent(self) -> list[str]:
        try:
            return list(json.loads(self.settings.value("projects/recent", "[]") or "[]"))
        except (TypeError, ValueError):
            return []

    def _rebuild_recent(self) -> None:
        self.recent_menu.clear()
        recent = self._recent()
        for path in recent:
            a = QAction(path, self)
            a.triggered.connect(lambda checked=False, p=path: self.open_project(p))
            self.recent_menu.addAction(a)
        self.recent_menu.setEnabled(bool(recent))

    # -- drops anywhere on the window go to the Data step ------------------------------------
    def dragEnterEvent(self, event) -> None:
        self.dataset_pane.drop_zone.dragEnterEvent(event)

    def dropEvent(self, event) -> None:
        self.go_to(0)
        self.dataset_pane.drop_zone.dropEvent(event)

    # -- closing -----------------------------------------------------------------------------
    def closeEvent(self, event: QCloseEvent) -> None:
        if self.controller.is_running():
            event.ignore()
            if self._close_when_idle:
                return
            answer = QMessageBox.question(
                self, "Training is running",
                "Stop the training and quit? The best weights so far are kept.",
                QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
                QMessageBox.StandardButton.No)
            if answer == QMessageBox.StandardButton.Yes:
                self._close_when_idle = True
                self.show_message("stopping the training…")
                self.controller.stop()
            return
        self._save_settings()
        self.shutdown()
        event.accept()

    def shutdown(self) -> None:
        """Stop and join every worker thread."""
        self.controller.shutdown()
        self.loader.shutdown()
        self.dataset_pane.shutdown()
        self.model_pane.shutdown()
        self.inspect_pane.shutdown()
        self.results_pane.shutdown()
