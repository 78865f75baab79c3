"""The Qt binding must not corrupt the interpreter over a long session.

PySide6-Essentials 6.12.0 drops one reference to ``None`` on every call that returns nothing.
Before Python 3.12 ``None`` is an ordinary object, so after enough calls (about 58,000 with
torch imported) the interpreter aborts with ``none_dealloc``: a long training or a big table
would kill the window. pyproject excludes that version; this test catches any binding that
does it, in a subprocess so an abort fails the test instead of the run.
"""

import subprocess
import sys

CALLS = 100_000

SCRIPT = f"""
import os, sys
os.environ["QT_QPA_PLATFORM"] = "offscreen"
import torch  # holds many references to None, as in the app
from PySide6.QtWidgets import QApplication, QLabel

app = QApplication([])
label = QLabel()
before = sys.getrefcount(None)
for i in range({CALLS}):
    label.setText("epoch")
after = sys.getrefcount(None)
label.deleteLater()
print("none-refcount-change", after - before)
"""


def test_many_qt_calls_leave_none_alone_and_exit_cleanly():
    result = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True,
                            timeout=240)
    assert result.returncode == 0, result.stderr[-2000:]
    change = int(result.stdout.split("none-refcount-change")[1])
    # A handful of references may come and go; a leak is one per call.
    assert abs(change) < 100, f"{CALLS:,} setText calls changed None's refcount by {change}"
