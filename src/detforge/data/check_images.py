"""Image-file checks for `check_dataset`: is the file there, is it an image, is it whole, is its size the declared one.

Only headers and the last bytes of each file are read; no pixels are decoded.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from detforge.data.images import MAX_PIXELS, ImageHeader, read_header
from detforge.data.quoting import image_label, image_location
from detforge.errors import InvalidImage
from detforge.structures import ImageRecord, Problem, Severity

__all__ = [
    "IMAGE_EXIF_SIZE",
    "IMAGE_MISSING",
    "IMAGE_SIZE_MISMATCH",
    "IMAGE_SIZE_UNKNOWN",
    "IMAGE_TOO_LARGE",
    "IMAGE_TRUNCATED",
    "IMAGE_UNREADABLE",
    "ImageCheck",
    "check_image",
    "describe_content",
    "truncation",
]

IMAGE_MISSING = "image.missing"
IMAGE_UNREADABLE = "image.unreadable"
IMAGE_TRUNCATED = "image.truncated"
IMAGE_TOO_LARGE = "image.too_large"
IMAGE_SIZE_MISMATCH = "image.size_mismatch"
IMAGE_EXIF_SIZE = "image.size_exif"
IMAGE_SIZE_UNKNOWN = "image.size_unknown"

_HEAD_BYTES = 512
_TAIL_BYTES = 64 * 1024
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_END = b"IEND\xaeB`\x82"
_JPEG_EOI = b"\xff\xd9"
_SWAPS_AXES = {5, 6, 7, 8}


@dataclass(frozen=True)
class ImageCheck:
    """What checking one image file found: its header (None when unreadable) and the problems."""

    header: ImageHeader | None
    problems: tuple[Problem, ...]


def describe_content(head: bytes) -> str:
    """Say what a file that is not a readable image looks like, from its first bytes (cheap sniffing)."""
    if not head:
        return "an empty file (0 bytes)"
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if text.startswith((b"<!doctype html", b"<html")) or b"<head" in text[:256] or b"<body" in text[:256]:
        return "an HTML page (often an error or login page saved instead of the image)"
    if text.startswith(b"%pdf"):
        return "a PDF document"
    if b"<svg" in text:
        return "an SVG vector image (not supported: convert it to PNG)"
    if text.startswith(b"<?xml"):
        return "an XML file"
    if head[4:8] == b"ftyp":
        brand = head[8:12].decode("ascii", "replace")
        if brand.startswith(("heic", "heix", "hevc", "mif1", "msf1", "avif")):
            return f"a HEIF/AVIF image (brand {brand!r}; Pillow needs a plugin to read it: convert it to JPEG/PNG)"
        return f"an MP4/QuickTime container (brand {brand!r}), not a still image"
    if head.startswith(b"PK\x03\x04"):
        return "a ZIP archive"
    if head.startswith(b"\x1f\x8b"):
        return "a gzip archive"
    if text.startswith((b"{", b"[")):
        return "a JSON or text file"
    if all(32 <= b < 127 or b in (9, 10, 13) for b in head[:128]):
        return "a text file"
    return f"unknown content starting with bytes {head[:8].hex(' ')}"


_SIGNATURES = (
    (b"\xff\xd8\xff", "JPEG"),
    (_PNG_SIGNATURE, "PNG"),
    (b"GIF8", "GIF"),
    (b"BM", "BMP"),
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
)


def _image_kind(head: bytes) -> str | None:
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WebP"
    return next((kind for magic, kind in _SIGNATURES if head.startswith(magic)), None)


def _jpeg_scan_offset(f: BinaryIO) -> int | None:
    """Offset of the main image's first SOS marker, walking segment lengths from SOI; None if cut before it."""
    f.seek(2)
    pos = 2
    while True:
        marker = f.read(2)
        if len(marker) < 2:
            return None
        if marker[0] != 0xFF:
            return None
        if marker[1] == 0xFF:  # fill byte
            f.seek(pos + 1)
            pos += 1
            continue
        if marker[1] == 0xDA:
            return pos
        if 0xD0 <= marker[1] <= 0xD8 or marker[1] == 0x01:  # markers without a length
            pos += 2
            continue
        length_bytes = f.read(2)
        if len(length_bytes) < 2:
            return None
        pos += 2 + struct.unpack(">H", length_bytes)[0]
        f.seek(pos)


