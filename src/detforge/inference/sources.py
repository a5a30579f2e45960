"""Image sources for prediction: files, folders, globs, bytes, numpy arrays and PIL images, decoded to RGB.

Every decoder follows `detforge.data.images`' policy: pixels are returned *as displayed* (EXIF
orientation applied), images over `MAX_PIXELS` are refused from the header before any pixel is
decoded, and anything that cannot be decoded safely raises `InvalidImage` naming the source and the
reason. Colour modes are normalised the same way for every kind of source (see `to_rgb`).
"""

from __future__ import annotations

import glob
import io
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, get_args

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from detforge.data.images import MAX_PIXELS, read_header
from detforge.errors import InvalidImage
from detforge.pixels import to_rgb

__all__ = [
    "BYTES_FORMATS",
    "IMAGE_EXTENSIONS",
    "Channels",
    "ImageSource",
    "SourceLike",
    "array_to_image",
    "decode",
    "iter_sources",
    "load_image_bytes",
    "load_image_file",
    "to_rgb",
]

Channels = Literal["RGB", "BGR"]
"""Channel order of a numpy array source: "RGB" (PIL, matplotlib) or "BGR" (OpenCV)."""

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".mpo", ".ppm"})
"""File extensions (lower case) picked up from folders and globs."""

BYTES_FORMATS = ("JPEG", "PNG", "BMP", "GIF", "TIFF", "WEBP", "PPM")
"""Pillow formats `load_image_bytes` accepts (bytes often come from the network: no exotic decoders;
JPEG covers the multi-picture MPO files of phones)."""

_GLOB_CHARS = frozenset("*?[")


@dataclass(frozen=True, eq=False)
class ImageSource:
    """One image to predict on: exactly one of `path`, `data` (encoded bytes), `array` or `image` is set.

    `name` is what results and writers call the image: the path relative to the folder for folder
    runs, the path as given for files and globs, `<bytes N>` / `<array N>` / `<image N>` otherwise.
    `channels` is the channel order of `array` (ignored for the other kinds).
    """

    name: str
    path: Path | None = None
    data: bytes | None = None
    array: np.ndarray | None = None
    image: Image.Image | None = None
    channels: Channels = "RGB"

    def __post_init__(self) -> None:
        given = [k for k in ("path", "data", "array", "image") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(f"ImageSource {self.name!r}: expected exactly one of path/data/array/image, got {given}")
        if self.channels not in get_args(Channels):
            raise ValueError(
                f"ImageSource {self.name!r}: channels must be one of {get_args(Channels)}, got {self.channels!r}"
            )


SourceLike = str | Path | bytes | bytearray | memoryview | np.ndarray | Image.Image | ImageSource
"""Anything `iter_sources` turns into `ImageSource`s (also an iterable of these)."""


# -- decoders -------------------------------------------------------------------------------------
def _check_pixels(name: str, width: int, height: int, max_pixels: int) -> None:
    if width * height > max_pixels:
        raise InvalidImage(
            f"{name}: {width}x{height} pixels exceeds the limit of {max_pixels} pixels (refused before decoding)"
        )


def _finish(im: Image.Image, name: str) -> Image.Image:
    """Decode the first frame of an opened image, apply its EXIF orientation and convert it to RGB."""
    try:
        im.seek(0)
        im.load()
        oriented = ImageOps.exif_transpose(im)
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise InvalidImage(f"{name}: cannot decode image ({exc})") from None
    return to_rgb(oriented, name)


def load_image_file(path: str | Path, max_pixels: int = MAX_PIXELS) -> Image.Image:
    """Decode a file to RGB in the displayed (EXIF-oriented) frame, first frame of multi-frame files.

    The header is read first (`detforge.data.images.read_header`): images over `max_pixels` and
    non-images are refused with InvalidImage before decoding; truncated or corrupt files likewise.
    """
    path = Path(path)
    header = read_header(path)
    _check_pixels(str(path), header.raw_width, header.raw_height, max_pixels)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                return _finish(im, str(path))
    except (UnidentifiedImageError, Image.DecompressionBombError) as exc:
        raise InvalidImage(f"{path}: not a readable image ({exc})") from None
    except OSError as exc:
        raise InvalidImage(f"{path}: cannot read image ({exc})") from None


def load_image_bytes(data: bytes, name: str = "<bytes>", max_pixels: int = MAX_PIXELS) -> Image.Image:
    """Decode an encoded image (one of `BYTES_FORMATS`) to RGB under the same policy as `load_image_file`.

    Size is checked from the header before decoding; EXIF orientation is applied; InvalidImage names
    `name` and the reason for empty, unknown, oversized, corrupt or truncated data.
    """
    if not data:
        raise InvalidImage(f"{name}: empty data, expected an encoded image ({', '.join(BYTES_FORMATS)})")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(bytes(data)), formats=BYTES_FORMATS) as im:
                _check_pixels(name, im.width, im.height, max_pixels)
                return _finish(im, name)
    except UnidentifiedImageError:
        raise InvalidImage(
            f"{name}: not a readable image (starts with {bytes(data[:8])!r}; expected {', '.join(BYTES_FORMATS)})"
        ) from None
    except Image.DecompressionBombError as exc:
        raise InvalidImage(f"{name}: refused before decoding ({exc})") from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        if isinstance(exc, InvalidImage):
            raise
        raise InvalidImage(f"{name}: cannot decode image ({exc})") from None


