"""Evaluation numbers against cases worked out by hand: uneven, asymmetric confusion matrices
(precision differs from recall), a class never predicted, a class without images, a model that
predicts one class, ties among mistakes, and the predictions of a model whose answer is known."""

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from tlgui.core.data import DatasetError, ImageItem
from tlgui.core.evaluation import (
    UNDEFINED,
    UNDEFINED_NOTE,
    Evaluation,
    class_metrics,
    confusion_matrix,
    decimal_text,
    evaluate,
    find_checkpoint,
    image_files,
    matrix_texts,
    normalise_rows,
    predict_paths,
    share_text,
)
from tlgui.core.preprocess import Preprocessing

#: Rows are true classes a, b, c, d; columns the predicted ones. ``c`` is never predicted,
#: ``d`` has no images but is predicted once, and no row equals its column.
UNEVEN = [[3, 1, 0, 1],
          [2, 4, 0, 0],
          [1, 2, 0, 0],
          [0, 0, 0, 0]]


def pairs_of(matrix, seed=0):
    """(true, predicted) label arrays that add up to ``matrix``, in a shuffled order."""
    pairs = [(t, p) for t, row in enumerate(matrix) for p, n in enumerate(row) for _ in range(n)]
    order = np.random.default_rng(seed).permutation(len(pairs))
    true, pred = zip(*(pairs[i] for i in order))
    return np.array(true), np.array(pred)


def test_confusion_matrix_rows_are_true_classes_and_columns_predicted():
    true, pred = pairs_of(UNEVEN)
    cm = confusion_matrix(true, pred, 4)
    assert cm.tolist() == UNEVEN
    assert cm[0, 1] == 1 and cm[1, 0] == 2  # one a taken for b, two b taken for a
    assert confusion_matrix(np.array([2]), np.array([0]), 3).tolist() == [[0, 0, 0], [0, 0, 0],
                                                                           [1, 0, 0]]


def test_precision_recall_and_f1_of_an_uneven_matrix():
    m = class_metrics(np.array(UNEVEN))
    # a: 3 right of 6 predicted as a, 3 found of 5 images
    assert (m[0].precision, m[0].recall, m[0].f1) == pytest.approx((3 / 6, 3 / 5, 6 / 11))
    # b: 4 right of 7 predicted as b, 4 found of 6 images
    assert (m[1].precision, m[1].recall, m[1].f1) == pytest.approx((4 / 7, 4 / 6, 8 / 13))
    # c is never predicted: no precision; none of its 3 images found
    assert (m[2].precision, m[2].recall, m[2].f1) == (None, 0.0, 0.0)
    # d has no images: no recall; its one prediction is wrong
    assert (m[3].precision, m[3].recall, m[3].f1) == (0.0, None, 0.0)
    assert [x.support for x in m] == [5, 6, 3, 0]
    assert [x.predicted for x in m] == [6, 7, 0, 1]
    assert [x.note() for x in m] == [None, None, "never predicted, so precision is undefined",
                                     "no images of this class, so recall is undefined"]


def test_f1_is_the_harmonic_mean_where_precision_and_recall_are_defined():
    for metric in class_metrics(np.array([[5, 2, 1], [0, 3, 4], [2, 0, 1]])):
        p, r = metric.precision, metric.recall
        assert metric.f1 == pytest.approx(2 * p * r / (p + r) if p + r else 0.0)


def test_a_class_without_images_that_is_never_predicted_has_no_metrics():
    m = class_metrics(np.array([[2, 1, 0], [1, 1, 0], [0, 0, 0]]))
    assert (m[2].precision, m[2].recall, m[2].f1, m[2].support) == (None, None, None, 0)
    assert m[2].note() == "no images of this class, and none predicted as it"


