"""Step 5, results: past runs with overlaid curves, evaluation (confusion matrix, per-class
metrics, mistakes), predictions on new images, and export.

The pane holds the list of runs and the model chosen from them; each tab is a module of its
own and each long job (evaluation, prediction, export) a task controller of its own, so one
kind of job never cancels another.
"""

from __future__ import annotations

import os
from pathlib import Path

from PySide6.QtCore import Signal, Slot
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QTabWidget,
    QVBoxLayout,
)

from ...core.errors import one_line
from ...core.project import RunRecord
from ..pane import Pane
from ..plots import RUN_LABELS
from .evaluate_tab import EvaluateTab
from .export_tab import ExportTab
from .play_tab import PlayTab
from .predict_tab import PredictTab
from .runs_tab import RunsTab, run_rows


def newest_first(runs: list[RunRecord]) -> list[RunRecord]:
    """Runs ordered newest first (by when their settings were written, then by name)."""
    return sorted(runs, key=lambda run: (run.created, run.name), reverse=True)


def best_checkpoint(run: RunRecord) -> str | None:
    """The checkpoint of the run's variant with the best validation accuracy."""
    best = max(run.variants.values(), default=None,
               key=lambda info: info.get("best_val_acc") or 0.0)
    return best["checkpoint"] if best else None