def array_to_image(array: np.ndarray, channels: Channels = "RGB", name: str = "<array>") -> Image.Image:
    """An RGB PIL image of a uint8 array [H, W] (gray), [H, W, 1], [H, W, 3] or [H, W, 4] (alpha onto white).

    `channels` is the order of the colour channels ("BGR" for OpenCV, also BGRA). The array is taken
    as displayed (no orientation). InvalidImage for other dtypes, shapes, empty or oversized arrays.
    """
    if not isinstance(array, np.ndarray):
        raise InvalidImage(f"{name}: expected a numpy array, got {type(array).__name__}")
    if channels not in get_args(Channels):
        raise ValueError(f"{name}: channels must be one of {get_args(Channels)}, got {channels!r}")
    if array.dtype != np.uint8:
        raise InvalidImage(
            f"{name}: array dtype is {array.dtype}, expected uint8 (0..255); "
            "convert float images in [0, 1] with (a * 255).round().astype(np.uint8)"
        )
    shape = tuple(array.shape)
    if array.ndim == 3 and shape[0] in (1, 3, 4) and shape[2] > 4:
        raise InvalidImage(
            f"{name}: array shape {list(shape)} looks channels-first; expected [H, W, 3] (use a.transpose(1, 2, 0))"
        )
    if not (array.ndim == 2 or (array.ndim == 3 and shape[2] in (1, 3, 4))):
        raise InvalidImage(f"{name}: array shape {list(shape)}, expected [H, W], [H, W, 1], [H, W, 3] or [H, W, 4]")
    height, width = shape[0], shape[1]
    if height == 0 or width == 0:
        raise InvalidImage(f"{name}: array shape {list(shape)} is empty")
    _check_pixels(name, width, height, MAX_PIXELS)
    if array.ndim == 3 and shape[2] == 1:
        array = array[:, :, 0]
    if array.ndim == 2:
        return Image.fromarray(np.ascontiguousarray(array), "L").convert("RGB")
    if channels == "BGR":
        array = array[:, :, [2, 1, 0, 3]] if shape[2] == 4 else array[:, :, ::-1]
    array = np.ascontiguousarray(array)
    if shape[2] == 4:
        return to_rgb(Image.fromarray(array, "RGBA"))
    return Image.fromarray(array, "RGB")


def decode(source: ImageSource) -> Image.Image:
    """The RGB PIL image of `source` in its displayed (EXIF-oriented) frame; InvalidImage naming it if it cannot be."""
    if source.path is not None:
        return load_image_file(source.path)
    if source.data is not None:
        return load_image_bytes(source.data, source.name)
    if source.array is not None:
        return array_to_image(source.array, source.channels, source.name)
    assert source.image is not None  # guaranteed by ImageSource.__post_init__
    im = source.image
    _check_pixels(source.name, im.width, im.height, MAX_PIXELS)
    try:
        oriented = ImageOps.exif_transpose(im)
    except (OSError, SyntaxError, ValueError) as exc:
        raise InvalidImage(f"{source.name}: cannot decode image ({exc})") from None
    return to_rgb(oriented, source.name)


# -- enumeration ----------------------------------------------------------------------------------
def _is_image_file(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_EXTENSIONS and path.is_file()


def _from_path(text: str, channels: Channels) -> Iterator[ImageSource]:
    path = Path(text)
    if path.is_dir():
        files = sorted((p for p in path.rglob("*") if _is_image_file(p)), key=lambda p: p.relative_to(path).as_posix())
        for p in files:
            yield ImageSource(p.relative_to(path).as_posix(), path=p, channels=channels)
    elif path.is_file():
        yield ImageSource(text, path=path, channels=channels)
    elif _GLOB_CHARS & set(text):
        for match in sorted(glob.glob(text, recursive=True)):
            if _is_image_file(Path(match)):
                yield ImageSource(Path(match).as_posix(), path=Path(match), channels=channels)
    else:
        raise InvalidImage(f"{text}: no such file or folder (and not a glob pattern)")


def iter_sources(source: SourceLike | Iterable[SourceLike], *, channels: Channels = "RGB") -> Iterator[ImageSource]:
    """Expand `source` into `ImageSource`s, lazily and in a stable order.

    A folder yields its image files (by `IMAGE_EXTENSIONS`, recursively, sorted by relative path); a
    glob pattern (`*`, `?`, `[`; `**` recursive) its matching image files, sorted; a file path itself
    (any extension: a bad file is reported when decoded). bytes, numpy arrays ([H, W] or [H, W, C]
    uint8 in `channels` order) and PIL images yield one source each; a list or other iterable yields
    the expansion of each item in order. A path that does not exist and is no pattern raises
    InvalidImage here; files inside a list that turn out unreadable fail later, in `decode`.
    """
    counter = 0

    def expand(item: object, top: bool) -> Iterator[ImageSource]:
        nonlocal counter
        if isinstance(item, ImageSource):
            yield item
        elif isinstance(item, str | Path):
            text = str(item)
            if not top and not Path(text).exists() and not _GLOB_CHARS & set(text):
                yield ImageSource(text, path=Path(text), channels=channels)  # reported by decode, not fatal
            else:
                yield from _from_path(text, channels)
        elif isinstance(item, bytes | bytearray | memoryview):
            counter += 1
            yield ImageSource(f"<bytes {counter}>", data=bytes(item), channels=channels)
        elif isinstance(item, np.ndarray):
            counter += 1
            yield ImageSource(f"<array {counter}>", array=item, channels=channels)
        elif isinstance(item, Image.Image):
            counter += 1
            yield ImageSource(f"<image {counter}>", image=item, channels=channels)
        elif top and isinstance(item, Iterable):
            for sub in item:
                yield from expand(sub, False)
        else:
            raise TypeError(
                f"cannot predict on a {type(item).__name__}: expected a path, folder, glob, bytes, "
                "numpy array, PIL image or a list of these"
            )

    yield from expand(source, True)
