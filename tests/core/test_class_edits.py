"""Renaming classes and leaving classes out: the right class goes, with its own images."""

import pytest

from tlgui.core.data import DatasetError, ImageItem, ScanReport, SkippedFile, split


def report():
    """Three classes with 2, 3 and 1 images and a test image each; the folders are named after
    the classes, the images after their folder."""
    folders = ["/data/cat", "/data/dog", "/data/fox"]
    counts = [2, 3, 1]
    items = [ImageItem(f"{folder}/{i}.png", label, f"{folder[6:]}/{i}.png")
             for label, (folder, n) in enumerate(zip(folders, counts)) for i in range(n)]
    test = [ImageItem(f"/test/{folder[6:]}/t.png", label, f"{folder[6:]}/t.png")
            for label, folder in enumerate(folders)]
    return ScanReport(["cat", "dog", "fox"], folders, items,
                      skipped=[SkippedFile("/data/dog/x.txt", "not an image")], test_items=test,
                      test_folder="/test", verified=True)


def images(items, label):
    return sorted(it.path for it in items if it.label == label)


def test_a_renamed_class_left_out_takes_its_own_images_and_no_other():
    # "cat" becomes "kitty" and "dog" takes the name "cat": leaving out "cat" now means the dog
    # folder, not the folder that was called cat
    edited = report().renamed(["kitty", "cat", "fox"]).without_classes(["cat"])
    assert edited.classes == ["kitty", "fox"]
    assert edited.class_folders == ["/data/cat", "/data/fox"]
    assert images(edited.items, 0) == ["/data/cat/0.png", "/data/cat/1.png"]
    assert images(edited.items, 1) == ["/data/fox/0.png"]
    assert len(edited.items) == 3 and edited.counts() == [2, 1]
    assert images(edited.test_items, 0) == ["/test/cat/t.png"]
    assert images(edited.test_items, 1) == ["/test/fox/t.png"]
    assert len(edited.test_items) == 2


def test_leaving_out_the_first_class_renumbers_the_others():
    edited = report().renamed(["a", "b", "c"]).without_classes(["a"])
    assert edited.classes == ["b", "c"] and edited.counts() == [3, 1]
    assert images(edited.items, 0) == [f"/data/dog/{i}.png" for i in range(3)]
    # keys keep the folder names, so the split of the kept images does not move
    kept = split(edited.items, 0.5, seed=3)
    whole = split(report().items, 0.5, seed=3)
    assert sorted(it.key for it in kept.val) == sorted(
        it.key for it in whole.val if not it.key.startswith("cat/"))


def test_leaving_out_a_name_no_class_has_changes_nothing_and_the_original_is_untouched():
    original = report()
    renamed = original.renamed(["kitty", "cat", "fox"])
    assert renamed.without_classes(["dog"]).classes == ["kitty", "cat", "fox"]
    assert original.classes == ["cat", "dog", "fox"]  # a copy was renamed
    assert [it.label for it in original.items] == [0, 0, 1, 1, 1, 2]


def test_edits_keep_what_the_scan_found_besides_the_classes():
    for edited in (report().renamed(["x", "y", "z"]), report().without_classes(["dog"]),
                   report().renamed(["x", "y", "z"]).without_classes(["x"])):
        assert edited.skipped == [SkippedFile("/data/dog/x.txt", "not an image")]
        assert edited.test_folder == "/test" and edited.verified is True


@pytest.mark.parametrize("names, message", [
    (["a", "a", "b"], "two classes cannot share the name 'a'"),
    (["a", " ", "b"], "a class name cannot be empty"),
    (["a", "b"], "expected 3 class names, got 2"),
])
def test_bad_renames_are_refused(names, message):
    with pytest.raises(DatasetError) as raised:
        report().renamed(names)
    assert str(raised.value) == message


def test_single_images_are_left_out_or_moved_in_the_app_only():
    from tlgui.core.data import LEFT_OUT_BY_YOU, ImageItem, ScanReport, with_image_edits

    items = [ImageItem(f"/d/{c}/{i}.png", k, f"{i}.png") for k, c in enumerate("ab")
             for i in range(3)]
    report = ScanReport(["a", "b"], ["/d/a", "/d/b"], items,
                        test_items=[ImageItem("/t/a/9.png", 0, "9.png")])
    edited = with_image_edits(report, {"/d/a/0.png": None, "/d/a/1.png": "b",
                                       "/t/a/9.png": "b", "/d/b/2.png": "no such class",
                                       "/elsewhere.png": None})
    assert [(it.path, it.label) for it in edited.items] == [
        ("/d/a/1.png", 1), ("/d/a/2.png", 0), ("/d/b/0.png", 1), ("/d/b/1.png", 1),
        ("/d/b/2.png", 1)]
    assert edited.items[0].key == "1.png"  # the split still hashes the file's own key
    assert [(it.path, it.label) for it in edited.test_items] == [("/t/a/9.png", 1)]
    assert [(s.path, s.reason) for s in edited.skipped] == [("/d/a/0.png", LEFT_OUT_BY_YOU)]
    assert edited.counts() == [1, 4]
    assert with_image_edits(report, {}) is report
    assert report.counts() == [3, 3]  # the scanned report is untouched
