"""Keeping the garbage collector's full passes short while the window works.

Python's cyclic collector now and then walks every container object in the process, holding
the interpreter lock throughout; whichever thread allocates at that moment pays, and the
window's thread waits. After PyTorch and torchvision are imported that walk covers about half a
million objects of theirs and takes 150–300 ms on a slow core, long enough to freeze the
window mid-scroll; a scan of 100,000 images adds 100,000 more (30–40 ms a pass). Such objects
live long, so they are moved out of the collector's sight (``gc.freeze``) and the passes that
remain only look at what is made after.

A frozen object is still freed when nothing refers to it any more; only a reference cycle that
was alive when frozen is never collected. So freezing happens at a few moments (PyTorch
loaded, a big scan done), never per batch or per event.
"""

from __future__ import annotations

import ctypes
import gc
import glob
import importlib
import importlib.util
import os
import sys
import threading
from contextlib import contextmanager

#: Freeze after building at least this many objects: fewer lengthen a full pass by under 5 ms.
SETTLE_MIN_OBJECTS = 10_000


def import_long_lived(*modules: str) -> None:
    """Import ``modules`` with the collector paused, then freeze everything alive.

    Only a first import freezes: when the modules are loaded already nothing changes (a
    second freeze would also pin whatever the app made since, some of it short-lived)."""
    if all(name in sys.modules for name in modules):
        return
    # Importing builds objects, not garbage: collecting meanwhile only stalls.
    with building_long_lived():
        try:
            for name in modules:
                if "." not in name and name not in sys.modules:
                    preload_extension(name)
                importlib.import_module(name)
        finally:
            gc.freeze()


_pause_lock = threading.Lock()
_pauses = 0  #: blocks inside building_long_lived now, in any thread
_was_enabled = True  #: the collector's state when the first of them began


@contextmanager
def building_long_lived():
    """Pause the collector while a block builds objects that will live long (no garbage: a
    collection meanwhile would walk 100,000 new objects for nothing); the collector is as it
    was once the last such block, in any thread, has ended (a scan in the window's worker and
    an evaluation's own scan may overlap)."""
    global _pauses, _was_enabled
    with _pause_lock:
        if _pauses == 0:
            _was_enabled = gc.isenabled()
            gc.disable()
        _pauses += 1
    try:
        yield
    finally:
        with _pause_lock:
            _pauses -= 1
            if _pauses == 0 and _was_enabled:
                gc.enable()


def settle(new_objects: int) -> None:
    """Freeze everything alive after building ``new_objects`` long-lived objects (a scan's
    items), when there are enough of them to lengthen the collector's full passes."""
    if new_objects >= SETTLE_MIN_OBJECTS:
        gc.freeze()


#: Objects freed at a time by :func:`release_gradually`: about a millisecond of work.
RELEASE_SLICE = 2048


def release_gradually(*containers) -> None:
    """Empty lists, dicts and sets a slice at a time.

    A container of 100,000 objects freed at once (a function's locals at its return) frees
    them all in one step of the interpreter, holding its lock for 40 ms and more; between
    slices the window's thread gets its turn. What the objects share with other containers
    stays alive, as usual."""
    for container in containers:
        if isinstance(container, list):
            while container:
                del container[-RELEASE_SLICE:]
        elif isinstance(container, dict):
            while container:  # one object a step: the lock can change hands between them
                container.popitem()
        elif isinstance(container, set):
            while container:
                container.pop()
        else:
            raise TypeError(f"cannot release a {type(container).__name__} gradually")


def preload_extension(package: str, name: str = "_C") -> bool:
    """Load the shared library of ``package``'s compiled extension ``name`` (and the libraries
    it links to) without holding the interpreter lock; True when it was loaded.

    Python holds its lock while an import loads a shared library, and loading PyTorch's
    (half a gigabyte of code to map and relocate) took 0.5 s during which no other thread ran
    Python, the window's included. Called as a C function through ctypes, the same
    ``dlopen`` lets other threads run; the import that follows finds the library loaded. Linux
    only; anywhere else, or when the library is not found or does not load, the import loads
    it as usual.
    """
    if not sys.platform.startswith("linux"):
        return False
    spec = importlib.util.find_spec(package)  # locates the package without running it
    if spec is None or not spec.submodule_search_locations:
        return False
    found = [path for folder in spec.submodule_search_locations
             for path in glob.glob(os.path.join(folder, f"{name}.*so"))]
    if not found:
        return False
    try:
        libc = ctypes.CDLL(None)
        dlopen = libc.dlopen
    except (OSError, AttributeError):
        return False
    dlopen.restype = ctypes.c_void_p
    dlopen.argtypes = [ctypes.c_char_p, ctypes.c_int]
    return bool(dlopen(os.fsencode(found[0]), os.RTLD_NOW | os.RTLD_LOCAL))
