"""The versions of tlgui and of what it runs on, read from the installed packages' metadata
(quick: PyTorch is not imported for them)."""

from __future__ import annotations

import platform
from importlib import metadata

from . import __version__

#: (what to call it, distribution name): the packages whose versions say how tlgui runs.
PACKAGES = (("torch", "torch"), ("torchvision", "torchvision"), ("PySide6", "PySide6-Essentials"))


def package_version(distribution: str) -> str:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        if distribution == "PySide6-Essentials":  # installed as the full PySide6
            return package_version("PySide6")
        return "not installed"


def versions() -> list[tuple[str, str]]:
    """``(name, version)`` of tlgui, Python and each of :data:`PACKAGES`."""
    return ([("tlgui", __version__), ("Python", platform.python_version())]
            + [(name, package_version(dist)) for name, dist in PACKAGES])


def version_line() -> str:
    """One line for ``tlgui --version``."""
    head, *rest = versions()
    return f"{head[0]} {head[1]} ({', '.join(f'{n} {v}' for n, v in rest)})"
