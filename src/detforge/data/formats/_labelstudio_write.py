"""Write a Dataset as a Label Studio JSON task list (`tasks.json`) plus its labeling config (`label_config.xml`)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any
from urllib.parse import quote
from xml.etree.ElementTree import Element, ElementTree, SubElement, indent, tostring

from detforge.data.dataset import Dataset
from detforge.data.formats._coco_files import copy_image, output_name
from detforge.data.formats._coco_write import check_subset_name, input_files
from detforge.data.images import displayed_size
from detforge.data.transcriptions import text_write_name
from detforge.errors import DatasetError
from detforge.fileio import atomic_write_bytes, atomic_write_json
from detforge.structures import Annotation, ImageRecord, Polygons
from detforge.structures.boxes import percent_xywh

__all__ = ["CONFIG_NAME", "label_config_names", "write_labelstudio_dataset"]

CONFIG_NAME = "label_config.xml"
"""The labeling config written beside the tasks; the reader takes class names (and their order) from it."""

log = logging.getLogger(__name__)


def _config(dataset: Dataset, text_name: str | None, polygons: bool) -> bytes:
    view = Element("View")
    SubElement(view, "Image", {"name": "image", "value": "$image"})
    kinds = [("RectangleLabels", "label")] + ([("PolygonLabels", "polygon")] if polygons else [])
    for tag, name in kinds:
        labels = SubElement(view, tag, {"name": name, "toName": "image"})
        for category in dataset.categories:
            SubElement(labels, "Label", {"value": category.name})
    if text_name is not None:
        SubElement(
            view,
            "TextArea",
            {
                "name": text_name, "toName": "image", "editable": "true", "perRegion": "true", "required": "false",
                "maxSubmissions": "1", "rows": "1", "placeholder": "Text in the box", "displayMode": "region-list",
            },
        )  # fmt: skip
    indent(ElementTree(view), space="  ")
    return tostring(view, encoding="utf-8") + b"\n"


def label_config_names(root: Element) -> list[str]:
    """Label values of a labeling config's `*Labels` tags, in order, each once."""
    names: list[str] = []
    for tag in root.iter():
        if isinstance(tag.tag, str) and tag.tag.endswith("Labels"):
            for label in tag.iterfind("Label"):
                value = label.attrib.get("value", "")
                if value and value not in names:
                    names.append(value)
    return names


def _percent(value: float, total: int) -> float:
    return round(value * 100.0 / total, 6)


def _results(ann: Annotation, label: str, size: tuple[int, int], text: str | None, text_name: str) -> list[Any]:
    width, height = size
    common = {"id": f"r{ann.id}", "to_name": "image", "original_width": width, "original_height": height}
    common["image_rotation"] = 0
    seg = ann.segmentation
    if (
        isinstance(seg, Polygons)
        and len(seg.points) == 1
        and max(abs(a - b) for a, b in zip(seg.bbox(), ann.bbox, strict=True)) <= 0.01
    ):
        poly = seg.points[0]
        geometry: dict[str, Any] = {
            "points": [[_percent(x, width), _percent(y, height)] for x, y in zip(poly[0::2], poly[1::2], strict=True)]
        }
        results: list[Any] = [
            {**common, "from_name": "polygon", "type": "polygonlabels", "value": {**geometry, "polygonlabels": [label]}}
        ]
    else:
        x, y, w, h = (round(v, 6) for v in percent_xywh(ann.bbox, width, height))
        geometry = {"x": x, "y": y, "width": w, "height": h, "rotation": 0}
        value = {**geometry, "rectanglelabels": [label]}
        results = [{**common, "from_name": "label", "type": "rectanglelabels", "value": value}]
    if text is not None:
        results.append({**common, "from_name": text_name, "type": "textarea", "value": {**geometry, "text": [text]}})
    return results


def _size(image: ImageRecord) -> tuple[int, int]:
    width, height = image.width, image.height
    if not (width and height) and image.path.is_file():
        width, height = displayed_size(image.path)
    if not (width and height):
        raise DatasetError(
            f"image {image.id} ({image.file_name}): size unknown and the file is not readable; Label Studio "
            "stores boxes in percent of the image size, so it cannot be written"
        )
    return width, height


def _text_of(ann: Annotation, source: str | None) -> str | None:
    if ann.text is not None:
        return ann.text
    return dict(ann.attributes).get(source) if source is not None else None


def write_labelstudio_dataset(dataset: Dataset, out: Path, *, copy_images: bool = True) -> Path:
    """See `detforge.data.formats.labelstudio.write_labelstudio`. Everything is validated before anything is written."""
    tasks_path = out / "tasks.json"
    if tasks_path.resolve() in input_files(dataset):
        raise DatasetError(f"{tasks_path}: this is an input file of the dataset; write to another folder")
    source = dataset.text_attribute
    texts = {ann.id: _text_of(ann, source) for ann in dataset.annotations}
    text_name = text_write_name(dataset, "transcription")
    names: dict[str, ImageRecord] = {}
    tasks: list[dict[str, Any]] = []
    for image in dataset.images:
        name = output_name(image, dataset.root)
        if image.subset is not None:  # Label Studio has no subsets: the subset stays in the path (and names unique)
            name = f"{check_subset_name(image.subset)}/{name}"
        if name in names or name == tasks_path.name or name == CONFIG_NAME:
            other = f"image {names[name].id} ({names[name].path})" if name in names else "detforge's own file"
            raise DatasetError(f"image {image.id} ({image.path}) and {other} would both be written as {name!r}")
        names[name] = image
        size = _size(image)
        result: list[Any] = []
        for ann in dataset.annotations_of(image.id):
            label = dataset.categories.by_id(ann.category_id).name
            result += _results(ann, label, size, texts[ann.id], text_name)
        task = {"id": image.id, "data": {"image": quote(name)}, "annotations": [{"id": image.id, "result": result}]}
        tasks.append(task)
    if len(dataset.subsets) > 1:
        log.warning("Label Studio tasks have no subsets: %s are written as one task list", ", ".join(dataset.subsets))
    has_text = any(t is not None for t in texts.values())
    has_polygons = any(r["type"] == "polygonlabels" for t in tasks for r in t["annotations"][0]["result"])
    config = _config(dataset, text_name if has_text else None, has_polygons)
    if copy_images:
        for name, image in names.items():
            copy_image(image.path, out / name)
    atomic_write_bytes(out / CONFIG_NAME, config)
    atomic_write_json(tasks_path, tasks)
    return out
