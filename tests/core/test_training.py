"""The trainer, driven directly (no threads unless the test is about threads)."""

import dataclasses
import json
import os
import re
import threading

import pytest
import torch
from PIL import Image

from tlgui.core import events as ev
from tlgui.core.control import RunControl
from tlgui.core.data import scan, split
from tlgui.core.models import ModelSpec, build_model
from tlgui.core.sample import ensure_sample_data
from tlgui.core.training import EpochRecord, RunState, TrainConfig, Trainer


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """12 sample images per class: enough for loop logic."""
    root = ensure_sample_data(tmp_path_factory.mktemp("tiny") / "shapes", images_per_class=12)
    return scan([str(root)])


def fast_config(**kw):
    base = dict(model="resnet18", weights="none", image_size=32, epochs=3, batch_size=8,
                hidden=16, workers=0)
    return TrainConfig(**{**base, **kw})


def collect():
    events = []
    return events, events.append


def test_training_on_the_sample_data_beats_chance(tmp_path):
    report = scan([str(ensure_sample_data())])
    config = TrainConfig(model="resnet18", weights="none", strategy="full", image_size=48,
                         epochs=6, lr=3e-3, backbone_lr_factor=1.0, hidden=0, dropout=0.2,
                         workers=0)
    summary = Trainer(config, report, tmp_path / "run").run()
    best = summary["runs"]["model"]["best_val_acc"]
    assert best > 0.45, f"validation accuracy {best:.2f} is too close to chance (0.25)"
    run = tmp_path / "run"
    for name in ("config.json", "classes.json", "summary.json", "model/best.pt",
                 "model/last.pt", "model/metrics.csv"):
        assert (run / name).is_file(), name
    assert len((run / "model/metrics.csv").read_text().splitlines()) == 1 + 6
    assert json.loads((run / "summary.json").read_text()) == summary
    assert not list(run.rglob("*.tmp")), "temporary files left behind"


def test_dropout_pair_shares_one_backbone_pass(tiny):
    events, on_event = collect()
    trainer = Trainer(fast_config(compare_dropout=True), tiny, on_event=on_event)
    summary = trainer.run()
    n = len(tiny.items)
    assert trainer.stats.stem_images == n  # every image through the backbone exactly once
    assert set(summary["runs"]) == {"with_dropout", "without_dropout"}
    epochs = [(e.run, e.epoch) for e in events if isinstance(e, ev.EpochFinished)]
    assert sorted(epochs) == sorted((r, k) for r in summary["runs"] for k in (1, 2, 3))
    started = next(e for e in events if isinstance(e, ev.TrainingStarted))
    assert started.feature_cache and started.dropouts == (0.5, 0.0)


def test_a_second_training_reads_the_stored_features(tiny, tmp_path):
    first = Trainer(fast_config(dropout=0.5), tiny)
    first_summary = first.run()
    assert first.stats.stem_images == len(tiny.items)
    again = Trainer(fast_config(dropout=0.5), tiny)  # another process, say: same settings
    again_summary = again.run()
    assert again.stats.stem_images == 0  # every feature came from the store
    assert again_summary["runs"]["model"]["best_val_acc"] == pytest.approx(
        first_summary["runs"]["model"]["best_val_acc"])
    other_head = Trainer(fast_config(dropout=0.2, hidden=8), tiny)
    other_head.run()
    assert other_head.stats.stem_images == 0  # the head does not change the features
    other_cut = Trainer(fast_config(strategy="partial", trainable_blocks=1), tiny)
    other_cut.run()
    assert other_cut.stats.stem_images == len(tiny.items)  # another frozen part: computed


def test_without_the_feature_cache_nothing_is_stored(tiny):
    from tlgui.core.feature_store import FeatureStore

    trainer = Trainer(fast_config(feature_cache=False, epochs=1), tiny)
    trainer.run()
    assert FeatureStore().contents() == []


def test_with_augmentation_the_backbone_runs_every_epoch_but_once_for_the_pair(tiny):
    trainer = Trainer(fast_config(compare_dropout=True, augment=True), tiny)
    trainer.run()
    s = split(tiny.items, 0.2, 0)
    # Plus one pass over the training images in evaluation mode, whose features are kept for
    # measuring the eval-mode training accuracy every epoch.
    assert trainer.stats.stem_images == 3 * len(s.train) + len(s.val) + len(s.train)


def test_pair_starts_from_the_same_weights(tiny):
    trainer = Trainer(fast_config(compare_dropout=True, hidden=32), tiny)
    trainer.prepare()
    a, b = (r.model for r in trainer.runs)
    assert a.dropout() == 0.5 and b.dropout() == 0.0
    for x, y in zip(a.state_dict().values(), b.state_dict().values()):
        assert torch.equal(x, y)


