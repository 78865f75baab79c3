"""``tlgui`` as torchrun starts it, with one fault on the second process (rank 1), chosen by
TLGUI_TEST_FAULT: ``step`` fails its fourth training step; ``data`` gives it another data
folder (TLGUI_TEST_OTHER_DATA) than the first process reads. Not a test module: the
distributed tests start it."""

import os
import sys

from tlgui.core import training

if os.environ.get("RANK") == "1":
    fault = os.environ["TLGUI_TEST_FAULT"]
    if fault == "step":
        original = training.Trainer._step
        steps = []

        def failing_step(self, run, z, y):
            steps.append(1)
            if len(steps) == 4:
                raise RuntimeError("CUDA out of memory (a fault made on process 2)")
            return original(self, run, z, y)

        training.Trainer._step = failing_step
    elif fault == "data":
        argv = sys.argv[1:]
        argv[argv.index(os.environ["TLGUI_TEST_DATA"])] = os.environ["TLGUI_TEST_OTHER_DATA"]
        sys.argv[1:] = argv

from tlgui.cli import main  # noqa: E402

sys.exit(main(sys.argv[1:]))
