"""Write a Dataset as COCO instances files (one per subset), copying images beside them."""

from __future__ import annotations

import math
from importlib import metadata
from pathlib import Path
from typing import Any

from detforge.data.dataset import Dataset
from detforge.data.formats._coco_files import copy_image, output_name
from detforge.data.images import read_header
from detforge.data.transcriptions import text_attribute_pairs, text_write_name
from detforge.errors import DatasetError, InvalidImage
from detforge.fileio import atomic_write_json
from detforge.structures import RLE, Annotation, ImageRecord, Polygons
from detforge.structures.boxes import coco_bbox

__all__ = ["check_subset_name", "group_by_subset", "input_files", "write_coco_dataset"]


def check_subset_name(subset: str) -> str:
    """`subset` if it can name a folder/file safely; DatasetError otherwise."""
    if not subset or subset in (".", "..") or "/" in subset or "\\" in subset:
        raise DatasetError(f"subset name {subset!r} cannot be used as a folder name; rename the subset")
    return subset


def group_by_subset(dataset: Dataset) -> dict[str | None, list[ImageRecord]]:
    """Images of each subset, subsets in order of first appearance, images in dataset order."""
    groups: dict[str | None, list[ImageRecord]] = {}
    for im in dataset.images:
        groups.setdefault(im.subset, []).append(im)
    return groups


def input_files(dataset: Dataset) -> set[Path]:
    """Resolved paths of the files the dataset was read from (never to be overwritten)."""
    files = {im.source.file for im in dataset.images if im.source is not None}
    files.update(a.source.file for a in dataset.annotations if a.source is not None)
    return {Path(f).resolve() for f in files}


def _unique_names(images: list[ImageRecord], root: Path, subset: str | None) -> list[str]:
    names: dict[str, ImageRecord] = {}
    for im in images:
        name = output_name(im, root)
        if name in names:
            raise DatasetError(
                f"images {names[name].id} ({names[name].path}) and {im.id} ({im.path}) of subset {subset!r} "
                f"would both be written as {name!r}; rename one of them"
            )
        names[name] = im
    return list(names)


def _size(im: ImageRecord) -> tuple[int, int]:
    if im.width and im.height:
        return im.width, im.height
    try:
        header = read_header(im.path)
        return header.width, header.height
    except InvalidImage:
        return im.width, im.height


def _segmentation(ann: Annotation) -> Any:
    seg = ann.segmentation
    if isinstance(seg, Polygons):
        return [list(p) for p in seg.points]
    if isinstance(seg, RLE):
        counts = seg.counts if isinstance(seg.counts, str) else list(seg.counts)
        return {"counts": counts, "size": list(seg.size)}
    return []


def _annotation(ann: Annotation, image: ImageRecord, text_attribute: str | None, text_name: str) -> dict[str, Any]:
    if not all(map(math.isfinite, ann.bbox)):
        raise DatasetError(
            f"annotation {ann.id} of image {image.id} ({image.file_name}): box {ann.bbox} is not finite and "
            "cannot be written as JSON; run detforge.data.clean.sanitize first"
        )
    out: dict[str, Any] = {
        "id": ann.id,
        "image_id": ann.image_id,
        "category_id": ann.category_id,
        "bbox": coco_bbox(ann.bbox, 6),
        "area": ann.area if ann.area is not None and math.isfinite(ann.area) else round(ann.box_area, 6),
        "segmentation": _segmentation(ann),
        "iscrowd": int(ann.iscrowd),
    }
    attributes = text_attribute_pairs(
        ann, text_attribute, text_name
    )  # the transcription as CVAT's COCO: attributes.text
    if attributes:
        out["attributes"] = attributes
    return out


def _info() -> dict[str, str]:
    try:
        version = metadata.version("detforge")
    except metadata.PackageNotFoundError:
        version = ""
    return {"description": "Written by detforge", "contributor": "detforge", "version": version}


def write_coco_dataset(dataset: Dataset, out: Path, *, copy_images: bool = True) -> Path:
    """See `detforge.data.formats.coco.write_coco`. Everything is validated before anything is written."""
    inputs = input_files(dataset)
    categories = [{"id": c.id, "name": c.name, "supercategory": c.supercategory} for c in dataset.categories]
    payloads: dict[Path, dict[str, Any]] = {}
    text_name = text_write_name(dataset)
    copies: list[tuple[Path, Path]] = []
    for subset, images in group_by_subset(dataset).items():
        file_name = f"instances_{check_subset_name(subset)}.json" if subset is not None else "instances.json"
        ann_path = out / "annotations" / file_name
        if ann_path.resolve() in inputs:
            raise DatasetError(f"{ann_path}: this is an input file of the dataset; write to another folder")
        image_dir = out / "images" / subset if subset is not None else out / "images"
        names = _unique_names(images, dataset.root, subset)
        image_entries, ann_entries = [], []
        for im, name in zip(images, names, strict=True):
            width, height = _size(im)
            image_entries.append({"id": im.id, "file_name": name, "width": width, "height": height})
            ann_entries += [
                _annotation(a, im, dataset.text_attribute, text_name) for a in dataset.annotations_of(im.id)
            ]
            copies.append((im.path, image_dir / name))
        payloads[ann_path] = {
            "info": _info(),
            "licenses": [],
            "categories": categories,
            "images": image_entries,
            "annotations": ann_entries,
        }
    if copy_images:
        for src, dst in copies:
            copy_image(src, dst)
    for ann_path, payload in payloads.items():
        atomic_write_json(ann_path, payload, indent=None)  # compact: COCO files get large
    out.mkdir(parents=True, exist_ok=True)
    return out