def test_a_model_that_predicts_one_class():
    e = Evaluation(["a", "b", "c"], [f"p{i}" for i in range(6)], np.array([0, 1, 1, 1, 1, 2]),
                   np.full(6, 1), np.full(6, 0.8))
    assert e.accuracy == pytest.approx(4 / 6)
    m = e.metrics()
    assert [x.precision for x in m] == pytest.approx([None, 4 / 6, None])
    assert [x.recall for x in m] == [0.0, 1.0, 0.0]
    assert [x.f1 for x in m] == pytest.approx([0.0, 0.8, 0.0])
    assert e.matrix().tolist() == [[0, 1, 0], [0, 4, 0], [0, 1, 0]]
    assert e.mistakes() == [0, 5]


def test_accuracy_is_the_diagonal_share():
    true, pred = pairs_of([[5, 2, 1], [0, 3, 4], [2, 0, 2]], seed=3)
    e = Evaluation(list("abc"), [str(i) for i in range(len(true))], true, pred,
                   np.linspace(0.3, 0.9, len(true)))
    assert e.accuracy == pytest.approx(10 / 19)
    assert len(e.mistakes()) == 9
    assert Evaluation(["a", "b"], [], np.zeros(0, int), np.zeros(0, int), np.zeros(0)
                      ).accuracy is None


def test_row_percentages_and_how_the_matrix_is_shown():
    cm = np.array(UNEVEN)
    assert np.allclose(normalise_rows(cm), [[0.6, 0.2, 0, 0.2], [1 / 3, 2 / 3, 0, 0],
                                            [1 / 3, 2 / 3, 0, 0], [0, 0, 0, 0]])
    assert matrix_texts(cm) == [["3", "1", "0", "1"], ["2", "4", "0", "0"],
                                ["1", "2", "0", "0"], ["0", "0", "0", "0"]]
    assert matrix_texts(cm, percent=True) == [["60%", "20%", "0%", "20%"],
                                              ["33%", "67%", "0%", "0%"],
                                              ["33%", "67%", "0%", "0%"],
                                              [UNDEFINED] * 4]
    assert (share_text(4 / 7), share_text(None), share_text(0.5, 0)) == ("57.1%", UNDEFINED,
                                                                         "50%")
    # a class with a single image is a row like any other
    assert np.allclose(normalise_rows(np.array([[1, 0], [1, 2]])), [[1, 0], [1 / 3, 2 / 3]])


def test_cells_list_true_row_and_predicted_column():
    e = Evaluation(["a", "b", "c"], [f"p{i}" for i in range(7)],
                   np.array([0, 1, 0, 1, 2, 1, 0]), np.array([1, 0, 1, 1, 0, 0, 0]),
                   np.full(7, 0.5))
    assert e.cell(0, 1) == [0, 2]  # true a, predicted b
    assert e.cell(1, 0) == [1, 5]  # true b, predicted a
    assert e.cell(2, 0) == [4] and e.cell(0, 2) == []
    assert e.cell(1, 1) == [3] and e.cell(0, 0) == [6]


def test_mistakes_most_confident_first_ties_in_order_and_right_answers_left_out():
    confidence = np.array([0.99, 0.7, 0.95, 0.7, 0.6, 0.8])
    e = Evaluation(["a", "b"], [f"p{i}" for i in range(6)], np.array([0, 0, 1, 1, 0, 1]),
                   np.array([0, 1, 0, 0, 1, 1]), confidence)
    assert e.mistakes() == [2, 1, 3, 4]  # 0.95, then the two at 0.7 as listed, then 0.6


class ChannelModel(torch.nn.Module):
    """Predicts the brightest colour channel: red, green or blue, with a known confidence."""

    def forward(self, x):
        return x.mean(dim=(2, 3)) * 4.0


COLOURS = {"red": (200, 0, 0), "green": (0, 200, 0), "blue": (0, 0, 200)}


