"""Parse YOLO label files (normalised `cls cx cy w h` boxes and `cls x1 y1 ...` polygons) into pixels."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from detforge.structures import BBox, Location, Polygons, Problem

__all__ = ["COORD_TOLERANCE", "LabelObject", "parse_label_text", "written_line"]

COORD_TOLERANCE = 1e-3
"""How far outside [0, 1] a normalised coordinate may be before a `yolo.coords_out_of_range` warning."""


@dataclass(frozen=True)
class LabelObject:
    """One object of a label file: class index, XYXY pixel box, optional polygon, 1-based line number, and
    the line as written (its values separated by single spaces; messages quote it)."""

    class_id: int
    bbox: BBox
    polygon: Polygons | None
    line: int
    written: str = ""


_QUOTE_LIMIT = 80


def written_line(tokens: list[str]) -> str:
    """A label line's values as the file writes them, in double quotes (long polygon lines shortened)."""
    text = " ".join(tokens)
    return f'"{text if len(text) <= _QUOTE_LIMIT else text[: _QUOTE_LIMIT - 3] + "..."}"'


def _class_id(token: str) -> int | None:
    try:
        return int(token)
    except ValueError:
        pass
    try:
        value = float(token)
    except ValueError:
        return None
    return int(value) if math.isfinite(value) and value.is_integer() else None


def _describe(class_ids: frozenset[int]) -> str:
    if not class_ids:
        return "no classes"
    ids = sorted(class_ids)
    if len(ids) == ids[-1] - ids[0] + 1:  # contiguous (ids are unique), without materialising the range
        return f"class ids {ids[0]}..{ids[-1]}"
    return f"class ids {ids}"


def _line_object(
    tokens: list[str], lineno: int, where: Location, size: tuple[int, int], class_ids: frozenset[int]
) -> tuple[LabelObject | None, Problem | None]:
    written = written_line(tokens)

    def error(code: str, message: str) -> tuple[None, Problem]:
        return None, Problem("error", code, f"line {lineno} {written}: {message}; line left out", where)

    n = len(tokens)
    if n != 5 and (n < 7 or n % 2 == 0):
        return error(
            "yolo.wrong_value_count",
            f"expected 5 values (class cx cy w h) or an odd number >= 7 (class x1 y1 x2 y2 x3 y3 ...), got {n}",
        )
    class_id = _class_id(tokens[0])
    if class_id is None:
        return error("yolo.class_not_integer", f"class id {tokens[0]!r} is not an integer")
    if class_id not in class_ids:
        return error(
            "yolo.class_out_of_range",
            f"class id {class_id} is out of range of names ({_describe(class_ids)})",
        )
    values: list[float] = []
    for position, token in enumerate(tokens[1:], 2):
        try:
            value = float(token)
        except ValueError:
            value = math.nan
        if not math.isfinite(value):
            return error("yolo.non_numeric", f"value {position} ({token!r}) is not a finite number")
        values.append(value)
    width, height = size
    warning = None
    outside = [t for t, v in zip(tokens[1:], values, strict=True) if v < -COORD_TOLERANCE or v > 1 + COORD_TOLERANCE]
    if outside:
        warning = Problem(
            "warning", "yolo.coords_out_of_range",
            f"line {lineno} {written}: normalised coordinate(s) {', '.join(outside)} outside [0, 1]; kept", where,
        )  # fmt: skip
    if n == 5:
        cx, cy, w, h = values
        box = ((cx - w / 2) * width, (cy - h / 2) * height, (cx + w / 2) * width, (cy + h / 2) * height)
        return LabelObject(class_id, box, None, lineno, written), warning
    points = tuple(v * (width if i % 2 == 0 else height) for i, v in enumerate(values))
    polygon = Polygons((points,))
    return LabelObject(class_id, polygon.bbox(), polygon, lineno, written), warning


def parse_label_text(
    text: str, label_file: Path, size: tuple[int, int], class_ids: frozenset[int]
) -> tuple[list[LabelObject], list[Problem]]:
    """Objects of a label file in pixels of an image of `size` = (width, height), and the Problems of
    its bad lines (each located by file and 1-based line, its `item` the line as written; bad lines are left
    out, out-of-range coordinates are kept with a warning). Blank lines are ignored."""
    where_file = str(label_file)
    objects: list[LabelObject] = []
    problems: list[Problem] = []
    for lineno, line in enumerate(text.splitlines(), 1):
        tokens = line.split()
        if not tokens:
            continue
        where = Location(where_file, lineno, item=f"label {written_line(tokens)}")
        obj, problem = _line_object(tokens, lineno, where, size, class_ids)
        if obj is not None:
            objects.append(obj)
        if problem is not None:
            problems.append(problem)
    return objects, problems
