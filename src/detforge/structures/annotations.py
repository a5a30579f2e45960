"""Leaf vocabulary of the dataset layer: images, annotations, categories, problems.

Every box in these types is in absolute pixels, XYXY (x_min, y_min, x_max, y_max), in the frame of
the image *as displayed*, i.e. after applying its EXIF orientation (detforge's one EXIF policy).
Format quirks (COCO XYWH, YOLO normalised centres, VOC 1-based pixels) are converted at the edge,
in each format's module, and never appear here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

__all__ = [
    "RLE",
    "Annotation",
    "BBox",
    "Categories",
    "Category",
    "ImageRecord",
    "Location",
    "Polygons",
    "Problem",
    "Segmentation",
    "Severity",
]

BBox = tuple[float, float, float, float]
"""A box in absolute pixels, XYXY: (x_min, y_min, x_max, y_max)."""

Severity = Literal["error", "warning", "info"]


@dataclass(frozen=True)
class Location:
    """Where something came from: a file (as the user would recognise it) and optionally a line.

    `item`, when a reader sets it, is how the user's own file names and writes the thing found there
    (e.g. `annotation 11 (image 7): bbox [10, 10, -5, 20]`, `<box label="cat" xtl="10" ...> on image 0`);
    messages quote it instead of detforge's internal ids and XYXY numbers. It is not part of equality.
    """

    file: str
    line: int | None = None
    item: str | None = field(default=None, compare=False)

    def __str__(self) -> str:
        return f"{self.file}:{self.line}" if self.line is not None else self.file


@dataclass(frozen=True)
class Polygons:
    """One or more polygons; each a flat tuple (x0, y0, x1, y1, ...) in absolute pixels, >= 3 points."""

    points: tuple[tuple[float, ...], ...]

    def __post_init__(self) -> None:
        for i, poly in enumerate(self.points):
            if len(poly) < 6 or len(poly) % 2:
                raise ValueError(f"Polygons.points[{i}]: expected an even number >= 6 of coordinates, got {len(poly)}")

    def bbox(self) -> BBox:
        """The tight XYXY box around all polygons."""
        xs = [v for poly in self.points for v in poly[0::2]]
        ys = [v for poly in self.points for v in poly[1::2]]
        return (min(xs), min(ys), max(xs), max(ys))


@dataclass(frozen=True)
class RLE:
    """A COCO run-length-encoded mask: `counts` uncompressed (ints) or compressed (str), `size` = (height, width)."""

    counts: tuple[int, ...] | str
    size: tuple[int, int]


Segmentation = Polygons | RLE


@dataclass(frozen=True)
class Category:
    """A class as the dataset names it: `id` is the dataset's own id (any int), `name` is unique."""

    id: int
    name: str
    supercategory: str = ""


@dataclass(frozen=True)
class Categories:
    """The only place where dataset category ids, contiguous indices (0..K-1) and names are mapped.

    Order is the dataset's order (sorted by id for COCO); index i is `items[i]`.
    """

    items: tuple[Category, ...]

    def __post_init__(self) -> None:
        ids = [c.id for c in self.items]
        names = [c.name for c in self.items]
        dup_ids = sorted({i for i in ids if ids.count(i) > 1})
        if dup_ids:
            raise ValueError(f"Categories: duplicate category ids {dup_ids}; each id must be unique")
        dup_names = sorted({n for n in names if names.count(n) > 1})
        if dup_names:
            raise ValueError(f"Categories: duplicate category names {dup_names}; each name must be unique")

    @classmethod
    def from_names(cls, names: list[str] | tuple[str, ...], first_id: int = 1) -> Categories:
        """Categories numbered `first_id`, `first_id + 1`, ... in the given order."""
        return cls(tuple(Category(first_id + i, n) for i, n in enumerate(names)))

    def __len__(self) -> int:
        return len(self.items)

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self.items)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.items)

    @property
    def ids(self) -> tuple[int, ...]:
        return tuple(c.id for c in self.items)

    def has_id(self, category_id: int) -> bool:
        return any(c.id == category_id for c in self.items)

    def index_of_id(self, category_id: int) -> int:
        """Contiguous index (0..K-1) of a dataset category id; KeyError naming the id if unknown."""
        for i, c in enumerate(self.items):
            if c.id == category_id:
                return i
        raise KeyError(f"unknown category id {category_id}; known ids: {list(self.ids)}")

    def by_id(self, category_id: int) -> Category:
        return self.items[self.index_of_id(category_id)]

    def by_name(self, name: str) -> Category:
        for c in self.items:
            if c.name == name:
                return c
        raise KeyError(f"unknown category name {name!r}; known names: {list(self.names)}")


@dataclass(frozen=True)
class ImageRecord:
    """One image of a dataset.

    `file_name` is the path as the annotation file refers to it (posix, usually relative);
    `path` is where it resolves on disk (it may not exist: `check` reports that).
    `width`/`height` are in pixels of the EXIF-oriented image; 0 means unknown.
    `subset` is the split the image belongs to ("train", "val", "test", ...) or None.
    """

    id: int
    file_name: str
    path: Path
    width: int
    height: int
    subset: str | None = None
    source: Location | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if self.width < 0 or self.height < 0:
            raise ValueError(f"ImageRecord {self.id}: width/height must be >= 0, got {self.width}x{self.height}")


@dataclass(frozen=True)
class Annotation:
    """One labelled object: an XYXY pixel box, optional mask, on image `image_id`, class `category_id`.

    `category_id` is the dataset's category id (see `Categories`). `area` is the mask area when the
    source gives one (COCO), else None (use `box_area`). `text` is the box's transcription (what is
    written inside it, as the labelling tool kept it) or None when the box has none; `attributes`
    keep every attribute as read, the transcription's source attribute included.
    """

    id: int
    image_id: int
    category_id: int
    bbox: BBox
    segmentation: Segmentation | None = None
    iscrowd: bool = False
    area: float | None = None
    attributes: tuple[tuple[str, str], ...] = ()
    source: Location | None = field(default=None, compare=False)
    text: str | None = None

    def __post_init__(self) -> None:
        if len(self.bbox) != 4:
            raise ValueError(f"Annotation {self.id}: bbox must have 4 numbers (XYXY), got {len(self.bbox)}")
        if self.text is not None and not isinstance(self.text, str):
            raise ValueError(f"Annotation {self.id}: text must be a string or None, got {type(self.text).__name__}")

    @property
    def box_width(self) -> float:
        return self.bbox[2] - self.bbox[0]

    @property
    def box_height(self) -> float:
        return self.bbox[3] - self.bbox[1]

    @property
    def box_area(self) -> float:
        return max(self.box_width, 0.0) * max(self.box_height, 0.0)

    def is_finite(self) -> bool:
        return all(math.isfinite(v) for v in self.bbox)


@dataclass(frozen=True)
class Problem:
    """One thing wrong (or worth knowing) about a dataset, located as precisely as possible.

    `code` is stable and machine-readable (e.g. "box.out_of_image"); `message` is for people.
    """

    severity: Severity
    code: str
    message: str
    location: Location | None = None
    image_id: int | None = None
    annotation_id: int | None = None

    def __str__(self) -> str:
        where = f"{self.location}: " if self.location else ""
        return f"{self.severity}: {where}{self.message} [{self.code}]"

    def to_json(self) -> dict[str, object]:
        return {
            "severity": self.severity,
            "code": self.code,
            "message": self.message,
            "file": self.location.file if self.location else None,
            "line": self.location.line if self.location else None,
            "image_id": self.image_id,
            "annotation_id": self.annotation_id,
        }