@pytest.fixture
def coloured_images(tmp_path):
    """Five 32 px images: (path, colour) in this order, and one unreadable file."""
    made = []
    for i, colour in enumerate(["red", "green", "blue", "green", "red"]):
        path = tmp_path / f"{i}.png"
        Image.new("RGB", (32, 32), COLOURS[colour]).save(path)
        made.append((str(path), colour))
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"")
    return made, str(broken)


IDENTITY = Preprocessing(32, 32, (0.0, 0.0, 0.0), (1.0, 1.0, 1.0))


def test_predict_paths_keeps_the_order_across_batches_and_reports_unreadable(coloured_images):
    made, broken = coloured_images
    paths = [made[0][0], made[1][0], broken, made[2][0], made[3][0], made[4][0]]
    seen = []
    kept, probs, failed = predict_paths(ChannelModel(), IDENTITY, paths, batch_size=2,
                                        progress=lambda done, total: seen.append((done, total)))
    assert kept == [p for p, _ in made]
    assert [path for path, _ in failed] == [broken] and "empty" in failed[0][1]
    assert probs.shape == (5, 3)
    assert probs.sum(1) == pytest.approx(np.ones(5))
    assert probs.argmax(1).tolist() == [0, 1, 2, 1, 0]
    # logits (200/255)·4 for the lit channel and 0 for the others
    lit = np.exp(200 / 255 * 4)
    assert probs.max(1) == pytest.approx(np.full(5, lit / (lit + 2)), rel=1e-4)
    assert seen[-1] == (6, 6) and all(done <= total == 6 for done, total in seen)


def test_evaluate_compares_predictions_with_labels(coloured_images):
    made, broken = coloured_images
    label = {"red": 0, "green": 1, "blue": 2}
    # the third image is labelled green although it is blue: one known mistake
    items = [ImageItem(p, label[c] if i != 2 else 1, p) for i, (p, c) in enumerate(made)]
    items.insert(1, ImageItem(broken, 0, broken))
    e = evaluate(ChannelModel(), IDENTITY, ["red", "green", "blue"], items, batch_size=4)
    assert e.paths == [p for p, _ in made]
    assert e.true.tolist() == [0, 1, 1, 1, 0] and e.pred.tolist() == [0, 1, 2, 1, 0]
    assert [path for path, _ in e.unreadable] == [broken]
    assert e.accuracy == pytest.approx(4 / 5)
    assert e.mistakes() == [2]
    assert e.matrix().tolist() == [[2, 0, 0], [0, 2, 1], [0, 0, 0]]
    lit = np.exp(200 / 255 * 4)
    assert e.confidence == pytest.approx(np.full(5, lit / (lit + 2)), rel=1e-4)


def test_evaluate_with_nothing_readable(coloured_images):
    _, broken = coloured_images
    e = evaluate(ChannelModel(), IDENTITY, ["red", "green", "blue"], [ImageItem(broken, 0, "x")])
    assert e.paths == [] and e.accuracy is None and e.mistakes() == []
    assert (len(e.true), len(e.pred), len(e.confidence)) == (0, 0, 0)
    assert e.true.dtype.kind == "i" and e.pred.dtype.kind == "i"
    assert [path for path, _ in e.unreadable] == [broken]
    assert e.matrix().tolist() == [[0] * 3] * 3


def test_the_command_lines_matrix_keeps_rows_true_and_columns_predicted():
    from tlgui.cli_runs import matrix_text

    lines = matrix_text(["a", "b", "c", "d"], np.array(UNEVEN)).splitlines()
    assert lines[0].split()[-4:] == ["a", "b", "c", "d"]
    assert [line.split() for line in lines[1:]] == [["a", "3", "1", "0", "1"],
                                                   ["b", "2", "4", "0", "0"],
                                                   ["c", "1", "2", "0", "0"],
                                                   ["d", "0", "0", "0", "0"]]
    percent = matrix_text(["a", "b", "c", "d"], np.array(UNEVEN), percent=True).splitlines()
    assert percent[1].split() == ["a", "60%", "20%", "0%", "20%"]
    assert percent[4].split() == ["d"] + [UNDEFINED] * 4


