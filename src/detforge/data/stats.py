"""Dataset statistics: counts per class and subset, boxes per image, box and image sizes, transcriptions.

Everything is computed from the annotations as stored (no image is opened): boxes are absolute
XYXY pixels; relative measures use `ImageRecord.width/height`, so images of unknown size (0) are
left out of them and counted in `num_unknown_size_images`.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, fields, is_dataclass
from typing import Any

import numpy as np

from detforge.data.dataset import Dataset
from detforge.data.stats_format import format_stats, format_text_table, subset_label
from detforge.data.stats_text import TextStats, text_stats

__all__ = [
    "LARGE_AREA",
    "SMALL_AREA",
    "BoxMeasures",
    "ClassStats",
    "CountDistribution",
    "DatasetStats",
    "ImageSize",
    "Quantiles",
    "SizeBuckets",
    "SubsetStats",
    "TextStats",
    "box_measures",
    "dataset_stats",
    "format_text_table",
    "subset_label",
]

SMALL_AREA = 32**2
"""COCO's area rule: a box with area (px^2) below this is small."""
LARGE_AREA = 96**2
"""COCO's area rule: a box with area at or above this is large (in between: medium)."""

_TOP_IMAGE_SIZES = 10


@dataclass(frozen=True)
class Quantiles:
    """Summary of a set of numbers; every statistic is None when `count` is 0."""

    count: int
    mean: float | None
    min: float | None
    p05: float | None
    p25: float | None
    p50: float | None
    p75: float | None
    p95: float | None
    max: float | None

    @classmethod
    def of(cls, values: Sequence[float] | np.ndarray) -> Quantiles:
        """Quantiles (linear interpolation) of the finite `values`."""
        arr = np.asarray(values, dtype=np.float64)
        arr = arr[np.isfinite(arr)]
        if arr.size == 0:
            return cls(0, None, None, None, None, None, None, None, None)
        q = [float(v) for v in np.quantile(arr, [0.0, 0.05, 0.25, 0.5, 0.75, 0.95, 1.0])]
        return cls(int(arr.size), float(arr.mean()), *q)


@dataclass(frozen=True)
class CountDistribution:
    """Distribution of a per-image count: `histogram[i]` images have a count in [edges[i], edges[i+1])."""

    min: int
    median: float
    mean: float
    max: int
    edges: tuple[int, ...]
    histogram: tuple[int, ...]


@dataclass(frozen=True)
class SizeBuckets:
    """Boxes by COCO's area rule on the absolute box area: small < 32^2 <= medium < 96^2 <= large."""

    small: int = 0
    medium: int = 0
    large: int = 0

    @property
    def total(self) -> int:
        return self.small + self.medium + self.large


@dataclass(frozen=True)
class ClassStats:
    """One category: its instances, the images it appears in, and its valid boxes by size."""

    name: str
    category_id: int
    instances: int
    images: int
    sizes: SizeBuckets


@dataclass(frozen=True)
class SubsetStats:
    """One subset (`name` None: images without a subset): images, annotations, and instances per class name."""

    name: str | None
    images: int
    annotations: int
    empty_images: int
    instances_per_class: dict[str, int]


@dataclass(frozen=True)
class ImageSize:
    """A distinct image size (pixels, EXIF-oriented) and how many images have it."""

    width: int
    height: int
    count: int


@dataclass(frozen=True)
class DatasetStats:
    """What `dataset_stats` measures. Invalid boxes (non-finite, or zero/negative width or height) count
    as instances but are left out of every size measure. `subsets` is empty when no image has a subset.
    `text` counts the boxes with, blank and without a transcription and measures the values (`text_stats`)."""

    num_images: int
    num_annotations: int
    num_empty_images: int
    num_unknown_size_images: int
    num_invalid_boxes: int
    instances_per_class: dict[str, int]
    classes: tuple[ClassStats, ...]
    boxes_per_image: CountDistribution
    box_sizes: SizeBuckets
    relative_size: Quantiles
    aspect_ratio: Quantiles
    image_width: Quantiles
    image_height: Quantiles
    image_sizes: tuple[ImageSize, ...]
    num_distinct_image_sizes: int
    subsets: tuple[SubsetStats, ...]
    text: TextStats

    def to_json(self) -> dict[str, Any]:
        """A plain dict of dicts, lists, str, int, float and None (finite numbers only), ready for json.dumps."""
        out = _plain(self)
        assert isinstance(out, dict)
        return out

    def format_table(self) -> str:
        """Readable terminal text: a summary, classes x subsets, box sizes, size quantiles, transcriptions."""
        return format_stats(self)


