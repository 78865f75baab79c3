"""Reading user images: a cheap validity probe for scanning and a robust RGB loader.

The probe reads the header (and, for the common formats, the last bytes of the file) so that
scanning thousands of photos never decodes them in full; the loader applies EXIF orientation
and turns every PIL mode (palette, grayscale, CMYK, 16-bit, alpha) into 8-bit RGB.
"""

from __future__ import annotations

import os
import re
import warnings
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

#: Smallest side, in pixels, of an image we accept for training.
MIN_SIDE = 16

#: Images with more pixels than this are refused as possible decompression bombs, by the scan
#: and by every loader alike (training, evaluation, prediction, inspection, thumbnails).
MAX_PIXELS = Image.MAX_IMAGE_PIXELS or 89_478_485

#: The smallest training input the backbones can use: each halves its input five times.
MIN_IMAGE_SIZE = 32

# tlgui refuses such images itself, with a line naming the file (see bomb_reason); Pillow's own
# warning about them would only add a raw line to the output. A filter set once rather than
# warnings.catch_warnings() around each open: that one is not safe in the loading threads.
warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)

# The marker each format ends with; a file that lacks it is decoded to confirm truncation.
_TRAILERS = {
    "JPEG": b"\xff\xd9",
    "PNG": b"IEND\xaeB`\x82",
    "GIF": b"\x3b",
}
# Formats that have no cheap end-of-file check: decode them to be sure they are whole.
_DECODE_TO_VERIFY = {"TIFF", "WEBP", "BMP", "ICO", "PPM", "TGA", "SGI", "PCX", "DDS", "JPEG2000"}


class ImageLoadError(Exception):
    """An image file that cannot be used; the message names the file and the reason."""

    def __init__(self, path: str, reason: str):
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason

    def __reduce__(self):  # keep the two-argument form picklable across DataLoader workers
        return (type(self), (self.path, self.reason))


@dataclass(frozen=True)
class ProbeResult:
    """What the probe learned: a format and size, or the reason the file is unusable."""

    ok: bool
    reason: str = ""
    format: str = ""
    width: int = 0
    height: int = 0


def probe_image(path: str, min_side: int = MIN_SIDE, max_pixels: int = MAX_PIXELS) -> ProbeResult:
    """Check that ``path`` is a usable image without decoding it fully (where that is safe)."""
    try:
        size = os.path.getsize(path)
    except OSError as e:
        return ProbeResult(False, f"cannot read ({e.strerror or e})")
    if size == 0:
        return ProbeResult(False, "empty file (0 bytes)")
    try:
        with Image.open(path) as im:
            fmt = im.format or ""
            width, height = im.size
            if width * height > max_pixels:
                return ProbeResult(False, bomb_reason(width * height, max_pixels))
            if min(width, height) < min_side:
                return ProbeResult(
                    False,
                    f"too small ({width}×{height} px; at least {min_side} px a side needed)",
                )
            if not _looks_complete(path, fmt, size):
                im.load()  # raises on a truncated or corrupt file
    except PermissionError:
        return ProbeResult(False, "cannot read (permission denied)")
    except UnidentifiedImageError:
        fmt = sniff_format(path)
        if fmt:
            return ProbeResult(False, f"corrupt image (a damaged {fmt} file)")
        return ProbeResult(False, "not an image (no known image format)")
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        return ProbeResult(False, _pillow_bomb_reason(e, max_pixels))
    except OSError as e:
        text = str(e)
        if "truncated" in text.lower():
            return ProbeResult(False, "truncated image (the file ends too early)")
        return ProbeResult(False, f"corrupt image ({text})")
    except (ValueError, SyntaxError, EOFError, IndexError, KeyError, TypeError) as e:
        # PIL plugins raise these on malformed headers.
        return ProbeResult(False, f"corrupt image ({type(e).__name__}: {e})")
    return ProbeResult(True, format=fmt, width=width, height=height)


_SIGNATURES = (
    (b"\xff\xd8\xff", "JPEG"),
    (b"\x89PNG\r\n\x1a\n", "PNG"),
    (b"GIF8", "GIF"),
    (b"BM", "BMP"),
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
)