def test_same_seed_same_result(tiny):
    one = Trainer(fast_config(), tiny).run()
    two = Trainer(fast_config(), tiny).run()
    assert one["runs"] == two["runs"]


def test_resume_continues_where_training_stopped(tiny, tmp_path):
    straight = Trainer(fast_config(epochs=4), tiny, tmp_path / "a").run()
    control = RunControl()

    def stop_after_two(event):
        if isinstance(event, ev.EpochFinished) and event.epoch == 2:
            control.stop()

    first = Trainer(fast_config(epochs=4), tiny, tmp_path / "b", on_event=stop_after_two,
                    control=control).run()
    assert first["status"] == "stopped" and first["runs"]["model"]["epochs_completed"] == 2
    events, on_event = collect()
    resumed = Trainer(fast_config(epochs=4), tiny, tmp_path / "b", on_event=on_event,
                      resume=True).run()
    done = [e.epoch for e in events if isinstance(e, ev.EpochFinished)]
    assert done == [3, 4]
    a, b = straight["runs"]["model"], resumed["runs"]["model"]
    assert b["epochs_completed"] == 4
    assert b["last_val_acc"] == pytest.approx(a["last_val_acc"])
    assert b["last_train_acc"] == pytest.approx(a["last_train_acc"])


def test_stop_takes_effect_within_one_batch_and_keeps_the_best_checkpoint(tiny, tmp_path):
    control = RunControl()
    steps_after_stop = []
    events = []

    def on_event(event):
        events.append(event)
        if isinstance(event, ev.BatchFinished) and event.epoch == 2 and not control.stop_requested:
            control.stop()  # mid-epoch, between two batches
            steps_after_stop.append(0)

    trainer = Trainer(fast_config(strategy="full", epochs=5, batch_size=4), tiny,
                      tmp_path / "run", on_event=on_event, control=control)
    original_step = trainer._step

    def counting_step(*args):
        if steps_after_stop:
            steps_after_stop[0] += 1
        return original_step(*args)

    trainer._step = counting_step
    summary = trainer.run()
    assert summary["status"] == "stopped"
    assert steps_after_stop == [0]
    assert summary["runs"]["model"]["epochs_completed"] == 1
    assert (tmp_path / "run" / "model" / "best.pt").is_file()
    assert isinstance(events[-1], ev.TrainingFinished) and events[-1].status == "stopped"


def test_pause_blocks_training_until_resume_from_another_thread(tiny):
    control = RunControl()
    batches = []
    first_batch = threading.Event()

    def on_event(event):
        if isinstance(event, ev.BatchFinished):
            batches.append(event)
            first_batch.set()

    trainer = Trainer(fast_config(strategy="full", epochs=3, batch_size=4), tiny,
                      on_event=on_event, control=control)
    trainer._last_batch_event = float("inf")  # report every batch
    result = {}
    control.pause()  # takes effect at the first safe point
    worker = threading.Thread(target=lambda: result.update(trainer.run()))
    worker.start()
    try:
        assert not first_batch.wait(1.0), "trained while paused"
        assert control.paused and worker.is_alive()
        control.resume()
        assert first_batch.wait(30)
        control.stop()
        worker.join(30)
        assert not worker.is_alive()
    finally:
        control.stop()
        worker.join(30)
    assert result["status"] == "stopped"


def test_early_stopping_ends_a_run(tiny, monkeypatch):
    # The measurements are held still, so that no epoch after the first is better: with
    # real training even a tiny learning rate lowers the loss a little each epoch, which
    # counts as a gain when the accuracy ties.
    def constant_measurements(self, runs, items, cache):
        k = len(self.report.classes)
        return {r.name: (1.0, 0.5, [[0] * k for _ in range(k)]) for r in runs}

    monkeypatch.setattr(Trainer, "_evaluate", constant_measurements)
    events, on_event = collect()
    summary = Trainer(fast_config(epochs=30, early_stopping=2), tiny, on_event=on_event).run()
    run = summary["runs"]["model"]
    # Epoch 1 sets the best; epochs 2 and 3 bring nothing; patience 2 stops after epoch 3.
    assert run["early_stopped"] and run["epochs_completed"] == 3
    assert any("stopped early" in e.text for e in events if isinstance(e, ev.LogMessage))


