"""Evaluation and prediction through a DataLoader: the same numbers as one image at a time,
progress batch by batch, a Cancel that stops within a batch and leaves no worker process,
unreadable files listed, results held as arrays, and the evaluation labelled with what was
evaluated. CPU only; tiny models on 32 px images."""

import json
import multiprocessing
import threading

import numpy as np
import pytest
import torch
from PIL import Image

from tlgui.core.control import Cancelled
from tlgui.core.data import ImageItem
from tlgui.core.evaluation import evaluate, predict_paths
from tlgui.core.images import load_rgb
from tlgui.core.preprocess import Preprocessing

PREPROCESSING = Preprocessing(32, 32, (0.5, 0.4, 0.3), (0.2, 0.25, 0.3))


class TinyNet(torch.nn.Module):
    """A convolution, pooling and a linear layer: batched and one-image results can differ
    in the last bit only if the batching changes the arithmetic."""

    def __init__(self, classes: int = 3):
        super().__init__()
        torch.manual_seed(0)
        self.conv = torch.nn.Conv2d(3, 4, 3, padding=1)
        self.head = torch.nn.Linear(4, classes)
        self.calls = 0

    def forward(self, x):
        self.calls += 1
        return self.head(torch.relu(self.conv(x)).mean(dim=(2, 3)))


@pytest.fixture
def images(tmp_path):
    """Seven 32 px images of random noise (each different), in name order."""
    rng = np.random.default_rng(3)
    paths = []
    for i in range(7):
        path = tmp_path / f"{i}.png"
        Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(path)
        paths.append(str(path))
    return paths


def plain_loop(model, paths, batch_size):
    """The reference: each image loaded and transformed in turn in this process, classified in
    batches of ``batch_size`` (``1``: each image alone)."""
    transform = PREPROCESSING.eval_transform()
    model.eval()
    tensors = [transform(load_rgb(p)) for p in paths]
    with torch.no_grad():
        return np.concatenate([
            torch.softmax(model(torch.stack(tensors[i:i + batch_size])).float(), 1).numpy()
            for i in range(0, len(tensors), batch_size)])


@pytest.mark.parametrize("workers", [0, 1])
def test_predictions_equal_a_plain_loop(images, workers):
    model = TinyNet()
    kept, probs, failed = predict_paths(model, PREPROCESSING, images, batch_size=3,
                                        device="cpu", workers=workers)
    assert kept == images and failed == []
    assert probs.dtype == np.float32
    # Bit for bit with the same batches; a batch of one may round the last bit differently.
    np.testing.assert_array_equal(probs, plain_loop(model, images, 3))
    np.testing.assert_allclose(probs, plain_loop(model, images, 1), rtol=1e-6, atol=1e-7)


def test_progress_is_reported_each_batch_up_to_the_total(images, tmp_path):
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"")
    paths = images[:2] + [str(broken)] + images[2:]
    seen = []
    predict_paths(TinyNet(), PREPROCESSING, paths, batch_size=3, workers=0,
                  progress=lambda done, total: seen.append((done, total)))
    assert seen == [(3, 8), (6, 8), (8, 8)]


def test_unreadable_and_vanished_files_are_listed_and_the_rest_predicted(images, tmp_path):
    broken = tmp_path / "notes.jpg"
    broken.write_text("not an image")
    gone = str(tmp_path / "gone.png")  # listed, then deleted before it is read
    paths = [str(broken), images[0], gone, images[1]]
    for workers in (0, 1):
        kept, probs, failed = predict_paths(TinyNet(), PREPROCESSING, paths, batch_size=2,
                                            workers=workers)
        assert kept == images[:2] and probs.shape == (2, 3)
        assert [path for path, _ in failed] == [str(broken), gone]
        assert all(reason for _, reason in failed)


def test_nothing_readable_gives_empty_results(tmp_path):
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"")
    kept, probs, failed = predict_paths(TinyNet(), PREPROCESSING, [str(broken)], workers=0)
    assert kept == [] and len(probs) == 0 and [p for p, _ in failed] == [str(broken)]


class CancelAfterFirstBatch:
    """A cancel flag that the progress callback sets once the first batch is done."""

    def __init__(self):
        self.stop = threading.Event()
        self.reports = []

    def is_set(self) -> bool:
        return self.stop.is_set()

    def progress(self, done: int, total: int) -> None:
        self.reports.append(done)
        self.stop.set()


