"""The run folder's event log: every event written as a line and read back the same; a last
line still being written waits; a crafted line is skipped, never trusted; progress thinned;
a run's status from its log (running, failed, interrupted when it went quiet)."""

import json
import math
import os
import time

import pytest

from tlgui.core import event_log as log
from tlgui.core import events as ev
from tlgui.core.data import scan
from tlgui.core.event_log import EventLogReader, EventLogWriter, TrainingFailed
from tlgui.core.sample import ensure_sample_data
from tlgui.core.training import TrainConfig, Trainer

EVENTS = [
    ev.TrainingStarted(runs=("with_dropout", "without_dropout"), dropouts=(0.5, 0.0),
                       epochs=3, start_epoch=0, train_size=40, val_size=10, device="CPU",
                       trainable_params=1234, frozen_params=11_000_000, feature_cache=True,
                       train_eval_size=40),
    ev.StageProgress("features", 10, 50, "computing backbone features", eta_seconds=None),
    ev.BatchFinished(epoch=1, epochs=3, batch=5, batches=5, losses={"with_dropout": 0.7},
                     eta_seconds=12.5),
    ev.EpochFinished(run="with_dropout", epoch=1, epochs=3, train_loss=0.7, train_acc=0.5,
                     val_loss=0.6, val_acc=0.75, lr=0.001, seconds=2.0, eta_seconds=4.0,
                     improved=True, train_loss_eval=0.65, train_acc_eval=0.55),
    ev.LogMessage("device: CPU"),
    ev.TrainingFinished(status="stopped", summary={"status": "stopped", "runs": {}}),
    TrainingFailed("out of memory"),
]


@pytest.mark.parametrize("event", EVENTS, ids=lambda e: type(e).__name__)
def test_every_event_reads_back_the_same(event):
    line = log.to_line(event)
    assert "\n" not in line
    assert log.from_line(line) == event


def test_a_nan_figure_survives():
    event = ev.EpochFinished(run="model", epoch=1, epochs=1, train_loss=0.5, train_acc=1.0,
                             val_loss=math.nan, val_acc=math.nan, lr=0.1, seconds=1.0,
                             eta_seconds=0.0, improved=False)
    back = log.from_line(log.to_line(event))
    assert math.isnan(back.val_acc) and back.train_acc == 1.0


@pytest.mark.parametrize("line, why", [
    ("not json", "not JSON"),
    ("[1, 2]", "not a JSON object"),
    ('{"event": "os.system", "command": "rm -rf /"}', "unknown event"),
    ('{"event": "LogMessage"}', "text missing"),
    ('{"event": "LogMessage", "text": 5}', "text: 5 is not str"),
    ('{"event": "BatchFinished", "epoch": "1", "epochs": 3, "batch": 1, "batches": 2}',
     "epoch"),
    ('{"event": "BatchFinished", "epoch": true, "epochs": 3, "batch": 1, "batches": 2}',
     "epoch"),
    ('{"event": "TrainingFinished", "status": "finished", "summary": [1]}', "summary"),
    ('{"event": "TrainingStarted", "runs": [1], "dropouts": [0.5], "epochs": 1, '
     '"start_epoch": 0, "train_size": 2, "val_size": 1, "device": "CPU", '
     '"trainable_params": 1, "frozen_params": 1, "feature_cache": false}', "runs"),
])
def test_a_line_that_is_no_event_is_refused(line, why):
    with pytest.raises(ValueError, match=why):
        log.from_line(line)


def test_the_reader_waits_for_a_whole_line_and_skips_what_is_no_event(tmp_path):
    path = tmp_path / log.LOG_NAME
    first, second = (log.to_line(e) for e in EVENTS[:2])
    path.write_text(first + "\n" + '{"event": "Nope"}\n' + second[:20])
    reader = EventLogReader(tmp_path)  # a folder: its events.jsonl
    assert reader.read() == [EVENTS[0]]
    assert reader.log.skipped == 1
    assert reader.log.first_problem == f"{path}, line 2: unknown event 'Nope'"
    assert reader.read() == []  # the half line waits
    with open(path, "a") as f:
        f.write(second[20:] + "\n")
    assert reader.read() == [EVENTS[1]]
    assert reader.log.events == EVENTS[:2] and reader.log.state == "running"
    path.write_text(log.to_line(EVENTS[4]) + "\n")  # written anew, shorter: read from the top
    assert reader.read() == [EVENTS[4]] and reader.log.state == "not started"
    assert EventLogReader(tmp_path / "nothing").read() == []


def test_a_long_log_is_read_a_slice_at_a_time(tmp_path):
    """A window catching up with hours of a run reads it in slices; a line longer than a
    slice still comes whole, and nothing is read twice or left out."""
    lines = [log.to_line(e) for e in EVENTS]
    (tmp_path / log.LOG_NAME).write_text("".join(line + "\n" for line in lines))
    reader = EventLogReader(tmp_path)
    first = reader.read(max_bytes=len(lines[0]) + len(lines[1]) + 3)
    assert first == EVENTS[:2] and reader.behind
    one = reader.read(max_bytes=5)  # shorter than any line: one whole line
    assert one == EVENTS[2:3] and reader.behind == (len(EVENTS) > 3)
    rest = reader.read(max_bytes=10**6)
    assert first + one + rest == EVENTS and not reader.behind
    assert reader.read(max_bytes=10) == [] and not reader.behind


