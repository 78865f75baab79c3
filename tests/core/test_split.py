"""The train/validation split: exact per class, seeded, deterministic, stable as files are added."""

import math
import shutil

from PIL import Image

from tlgui.core.data import ImageItem, scan, split


def make(root, counts):
    for name, n in counts.items():
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            p = root / name / f"{i:04d}.png"
            if not p.exists():
                Image.new("RGB", (20, 20), (i % 256, 0, 0)).save(p)


def sides(s):
    return {it.key: "train" for it in s.train} | {it.key: "val" for it in s.val}


def expected_val(n, fraction):
    """round(fraction × n), halves up, with one image on each side of a class of two or more;
    a class of one trains on it."""
    if n < 2:
        return 0
    return min(max(math.floor(fraction * n + 0.5 + 1e-9), 1), n - 1)


def test_split_is_exact_per_class(tmp_path):
    make(tmp_path, {"a": 60, "b": 60, "c": 60})
    s = split(scan([str(tmp_path)]).items, 0.2, seed=0)
    assert [sum(it.label == label for it in s.val) for label in range(3)] == [12, 12, 12]
    assert len(s.train) == 3 * 48


def test_every_class_size_gets_its_rounded_share(tmp_path):
    items = [ImageItem(f"/x/{label}/{i}", label, f"{label}/{i}.png")
             for label, n in enumerate(range(1, 41)) for i in range(n)]
    for fraction in (0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.5):
        for seed in (0, 7):
            s = split(items, fraction, seed)
            for label, n in enumerate(range(1, 41)):
                val = sum(it.label == label for it in s.val)
                assert val == expected_val(n, fraction), (fraction, seed, n, val)


def test_split_depends_on_files_not_on_where_they_live(tmp_path):
    make(tmp_path / "here", {"a": 30, "b": 30})
    shutil.copytree(tmp_path / "here", tmp_path / "there")
    one = sides(split(scan([str(tmp_path / "here")]).items, 0.25, seed=3))
    two = sides(split(scan([str(tmp_path / "there")]).items, 0.25, seed=3))
    assert one == two
    other_seed = sides(split(scan([str(tmp_path / "here")]).items, 0.25, seed=4))
    assert other_seed != one


def test_adding_a_file_moves_at_most_one_other_file():
    """The guarantee the README makes, checked one added file at a time from an empty class."""
    for fraction in (0.1, 0.2, 0.25, 0.5):
        for seed in range(3):
            keys = []
            before = {}
            for i in range(40):
                keys.append(f"a/{(i * 7919) % 1000:03d}.jpg")
                after = sides(split([ImageItem(k, 0, k) for k in keys], fraction, seed))
                moved = [k for k, side in before.items() if after[k] != side]
                assert len(moved) <= 1, (fraction, seed, len(keys), moved)
                before = after


def test_a_third_image_in_a_class_of_two_moves_at_most_one(tmp_path):
    make(tmp_path, {"a": 2, "b": 20})
    before = sides(split(scan([str(tmp_path)]).items, 0.2, seed=0))
    make(tmp_path, {"a": 3, "b": 20})
    after = sides(split(scan([str(tmp_path)]).items, 0.2, seed=0))
    assert sum(after[k] != side for k, side in before.items()) <= 1


def test_every_class_has_images_on_both_sides(tmp_path):
    make(tmp_path, {"a": 2, "b": 3, "c": 100})
    s = split(scan([str(tmp_path)]).items, 0.2, seed=0)
    for label in range(3):
        assert any(it.label == label for it in s.val)
        assert any(it.label == label for it in s.train)


def test_zero_fraction_puts_everything_in_training(tmp_path):
    make(tmp_path, {"a": 5, "b": 5})
    s = split(scan([str(tmp_path)]).items, 0.0)
    assert len(s.train) == 10 and s.val == []
