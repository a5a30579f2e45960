"""Write a Dataset as LabelMe JSON files (one per image, the image beside it) plus `labels.txt`."""

from __future__ import annotations

from pathlib import Path, PurePosixPath
from typing import Any

from detforge.data.dataset import Dataset
from detforge.data.formats._coco_files import copy_image, output_name
from detforge.data.formats._coco_write import check_subset_name, input_files
from detforge.data.images import displayed_size
from detforge.errors import DatasetError
from detforge.fileio import atomic_write_json, atomic_write_text
from detforge.structures import Annotation, ImageRecord, Polygons

__all__ = ["IGNORED_LABELS", "LABELME_VERSION", "LABELS_FILE", "write_labelme_dataset"]

LABELS_FILE = "labels.txt"
"""Class names, one a line (LabelMe's `--labels` file); the reader takes classes and their order from it."""
LABELME_VERSION = "5.4.1"
IGNORED_LABELS = ("__ignore__", "_background_")
"""Lines of a LabelMe labels.txt that are not classes (labelme's conversion examples write them)."""


def _group_id(attrs: dict[str, str]) -> int | None:
    value = attrs.get("group_id", "")
    return int(value) if value.lstrip("-").isdigit() else None


def _shape(ann: Annotation, label: str, description: str) -> dict[str, Any]:
    attrs = dict(ann.attributes)
    seg = ann.segmentation
    single = isinstance(seg, Polygons) and len(seg.points) == 1
    if (
        single
        and isinstance(seg, Polygons)
        and max(abs(a - b) for a, b in zip(seg.bbox(), ann.bbox, strict=True)) <= 0.01
    ):
        poly = seg.points[0]
        kind, points = "polygon", [[x, y] for x, y in zip(poly[0::2], poly[1::2], strict=True)]
    else:
        x0, y0, x1, y1 = ann.bbox
        kind, points = "rectangle", [[x0, y0], [x1, y1]]
    flags = {k[len("flag.") :]: v == "true" for k, v in attrs.items() if k.startswith("flag.")}
    return {
        "label": label,
        "points": points,
        "group_id": _group_id(attrs),
        "description": description,
        "shape_type": kind,
        "flags": flags,
        "mask": None,
    }


def _size(image: ImageRecord) -> tuple[int, int]:
    if image.width and image.height:
        return image.width, image.height
    return displayed_size(image.path) if image.path.is_file() else (0, 0)


def _relative(image: ImageRecord, root: Path) -> PurePosixPath:
    """The image's path below its subset folder (a LabelMe reader's file name already starts with the subset)."""
    rel = PurePosixPath(output_name(image, root))
    if image.subset is not None and len(rel.parts) > 1 and rel.parts[0] == image.subset:
        rel = PurePosixPath(*rel.parts[1:])
    return rel


def write_labelme_dataset(dataset: Dataset, out: Path, *, copy_images: bool = True) -> Path:
    """See `detforge.data.formats.labelme.write_labelme`. Everything is validated before anything is written."""
    inputs = input_files(dataset)
    for name in dataset.categories.names:
        if not name.strip() or "\n" in name or "\r" in name:
            raise DatasetError(f"category name {name!r} cannot be written to {LABELS_FILE} (empty or has a newline)")
    source = dataset.text_attribute
    planned: dict[Path, ImageRecord] = {}
    for image in dataset.images:
        folder = out / check_subset_name(image.subset) if image.subset is not None else out
        rel = _relative(image, dataset.root)
        json_path = folder / rel.with_suffix(".json")
        if json_path in planned:
            first = planned[json_path]
            raise DatasetError(
                f"images {first.id} ({first.file_name}) and {image.id} ({image.file_name}) would both be written "
                f"as {json_path}; rename one of them"
            )
        if json_path.resolve() in inputs:
            raise DatasetError(f"{json_path}: this is an input file of the dataset; write to another folder")
        planned[json_path] = image
    for json_path, image in planned.items():
        shapes = []
        for ann in dataset.annotations_of(image.id):
            text = ann.text if ann.text is not None else dict(ann.attributes).get(source or "", "")
            shapes.append(_shape(ann, dataset.categories.by_id(ann.category_id).name, text))
        image_name = _relative(image, dataset.root).name
        width, height = _size(image)
        doc: dict[str, Any] = {
            "version": LABELME_VERSION, "flags": {}, "shapes": shapes, "imagePath": image_name, "imageData": None,
            "imageHeight": height, "imageWidth": width,
        }  # fmt: skip
        if copy_images:
            copy_image(image.path, json_path.with_name(image_name))
        atomic_write_json(json_path, doc)
    atomic_write_text(out / LABELS_FILE, "".join(f"{name}\n" for name in dataset.categories.names))
    return out
