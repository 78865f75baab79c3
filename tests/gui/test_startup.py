"""The window appears before PyTorch is imported: the import happens in the background."""

import subprocess
import sys

CODE = """
import os, sys, time
os.environ["QT_QPA_PLATFORM"] = "offscreen"
from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QApplication
app = QApplication([])
from tlgui.gui.main_window import MainWindow
window = MainWindow(QSettings(sys.argv[1], QSettings.Format.IniFormat))
window.show()
window.grab()  # paints the whole window now, before the event loop starts the import
assert "torch" not in sys.modules, "torch was imported before the first paint"
deadline = time.monotonic() + 120
while window.backend is None and time.monotonic() < deadline:
    app.processEvents()
    time.sleep(0.01)
assert window.backend is not None
window.shutdown()
print("ok")
"""


def test_torch_loads_after_the_window_is_shown(tmp_path):
    done = subprocess.run([sys.executable, "-c", CODE, str(tmp_path / "s.ini")],
                          capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"
