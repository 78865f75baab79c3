"""The train/validation split: exact per class, seeded, deterministic, stable as files are added."""

import math
import shutil

import pytest
from PIL import Image

from tlgui.core.data import DatasetError, ImageItem, scan, split, validation_count


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


def test_a_class_of_two_keeps_one_image_on_each_side_whatever_the_fraction():
    # 0.9 × 2 rounds to 2 and 0.99 × 10 to 10: the cap leaves one image for training
    assert validation_count(2, 0.9) == 1
    assert validation_count(3, 0.9) == 2
    assert validation_count(10, 0.99) == 9
    assert validation_count(1, 0.9) == 0
    items = [ImageItem(f"/x/a/{i}", 0, f"a/{i}.png") for i in range(2)]
    s = split(items, 0.9)
    assert len(s.train) == 1 and len(s.val) == 1


def test_the_split_of_known_files_is_pinned():
    """Same files, same split on any machine and in any later version (resume relies on it):
    the images that rank first by SHA-1 of "seed NUL path" are held out, in that order."""
    items = [ImageItem(f"/x/{k}", 0, k) for k in ("a/1.jpg", "a/2.jpg", "a/3.jpg", "a/4.jpg",
                                                  "a/5.jpg")]
    assert [it.key for it in split(items, 0.4, seed=0).val] == ["a/1.jpg", "a/4.jpg"]
    assert [it.key for it in split(items, 0.4, seed=1).val] == ["a/3.jpg", "a/1.jpg"]
    # the defaults: seed 0 and a fifth for validation
    assert [it.key for it in split(items).val] == [it.key for it in split(items, 0.2, 0).val]
    assert len(split(items).val) == 1
    # training keeps the rest in rank order too
    assert [it.key for it in split(items, 0.4, seed=0).train] == ["a/3.jpg", "a/5.jpg",
                                                                  "a/2.jpg"]


def test_a_fraction_outside_zero_to_one_is_refused():
    items = [ImageItem(f"/x/a/{i}", 0, f"a/{i}.png") for i in range(4)]
    for fraction in (1.0, -0.1, 1.5):
        with pytest.raises(DatasetError, match="validation fraction must be in"):
            split(items, fraction)


def test_split_sizes_are_the_split_without_hashing():
    from tlgui.core.data import split_sizes

    items = [ImageItem(f"/x/{c}/{i}", c, f"{c}/{i}.png") for c, n in enumerate((1, 2, 3, 7, 50))
             for i in range(n)]
    for fraction in (0.0, 0.05, 0.2, 0.35, 0.5):
        s = split(items, fraction, seed=3)
        sizes = [(sum(it.label == c for it in s.train), sum(it.label == c for it in s.val))
                 for c in range(5)]
        assert split_sizes([1, 2, 3, 7, 50], fraction) == sizes


def test_a_hundred_thousand_images_in_a_thousand_classes_split_and_edit():
    """The Data step's path at full scale: rename, leave classes out, split; behaviour only."""
    from tlgui.core.data import ScanReport, split_sizes

    n, classes = 100_000, 1000
    items = [ImageItem(f"/d/c{i % classes}/{i}.jpg", i % classes, f"c{i % classes}/{i}.jpg")
             for i in range(n)]
    report = ScanReport([f"c{c}" for c in range(classes)],
                        [f"/d/c{c}" for c in range(classes)], items)
    names = [f"class {c}" for c in range(classes)]
    renamed = report.renamed(names)
    assert renamed.items is report.items and renamed.classes == names
    kept = renamed.without_classes(["class 0", "class 500"])
    assert len(kept.classes) == classes - 2 and len(kept.items) == n - 200
    assert kept.counts() == [100] * (classes - 2)
    s = split(kept.items, 0.2, seed=7)
    assert len(s.val) == 20 * (classes - 2) and len(s.train) == 80 * (classes - 2)
    assert split_sizes(kept.counts(), 0.2) == [(80, 20)] * (classes - 2)
    assert {it.path for it in s.val}.isdisjoint(it.path for it in s.train)
    assert [kept.classes[it.label] for it in kept.items[:2]] == ["class 1", "class 2"]


def test_the_first_images_of_each_class_in_item_order():
    from tlgui.core.data import count_labels, first_of_each_class

    def items(labels):
        return [ImageItem(f"/x/{i}", label, f"{label}/{i}") for i, label in enumerate(labels)]

    grouped = items([0, 0, 0, 1, 2, 2])
    assert [[it.path for it in f] for f in first_of_each_class(grouped, [3, 1, 2], 2)] == [
        ["/x/0", "/x/1"], ["/x/3"], ["/x/4", "/x/5"]]
    # not grouped by class, though each block's ends look grouped
    mixed = items([0, 1, 0, 1, 0, 1])
    assert [[it.path for it in f] for f in first_of_each_class(mixed, [3, 3], 1)] == [
        ["/x/0"], ["/x/1"]]
    assert first_of_each_class(items([1, 1]), count_labels(items([1, 1]), 3), 8)[0] == []
