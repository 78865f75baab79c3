"""The confusion matrix as a table: a cell opens its images on a click, Enter or Space, and
its colours stay readable on a light or a dark theme."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QEvent, Qt, Signal, Slot
from PySide6.QtGui import QBrush, QColor, QPalette
from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QTableWidget, QTableWidgetItem

from ...core.metrics import Evaluation, matrix_texts, normalise_rows

#: Right answers (the diagonal) in blue, mistakes in red: the meaning, not the theme, picks them.
RIGHT = QColor(31, 119, 180)
WRONG = QColor(214, 39, 40)
#: How far a full cell goes from the table's background towards its colour.
STRENGTH = 0.8


def relative_luminance(colour: QColor) -> float:
    """The colour's relative luminance (WCAG 2), 0 for black to 1 for white."""

    def linear(value: float) -> float:
        return value / 12.92 if value <= 0.03928 else ((value + 0.055) / 1.055) ** 2.4

    return (0.2126 * linear(colour.redF()) + 0.7152 * linear(colour.greenF())
            + 0.0722 * linear(colour.blueF()))


def contrast_ratio(a: QColor, b: QColor) -> float:
    """WCAG 2 contrast ratio of two colours, 1 (none) to 21 (black on white)."""
    darker, lighter = sorted((relative_luminance(a), relative_luminance(b)))
    return (lighter + 0.05) / (darker + 0.05)


def blend(base: QColor, towards: QColor, share: float) -> QColor:
    """``base`` moved ``share`` (0–1) of the way to ``towards``."""
    share = min(1.0, max(0.0, share))
    return QColor(*[round(b + (t - b) * share) for b, t in
                    zip(base.getRgb()[:3], towards.getRgb()[:3])])


def readable_text(background: QColor) -> QColor:
    """Black or white, whichever contrasts more with ``background``."""
    black, white = QColor(0, 0, 0), QColor(255, 255, 255)
    return black if contrast_ratio(black, background) >= contrast_ratio(white, background) \
        else white


class ConfusionMatrixView(QTableWidget):
    """Rows: true class, columns: predicted class. ``cell_opened(true, predicted)`` when a
    cell is clicked, or Enter or Space is pressed on the current cell."""

    cell_opened = Signal(int, int)

    def __init__(self, parent=None):
        super().__init__(0, 0, parent)
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.setTabKeyNavigation(False)  # Tab leaves the matrix; the arrow keys move in it
        for header in (self.horizontalHeader(), self.verticalHeader()):
            header.setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
            header.setMinimumSectionSize(36)
        self.setToolTip("Rows: true class · columns: predicted class. Click a cell, or press "
                        "Enter on it, to list its images.")
        self.cellClicked.connect(self.cell_opened)
        self._evaluation: Evaluation | None = None
        self._percent = False

    def show_evaluation(self, evaluation: Evaluation | None, percent: bool = False) -> None:
        """Fill the matrix with counts, or row percentages when ``percent``."""
        self._evaluation, self._percent = evaluation, percent
        self._fill()

    def changeEvent(self, event) -> None:  # noqa: N802 - Qt's name
        super().changeEvent(event)
        if event.type() == QEvent.Type.PaletteChange and self._evaluation is not None:
            self._fill()  # the cells blend from the table's background: follow a new theme

    def keyPressEvent(self, event) -> None:  # noqa: N802 - Qt's name
        if event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter, Qt.Key.Key_Space):
            index = self.currentIndex()
            if index.isValid():
                self.cell_opened.emit(index.row(), index.column())
                event.accept()
                return
        super().keyPressEvent(event)

    @Slot()
    def _fill(self) -> None:
        e = self._evaluation
        if e is None:
            self.setRowCount(0)
            self.setColumnCount(0)
            return
        cm = e.matrix()
        rows = normalise_rows(cm)
        # Without any image (every row empty) nothing is coloured.
        shares = rows if rows.any() else np.zeros(cm.shape)
        texts = matrix_texts(cm, percent=self._percent)
        n = len(e.classes)
        self.setRowCount(n)
        self.setColumnCount(n)
        self.setHorizontalHeaderLabels(e.classes)
        self.setVerticalHeaderLabels(e.classes)
        base = self.palette().color(QPalette.ColorRole.Base)
        for t in range(n):
            for p in range(n):
                item = QTableWidgetItem(texts[t][p])
                item.setTextAlignment(Qt.AlignmentFlag.AlignCenter)
                colour = blend(base, RIGHT if t == p else WRONG, shares[t, p] * STRENGTH)
                item.setBackground(QBrush(colour))
                item.setForeground(QBrush(readable_text(colour)))
                item.setToolTip(f"{cm[t, p]} {e.classes[t]} images predicted as "
                                f"{e.classes[p]}")
                self.setItem(t, p, item)
