"""Label Studio JSON export (a list of tasks): rectangle and polygon labels; reader and writer.

Label Studio stores regions in percent of the image (`original_width` x `original_height`); they are
converted to absolute XYXY pixels here. Rotated rectangles are refused (error Problem, left out).
Messages quote a region's percent values as written (`task 17, rectangle "r1": x 10, y 20, width -5,
height 30 (percent)`), never detforge's pixel boxes or annotation ids.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from detforge.data.dataset import Dataset
from detforge.data.formats._labelstudio_images import ImageFinder
from detforge.data.formats._labelstudio_write import CONFIG_NAME, label_config_names, write_labelstudio_dataset
from detforge.data.formats._xml import parse_xml
from detforge.data.images import displayed_size
from detforge.errors import DatasetError
from detforge.structures import Annotation, BBox, Categories, ImageRecord, Location, Polygons, Problem, Severity

__all__ = ["read_labelstudio", "write_labelstudio"]

_IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".gif")
_RECT_POLY = ("rectangle", "rectanglelabels", "polygon", "polygonlabels")
_REGION_TYPES = ("rectangle", "polygon", "keypoint", "ellipse", "brush", "polyline", "bitmask", "magicwand")


@dataclass(frozen=True)
class _Region:
    label: str
    bbox: BBox
    polygons: Polygons | None
    attributes: tuple[tuple[str, str], ...] = ()
    source: Location | None = None


_QUOTE_LIMIT = 120


def _written(value: Any) -> str:
    """A JSON value as the export writes it (compact JSON), shortened when long."""
    text = json.dumps(value, ensure_ascii=False, separators=(", ", ": "))
    return text if len(text) <= _QUOTE_LIMIT else text[: _QUOTE_LIMIT - 3] + "..."


def _region_item(task_id: int, result: dict[str, Any], kind: str, value: dict[str, Any]) -> str:
    """A region as the export writes it, for messages: `task 17, rectangle "r1": x 10, y 20, width -5,
    height 30 (percent)`; polygons quote their `points`."""
    ident = f" {_written(result['id'])}" if "id" in result else ""
    if kind == "rectangle":
        values = ", ".join(f"{k} {_written(value.get(k))}" for k in ("x", "y", "width", "height"))
    else:
        values = f"points {_written(value.get('points'))}"
    return f"task {task_id}, {kind}{ident}: {values} (percent)"


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)


def _image_ref(data: Any) -> str | None:
    if not isinstance(data, dict):
        return None
    if isinstance(data.get("image"), str):
        return str(data["image"])
    for value in data.values():
        if isinstance(value, str) and value.lower().split("?")[0].endswith(_IMAGE_EXTS):
            return value
    return None


def _region(value: dict[str, Any], kind: str, labels: list[str], size: tuple[float, float]) -> _Region | str:
    """The region (first label) in XYXY pixels, or a message saying why it cannot be read."""
    width, height = size
    if kind == "rectangle":
        x, y, w, h = (_number(value.get(k)) for k in ("x", "y", "width", "height"))
        if x is None or y is None or w is None or h is None:
            return f"rectangle {labels} has x/y/width/height {[value.get(k) for k in ('x', 'y', 'width', 'height')]}"
        return _Region(
            labels[0], (x * width / 100, y * height / 100, (x + w) * width / 100, (y + h) * height / 100), None
        )
    points = value.get("points")
    if not isinstance(points, list):
        points = []
    pixels: list[float] = []
    for point in points:
        xy = [_number(v) for v in point] if isinstance(point, list) and len(point) == 2 else [None]
        if None in xy:
            break
        pixels += [(xy[0] or 0.0) * width / 100, (xy[1] or 0.0) * height / 100]
    if len(pixels) < 6 or len(pixels) != 2 * len(points):
        return f"polygon {labels} has points {value.get('points')!r}, expected at least 3 [x, y] pairs in percent"
    polygons = Polygons((tuple(pixels),))
    return _Region(labels[0], polygons.bbox(), polygons)


def _texts_by_region(results: list[Any], region_ids: set[Any]) -> dict[Any, list[tuple[str, str]]]:
    """Per region id, the (from_name, text) of each `textarea` result sharing that id (a perRegion TextArea).

    `value.text` is a list of strings (one per submission; the OCR template allows one): joined with
    newlines so nothing typed is lost.
    """
    texts: dict[Any, list[tuple[str, str]]] = {}
    for r in results:
        if not (isinstance(r, dict) and r.get("type") == "textarea" and r.get("id") in region_ids):
            continue
        value = r.get("value")
        raw = value.get("text") if isinstance(value, dict) else None
        lines = [raw] if isinstance(raw, str) else raw if isinstance(raw, list) else []
        name = r.get("from_name")
        if isinstance(name, str) and name and all(isinstance(x, str) for x in lines):
            texts.setdefault(r["id"], []).append((name, "\n".join(lines)))
    return texts


def _regions(
    task_id: int,
    results: list[Any],
    size: tuple[int, int],
    where: Location,
    problems: list[Problem],
    ignored: Counter[str],
) -> list[_Region]:
    def report(severity: Severity, code: str, message: str) -> None:
        problems.append(Problem(severity, code, f"task {task_id}: {message}", where, task_id))

    labels_by_id = {
        r.get("id"): r["value"]["labels"]
        for r in results
        if isinstance(r, dict)
        and r.get("type") == "labels"
        and isinstance(r.get("value"), dict)
        and isinstance(r["value"].get("labels"), list)
    }
    region_ids = {
        r.get("id") for r in results if isinstance(r, dict) and str(r.get("type", "")) in _RECT_POLY and "id" in r
    }
    texts = _texts_by_region(results, region_ids)
    regions: list[_Region] = []
    for r in results:
        if not isinstance(r, dict):
            continue
        rtype = str(r.get("type", ""))
        kind = rtype.removesuffix("labels")
        if rtype == "labels" and r.get("id") in labels_by_id:
            continue
        if rtype == "textarea" and r.get("id") in texts:
            continue
        if kind not in ("rectangle", "polygon"):
            if kind in _REGION_TYPES:
                report(
                    "warning", "shape.unsupported", f"{rtype!r} result skipped (detforge reads rectangles, polygons)"
                )
            else:
                ignored[rtype] += 1
            continue
        value = r.get("value") or {}
        if not isinstance(value, dict):
            message = f"{kind} {r.get('id')!r} has 'value' {value!r}, expected an object; left out"
            report("error", "box.invalid", message)
            continue
        labels = value.get(rtype) if rtype.endswith("labels") else labels_by_id.get(r.get("id"))
        if not isinstance(labels, list) or not labels or not all(isinstance(x, str) and x for x in labels):
            report("error", "label.missing", f"{kind} {r.get('id')!r} has labels {labels!r}, expected names; left out")
            continue
        rotation = _number(value.get("rotation", 0))
        if kind == "rectangle" and (rotation is None or rotation % 360 != 0):
            report(
                "error",
                "box.rotated",
                f"rectangle {labels} has rotation {value.get('rotation')!r}; detforge does not make rotated boxes "
                "axis-aligned silently, so it is left out",
            )
            continue
        ow, oh = _number(r.get("original_width")), _number(r.get("original_height"))
        frame = (ow, oh) if ow and oh and ow > 0 and oh > 0 else (float(size[0]), float(size[1]))
        if frame[0] <= 0 or frame[1] <= 0:
            report("error", "size.unknown", "no original_width/height and no readable image; cannot convert percent")
            continue
        converted = _region(value, kind, labels, frame)
        if isinstance(converted, str):
            report("error", "box.invalid", f"{converted}; left out")
            continue
        if len(labels) > 1:
            report("warning", "label.multiple", f"one region has labels {labels}; one annotation is made per label")
        attributes = tuple(sorted(texts.get(r.get("id"), [])))
        source = replace(where, item=_region_item(task_id, r, kind, value))
        regions += [_Region(label, converted.bbox, converted.polygons, attributes, source) for label in labels]
    return regions


def _choose_results(task: dict[str, Any], task_id: int, where: Location, problems: list[Problem]) -> list[Any] | None:
    """The result list of the first non-cancelled annotation, else of the first prediction, else None."""
    raw = task.get("annotations") or task.get("completions") or []
    if not isinstance(raw, list):
        message = f"task {task_id}: 'annotations' is {type(raw).__name__}, expected a list; task left out"
        problems.append(Problem("error", "task.invalid", message, where, task_id))
        return None
    annotations = [a for a in raw if isinstance(a, dict)]
    active = [a for a in annotations if not a.get("was_cancelled")]
    if len(active) > 1:
        message = f"task {task_id}: {len(active)} annotations; using the first (annotation {active[0].get('id')!r})"
        problems.append(Problem("info", "annotation.several", message, where, task_id))
    if active:
        return _result_list(active[0], task_id, where, problems)
    raw_predictions = task.get("predictions") or []
    predictions = [p for p in raw_predictions if isinstance(p, dict)] if isinstance(raw_predictions, list) else []
    if predictions:
        message = f"task {task_id}: no (non-cancelled) annotation; using its first prediction as labels"
        problems.append(Problem("info", "annotation.from_prediction", message, where, task_id))
        return _result_list(predictions[0], task_id, where, problems)
    return None


def _result_list(entry: dict[str, Any], task_id: int, where: Location, problems: list[Problem]) -> list[Any]:
    result = entry.get("result") or []
    if not isinstance(result, list):
        message = f"task {task_id}: 'result' is {type(result).__name__}, expected a list of regions; none read"
        problems.append(Problem("error", "task.invalid", message, where, task_id))
        return []
    return list(result)


def _load_tasks(json_path: Path) -> list[Any]:
    try:
        doc = json.loads(json_path.read_text(encoding="utf-8-sig"))
    except json.JSONDecodeError as exc:
        raise DatasetError(f"{json_path}: invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DatasetError(f"{json_path}: cannot read file ({exc})") from None
    if isinstance(doc, dict) and "data" in doc:
        return [doc]
    if not isinstance(doc, list):
        raise DatasetError(f"{json_path}: top level is {type(doc).__name__}, expected a list of Label Studio tasks")
    return doc


def _export_files(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise DatasetError(f"{path}: no such file or folder")
    files = []
    for f in sorted(path.glob("*.json")):
        head = f.read_text(encoding="utf-8-sig", errors="replace")[:4096].lstrip()
        if head.startswith("[") and '"data"' in head:
            files.append(f)
    if not files:
        raise DatasetError(f"{path}: no Label Studio JSON export found (expected a *.json list of tasks with 'data')")
    return files


def _declared_size(results: list[Any]) -> tuple[int, int] | None:
    """The first result's (original_width, original_height) when both are positive numbers."""
    for r in results:
        if isinstance(r, dict):
            w, h = _number(r.get("original_width")), _number(r.get("original_height"))
            if w and h and w > 0 and h > 0:
                return round(w), round(h)
    return None