@dataclass(frozen=True)
class BoxMeasures:
    """Per-box and per-image arrays behind the statistics (for plots). Boxes are the dataset's
    valid boxes in order; `known` marks those on images of known size, the only ones with finite
    `relative_size` and `centers` (elsewhere NaN)."""

    category_id: np.ndarray  # [M] int, the dataset's category id of each box
    area: np.ndarray  # [M] float, px^2
    aspect_ratio: np.ndarray  # [M] float, width / height
    relative_size: np.ndarray  # [M] float, sqrt(box area / image area), NaN if image size unknown
    centers: np.ndarray  # [M, 2] float, box centre (x / width, y / height) in the image, NaN if unknown
    known: np.ndarray  # [M] bool
    boxes_per_image: np.ndarray  # [num_images] int, in dataset.images order
    num_invalid: int


def box_measures(dataset: Dataset) -> BoxMeasures:
    """Measure every valid box of `dataset` (see `BoxMeasures`)."""
    sizes = {im.id: (im.width, im.height) for im in dataset.images}
    rows: list[tuple[int, float, float, float, float, float, float]] = []
    invalid = 0
    for ann in dataset.annotations:
        x0, y0, x1, y1 = (float(v) for v in ann.bbox)
        bw, bh = x1 - x0, y1 - y0
        if not (ann.is_finite() and bw > 0 and bh > 0):
            invalid += 1
            continue
        iw, ih = sizes.get(ann.image_id, (0, 0))
        rows.append((ann.category_id, bw, bh, iw, ih, (x0 + x1) / 2, (y0 + y1) / 2))
    data = np.asarray(rows, dtype=np.float64).reshape(-1, 7)
    widths, heights, image_wh = data[:, 1], data[:, 2], data[:, 3:5]
    known: np.ndarray = np.all(image_wh > 0, axis=1)
    safe_wh = np.where(known[:, None], image_wh, 1.0)
    rel = np.where(known, np.sqrt(widths * heights / safe_wh.prod(axis=1)), np.nan)
    centers = np.where(known[:, None], data[:, 5:7] / safe_wh, np.nan)
    counts = Counter(a.image_id for a in dataset.annotations)
    return BoxMeasures(
        category_id=data[:, 0].astype(np.int64),
        area=widths * heights,
        aspect_ratio=widths / heights,
        relative_size=rel,
        centers=centers.reshape(-1, 2),
        known=known,
        boxes_per_image=np.asarray([counts.get(im.id, 0) for im in dataset.images], dtype=np.int64),
        num_invalid=invalid,
    )


def _buckets(areas: np.ndarray) -> SizeBuckets:
    small = int(np.count_nonzero(areas < SMALL_AREA))
    large = int(np.count_nonzero(areas >= LARGE_AREA))
    return SizeBuckets(small, int(areas.size) - small - large, large)


def _count_distribution(counts: np.ndarray, max_bins: int = 40) -> CountDistribution:
    if counts.size == 0:
        return CountDistribution(0, 0.0, 0.0, 0, (0, 1), (0,))
    top = int(counts.max())
    width = max(1, math.ceil((top + 1) / max_bins))
    edges = np.arange(0, top + width + 1, width)
    hist, _ = np.histogram(counts, bins=edges)
    return CountDistribution(
        int(counts.min()), float(np.median(counts)), float(counts.mean()), top,
        tuple(int(e) for e in edges), tuple(int(h) for h in hist),
    )  # fmt: skip


