"""The window appears before PyTorch is imported: the import happens in the background."""

import os
import subprocess
import sys
import time

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


QUIT_WHILE_LOADING = """
import os, sys, threading, time
os.environ["QT_QPA_PLATFORM"] = "offscreen"
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication
import tlgui.gui.main_window as main_window
from tlgui.gui import app as tlgui_app

def deaf_import(emit, control):  # an import cannot be cancelled: it ignores the request
    threading.Event().wait(8)
    return None

main_window.load_backend = deaf_import
application = QApplication([])

def quit_now():  # while "PyTorch" is still loading
    print(time.time(), flush=True)
    application.closeAllWindows()

QTimer.singleShot(300, quit_now)
sys.exit(tlgui_app.main([]))
"""


def test_quitting_while_pytorch_loads_exits_cleanly_and_soon(tmp_path):
    env = dict(os.environ, XDG_CONFIG_HOME=str(tmp_path / "config"),
               TLGUI_RUNS_DIR=str(tmp_path / "runs"), QT_QPA_PLATFORM="offscreen")
    done = subprocess.run([sys.executable, "-c", QUIT_WHILE_LOADING], capture_output=True,
                          text=True, timeout=60, env=env)
    took = time.time() - float(done.stdout.split()[0])  # from the quit to the process's end
    assert done.returncode == 0, done.stderr  # not 134: a running thread destroyed at exit
    assert "Destroyed while thread" not in done.stderr
    assert took < 5, f"quitting waited {took:.1f} s for an import that would not stop"
