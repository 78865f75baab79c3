"""Background work runs below the window's priority."""

import subprocess
import sys
import threading

import pytest

from tlgui.core.priority import BACKGROUND_NICENESS, lower_this_thread

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"),
                                reason="threads have their own priority on Linux only")


def test_a_loader_or_checking_process_lowers_its_priority():
    code = ("import os\n"
            "from tlgui.core.priority import loader_worker_init\n"
            "before = os.getpriority(os.PRIO_PROCESS, 0)\n"
            "loader_worker_init(0)\n"
            "print(before, os.getpriority(os.PRIO_PROCESS, 0))\n")
    before, after = map(int, subprocess.run([sys.executable, "-c", code], check=True,
                                            capture_output=True, text=True,
                                            timeout=60).stdout.split())
    assert after == min(19, before + BACKGROUND_NICENESS)


@linux_only
def test_lowering_a_thread_leaves_the_others_alone():
    import os

    seen = {}

    def background():
        lower_this_thread()
        seen["thread"] = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())

    main_before = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    worker = threading.Thread(target=background)
    worker.start()
    worker.join(10)
    assert seen["thread"] == max(main_before, BACKGROUND_NICENESS)
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == main_before
