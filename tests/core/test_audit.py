"""The audit: planted wrong labels, planted duplicates and leaks, outliers, the threshold's
calibration, and the awkward cases (a class of one image, a set with no findings)."""

import csv
import io

import numpy as np
import pytest
from PIL import Image

from tlgui.core import audit
from tlgui.core.data import ImageItem

CLASSES = ["red", "green", "blue"]


def clusters(per_class=40, dims=16, seed=0, spread=0.3):
    """Three well-separated clusters of feature vectors and their labels."""
    rng = np.random.default_rng(seed)
    centres = np.eye(3, dims) * 4 + 1
    vectors = np.concatenate([centres[c] + spread * rng.standard_normal((per_class, dims))
                              for c in range(3)])
    labels = np.repeat(np.arange(3), per_class)
    return vectors, labels


def items_for(labels, tmp_path=None):
    items = []
    for i, label in enumerate(labels):
        path = str(tmp_path / f"{i:03d}.bin") if tmp_path else f"/x/{i:03d}.png"
        if tmp_path:
            with open(path, "wb") as f:
                f.write(i.to_bytes(4, "big") * 3)  # every file different
        items.append(ImageItem(path, int(label), f"{i:03d}"))
    return items


def test_planted_wrong_labels_are_found_first_with_the_right_suggestion():
    vectors, labels = clusters()
    planted = {5: 1, 50: 2, 100: 0}  # index -> the wrong label it is filed under
    true = labels.copy()
    for i, wrong in planted.items():
        labels[i] = wrong
    probabilities = audit.out_of_fold_probabilities(vectors, labels, 3)
    found = audit.mislabelled(probabilities, labels)
    top = {i: suggested for i, suggested, _ in found[:3]}
    assert top == {i: int(true[i]) for i in planted}
    scores = [score for _, _, score in found]
    assert scores == sorted(scores, reverse=True) and all(0 <= s <= 1 for s in scores)


def test_clean_clusters_have_nothing_mislabelled_and_an_accurate_classifier():
    vectors, labels = clusters(seed=1)
    probabilities = audit.out_of_fold_probabilities(vectors, labels, 3)
    assert (probabilities.argmax(1) == labels).mean() == 1.0
    assert audit.mislabelled(probabilities, labels) == []


def test_a_class_of_one_image_trains_no_classifier():
    vectors, labels = clusters(per_class=5)
    labels[-4:] = 1  # "blue" keeps one image
    assert audit.out_of_fold_probabilities(vectors, labels, 3) is None
    result = audit.audit_features(items_for(labels), ["train"] * len(labels), vectors,
                                  CLASSES, threshold=0.99)
    assert result.oof_accuracy is None
    assert "fewer than 2 images" in result.trust_line()
    assert result.counts()["mislabelled"] == 0


def test_the_confident_joint_uses_each_class_s_own_threshold():
    # Class 1's images get low probabilities for it (0.4 on average); an image of class 0
    # with 0.45 for class 1 and 0.55 for its own class is confidently class 1 by class 1's
    # standard only if class 0's own standard is higher than 0.55.
    p = np.array([[0.9, 0.1], [0.9, 0.1], [0.55, 0.45], [0.6, 0.4], [0.6, 0.4]])
    labels = np.array([0, 0, 0, 1, 1])
    # thresholds: class 0 = mean(0.9, 0.9, 0.55) = 0.783; class 1 = 0.4
    found = audit.mislabelled(p, labels)
    assert [(i, s) for i, s, _ in found] == [(2, 1)]
    assert found[0][2] == pytest.approx(0.45)  # 1 - its own class's 0.55


def test_exact_and_near_duplicates_and_leaks(tmp_path):
    vectors, labels = clusters(per_class=20)
    items = items_for(labels, tmp_path)
    where = ["train"] * 60
    # 3 is a byte-for-byte copy of 2 (both training images of class 0)
    (tmp_path / "003.bin").write_bytes((tmp_path / "002.bin").read_bytes())
    vectors[3] = vectors[2]
    # 30 is nearly 25, and 30 is a validation image: a leak
    vectors[30] = vectors[25] * 1.001
    where[30] = "val"
    # 45 (class 2) is nearly 10 (class 0): a duplicate across classes
    vectors[45] = vectors[10] + 0.001
    stages = []
    result = audit.audit_features(items, where, vectors, CLASSES, threshold=0.999,
                                  progress=lambda *call: stages.append(call))
    assert [name for name, done, total in stages if total == 0] == [
        "looking for files with the same bytes", "looking for near duplicates",
        "classifying each image with a model that never saw it (5 folds)",
        "looking for outliers"]
    assert ("looking for files with the same bytes", 60, 60) in stages  # all the same size
    assert ("looking for near duplicates", 60, 60) in stages
    by_path = {(f.path, f.issue): f for f in result.findings}
    exact = by_path[(items[3].path, "duplicate")]
    assert exact.score == 1.0 and "same bytes as" in exact.detail and exact.suggested == ""
    leak = by_path[(items[30].path, "leak")]
    assert items[25].path in leak.detail and "validation" in leak.detail
    across = by_path[(items[45].path, "duplicate")]
    assert across.label == "blue" and across.suggested == ""  # which is right is unknown
    assert "filed under 'red': one of the two labels is wrong" in across.detail
    duplicated = [f for f in result.findings if f.issue in ("duplicate", "leak")]
    assert len(duplicated) == 3  # each pair once; 2-3 not again as a near duplicate
    assert result.findings[0].issue == "leak"  # leaks are listed first


