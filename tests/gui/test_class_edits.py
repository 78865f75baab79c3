"""Renaming classes and leaving them out on the Data step: the class the user picked goes, with
its own images, and a saved project brings the same edits back."""

import os

from PIL import Image
from PySide6.QtCore import Qt

from tlgui.gui.dataset_pane import DatasetPane

#: Class folders and their image counts, all different so that a mix-up shows.
COUNTS = {"cat": 2, "dog": 3, "fox": 4, "owl": 5}


def make_folders(root):
    for k, (name, n) in enumerate(COUNTS.items()):
        (root / name).mkdir(parents=True)
        for i in range(n):
            Image.new("RGB", (32, 32), (60 * k, 20 * i, 90)).save(root / name / f"{i}.png")
    return root


def loaded_pane(qtbot, folder):
    pane = DatasetPane()
    qtbot.addWidget(pane)
    pane.load_folders([str(folder)])
    qtbot.waitUntil(lambda: pane.report is not None and not pane.scanner.is_running(),
                    timeout=30_000)
    return pane


def rename(pane, row, name):
    """Type ``name`` over a class name, as the table's editor does."""
    model = pane.classes.model()
    model.setData(model.index(row, 0), name)


def shown(pane, column, role=Qt.ItemDataRole.DisplayRole):
    model = pane.classes.model()
    return [model.index(r, column).data(role) for r in range(model.rowCount())]


def class_of_each_image(report):
    """{class name: the folder names its images come from}."""
    found = {}
    for item in report.items:
        folder = os.path.basename(os.path.dirname(item.path))
        found.setdefault(report.classes[item.label], set()).add(folder)
    return found


def test_a_renamed_class_left_out_is_the_one_picked(qtbot, tmp_path):
    root = make_folders(tmp_path / "animals")
    pane = loaded_pane(qtbot, root)
    messages = []
    pane.message.connect(messages.append)
    try:
        assert pane.names == ["cat", "dog", "fox", "owl"]
        rename(pane, 0, "kitty")
        rename(pane, 1, "cat")  # the dog folder now carries the name "cat"
        pane.classes.selectRow(1)
        pane.remove_button.click()

        report = pane.dataset()
        assert report.classes == ["kitty", "fox", "owl"]
        assert [os.path.basename(f) for f in report.class_folders] == ["cat", "fox", "owl"]
        assert report.counts() == [2, 4, 5]
        assert class_of_each_image(report) == {"kitty": {"cat"}, "fox": {"fox"}, "owl": {"owl"}}
        assert pane.edits() == (["kitty", "cat", "fox", "owl"], ["cat"])

        assert shown(pane, 0) == ["kitty", "cat", "fox", "owl"]
        fonts = shown(pane, 0, Qt.ItemDataRole.FontRole)
        assert [bool(f and f.strikeOut()) for f in fonts] == [False, True, False, False]
        assert [shown(pane, c)[1] for c in (2, 3)] == ["–", "–"]
        sizes = [int(shown(pane, 2)[r]) + int(shown(pane, 3)[r]) for r in (0, 2, 3)]
        assert sizes == [2, 4, 5]  # train + validation of each kept class

        rename(pane, 1, "fox")  # a name taken is refused, in one line
        assert shown(pane, 0)[1] == "cat"
        assert messages[-1] == "two classes cannot share the name 'fox'"
        rename(pane, 2, "dog")  # a name freed by the rename can be reused
        report = pane.dataset()
        assert report.classes == ["kitty", "dog", "owl"]
        assert class_of_each_image(report) == {"kitty": {"cat"}, "dog": {"fox"}, "owl": {"owl"}}

        names, removed = pane.edits()
        again = DatasetPane()  # a saved project reopened
        qtbot.addWidget(again)
        try:
            again.restore([str(root)], None, names, removed)
            qtbot.waitUntil(lambda: again.report is not None and not again.scanner.is_running(),
                            timeout=30_000)
            restored = again.dataset()
            assert restored.classes == report.classes
            assert [(it.path, it.label) for it in restored.items] == [
                (it.path, it.label) for it in report.items]
        finally:
            again.shutdown()
    finally:
        pane.shutdown()


def test_a_class_is_renamed_by_typing_over_its_name(qtbot, tmp_path):
    from PySide6.QtWidgets import QLineEdit

    pane = loaded_pane(qtbot, make_folders(tmp_path / "animals"))
    try:
        pane.show()
        table = pane.classes
        table.setCurrentIndex(table.model().index(2, 0))
        qtbot.keyClick(table, Qt.Key.Key_F2)  # the platform's edit key
        editor = table.findChild(QLineEdit)
        assert editor is not None and editor.text() == "fox"
        editor.selectAll()
        qtbot.keyClicks(editor, "vixen")
        qtbot.keyClick(editor, Qt.Key.Key_Return)  # Qt commits it once the key is handled
        qtbot.waitUntil(lambda: table.state() != table.State.EditingState, timeout=5_000)
        assert pane.dataset().classes == ["cat", "dog", "vixen", "owl"]
        assert shown(pane, 0)[2] == "vixen"
    finally:
        pane.shutdown()
