"""The data step with awkward folders: images damaged mid-data, empty classes, links back to
a parent folder, and every problem shown at once."""

import os

import numpy as np
from PIL import Image

from tests.core.test_damaged_images import damage_png


def make(root, counts):
    rng = np.random.default_rng(0)
    for name, n in counts.items():
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            pixels = rng.integers(0, 255, (40, 40, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(root / name / f"{i}.png")
    return root


def wait_for_scan(qtbot, window):
    qtbot.waitUntil(lambda: not window.dataset_pane.scanner.is_running(), timeout=30_000)


def left_out(pane):
    return {pane.skipped.item(row, 0).text(): pane.skipped.item(row, 1).text()
            for row in range(pane.skipped.rowCount())}


def test_images_damaged_mid_data_are_found_after_the_quick_scan(make_window, qtbot, tmp_path):
    window = make_window()
    data = make(tmp_path / "data", {"a": 4, "b": 3, "c": 1})
    damage_png(data / "a" / "1.png")
    damage_png(data / "c" / "0.png")  # c's only image
    pane = window.dataset_pane
    seen = []
    pane.dataset_changed.connect(lambda: seen.append(pane.dataset().counts()))
    pane.load_folders([str(data)])
    wait_for_scan(qtbot, window)
    assert seen[0] == [4, 3, 1]  # the quick scan is shown at once
    assert pane.dataset().classes == ["a", "b"]
    assert pane.dataset().counts() == [3, 3]
    assert [pane.classes.item(r, 1).text() for r in range(pane.classes.rowCount())] == ["3", "3"]
    reasons = left_out(pane)
    assert reasons[str(data / "a" / "1.png")].startswith("cannot decode")
    assert reasons[str(data / "c" / "0.png")].startswith("cannot decode")
    assert reasons[str(data / "c")] == "no usable image — left out"
    assert pane.problems() == []


def test_renames_made_during_the_full_check_survive_it(make_window, qtbot, tmp_path):
    window = make_window()
    data = make(tmp_path / "data", {"a": 3, "b": 3, "c": 1})
    damage_png(data / "c" / "0.png")
    pane = window.dataset_pane

    def rename_once_shown():
        if pane.report is not None and not pane.report.verified and pane.names[1] == "b":
            pane.classes.item(1, 0).setText("bees")

    pane.dataset_changed.connect(rename_once_shown)
    pane.load_folders([str(data)])
    wait_for_scan(qtbot, window)
    assert pane.dataset().classes == ["a", "bees"]


def test_a_link_back_to_the_root_does_not_steal_another_class(make_window, qtbot, tmp_path):
    window = make_window()
    data = make(tmp_path / "data", {"a": 3, "b": 2})
    os.symlink(data, data / "a" / "up")
    window.dataset_pane.load_folders([str(data)])
    wait_for_scan(qtbot, window)
    assert window.dataset_pane.dataset().counts() == [3, 2]
    assert left_out(window.dataset_pane) == {str(data / "a" / "up"):
                                             "link back to a parent folder"}


def test_every_problem_is_shown_at_once(make_window, qtbot, tmp_path):
    window = make_window()  # ImageNet weights are not cached in the tests: one problem
    data = make(tmp_path / "data", {"a": 3})
    (data / "empty").mkdir()
    window.dataset_pane.load_folders([str(data)])
    wait_for_scan(qtbot, window)
    assert left_out(window.dataset_pane) == {str(data / "empty"): "no usable image — left out"}
    shown = window.training_pane.problem.text().splitlines()
    assert len(shown) == 2
    assert shown[0].startswith("At least two classes are needed, found only 'a'")
    assert "not cached" in shown[1]