def sniff_format(path: str) -> str | None:
    """The image format a file's first bytes claim, even when PIL cannot open it."""
    try:
        with open(path, "rb") as f:
            head = f.read(16)
    except OSError:
        return None
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WebP"
    return next((name for magic, name in _SIGNATURES if head.startswith(magic)), None)


def bomb_reason(pixels: int, max_pixels: int = MAX_PIXELS) -> str:
    """Why an image of ``pixels`` pixels is refused: the same words wherever it is opened."""
    return f"decompression bomb ({pixels:,} pixels; the limit is {max_pixels:,})"


def _pillow_bomb_reason(e: Exception, max_pixels: int = MAX_PIXELS) -> str:
    # Pillow refuses images over twice its limit before tlgui sees their size; its message
    # still gives the number of pixels.
    found = re.search(r"Image size \((\d+) pixels\)", str(e))
    if found:
        return bomb_reason(int(found.group(1)), max_pixels)
    return f"decompression bomb (more than {max_pixels:,} pixels)"


def _looks_complete(path: str, fmt: str, size: int) -> bool:
    """True when the file's last bytes show it was written to the end."""
    if fmt in _DECODE_TO_VERIFY:
        return False
    trailer = _TRAILERS.get(fmt)
    if trailer is None:
        return False
    with open(path, "rb") as f:
        f.seek(max(0, size - 64))
        tail = f.read().rstrip(b"\x00\r\n ")
    return tail.endswith(trailer)


def to_rgb(im: Image.Image) -> Image.Image:
    """Convert any PIL image mode to 8-bit RGB (alpha composited over white)."""
    if im.mode == "RGB":
        return im
    if im.mode in ("I", "I;16", "I;16B", "I;16L", "I;16N", "F"):
        a = np.asarray(im, dtype=np.float32)
        if im.mode == "F":
            lo, hi = float(a.min()), float(a.max())
            a = (a - lo) / (hi - lo or 1.0) * 255.0
        elif im.mode.startswith("I;16") or a.max() > 255:
            a = a / 257.0  # 16-bit range to 8-bit
        return Image.fromarray(np.clip(a, 0, 255).astype(np.uint8), "L").convert("RGB")
    if (im.mode == "P" and "transparency" in im.info) or im.mode in ("RGBA", "LA", "PA", "RGBa"):
        rgba = im.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return im.convert("RGB")


def load_rgb(path: str, draft_size: int | None = None) -> Image.Image:
    """Open ``path`` as an upright 8-bit RGB image.

    ``draft_size`` lets JPEG decode at a reduced scale that still covers that many pixels on the
    short side, which makes loading large photos for small network inputs several times faster.
    Raises :class:`ImageLoadError` naming the file on any failure.
    """
    try:
        with Image.open(path) as im:
            if im.width * im.height > MAX_PIXELS:
                raise ImageLoadError(path, bomb_reason(im.width * im.height))
            if draft_size and im.format == "JPEG":
                w, h = im.size
                scale = draft_size / max(1, min(w, h))
                im.draft("RGB", (int(w * scale) + 1, int(h * scale) + 1))
            im = ImageOps.exif_transpose(im)
            im.load()
            return to_rgb(im)
    except ImageLoadError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise ImageLoadError(path, _pillow_bomb_reason(e)) from e
    except Exception as e:  # PIL raises many kinds; the caller needs one with the path
        raise ImageLoadError(path, _describe(e, path)) from e


def decode_problem(path: str) -> str | None:
    """Why ``path`` cannot be decoded in full, or None when it can.

    Decodes as training will (orientation, mode conversion included) but cheaply: JPEGs in
    draft mode at an eighth of their size, which still reads all of their data.
    """
    try:
        load_rgb(path, draft_size=1)
    except ImageLoadError as e:
        return e.reason
    return None


def _describe(e: Exception, path: str) -> str:
    if isinstance(e, FileNotFoundError):
        return "file not found (was it moved or deleted?)"
    if isinstance(e, PermissionError):
        return "cannot read (permission denied)"
    if isinstance(e, UnidentifiedImageError):
        try:
            if os.path.getsize(path) == 0:
                return "empty file (0 bytes)"
        except OSError:
            pass
        return "not an image (no known image format)"
    if "truncated" in str(e).lower():
        return "truncated image (the file ends too early)"
    return f"cannot decode ({type(e).__name__}: {e})"
