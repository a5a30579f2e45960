"""Parse one COCO json file into detforge records (XYWH -> XYXY), reporting per-item problems."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from detforge.data.formats._coco_files import coco_root, resolve_image, subset_from_name
from detforge.data.formats._coco_values import (
    json_type,
    parse_attributes,
    parse_bbox,
    parse_segmentation,
    to_int,
)
from detforge.data.images import read_header
from detforge.errors import DatasetError, InvalidImage
from detforge.structures import Annotation, Category, ImageRecord, Location, Problem

__all__ = ["CocoFile", "parse_coco_file"]

_IMAGE_KEYS = ("id", "file_name")
_ANNOTATION_KEYS = ("id", "image_id", "category_id", "bbox")
_CATEGORY_KEYS = ("id", "name")


@dataclass(frozen=True)
class CocoFile:
    """What one COCO file holds, with ids exactly as written in it."""

    path: Path
    subset: str | None
    categories: tuple[Category, ...]
    images: tuple[ImageRecord, ...]
    annotations: tuple[Annotation, ...]
    problems: tuple[Problem, ...]


def _load_json(path: Path) -> Any:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DatasetError(f"{path}: cannot read file ({exc.strerror or exc})") from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DatasetError(f"{path}: not UTF-8 text (bad byte at offset {exc.start}); expected UTF-8 JSON") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise DatasetError(
            f"{path}:{exc.lineno}:{exc.colno}: invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}"
        ) from None


def _list_key(obj: dict[str, Any], key: str, path: Path, required: bool) -> list[Any]:
    if key not in obj:
        if required:
            raise DatasetError(f"{path}: missing required top-level key {key!r} (a list); keys found: {sorted(obj)}")
        return []
    value = obj[key]
    if not isinstance(value, list):
        raise DatasetError(f"{path}: top-level key {key!r} must be a list, got {json_type(value)}")
    return value


def _items(raw: list[Any], key: str, required: tuple[str, ...], path: Path) -> list[dict[str, Any]]:
    """Check every element is an object with the required keys; DatasetError naming the item otherwise."""
    for i, item in enumerate(raw):
        if not isinstance(item, dict):
            raise DatasetError(f"{path}: {key}[{i}] must be an object, got {json_type(item)}")
        missing = [k for k in required if k not in item]
        if missing:
            ident = f" (id {item['id']!r})" if "id" in item else ""
            raise DatasetError(f"{path}: {key}[{i}]{ident}: missing required key(s) {', '.join(map(repr, missing))}")
    return raw


class _Parser:
    def __init__(self, path: Path, subset: str | None) -> None:
        self.path = path
        self.subset = subset
        self.where = Location(str(path))
        self.problems: list[Problem] = []
        self.sizes: dict[int, tuple[int, int]] = {}

    def problem(self, severity: str, code: str, message: str, **ids: int | None) -> None:
        self.problems.append(Problem(severity, code, message, self.where, **ids))  # type: ignore[arg-type]

    def categories(self, raw: list[dict[str, Any]]) -> tuple[Category, ...]:
        by_id: dict[int, Category] = {}
        id_of_name: dict[str, int] = {}
        for i, item in enumerate(raw):
            cid, name = to_int(item["id"]), item["name"]
            if cid is None:
                raise DatasetError(f"{self.path}: categories[{i}]: 'id' must be an integer, got {item['id']!r}")
            if not isinstance(name, str):
                raise DatasetError(f"{self.path}: category {cid}: 'name' must be a string, got {name!r}")
            if cid in by_id:
                if by_id[cid].name != name:
                    raise DatasetError(
                        f"{self.path}: category id {cid} is defined twice, as {by_id[cid].name!r} and {name!r}"
                    )
                self.problem("warning", "coco.duplicate_category", f"category {cid} ({name!r}) is listed twice")
                continue
            if name in id_of_name:
                raise DatasetError(
                    f"{self.path}: category name {name!r} is used by ids {id_of_name[name]} and {cid}; "
                    "names must be unique"
                )
            supercategory = item.get("supercategory")
            by_id[cid] = Category(cid, name, supercategory if isinstance(supercategory, str) else "")
            id_of_name[name] = cid
        return tuple(by_id.values())

    def _size(self, item: dict[str, Any], image_id: int, path: Path) -> tuple[int, int]:
        declared: list[int | None] = []
        for key in ("width", "height"):
            value = item.get(key)
            size = to_int(value)
            if value is not None and (size is None or size < 0):
                self.problem(
                    "warning", "coco.bad_value",
                    f"image {image_id}: '{key}' must be a non-negative integer, got {value!r}; ignored",
                    image_id=image_id,
                )  # fmt: skip
                size = None
            declared.append(size)
        width, height = declared
        if width is None or height is None:
            try:
                header = read_header(path)
                width = header.width if width is None else width
                height = header.height if height is None else height
            except InvalidImage:
                pass
        return width or 0, height or 0

    def images(self, raw: list[dict[str, Any]]) -> tuple[ImageRecord, ...]:
        root, json_dir = coco_root(self.path), self.path.parent
        kept: dict[int, ImageRecord] = {}
        for i, item in enumerate(raw):
            image_id, file_name = to_int(item["id"]), item["file_name"]
            if image_id is None:
                message = f"images[{i}]: 'id' must be an integer, got {item['id']!r}; image left out"
                self.problem("error", "coco.bad_value", message)
                continue
            if not isinstance(file_name, str) or not file_name:
                self.problem(
                    "error", "coco.bad_value",
                    f"image {image_id}: 'file_name' must be a non-empty string, got {file_name!r}; image left out",
                    image_id=image_id,
                )  # fmt: skip
                continue
            if image_id in kept:
                self.problem(
                    "error", "coco.duplicate_image_id",
                    f"image id {image_id} ('id' of {file_name!r}) is already used by {kept[image_id].file_name!r}; "
                    "the first was kept, this one left out",
                    image_id=image_id,
                )  # fmt: skip
                continue
            file_name = file_name.replace("\\", "/")
            path = resolve_image(root, json_dir, self.subset, file_name)
            width, height = self._size(item, image_id, path)
            kept[image_id] = ImageRecord(image_id, file_name, path, width, height, self.subset, self.where)
            self.sizes[image_id] = (width, height)
        return tuple(kept.values())

    def annotations(
        self, raw: list[dict[str, Any]], image_ids: set[int], category_ids: set[int]
    ) -> tuple[Annotation, ...]:
        seen: set[int] = set()
        kept: list[Annotation] = []
        for i, item in enumerate(raw):
            ann_id = to_int(item["id"])
            if ann_id is None:
                self.problem(
                    "error", "coco.bad_value",
                    f"annotations[{i}]: 'id' must be an integer, got {item['id']!r}; annotation left out",
                )  # fmt: skip
                continue
            if ann_id in seen:
                self.problem(
                    "error", "coco.duplicate_annotation_id",
                    f"annotation id {ann_id} is used more than once ('id' of annotations[{i}]); this one left out",
                    annotation_id=ann_id,
                )  # fmt: skip
                continue
            seen.add(ann_id)
            ann = self._annotation(item, ann_id, image_ids, category_ids)
            if ann is not None:
                kept.append(ann)
        return tuple(kept)

    def _annotation(
        self, item: dict[str, Any], ann_id: int, image_ids: set[int], category_ids: set[int]
    ) -> Annotation | None:
        image_id, category_id = to_int(item["image_id"]), to_int(item["category_id"])
        if image_id is None or image_id not in image_ids:
            self.problem(
                "error", "coco.unknown_image",
                f"annotation {ann_id}: 'image_id' {item['image_id']!r} is not an image of this file; left out",
                annotation_id=ann_id,
            )  # fmt: skip
            return None
        if category_id is None or category_id not in category_ids:
            self.problem(
                "error", "coco.unknown_category",
                f"annotation {ann_id}: 'category_id' {item['category_id']!r} is not a category of this file "
                f"(known: {sorted(category_ids)}); left out",
                image_id=image_id, annotation_id=ann_id,
            )  # fmt: skip
            return None
        bbox = parse_bbox(item["bbox"])
        if bbox is None:
            self.problem(
                "error", "coco.bad_bbox",
                f"annotation {ann_id}: 'bbox' must be a list of 4 numbers [x, y, width, height], "
                f"got {item['bbox']!r}; left out",
                image_id=image_id, annotation_id=ann_id,
            )  # fmt: skip
            return None
        notes: list[str] = []
        segmentation = parse_segmentation(item.get("segmentation"), notes)
        attributes = parse_attributes(item.get("attributes"), notes)
        area = item.get("area")
        if area is not None and (isinstance(area, bool) or not isinstance(area, (int, float))):
            notes.append(f"'area' must be a number, got {area!r}; ignored")
            area = None
        crowd = item.get("iscrowd", 0)
        if crowd not in (0, 1):
            notes.append(f"'iscrowd' must be 0 or 1, got {crowd!r}; read as 0")
            crowd = 0
        for note in notes:
            message = f"annotation {ann_id}: {note}"
            self.problem("warning", "coco.bad_value", message, image_id=image_id, annotation_id=ann_id)
        return Annotation(
            ann_id, image_id, category_id, bbox, segmentation, bool(crowd),
            None if area is None else float(area), attributes, self._box_source(item, image_id, bbox),
        )  # fmt: skip

    def _box_source(self, item: dict[str, Any], image_id: int, bbox: tuple[float, ...]) -> Location:
        """The file; for a box that checks may report (not finite, empty, past its image, all within [0, 1]),
        also the annotation as written (`Location.item`: `annotation 11 (image 7): bbox [10, 10, -5, 20]`),
        so messages quote the user's XYWH numbers, not detforge's XYXY. Clean boxes share one Location."""
        x0, y0, x1, y1 = bbox
        width, height = self.sizes.get(image_id, (0, 0))
        clean = (
            all(map(math.isfinite, bbox)) and x1 > x0 and y1 > y0 and x0 >= 0 and y0 >= 0
            and (width <= 0 or x1 <= width) and (height <= 0 or y1 <= height) and max(x1, y1) > 1
        )  # fmt: skip
        if clean:
            return self.where
        written = json.dumps(item["bbox"])
        return replace(self.where, item=f"annotation {item['id']} (image {item['image_id']}): bbox {written}")


def parse_coco_file(path: Path) -> CocoFile:
    """Read one COCO file. Per-item problems (duplicate/unknown ids, bad boxes) leave the item out and
    are returned as Problems; invalid JSON, wrong top-level types and missing required keys raise
    DatasetError naming the file, line/column, key or id."""
    obj = _load_json(path)
    if not isinstance(obj, dict):
        raise DatasetError(
            f"{path}: the top level must be an object with 'images', 'annotations' and 'categories', "
            f"got {json_type(obj)}"
        )
    raw_images = _items(_list_key(obj, "images", path, True), "images", _IMAGE_KEYS, path)
    raw_categories = _items(_list_key(obj, "categories", path, True), "categories", _CATEGORY_KEYS, path)
    raw_annotations = _items(_list_key(obj, "annotations", path, False), "annotations", _ANNOTATION_KEYS, path)
    parser = _Parser(path, subset_from_name(path))
    categories = parser.categories(raw_categories)
    images = parser.images(raw_images)
    annotations = parser.annotations(raw_annotations, {im.id for im in images}, {c.id for c in categories})
    return CocoFile(path, parser.subset, categories, images, annotations, tuple(parser.problems))