def test_test_folder_is_evaluated_with_the_best_weights(tmp_path):
    root = ensure_sample_data(tmp_path / "train", images_per_class=8)
    test = ensure_sample_data(tmp_path / "test", images_per_class=3, seed=7)
    report = scan([str(root)], test_folder=str(test))
    summary = Trainer(fast_config(compare_dropout=True), report, tmp_path / "run").run()
    for run in summary["runs"].values():
        assert 0.0 <= run["test_acc"] <= 1.0
    assert summary["test_size"] == 12


def test_a_checkpoint_can_be_the_starting_point_of_another_model(tiny, tmp_path):
    Trainer(fast_config(epochs=1), tiny, tmp_path / "run").run()
    best = tmp_path / "run" / "model" / "best.pt"
    saved = torch.load(best, weights_only=True)
    net = build_model(ModelSpec("resnet18", num_classes=7), str(best))
    assert torch.equal(net.state_dict()["blocks.0.0.weight"], saved["model"]["blocks.0.0.weight"])
    assert net.head[-1].out_features == 7
    with pytest.raises(Exception, match="is a resnet18 model, not vgg16"):
        build_model(ModelSpec("vgg16", num_classes=2), str(best))


def test_bad_settings_are_refused(tiny):
    with pytest.raises(ValueError, match="dropout comparison needs a dropout above 0"):
        Trainer(fast_config(compare_dropout=True, dropout=0.0), tiny)
    with pytest.raises(ValueError, match="not available"):
        Trainer(fast_config(device="cuda:7"), tiny)


def test_best_checkpoint_holds_the_best_epoch(tiny, tmp_path):
    from tlgui.core.models import load_trained
    from tlgui.core.preprocess import ImageDataset, Preprocessing

    config = fast_config(epochs=5, lr=3e-3, feature_cache=False)
    summary = Trainer(config, tiny, tmp_path / "run").run()
    best = summary["runs"]["model"]
    net, checkpoint = load_trained(tmp_path / "run" / "model" / "best.pt")
    assert checkpoint["epoch"] + 1 == best["best_epoch"]
    assert checkpoint["classes"] == tiny.classes
    val = split(tiny.items, config.val_fraction, config.seed).val
    transform = Preprocessing.from_dict(checkpoint["preprocessing"]).eval_transform()
    x, y = zip(*(ImageDataset(val, transform)[i] for i in range(len(val))))
    with torch.no_grad():
        accuracy = (net(torch.stack(x)).argmax(1) == torch.stack(y)).float().mean().item()
    assert accuracy == pytest.approx(best["best_val_acc"])


@pytest.mark.parametrize("workers", [0, 1])
def test_an_image_gone_since_the_scan_is_a_clear_error(tmp_path, workers):
    from tlgui.core.errors import one_line
    from tlgui.core.images import ImageLoadError

    root = ensure_sample_data(tmp_path / "shapes", images_per_class=6)
    report = scan([str(root)])
    gone = report.items[3].path
    os.remove(gone)
    with pytest.raises(Exception) as info:
        Trainer(fast_config(epochs=1, workers=workers), report).run()
    assert one_line(info.value) == f"{gone}: file not found (was it moved or deleted?)"
    if workers == 0:
        assert isinstance(info.value, ImageLoadError)


# -- checkpoints that survive a crash ------------------------------------------------------


def scripted_validation(accuracies: dict, val_items):
    """A replacement for ``Trainer._evaluate`` that reports ``accuracies[run][epoch - 1]`` as
    each run's validation accuracy (the loss is the real one), so a test knows which epoch is
    the best. Other evaluations (test images, training images) are left as they are."""
    original = Trainer._evaluate
    val_paths = sorted(item.path for item in val_items)

    def evaluate(self, runs, items, cache):
        results = original(self, runs, items, cache)
        if sorted(item.path for item in items or ()) != val_paths:
            return results
        by_name = {run.name: run for run in runs}
        return {name: (r[0], accuracies[name][len(by_name[name].history)], *r[2:])
                for name, r in results.items()}

    return evaluate


def val_items_of(report, config):
    return split(report.items, config.val_fraction, config.seed).val


def model_weights(path):
    return torch.load(path, map_location="cpu", weights_only=True)["model"]


def assert_same_weights(a: dict, b: dict):
    assert a.keys() == b.keys()
    for key in a:
        assert torch.allclose(a[key].float(), b[key].float(), atol=1e-6), key


def metrics_epochs(path):
    return [int(line.split(",")[0]) for line in path.read_text().splitlines()[1:]]


#: Best epoch 2 of 4 for both runs: the best is neither the first nor the last epoch.
PAIR_SCRIPT = {"with_dropout": [0.30, 0.60, 0.50, 0.40],
               "without_dropout": [0.35, 0.65, 0.55, 0.45]}

