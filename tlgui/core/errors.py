"""One line for the user from any exception: which file, and what is wrong with it.

The command line prints this line after ``tlgui: error:`` and the window shows it, so a fault
reads the same everywhere. Library texts that span many lines or give advice that does not
apply to tlgui (torch's "re-run with ``weights_only=False``") are translated here.
"""

from __future__ import annotations

import errno
import os
import re

#: errno values that mean the file could not be written for lack of space.
_DISK_FULL = {errno.ENOSPC} | ({errno.EDQUOT} if hasattr(errno, "EDQUOT") else set())

# torch writes checkpoints through its own C++ writer, which reports a failed write this way.
_TORCH_WRITE_FAILED = re.compile(r"unexpected pos \d+ vs \d+|file write failed|"
                                 r"PytorchStreamWriter failed writing")
_WEIGHTS_ONLY = "Weights only load failed"
_STATE_DICT = re.compile(r"Error\(s\) in loading state_dict for (\w+)")
# torch's C++ checks prefix their message with the source line that failed.
_ENFORCE_PREFIX = re.compile(r"^\[enforce fail at [^\]]*\]\s*\.?\s*")


class UserError(Exception):
    """A problem the user can fix, whose message is already the line to show."""


def is_disk_full(e: BaseException) -> bool:
    """True when ``e``, or an exception it was raised from, is a full disk or quota."""
    seen = set()
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        if isinstance(e, OSError) and e.errno in _DISK_FULL:
            return True
        e = e.__cause__ or e.__context__
    return False


def one_line(e: BaseException, path: str | os.PathLike | None = None) -> str:
    """``e`` as one line for the user.

    ``path`` is the file the caller was reading or writing: it names the file where the
    exception does not (a failed ``write()`` knows no file name) and is otherwise put in front
    of a line that names no file.
    """
    where = os.fspath(path) if path is not None else None
    line = _describe(e, where)
    # An exception that names its own file (an OSError, an ImageLoadError) needs no other.
    names_a_file = _os_error_filename(e) or isinstance(getattr(e, "path", None), str)
    if where and where not in line and not names_a_file:
        line = f"{where}: {line}"
    return line


def _describe(e: BaseException, where: str | None) -> str:
    if isinstance(e, UserError) and str(e).strip():
        return _first_meaningful_line(str(e))  # already written for the user
    if is_disk_full(e):
        filename = _os_error_filename(e)
        target = filename or where
        return f"no space left on device: {target}" if target else "no space left on device"
    if isinstance(e, OSError) and e.strerror:
        problem = _lower_first(e.strerror)
        filename = _os_error_filename(e)
        if filename and e.filename2 is not None:
            return f"{filename} → {os.fsdecode(e.filename2)}: {problem}"
        return f"{filename}: {problem}" if filename else problem
    text = str(e).strip()
    if _TORCH_WRITE_FAILED.search(text):
        return f"cannot write {where} (is the disk full?)" if where else \
            "cannot write the file (is the disk full?)"
    if _WEIGHTS_ONLY in text:
        return _unsafe_pickle_line(text)
    match = _STATE_DICT.search(text)
    if match:
        return _state_dict_line(match.group(1), text)
    # An error raised inside a data-loading worker arrives wrapped in its traceback.
    if "Original Traceback" in text:
        return text.splitlines()[-1].split(": ", 1)[-1].strip()
    first = _first_meaningful_line(text)
    if _is_user_facing(e) and first:
        return first
    return f"{type(e).__name__}: {first or 'unexpected error'}"


def _os_error_filename(e: BaseException) -> str | None:
    while e is not None:
        if isinstance(e, OSError) and e.filename is not None:
            return os.fsdecode(e.filename) if not isinstance(e.filename, int) else None
        e = e.__cause__ or e.__context__
    return None


def _unsafe_pickle_line(text: str) -> str:
    named = re.search(r"Unsupported global: GLOBAL ([\w.]+)", text)
    if named:
        detail = f"it refers to Python code: {named.group(1)}"
    else:
        reason = re.search(r"WeightsUnpickler error:\s*([^\n]*?)\.?\s*(?:\n|$)", text)
        detail = reason.group(1) if reason else "it holds more than tensors"
    return f"not a plain weights file ({detail}), and tlgui never runs code from a file"


def _state_dict_line(model: str, text: str) -> str:
    counts = []
    for label, count in (
        ("missing", _quoted_count(text, "Missing key(s) in state_dict:")),
        ("unexpected", _quoted_count(text, "Unexpected key(s) in state_dict:")),
        ("mis-shaped", text.count("size mismatch for ")),
    ):
        if count:
            counts.append(f"{count} {label} key{'s' if count != 1 else ''}")
    return f"the weights do not fit {model}" + (f": {', '.join(counts)}" if counts else "")


def _quoted_count(text: str, heading: str) -> int:
    for line in text.splitlines():
        line = line.strip()
        if line.startswith(heading):
            return len(re.findall(r'"[^"]*"', line))
    return 0


def _first_meaningful_line(text: str) -> str:
    for line in text.splitlines():
        line = _ENFORCE_PREFIX.sub("", line.strip())
        if re.search(r"\w", line):
            return line
    return ""


def _lower_first(text: str) -> str:
    # "Permission denied" → "permission denied", but keep words like "PNG" as they are.
    if len(text) > 1 and text[0].isupper() and text[1].islower():
        return text[0].lower() + text[1:]
    return text


def _is_user_facing(e: BaseException) -> bool:
    """Exceptions whose message is written for the user, so no type name goes in front."""
    from .data import DatasetError
    from .images import ImageLoadError
    from .weights import WeightsError

    return isinstance(e, (UserError, DatasetError, WeightsError, ImageLoadError, ValueError))