def test_a_run_with_a_class_renamed_and_one_left_out_is_evaluated_on_its_own_images(tmp_path):
    """The run's folders are only the classes it kept, under their new names; the test folder
    still has the class left out, which must be ignored, not refused."""
    from tlgui.core.data import scan, split
    from tlgui.core.evaluation import run_data
    from tlgui.core.models import load_trained
    from tlgui.core.sample import ensure_sample_data
    from tlgui.core.training import TrainConfig, Trainer

    data = ensure_sample_data(tmp_path / "shapes", images_per_class=5)
    test = ensure_sample_data(tmp_path / "test", images_per_class=2, seed=5)
    # "circle" becomes "ring", "square" takes the name "circle" and is left out
    report = scan([str(data)], test_folder=str(test)).renamed(
        ["ring", "circle", "star", "triangle"]).without_classes(["circle"])
    config = TrainConfig(model="resnet18", weights="none", image_size=32, epochs=1, hidden=8,
                         workers=0, compare_dropout=False)
    Trainer(config, report, tmp_path / "run").run()

    classes, val, test_items = run_data(tmp_path / "run")
    assert classes == ["ring", "star", "triangle"]
    expected_val = split(report.items, config.val_fraction, config.seed).val
    assert [(it.path, it.label) for it in val] == [(it.path, it.label) for it in expected_val]
    assert {(it.path, it.label, it.key) for it in test_items} == {
        (it.path, it.label, it.key) for it in report.test_items}
    assert {os.path.basename(os.path.dirname(it.path)) for it in test_items if it.label == 0} == {
        "circle"}  # the folder of the class now called "ring"
    assert not any("/square/" in it.path for it in test_items)
    net, ckpt = load_trained(tmp_path / "run" / "model" / "best.pt")
    tested = evaluate(net, Preprocessing.from_dict(ckpt["preprocessing"]), classes, test_items)
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert tested.accuracy == pytest.approx(summary["runs"]["model"]["test_acc"])


def test_counts_are_integers_and_f1_is_shown_with_two_decimals():
    cm = confusion_matrix(np.array([0, 1, 1]), np.array([0, 0, 1]), 2)
    assert cm.dtype.kind == "i"  # shown as "3", never "3.0"
    assert (decimal_text(8 / 13), decimal_text(0.0), decimal_text(None)) == ("0.62", "0.00",
                                                                             UNDEFINED)
    assert decimal_text(2 / 3, 1) == "0.7"


def test_many_equally_confident_mistakes_keep_their_order():
    # enough ties that an unstable sort would reorder them
    n = 60
    true = np.zeros(n, int)
    pred = np.where(np.arange(n) % 4 == 0, 0, 1)  # every fourth image right
    confidence = np.array([[0.5, 0.9, 0.7][i % 3] for i in range(n)])
    e = Evaluation(["a", "b"], [str(i) for i in range(n)], true, pred, confidence)
    wrong = [i for i in range(n) if i % 4]
    expected = ([i for i in wrong if confidence[i] == 0.9] + [i for i in wrong
                                                              if confidence[i] == 0.7]
                + [i for i in wrong if confidence[i] == 0.5])
    assert e.mistakes() == expected