class Killed(BaseException):
    """The process died: nothing after this point runs and nothing more reaches the disk."""


def kill_when(monkeypatch, condition):
    """An event callback that 'kills' the trainer at the first event meeting ``condition``:
    it raises, and from then on every file write of the trainer fails without writing (its
    clean-up code runs, but a killed process would not have run it). Clearing the returned
    flag starts a 'new process'."""
    from tlgui.core import training

    dead = threading.Event()

    def guard(write):
        def guarded(*args, **kwargs):
            if dead.is_set():
                raise Killed
            return write(*args, **kwargs)

        return guarded

    for name in ("atomic_torch_save", "atomic_write_json", "atomic_write_text"):
        monkeypatch.setattr(training, name, guard(getattr(training, name)))

    def on_event(event):
        if not dead.is_set() and condition(event):
            dead.set()
            raise Killed

    return on_event, dead


@pytest.mark.parametrize("killed_after", [
    ("without_dropout", 3),  # both runs saved epoch 3
    ("with_dropout", 3),  # only with_dropout saved epoch 3: it is one epoch ahead
])
def test_a_killed_pair_resumes_to_the_checkpoints_an_uninterrupted_run_writes(
        tiny, tmp_path, monkeypatch, killed_after):
    from tlgui.core import training

    config = fast_config(epochs=4, compare_dropout=True)
    # best.pt at most every BEST_CHECKPOINT_INTERVAL, as for a large model.
    monkeypatch.setattr(training, "SMALL_CHECKPOINT_BYTES", 0, raising=False)
    monkeypatch.setattr(Trainer, "_evaluate",
                        scripted_validation(PAIR_SCRIPT, val_items_of(tiny, config)))
    straight = Trainer(config, tiny, tmp_path / "straight").run()

    killed = tmp_path / "killed"
    on_event, dead = kill_when(monkeypatch, lambda e: isinstance(e, ev.EpochFinished)
                               and (e.run, e.epoch) == killed_after)
    with pytest.raises(Killed):
        Trainer(config, tiny, killed, on_event=on_event).run()
    dead.clear()
    orphan = killed / "with_dropout" / ".last.pt.k2x9_q0a.tmp"  # as a kill mid-write leaves
    orphan.write_bytes(b"half a checkpoint")
    events, on_event = collect()
    resumed = Trainer(config, tiny, killed, on_event=on_event, resume=True).run()
    trained = [(e.run, e.epoch) for e in events if isinstance(e, ev.EpochFinished)]
    behind = [("without_dropout", 3)] if killed_after == ("with_dropout", 3) else []
    assert trained == behind + [("with_dropout", 4), ("without_dropout", 4)]

    for name in ("with_dropout", "without_dropout"):
        claimed = resumed["runs"][name]
        assert claimed["best_epoch"] == straight["runs"][name]["best_epoch"] == 2
        assert claimed["best_val_acc"] == pytest.approx(PAIR_SCRIPT[name][1])
        assert claimed["last_val_acc"] == pytest.approx(straight["runs"][name]["last_val_acc"])
        best = killed / name / "best.pt"
        assert claimed["checkpoint"] == str(best) and best.is_file()
        assert torch.load(best, weights_only=True)["epoch"] + 1 == 2
        assert_same_weights(model_weights(best), model_weights(tmp_path / "straight" / name /
                                                               "best.pt"))
        assert metrics_epochs(killed / name / "metrics.csv") == [1, 2, 3, 4]
    assert not orphan.exists() and not list(killed.rglob("*.tmp"))


def test_resume_trains_each_run_from_its_own_last_epoch(tiny, tmp_path, monkeypatch):
    # with_dropout stops early after epoch 2 (no gain for one epoch); without_dropout goes on.
    script = {"with_dropout": [0.5, 0.4, 0.3, 0.2], "without_dropout": [0.3, 0.4, 0.5, 0.6]}
    config = fast_config(epochs=4, compare_dropout=True, early_stopping=1)
    monkeypatch.setattr(Trainer, "_evaluate", scripted_validation(script, val_items_of(tiny,
                                                                                       config)))
    control = RunControl()

    def stop_after_three(event):
        if isinstance(event, ev.EpochFinished) and event.epoch == 3:
            control.stop()

    first = Trainer(config, tiny, tmp_path / "run", on_event=stop_after_three,
                    control=control).run()
    assert first["runs"]["with_dropout"]["epochs_completed"] == 2
    assert first["runs"]["without_dropout"]["epochs_completed"] == 3
    events, on_event = collect()
    resumed = Trainer(config, tiny, tmp_path / "run", on_event=on_event, resume=True).run()
    trained = [(e.run, e.epoch) for e in events if isinstance(e, ev.EpochFinished)]
    assert trained == [("without_dropout", 4)]
    assert metrics_epochs(tmp_path / "run" / "with_dropout" / "metrics.csv") == [1, 2]
    assert metrics_epochs(tmp_path / "run" / "without_dropout" / "metrics.csv") == [1, 2, 3, 4]
    assert resumed["runs"]["with_dropout"]["early_stopped"]
    assert resumed["runs"]["without_dropout"]["best_epoch"] == 4


