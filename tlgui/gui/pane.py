"""The base of every step of the window.

The main window knows its steps only through this interface: it builds the sidebar, the
stack, the View menu, the list of problems that keep training from starting, the remembered
settings, the project file and the shutdown from the list of panes, so adding a step touches
that list and nothing else.
"""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QWidget


class Pane(QWidget):
    """One step of the window: a widget with a title, a hint and a few duties.

    Every method has a harmless default, so a pane overrides only what it has. None of them
    may block: long work belongs in a :class:`~tlgui.gui.workers.TaskController`.
    """

    #: The step's name in the sidebar and the View menu, e.g. "Data".
    title: str = ""
    #: One sentence under the pane that says what to do here.
    hint: str = ""

    message = Signal(str)  #: a line for the status bar
    error = Signal(str, str)  #: one-line message, details (a traceback or a list)
    changed = Signal()  #: something a project file keeps changed (the unsaved-changes mark)

    def problems(self) -> list[str]:
        """Reasons training cannot start, each a sentence without its full stop."""
        return []

    def remembered_settings(self) -> dict:
        """JSON-able values kept between sessions, by settings key."""
        return {}

    def restore_settings(self, values: dict) -> None:
        """Apply what :meth:`remembered_settings` returned in an earlier session (keys may be
        missing or hold values of another version)."""

    def project_state(self) -> dict:
        """The pane's part of a project file, merged with the other panes' at the top level
        (``{"data": {...}}``, ``{"runs": [...]}``)."""
        return {}

    def apply_project_state(self, state: dict) -> list[str]:
        """Restore the pane from a whole project dict; returns what could not be restored."""
        return []

    def shutdown(self) -> None:
        """Cancel the pane's background work and wait for it a bounded time; never hangs."""
