"""The trainer, driven directly (no threads unless the test is about threads)."""

import json
import os
import threading

import pytest
import torch

from tlgui.core import events as ev
from tlgui.core.control import RunControl
from tlgui.core.data import scan, split
from tlgui.core.models import ModelSpec, build_model
from tlgui.core.sample import ensure_sample_data
from tlgui.core.training import TrainConfig, Trainer


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


def test_early_stopping_ends_a_run(tiny):
    events, on_event = collect()
    summary = Trainer(fast_config(epochs=30, early_stopping=1, lr=1e-6), tiny,
                      on_event=on_event).run()
    run = summary["runs"]["model"]
    assert run["early_stopped"] and run["epochs_completed"] < 30
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
