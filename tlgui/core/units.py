"""Numbers as people read them."""

from __future__ import annotations


def format_duration(seconds: float | None) -> str:
    """``42 s``, ``3 min 05 s``, ``2 h 10 min``; ``?`` when unknown."""
    if seconds is None:
        return "?"
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


def format_bytes(count: int) -> str:
    """``512 B``, ``3.4 MB``, ``12.0 GB`` (powers of 1,000, as file managers show them)."""
    value = float(count)
    for unit in ("B", "kB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{int(value)} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{value:.1f} GB"
