"""The entry point of the built app: the window, or the command line when given a command.

``freeze_support`` comes first: the app's loader processes are started by spawning the app
again, and in a frozen app that start must run the worker, not a second window."""

import multiprocessing
import sys

if __name__ == "__main__":
    multiprocessing.freeze_support()
    from tlgui.__main__ import main

    sys.exit(main())