class ResultsPane(Pane):
    """Runs, evaluation, predictions and export for trained models."""

    title = "Results"
    hint = ("Compare runs, evaluate a trained model, classify new images with it, or export "
            "it for use elsewhere.")

    runs_changed = Signal()  #: runs were added, removed or replaced
    #: the chosen model's checkpoint (``best.pt``), whenever the choice changes
    checkpoint_changed = Signal(str)
    #: A run folder opened whose training is still being written (to follow it live).
    running_run_opened = Signal(str)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.runs: list[RunRecord] = []
        self._announced: str | None = None

        self.checkpoint = QComboBox()
        self.checkpoint.setSizeAdjustPolicy(
            QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.checkpoint.setMinimumContentsLength(30)
        self.checkpoint.currentIndexChanged.connect(self._on_model_chosen)
        self.open_run_button = QPushButton("Open Run Folder…")
        self.open_run_button.clicked.connect(self._open_run)
        top = QHBoxLayout()
        top.addWidget(QLabel("Model:"))
        top.addWidget(self.checkpoint, 1)
        top.addWidget(self.open_run_button)

        self.runs_tab = RunsTab()
        self.runs_tab.remove_requested.connect(self.remove_runs)
        self.evaluate_tab = EvaluateTab()
        self.predict_tab = PredictTab()
        self.export_tab = ExportTab()
        self.play_tab = PlayTab()
        self.tabs = QTabWidget()
        self.tabs.addTab(self.runs_tab, "Runs")
        self.tabs.addTab(self.evaluate_tab, "Evaluate")
        self.tabs.addTab(self.predict_tab, "Predict")
        self.tabs.addTab(self.play_tab, "Play")
        self.tabs.addTab(self.export_tab, "Export")
        for tab in (self.evaluate_tab, self.predict_tab, self.export_tab, self.play_tab):
            tab.message.connect(self.message)
            tab.error.connect(self.error)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.tabs, 1)
        self._on_model_chosen()

    # -- Pane --------------------------------------------------------------------------------
    def project_state(self) -> dict:
        return {"runs": self.run_paths()}

    def apply_project_state(self, state: dict) -> list[str]:
        return self.set_runs(state.get("runs", []))

    def shutdown(self) -> None:
        """Cancel every job of the pane and wait for each a bounded time (an export that
        cannot stop is abandoned safely)."""
        for tab in (self.evaluate_tab, self.predict_tab, self.export_tab, self.play_tab):
            tab.shutdown()

    # -- runs --------------------------------------------------------------------------------
    def set_runs(self, paths: list[str]) -> list[str]:
        """Show these run folders, newest first, with the newest run's best variant chosen;
        returns problems (folders that are not runs)."""
        from ...core import project

        runs, problems = [], []
        for path in paths:
            try:
                runs.append(project.read_run(path))
            except (project.ProjectError, OSError, ValueError) as e:
                problems.append(one_line(e, path))
        self.runs = newest_first(runs)
        self._show_runs(select=best_checkpoint(self.runs[0]) if self.runs else None)
        return problems

    def add_run(self, path) -> None:
        """Add (or refresh) one run folder and choose its best variant."""
        from ...core import project

        run = project.read_run(path)
        self.runs = newest_first([r for r in self.runs if r.path != run.path] + [run])
        self._show_runs(select=best_checkpoint(run))
        self.changed.emit()

    @Slot(list)
    def remove_runs(self, paths: list[str]) -> None:
        """Take these runs off the list (their folders stay on disk)."""
        chosen = set(paths)
        if any(r.path in chosen for r in self.runs):
            self.runs = [r for r in self.runs if r.path not in chosen]
            self._show_runs()
            self.changed.emit()

    def remove_selected_runs(self) -> None:
        """Take the runs selected on the Runs tab off the list."""
        self.remove_runs([path for path, _ in self.runs_tab.selected()])

    def run_paths(self) -> list[str]:
        return [r.path for r in self.runs]

    def current_run(self) -> RunRecord | None:
        checkpoint = self.checkpoint.currentData()
        return next((r for r in self.runs for info in r.variants.values()
                     if info["checkpoint"] == checkpoint), None)

    def set_device(self, device: str) -> None:
        """Run evaluations and predictions on ``device`` (as chosen on the Train step:
        "auto", "cpu", "cuda:0", "mps")."""
        self.evaluate_tab.set_device(device)
        self.predict_tab.set_device(device)
        self.play_tab.set_device(device)

    def _show_runs(self, select: str | None = None) -> None:
        """Fill the runs table and the model list; choose ``select``, else keep the current
        model when it is still listed, else the first (newest)."""
        self.runs_tab.set_runs(self.runs)
        current = self.checkpoint.currentData()
        self.checkpoint.blockSignals(True)
        self.checkpoint.clear()
        for run, variant, info in run_rows(self.runs):
            if os.path.isfile(info["checkpoint"]):
                best = info.get("best_val_acc")
                self.checkpoint.addItem(
                    f"{run.name} · {RUN_LABELS.get(variant, variant)} · {run.model}"
                    + (f" · best {best:.1%}" if best is not None else ""), info["checkpoint"])
        index = self.checkpoint.findData(select) if select else -1
        if index < 0:
            index = self.checkpoint.findData(current)
        self.checkpoint.setCurrentIndex(max(0, index))
        self.checkpoint.blockSignals(False)
        self.runs_changed.emit()  # before the choice, so that listeners know the new runs
        self._on_model_chosen()

    @Slot()
    def _on_model_chosen(self) -> None:
        checkpoint = self.checkpoint.currentData()
        run = self.current_run()
        self.evaluate_tab.set_model(checkpoint, run)
        self.predict_tab.set_model(checkpoint)
        self.export_tab.set_model(checkpoint)
        self.play_tab.set_model(checkpoint)
        if checkpoint != self._announced:
            self._announced = checkpoint
            if checkpoint:
                self.checkpoint_changed.emit(checkpoint)

    def _open_run(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "A tlgui run folder")
        if folder:
            try:
                self.add_run(folder)
            except Exception as e:  # shown to the user, not raised into Qt
                self.error.emit(one_line(e, folder), "")
                return
            run = next((r for r in self.runs if r.path == str(Path(folder))), None)
            if run is not None and run.status == "running":
                self.running_run_opened.emit(run.path)

    # -- what the tabs do, for the window and its tests --------------------------------------
    def evaluate(self) -> None:
        """Evaluate the chosen model on the images chosen on the Evaluate tab."""
        self.evaluate_tab.evaluate()

    def predict(self, paths: list[str]) -> None:
        """Classify image files and folders with the chosen model."""
        self.predict_tab.predict(paths)

    def export_to(self, path: str, fmt: str) -> None:
        """Export the chosen model to ``path`` as ``fmt`` ("torchscript" or "onnx")."""
        self.export_tab.export_to(path, fmt)

    @property
    def runs_table(self):
        """The table of runs (on the Runs tab), one row per variant."""
        return self.runs_tab.table

    @property
    def evaluation(self):
        """The evaluation shown on the Evaluate tab, or None."""
        return self.evaluate_tab.evaluation

    @property
    def predictions(self):
        """The predictions shown on the Predict tab, or None."""
        return self.predict_tab.predictions

    def busy(self) -> bool:
        """True while an evaluation, a prediction or an export runs."""
        return any(tab.worker.is_running()
                   for tab in (self.evaluate_tab, self.predict_tab, self.export_tab,
                               self.play_tab))

    def scrollable_tables(self) -> list[tuple[str, object]]:
        """The pane's image lists a user scrolls through, by name (their table views)."""
        return [("mistakes", self.evaluate_tab.mistakes.table),
                ("images of a cell", self.evaluate_tab.cell_images.table),
                ("predictions", self.predict_tab.table.table)]
