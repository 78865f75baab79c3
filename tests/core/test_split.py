"""The train/validation split: stratified, seeded, deterministic and stable as files are added."""

import shutil

from PIL import Image

from tlgui.core.data import scan, split


def make(root, counts):
    for name, n in counts.items():
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            p = root / name / f"{i:04d}.png"
            if not p.exists():
                Image.new("RGB", (20, 20), (i % 256, 0, 0)).save(p)


def sides(s):
    return {it.key: "train" for it in s.train} | {it.key: "val" for it in s.val}


def test_split_is_stratified(tmp_path):
    make(tmp_path, {"a": 200, "b": 50})
    s = split(scan([str(tmp_path)]).items, 0.2, seed=0)
    for label, n in ((0, 200), (1, 50)):
        val = sum(it.label == label for it in s.val)
        assert abs(val - 0.2 * n) <= 0.1 * n  # within half the expected count
    assert len(s.train) + len(s.val) == 250


def test_split_depends_on_files_not_on_where_they_live(tmp_path):
    make(tmp_path / "here", {"a": 30, "b": 30})
    shutil.copytree(tmp_path / "here", tmp_path / "there")
    one = sides(split(scan([str(tmp_path / "here")]).items, 0.25, seed=3))
    two = sides(split(scan([str(tmp_path / "there")]).items, 0.25, seed=3))
    assert one == two
    other_seed = sides(split(scan([str(tmp_path / "here")]).items, 0.25, seed=4))
    assert other_seed != one


def test_adding_files_leaves_existing_files_on_their_side(tmp_path):
    make(tmp_path, {"a": 40, "b": 40})
    before = sides(split(scan([str(tmp_path)]).items, 0.2, seed=0))
    make(tmp_path, {"a": 60, "b": 55, "c": 10})
    after = sides(split(scan([str(tmp_path)]).items, 0.2, seed=0))
    assert all(after[k] == side for k, side in before.items())


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
