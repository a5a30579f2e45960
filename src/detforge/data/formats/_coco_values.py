"""Conversion of single COCO json values (ids, boxes, masks, attributes) into detforge values."""

from __future__ import annotations

import json
import math
from typing import Any

from detforge.structures import RLE, BBox, Polygons, Segmentation

__all__ = ["is_number", "json_type", "parse_attributes", "parse_bbox", "parse_segmentation", "to_int"]


_NUMBER_TYPES = (int, float)  # what the json module produces for numbers (bool is a separate type)


def json_type(value: Any) -> str:
    """The JSON name of a Python value's type ("object", "array", "string", ...)."""
    if isinstance(value, bool):
        return "a boolean"
    if value is None:
        return "null"
    names = {dict: "an object", list: "an array", str: "a string", int: "a number", float: "a number"}
    return names.get(type(value), type(value).__name__)


def is_number(value: Any) -> bool:
    """True for JSON numbers (ints and floats, NaN included), False for booleans and everything else."""
    return type(value) in _NUMBER_TYPES


def to_int(value: Any) -> int | None:
    """An integer id or size: ints, and floats with an integral value; None for anything else."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return int(value)
    return None


def parse_bbox(value: Any) -> BBox | None:
    """COCO [x, y, width, height] (pixels) -> XYXY; None unless a list of exactly 4 numbers.

    Numbers are kept whatever their value (NaN, negative or zero size): judging them is `check`'s job.
    """
    if not isinstance(value, list) or len(value) != 4 or not all(map(is_number, value)):
        return None
    x, y, w, h = (float(v) for v in value)
    return (x, y, x + w, y + h)


def _polygon(value: Any) -> tuple[float, ...] | None:
    if isinstance(value, list) and len(value) >= 6 and len(value) % 2 == 0 and all(map(is_number, value)):
        return tuple(map(float, value))
    return None


def _rle(value: dict[str, Any], notes: list[str]) -> RLE | None:
    counts, size = value.get("counts"), value.get("size")
    if not (isinstance(size, list) and len(size) == 2 and all(to_int(v) is not None and v >= 0 for v in size)):
        notes.append(f"RLE 'size' must be [height, width], got {size!r}; mask ignored")
        return None
    height, width = (int(v) for v in size)
    if isinstance(counts, str):
        return RLE(counts, (height, width))
    if isinstance(counts, list) and all(to_int(v) is not None and v >= 0 for v in counts):
        return RLE(tuple(int(v) for v in counts), (height, width))
    notes.append("RLE 'counts' must be a list of non-negative integers or a compressed string; mask ignored")
    return None


def parse_segmentation(value: Any, notes: list[str]) -> Segmentation | None:
    """COCO polygons (absolute pixels) -> Polygons, RLE dict -> RLE; `[]`/null/missing -> None.

    Malformed parts are left out with a note appended to `notes`.
    """
    if value is None or value == [] or value == {}:
        return None
    if isinstance(value, dict):
        return _rle(value, notes)
    if isinstance(value, list):
        if value and all(map(is_number, value)):  # a single polygon written flat
            value = [value]
        polygons = [p for p in (_polygon(v) for v in value) if p is not None]
        if len(polygons) < len(value):
            notes.append(
                f"{len(value) - len(polygons)} of {len(value)} polygon(s) are not lists of >= 6 numbers "
                "(an even count); left out"
            )
        return Polygons(tuple(polygons)) if polygons else None
    notes.append(f"'segmentation' must be a list of polygons or an RLE object, got {json_type(value)}; ignored")
    return None


def _attribute_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def parse_attributes(value: Any, notes: list[str]) -> tuple[tuple[str, str], ...]:
    """CVAT's `attributes` object -> sorted (name, value) string pairs (non-strings as JSON text: 1, true)."""
    if value is None:
        return ()
    if not isinstance(value, dict):
        notes.append(f"'attributes' must be an object, got {json_type(value)}; ignored")
        return ()
    return tuple(sorted((str(k), _attribute_text(v)) for k, v in value.items()))