def test_find_checkpoint_picks_the_named_or_the_best_run(tmp_path):
    for run in ("a_run", "b_run", "c_run"):
        (tmp_path / run).mkdir()
        (tmp_path / run / "best.pt").write_bytes(b"")
    (tmp_path / "notes").mkdir()  # a folder without best.pt is no run
    # b_run is best; c_run is missing from the summary (counted as 0)
    (tmp_path / "summary.json").write_text(json.dumps(
        {"runs": {"a_run": {"best_val_acc": 0.5}, "b_run": {"best_val_acc": 0.9}}}))
    assert find_checkpoint(tmp_path) == tmp_path / "b_run" / "best.pt"
    assert find_checkpoint(tmp_path, "c_run") == tmp_path / "c_run" / "best.pt"
    assert find_checkpoint(tmp_path / "a_run") == tmp_path / "a_run" / "best.pt"
    assert find_checkpoint(tmp_path / "a_run" / "best.pt") == tmp_path / "a_run" / "best.pt"
    with pytest.raises(DatasetError, match=r"no run 'notes' \(runs: a_run, b_run, c_run\)"):
        find_checkpoint(tmp_path, "notes")
    (tmp_path / "summary.json").unlink()  # without a summary: the first by name
    assert find_checkpoint(tmp_path) == tmp_path / "a_run" / "best.pt"
    with pytest.raises(DatasetError, match="notes: holds no trained model"):
        find_checkpoint(tmp_path / "notes")


def test_image_files_walks_folders_and_lists_each_file_once(tmp_path):
    folder = tmp_path / "photos"
    (folder / "sub").mkdir(parents=True)
    for name in ("b.png", "a.jpg", "sub/c.png", ".hidden.png", "Thumbs.db"):
        (folder / name).write_bytes(b"x")
    os.symlink(folder / "a.jpg", folder / "sub" / "link-to-a.jpg")  # the same file again
    single = tmp_path / "single.png"
    single.write_bytes(b"x")
    found = image_files([str(single), str(folder)])
    assert found[0] == str(single)
    names = sorted(os.path.relpath(p, folder) for p in found[1:])
    assert len(names) == 3 and "b.png" in names
    assert ("a.jpg" in names) != ("sub/link-to-a.jpg" in names)  # one path for the one file
    assert "sub/c.png" in names


def test_evaluate_passes_progress_and_cancel_on(coloured_images):
    from tlgui.core.control import Cancelled

    made, _ = coloured_images
    items = [ImageItem(p, 0, p) for p, _ in made]
    seen = []
    evaluate(ChannelModel(), IDENTITY, ["red", "green", "blue"], items, batch_size=2,
             progress=lambda done, total: seen.append((done, total)))
    assert seen and seen[-1] == (5, 5)

    class Stop:
        def is_set(self):
            return True

    with pytest.raises(Cancelled):
        evaluate(ChannelModel(), IDENTITY, ["red", "green", "blue"], items, cancel=Stop())


def write_run(run_dir, folders, classes, test_folder=None, val_fraction=0.5, seed=1):
    """The two files of a run folder that say which images it used (as training writes them)."""
    run_dir.mkdir()
    (run_dir / "config.json").write_text(json.dumps({
        "data": [str(f) for f in folders], "test_folder": test_folder and str(test_folder),
        "val_fraction": val_fraction, "seed": seed}))
    (run_dir / "classes.json").write_text(json.dumps({"classes": classes}))


def tiny_images(folder, n, colour):
    folder.mkdir(parents=True)
    for i in range(n):
        Image.new("RGB", (32, 32), (colour, 10 * i, 0)).save(folder / f"{i}.png")


def test_run_data_rebuilds_the_split_and_the_test_images_of_the_kept_classes(tmp_path):
    from tlgui.core.data import scan, split
    from tlgui.core.evaluation import run_data

    for k, (name, n) in enumerate({"ant": 4, "bee": 6, "cow": 3}.items()):
        tiny_images(tmp_path / "data" / name, n, 40 * k)
        tiny_images(tmp_path / "test" / name, k + 1, 40 * k)
    kept = [tmp_path / "data" / "bee", tmp_path / "data" / "cow"]  # ant was left out
    write_run(tmp_path / "run", kept, ["wasp", "ox"], tmp_path / "test")
    classes, val, test = run_data(tmp_path / "run")
    assert classes == ["wasp", "ox"]
    expected = split(scan([str(f) for f in kept]).items, 0.5, 1).val
    assert [(it.path, it.label, it.key) for it in val] == [
        (it.path, it.label, it.key) for it in expected]
    assert sorted((os.path.relpath(it.path, tmp_path / "test"), it.label, it.key)
                  for it in test) == [("bee/0.png", 0, "bee/0.png"), ("bee/1.png", 0, "bee/1.png"),
                                      ("cow/0.png", 1, "cow/0.png"), ("cow/1.png", 1, "cow/1.png"),
                                      ("cow/2.png", 1, "cow/2.png")]


