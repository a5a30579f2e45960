"""Write a Dataset as one CVAT for images 1.1 XML file (`annotations.xml`) with its images beside it."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from xml.etree.ElementTree import Element, ElementTree, SubElement, indent, tostring

from detforge.data.dataset import Dataset
from detforge.data.formats._coco_files import copy_image, output_name
from detforge.data.formats._coco_write import check_subset_name, input_files
from detforge.data.formats._xml import format_number
from detforge.data.images import displayed_size
from detforge.data.transcriptions import text_attribute_pairs, text_write_name
from detforge.errors import DatasetError
from detforge.fileio import atomic_write_bytes
from detforge.structures import Annotation, ImageRecord, Polygons

__all__ = ["write_cvat_dataset"]

_SHAPE_FLAGS = ("occluded", "z_order")  # XML attributes of a shape, not <attribute> children
_TRUE = ("1", "true", "True")


def _add(parent: Element, tag: str, text: str) -> Element:
    child = SubElement(parent, tag)
    child.text = text
    return child


def _attribute_spec(parent: Element, name: str, values: set[str], free_text: bool) -> None:
    attr = SubElement(parent, "attribute")
    _add(attr, "name", name)
    _add(attr, "mutable", "False")
    if free_text:
        _add(attr, "input_type", "text")
        _add(attr, "default_value", "")
        _add(attr, "values", "")
        return
    ordered = sorted(values)
    _add(attr, "input_type", "select")
    _add(attr, "default_value", ordered[0] if ordered else "")
    _add(attr, "values", "\n".join(ordered))


def _meta(root: Element, dataset: Dataset, shape_attrs: dict[int, dict[str, set[str]]], text_name: str) -> None:
    task = SubElement(SubElement(root, "meta"), "task")
    _add(task, "name", "detforge export")
    _add(task, "size", str(len(dataset.images)))
    _add(task, "mode", "annotation")
    labels = SubElement(task, "labels")
    for category in dataset.categories:
        label = SubElement(labels, "label")
        _add(label, "name", category.name)
        _add(label, "type", "any")
        attributes = SubElement(label, "attributes")
        for name, values in sorted(shape_attrs.get(category.id, {}).items()):
            _attribute_spec(attributes, name, values, free_text=name == text_name)


def _polygon_points(ann: Annotation) -> str | None:
    """CVAT `points` for a single polygon whose bbox is the annotation's box, else None (written as a box)."""
    seg = ann.segmentation
    if not isinstance(seg, Polygons) or len(seg.points) != 1:
        return None
    if max(abs(a - b) for a, b in zip(seg.bbox(), ann.bbox, strict=True)) > 0.01:
        return None
    poly = seg.points[0]
    return ";".join(f"{format_number(x)},{format_number(y)}" for x, y in zip(poly[0::2], poly[1::2], strict=True))


def _shape(parent: Element, ann: Annotation, label: str, attrs: dict[str, str]) -> None:
    common = {
        "label": label,
        "source": "manual",
        "occluded": "1" if attrs.get("occluded") in _TRUE else "0",
        "z_order": attrs.get("z_order", "0") if attrs.get("z_order", "0").lstrip("-").isdigit() else "0",
    }
    points = _polygon_points(ann)
    if points is not None:
        shape = SubElement(parent, "polygon", {**common, "points": points})
    else:
        x0, y0, x1, y1 = (format_number(v) for v in ann.bbox)
        shape = SubElement(parent, "box", {**common, "xtl": x0, "ytl": y0, "xbr": x1, "ybr": y1})
    for name, value in sorted(attrs.items()):
        if name not in _SHAPE_FLAGS:
            _add(shape, "attribute", value).set("name", name)


def _size(image: ImageRecord) -> tuple[int, int]:
    if image.width and image.height:
        return image.width, image.height
    return displayed_size(image.path) if image.path.is_file() else (0, 0)


def write_cvat_dataset(dataset: Dataset, out: Path, *, copy_images: bool = True) -> Path:
    """See `detforge.data.formats.cvat.write_cvat`. Everything is validated before anything is written."""
    xml_path = out / "annotations.xml"
    if xml_path.resolve() in input_files(dataset):
        raise DatasetError(f"{xml_path}: this is an input file of the dataset; write to another folder")
    text_name = text_write_name(dataset)
    names: dict[tuple[str | None, str], ImageRecord] = {}
    per_image: list[tuple[ImageRecord, str, list[tuple[Annotation, dict[str, str]]]]] = []
    shape_attrs: dict[int, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    for image in dataset.images:
        if image.subset is not None:
            check_subset_name(image.subset)
        name = output_name(image, dataset.root)
        if (image.subset, name) in names:
            first = names[(image.subset, name)]
            raise DatasetError(
                f"images {first.id} ({first.path}) and {image.id} ({image.path}) of subset {image.subset!r} "
                f"would both be written as {name!r}; rename one of them"
            )
        names[(image.subset, name)] = image
        anns = [
            (a, text_attribute_pairs(a, dataset.text_attribute, text_name)) for a in dataset.annotations_of(image.id)
        ]
        for ann, attrs in anns:
            for key, value in attrs.items():
                if key not in _SHAPE_FLAGS:
                    shape_attrs[ann.category_id][key].add(value)
        per_image.append((image, name, anns))
    root = Element("annotations")
    _add(root, "version", "1.1")
    _meta(root, dataset, shape_attrs, text_name)
    for index, (image, name, anns) in enumerate(per_image):
        width, height = _size(image)
        attrib = {"id": str(index), "name": name, "width": str(width), "height": str(height)}
        if image.subset is not None:
            attrib["subset"] = image.subset
        elem = SubElement(root, "image", attrib)
        for ann, attrs in anns:
            _shape(elem, ann, dataset.categories.by_id(ann.category_id).name, attrs)
    indent(ElementTree(root), space="  ")
    if copy_images:
        for image, name, _ in per_image:
            folder = out / "images" / image.subset if image.subset is not None else out / "images"
            copy_image(image.path, folder / name)
    atomic_write_bytes(xml_path, tostring(root, encoding="utf-8", xml_declaration=True) + b"\n")
    return out
