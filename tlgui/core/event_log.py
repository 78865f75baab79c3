"""A training's events as an append-only log in its run folder (``events.jsonl``: one JSON
object a line, flushed as it goes), so that a window elsewhere — on a laptop with the run
folder on a mounted share, say — can follow a training it did not start: the same events
the trainer reports to the window that started it and to the command line.

Reading is incremental (from where the last read stopped) and tolerant: a last line still
being written waits for the next read, and a line that is not an event (a damaged or crafted
file) is counted and skipped. Only the event types listed here are made, each from plain
numbers and texts; nothing read is ever executed.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from . import events as ev

#: The log's name in a run folder.
LOG_NAME = "events.jsonl"
#: Progress events (batches, preparation stages) are written at most this often; the last
#: of an epoch or a stage always is. Epochs, starts, ends and messages are always written.
PROGRESS_INTERVAL = 1.0
#: A log of a training still running that has not grown for this long is taken as
#: interrupted (a killed trainer writes no last line). Long quiet phases (validation at
#: 100,000 images) stay well below it: progress lines come every second while work is done.
QUIET_SECONDS = 600
#: A line longer than this is not an event (a summary of thousands of classes stays far below).
MAX_LINE_BYTES = 8 * 2**20


@dataclass(frozen=True)
class TrainingFailed:
    """The training ended with an error (written to the log only: the trainer raises)."""

    message: str


#: What the log may hold, by the name written in each line's "event" field.
EVENT_TYPES = {cls.__name__: cls for cls in (
    ev.LogMessage, ev.TrainingStarted, ev.StageProgress, ev.BatchFinished, ev.EpochFinished,
    ev.TrainingFinished, TrainingFailed)}


def to_line(event) -> str:
    """One event as a line of JSON (without the newline)."""
    record = {"event": type(event).__name__, "time": time.time()}
    for f in dataclasses.fields(event):
        value = getattr(event, f.name)
        record[f.name] = list(value) if isinstance(value, tuple) else value
    return json.dumps(record, allow_nan=True, separators=(",", ":"))


def _plain(value) -> bool:
    """JSON data only: numbers, texts, booleans, None, and lists and objects of them."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return True
    if isinstance(value, list):
        return all(_plain(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _plain(v) for k, v in value.items())
    return False


def _field_ok(value, annotation: str) -> bool:
    """Does a value read from the log fit the field's declared type?"""
    kind = annotation.split("|")[0].strip()
    if value is None:
        return "None" in annotation
    if kind == "str":
        return isinstance(value, str)
    if kind == "bool":
        return isinstance(value, bool)
    if kind == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "float":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind == "dict":
        return isinstance(value, dict) and _plain(value)
    if kind.startswith("tuple[") and kind.endswith(", ...]"):  # tuple[str, ...] and the like
        element = kind[len("tuple["):-len(", ...]")]
        return isinstance(value, list) and all(_field_ok(v, element) for v in value)
    return False


def from_line(line: str | bytes):
    """The event a line holds; ValueError when it holds none (names what is wrong)."""
    try:
        record = json.loads(line)
    except (ValueError, UnicodeDecodeError) as e:
        raise ValueError(f"not JSON ({e})") from None
    if not isinstance(record, dict):
        raise ValueError("not a JSON object")
    cls = EVENT_TYPES.get(record.get("event"))
    if cls is None:
        raise ValueError(f"unknown event {str(record.get('event'))[:40]!r}")
    values = {}
    for f in dataclasses.fields(cls):
        if f.name not in record:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise ValueError(f"{cls.__name__}: {f.name} missing")
            continue
        value = record[f.name]
        if not _field_ok(value, str(f.type)):
            raise ValueError(f"{cls.__name__}: {f.name}: {repr(value)[:40]} is not "
                             f"{f.type}")
        values[f.name] = tuple(value) if str(f.type).startswith("tuple") else value
    return cls(**values)


class EventLogWriter:
    """Appends a training's events to ``folder/events.jsonl``, a line each, flushed at once
    (progress events thinned to one every :data:`PROGRESS_INTERVAL` seconds). A log that
    cannot be written (a full disk) is given up with the reason kept, never the training."""

    def __init__(self, folder: str | os.PathLike):
        self.path = Path(folder) / LOG_NAME
        self._file = None
        self._last_progress = -math.inf
        self.error: str | None = None

    def write(self, event) -> None:
        if self.error is not None:
            return
        if isinstance(event, (ev.BatchFinished, ev.StageProgress)):
            last = (event.batch == event.batches if isinstance(event, ev.BatchFinished)
                    else event.done >= event.total)
            now = time.monotonic()
            if not last and now - self._last_progress < PROGRESS_INTERVAL:
                return
            self._last_progress = now
        try:
            if self._file is None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._file = open(self.path, "a", encoding="utf-8")
            self._file.write(to_line(event) + "\n")
            self._file.flush()
        except (OSError, TypeError, ValueError) as e:
            self.error = f"{self.path}: {e}"
            self.close()

    def close(self) -> None:
        if self._file is not None:
            try:
                self._file.close()
            except OSError:
                pass
            self._file = None


@dataclass
class RunLog:
    """What a run's log says so far."""

    events: list = field(default_factory=list)
    skipped: int = 0  #: lines that held no event
    first_problem: str = ""  #: why the first of them was skipped (with its line number)

    @property
    def state(self) -> str:
        """``running``, ``finished``, ``stopped``, ``failed`` or ``not started``: the last
        start, and what ended it, if anything did."""
        state = "not started"
        for event in self.events:
            if isinstance(event, ev.TrainingStarted):
                state = "running"
            elif isinstance(event, ev.TrainingFinished):
                state = event.status if event.status in ("finished", "stopped") else "finished"
            elif isinstance(event, TrainingFailed):
                state = "failed"
        return state


class EventLogReader:
    """Reads a growing log: each :meth:`read` returns the events appended since the last."""

    def __init__(self, path: str | os.PathLike):
        path = Path(path)
        self.path = path / LOG_NAME if path.is_dir() else path
        self.offset = 0
        self.lines = 0
        self.log = RunLog()
        self.behind = False  #: the last read left complete lines for the next

    def read(self, max_bytes: int | None = None) -> list:
        """The new complete lines' events (a last line without its newline waits); with
        ``max_bytes``, those of about that much of the file at most (at least one line):
        :attr:`behind` then says whether more is waiting."""
        self.behind = False
        try:
            with open(self.path, "rb") as f:
                size = os.fstat(f.fileno()).st_size
                if size < self.offset:  # written anew: start over
                    self.offset, self.lines, self.log = 0, 0, RunLog()
                f.seek(self.offset)
                data = f.read(-1 if max_bytes is None else max_bytes)
                if b"\n" not in data and self.offset + len(data) < size:
                    # a line longer than the slice: that line, whole
                    data += f.read(MAX_LINE_BYTES + 1 - len(data))
                    cut = data.find(b"\n")
                    data = data[:cut + 1] if cut >= 0 else data
                self.behind = self.offset + len(data) < size
        except FileNotFoundError:
            return []
        end = data.rfind(b"\n")
        if end < 0:
            if len(data) > MAX_LINE_BYTES:  # no newline in sight: not a log being written
                self.offset += len(data)
                self._skip("a line longer than any event")
            return []
        self.offset += end + 1
        found = []
        for line in data[:end].split(b"\n"):
            self.lines += 1
            if not line.strip():
                continue
            try:
                found.append(from_line(line))
            except ValueError as e:
                self._skip(str(e))
        self.log.events.extend(found)
        return found

    def _skip(self, why: str) -> None:
        self.log.skipped += 1
        if not self.log.first_problem:
            self.log.first_problem = f"{self.path}, line {self.lines}: {why}"

    def modified_seconds_ago(self) -> float | None:
        try:
            return max(0.0, time.time() - self.path.stat().st_mtime)
        except OSError:
            return None


def run_status(folder: str | os.PathLike, summary_status: str | None) -> str:
    """A run folder's status from its log and its summary's status (None without one):
    ``running`` while the log grows, ``failed`` when it ended with an error, else the
    summary's (``finished``, ``stopped``), or ``interrupted`` (killed, or a log gone quiet)."""
    reader = EventLogReader(Path(folder) / LOG_NAME)
    reader.read()
    state = reader.log.state
    if state == "running":
        quiet = reader.modified_seconds_ago()
        if quiet is not None and quiet < QUIET_SECONDS:
            return "running"
        return "interrupted"
    if state == "failed":
        return "failed"
    return summary_status or "interrupted"


def read_log(folder: str | os.PathLike) -> RunLog:
    """Everything a run folder's log says (an empty :class:`RunLog` without one)."""
    reader = EventLogReader(Path(folder) / LOG_NAME)
    reader.read()
    return reader.log