def test_run_data_with_no_test_images_or_no_test_folder(tmp_path):
    from tlgui.core.evaluation import run_data

    for name in ("ant", "bee"):
        tiny_images(tmp_path / "data" / name, 3, 90)
    folders = [tmp_path / "data" / "ant", tmp_path / "data" / "bee"]
    empty = tmp_path / "empty_test"
    (empty / ".thumbnails").mkdir(parents=True)  # hidden folders and loose files are no class
    (empty / "notes.txt").write_text("nothing here")
    write_run(tmp_path / "run", folders, ["ant", "bee"], empty)
    assert run_data(tmp_path / "run")[2] == []
    write_run(tmp_path / "run2", folders, ["ant", "bee"])
    assert run_data(tmp_path / "run2")[2] is None
    gone = [tmp_path / "data" / "gone", tmp_path / "data" / "lost"]
    write_run(tmp_path / "run3", [*folders, *gone], ["ant", "bee", "gone", "lost"])
    with pytest.raises(DatasetError, match="data/gone: the run's image folder is gone"):
        run_data(tmp_path / "run3")


def test_run_data_refuses_a_run_whose_files_disagree(tmp_path):
    from tlgui.core.evaluation import run_data

    for name in ("ant", "bee"):
        tiny_images(tmp_path / "data" / name, 3, 90)
    folders = [tmp_path / "data" / "ant", tmp_path / "data" / "bee"]
    write_run(tmp_path / "run", folders, ["ant", "bee", "cow"])
    with pytest.raises(DatasetError, match="names 3 classes but has 2 class folders"):
        run_data(tmp_path / "run")
    write_run(tmp_path / "run2", folders[:1], ["ant"])
    with pytest.raises(DatasetError, match="at least two class folders, this one 1"):
        run_data(tmp_path / "run2")
    write_run(tmp_path / "run3", folders, ["ant", "bee"], tmp_path / "moved_test")
    assert run_data(tmp_path / "run3")[2] is None  # the test folder is gone: no test images


