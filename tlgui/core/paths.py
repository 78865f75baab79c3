"""Where tlgui keeps its own files, and how it writes them (atomically)."""

from __future__ import annotations

import json
import math
import os
import re
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def cache_dir() -> Path:
    """tlgui's cache folder (sample data, feature caches); ``TLGUI_CACHE_DIR`` overrides it."""
    override = os.environ.get("TLGUI_CACHE_DIR")
    if override:
        return Path(override)
    if sys.platform == "win32":
        base = Path(os.environ.get("LOCALAPPDATA", Path.home() / "AppData" / "Local"))
    elif sys.platform == "darwin":
        base = Path.home() / "Library" / "Caches"
    else:
        base = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return base / "tlgui"


def _file_mode() -> int:
    # mkstemp makes private (0600) files; tlgui's files get the mode any new file would.
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


_FILE_MODE = _file_mode()


#: The names :func:`atomic_output` gives its temporary files: ``.NAME.XXXXXXXX.tmp`` (eight
#: characters from :mod:`tempfile`'s alphabet), so only tlgui's own ones are ever cleaned up.
_TEMP_NAME = re.compile(r"^\..+\.[a-z0-9_]{8}\.tmp$")


@contextmanager
def atomic_output(path: str | os.PathLike, suffix: str = ".tmp") -> Iterator[Path]:
    """Yield a temporary path beside ``path``; once the block succeeds it is renamed to
    ``path``, so no reader ever sees half a file and a failure leaves the old file in place.
    The file is synced to disk before the rename and the folder after it, so a power cut
    leaves the old file or the new one. On any failure (a cancel included) the temporary file
    is removed.

    An ``OSError`` that names no file, or only the temporary one (a full disk while writing),
    is raised again naming ``path``, so the message tells the user which file failed; so is
    one that a library wrapped in its own error (torch's writer reports a failed write as a
    RuntimeError raised while handling the OSError)."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    except OSError as e:
        named = _naming(e, path)
        if named is e:
            raise
        raise named from e
    os.close(fd)
    try:
        yield Path(tmp)
        _sync_file(tmp)
        os.chmod(tmp, _FILE_MODE)
        os.replace(tmp, path)
    except BaseException as e:
        try:
            os.remove(tmp)
        except OSError:
            pass
        cause = _os_error_in(e) if isinstance(e, (OSError, RuntimeError)) else None
        named = _naming(cause, path) if cause is not None else e
        if named is e:
            raise
        raise named from e
    _sync_folder(path.parent)


def _os_error_in(e: BaseException) -> OSError | None:
    """``e`` if it is an OSError, else the OSError it was raised from or while handling."""
    seen = set()
    while e is not None and id(e) not in seen:
        if isinstance(e, OSError):
            return e
        seen.add(id(e))
        e = e.__cause__ or e.__context__
    return None


def _naming(e: OSError, path: Path) -> OSError:
    """``e``, or the same error naming ``path`` where ``e`` names no file or a temporary one."""
    if e.filename is not None and not Path(os.fsdecode(e.filename)).name.startswith(
            f".{path.name}."):
        return e  # it names another file already (e.g. a folder that cannot be created)
    return OSError(e.errno, e.strerror or str(e), str(path))


def _sync_file(path: str) -> None:
    fd = os.open(path, os.O_RDWR)  # Windows syncs only a handle open for writing
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _sync_folder(folder: Path) -> None:
    """Make a rename in ``folder`` durable (POSIX; Windows has no folder handles to sync)."""
    if os.name != "posix":
        return
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some file systems cannot sync a folder; the file itself is on disk
    finally:
        os.close(fd)


def remove_orphan_temp_files(folder: str | os.PathLike) -> list[Path]:
    """Remove the temporary files :func:`atomic_output` left in ``folder`` when its process was
    killed mid-write; return them. Only tlgui's own names, only files, only this folder."""
    removed = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        if _TEMP_NAME.match(entry.name) and entry.is_file(follow_symlinks=False):
            try:
                os.remove(entry.path)
                removed.append(Path(entry.path))
            except OSError:
                pass  # gone already, or not ours to remove: leave it
    return removed


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    with atomic_output(path) as tmp, open(tmp, "wb") as f:
        f.write(data)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike, obj) -> None:
    """Write ``obj`` as JSON; a number that is not finite (NaN, infinity) is written as
    ``null``, so the file is valid JSON for any reader."""
    text = json.dumps(_finite(obj), indent=2, ensure_ascii=False, allow_nan=False)
    atomic_write_text(path, text + "\n")


def _finite(obj):
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    return obj


def atomic_torch_save(obj, path: str | os.PathLike) -> None:
    """``torch.save`` through :func:`atomic_output`. It writes through a Python file, so a full
    disk is an ``OSError`` naming ``path`` (torch's own writer reports it as an "unexpected
    pos" error)."""
    import torch

    with atomic_output(path) as tmp, open(tmp, "wb") as f:
        torch.save(obj, f)