@pytest.fixture
def stopped_run(tiny, tmp_path):
    """A run folder whose training stopped after epoch 1 of 2."""
    control = RunControl()

    def stop_after_one(event):
        if isinstance(event, ev.EpochFinished):
            control.stop()

    Trainer(fast_config(epochs=2), tiny, tmp_path / "run", on_event=stop_after_one,
            control=control).run()
    return tmp_path / "run"


@pytest.mark.parametrize("change, setting, before, after", [
    (dict(seed=1), "seed", "0", "1"),
    (dict(val_fraction=0.3), "val_fraction", "0.2", "0.3"),
    (dict(epochs=5), "epochs", "2", "5"),
    (dict(hidden=32), "hidden", "16", "32"),
    (dict(strategy="full"), "strategy", "'frozen'", "'full'"),
    (dict(lr=0.01), "lr", "0.001", "0.01"),
    (dict(augment=True), "augment", "False", "True"),
])
def test_resume_refuses_a_changed_setting_and_names_it(tiny, stopped_run, change,
                                                              setting, before, after):
    written = (stopped_run / "config.json").read_bytes()
    with pytest.raises(ValueError) as info:
        Trainer(fast_config(**{"epochs": 2, **change}), tiny, stopped_run, resume=True)
    assert str(info.value) == (f"cannot resume {stopped_run}: the setting '{setting}' was "
                               f"{before} and is now {after}")
    assert (stopped_run / "config.json").read_bytes() == written


def test_resume_names_every_changed_setting_at_once(tiny, stopped_run):
    with pytest.raises(ValueError) as info:
        Trainer(fast_config(epochs=2, seed=3, hidden=32), tiny, stopped_run, resume=True)
    assert str(info.value) == (
        f"cannot resume {stopped_run}: 2 settings differ from the run's start: 'hidden' was 16 "
        f"and is now 32; 'seed' was 0 and is now 3")


def test_resume_allows_another_device_and_keeps_the_run_files(tiny, stopped_run):
    written = {name: (stopped_run / name).read_bytes() for name in ("config.json",
                                                                    "classes.json")}
    summary = Trainer(fast_config(epochs=2, device="cpu", allow_download=False), tiny,
                      stopped_run, resume=True).run()
    assert summary["status"] == "finished" and summary["runs"]["model"]["epochs_completed"] == 2
    for name, content in written.items():
        assert (stopped_run / name).read_bytes() == content, name


def test_resume_refuses_data_that_changed(tiny, stopped_run):
    fewer = dataclasses.replace(tiny, items=tiny.items[1:])
    with pytest.raises(ValueError, match=(
            f"cannot resume {stopped_run}: the (training|validation) images of class "
            f"'{tiny.classes[tiny.items[0].label]}' changed since it started")):
        Trainer(fast_config(epochs=2), fewer, stopped_run, resume=True).run()


def own_stopped_run(tmp_path):
    """Its own images (they are changed) and a run folder stopped after epoch 1 of 2."""
    root = ensure_sample_data(tmp_path / "shapes", images_per_class=6)
    control = RunControl()

    def stop_after_one(event):
        if isinstance(event, ev.EpochFinished):
            control.stop()

    config = fast_config(epochs=2, batch_size=4)
    Trainer(config, scan([str(root)]), tmp_path / "run", on_event=stop_after_one,
            control=control).run()
    return root, config, tmp_path / "run"


