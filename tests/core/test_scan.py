"""Scanning image folders: formats, modes, junk, every kind of bad file, and folder layouts."""

import hashlib
import io
import os
import stat

import numpy as np
import pytest
from PIL import Image

from tlgui.core.data import DatasetError, scan
from tlgui.core.images import ImageLoadError, load_rgb, probe_image


def rgb(size=(40, 30), colour=(200, 30, 30)):
    return Image.new("RGB", size, colour)


def save(im, path, fmt=None, **kw):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    im.save(path, format=fmt, **kw)
    return path


def jpeg_bytes(im=None, **kw):
    buf = io.BytesIO()
    (im or rgb()).save(buf, "JPEG", **kw)
    return buf.getvalue()


@pytest.fixture
def messy(tmp_path):
    """A root with two classes holding good images of many kinds and every kind of bad file."""
    root = tmp_path / "data"
    cats, dogs = root / "cats", root / "dogs"
    good = {
        save(rgb(), str(cats / "a.jpg")),
        save(rgb(), str(cats / "b.png")),
        save(rgb().convert("P"), str(cats / "c.gif")),
        save(rgb(), str(cats / "d.bmp")),
        save(rgb(), str(cats / "e.tiff")),
        save(rgb(), str(cats / "f.webp")),
        save(rgb(), str(cats / "png_named.jpg"), fmt="PNG"),  # content, not extension
        save(rgb(), str(cats / "no_extension"), fmt="JPEG"),
        save(rgb().convert("L"), str(cats / "gray.png")),
        save(rgb().convert("CMYK"), str(cats / "cmyk.jpg")),
        save(Image.new("RGBA", (40, 30), (0, 0, 255, 0)), str(cats / "alpha.png")),
        save(Image.fromarray(np.full((30, 40), 60000, np.uint16)), str(cats / "deep16.png")),
        save(rgb(), str(cats / "nested" / "deeper" / "g.jpg")),
        save(rgb(), str(dogs / "h.jpg")),
        save(rgb(), str(dogs / "i.jpg")),
    }
    # OS junk: skipped silently.
    (cats / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")
    (cats / "Thumbs.db").write_bytes(b"junk")
    (cats / "._a.jpg").write_bytes(b"\0\5\26\7resource fork")
    save(rgb(), str(cats / ".hidden.png"))
    # Bad files: reported with a reason.
    bad = {}
    (dogs / "empty.jpg").write_bytes(b"")
    bad["empty.jpg"] = "empty"
    data = jpeg_bytes(rgb((200, 200)))
    (dogs / "truncated.jpg").write_bytes(data[: len(data) // 2])
    bad["truncated.jpg"] = "truncated"
    buf = io.BytesIO()
    rgb((200, 200)).save(buf, "PNG")
    (dogs / "truncated.png").write_bytes(buf.getvalue()[:-40])
    bad["truncated.png"] = "truncated"
    noise = np.random.default_rng(0).bytes(2000)  # fixed: random bytes can read as a cut file
    (dogs / "corrupt.jpg").write_bytes(data[:200] + noise + b"\xff\xd9")
    bad["corrupt.jpg"] = "corrupt"
    (dogs / "notes.txt").write_text("not a picture")
    bad["notes.txt"] = "not an image"
    save(rgb((8, 8)), str(dogs / "tiny.png"))
    bad["tiny.png"] = "too small"
    # A real decompression bomb: 10,000 × 10,000 pixels in a few kilobytes.
    save(Image.new("1", (10_000, 10_000)), str(dogs / "bomb.png"))
    bad["bomb.png"] = "decompression bomb"
    os.symlink(dogs / "missing.jpg", dogs / "dangling.jpg")
    bad["dangling.jpg"] = "broken link"
    # A symlink cycle inside a class folder: skipped and reported.
    os.symlink(cats, cats / "nested" / "loop")
    bad["loop"] = "link back to a parent folder"
    return root, good, bad


def test_scan_keeps_every_good_image_and_reports_every_bad_one(messy):
    root, good, bad = messy
    report = scan([str(root)])
    assert report.classes == ["cats", "dogs"]
    assert {it.path for it in report.items} == good
    reasons = {os.path.basename(s.path): s.reason for s in report.skipped}
    assert set(reasons) == set(bad), reasons
    for name, word in bad.items():
        assert word in reasons[name], (name, reasons[name])
    assert report.counts() == [13, 2]
    assert report.problems() == []


def test_images_in_nested_folders_belong_to_the_class(messy):
    root, _, _ = messy
    report = scan([str(root)])
    nested = [it for it in report.items if "deeper" in it.path]
    assert len(nested) == 1 and report.classes[nested[0].label] == "cats"
    assert nested[0].key == "cats/nested/deeper/g.jpg"


def test_scan_never_changes_the_data_folder(messy):
    root, _, _ = messy

    def snapshot():
        state = {}
        for dirpath, dirnames, filenames in os.walk(root):
            for name in dirnames + filenames:
                p = os.path.join(dirpath, name)
                st = os.lstat(p)
                digest = None
                if stat.S_ISREG(st.st_mode):
                    digest = hashlib.sha1(open(p, "rb").read()).hexdigest()
                state[p] = (st.st_mode, st.st_size, st.st_mtime_ns, digest)
        return state

    before = snapshot()
    for dirpath, _, filenames in os.walk(root):  # read-only, as a user's archive may be
        for name in filenames:
            p = os.path.join(dirpath, name)
            if not os.path.islink(p):
                os.chmod(p, 0o444)
    before = snapshot()
    scan([str(root)])
    assert snapshot() == before


def test_unreadable_file_is_reported(tmp_path, monkeypatch):
    save(rgb(), str(tmp_path / "a" / "ok.jpg"))
    secret = save(rgb(), str(tmp_path / "a" / "secret.jpg"))
    save(rgb(), str(tmp_path / "b" / "ok.jpg"))
    real_open = Image.open

    def guarded(path, *args, **kwargs):
        if str(path) == secret:
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(Image, "open", guarded)
    report = scan([str(tmp_path)])
    assert [(os.path.basename(s.path), s.reason) for s in report.skipped] == [
        ("secret.jpg", "cannot read (permission denied)")
    ]


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_file_without_read_permission_is_reported(tmp_path):
    save(rgb(), str(tmp_path / "a" / "ok.jpg"))
    p = save(rgb(), str(tmp_path / "a" / "secret.jpg"))
    save(rgb(), str(tmp_path / "b" / "ok.jpg"))
    os.chmod(p, 0)
    report = scan([str(tmp_path)])
    assert "permission denied" in report.skipped[0].reason


def test_several_folders_are_one_class_each(tmp_path):
    save(rgb(), str(tmp_path / "x" / "roses" / "1.jpg"))
    save(rgb(), str(tmp_path / "y" / "tulips" / "sub" / "2.jpg"))
    report = scan([str(tmp_path / "x" / "roses"), str(tmp_path / "y" / "tulips")])
    assert report.classes == ["roses", "tulips"]
    assert report.counts() == [1, 1]


def test_test_folder_maps_classes_by_name(tmp_path):
    for c in ("a", "b"):
        save(rgb(), str(tmp_path / "train" / c / "1.jpg"))
    save(rgb(), str(tmp_path / "test" / "b" / "1.jpg"))
    report = scan([str(tmp_path / "train")], test_folder=str(tmp_path / "test"))
    assert [report.classes[it.label] for it in report.test_items] == ["b"]
    save(rgb(), str(tmp_path / "test" / "zebra" / "1.jpg"))
    with pytest.raises(DatasetError, match="class 'zebra' that the training data lacks"):
        scan([str(tmp_path / "train")], test_folder=str(tmp_path / "test"))


@pytest.mark.parametrize(
    "layout, message",
    [
        ({"only/1.jpg": True}, "at least two classes"),
        ({"a/1.jpg": True, "b/bad.txt": False}, "at least two classes are needed, found only 'a'"),
    ],
)
def test_untrainable_data_is_a_clear_error(tmp_path, layout, message):
    for rel, ok in layout.items():
        p = tmp_path / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        if ok:
            rgb().save(p)
        else:
            p.write_text("text")
    report = scan([str(tmp_path)])
    with pytest.raises(DatasetError, match=message):
        report.require_trainable()


def two_classes(root, a=3, b=2):
    for i in range(a):
        save(rgb(), str(root / "a" / f"{i}.png"))
    for i in range(b):
        save(rgb(), str(root / "b" / f"{i}.png"))


def reasons_by_name(report):
    return {os.path.basename(s.path): s.reason for s in report.skipped}


@pytest.mark.parametrize("target", ["root", "above the root", "class folder"])
def test_a_link_back_to_a_parent_folder_is_skipped_and_reported(tmp_path, target):
    root = tmp_path / "data"
    two_classes(root)
    to = {"root": root, "above the root": tmp_path, "class folder": root / "a"}[target]
    os.symlink(to, root / "a" / "up")
    report = scan([str(root)])
    assert report.classes == ["a", "b"]
    assert report.counts() == [3, 2]  # b's images are not counted as a's
    assert all(report.classes[it.label] == os.path.basename(os.path.dirname(it.path))
               for it in report.items)
    assert reasons_by_name(report) == {"up": "link back to a parent folder"}


def test_a_class_folder_that_links_back_to_the_root_is_not_a_class(tmp_path):
    root = tmp_path / "data"
    two_classes(root)
    os.symlink(root, root / "everything")
    report = scan([str(root)])
    assert report.classes == ["a", "b"]
    assert report.counts() == [3, 2]
    assert reasons_by_name(report) == {"everything": "link back to a parent folder"}


def test_a_link_back_to_the_folder_of_one_class_among_several_is_skipped(tmp_path):
    two_classes(tmp_path)
    os.symlink(tmp_path, tmp_path / "b" / "loop")
    report = scan([str(tmp_path / "a"), str(tmp_path / "b")])
    assert report.counts() == [3, 2]
    assert reasons_by_name(report) == {"loop": "link back to a parent folder"}


def test_a_file_reachable_from_two_classes_is_kept_out_of_both(tmp_path):
    two_classes(tmp_path, a=3, b=3)
    os.symlink(tmp_path / "a" / "0.png", tmp_path / "b" / "linked.png")
    os.link(tmp_path / "a" / "1.png", tmp_path / "b" / "hard.png")
    report = scan([str(tmp_path)])
    kept = {os.path.relpath(it.path, tmp_path) for it in report.items}
    assert kept == {"a/2.png", "b/0.png", "b/1.png", "b/2.png"}
    reasons = {os.path.relpath(s.path, tmp_path): s.reason for s in report.skipped}
    assert reasons == {p: "the same file is in two classes: 'a' and 'b'"
                       for p in ("a/0.png", "b/linked.png", "a/1.png", "b/hard.png")}


def test_a_link_to_another_class_folder_makes_its_files_conflicts(tmp_path):
    two_classes(tmp_path, a=2, b=2)
    save(rgb(), str(tmp_path / "c" / "0.png"))
    os.symlink(tmp_path / "b", tmp_path / "a" / "b_too")
    report = scan([str(tmp_path)])
    assert report.classes == ["a", "c"]  # b has nothing left of its own
    assert report.counts() == [2, 1]
    reasons = {os.path.relpath(s.path, tmp_path): s.reason for s in report.skipped}
    assert reasons["b"] == "no usable image — left out"
    assert reasons["a/b_too/0.png"] == reasons["b/0.png"] == (
        "the same file is in two classes: 'a' and 'b'")


def test_the_same_file_twice_in_one_class_counts_once(tmp_path):
    two_classes(tmp_path)
    os.symlink(tmp_path / "a" / "0.png", tmp_path / "a" / "again.png")
    save(rgb(), str(tmp_path / "a" / "sub" / "x.png"))
    os.symlink(tmp_path / "a" / "sub", tmp_path / "a" / "alias")
    report = scan([str(tmp_path)])
    assert report.counts() == [4, 2]
    assert report.skipped == []
    assert "a/sub/x.png" in {it.key for it in report.items}  # its own path, not the link's


def test_an_empty_class_folder_is_listed_and_left_out(tmp_path):
    two_classes(tmp_path)
    (tmp_path / "empty").mkdir()
    (tmp_path / "texts").mkdir()
    (tmp_path / "texts" / "notes.txt").write_text("no picture")
    report = scan([str(tmp_path)])
    assert report.classes == ["a", "b"]
    assert report.class_folders == [str(tmp_path / "a"), str(tmp_path / "b")]
    assert report.counts() == [3, 2]
    assert report.problems() == []
    reasons = {os.path.relpath(s.path, tmp_path): s.reason for s in report.skipped}
    assert reasons == {"empty": "no usable image — left out",
                       "texts": "no usable image — left out",
                       "texts/notes.txt": "not an image (no known image format)"}


def test_a_test_image_that_is_also_a_training_image_is_kept_out_of_the_test(tmp_path):
    two_classes(tmp_path / "train")
    save(rgb(), str(tmp_path / "test" / "a" / "new.png"))
    os.symlink(tmp_path / "train" / "a" / "0.png", tmp_path / "test" / "a" / "seen.png")
    report = scan([str(tmp_path / "train")], test_folder=str(tmp_path / "test"))
    assert [os.path.basename(it.path) for it in report.test_items] == ["new.png"]
    assert report.counts() == [3, 2]  # the training keeps it
    reasons = {os.path.relpath(s.path, tmp_path): s.reason for s in report.skipped}
    assert reasons == {"test/a/seen.png": "also a training image (a test image must be new "
                                          "to the model)"}


def test_a_test_folder_class_that_was_left_out_is_reported(tmp_path):
    two_classes(tmp_path / "train")
    (tmp_path / "train" / "empty").mkdir()
    for c in ("a", "empty"):
        save(rgb(), str(tmp_path / "test" / c / "1.png"))
    report = scan([str(tmp_path / "train")], test_folder=str(tmp_path / "test"))
    assert [report.classes[it.label] for it in report.test_items] == ["a"]
    reasons = {os.path.relpath(s.path, tmp_path): s.reason for s in report.skipped}
    assert reasons["test/empty/1.png"] == "its class 'empty' is left out (no usable image)"


def test_every_problem_is_reported_at_once(tmp_path):
    from tlgui.core.data import ImageItem, ScanReport

    report = ScanReport(["a", "b"], ["/d/a", "/d/b"], [ImageItem("/d/a/1.png", 0, "a/1.png")])
    assert report.problems() == ["class 'b' has no usable image (/d/b)"]
    lonely = ScanReport(["b"], ["/d/b"], [])
    assert len(lonely.problems()) == 2
    with pytest.raises(DatasetError) as info:
        lonely.require_trainable()
    assert str(info.value) == "; ".join(lonely.problems())


def test_folder_errors_name_the_folder(tmp_path):
    with pytest.raises(DatasetError, match="no such folder"):
        scan([str(tmp_path / "nope")])
    save(rgb(), str(tmp_path / "flat" / "1.jpg"))
    with pytest.raises(DatasetError, match="has no class sub-folders"):
        scan([str(tmp_path / "flat")])
    save(rgb(), str(tmp_path / "p" / "cats" / "1.jpg"))
    save(rgb(), str(tmp_path / "q" / "cats" / "1.jpg"))
    with pytest.raises(DatasetError, match="share the name 'cats'"):
        scan([str(tmp_path / "p" / "cats"), str(tmp_path / "q" / "cats")])


def test_loose_files_in_the_root_are_reported(tmp_path):
    save(rgb(), str(tmp_path / "a" / "1.jpg"))
    save(rgb(), str(tmp_path / "b" / "1.jpg"))
    save(rgb(), str(tmp_path / "stray.jpg"))
    report = scan([str(tmp_path)])
    assert [s.reason for s in report.skipped] == ["not inside a class folder"]


def test_imbalance_warning(tmp_path):
    for i in range(9):
        save(rgb(), str(tmp_path / "many" / f"{i}.jpg"))
    for i in range(2):
        save(rgb(), str(tmp_path / "few" / f"{i}.jpg"))
    report = scan([str(tmp_path)])
    assert "imbalanced" in report.imbalance_warning()
    assert "'few' only 2" in report.imbalance_warning()
    save(rgb(), str(tmp_path / "few" / "2.jpg"))
    save(rgb(), str(tmp_path / "few" / "3.jpg"))
    assert scan([str(tmp_path)]).imbalance_warning() is None


def test_without_classes_renumbers_and_keeps_folders(tmp_path):
    for c in ("a", "b", "c"):
        save(rgb(), str(tmp_path / c / "1.jpg"))
    report = scan([str(tmp_path)]).without_classes(["b"])
    assert report.classes == ["a", "c"]
    assert sorted(it.label for it in report.items) == [0, 1]
    assert (tmp_path / "b" / "1.jpg").exists()


def test_probe_limits_are_configurable(tmp_path):
    p = save(rgb((100, 100)), str(tmp_path / "x.png"))
    assert probe_image(p).ok
    assert "decompression bomb" in probe_image(p, max_pixels=5000).reason
    assert "too small" in probe_image(p, min_side=200).reason


# -- loading ---------------------------------------------------------------------------------

def test_load_applies_exif_orientation(tmp_path):
    im = rgb((40, 20))
    exif = im.getexif()
    exif[0x0112] = 6  # rotate 90° clockwise to view
    p = save(im, str(tmp_path / "rotated.jpg"), exif=exif)
    assert load_rgb(p).size == (20, 40)


@pytest.mark.parametrize("mode", ["L", "P", "CMYK", "RGBA", "LA", "I;16", "I", "F", "1"])
def test_every_mode_loads_as_rgb(tmp_path, mode):
    if mode == "I;16":
        im = Image.fromarray(np.full((20, 20), 65535, np.uint16))
        path = save(im, str(tmp_path / "x.png"))
        loaded = load_rgb(path)
        assert loaded.getpixel((0, 0)) == (255, 255, 255)  # scaled, not clipped garbage
    else:
        im = rgb((20, 20)).convert(mode)
        fmt = "TIFF"
        path = save(im, str(tmp_path / "x.tif"), fmt=fmt)
        loaded = load_rgb(path)
    assert loaded.mode == "RGB" and loaded.size == (20, 20)


def test_transparent_pixels_become_white(tmp_path):
    p = save(Image.new("RGBA", (20, 20), (0, 0, 0, 0)), str(tmp_path / "clear.png"))
    assert load_rgb(p).getpixel((5, 5)) == (255, 255, 255)


def test_draft_decoding_keeps_enough_pixels(tmp_path):
    p = save(rgb((800, 600)), str(tmp_path / "big.jpg"))
    small = load_rgb(p, draft_size=100)
    assert min(small.size) >= 100 and small.size[0] < 800


def test_load_error_names_the_file(tmp_path):
    p = tmp_path / "broken.jpg"
    data = jpeg_bytes(rgb((300, 300)))
    p.write_bytes(data[: len(data) // 3])
    with pytest.raises(ImageLoadError) as info:
        load_rgb(str(p))
    assert str(p) in str(info.value) and "truncated" in str(info.value)


def scanned_paths(monkeypatch):
    """Every path the scan probes or decodes, in a list that fills as it happens."""
    from tlgui.core import data

    seen = []
    probe, decode = data.probe_image, data.decode_problem
    monkeypatch.setattr(data, "probe_image",
                        lambda p, *a, **kw: seen.append(p) or probe(p, *a, **kw))
    monkeypatch.setattr(data, "decode_problem", lambda p: seen.append(p) or decode(p))
    return seen


def test_adding_a_test_folder_scans_only_it_and_matches_a_full_scan(tmp_path, monkeypatch):
    from tlgui.core.data import with_test_folder

    two_classes(tmp_path / "train")
    (tmp_path / "train" / "empty").mkdir()
    save(rgb(), str(tmp_path / "test" / "a" / "new.png"))
    save(rgb(), str(tmp_path / "test" / "b" / "new.png"))
    save(rgb(), str(tmp_path / "test" / "empty" / "orphan.png"))
    (tmp_path / "test" / "b" / "notes.txt").write_text("no picture")
    os.symlink(tmp_path / "train" / "a" / "0.png", tmp_path / "test" / "a" / "seen.png")
    full = scan([str(tmp_path / "train")], test_folder=str(tmp_path / "test"))
    base = scan([str(tmp_path / "train")])
    seen = scanned_paths(monkeypatch)
    added = with_test_folder(base, str(tmp_path / "test"))
    assert seen and all(p.startswith(str(tmp_path / "test")) for p in seen)
    assert added.items is base.items  # the training images are not scanned again
    assert added.test_items == full.test_items
    assert added.test_folder == full.test_folder
    assert sorted(map(repr, added.skipped)) == sorted(map(repr, full.skipped))
    assert (added.classes, added.class_folders) == (full.classes, full.class_folders)


def test_a_test_folder_replaces_the_previous_one_and_keeps_full_decoding(tmp_path):
    from tests.core.test_damaged_images import damage_png
    from tlgui.core.data import verify_images, with_test_folder

    two_classes(tmp_path / "train")
    save(rgb(), str(tmp_path / "old" / "a" / "1.png"))
    save(Image.fromarray(np.random.default_rng(0).integers(0, 255, (40, 40, 3), np.uint8)),
         str(tmp_path / "new" / "b" / "damaged.png"))
    damage_png(tmp_path / "new" / "b" / "damaged.png")
    save(rgb(), str(tmp_path / "new" / "b" / "fine.png"))
    report = verify_images(scan([str(tmp_path / "train")], test_folder=str(tmp_path / "old")))
    report = report.renamed(["ants", "bees"])  # classes match by folder, not by shown name
    added = with_test_folder(report, str(tmp_path / "new"))
    assert added.verified
    assert added.classes == ["ants", "bees"]
    assert [(os.path.relpath(it.path, tmp_path), it.label) for it in added.test_items] == [
        ("new/b/fine.png", 1)]
    reasons = {os.path.relpath(s.path, tmp_path): s.reason for s in added.skipped}
    assert list(reasons) == ["new/b/damaged.png"]  # nothing of the old test folder is left
    assert reasons["new/b/damaged.png"].startswith("cannot decode")


def test_a_test_folder_with_an_unknown_class_is_refused_in_one_line(tmp_path):
    from tlgui.core.data import with_test_folder

    two_classes(tmp_path / "train")
    save(rgb(), str(tmp_path / "test" / "zebra" / "1.png"))
    report = scan([str(tmp_path / "train")])
    with pytest.raises(DatasetError, match="class 'zebra' that the training data lacks"):
        with_test_folder(report, str(tmp_path / "test"))
    ignored = with_test_folder(report, str(tmp_path / "test"), other_test_classes=True)
    assert ignored.test_items == []


def test_worker_processes_find_what_threads_find(messy, monkeypatch):
    """Many files are checked in worker processes (the window's process keeps its interpreter
    lock); the report is the same, every bad file with the same reason, in the same order."""
    import tlgui.core.data as data
    from tlgui.core.data import verify_images

    root, _, _ = messy
    threaded = verify_images(scan([str(root)]))
    monkeypatch.setattr(data, "PROCESS_MIN_FILES", 1)
    monkeypatch.setattr(data, "CHUNK_FILES", 3)  # several jobs, returned out of order maybe
    processed = verify_images(scan([str(root)]))
    assert processed.items == threaded.items
    assert processed.skipped == threaded.skipped


def test_a_cancel_stops_the_worker_processes_job_by_job(tmp_path, monkeypatch):
    import time

    import tlgui.core.data as data
    from tlgui.core.control import Cancelled, RunControl

    for i in range(40):
        save(rgb(), str(tmp_path / ("a" if i % 2 else "b") / f"{i}.png"))
    monkeypatch.setattr(data, "PROCESS_MIN_FILES", 1)
    monkeypatch.setattr(data, "CHUNK_FILES", 2)
    control, seen = RunControl(), []

    def progress(done, total):
        seen.append(done)
        if done >= 4:
            control.stop()

    started = time.monotonic()
    with pytest.raises(Cancelled):
        scan([str(tmp_path)], progress=progress, cancel=control)
    assert time.monotonic() - started < 60
    assert max(seen) < 40  # it stopped before the end


def _slow_check(path):
    import time

    time.sleep(0.3)  # longer than the loop's wait for a job between two looks at cancel
    return path.upper()


def test_a_job_slower_than_the_wait_between_looks_at_cancel_is_waited_for():
    from tlgui.core.data import _run_all

    assert _run_all(_slow_check, ["a", "b"], None, threads=1, processes=False) == ["A", "B"]
