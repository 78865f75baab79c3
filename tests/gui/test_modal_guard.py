"""The modal-dialog guard fails a test at once instead of letting it wait for a click."""

import pytest
from PySide6.QtWidgets import QDialog, QInputDialog, QMessageBox, QWidget


@pytest.mark.parametrize("open_dialog", [
    lambda parent: QMessageBox.question(parent, "Quit?", "Training is running."),
    lambda parent: QMessageBox(QMessageBox.Icon.Warning, "Oops", "text", parent=parent).exec(),
    lambda parent: QDialog(parent).exec(),
    lambda parent: QInputDialog.getText(parent, "Name", "Class name:"),
], ids=["question", "message-box-exec", "dialog-exec", "input"])
def test_a_modal_dialog_fails_the_test_instead_of_blocking(qtbot, open_dialog):
    parent = QWidget()
    qtbot.addWidget(parent)
    with pytest.raises(AssertionError, match="unexpected modal dialog"):
        open_dialog(parent)
