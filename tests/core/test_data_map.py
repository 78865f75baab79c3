"""The map of the data: deterministic for a seed, classes that separate in the features
separate on the map, the PNG from the command line with a fine-tuned model's map beside."""

import numpy as np
import pytest

from tlgui.core.data_map import class_separation, draw_map, map_coordinates, model_mistakes


def clusters(per_class=25, dims=12, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((3, dims)) * 5
    vectors = np.concatenate([c + rng.standard_normal((per_class, dims)) for c in centres])
    return vectors, np.repeat(np.arange(3), per_class)


@pytest.mark.parametrize("method", ["pca", "tsne"])
def test_the_map_is_deterministic_for_a_seed_and_separates_clusters(method):
    vectors, labels = clusters()
    a = map_coordinates(vectors, method, seed=3)
    b = map_coordinates(vectors, method, seed=3)
    np.testing.assert_array_equal(a, b)
    assert a.shape == (75, 2) and np.abs(a).max() == pytest.approx(1.0)
    assert class_separation(a, labels) > 0.95


def test_mixed_classes_do_not_separate():
    rng = np.random.default_rng(1)
    vectors = rng.standard_normal((90, 8))
    labels = np.repeat(np.arange(3), 30)
    assert class_separation(map_coordinates(vectors, "pca"), labels) < 0.6


def test_tiny_and_unknown_inputs():
    assert map_coordinates(np.zeros((0, 4))).shape == (0, 2)
    assert map_coordinates(np.ones((1, 4))).tolist() == [[0.0, 0.0]]
    assert map_coordinates(np.eye(2, 4)).shape == (2, 2)
    assert class_separation(np.zeros((1, 2)), np.zeros(1)) is None
    with pytest.raises(ValueError, match="unknown map method"):
        map_coordinates(np.eye(4), "umap")


def test_draw_map_rings_marked_points():
    vectors, labels = clusters(per_class=5)
    points = map_coordinates(vectors, "pca")
    plain = np.asarray(draw_map(points, labels, ["a", "b", "c"], "title"))
    ringed = np.asarray(draw_map(points, labels, ["a", "b", "c"], "title", marked=[0]))
    assert plain.shape == ringed.shape == (680, 820, 3)
    assert (plain != ringed).any()


def test_model_mistakes_match_classes_by_name():
    classes = ["cat", "dog", "owl"]
    labels = np.array([0, 0, 1, 1, 2])
    # The model knows dog and cat, in the other order, and not owl.
    model_classes = ["dog", "cat"]
    assert model_mistakes(labels, classes, model_classes, np.array([1, 1, 0, 0, 0])).tolist() \
        == []  # every known image right; the owl is nobody's mistake
    assert model_mistakes(labels, classes, model_classes, np.array([0, 1, 1, 0, 1])).tolist() \
        == [0, 2]
    # A model that predicts one class: every image of the other classes is wrong.
    assert model_mistakes(labels, classes, ["cat", "dog", "owl"],
                          np.zeros(5, np.int64)).tolist() == [2, 3, 4]
    assert model_mistakes(np.zeros(0, np.int64), classes, classes, np.zeros(0)).tolist() == []


def test_draw_map_crosses_points():
    vectors, labels = clusters(per_class=5)
    points = map_coordinates(vectors, "pca")
    plain = np.asarray(draw_map(points, labels, ["a", "b", "c"], "title"))
    crossed = np.asarray(draw_map(points, labels, ["a", "b", "c"], "title", crossed=[3]))
    assert (plain != crossed).any()


def test_inspect_map_command_draws_before_and_after(tmp_path, capsys):
    from PIL import Image

    from tlgui.cli import main
    from tlgui.core.data import scan
    from tlgui.core.training import TrainConfig, Trainer

    rng = np.random.default_rng(0)
    root = tmp_path / "data"
    for name, rgb in {"red": (220, 30, 30), "blue": (30, 40, 220)}.items():
        (root / name).mkdir(parents=True)
        for i in range(10):
            pixels = np.clip(np.array(rgb) + rng.integers(-40, 40, (40, 40, 3)), 0, 255)
            Image.fromarray(pixels.astype(np.uint8)).save(root / name / f"{i}.png")
    config = TrainConfig(model="resnet18", weights="none", image_size=32, epochs=1,
                         batch_size=8, hidden=0, workers=0, strategy="full")
    Trainer(config, scan([str(root)]), tmp_path / "run").run()
    out = tmp_path / "map.png"
    code = main(["inspect", "map", str(root), "--model", "resnet18", "--weights", "none",
                 "--image-size", "32", "--device", "cpu", "--method", "pca",
                 "--after", str(tmp_path / "run" / "model"), "--out", str(out)])
    assert code == 0
    printed = capsys.readouterr().out
    assert "resnet18 (none weights): 20 images, pca" in printed
    assert "fine-tuned: model, epoch 1: 20 images" in printed
    with Image.open(out) as image:
        assert image.size == (2 * 820, 680)

    # The mistakes marked on the fine-tuned map are the model's own: its head on the stored
    # features predicts what the whole model predicts from the images.
    from tlgui.core.data_map import data_maps
    from tlgui.core.evaluation import predict_paths
    from tlgui.core.models import load_trained

    data = scan([str(root)])
    checkpoint = str(tmp_path / "run" / "model" / "best.pt")
    maps = data_maps([it.path for it in data.items], [it.label for it in data.items],
                     data.classes, "resnet18", "none", 32, checkpoint=checkpoint, device="cpu")
    model, info = load_trained(checkpoint)
    kept, probabilities, _ = predict_paths(model, load_preprocessing(info), maps[1].paths,
                                           device="cpu", workers=0)
    assert kept == maps[1].paths
    truth = np.array([info["classes"].index(data.classes[k]) for k in maps[1].labels])
    wrong = np.flatnonzero(probabilities.argmax(1) != truth)
    top2 = np.sort(probabilities, 1)[:, -2:]
    clear = top2[:, 1] - top2[:, 0] > 1e-2  # float16 storage may flip a near tie only
    assert set(maps[1].mistakes[clear[maps[1].mistakes]]) == set(wrong[clear[wrong]])
    assert len(maps[0].mistakes) == 0
    assert f"{len(maps[1].mistakes)} mistakes" in printed


def load_preprocessing(info):
    from tlgui.core.preprocess import Preprocessing

    return Preprocessing.from_dict(info["preprocessing"])
