"""Projects and runs: what a person saves to continue tomorrow.

A project file is JSON a person can read: the data folders and split, the model and training
settings, and the run folders trained so far. Each run folder keeps its own settings,
per-epoch metrics, summary and checkpoints, so the project only points at it.
"""

from __future__ import annotations

import csv
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from .paths import atomic_write_json

PROJECT_FORMAT = "tlgui-project"
PROJECT_VERSION = 1
PROJECT_SUFFIX = ".tlgui.json"


class ProjectError(ValueError):
    """A project file that cannot be read; the message names it and says why."""


@dataclass
class RunRecord:
    """One training (one run folder): its settings and, per variant, its results."""

    path: str
    model: str
    strategy: str
    weights: str
    epochs: int
    status: str
    variants: dict[str, dict] = field(default_factory=dict)  #: name -> summary + history
    test_folder: str | None = None

    @property
    def name(self) -> str:
        return os.path.basename(self.path.rstrip(os.sep))

    def best(self) -> float | None:
        values = [v.get("best_val_acc") for v in self.variants.values()]
        values = [v for v in values if v is not None]
        return max(values) if values else None


def read_history(path) -> list[dict]:
    """Per-epoch metrics from a run's metrics.csv (numbers as floats, epoch as int)."""
    with open(path, newline="", encoding="utf-8") as f:
        return [{k: (int(v) if k == "epoch" else float(v)) for k, v in row.items()}
                for row in csv.DictReader(f)]


def read_run(path) -> RunRecord:
    """A run folder's settings, summary and curves. Raises ProjectError when it is not one."""
    path = Path(path)
    config_file = path / "config.json"
    if not config_file.is_file():
        raise ProjectError(f"{path}: not a tlgui run folder (no config.json)")
    config = json.loads(config_file.read_text(encoding="utf-8"))
    summary = {}
    if (path / "summary.json").is_file():
        summary = json.loads((path / "summary.json").read_text(encoding="utf-8"))
    variants = {}
    for metrics in sorted(path.glob("*/metrics.csv")):
        name = metrics.parent.name
        variants[name] = {
            **summary.get("runs", {}).get(name, {}),
            "history": read_history(metrics),
            "checkpoint": str(metrics.parent / "best.pt"),
        }
        if "best_val_acc" not in variants[name]:  # an interrupted run: from its curve
            accs = [r["val_acc"] for r in variants[name]["history"]]
            variants[name]["best_val_acc"] = max(accs) if accs else None
    return RunRecord(str(path), config.get("model", "?"), config.get("strategy", "?"),
                     config.get("weights", "?"), int(config.get("epochs", 0)),
                     summary.get("status", "interrupted"), variants,
                     config.get("test_folder") or None)


def list_runs(folder, newest: int = 30) -> list[str]:
    """The ``newest`` run folders under ``folder``, oldest first (by name: a date and time)."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    runs = sorted(str(p.parent) for p in folder.glob("*/config.json"))
    return runs[-newest:] if newest else runs


def save_project(path, state: dict) -> Path:
    """Write ``state`` (data, model, training, runs) as a project file, atomically."""
    path = Path(path)
    if not path.name.endswith(PROJECT_SUFFIX):
        path = path.with_name(path.name.removesuffix(".json") + PROJECT_SUFFIX)
    atomic_write_json(path, {"format": PROJECT_FORMAT, "version": PROJECT_VERSION, **state})
    return path


def load_project(path) -> tuple[dict, list[str]]:
    """The project's state and a list of problems (missing folders or runs), in words.

    Missing things are reported, not fatal: the project opens with what is there.
    """
    path = Path(path)
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise ProjectError(f"{path}: cannot read the project ({e.strerror or e})") from e
    except ValueError as e:
        raise ProjectError(f"{path}: not a tlgui project (not JSON: {e})") from e
    if not isinstance(state, dict) or state.get("format") != PROJECT_FORMAT:
        raise ProjectError(f"{path}: not a tlgui project")
    if state.get("version", 0) > PROJECT_VERSION:
        raise ProjectError(f"{path}: made by a newer tlgui (project version "
                           f"{state['version']}); update tlgui to open it")
    problems = []
    data = state.get("data", {})
    for folder in data.get("folders", []):
        if not os.path.isdir(folder):
            problems.append(f"the image folder {folder} is gone (moved or deleted?)")
    if data.get("test_folder") and not os.path.isdir(data["test_folder"]):
        problems.append(f"the test folder {data['test_folder']} is gone")
    runs = []
    for run in state.get("runs", []):
        if os.path.isfile(os.path.join(run, "config.json")):
            runs.append(run)
        else:
            problems.append(f"the run folder {run} is gone")
    state["runs"] = runs
    return state, problems