def test_cancel_mid_run_stops_within_a_batch_and_leaves_no_worker_process(images):
    model = TinyNet()
    cancel = CancelAfterFirstBatch()
    try:
        predict_paths(model, PREPROCESSING, images, batch_size=2, workers=1,
                      progress=cancel.progress, cancel=cancel)
    except Cancelled:
        # Looked at while the exception, and so the loop's frame, is still held: the worker
        # must be gone because the loop ended it, not because its loader was collected.
        left_running = multiprocessing.active_children()
    else:
        pytest.fail("not cancelled")
    assert model.calls == 1 and cancel.reports == [2]
    assert left_running == []


def test_a_cancel_before_the_first_batch_runs_nothing(images):
    model = TinyNet()
    stop = threading.Event()
    stop.set()
    with pytest.raises(Cancelled):
        predict_paths(model, PREPROCESSING, images, workers=0, cancel=stop)
    assert model.calls == 0


def test_worker_processes_are_spawned_from_a_thread_that_is_not_the_main_one(images,
                                                                           monkeypatch):
    """Forking a process that runs other threads (a GUI) can deadlock the child, so a
    prediction started from a worker thread spawns its loader's processes instead."""
    contexts = []

    class RecordingLoader(torch.utils.data.DataLoader):
        def __init__(self, *args, multiprocessing_context=None, **kwargs):
            contexts.append(multiprocessing_context)
            super().__init__(*args, multiprocessing_context=multiprocessing_context, **kwargs)

    monkeypatch.setattr(torch.utils.data, "DataLoader", RecordingLoader)
    model = TinyNet()
    outcome = {}

    def predict():
        try:
            outcome["result"] = predict_paths(model, PREPROCESSING, images, batch_size=4,
                                              workers=1)
        except BaseException as e:  # reported to the test below
            outcome["error"] = e

    thread = threading.Thread(target=predict)
    thread.start()
    thread.join(timeout=120)
    assert not thread.is_alive() and "error" not in outcome
    kept, probs, _ = outcome["result"]
    assert kept == images and contexts == ["spawn"]
    np.testing.assert_array_equal(probs, plain_loop(model, images, 4))
    assert multiprocessing.active_children() == []


def test_a_few_images_are_read_in_this_process_unless_worker_processes_are_asked_for():
    from tlgui.core.evaluation import FEW_BATCHES, loader_workers
    from tlgui.core.training import _auto_workers

    cuda = torch.device("cuda")  # only its type matters here
    assert loader_workers(-1, cuda, FEW_BATCHES * 32, 32) == 0
    assert loader_workers(-1, cuda, FEW_BATCHES * 32 + 1, 32) == _auto_workers(cuda)
    assert loader_workers(3, cuda, 5, 32) == 3 and loader_workers(0, cuda, 10**5, 32) == 0


def test_the_device_is_chosen_as_for_training(images):
    kept, _, _ = predict_paths(TinyNet(), PREPROCESSING, images[:2], device="auto", workers=0)
    assert kept == images[:2]
    with pytest.raises(ValueError, match="device 'cuda:7' is not available"):
        predict_paths(TinyNet(), PREPROCESSING, images[:2], device="cuda:7", workers=0)


def test_an_evaluation_says_what_it_evaluated(images):
    items = [ImageItem(p, i % 3, p) for i, p in enumerate(images)]
    e = evaluate(TinyNet(), PREPROCESSING, ["a", "b", "c"], items, split="test folder images",
                 workers=0)
    assert e.split == "test folder images"
    assert e.true.tolist() == [i % 3 for i in range(7)]


def test_an_evaluation_keeps_each_images_label_when_a_path_is_listed_twice(images):
    items = [ImageItem(images[0], 0, "a"), ImageItem(images[1], 1, "b"),
             ImageItem(images[0], 2, "c")]
    e = evaluate(TinyNet(), PREPROCESSING, ["a", "b", "c"], items, workers=0, batch_size=2)
    assert e.paths == [images[0], images[1], images[0]] and e.true.tolist() == [0, 1, 2]


# -- a saved run: evaluate_run, predict_files ------------------------------------------------

@pytest.fixture(scope="module")
def saved_run(tmp_path_factory):
    """A tiny trained run with a test folder (one epoch of ResNet-18 at 32 px)."""
    from tlgui.core.data import scan
    from tlgui.core.sample import ensure_sample_data
    from tlgui.core.training import TrainConfig, Trainer

    root = tmp_path_factory.mktemp("speedpath")
    data = ensure_sample_data(root / "shapes", images_per_class=4)
    test = ensure_sample_data(root / "test", images_per_class=2, seed=5)
    config = TrainConfig(model="resnet18", weights="none", image_size=32, epochs=1, hidden=8,
                         workers=0, compare_dropout=False)
    Trainer(config, scan([str(data)], test_folder=str(test)), root / "run").run()
    return root / "run", data, test