def test_a_line_without_an_end_is_given_up(tmp_path, monkeypatch):
    monkeypatch.setattr(log, "MAX_LINE_BYTES", 100)
    (tmp_path / log.LOG_NAME).write_text("x" * 500)
    reader = EventLogReader(tmp_path)
    assert reader.read() == [] and reader.log.skipped == 1 and reader.offset == 500


def test_progress_is_thinned_but_the_last_batch_is_written(tmp_path):
    writer = EventLogWriter(tmp_path)
    for b in range(1, 11):
        writer.write(ev.BatchFinished(epoch=1, epochs=1, batch=b, batches=10))
    writer.write(ev.LogMessage("always"))
    writer.close()
    written = log.read_log(tmp_path).events
    assert [getattr(e, "batch", None) for e in written] == [1, 10, None]


def test_a_log_that_cannot_be_written_is_given_up_quietly(tmp_path):
    (tmp_path / log.LOG_NAME).mkdir()  # something in its way
    writer = EventLogWriter(tmp_path)
    writer.write(EVENTS[4])
    writer.write(EVENTS[4])
    assert writer.error and str(tmp_path / log.LOG_NAME) in writer.error


def test_status_from_the_log(tmp_path):
    started = log.to_line(EVENTS[0]) + "\n"
    path = tmp_path / log.LOG_NAME
    assert log.run_status(tmp_path, None) == "interrupted"  # no log, no summary
    assert log.run_status(tmp_path, "finished") == "finished"
    path.write_text(started)
    assert log.run_status(tmp_path, None) == "running"
    assert log.run_status(tmp_path, "stopped") == "running"  # a resumed run
    quiet = time.time() - log.QUIET_SECONDS - 5
    os.utime(path, (quiet, quiet))
    assert log.run_status(tmp_path, None) == "interrupted"  # killed: no last line
    path.write_text(started + log.to_line(TrainingFailed("disk full")) + "\n")
    assert log.run_status(tmp_path, None) == "failed"
    path.write_text(started + log.to_line(EVENTS[5]) + "\n")
    assert log.run_status(tmp_path, "stopped") == "stopped"


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = ensure_sample_data(tmp_path_factory.mktemp("tiny") / "shapes", images_per_class=8)
    return scan([str(root)])


def config(**kw):
    return TrainConfig(**{**dict(model="resnet18", weights="none", image_size=32, epochs=2,
                                 batch_size=8, hidden=16, workers=0), **kw})


def test_the_trainer_writes_what_it_reports(tiny, tmp_path):
    heard = []
    Trainer(config(compare_dropout=True), tiny, tmp_path / "run", on_event=heard.append).run()
    written = log.read_log(tmp_path / "run")
    assert written.skipped == 0
    # Every event but the thinned progress ones, in the same order.
    kept = [e for e in heard if not isinstance(e, (ev.BatchFinished, ev.StageProgress))]
    assert [e for e in written.events
            if not isinstance(e, (ev.BatchFinished, ev.StageProgress))] == kept
    assert isinstance(written.events[-1], ev.TrainingFinished)
    assert sum(isinstance(e, ev.EpochFinished) for e in written.events) == 4  # 2 runs × 2
    assert written.state == "finished"
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert written.events[-1].summary == summary


def test_follow_prints_a_run_from_its_log(tiny, tmp_path, capsys):
    from tlgui.cli import main

    run = tmp_path / "run"
    Trainer(config(), tiny, run).run()
    capsys.readouterr()
    assert main(["follow", str(run)]) == 0
    out = capsys.readouterr().out
    assert "epoch   1/2" in out and "epoch   2/2" in out
    assert "finished: resnet18 on 4 classes" in out and out.endswith(f"run folder: {run}\n")

    lines = (run / log.LOG_NAME).read_text().splitlines(keepends=True)
    (run / log.LOG_NAME).write_text(lines[0] + "{broken\n")  # started, then nothing sensible
    assert main(["follow", str(run), "--quiet-minutes", "0"]) == 1
    err = capsys.readouterr().err
    assert "skipped what is not an event" in err and "line 2: not JSON" in err
    assert "probably killed" in err and f"--out {run} --resume" in err

    with open(run / log.LOG_NAME, "a") as f:
        f.write(log.to_line(TrainingFailed("no space left on device")) + "\n")
    assert main(["follow", str(run)]) == 1
    assert "the training failed: no space left on device" in capsys.readouterr().err
    assert main(["follow", str(tmp_path), "--quiet-minutes", "0"]) == 1
    err = capsys.readouterr().err
    assert "waiting for" in err and "not a tlgui run folder" in err


def test_a_failed_training_says_so_in_its_log(tiny, tmp_path, monkeypatch):
    def broken(self, *args):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Trainer, "_train", broken)
    with pytest.raises(OSError):
        Trainer(config(), tiny, tmp_path / "run").run()
    written = log.read_log(tmp_path / "run")
    assert isinstance(written.events[-1], TrainingFailed) and written.state == "failed"
    assert "no space left on device" in written.events[-1].message.lower()
    assert log.run_status(tmp_path / "run", None) == "failed"
