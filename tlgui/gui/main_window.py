"""The main window: a sidebar of steps over one pane each, built from one list of panes.

The window knows its steps through :class:`~tlgui.gui.pane.Pane` only: the sidebar, the stack,
the View menu, Next and Back, the reasons training cannot start, the remembered settings, the
project file and the shutdown all follow :meth:`MainWindow._make_panes`, so a new step is one
entry there. What passes between two panes (the data set to the model step, a finished run to
Results) is wired in :meth:`MainWindow._connect`.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from PySide6.QtCore import QSettings, QSize, QStandardPaths, Qt, QTimer, Slot
from PySide6.QtGui import QAction, QCloseEvent, QIcon, QKeySequence, QPalette
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

from .check import CheckPane
from .dataset_pane import DatasetPane
from .inspect import InspectPane
from .model_pane import ModelPane
from .pane import Pane
from .results import ResultsPane
from .run_follower import RunFollower
from .training_controller import TrainingController
from .training_pane import TrainingPane
from .workers import SHUTDOWN_WAIT_MS, TaskController, after_next_paint

MAX_RECENT = 8
STATE_TEXT = {"idle": "Idle", "preparing": "Preparing…", "running": "Training",
              "paused": "Paused", "stopping": "Stopping…",
              "following": "Following a run (read-only)"}
RESOURCES = Path(__file__).resolve().parents[2] / "resources"
TORCH_LOADING = "PyTorch is still loading; training starts when it is ready"


def about_text(backend: dict | None) -> str:
    """Help → About: what tlgui is, the versions it runs on (Qt's own as well as its Python
    binding's) and the device it trains on."""
    from html import escape

    from PySide6.QtCore import qVersion

    from ..versions import versions

    (_, version), *others = versions()
    rows = others + [("Qt", qVersion())]
    if backend is None:
        device = "PyTorch is still loading"
    else:
        devices = backend.get("devices") or [("cpu", "CPU")]
        device = f"{devices[0][0]} — {devices[0][1]}"
    rows.append(("Device", device))
    table = "".join(f"<tr><td>{escape(name)}</td><td>&nbsp;{escape(value)}</td></tr>"
                    for name, value in rows)
    return (f"<b>tlgui {escape(version)}</b><p>Transfer learning on your own images: fine-tune "
            f"an ImageNet-pretrained network and watch it train, with and without dropout.</p>"
            f"<table>{table}</table>")


def load_backend(emit, control) -> dict:
    """Import PyTorch and gather what the panes show (runs off the GUI thread at start-up)."""
    from ..core.heap import import_long_lived

    # Starting a training then imports nothing, and PyTorch's objects stay out of the
    # collector's full passes (which would otherwise stall the window for a quarter second).
    import_long_lived("torch", "torchvision", "tlgui.core.training")
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


def error_details(errors: list[tuple[str, str]]) -> str:
    """The details of one error box that holds several errors: each message, numbered, with
    its own details under it."""
    if len(errors) == 1:
        return errors[0][1]
    parts = []
    for i, (message, details) in enumerate(errors, 1):
        parts.append(f"{i}. {message}" + (f"\n{details.rstrip()}" if details else ""))
    return "\n\n".join(parts)


class MainWindow(QMainWindow):
    """The window: the panes of :meth:`_make_panes` as steps, the menus, the status bar, the
    training controller, projects and the remembered settings (``settings``, or the user's)."""

    def __init__(self, settings: QSettings | None = None):
        super().__init__()
        self.settings = settings or QSettings("tlgui", "tlgui")
        icon = RESOURCES / "tlgui.svg"
        if icon.exists():
            self.setWindowIcon(QIcon(str(icon)))
        self.resize(1280, 820)
        self._close_when_idle = False
        self._start_when_loaded = False
        self.backend: dict | None = None
        self.last_run_dir: Path | None = None
        self._followed: str | None = None  #: the run folder the follower reads
        self.error_box: QMessageBox | None = None
        self._errors: list[tuple[str, str]] = []  #: what the open error box holds
        self.project_path: str | None = None
        #: The project state last saved or opened (None for a session never saved): what the
        #: unsaved-changes mark compares with.
        self._saved_state: dict | None = None
        self._applying = False  #: a project or remembered settings are being applied
        #: the data folders the curves on the Train step were trained on (None: no curves)
        self._curves_folders: list[str] | None = None
        #: What the panes were last restored from, re-applied to the Train step once the Model
        #: step has its backbones: ("settings" or "project", values).
        self._restored: tuple[str, dict] = ("settings", {})

        self.panes: list[Pane] = self._make_panes()
        self.controller = TrainingController(self)
        #: Shows on the Train step a training written elsewhere (its run folder's log).
        self.follower = RunFollower(self)
        self.loader = TaskController("loader", self)
        self._update_title()

        self.steps = QListWidget()
        self.steps.setFixedWidth(150)
        self.steps.setIconSize(QSize(20, 20))
        # Sizes only: the colours are the palette's (Base and Text, Highlight and
        # HighlightedText for the chosen step), so a dark desktop theme stays readable and a
        # change of theme follows at once.
        self.steps.setStyleSheet("QListWidget { font-size: 15px; border: none; }"
                                 "QListWidget::item { padding: 14px 10px; }")
        self.stack = QStackedWidget()
        for i, pane in enumerate(self.panes):
            self.steps.addItem(QListWidgetItem(f"{i + 1}  {pane.title}"))
            self.stack.addWidget(pane)
        self.steps.currentRowChanged.connect(self._on_step_changed)

        self.back_button = QPushButton("← Back")
        self.back_button.clicked.connect(lambda: self.go_to(self.stack.currentIndex() - 1))
        self.next_button = QPushButton("Next →")
        self.next_button.clicked.connect(lambda: self.go_to(self.stack.currentIndex() + 1))
        self.step_hint = QLabel()
        self.step_hint.setForegroundRole(QPalette.ColorRole.PlaceholderText)
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

    def _make_panes(self) -> list[Pane]:
        """The steps of the window, in order: the one place that lists them."""
        self.dataset_pane = DatasetPane()
        self.check_pane = CheckPane()
        self.model_pane = ModelPane()
        self.training_pane = TrainingPane()
        self.inspect_pane = InspectPane()
        self.results_pane = ResultsPane()
        return [self.dataset_pane, self.check_pane, self.model_pane, self.training_pane,
                self.inspect_pane, self.results_pane]

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
        action(file_menu, "Use &Sample Data", self._use_sample, "Ctrl+Shift+D",
               "Load the built-in sample data set")
        file_menu.addSeparator()
        action(file_menu, "Open &Project…", self.open_project_dialog, "Ctrl+Shift+O")
        self.recent_menu = file_menu.addMenu("Open &Recent Project")
        action(file_menu, "&Save Project", self.save_project, QKeySequence.StandardKey.Save)
        self.save_as_action = action(file_menu, "Save Project &As…", self.save_project_as)
        # The platform's Save As key where it has one (Windows has none), and Ctrl+Shift+S
        # everywhere, as most desktop programs do.
        self.save_as_action.setShortcuts(
            _with_key(QKeySequence.keyBindings(QKeySequence.StandardKey.SaveAs), "Ctrl+Shift+S"))
        file_menu.addSeparator()
        quit_action = action(file_menu, "&Quit", self.close)
        # The platform's Quit key where it has one (Windows and some Linux desktops have none),
        # and Ctrl+Q everywhere, as the README promises.
        quit_action.setShortcuts(
            _with_key(QKeySequence.keyBindings(QKeySequence.StandardKey.Quit), "Ctrl+Q"))
        self._rebuild_recent()

        train_menu = self.menuBar().addMenu("&Training")
        self.start_action = action(train_menu, "&Start", self.start_training, "F5")
        self.pause_action = action(train_menu, "&Pause / Resume", self._toggle_pause, "F6")
        self.stop_action = action(train_menu, "S&top", self.controller.stop, "Shift+F5")

        view_menu = self.menuBar().addMenu("&View")
        for i, pane in enumerate(self.panes):
            action(view_menu, pane.title, lambda checked=False, i=i: self.go_to(i),
                   f"Ctrl+{i + 1}" if i < 9 else None)

        help_menu = self.menuBar().addMenu("&Help")
        action(help_menu, "&About tlgui", self._about)

    def _connect(self) -> None:
        d, m, t, c = self.dataset_pane, self.model_pane, self.training_pane, self.controller
        for pane in self.panes:
            pane.message.connect(self.show_message)
            pane.error.connect(self.show_error)
            pane.changed.connect(self._on_pane_changed)
        d.dataset_changed.connect(self._on_dataset_changed)
        self.check_pane.data_source = lambda: (
            d.dataset(), *d.split_settings(), t.device.currentData() or "auto")
        self.check_pane.edit_requested.connect(self._on_image_edit)
        self.check_pane.undo_requested.connect(d.clear_image_edits)
        self.check_pane.training_running = lambda: c.is_running()
        m.settings_changed.connect(self._update_problems)
        m.settings_changed.connect(self._update_inspect_backbone)
        m.settings_changed.connect(lambda: t.set_starting_weights(m.weights()))
        m.settings_changed.connect(self._update_image_size)
        self.results_pane.runs_changed.connect(self._on_runs_changed)
        # Look inside shows the model Results shows; both run on the Train step's device.
        self.results_pane.checkpoint_changed.connect(self.inspect_pane.select_checkpoint)
        self.results_pane.play_tab.look_inside.connect(self._look_inside_at)
        t.device.currentIndexChanged.connect(
            lambda: self.results_pane.set_device(t.device.currentData()))
        t.start_requested.connect(self.start_training)
        t.pause_requested.connect(c.pause)
        t.resume_requested.connect(c.resume)
        t.stop_requested.connect(c.stop)
        c.state_changed.connect(self._on_state_changed)
        c.training_started.connect(t.on_training_started)
        c.training_started.connect(self._remember_curves_folders)
        c.training_started.connect(self._map_follows)
        c.stage_progressed.connect(t.on_stage_progressed)
        c.batch_finished.connect(t.on_batch_finished)
        c.epoch_finished.connect(t.on_epoch_finished)
        c.log_message.connect(t.add_log)
        c.training_finished.connect(self._on_training_finished)
        c.training_failed.connect(self._on_training_failed)
        f = self.follower
        f.training_started.connect(t.on_training_started)
        f.training_started.connect(self._map_follows)
        f.stage_progressed.connect(t.on_stage_progressed)
        f.batch_finished.connect(t.on_batch_finished)
        f.epoch_finished.connect(t.on_epoch_finished)
        f.log_message.connect(t.add_log)
        f.training_finished.connect(self._on_followed_finished)
        f.training_failed.connect(self._on_followed_failed)
        f.following_changed.connect(self._on_following_changed)
        self.results_pane.running_run_opened.connect(self.follow_run)
        self.loader.succeeded.connect(self._on_backend_loaded)
        self.loader.failed.connect(self.show_error)

    def go_to(self, index: int) -> None:
        if 0 <= index < len(self.panes):
            self.steps.setCurrentRow(index)

    @Slot(int)
    def _on_step_changed(self, index: int) -> None:
        self.stack.setCurrentIndex(index)
        last = index == len(self.panes) - 1
        self.back_button.setEnabled(index > 0)
        self.next_button.setVisible(not last)
        self.next_button.setText("" if last else f"Next: {self.panes[index + 1].title} →")
        self.step_hint.setText(self.panes[index].hint)

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
        """Every reason training cannot start, step by step."""
        return [problem for pane in self.panes for problem in pane.problems()]

    def start_training(self) -> None:
        """Start training with the settings of the panes.

        Never blocks: before PyTorch has loaded the start waits for it (importing it here
        would hold the GUI thread on the import lock), and while the images are checked it is
        refused (it would train on the previous data set)."""
        if self.controller.is_running():
            return
        self.follower.stop()  # the Train step shows this training now
        if self.backend is None:
            self._start_when_loaded = True
            self.training_pane.set_problem(TORCH_LOADING[0].upper() + TORCH_LOADING[1:] + ".")
            self.show_message(TORCH_LOADING)
            self.go_to(self.panes.index(self.training_pane))
            return
        self._start_when_loaded = False
        from ..core.training import TrainConfig  # loaded: the background import is done

        problems = self.problems()  # the Data step's first one while its images are checked
        if problems:
            self.training_pane.set_problem(problem_text(problems))
            self.show_message(problem_text(problems[:1]))
            self.go_to(self.panes.index(self.training_pane))
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
        self.go_to(self.panes.index(self.training_pane))
        # Held until the step has been drawn: the trainer's first second of Python (building
        # the data set and the model) would otherwise slow that drawing to a visible pause.
        self.controller.start(config, report, self.last_run_dir, held=True)
        after_next_paint(self.training_pane.curves.loss.viewport(), self.controller.release)

    def follow_run(self, folder: str) -> None:
        """Show on the Train step the training that writes ``folder`` (elsewhere: another
        process, another machine with the folder on a share), as it goes. Read-only."""
        if self.controller.is_running():
            self.show_message(f"a training runs in this window; {folder} is not followed")
            return
        self._followed = folder
        self.training_pane.clear_for_new_data()
        self.training_pane.add_log(f"following the training in {folder} (read-only: it "
                                   f"cannot be paused or stopped from here)")
        self.go_to(self.panes.index(self.training_pane))
        self.follower.follow(folder)

    @Slot(bool)
    def _on_following_changed(self, following: bool) -> None:
        if not self.controller.is_running():
            self._on_state_changed("following" if following else "idle")

    def _refresh_followed(self) -> None:
        folder = self._followed
        try:
            self.results_pane.add_run(folder)
        except Exception as e:  # the run folder is unreadable: say so, keep going
            self.show_error(f"{folder}: {e}")
            return
        run = next((r for r in self.results_pane.runs if r.path == str(folder)), None)
        if run is not None:
            self.inspect_pane.add_checkpoints(folder, list(run.variants), select_last=False)
            self.check_pane.set_checkpoints(self.inspect_pane.checkpoints)

    @Slot(dict)
    def _on_followed_finished(self, summary: dict) -> None:
        try:
            self.training_pane.on_training_finished(summary)
        except (KeyError, TypeError, ValueError, AttributeError):
            self.show_error(f"{self._followed}: the log's last line is not a training "
                            f"summary")
        self._refresh_followed()
        self.show_message(f"the training in {self._followed} ended")

    @Slot(str, str)
    def _on_followed_failed(self, message: str, details: str) -> None:
        self._on_training_failed(message, details)
        self._refresh_followed()

    # -- reactions ---------------------------------------------------------------------------
    @Slot(object)
    def _on_backend_loaded(self, backend: dict) -> None:
        self.backend = backend
        self._applying = True
        try:
            self.model_pane.set_backend(backend)  # applies what it was given before
            self.check_pane.set_backend(backend)
            self.training_pane.set_devices(backend["devices"])
            # The starting weights just applied reset the backbone rate's default; the
            # remembered or the project's rate wins.
            kind, values = self._restored
            if kind == "project":
                self.training_pane.apply_project_state(values)
            else:
                self.training_pane.restore_settings(values)
        finally:
            self._applying = False
        best = backend["devices"][0]
        self.device_label.setText(f"Device: {best[1]}")
        if self.project_path is None and not self.results_pane.runs:
            from ..core.project import list_runs

            self.results_pane.set_runs(list_runs(runs_dir()))
        self._on_dataset_changed()
        self._refresh_modified()
        if self._start_when_loaded:
            self.start_training()

    @Slot(object)
    def _map_follows(self, event) -> None:
        """The Check step's map may follow the training's first run (see MapTab.follow): this
        window's own, or the one it follows."""
        folder = (Path(self._followed) if self.follower.is_following() and self._followed
                  else self.last_run_dir)
        if folder is not None and event.runs:
            self.check_pane.map_tab.follow_run(folder / event.runs[0])

    def _remember_curves_folders(self, _event) -> None:
        self._curves_folders = list(self.dataset_pane.folders)

    @Slot()
    def _on_dataset_changed(self) -> None:
        report = self.dataset_pane.dataset() if self.dataset_pane.report else None
        if report is not None and self.backend is not None:
            self.model_pane.set_dataset(len(report.items), len(report.classes))
        self.inspect_pane.set_dataset(report.items if report else [],
                                      report.classes if report else [])
        self.check_pane.set_edits(self.dataset_pane.shown_edits())
        folders = list(self.dataset_pane.folders)
        if (not self.controller.is_running() and not self.follower.is_following()
                and folders != self._curves_folders):
            # The last curves describe another data set. Edits of this one (a seed, a rename, a
            # class left out) keep them: they are what the user compares the next run with.
            self.training_pane.clear_for_new_data()
            self._curves_folders = None
        self._update_problems()
        if not self._applying:  # a project's folders scanned again: as saved, or not
            self._refresh_modified()

    @Slot()
    def _on_pane_changed(self) -> None:
        if self._applying:
            return
        pane = self.sender()
        if isinstance(pane, Pane):
            self._store_settings(pane.remembered_settings())  # the last folders, say
        self._refresh_modified()

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
        if state == "idle":
            self.check_pane.map_tab.stop_following()
        if state == "idle" and self._close_when_idle:
            QTimer.singleShot(0, self.close)

    def _look_inside_at(self, path: str) -> None:
        """A frame from Play, on the Look inside step."""
        self.inspect_pane.set_image(path)
        self.go_to(self.panes.index(self.inspect_pane))

    def _update_image_size(self) -> None:
        info = self.model_pane.backbone_info()
        if info is not None:
            self.training_pane.set_backbone(info.crop_size, info.fixed_size)

    def _update_inspect_backbone(self) -> None:
        name = self.model_pane.backbone()
        self.inspect_pane.set_backbone(name, self.model_pane.cached.get(name, False))

    @Slot(dict)
    def _on_training_finished(self, summary: dict) -> None:
        self.training_pane.on_training_finished(summary)
        self.inspect_pane.add_checkpoints(self.last_run_dir, list(summary["runs"]))
        self.check_pane.set_checkpoints(self.inspect_pane.checkpoints)
        try:
            self.results_pane.add_run(self.last_run_dir)
        except Exception as e:  # the run folder is unreadable: say so, keep going
            self.show_error(f"{self.last_run_dir}: {e}")
        self.show_message(f"training {summary['status']}; saved in {self.last_run_dir}")

    @Slot()
    def _on_runs_changed(self) -> None:
        for run in self.results_pane.runs:
            self.inspect_pane.add_checkpoints(run.path, list(run.variants), select_last=False)
        self.check_pane.set_checkpoints(self.inspect_pane.checkpoints)

    def _on_image_edit(self, path: str, shown_class) -> None:
        """Leave an image out (None) or count it in the class shown as ``shown_class``."""
        self.dataset_pane.set_image_edit(path, self.dataset_pane.scanned_name(shown_class)
                                         if shown_class is not None else None)

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
        """A non-blocking message box: the window stays usable behind it. An error while the
        box is open joins it (a count under the first message, every one in the details)
        instead of stacking a second box on it."""
        self.show_message(message)
        box = self.error_box
        if box is not None and box.isVisible():
            self._errors.append((message, details))
            more = len(self._errors) - 1
            box.setInformativeText(f"…and {more} more error{'s' if more > 1 else ''} since: "
                                   f"all of them are under Show Details.")
            box.setDetailedText(error_details(self._errors))
            return
        self._errors = [(message, details)]
        box = QMessageBox(QMessageBox.Icon.Warning, "tlgui", message,
                          QMessageBox.StandardButton.Ok, self)
        if details:
            box.setDetailedText(details)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.finished.connect(lambda _result, box=box: self._forget_error_box(box))
        box.open()
        self.error_box = box

    def _forget_error_box(self, box: QMessageBox) -> None:
        # Closed boxes delete themselves; never hand out a deleted one.
        if self.error_box is box:
            self.error_box = None
            self._errors = []

    def _about(self) -> None:
        QMessageBox.about(self, "About tlgui", about_text(self.backend))

    # -- settings ----------------------------------------------------------------------------
    def _stored(self, key: str):
        """A remembered value (JSON text in the settings), or None when missing or damaged."""
        try:
            text = self.settings.value(key)
            return None if text in (None, "") else json.loads(text)
        except (TypeError, ValueError):
            return None

    def _store_settings(self, values: dict) -> None:
        for key, value in values.items():
            self.settings.setValue(key, json.dumps(value))

    def _restore_settings(self) -> None:
        geometry = self.settings.value("window/geometry")
        if geometry is not None:
            self.restoreGeometry(geometry)
        values = {}
        for pane in self.panes:  # each pane's keys are those it remembers
            for key in pane.remembered_settings():
                value = self._stored(key)
                if value is not None:
                    values[key] = value
        self._restored = ("settings", values)
        self._applying = True
        try:
            for pane in self.panes:
                pane.restore_settings(values)
        finally:
            self._applying = False

    def _save_settings(self) -> None:
        self.settings.setValue("window/geometry", self.saveGeometry())
        for pane in self.panes:
            self._store_settings(pane.remembered_settings())
        self.settings.sync()

    def last_folders(self) -> list[str]:
        """The data folders of the last session that still exist."""
        return self.dataset_pane.last_folders()

    # -- projects ----------------------------------------------------------------------------
    def project_state(self) -> dict:
        """Everything a project file keeps (see :mod:`tlgui.core.project`): each pane's part."""
        state: dict = {}
        for pane in self.panes:
            state.update(pane.project_state())
        return state

    def has_unsaved_changes(self) -> bool:
        """True when closing would lose something: the project differs from its file, or a
        session never saved has data loaded."""
        state = self.project_state()
        if self._saved_state is None:
            return bool(state.get("data", {}).get("folders"))
        return any(value != self._saved_state.get(key) for key, value in state.items())

    def _refresh_modified(self) -> None:
        self.setWindowModified(self.has_unsaved_changes())

    def _update_title(self) -> None:
        name = os.path.basename(self.project_path) if self.project_path else None
        # [*] is where Qt shows the unsaved-changes mark (and where macOS reads it from).
        self.setWindowTitle(f"tlgui — {name}[*]" if name else "tlgui — transfer learning[*]")

    def save_project(self) -> bool:
        """Save to the project's file (asking for one the first time); True when saved."""
        if self.project_path:
            return self.save_project_to(self.project_path)
        return self.save_project_as()

    def save_project_as(self) -> bool:
        from PySide6.QtWidgets import QFileDialog

        path, _ = QFileDialog.getSaveFileName(self, "Save project", "project.tlgui.json",
                                              "tlgui projects (*.tlgui.json)")
        return self.save_project_to(path) if path else False

    def save_project_to(self, path: str) -> bool:
        from ..core.project import save_project

        state = self.project_state()
        try:
            saved = save_project(path, state)
        except OSError as e:
            self.show_error(f"{path}: cannot save the project ({e.strerror or e})")
            return False
        self.project_path = str(saved)
        self._saved_state = state
        self._remember_recent(self.project_path)
        self._update_title()
        self._refresh_modified()
        self.show_message(f"saved {saved}")
        return True

    def maybe_save(self) -> bool:
        """Ask whether to save unsaved changes; False when the person cancelled (or the save
        did not happen), so that what they were about to do is not done."""
        if not self.isWindowModified():
            return True
        box = QMessageBox(QMessageBox.Icon.Question, "tlgui",
                          "Save the changes to the project?" if self.project_path else
                          "Save this session as a project?",
                          QMessageBox.StandardButton.Save | QMessageBox.StandardButton.Discard
                          | QMessageBox.StandardButton.Cancel, self)
        box.setInformativeText("Unsaved changes are lost otherwise." if self.project_path else
                               "A project keeps the data folders, the settings and the runs.")
        box.setDefaultButton(QMessageBox.StandardButton.Save)
        answer = QMessageBox.StandardButton(box.exec())
        if answer == QMessageBox.StandardButton.Save:
            return self.save_project()
        return answer == QMessageBox.StandardButton.Discard

    def open_project_dialog(self) -> None:
        from PySide6.QtWidgets import QFileDialog

        if not self.maybe_save():
            return
        path, _ = QFileDialog.getOpenFileName(self, "Open project", os.path.expanduser("~"),
                                              "tlgui projects (*.tlgui.json);;All files (*)")
        if path:
            self.open_project(path)

    def _open_recent(self, path: str) -> None:
        if self.maybe_save():
            self.open_project(path)

    def open_project(self, path: str) -> list[str]:
        """Open a project; returns (and shows) what could not be found."""
        from ..core.project import ProjectError, load_project

        try:
            state, problems = load_project(path)
        except ProjectError as e:
            self.show_error(str(e))
            return [str(e)]
        self._restored = ("project", state)
        self._applying = True
        try:
            for pane in self.panes:
                problems += pane.apply_project_state(state)
        finally:
            self._applying = False
        self.project_path = str(path)
        self._saved_state = {key: value for key, value in state.items()
                             if key not in ("format", "version")}
        self._remember_recent(self.project_path)
        self._update_title()
        self._refresh_modified()
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
            a.triggered.connect(lambda checked=False, p=path: self._open_recent(p))
            self.recent_menu.addAction(a)
        self.recent_menu.setEnabled(bool(recent))

    # -- drops anywhere on the window go to the Data step ------------------------------------
    def dragEnterEvent(self, event) -> None:
        self.dataset_pane.drop_zone.dragEnterEvent(event)

    def dragLeaveEvent(self, event) -> None:
        # Also reached when the drag moves on to a widget that takes drops of its own (the
        # Predict tab, say) and is dropped there: the highlight goes with the drag.
        self.dataset_pane.drop_zone.dragLeaveEvent(event)

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
        if not self.maybe_save():
            self._close_when_idle = False
            event.ignore()
            return
        self._save_settings()
        self.shutdown()
        event.accept()

    def shutdown(self) -> None:
        """Stop every pane's work and the window's own, waiting a bounded time for each: a
        job that does not stop in time is abandoned, never destroyed while it runs."""
        self.controller.shutdown()
        self.loader.shutdown(SHUTDOWN_WAIT_MS)
        for pane in self.panes:
            pane.shutdown()


def _with_key(keys: list[QKeySequence], extra: str) -> list[QKeySequence]:
    """``keys`` and ``extra`` (once)."""
    key = QKeySequence(extra)
    return list(keys) + ([key] if key not in keys else [])