def _subset_stats(dataset: Dataset, names: dict[int, str]) -> tuple[SubsetStats, ...]:
    present = dataset.subsets
    if not present:
        return ()
    order: list[str | None] = [*present]
    if any(im.subset is None for im in dataset.images):
        order.append(None)
    out = []
    for name in order:
        ids = {im.id for im in dataset.images if im.subset == name}
        anns = [a for a in dataset.annotations if a.image_id in ids]
        per_class = dict.fromkeys(dataset.categories.names, 0)
        for a in anns:
            key = names.get(a.category_id, _unknown_name(a.category_id))
            per_class[key] = per_class.get(key, 0) + 1
        with_objects = {a.image_id for a in anns}
        out.append(SubsetStats(name, len(ids), len(anns), len(ids - with_objects), per_class))
    return tuple(out)


def _unknown_name(category_id: int) -> str:
    return f"(unknown id {category_id})"


def dataset_stats(dataset: Dataset) -> DatasetStats:
    """Count and measure the images and annotations of `dataset` (see `DatasetStats`)."""
    measures = box_measures(dataset)
    names = {c.id: c.name for c in dataset.categories}
    images_with: dict[int, set[int]] = {c.id: set() for c in dataset.categories}
    per_id = Counter(a.category_id for a in dataset.annotations)
    for ann in dataset.annotations:
        images_with.setdefault(ann.category_id, set()).add(ann.image_id)
    order = {cid: i for i, cid in enumerate(images_with)}
    slot = np.asarray([order[int(c)] for c in measures.category_id], dtype=np.int64)
    size_class = (measures.area >= SMALL_AREA).astype(np.int64) + (measures.area >= LARGE_AREA)
    by_class = np.bincount(slot * 3 + size_class, minlength=3 * len(order)).reshape(-1, 3)
    classes = tuple(
        ClassStats(
            names.get(cid, _unknown_name(cid)),
            cid,
            per_id.get(cid, 0),
            len(seen),
            SizeBuckets(*(int(v) for v in by_class[order[cid]])),
        )
        for cid, seen in images_with.items()
    )

    known = [im for im in dataset.images if im.width > 0 and im.height > 0]
    size_counts = Counter((im.width, im.height) for im in known)
    top_sizes = sorted(size_counts.items(), key=lambda kv: (-kv[1], kv[0]))[:_TOP_IMAGE_SIZES]
    return DatasetStats(
        num_images=len(dataset.images),
        num_annotations=len(dataset.annotations),
        num_empty_images=int(np.count_nonzero(measures.boxes_per_image == 0)),
        num_unknown_size_images=len(dataset.images) - len(known),
        num_invalid_boxes=measures.num_invalid,
        instances_per_class={c.name: c.instances for c in classes},
        classes=classes,
        boxes_per_image=_count_distribution(measures.boxes_per_image),
        box_sizes=_buckets(measures.area),
        relative_size=Quantiles.of(measures.relative_size),
        aspect_ratio=Quantiles.of(measures.aspect_ratio),
        image_width=Quantiles.of([im.width for im in known]),
        image_height=Quantiles.of([im.height for im in known]),
        image_sizes=tuple(ImageSize(w, h, c) for (w, h), c in top_sizes),
        num_distinct_image_sizes=len(size_counts),
        subsets=_subset_stats(dataset, names),
        text=text_stats(dataset),
    )


def _plain(value: Any) -> Any:
    """Dataclasses, dicts, tuples and numpy scalars as plain JSON-safe Python values."""
    if is_dataclass(value) and not isinstance(value, type):
        out = {f.name: _plain(getattr(value, f.name)) for f in fields(value)}
        if isinstance(value, SizeBuckets):
            out["total"] = value.total
        if isinstance(value, TextStats):
            out["read_classes"] = list(value.read_classes)
            out["charset"] = value.charset
        return out
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    return value