def test_resume_refuses_a_replaced_image_and_names_its_class(tmp_path):
    """Same names, same counts, another photo: the run's images are not those it started on."""
    root, config, run = own_stopped_run(tmp_path)
    photo = sorted((root / "star").iterdir())[2]
    stat = photo.stat()
    Image.new("RGB", (40, 40), (200, 10, 10)).save(photo, format="PNG")
    os.utime(photo, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    with pytest.raises(ValueError) as info:
        Trainer(config, scan([str(root)]), run, resume=True).run()
    assert str(info.value).startswith(f"cannot resume {run}: the ")
    assert "images of class 'star' changed since it started" in str(info.value)


def test_resume_names_the_class_whose_count_changed_when_the_totals_did_not(tmp_path):
    """One image fewer in one class, one more in another. A run folder written before the
    images' digests were kept is checked by its counts per class, also naming the class."""
    root, config, run = own_stopped_run(tmp_path)
    classes = json.loads((run / "classes.json").read_text())
    old_style = {k: v for k, v in classes.items() if k != "image_digests"}
    moved = sorted((root / "circle").iterdir())[0]
    moved.rename(root / "square" / "from_circle.png")
    for written in (classes, old_style):
        (run / "classes.json").write_text(json.dumps(written))
        with pytest.raises(ValueError) as info:
            Trainer(config, scan([str(root)]), run, resume=True).run()
        message = str(info.value)
        assert "images of class 'circle' changed since it started" in message, message
        numbers = re.findall(r"\d+ and \d+", message)
        assert len(set(numbers)) != 1, message  # never "40 and 10 then, 40 and 10 now"


def test_own_temporary_files_are_removed_when_a_run_ends(tiny, tmp_path):
    run = tmp_path / "run"
    planted = {"orphans": [run / ".config.json.a1b2c3d4.tmp",
                           run / "model" / ".best.pt.zz_9x8y7.tmp"],
               "kept": [run / "model" / "notes.tmp", run / "model" / ".notes.tmp",
                        run / "model" / ".best.pt.abc.tmp"]}

    def plant(event):
        if isinstance(event, ev.EpochFinished) and event.epoch == 1:
            for path in planted["orphans"] + planted["kept"]:
                path.write_bytes(b"x")

    Trainer(fast_config(epochs=2), tiny, run, on_event=plant).run()
    assert not any(p.exists() for p in planted["orphans"])
    assert all(p.exists() for p in planted["kept"])


def test_a_run_stopped_in_its_first_epoch_points_at_no_checkpoint(tiny, tmp_path):
    control = RunControl()

    def stop_at_once(event):
        if isinstance(event, ev.BatchFinished):
            control.stop()

    summary = Trainer(fast_config(epochs=2, batch_size=4), tiny, tmp_path / "run",
                      on_event=stop_at_once, control=control).run()
    run = summary["runs"]["model"]
    assert summary["status"] == "stopped" and run["epochs_completed"] == 0
    assert run["checkpoint"] is None and run["best_val_acc"] is None
    assert not (tmp_path / "run" / "model" / "best.pt").exists()
    # Nothing to restore: resuming starts from the first epoch.
    resumed = Trainer(fast_config(epochs=2, batch_size=4), tiny, tmp_path / "run",
                      resume=True).run()["runs"]["model"]
    assert resumed["epochs_completed"] == 2 and os.path.isfile(resumed["checkpoint"])


def test_best_checkpoint_and_test_accuracy_come_from_the_best_epoch_not_the_last(
        tmp_path, monkeypatch):
    from tlgui.core.models import load_trained
    from tlgui.core.preprocess import ImageDataset, Preprocessing

    root = ensure_sample_data(tmp_path / "train", images_per_class=8)
    test = ensure_sample_data(tmp_path / "test", images_per_class=4, seed=7)
    report = scan([str(root)], test_folder=str(test))
    config = fast_config(epochs=3, lr=3e-2)
    monkeypatch.setattr(Trainer, "_evaluate", scripted_validation(
        {"model": [0.3, 0.7, 0.5]}, val_items_of(report, config)))
    weights = {}  # epoch -> the model's weights at its end

    def keep_weights(event):
        if isinstance(event, ev.EpochFinished):
            weights[event.epoch] = {k: v.clone()
                                    for k, v in trainer.runs[0].model.state_dict().items()}

    trainer = Trainer(config, report, tmp_path / "run", on_event=keep_weights)
    summary = trainer.run()["runs"]["model"]
    assert summary["best_epoch"] == 2 and summary["best_val_acc"] == pytest.approx(0.7)
    best = tmp_path / "run" / "model" / "best.pt"
    assert_same_weights(model_weights(best), weights[2])
    assert not torch.equal(weights[2]["head.3.weight"], weights[3]["head.3.weight"]), \
        "the last epoch changed nothing: the test could not tell the epochs apart"
    net, checkpoint = load_trained(best)
    transform = Preprocessing.from_dict(checkpoint["preprocessing"]).eval_transform()
    x, y = zip(*(ImageDataset(report.test_items, transform)[i]
                 for i in range(len(report.test_items))))
    with torch.no_grad():
        accuracy = (net(torch.stack(x)).argmax(1) == torch.stack(y)).float().mean().item()
    assert summary["test_acc"] == pytest.approx(accuracy)


def test_stop_while_paused_ends_the_trainer(tiny):
    control = RunControl()
    paused = threading.Event()

    def pause_at_first_progress(event):
        if isinstance(event, ev.StageProgress) and not paused.is_set():
            control.pause()  # in the training thread: it waits at the next batch
            paused.set()

    trainer = Trainer(fast_config(epochs=2, batch_size=4), tiny, on_event=pause_at_first_progress,
                      control=control)
    result = {}
    worker = threading.Thread(target=lambda: result.update(trainer.run()), daemon=True)
    worker.start()
    try:
        assert paused.wait(60)
        worker.join(0.5)
        assert worker.is_alive() and control.paused
        control.stop()  # no resume first
        worker.join(60)
        assert not worker.is_alive(), "the trainer still waits after a stop"
    finally:
        control.stop()
        worker.join(60)
    assert result["status"] == "stopped"


def test_each_run_has_its_own_gradient_scaler_saved_with_its_checkpoint(tiny, tmp_path,
                                                                         monkeypatch):
    # On CUDA with float16 a scaler rescales the loss; a CPU scaler follows the same steps, and
    # with growth_interval=1 each step of its run doubles its scale.
    monkeypatch.setattr(Trainer, "_grad_scaler", lambda self: torch.amp.GradScaler(
        "cpu", init_scale=2.0**4, growth_interval=1))
    config = fast_config(epochs=2, compare_dropout=True, batch_size=8)
    control = RunControl()

    def stop_after_one(event):
        if isinstance(event, ev.EpochFinished):
            control.stop()

    trainer = Trainer(config, tiny, tmp_path / "run", on_event=stop_after_one, control=control)
    trainer.run()
    n = len(split(tiny.items, config.val_fraction, config.seed).train)
    steps = sum(1 for start in range(0, n, 8) if min(8, n - start) >= 2)  # one image: no step
    a, b = trainer.runs
    assert a.scaler is not b.scaler
    for run in trainer.runs:
        assert run.scaler.get_scale() == 2.0 ** (4 + steps)
        saved = torch.load(tmp_path / "run" / run.name / "last.pt", weights_only=True)
        assert saved["scaler"]["scale"] == 2.0 ** (4 + steps)
    resumed = Trainer(config, tiny, tmp_path / "run", resume=True)
    resumed.run()
    for run in resumed.runs:
        assert run.scaler.get_scale() == 2.0 ** (4 + 2 * steps)


def test_float16_where_bfloat16_is_only_emulated(monkeypatch):
    from tlgui.core.device import autocast_dtype

    def bf16_supported(including_emulation=True):
        return including_emulation  # an older GPU: bfloat16 in software only

    monkeypatch.setattr(torch.cuda, "is_bf16_supported", bf16_supported)
    assert autocast_dtype(torch.device("cuda")) == torch.float16
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: True)
    assert autocast_dtype(torch.device("cuda")) == torch.bfloat16
    assert autocast_dtype(torch.device("cpu")) is None