def test_an_image_far_from_every_class_is_an_outlier():
    vectors, labels = clusters(per_class=30)
    vectors[7] = -np.ones(16) * 5  # nothing like any class
    result = audit.audit_features(items_for(labels), ["train"] * 90, vectors, CLASSES,
                                  threshold=0.9999)
    outliers = [f for f in result.findings if f.issue == "outlier"]
    assert [f.path for f in outliers][:1] == ["/x/007.png"]
    assert outliers[0].score > audit.OUTLIER_Z


def test_calibrated_threshold():
    sims = np.linspace(0.95, 1.0, 101)
    assert audit.calibrated_threshold(sims) == pytest.approx(0.9525)
    assert audit.calibrated_threshold([0.5, 0.6, 0.7]) == audit.MIN_NEAR_DUPLICATE
    assert audit.calibrated_threshold([]) == 0.98
    assert audit.calibrated_threshold([1.0] * 10) == 0.999


def test_nearest_neighbours_in_blocks_match_the_whole_matrix(monkeypatch):
    monkeypatch.setattr(audit, "_BLOCK", 7)
    rng = np.random.default_rng(3)
    x = rng.standard_normal((30, 5))
    best, sim = audit.nearest_neighbours(x)
    c = x - x.mean(0)  # compared without what every image shares
    u = c / np.linalg.norm(c, axis=1, keepdims=True)
    full = u @ u.T
    np.fill_diagonal(full, -np.inf)
    assert best.tolist() == full.argmax(1).tolist()
    np.testing.assert_allclose(sim, full.max(1), rtol=1e-5)

    # Blocks are cut to hold a bounded number of similarities, and each one is reported.
    monkeypatch.setattr(audit, "_BLOCK", 2048)
    monkeypatch.setattr(audit, "_BLOCK_VALUES", 30 * 16)
    calls = []
    again, _ = audit.nearest_neighbours(x, progress=lambda d, t: calls.append((d, t)))
    assert again.tolist() == best.tolist()
    assert calls == [(0, 30), (16, 30), (30, 30)]


def test_csv_has_the_columns():
    vectors, labels = clusters(per_class=10)
    labels[0] = 2
    result = audit.audit_features(items_for(labels), ["train"] * 30, vectors, CLASSES, 0.999)
    rows = list(csv.DictReader(io.StringIO(result.csv_text())))
    assert list(rows[0]) == list(audit.CSV_COLUMNS)
    assert {r["issue"] for r in rows} <= set(audit.ISSUES)
    assert any(r["path"] == "/x/000.png" and r["suggested"] == "red" for r in rows)


def test_altered_copy_is_smaller_and_still_an_image():
    image = Image.new("RGB", (100, 80), (200, 30, 30))
    copy = audit.altered_copy(image)
    assert copy.mode == "RGB" and copy.size == (76, 60)


