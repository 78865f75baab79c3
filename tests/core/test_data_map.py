"""The map of the data: deterministic for a seed, classes that separate in the features
separate on the map, the PNG from the command line with a fine-tuned model's map beside."""

import numpy as np
import pytest

from tlgui.core.data_map import class_separation, draw_map, map_coordinates


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
    assert "fine-tuned: model: 20 images" in printed
    with Image.open(out) as image:
        assert image.size == (2 * 820, 680)