@pytest.mark.parametrize("settings, message", [
    (dict(image_size=1), "image size must be at least 32 px"),
    (dict(image_size=16), "image size must be at least 32 px"),
    (dict(batch_size=1), "batch size must be at least 2"),
    (dict(val_fraction=0.0), "validation fraction must be more than 0 and less than 1"),
    (dict(val_fraction=1.0), "validation fraction must be more than 0 and less than 1"),
    (dict(strategy="partial", trainable_blocks=99),
     "resnet18 has 5 blocks: the trainable blocks must be 1 to 5, not 99"),
    (dict(strategy="partial", trainable_blocks=0),
     "resnet18 has 5 blocks: the trainable blocks must be 1 to 5, not 0"),
    (dict(strategy="most"), "strategy must be one of frozen, partial, full"),
])
def test_settings_that_cannot_train_are_refused_in_one_line(settings, message):
    with pytest.raises(ValueError) as info:
        fast_config(**settings).validate()
    assert str(info.value).startswith(message)


def test_a_split_without_validation_images_gives_honest_valid_json(tmp_path):
    root = ensure_sample_data(tmp_path / "one_each", images_per_class=1)
    report = scan([str(root)])
    seed = next(s for s in range(100) if not split(report.items, 0.2, s).val)
    summary = Trainer(fast_config(epochs=2, seed=seed, batch_size=2), report,
                      tmp_path / "run").run()

    def refuse(constant):
        raise ValueError(f"{constant} in summary.json")

    written = json.loads((tmp_path / "run" / "summary.json").read_text(), parse_constant=refuse)
    assert written == summary and summary["val_size"] == 0
    run = summary["runs"]["model"]
    assert run["best_val_acc"] is None and run["last_val_acc"] is None
    assert run["train_val_gap"] is None
    assert run["best_by"] == "training accuracy" and run["best_epoch"] in (1, 2)


