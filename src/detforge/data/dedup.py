"""Near-duplicate images by perceptual hash: the usual cause of train/val leakage."""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass
from pathlib import Path

import imagehash
import numpy as np
from PIL import Image

from detforge.data.dataset import Dataset
from detforge.data.images import MAX_PIXELS
from detforge.errors import ConfigError, InvalidImage
from detforge.progress import LARGE_SET, track
from detforge.structures import ImageRecord

__all__ = ["HASH_BITS", "DuplicatePair", "near_duplicates", "perceptual_hash"]

logger = logging.getLogger(__name__)

HASH_BITS = 64
"""Bits in a perceptual hash; a hamming distance is in 0..HASH_BITS."""

_DRAFT_SIZE = (64, 64)
_HASH_INPUT = 32  # phash's own working size for hash_size=8 (hash_size * highfreq_factor)
# EXIF orientation -> the transpose that displays the image upright.
_TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


def _orientation(im: Image.Image) -> int:
    try:
        value = int(im.getexif().get(0x0112, 1) or 1)
    except Exception:  # a broken EXIF block is not a broken image
        return 1
    return value if value in range(1, 9) else 1


@dataclass(frozen=True)
class DuplicatePair:
    """Two images whose perceptual hashes differ in `distance` bits (0 = look identical at thumbnail size).

    `first` sorts before `second` by (file_name, id).
    """

    first: ImageRecord
    second: ImageRecord
    distance: int

    def __post_init__(self) -> None:
        if not 0 <= self.distance <= HASH_BITS:
            raise ValueError(f"DuplicatePair.distance: expected 0..{HASH_BITS}, got {self.distance}")


def perceptual_hash(path: str | Path) -> int:
    """64-bit DCT perceptual hash (imagehash.phash) of the image as displayed (EXIF orientation applied).

    JPEGs are decoded at reduced scale, in grayscale. Raises InvalidImage naming the file when it cannot
    be decoded (missing, not an image, truncated, larger than MAX_PIXELS).
    """
    path = Path(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                if im.width * im.height > MAX_PIXELS:
                    raise InvalidImage(f"{path}: {im.width}x{im.height} pixels exceeds the limit of {MAX_PIXELS}")
                orientation = _orientation(im)
                if im.format in ("JPEG", "MPO"):
                    im.draft("L", _DRAFT_SIZE)
                small = im.convert("L").resize((_HASH_INPUT, _HASH_INPUT), Image.Resampling.LANCZOS)
    except FileNotFoundError:
        raise InvalidImage(f"{path}: file not found") from None
    except InvalidImage:
        raise
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise InvalidImage(f"{path}: cannot decode image ({exc})") from None
    if orientation in _TRANSPOSE:
        small = small.transpose(_TRANSPOSE[orientation])
    bits = imagehash.phash(small, hash_size=8).hash
    return int.from_bytes(np.packbits(bits.astype(bool).ravel()).tobytes(), "big")


def near_duplicates(
    dataset: Dataset, *, max_distance: int = 6, across_subsets_only: bool = True
) -> list[DuplicatePair]:
    """Pairs of images whose perceptual hashes differ in at most `max_distance` of 64 bits.

    Finds resized, recompressed and lightly edited copies. With `across_subsets_only`, only pairs whose
    subsets differ are returned (None counts as a subset of its own). Unreadable images are skipped
    (`check_dataset` reports them). Pairs are sorted by distance, then by file names.
    """
    if isinstance(max_distance, bool) or not isinstance(max_distance, int) or not 0 <= max_distance <= HASH_BITS:
        raise ConfigError(f"near_duplicates: max_distance must be an integer in 0..{HASH_BITS}, got {max_distance!r}")
    records = sorted(dataset.images, key=lambda im: (im.file_name, im.id))
    kept: list[ImageRecord] = []
    hashes: list[int] = []
    for image in track(records, desc="near-duplicates", min_total=LARGE_SET):
        try:
            hashes.append(perceptual_hash(image.path))
        except InvalidImage as exc:
            logger.debug("near_duplicates: skipping %s", exc)
            continue
        kept.append(image)
    if len(kept) < 2:
        return []
    values = np.array(hashes, dtype=np.uint64)
    codes: dict[str | None, int] = {}
    subset_codes = np.array([codes.setdefault(im.subset, len(codes)) for im in kept], dtype=np.int64)
    found: list[DuplicatePair] = []
    for i in range(len(kept) - 1):
        # [N - i - 1] hamming distances from image i to every later image
        distance = np.bitwise_count(values[i + 1 :] ^ values[i])
        close = distance <= max_distance
        if across_subsets_only:
            close &= subset_codes[i + 1 :] != subset_codes[i]
        for j in np.flatnonzero(close):
            found.append(DuplicatePair(kept[i], kept[i + 1 + int(j)], int(distance[j])))
    found.sort(key=lambda p: (p.distance, p.first.file_name, p.second.file_name, p.first.id, p.second.id))
    return found
