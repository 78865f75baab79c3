"""The compute core must not depend on Qt: import every core module in a fresh interpreter."""

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
