"""Projects and runs: what a person saves to continue tomorrow.

A project file is JSON a person can read: the data folders and split, the model and training
settings, and the run folders trained so far. Each run folder keeps its own settings,
per-epoch metrics, summary and checkpoints, so the project only points at it.
"""

from __future__ import annotations

import csv
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

from .event_log import run_status
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
    data: list[str] = field(default_factory=list)  #: the class folders it trained on
    created: float = 0.0  #: when its settings were written (seconds since the epoch)

    @property
    def name(self) -> str:
        return os.path.basename(self.path.rstrip(os.sep))

    @property
    def data_set(self) -> str:
        """The data set it trained on in a word or two: the folder holding its class folders
        (``shapes`` for ``…/shapes/circle``, ``…/shapes/star``), or the names of the folders
        holding them when they came from several; "–" when the run names none."""
        parents = []
        for folder in self.data:
            parent = os.path.dirname(os.path.normpath(folder))
            name = os.path.basename(parent) or parent
            if name not in parents:
                parents.append(name)
        return ", ".join(parents) if parents else "–"

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
    """A run folder's settings, summary and curves. Raises ProjectError (one line naming the
    file) when it is not one or one of its files is damaged."""
    path = Path(path)
    config_file = path / "config.json"
    if not config_file.is_file():
        raise ProjectError(f"{path}: not a tlgui run folder (no config.json)")
    config = _read_json_object(config_file)
    summary = {}
    if (path / "summary.json").is_file():
        summary = _read_json_object(path / "summary.json")
    runs = summary.get("runs", {})
    if not isinstance(runs, dict) or not all(isinstance(v, dict) for v in runs.values()):
        raise ProjectError(f"{path / 'summary.json'}: runs: not a set of named results")
    variants = {}
    for metrics in sorted(path.glob("*/metrics.csv")):
        name = metrics.parent.name
        try:
            history = read_history(metrics)
        except (OSError, ValueError, TypeError) as e:
            raise ProjectError(f"{metrics}: not a metrics table ({_reason(e)})") from e
        variants[name] = {
            **runs.get(name, {}),
            "history": history,
            "checkpoint": str(metrics.parent / "best.pt"),
        }
        if "best_val_acc" not in variants[name]:  # an interrupted run: from its curve
            accs = [r["val_acc"] for r in history if "val_acc" in r]
            variants[name]["best_val_acc"] = max(accs) if accs else None
    epochs = config.get("epochs", 0)
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 0:
        raise ProjectError(f"{config_file}: epochs: {epochs!r} is not a number of epochs")
    texts = {key: config.get(key, "?") for key in ("model", "strategy", "weights")}
    test_folder = config.get("test_folder") or None
    written = summary.get("status", "")  # the summary's word, checked below
    status = run_status(path, written if isinstance(written, str) and written else None)
    if not all(isinstance(v, str) for v in (*texts.values(), written)) or not (
            test_folder is None or isinstance(test_folder, str)):
        raise ProjectError(f"{config_file}: model, strategy, weights and test folder must be "
                           f"texts")
    data = config.get("data", [])
    if not isinstance(data, list) or not all(isinstance(f, str) for f in data):
        raise ProjectError(f"{config_file}: data: not a list of folders")
    return RunRecord(str(path), texts["model"], texts["strategy"], texts["weights"], epochs,
                     status, variants, test_folder, data, config_file.stat().st_mtime)


def _read_json_object(path: Path) -> dict:
    """A JSON file that must hold an object; ProjectError naming it otherwise."""
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise ProjectError(f"{path}: cannot be read ({_reason(e)})") from e
    if not isinstance(value, dict):
        raise ProjectError(f"{path}: not a set of named values")
    return value


def _reason(e: BaseException) -> str:
    if isinstance(e, OSError):
        return e.strerror or str(e)
    return str(e).splitlines()[0] if str(e) else type(e).__name__


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

    Missing things are reported, not fatal: the project opens with what is there. A file with
    a value of the wrong type or out of range is refused as a whole (:class:`ProjectError`
    naming the file and the first such value), before any of it is used.
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
    version = state.get("version", 0)
    if isinstance(version, int) and not isinstance(version, bool) and version > PROJECT_VERSION:
        raise ProjectError(f"{path}: made by a newer tlgui (project version "
                           f"{state['version']}); update tlgui to open it")
    problem = project_problem(state)
    if problem:
        raise ProjectError(f"{path}: {problem}")
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


# What a project file may hold: for each section, each known entry's check. Entries not listed
# here are ignored (a newer tlgui may add some); the ranges are those the window offers.
def _text(v) -> bool:
    return isinstance(v, str)


def _texts(v) -> bool:
    return isinstance(v, list) and all(isinstance(x, str) for x in v)


def _whole(low: int, high: int):
    def check(v) -> bool:
        return isinstance(v, int) and not isinstance(v, bool) and low <= v <= high
    check.what = f"a whole number from {low} to {high}"
    return check


def _number(low: float, high: float):
    def check(v) -> bool:
        return (isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
                and low <= v <= high)
    check.what = f"a number from {low:g} to {high:g}"
    return check


def _one_of(*choices: str):
    def check(v) -> bool:
        return isinstance(v, str) and v in choices
    check.what = f"one of {', '.join(choices)}"
    return check


def _optional(inner):
    def check(v) -> bool:
        return v is None or inner(v)
    check.what = f"{getattr(inner, 'what', 'a text')} or null"
    return check


def _boolean(v) -> bool:
    return isinstance(v, bool)


_text.what, _texts.what, _boolean.what = "a text", "a list of texts", "true or false"

_SCHEMA = {
    "data": {
        "folders": _texts,
        "test_folder": _optional(_text),
        "class_names": _texts,
        "removed": _texts,
        "val_fraction": _number(0.05, 0.5),
        "seed": _whole(0, 999_999),
    },
    "model": {
        "model": _text,
        "weights": _text,
        "strategy": _one_of("frozen", "partial", "full"),
        "trainable_blocks": _whole(1, 20),
        "dropout": _number(0.0, 0.9),
        "hidden": _whole(0, 4096),
    },
    "training": {
        "device": _text,
        "epochs": _whole(1, 1000),
        "batch_size": _whole(1, 1024),
        "lr": _number(1e-5, 1.0),
        "backbone_lr_factor": _number(0.001, 1.0),
        "schedule": _one_of("cosine", "step", "none"),
        "augment": _boolean,
        "early_stopping": _whole(0, 100),
        "image_size": _optional(_whole(0, 512)),
        "compare_dropout": _boolean,
    },
}


def project_problem(state: dict) -> str:
    """The first value in a project's ``state`` of the wrong type or out of range, in words
    ('' when there is none)."""
    version = state.get("version", 0)
    if not _whole(0, PROJECT_VERSION)(version):
        return f"version: {_shown(version)} is not a project version"
    for section, checks in _SCHEMA.items():
        values = state.get(section, {})
        if not isinstance(values, dict):
            return f"{section}: {_shown(values)} is not a set of named values"
        for key, check in checks.items():
            if key in values and not check(values[key]):
                return f"{section}.{key}: {_shown(values[key])} is not {check.what}"
    if not _texts(state.get("runs", [])):
        return f"runs: {_shown(state.get('runs'))} is not a list of folders"
    return ""


def _shown(value, limit: int = 40) -> str:
    text = json.dumps(value, ensure_ascii=False) if _jsonable(value) else repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _jsonable(value) -> bool:
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return False
    return True