def test_a_full_disk_keeps_the_previous_best_and_resume_restores_the_lost_one(
        tiny, tmp_path, monkeypatch):
    import errno

    from tlgui.core import training
    from tlgui.core.errors import one_line

    config = fast_config(epochs=3)
    monkeypatch.setattr(training, "SMALL_CHECKPOINT_BYTES", 0, raising=False)
    monkeypatch.setattr(Trainer, "_evaluate", scripted_validation(
        {"model": [0.3, 0.7, 0.5]}, val_items_of(tiny, config)))
    disk_full = threading.Event()
    real_save = torch.save

    def save(obj, f, *args, **kwargs):
        name = str(f.name if hasattr(f, "write") else f)  # a file object, or a path
        if disk_full.is_set() and "best.pt" in name:
            with open(name, "wb") as partial:
                partial.write(b"PK\x03\x04")  # the start of a checkpoint, then no more room
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_save(obj, f, *args, **kwargs)

    monkeypatch.setattr(torch, "save", save)
    at_best = {}

    def on_event(event):
        if isinstance(event, ev.EpochFinished) and event.epoch == 2:
            at_best.update({k: v.clone() for k, v in trainer.runs[0].model.state_dict().items()})
            disk_full.set()

    run = tmp_path / "run"
    trainer = Trainer(config, tiny, run, on_event=on_event)
    with pytest.raises(OSError) as info:
        trainer.run()
    best = run / "model" / "best.pt"
    assert one_line(info.value) == f"no space left on device: {best}"
    assert torch.load(best, weights_only=True)["epoch"] == 0  # the previous good one
    assert not list(run.rglob("*.tmp"))
    disk_full.clear()  # space was freed
    resumed = Trainer(config, tiny, run, resume=True)
    summary = resumed.run()
    assert resumed.stats.stem_images == 0  # every epoch was done: nothing to compute again
    assert summary["runs"]["model"]["best_epoch"] == 2
    assert_same_weights(model_weights(best), at_best)


def test_the_best_epoch_and_early_stopping_follow_accuracy_then_loss(tiny):
    """Better accuracy wins; equal accuracy wins only with a lower loss; without validation
    images the training figures decide. Patience counts the epochs without a gain."""
    def record(epoch, val_acc, val_loss, train_acc=0.5, train_loss=1.0):
        return EpochRecord(epoch, train_loss, train_acc, val_loss, val_acc, 0.01, 1.0)

    trainer = Trainer(fast_config(early_stopping=2), tiny)
    run = RunState("model", 0.0, model=None)
    steps = [(record(1, 0.5, 1.0), True, 1, 0), (record(2, 0.5, 0.9), True, 2, 0),
             (record(3, 0.5, 0.9), False, 2, 1), (record(4, 0.4, 0.5), False, 2, 2)]
    for rec, improved, best_epoch, without_gain in steps:
        assert run.active
        assert trainer._track_best(run, rec) is improved
        assert (run.best_epoch, run.epochs_without_gain) == (best_epoch, without_gain)
    assert (run.best_val_acc, run.best_val_loss) == (0.5, 0.9)
    assert not run.active
    assert run.stop_reason == ("stopped early after epoch 4: no better validation accuracy for "
                               "2 epochs")

    nan = float("nan")
    trainer = Trainer(fast_config(early_stopping=1), tiny)
    run = RunState("model", 0.0, model=None)
    assert trainer._track_best(run, record(1, nan, nan, train_acc=0.6, train_loss=0.8))
    assert (run.best_val_acc, run.best_val_loss) == (0.6, 0.8)
    assert trainer._track_best(run, record(2, nan, nan, train_acc=0.6, train_loss=0.7))
    assert run.best_epoch == 2 and run.active
    assert not trainer._track_best(run, record(3, nan, nan, train_acc=0.2, train_loss=0.1))
    assert not run.active and run.stop_reason == (
        "stopped early after epoch 3: no better training accuracy for 1 epoch")

    trainer = Trainer(fast_config(early_stopping=0), tiny)  # 0: never stop
    run = RunState("model", 0.0, model=None)
    trainer._track_best(run, record(1, 0.9, 0.1))
    for epoch in range(2, 8):
        assert not trainer._track_best(run, record(epoch, 0.1, 2.0))
    assert run.active and run.epochs_without_gain == 6 and run.stop_reason == ""