def read_labelstudio(path: Path) -> Dataset:
    """Read a Label Studio JSON export (a file, or the folder holding it and its images).

    `rectanglelabels` (x, y, width, height in percent of original_width x original_height) become
    XYXY pixel boxes; `polygonlabels` (points in percent) become `Polygons` plus their bbox. Of several
    annotations of a task the first non-cancelled one is used (info Problem); predictions are used
    only when a task has no non-cancelled annotation (info Problem); a task with neither is left out
    (warning). Task id = image id. Images are found by basename (also without Label Studio's
    8-hex-digit upload prefix) in the JSON's folder, its `images/`, and `media/upload/**`.
    Categories: the labels of `label_config.xml` beside the export when there is one (in its order, so
    classes without boxes survive), then the other label names used, sorted; ids 1..K. Subset: None.
    A `textarea` result sharing a region's `id` (a TextArea with perRegion="true", the OCR template's
    `transcription`) becomes the attribute `<from_name>` of that region's annotation, its `text` list
    joined with newlines; these names are the candidates for the transcription (`Dataset.text_fields`).
    """
    path = Path(path)
    files = _export_files(path)
    root = files[0].parent
    finder = ImageFinder(root)
    problems: list[Problem] = []
    ignored: Counter[str] = Counter()
    records: list[tuple[ImageRecord, list[_Region]]] = []
    seen: set[int] = set()
    for json_path in files:
        where = Location(str(json_path))
        for index, task in enumerate(_load_tasks(json_path)):
            task_id = task.get("id") if isinstance(task, dict) else None
            if not isinstance(task, dict) or not isinstance(task_id, int) or isinstance(task_id, bool):
                problems.append(Problem("error", "task.invalid", f"task #{index} has no integer 'id'; left out", where))
                continue
            if task_id in seen:
                message = f"task {task_id} appears twice; the first is kept"
                problems.append(Problem("error", "task.duplicate_id", message, where, task_id))
                continue
            ref = _image_ref(task.get("data"))
            if ref is None:
                message = f"task {task_id}: data has no image reference ({task.get('data')!r}); left out"
                problems.append(Problem("error", "task.no_image", message, where, task_id))
                continue
            results = _choose_results(task, task_id, where, problems)
            if results is None:
                message = f"task {task_id}: no annotation or prediction; left out (not known to have no objects)"
                problems.append(Problem("warning", "task.unlabelled", message, where, task_id))
                continue
            seen.add(task_id)
            file_name, image_path = finder.find(ref)
            width, height = _declared_size(results) or displayed_size(image_path)
            record = ImageRecord(task_id, file_name, image_path, width, height, None, where)
            records.append((record, _regions(task_id, results, (width, height), where, problems, ignored)))
    for rtype, count in sorted(ignored.items()):
        message = f"{count} result(s) of type {rtype!r} ignored (not regions)"
        problems.append(Problem("info", "result.ignored", message, Location(str(files[0]))))
    used = {r.label for _, regions in records for r in regions}
    config = root / CONFIG_NAME
    declared = label_config_names(parse_xml(config).root) if config.is_file() else []
    categories = Categories.from_names(declared + sorted(used - set(declared)))
    annotations: list[Annotation] = []
    for record, regions in records:
        for region in regions:
            category_id = categories.by_name(region.label).id
            ann_id = len(annotations) + 1
            annotations.append(
                Annotation(
                    ann_id,
                    record.id,
                    category_id,
                    region.bbox,
                    region.polygons,
                    attributes=region.attributes,
                    source=region.source or record.source,
                )
            )
    images = tuple(r for r, _ in records)
    text_fields = tuple(sorted({k for _, regions in records for r in regions for k, _ in r.attributes}))
    return Dataset(
        images, tuple(annotations), categories, root, "labelstudio", tuple(problems), text_fields=text_fields
    )


def write_labelstudio(dataset: Dataset, out: Path, *, copy_images: bool = True) -> Path:
    """Write `dataset` as a Label Studio task list to the folder `out`; returns `out`.

    `out/tasks.json`: one task per image (task id = image id, `data.image` = its file name, URL
    quoted), with one annotation whose results are a `rectanglelabels` region per box (percent of
    the image size) or a `polygonlabels` region for a single polygon whose bbox is the box. A box's
    transcription is a `textarea` result named `transcription` sharing the region's id (the OCR
    template's perRegion TextArea). `out/label_config.xml` is the matching labeling config (all
    classes, the TextArea when there is text). Other attributes and subsets are not kept (Label
    Studio has no place for them; several subsets log a warning). With `copy_images`, images are
    copied to `out/<subset>/<file_name>` (`out/<file_name>` for subset None) and `data.image` names
    that path; an existing different file is never overwritten.
    """
    return write_labelstudio_dataset(dataset, Path(out), copy_images=copy_images)
