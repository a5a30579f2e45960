"""Write a Dataset in the Ultralytics YOLO layout (data.yaml, images/<subset>/, labels/<subset>/)."""

from __future__ import annotations

import logging
from pathlib import Path

import yaml

from detforge.data.dataset import Dataset
from detforge.data.formats._coco_files import copy_image, output_name
from detforge.data.formats._coco_write import check_subset_name, input_files
from detforge.data.formats._yolo_layout import label_in_labels_dir
from detforge.errors import DatasetError
from detforge.fileio import atomic_write_text
from detforge.structures import Annotation, ImageRecord
from detforge.structures.boxes import yolo_cxcywh

__all__ = ["label_line", "write_yolo_dataset"]

logger = logging.getLogger(__name__)


def label_line(index: int, ann: Annotation, image: ImageRecord) -> str:
    """`index cx cy w h`, normalised by the image size, 6 decimals."""
    if not ann.is_finite():
        raise DatasetError(
            f"annotation {ann.id} of image {image.id} ({image.file_name}): box {ann.bbox} is not finite; "
            "run detforge.data.clean.sanitize first"
        )
    return f"{index} " + " ".join(f"{v:.6f}" for v in yolo_cxcywh(ann.bbox, image.width, image.height))


def _label_name(subset: str, name: str) -> str:
    """The label file (relative to the output folder) of `images/<subset>/<name>`, by the reader's rule."""
    return label_in_labels_dir(Path("images", subset, name)).as_posix()


def _plan(dataset: Dataset) -> list[tuple[ImageRecord, str, str]]:
    """(image, subset written, output file name) for every image, checking sizes and name clashes."""
    plan: list[tuple[ImageRecord, str, str]] = []
    seen_images: dict[tuple[str, str], ImageRecord] = {}
    seen_labels: dict[tuple[str, str], ImageRecord] = {}
    for im in dataset.images:
        if im.width <= 0 or im.height <= 0:
            raise DatasetError(
                f"image {im.id} ({im.path}): size unknown ({im.width}x{im.height}); YOLO boxes are normalised by "
                "the image size, so it cannot be written (is the image missing?)"
            )
        subset = check_subset_name(im.subset) if im.subset is not None else "train"
        name = output_name(im, dataset.root)
        for seen, key in ((seen_images, (subset, name)), (seen_labels, (subset, _label_name(subset, name)))):
            if key in seen:
                other = seen[key]
                raise DatasetError(
                    f"images {other.id} ({other.path}) and {im.id} ({im.path}) would both be written as "
                    f"{key[1]} (subset {subset!r}); rename one of them"
                )
            seen[key] = im
        plan.append((im, subset, name))
    return plan


def write_yolo_dataset(dataset: Dataset, out: Path, *, copy_images: bool = True) -> Path:
    """See `detforge.data.formats.yolo.write_yolo`. Everything is validated before anything is written."""
    index = {c.id: i for i, c in enumerate(dataset.categories)}
    inputs = input_files(dataset)
    plan = _plan(dataset)
    labels: list[tuple[Path, str]] = []
    crowd = 0
    for im, subset, name in plan:
        label_path = out / _label_name(subset, name)
        if label_path.resolve() in inputs:
            raise DatasetError(f"{label_path}: this is an input file of the dataset; write to another folder")
        lines = []
        for ann in dataset.annotations_of(im.id):
            if ann.iscrowd:
                crowd += 1
                continue
            lines.append(label_line(index[ann.category_id], ann, im))
        labels.append((label_path, "".join(line + "\n" for line in lines)))
    data_yaml = out / "data.yaml"
    if data_yaml.exists() and data_yaml.resolve().parent == dataset.root.resolve() and dataset.format == "yolo":
        raise DatasetError(f"{data_yaml}: this is the dataset's own data.yaml; write to another folder")
    if crowd:
        logger.warning("%d crowd annotation(s) skipped: YOLO has no crowd regions", crowd)
    if copy_images:
        for im, subset, name in plan:
            copy_image(im.path, out / "images" / subset / name)
    for label_path, text in labels:
        atomic_write_text(label_path, text)
    subsets = list(dict.fromkeys(subset for _, subset, _ in plan)) or ["train"]
    config: dict[str, object] = {"path": "."}
    config.update({s: f"images/{s}" for s in subsets})
    config["names"] = {i: c.name for i, c in enumerate(dataset.categories)}
    atomic_write_text(data_yaml, yaml.safe_dump(config, sort_keys=False, allow_unicode=True))
    return out
