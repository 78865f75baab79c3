"""Distributed training as torchrun starts it: two CPU processes talking through gloo train
as one process does, rank 0 alone writes, a stopped training resumes on two processes, and a
fault on one process ends both with one line that names it."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tlgui.core.control import RunControl
from tlgui.core.data import scan
from tlgui.core.distributed import SINGLE, Processes
from tlgui.core.events import EpochFinished
from tlgui.core.sample import ensure_sample_data
from tlgui.core.training import TrainConfig, Trainer, _check_batch_split

pytestmark = pytest.mark.slow

#: Frozen features and no dropout: what the ranks compute is then the single process's step,
#: up to the order of float additions (dropout masks differ between processes).
SETTINGS = dict(model="resnet18", weights="none", strategy="frozen", epochs=3, batch_size=16,
                dropout=0.0, hidden=32, image_size=32, val_fraction=0.25, seed=3,
                device="cpu", workers=0)
FAULT_SCRIPT = Path(__file__).with_name("ddp_fault.py")


def cli_arguments(data, out, **changes) -> list[str]:
    s = {**SETTINGS, **changes}
    return ["train", str(data), "--out", str(out), "--model", s["model"], "--weights",
            s["weights"], "--strategy", s["strategy"], "--epochs", str(s["epochs"]),
            "--batch-size", str(s["batch_size"]), "--dropout", str(s["dropout"]),
            "--hidden", str(s["hidden"]), "--image-size", str(s["image_size"]),
            "--val-fraction", str(s["val_fraction"]), "--seed", str(s["seed"]),
            "--device", s["device"], "--workers", str(s["workers"])]


@pytest.fixture(scope="module")
def place(tmp_path_factory):
    """The data, and an environment whose caches and temporary files are the test's."""
    root = tmp_path_factory.mktemp("ddp")
    data = ensure_sample_data(root / "shapes", images_per_class=12)
    env = {**os.environ, "TORCH_HOME": str(root / "torch"), "OMP_NUM_THREADS": "1",
           "TLGUI_FEATURE_STORE_DIR": str(root / "store"), "TMPDIR": str(root / "tmp"),
           "PYTHONUNBUFFERED": "1"}
    (root / "tmp").mkdir()
    return root, data, env


def torchrun(place, arguments: list[str], script=None, extra_env=None, timeout=240):
    """``tlgui`` (or ``script``) on two processes; the finished process."""
    _, _, env = place
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone",
               "--nproc_per_node", "2"]
    command += [str(script)] if script else ["-m", "tlgui"]
    started = time.monotonic()
    done = subprocess.run(command + arguments, env={**env, **(extra_env or {})},
                          capture_output=True, text=True, timeout=timeout)
    done.seconds = time.monotonic() - started
    return done


def single_process_run(place, out, control=None, on_event=None):
    root, data, env = place
    os.environ["TLGUI_FEATURE_STORE_DIR"] = env["TLGUI_FEATURE_STORE_DIR"]
    report = scan([str(data)])
    return Trainer(TrainConfig(**SETTINGS), report, out, on_event=on_event,
                   control=control).run()


@pytest.fixture(scope="module")
def reference(place, tmp_path_factory):
    """The same training on one process."""
    out = tmp_path_factory.mktemp("single") / "run"
    return single_process_run(place, out)


def events(run_dir) -> list[dict]:
    return [json.loads(line) for line in (Path(run_dir) / "events.jsonl").open()]