@pytest.fixture
def coloured(tmp_path):
    """Three colour classes of noisy images, random weights' easy case; planted: a green
    image in the red folder, and a red image copied into the validation part."""
    rng = np.random.default_rng(0)
    colours = {"red": (220, 30, 30), "green": (30, 200, 40), "blue": (30, 40, 220)}
    root = tmp_path / "data"
    for name, rgb in colours.items():
        (root / name).mkdir(parents=True)
        for i in range(12):
            noise = rng.integers(-40, 40, (40, 40, 3))
            pixels = np.clip(np.array(rgb) + noise, 0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(root / name / f"{name}{i:02d}.png")
    wrong = root / "red" / "zz_actually_green.png"
    (root / "green" / "green00.png").replace(wrong)
    return root, wrong


def test_audit_command_finds_the_planted_label_and_writes_the_csv(coloured, tmp_path, capsys):
    from tlgui.cli import main

    root, wrong = coloured
    # An exact copy of a red image under another name in the red folder.
    (root / "red" / "red00 copy.png").write_bytes((root / "red" / "red00.png").read_bytes())
    out = tmp_path / "findings.csv"
    code = main(["audit", str(root), "--model", "resnet18", "--weights", "none",
                 "--image-size", "32", "--device", "cpu", "--csv", str(out)])
    assert code == 0
    printed = capsys.readouterr().out
    assert "audited 37 images of 3 classes" in printed
    assert "never saw" in printed  # how far to trust it
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    assert list(rows[0]) == list(audit.CSV_COLUMNS)
    mislabelled = [r for r in rows if r["issue"] == "mislabelled"]
    assert mislabelled and mislabelled[0]["path"] == str(wrong)
    assert mislabelled[0]["label"] == "red" and mislabelled[0]["suggested"] == "green"
    copies = [r for r in rows if r["issue"] in ("duplicate", "leak")
              and "same bytes" in r["detail"]]
    assert len(copies) == 1 and "red00" in copies[0]["path"]
    # The second audit reads every feature from the store.
    assert main(["audit", str(root), "--model", "resnet18", "--weights", "none",
                 "--image-size", "32", "--device", "cpu"]) == 0
    from tlgui.core.feature_store import FeatureStore

    assert [k.images for k in FeatureStore().contents()] == [37]


def test_features_command_lists_and_clears_the_store(coloured, capsys):
    from tlgui.cli import main
    from tlgui.core.features import image_features

    root, _ = coloured
    paths = [str(p) for p in sorted(root.rglob("*.png"))]
    got = image_features(paths, "resnet18", "none", 32, "cpu", workers=0)
    assert got.valid.all() and got.computed == 36 and got.vectors.shape == (36, 512)
    again = image_features(paths, "resnet18", "none", 32, "cpu", workers=0)
    assert again.computed == 0
    np.testing.assert_array_equal(again.vectors, got.vectors)
    assert main(["features"]) == 0
    listed = capsys.readouterr().out
    assert "resnet18" in listed and "36" in listed and "32px" in listed
    assert main(["features", "--clear"]) == 0
    assert "cleared" in capsys.readouterr().out
    assert main(["features"]) == 0 and "empty" in capsys.readouterr().out


def test_a_classifier_no_better_than_a_guess_judges_no_image():
    rng = np.random.default_rng(5)
    vectors = rng.standard_normal((90, 16))  # features that say nothing about the class
    labels = np.repeat(np.arange(3), 30)
    result = audit.audit_features(items_for(labels), ["train"] * 90, vectors, CLASSES,
                                  threshold=None)
    assert result.oof_accuracy < 0.6
    assert result.counts()["mislabelled"] == 0
    assert any("no image is judged mislabelled" in n and "33 %" in n for n in result.notes)
    assert "trust is low" in result.trust_line()


def test_calibration_sits_above_every_copy_s_similarity_to_another_image():
    rng = np.random.default_rng(2)
    vectors = rng.standard_normal((40, 32))
    originals = list(range(10))
    copies = vectors[originals] + 0.05 * rng.standard_normal((10, 32))
    threshold, note = audit.calibrate(copies, originals, vectors)
    assert threshold is not None and "near duplicates: similarity of at least" in note
    x = audit.centred(vectors)
    c = audit.centred(copies, vectors.mean(0))
    others = c @ x.T
    others[np.arange(10), originals] = -np.inf
    assert threshold > others.max()
    # Copies no closer to their own image than to others: not looked for.
    threshold, note = audit.calibrate(rng.standard_normal((10, 32)), originals, vectors)
    assert threshold is None and "cannot tell a copy from a look-alike" in note


def test_only_mutual_nearest_neighbours_are_near_duplicates():
    # Directions in the plane: 0° has 8° as its nearest, but 8°'s nearest is 12°; the rest
    # are far away, around the circle (so the mean feature is near zero).
    angles = np.radians([0, 8, 12, 120, 150, 200, 240, 290, 330])
    vectors = np.stack([np.cos(angles), np.sin(angles)], axis=1)
    best, _ = audit.nearest_neighbours(vectors)
    assert best[:3].tolist() == [1, 2, 1]
    labels = np.zeros(9, int)
    result = audit.audit_features(items_for(labels), ["train"] * 9, vectors, ["a"],
                                  threshold=0.95)
    pairs = [f for f in result.findings if f.issue == "duplicate"]
    assert [(f.path, "/x/001.png" in f.detail) for f in pairs] == [("/x/002.png", True)]
