"""Image headers and decoding under one EXIF policy.

Policy: detforge always shows, trains and predicts on the image *as displayed* — the pixels after
applying the EXIF orientation tag — and every box is in that frame. `ImageHeader.width/height`
are the oriented size; `raw_width/raw_height` what the file stores.
"""

from __future__ import annotations

import math
import struct
import warnings
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageOps, UnidentifiedImageError

from detforge.errors import InvalidImage
from detforge.pixels import to_rgb
from detforge.progress import tick

__all__ = ["MAX_PIXELS", "MAX_SIDE", "ImageHeader", "declared_size", "displayed_size", "load_image", "read_header"]

MAX_PIXELS = 20_000 * 20_000
"""Largest image (width * height) detforge decodes; larger ones are refused before allocation."""

_SWAPS_AXES = {5, 6, 7, 8}
MAX_SIDE = 1_000_000
"""Largest width or height an annotation file may declare; anything larger is treated as not declared."""
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _orientation_from_exif(exif: Image.Exif) -> int:
    try:
        value = int(exif.get(0x0112, 1) or 1)
    except (TypeError, ValueError):
        return 1
    return value if value in range(1, 9) else 1


def _png_orientation(path: Path) -> int:
    """EXIF orientation from a PNG's eXIf chunk, found by skipping chunks (Pillow's getexif decodes PNGs)."""
    with path.open("rb") as f:
        if f.read(8) != _PNG_SIGNATURE:
            return 1
        while True:
            chunk = f.read(8)
            if len(chunk) < 8:
                return 1
            length, kind = struct.unpack(">I4s", chunk)
            if kind == b"eXIf":
                exif = Image.Exif()
                try:
                    exif.load(f.read(length))
                except Exception:  # a broken EXIF block is not a broken image
                    return 1
                return _orientation_from_exif(exif)
            if kind == b"IEND":
                return 1
            f.seek(length + 4, 1)


@dataclass(frozen=True)
class ImageHeader:
    """What an image file says about itself without decoding its pixels."""

    format: str
    raw_width: int
    raw_height: int
    orientation: int = 1
    mode: str = "RGB"

    @property
    def width(self) -> int:
        return self.raw_height if self.orientation in _SWAPS_AXES else self.raw_width

    @property
    def height(self) -> int:
        return self.raw_width if self.orientation in _SWAPS_AXES else self.raw_height


def read_header(path: str | Path) -> ImageHeader:
    """Read format, size, mode and EXIF orientation; InvalidImage naming the file if not an image."""
    path = Path(path)
    tick("header")  # the loading bar of a large dataset (see detforge.progress)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                if im.format == "PNG":
                    orientation = _png_orientation(path)
                else:
                    try:
                        orientation = _orientation_from_exif(im.getexif())
                    except Exception:  # a broken EXIF block is not a broken image
                        orientation = 1
                return ImageHeader(str(im.format), im.width, im.height, orientation, im.mode)
    except FileNotFoundError:
        raise InvalidImage(f"{path}: file not found") from None
    except (UnidentifiedImageError, Image.DecompressionBombError) as exc:
        raise InvalidImage(f"{path}: not a readable image ({exc})") from None
    except (OSError, struct.error) as exc:
        raise InvalidImage(f"{path}: cannot read image header ({exc})") from None


def declared_size(width: object, height: object) -> tuple[int, int] | None:
    """(width, height) as ints when both are whole numbers in 1..MAX_SIDE (not bool, NaN, inf), else None."""
    sides = []
    for value in (width, height):
        if isinstance(value, bool) or not isinstance(value, int | float):
            return None
        if not math.isfinite(value) or value != int(value) or not 0 < value <= MAX_SIDE:
            return None
        sides.append(int(value))
    return sides[0], sides[1]


def displayed_size(path: str | Path) -> tuple[int, int]:
    """(width, height) of the image as displayed (EXIF applied), or (0, 0) when it cannot be read."""
    try:
        header = read_header(path)
    except InvalidImage:
        return 0, 0
    return header.width, header.height


def load_image(path: str | Path, max_pixels: int = MAX_PIXELS) -> Image.Image:
    """Decode to an 8-bit RGB PIL image in the displayed (EXIF-oriented) frame (modes as `pixels.to_rgb`).

    Refuses images over `max_pixels` before decoding, and truncated or corrupt files, with InvalidImage.
    """
    path = Path(path)
    header = read_header(path)
    if header.raw_width * header.raw_height > max_pixels:
        raise InvalidImage(
            f"{path}: {header.raw_width}x{header.raw_height} pixels exceeds the limit of {max_pixels} pixels"
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                im.load()
                oriented = ImageOps.exif_transpose(im)
                return to_rgb(oriented, str(path))
    except (OSError, SyntaxError, ValueError) as exc:
        raise InvalidImage(f"{path}: cannot decode image ({exc})") from None