def test_two_processes_train_as_one_and_only_the_first_writes(place, reference):
    root, data, _ = place
    out = root / "ddp"
    store_before = sorted((root / "store").rglob("*"))
    done = torchrun(place, cli_arguments(data, out))
    assert done.returncode == 0, done.stderr[-2000:]
    tlgui_lines = [line for line in done.stderr.splitlines() if not line.startswith(("W", "I"))]
    assert tlgui_lines[0] == "training distributed on 2 processes (gloo, one CPU each)"
    assert done.stdout.count("finished: resnet18") == 1  # rank 0 alone prints
    summary = json.loads((out / "summary.json").read_text())
    ours, theirs = summary["runs"]["model"], reference["runs"]["model"]
    assert summary["train_size"] == reference["train_size"]
    val_size = summary["val_size"]
    assert abs(ours["last_val_acc"] - theirs["last_val_acc"]) <= 1 / val_size + 1e-9
    assert abs(ours["last_train_acc"] - theirs["last_train_acc"]) <= 1 / summary["train_size"]
    ddp_losses = [float(row.split(",")[1]) for row in
                  (out / "model" / "metrics.csv").read_text().splitlines()[1:]]
    single_losses = [float(row.split(",")[1]) for row in
                     (Path(reference["runs"]["model"]["checkpoint"]).parent /
                      "metrics.csv").read_text().splitlines()[1:]]
    assert ddp_losses == pytest.approx(single_losses, rel=1e-3)
    # one writer: each event once, and no feature store left (the ranks' own are removed;
    # the user's is not written by a distributed training)
    log = events(out)
    assert [e["event"] for e in log].count("TrainingStarted") == 1
    assert len([e for e in log if e["event"] == "EpochFinished"]) == 3
    assert not list((root / "tmp").glob("tlgui-*"))
    assert sorted((root / "store").rglob("*")) == store_before


def test_a_stopped_training_resumes_on_two_processes(place, reference):
    root, data, _ = place
    out = root / "resumed"
    control = RunControl()

    def stop_after_the_first_epoch(event):
        if isinstance(event, EpochFinished):
            control.stop()

    stopped = single_process_run(place, out, control, stop_after_the_first_epoch)
    assert stopped["status"] == "stopped" and stopped["runs"]["model"]["epochs_completed"] == 1
    done = torchrun(place, cli_arguments(data, out) + ["--resume"])
    assert done.returncode == 0, done.stderr[-2000:]
    assert "resuming at epoch 2" in done.stdout
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "finished"
    assert summary["runs"]["model"]["epochs_completed"] == 3
    assert abs(summary["runs"]["model"]["last_val_acc"]
               - reference["runs"]["model"]["last_val_acc"]) <= 1 / summary["val_size"] + 1e-9


def test_a_fault_on_one_process_ends_both_with_one_line(place):
    root, data, _ = place
    out = root / "fault"
    done = torchrun(place, cli_arguments(data, out, strategy="partial"), FAULT_SCRIPT,
                    {"TLGUI_TEST_FAULT": "step"}, timeout=180)
    assert done.returncode != 0
    errors = [line for line in done.stderr.splitlines() if line.startswith("tlgui: error")]
    assert errors == ["tlgui: error (process 2 of 2): RuntimeError: CUDA out of memory "
                      "(a fault made on process 2)"]
    failed = events(out)[-1]
    assert failed["event"] == "TrainingFailed"
    assert failed["message"] == ("process 2 of 2 failed: RuntimeError: CUDA out of memory "
                                 "(a fault made on process 2)")
    assert not list((root / "tmp").glob("tlgui-*"))


def test_processes_that_see_other_images_are_refused(place, tmp_path):
    root, data, _ = place
    other = ensure_sample_data(tmp_path / "other", images_per_class=13)
    done = torchrun(place, cli_arguments(data, root / "mismatch"), FAULT_SCRIPT,
                    {"TLGUI_TEST_FAULT": "data", "TLGUI_TEST_DATA": str(data),
                     "TLGUI_TEST_OTHER_DATA": str(other)}, timeout=180)
    assert done.returncode != 0
    assert "sees other images than process 1" in done.stderr
    assert "every process must read the same folders" in done.stderr


