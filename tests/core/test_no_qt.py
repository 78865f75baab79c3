"""The compute core must not depend on Qt: import every core module in a fresh interpreter."""

import os
import pkgutil
import subprocess
import sys

import tlgui.core


def test_core_imports_without_qt():
    modules = [f"tlgui.core.{m.name}" for m in pkgutil.iter_modules(tlgui.core.__path__)]
    code = (
        "import sys\n"
        f"for m in {modules!r} + ['tlgui.cli']: __import__(m)\n"
        "qt = ('PySide6', 'pyqtgraph', 'shiboken6')\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in qt]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_the_window_never_imports_the_command_line():
    """The GUI presents what the core computes; what the command line and the window share
    lives in the core. Every module of ``tlgui.gui`` is imported in a fresh interpreter."""
    import tlgui.gui

    modules = [m.name for m in pkgutil.walk_packages(tlgui.gui.__path__, "tlgui.gui.")]
    assert "tlgui.gui.results.evaluate_tab" in modules and "tlgui.gui.inspect.pane" in modules
    code = (
        "import sys\n"
        f"for m in {modules!r}: __import__(m)\n"
        "bad = [m for m in sys.modules if m == 'tlgui.cli' or m.startswith('tlgui.cli_')]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120,
                   env={**os.environ, "QT_QPA_PLATFORM": "offscreen"})
