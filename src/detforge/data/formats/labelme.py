"""LabelMe: one JSON file per image (`shapes`, `imagePath`, `imageWidth`, `imageHeight`); reader and writer.

Messages name a shape as the file does and quote its points as written (`shapes[2] (rectangle 'cat'):
points [[10, 10], [5, 30]]`, with the JSON file), never detforge's ids or numbers.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, replace
from pathlib import Path, PurePosixPath
from typing import Any

from detforge.data.dataset import Dataset
from detforge.data.formats._labelme_write import IGNORED_LABELS, LABELS_FILE, write_labelme_dataset
from detforge.data.images import declared_size, displayed_size
from detforge.errors import DatasetError
from detforge.structures import Annotation, BBox, Categories, ImageRecord, Location, Polygons, Problem

__all__ = ["read_labelme", "write_labelme"]

_SPLIT_FOLDERS = ("train", "val", "test")
_IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")


@dataclass(frozen=True)
class _Shape:
    label: str
    bbox: BBox
    polygons: Polygons | None
    attributes: tuple[tuple[str, str], ...]
    source: Location


_QUOTE_LIMIT = 120


def _written(value: Any) -> str:
    """A JSON value as the file writes it (compact JSON), shortened when long."""
    text = json.dumps(value, ensure_ascii=False, separators=(", ", ": "))
    return text if len(text) <= _QUOTE_LIMIT else text[: _QUOTE_LIMIT - 3] + "..."


def _points(raw: Any) -> list[tuple[float, float]] | None:
    if not isinstance(raw, list):
        return None
    points: list[tuple[float, float]] = []
    for p in raw:
        if not (isinstance(p, list | tuple) and len(p) == 2 and all(isinstance(v, int | float) for v in p)):
            return None
        if isinstance(p[0], bool) or isinstance(p[1], bool) or not all(math.isfinite(v) for v in p):
            return None
        points.append((float(p[0]), float(p[1])))
    return points


def _attributes(shape: dict[str, Any]) -> tuple[tuple[str, str], ...]:
    pairs: list[tuple[str, str]] = []
    if shape.get("group_id") is not None:
        pairs.append(("group_id", str(shape["group_id"])))
    flags = shape.get("flags")
    if isinstance(flags, dict):
        pairs += [(f"flag.{k}", str(v).lower() if isinstance(v, bool) else str(v)) for k, v in flags.items()]
    description = shape.get("description")
    if isinstance(description, str) and description:  # LabelMe writes "" when nothing was entered
        pairs.append(("description", description.strip() or description))
    return tuple(sorted(pairs))


def _parse_shape(shape: Any, index: int, file: Location, image_id: int, problems: list[Problem]) -> _Shape | None:
    """The shape `shapes[index]` of the image `image_id`; its `source` quotes it as written."""
    where = replace(file, item=f"shapes[{index}]")  # the user's name for it: no detforge ids in messages
    if not isinstance(shape, dict):
        message = f"shapes[{index}] is not an object; left out"
        problems.append(Problem("error", "shape.invalid", message, where, image_id))
        return None
    label = shape.get("label")
    kind = shape.get("shape_type") or "polygon"  # LabelMe's default when shape_type is null
    if kind not in ("rectangle", "polygon"):
        problems.append(
            Problem(
                "warning",
                "shape.unsupported",
                f"shapes[{index}] ({kind!r}, label {label!r}) skipped: detforge reads rectangles and polygons",
                where,
                image_id,
            )
        )
        return None
    if not isinstance(label, str) or not label.strip():
        problems.append(
            Problem(
                "error",
                "label.missing",
                f"shapes[{index}] has label {label!r}, expected a non-empty string; left out",
                where,
                image_id,
            )
        )
        return None
    points = _points(shape.get("points"))
    need = 2 if kind == "rectangle" else 3
    if points is None or len(points) < need:
        problems.append(
            Problem(
                "error",
                "shape.invalid",
                f"shapes[{index}] ({kind} {label!r}): points are "
                f"{shape.get('points')!r}, expected at least {need} [x, y] pairs; left out",
                where,
                image_id,
            )
        )
        return None
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    bbox = (min(xs), min(ys), max(xs), max(ys))
    polygons = Polygons((tuple(v for p in points for v in p),)) if kind == "polygon" else None
    source = replace(file, item=f"shapes[{index}] ({kind} {label!r}): points {_written(shape.get('points'))}")
    return _Shape(label, bbox, polygons, _attributes(shape), source)


def _json_files(path: Path) -> tuple[Path, list[Path]]:
    if path.is_file():
        return path.parent, [path]
    if not path.is_dir():
        raise DatasetError(f"{path}: no such file or folder")
    return path, sorted(path.rglob("*.json"))


def _image_path(json_path: Path, image_path: Any) -> Path:
    if not isinstance(image_path, str) or not image_path.strip():
        stem = json_path.with_suffix("")
        found = [stem.with_suffix(ext) for ext in _IMAGE_EXTS if stem.with_suffix(ext).is_file()]
        return found[0] if found else stem.with_suffix(".jpg")
    rel = image_path.strip().replace("\\", "/")
    candidates = [Path(os.path.normpath(json_path.parent / rel)), json_path.parent / PurePosixPath(rel).name]
    return next((c for c in candidates if c.is_file()), candidates[0])


def _size(doc: dict[str, Any], path: Path) -> tuple[int, int]:
    w, h = doc.get("imageWidth"), doc.get("imageHeight")
    return declared_size(w, h) or displayed_size(path)


def _load(json_path: Path, single: bool, problems: list[Problem]) -> dict[str, Any] | None:
    try:
        doc = json.loads(json_path.read_text(encoding="utf-8-sig"))
    except json.JSONDecodeError as exc:
        message = f"invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}"
        if single:
            raise DatasetError(f"{json_path}: {message}") from None
        where = Location(str(json_path), exc.lineno)
        problems.append(Problem("error", "json.invalid", f"{message}; file skipped", where))
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise DatasetError(f"{json_path}: cannot read file ({exc})") from None
    if isinstance(doc, dict) and isinstance(doc.get("shapes"), list) and "imagePath" in doc:
        return doc
    if single:
        raise DatasetError(f"{json_path}: not a LabelMe file (expected an object with 'shapes' and 'imagePath')")
    problems.append(
        Problem(
            "info",
            "labelme.not_labelme",
            "not a LabelMe file (no 'shapes' list and 'imagePath'); skipped",
            Location(str(json_path)),
        )
    )
    return None


def _declared_labels(path: Path) -> list[str]:
    if not path.is_file():
        return []
    try:
        lines = path.read_text(encoding="utf-8-sig").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise DatasetError(f"{path}: cannot read the class list ({exc})") from None
    names: list[str] = []
    for line in lines:
        name = line.strip()
        if name and name not in IGNORED_LABELS and name not in names:
            names.append(name)
    return names


def read_labelme(path: Path) -> Dataset:
    """Read LabelMe JSON files: a folder of them (searched recursively) or one file.

    Rectangles (two corners, any order) become XYXY pixel boxes; polygons become `Polygons` plus
    their bbox; other shape types are skipped with a warning each. `group_id`, `flags` (as
    "flag.<name>") and `description` become annotation attributes; `description` is where LabelMe
    keeps a box's transcription (`Dataset.text_fields`). `imagePath` is relative to the
    JSON file; embedded `imageData` is never decoded (an info Problem when the file is missing).
    Categories: the lines of `labels.txt` in the folder when there is one (LabelMe's `--labels` file;
    `__ignore__` and `_background_` skipped), then the other labels used, sorted; ids 1..K. Image ids
    1..M in path order. Subset: the first sub-folder's name when the folder has train/, val/ or test/
    sub-folders, else None.
    """
    path = Path(path)
    root, files = _json_files(path)
    split_layout = path.is_dir() and any((root / s).is_dir() for s in _SPLIT_FOLDERS)
    problems: list[Problem] = []
    records: list[tuple[ImageRecord, list[_Shape]]] = []
    for json_path in files:
        doc = _load(json_path, path.is_file(), problems)
        if doc is None:
            continue
        where = Location(str(json_path))
        image_id = len(records) + 1
        image_path = _image_path(json_path, doc.get("imagePath"))
        if not image_path.is_file() and doc.get("imageData"):
            problems.append(
                Problem(
                    "info",
                    "image.embedded",
                    f"image {image_path} is missing and the JSON embeds "
                    "imageData, which detforge does not decode; save the image next to the JSON",
                    where,
                    image_id,
                )
            )
        try:
            file_name = image_path.relative_to(root).as_posix()
        except ValueError:
            file_name = str(doc.get("imagePath") or image_path.name).replace("\\", "/")
        rel_parts = json_path.relative_to(root).parts
        subset = rel_parts[0] if split_layout and len(rel_parts) > 1 else None
        width, height = _size(doc, image_path)
        record = ImageRecord(image_id, file_name, image_path, width, height, subset, where)
        parsed = [_parse_shape(raw, i, where, image_id, problems) for i, raw in enumerate(doc["shapes"])]
        records.append((record, [s for s in parsed if s is not None]))
    if not records:
        raise DatasetError(f"{path}: no LabelMe JSON files found (expected *.json with 'shapes' and 'imagePath')")
    used = {s.label for _, shapes in records for s in shapes}
    declared = _declared_labels(root / LABELS_FILE) if path.is_dir() else []
    categories = Categories.from_names(declared + sorted(used - set(declared)))
    annotations: list[Annotation] = []
    for record, shapes in records:
        for shape in shapes:
            category_id = categories.by_name(shape.label).id
            annotations.append(
                Annotation(
                    len(annotations) + 1,
                    record.id,
                    category_id,
                    shape.bbox,
                    shape.polygons,
                    attributes=shape.attributes,
                    source=shape.source,
                )
            )
    images = tuple(r for r, _ in records)
    return Dataset(
        images, tuple(annotations), categories, root, "labelme", tuple(problems), text_fields=("description",)
    )


def write_labelme(dataset: Dataset, out: Path, *, copy_images: bool = True) -> Path:
    """Write `dataset` as LabelMe JSON files under the folder `out`; returns `out`.

    One `<file_name>.json` per image, in `out/<subset>/` (`out/` for subset None), with the image
    copied beside it (`imagePath` is its base name) when `copy_images`; `out/labels.txt` lists every
    class in order. Boxes are `rectangle` shapes; an annotation with a single polygon whose bbox is
    its box is a `polygon`. `group_id` and `flag.<name>` attributes go back to their LabelMe fields;
    the transcription is the shape's `description`; other attributes, masks and crowd flags are not
    kept (LabelMe has no place for them). An existing different image is never overwritten.
    """
    return write_labelme_dataset(dataset, Path(out), copy_images=copy_images)