def test_the_evaluate_command_prints_undefined_figures_as_such(coloured_images, monkeypatch,
                                                                capsys):
    """A model that never says blue, on images with no blue one labelled blue: blue has no
    precision and no recall, and the command says why rather than printing 0 %."""
    import tlgui.core.evaluation as evaluation
    import tlgui.core.models as models
    from tlgui.cli import main

    made, _ = coloured_images
    label = {"red": 0, "green": 1}
    items = [ImageItem(p, label[c], p) for p, c in made if c != "blue"]
    monkeypatch.setattr(evaluation, "find_checkpoint",
                        lambda path, run=None: Path(path) / "model" / "best.pt")
    monkeypatch.setattr(models, "load_trained",
                        lambda path: (ChannelModel(), {"preprocessing": IDENTITY.to_dict()}))
    monkeypatch.setattr(evaluation, "run_data",
                        lambda run_dir, **kwargs: (["red", "green", "blue"], items, None))
    assert main(["evaluate", "somewhere"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].endswith("val accuracy 100.0% on 4 images")
    assert [line.split() for line in lines[2:5]] == [["red", "2", "0", "0"],
                                                     ["green", "0", "2", "0"],
                                                     ["blue", "0", "0", "0"]]
    assert lines[6].split() == ["class", "precision", "recall", "F1", "images"]
    assert [line.split() for line in lines[7:10]] == [
        ["red", "100.0%", "100.0%", "1.00", "2"], ["green", "100.0%", "100.0%", "1.00", "2"],
        ["blue", UNDEFINED, UNDEFINED, UNDEFINED, "0"]]
    assert lines[10] == UNDEFINED_NOTE


def test_run_data_keeps_a_training_image_out_of_the_test_as_the_scan_does(tmp_path):
    """A test image that is also a training image (here a hard link) is kept out of the test
    by the scan the training used; the rebuilt test images must leave it out too, or the test
    accuracy of ``tlgui evaluate`` differs from the training's."""
    from tlgui.core.data import scan
    from tlgui.core.evaluation import run_data

    for k, name in enumerate(("a", "b")):
        tiny_images(tmp_path / "data" / name, 3, 90 * k)
        tiny_images(tmp_path / "test" / name, 2, 90 * k + 20)
    os.link(tmp_path / "data" / "a" / "0.png", tmp_path / "test" / "a" / "dup.png")
    trained = scan([str(tmp_path / "data")], test_folder=str(tmp_path / "test"))
    write_run(tmp_path / "run", [tmp_path / "data" / "a", tmp_path / "data" / "b"], ["a", "b"],
              tmp_path / "test")
    test = run_data(tmp_path / "run")[2]
    assert sorted((it.path, it.label, it.key) for it in test) == sorted(
        (it.path, it.label, it.key) for it in trained.test_items)
    assert len(test) == 4 and not any(it.path.endswith("dup.png") for it in test)


def test_run_data_keeps_each_class_its_label_when_a_class_folder_has_emptied(tmp_path):
    """A class whose folder has no usable image any more is left out by the scan; the other
    classes' images keep the labels the run gave them, not the next class's."""
    from tlgui.core.evaluation import run_data

    for k, name in enumerate(("ant", "bee", "cow")):
        tiny_images(tmp_path / "data" / name, 2, 40 * k)
        tiny_images(tmp_path / "test" / name, 1, 40 * k)
    for path in (tmp_path / "data" / "bee").iterdir():
        path.unlink()
    folders = [tmp_path / "data" / name for name in ("ant", "bee", "cow")]
    write_run(tmp_path / "run", folders, ["ant", "bee", "cow"], tmp_path / "test")
    classes, val, test = run_data(tmp_path / "run")
    assert classes == ["ant", "bee", "cow"]
    folder_of = {it.path: os.path.basename(os.path.dirname(it.path)) for it in val + test}
    assert {(folder_of[it.path], classes[it.label]) for it in val + test} == {
        ("ant", "ant"), ("cow", "cow")}


def test_evaluation_items_say_whether_the_test_folder_is_gone_or_never_was(tmp_path):
    from tlgui.core.evaluation import evaluation_items, run_data

    for name in ("ant", "bee"):
        tiny_images(tmp_path / "data" / name, 3, 90)
        tiny_images(tmp_path / "test" / name, 1, 90)
    folders = [tmp_path / "data" / "ant", tmp_path / "data" / "bee"]
    write_run(tmp_path / "run", folders, ["ant", "bee"], tmp_path / "test")
    classes, test = evaluation_items(tmp_path / "run", "test")
    assert classes == ["ant", "bee"] and sorted(it.label for it in test) == [0, 1]
    val = run_data(tmp_path / "run")[1]
    assert evaluation_items(tmp_path / "run", "val")[1] == val and val
    write_run(tmp_path / "moved", folders, ["ant", "bee"], tmp_path / "elsewhere")
    assert evaluation_items(tmp_path / "moved", "val")[1] == val  # validation still works
    with pytest.raises(DatasetError, match="elsewhere: the run's test folder is gone"):
        evaluation_items(tmp_path / "moved", "test")
    write_run(tmp_path / "plain", folders, ["ant", "bee"])
    with pytest.raises(DatasetError, match="plain: the run was trained without a test folder"):
        evaluation_items(tmp_path / "plain", "test")