def test_evaluate_run_labels_the_result_with_the_images_it_evaluated(saved_run):
    from tlgui.core.evaluation import SPLIT_LABELS, evaluate_run

    run, _, _ = saved_run
    checkpoint = run / "model" / "best.pt"
    seen = []
    tested = evaluate_run(checkpoint, "test", device="cpu", batch_size=3, workers=0,
                          progress=lambda done, total: seen.append((done, total)))
    assert tested.split == SPLIT_LABELS["test"] == "test folder images"
    assert len(tested.paths) == 8 and seen[-1] == (8, 8)
    summary = json.loads((run / "summary.json").read_text())
    assert tested.accuracy == pytest.approx(summary["runs"]["model"]["test_acc"])
    validation = evaluate_run(checkpoint, "val", workers=0)
    assert validation.split == SPLIT_LABELS["val"] == "validation images"


def test_evaluate_run_reports_and_cancels_its_checking_of_the_images(saved_run):
    """Before the first batch the run's images are checked and decoded again (minutes at
    100,000 images): each stage is named, reports progress and can be cancelled."""
    from tlgui.core.control import Cancelled, RunControl
    from tlgui.core.evaluation import EVALUATION_STAGES, evaluate_run

    run, _, _ = saved_run
    checkpoint = run / "model" / "best.pt"
    events = []
    evaluate_run(checkpoint, "test", workers=0, stage=lambda name: events.append(name),
                 progress=lambda done, total: events.append((done, total)))
    stages = [e for e in events if isinstance(e, str)]
    assert stages == list(EVALUATION_STAGES)
    for name in stages:  # each stage reports progress, up to its total
        after = events[events.index(name) + 1:]
        counts = after[:next((i for i, e in enumerate(after) if isinstance(e, str)), None)]
        assert counts and counts[-1][0] == counts[-1][1] > 0

    control = RunControl()

    def stop_while_checking(done, total):
        control.stop()

    with pytest.raises(Cancelled):
        evaluate_run(checkpoint, "val", workers=0, progress=stop_while_checking,
                     stage=lambda name: events.append(name) if name != "evaluating" else
                     pytest.fail("the evaluation started after a cancel"), cancel=control)


def test_predictions_are_arrays_and_give_the_rows_and_csv_on_demand(saved_run, tmp_path):
    from tlgui.core.models import load_trained
    from tlgui.core.predictions import Predictions, predict_files, rows_csv

    run, data, _ = saved_run
    checkpoint = run / "model" / "best.pt"
    files = sorted(str(p) for p in (data / "star").glob("*.jpg"))[:3]
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"")
    result = predict_files(checkpoint, [*files, str(bad)], device="cpu", batch_size=2,
                           workers=0)
    assert isinstance(result, Predictions)
    assert result.paths == files and [p for p, _ in result.unreadable] == [str(bad)]
    assert result.predicted.dtype.kind == "i" and result.confidence.dtype == np.float32
    net, ckpt = load_trained(checkpoint)
    calibration = ckpt["calibration"]  # fitted on the validation images as training ended
    assert calibration["images"] > 0 and result.threshold == calibration["threshold"]
    # The same batches as above: a different batch size may change the last bits.
    _, probs, _ = predict_paths(net, PREPROCESSING.from_dict(ckpt["preprocessing"]), files,
                                batch_size=2, workers=0,
                                temperature=calibration["temperature"])
    assert result.predicted.tolist() == probs.argmax(1).tolist()
    classes = ckpt["classes"]
    best = [classes[int(row.argmax())] for row in probs]
    sure = [float(row.max()) >= calibration["threshold"] for row in probs]
    expected_rows = [(p, name if ok else f"not sure ({name}?)", float(row.max()))
                     for p, name, ok, row in zip(files, best, sure, probs)]
    assert len(result) == 3 and list(result) == expected_rows and result[1] == expected_rows[1]
    assert result.predicted_names().tolist() == best
    assert rows_csv(result).splitlines()[1:] == [
        f"{p},{name if ok else 'not sure'},{c:.4f},{name}"
        for (p, _, c), name, ok in zip(expected_rows, best, sure)]