def truncation(path: Path, fmt: str, size: int) -> str | None:
    """A sentence saying why the file looks cut short, or None when its end is intact (or unknown for `fmt`).

    JPEG: no FFD9 end-of-image marker after the scan data; PNG: no IEND chunk; WebP: RIFF size past
    the end of the file; GIF: no trailer byte. Only the file's tail (and JPEG segment headers) are read.
    """
    with path.open("rb") as f:
        if fmt in ("JPEG", "MPO"):
            scan = _jpeg_scan_offset(f)
            if scan is None:
                return "JPEG ends before its image data starts"
            f.seek(max(scan, size - _TAIL_BYTES))
            if _JPEG_EOI not in f.read():
                return "JPEG has no end-of-image marker (FFD9): the file was cut short"
            return None
        f.seek(max(0, size - _TAIL_BYTES))
        tail = f.read()
        if fmt == "PNG" and _PNG_END not in tail:
            return "PNG has no IEND chunk: the file was cut short"
        if fmt == "GIF" and not tail.rstrip(b"\x00").endswith(b";"):
            return "GIF has no trailer byte (3B): the file was cut short"
        if fmt == "WEBP":
            f.seek(4)
            riff = f.read(4)
            if len(riff) == 4 and struct.unpack("<I", riff)[0] + 8 > size:
                declared = struct.unpack("<I", riff)[0] + 8
                return f"WebP declares {declared} bytes but the file has {size}: it was cut short"
    return None


def _problem(severity: Severity, code: str, image: ImageRecord, message: str) -> Problem:
    text = f"{image_label(image)} ({image.file_name}): {message}"
    return Problem(severity, code, text, image_location(image), image.id)


def _size_problems(image: ImageRecord, header: ImageHeader) -> list[Problem]:
    declared = (image.width, image.height)
    actual = (header.width, header.height)
    raw = (header.raw_width, header.raw_height)
    if image.width == 0 or image.height == 0:
        return [
            _problem(
                "info",
                IMAGE_SIZE_UNKNOWN,
                image,
                f"size not given ({image.width}x{image.height}); the file says {actual[0]}x{actual[1]} as displayed, "
                "which is used",
            )
        ]
    if declared == actual:
        return []
    if declared == raw and header.orientation in _SWAPS_AXES:
        return [
            _problem(
                "error",
                IMAGE_EXIF_SIZE,
                image,
                f"declared size {declared[0]}x{declared[1]} is the raw, unrotated size; EXIF orientation "
                f"{header.orientation} displays it as {actual[0]}x{actual[1]}, which explains the difference: "
                "labels may have been drawn on the unrotated image (detforge uses the displayed frame)",
            )
        ]
    exif_note = f" (EXIF orientation {header.orientation} does not explain it)" if header.orientation != 1 else ""
    return [
        _problem(
            "error",
            IMAGE_SIZE_MISMATCH,
            image,
            f"declared size {declared[0]}x{declared[1]} but the file is {actual[0]}x{actual[1]} "
            f"as displayed{exif_note}",
        )
    ]


def check_image(image: ImageRecord) -> ImageCheck:
    """Check one image file: missing, not an image, truncated, too large, declared size vs oriented size.

    Every problem's location is the image's path on disk; `header` is None when the header is unreadable.
    """
    path = Path(image.path)
    if not path.exists():
        listed = f" (listed in {image.source})" if image.source else ""
        return ImageCheck(None, (_problem("error", IMAGE_MISSING, image, f"file not found{listed}"),))
    try:
        if path.is_dir():
            raise IsADirectoryError(f"{path} is a folder")
        size = path.stat().st_size
        with path.open("rb") as f:
            head = f.read(_HEAD_BYTES)
    except OSError as exc:
        return ImageCheck(None, (_problem("error", IMAGE_UNREADABLE, image, f"cannot be read ({exc})"),))
    try:
        header = read_header(path)
    except InvalidImage as exc:
        kind = _image_kind(head)
        if kind:
            reason = str(exc).removeprefix(f"{path}: ")
            message = f"starts like a {kind} image but cannot be read ({reason})"
        else:
            message = f"not a readable image; it looks like {describe_content(head)}"
        return ImageCheck(None, (_problem("error", IMAGE_UNREADABLE, image, message),))
    problems: list[Problem] = []
    try:
        cut = truncation(path, header.format, size)
    except OSError as exc:
        cut = f"its end cannot be read ({exc})"
    if cut:
        problems.append(_problem("error", IMAGE_TRUNCATED, image, cut))
    if header.raw_width * header.raw_height > MAX_PIXELS:
        problems.append(
            _problem(
                "error",
                IMAGE_TOO_LARGE,
                image,
                f"{header.raw_width}x{header.raw_height} pixels exceeds the limit of {MAX_PIXELS} pixels; it cannot be "
                "loaded",
            )
        )
    problems.extend(_size_problems(image, header))
    return ImageCheck(header, tuple(problems))