def test_a_batch_is_dealt_out_in_equal_shares():
    _check_batch_split(16, 2)
    _check_batch_split(4, 2)
    with pytest.raises(ValueError, match="batch size 30 does not split into 4 equal shares "
                                         ".one for each process."):
        _check_batch_split(30, 4)
    with pytest.raises(ValueError, match="choose a multiple of 4, 8 or more"):
        _check_batch_split(4, 4)
    second = Processes(rank=1, world_size=3)
    assert second.share(list(range(8))) == [1, 4, 7] and second.local_batch_size(12) == 4
    assert not second.is_main and second.describe() == "process 2 of 3"
    assert SINGLE.share([1, 2]) == [1, 2] and SINGLE.gather("x") == ["x"]
    assert SINGLE.broadcast(5) == 5 and SINGLE.explain_failure(ValueError()).__class__ is \
        ValueError


def test_ctrl_c_stops_every_process_and_the_run_says_so(place):
    """Ctrl+C reaches torchrun and every process at once: the run folder records a stop (its
    summary, the event log's last event), one line says so, and --resume can continue."""
    import signal

    root, data, env = place
    out = root / "interrupted"
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone",
               "--nproc_per_node", "2", "-m", "tlgui"] + cli_arguments(data, out, epochs=500)
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        log = out / "events.jsonl"
        while time.monotonic() < deadline and '"EpochFinished"' not in (
                log.read_text() if log.is_file() else ""):
            time.sleep(0.2)
        os.killpg(process.pid, signal.SIGINT)  # what a terminal's Ctrl+C does
        _, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.communicate()
    assert (out / "summary.json").is_file(), stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "stopped" and summary["runs"]["model"]["epochs_completed"] >= 1
    last = events(out)[-1]
    assert last["event"] == "TrainingFinished" and last["status"] == "stopped"
    assert stderr.count("tlgui: interrupted") == 1 and "tlgui: error" not in stderr
    assert not list((root / "tmp").glob("tlgui-*"))


@pytest.mark.parametrize("arguments, line", [
    (["--batch-size", "15"], "batch size 15 does not split into 2 equal shares"),
    (["--image-size", "16"], "argument --image-size: must be at least 32"),
])
def test_an_error_every_process_meets_is_said_once(place, arguments, line):
    root, data, _ = place
    done = torchrun(place, cli_arguments(data, root / "refused") + arguments, timeout=120)
    assert done.returncode != 0
    errors = [x for x in done.stderr.splitlines() if x.startswith("tlgui") and ": error" in x]
    assert len(errors) == 1 and line in errors[0], done.stderr[-3000:]


def test_the_first_process_refusing_the_run_folder_is_the_only_line(place, reference):
    root, data, _ = place
    out = Path(reference["runs"]["model"]["checkpoint"]).parent.parent  # a finished run
    done = torchrun(place, cli_arguments(data, out), timeout=120)
    assert done.returncode != 0
    errors = [x for x in done.stderr.splitlines() if "tlgui: error" in x]
    assert errors == [f"tlgui: error (process 1 of 2): {out}: already holds a finished run; "
                      f"choose another --out or --resume"], done.stderr[-3000:]


def test_the_feature_store_of_a_killed_process_is_removed(tmp_path, monkeypatch):
    from tlgui.core import training

    monkeypatch.setattr(training.tempfile, "gettempdir", lambda: str(tmp_path))
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True).stdout.strip()
    dead = tmp_path / f"{training.PRIVATE_STORE_PREFIX}dead"
    alive = tmp_path / f"{training.PRIVATE_STORE_PREFIX}alive"
    starting = tmp_path / f"{training.PRIVATE_STORE_PREFIX}starting"  # no owner written yet
    for folder, owner in ((dead, gone), (alive, str(os.getpid())), (starting, None)):
        folder.mkdir()
        if owner:
            (folder / training.PRIVATE_STORE_OWNER).write_text(owner)
    training._remove_stores_of_dead_processes()
    assert not dead.exists() and alive.exists() and starting.exists()
