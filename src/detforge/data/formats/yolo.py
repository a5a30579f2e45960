"""YOLO format (Ultralytics data.yaml, CVAT "YOLO 1.1", loose images/ + labels/): reader and writer.

Reading converts normalised `cls cx cy w h` lines to XYXY pixels of the EXIF-oriented image, and
polygon lines `cls x1 y1 x2 y2 ...` to `Polygons` (pixels) plus their box. Category ids are the
0-based YOLO class indices. Image ids are 1..M in subset order (train, val, test, others) then path;
annotation ids 1..N in reading order. Messages quote a line as written (`label "0 0.5 0.5 -0.1 0.2" of
a.jpg`, with the label file and line), never detforge's ids or pixel boxes.

Problem codes (`Dataset.problems`, located by label file and 1-based line where there is one):
- errors, line left out: `yolo.wrong_value_count`, `yolo.non_numeric`, `yolo.class_not_integer`,
  `yolo.class_out_of_range`; `yolo.no_image_size` (image missing/unreadable: its labels left out);
  `yolo.label_unreadable`; `yolo.subset_missing` (a train/val/test entry that does not exist),
- warnings: `yolo.coords_out_of_range` (a normalised value outside [0, 1] beyond 1e-3; kept),
  `yolo.duplicate_image` (an image listed twice in one subset; read once),
- info: `label_file.missing` (no label file: an image with no objects; an empty file is not reported),
  `yolo.path_fallback` (absolute `path:` missing, yaml folder used), `yolo.list_missing`,
  `yolo.names_generated`.
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

from detforge.data.dataset import Dataset
from detforge.data.formats._yolo_labels import parse_label_text
from detforge.data.formats._yolo_layout import SubsetFiles, find_layout
from detforge.data.formats._yolo_write import write_yolo_dataset
from detforge.data.images import read_header
from detforge.errors import InvalidImage
from detforge.structures import Annotation, ImageRecord, Location, Problem

__all__ = ["read_yolo", "write_yolo"]

_SUBSET_ORDER = {None: 0, "train": 1, "val": 2, "test": 3}


def _subset_key(sub: SubsetFiles) -> tuple[int, str]:
    return (_SUBSET_ORDER.get(sub.name, 4), sub.name or "")


def _file_names(images: tuple[Path, ...]) -> list[str]:
    """Posix names of the images relative to the deepest folder holding them all."""
    absolute = [p.absolute() for p in images]
    base = os.path.commonpath([str(p.parent) for p in absolute])
    return [Path(os.path.relpath(p, base)).as_posix() for p in absolute]


class _Reader:
    def __init__(self, class_ids: frozenset[int]) -> None:
        self.class_ids = class_ids
        self.images: list[ImageRecord] = []
        self.annotations: list[Annotation] = []
        self.problems: list[Problem] = []

    @staticmethod
    def _of(where: Location | None, file_name: str) -> Location | None:
        """`where` naming its label line as written and the image it labels (`label "0 0.5 ..." of a.jpg`)."""
        return replace(where, item=f"{where.item} of {file_name}") if where is not None and where.item else where

    def add(self, image: Path, label: Path, file_name: str, subset: str | None) -> None:
        image_id = len(self.images) + 1
        where = Location(str(label))
        try:
            header = read_header(image)
            width, height, failure = header.width, header.height, ""
        except InvalidImage as exc:
            width, height, failure = 0, 0, str(exc)
        self.images.append(ImageRecord(image_id, file_name, image, width, height, subset, where))
        if not label.is_file():
            self.problems.append(
                Problem("info", "label_file.missing", f"no label file for {image}; read as an image with no objects",
                        where, image_id=image_id)
            )  # fmt: skip
            return
        try:
            text = label.read_text(encoding="utf-8-sig")
        except (OSError, UnicodeDecodeError) as exc:
            self.problems.append(
                Problem("error", "yolo.label_unreadable", f"cannot read label file ({exc}); its labels were left out",
                        where, image_id=image_id)
            )  # fmt: skip
            return
        if failure:
            lines = sum(1 for line in text.splitlines() if line.strip())
            if lines:
                self.problems.append(
                    Problem("error", "yolo.no_image_size",
                            f"cannot convert normalised boxes without the image size ({failure}); "
                            f"its {lines} label line(s) were left out", where, image_id=image_id)
                )  # fmt: skip
            return
        objects, problems = parse_label_text(text, label, (width, height), self.class_ids)
        self.problems += [Problem(p.severity, p.code, p.message, self._of(p.location, file_name), image_id)
                          for p in problems]  # fmt: skip
        for obj in objects:
            self.annotations.append(
                Annotation(len(self.annotations) + 1, image_id, obj.class_id, obj.bbox, obj.polygon,
                           source=Location(str(label), obj.line, item=f"label {obj.written} of {file_name}"))
            )  # fmt: skip


def read_yolo(path: Path) -> Dataset:
    """Read a YOLO dataset from a folder, a `*.yaml` (Ultralytics), an `obj.data` (CVAT YOLO 1.1) or
    a names file (loose `images/<subset>` + `labels/<subset>` layout).

    Boxes are absolute pixel XYXY in the EXIF-oriented image frame (sizes from `read_header`).
    Images without a label file have no objects (info `label_file.missing`); images that cannot be read
    are kept with size 0 and their labels left out (error `yolo.no_image_size`). DatasetError when
    the layout, yaml, obj.data or class names cannot be read.
    """
    path = Path(path)
    layout = find_layout(path)
    reader = _Reader(frozenset(layout.categories.ids))
    reader.problems += layout.problems
    for sub in sorted(layout.subsets, key=_subset_key):
        for image, label, name in zip(sub.images, sub.labels, _file_names(sub.images), strict=True):
            reader.add(image, label, name, sub.name)
    return Dataset(
        tuple(reader.images), tuple(reader.annotations), layout.categories, layout.root, "yolo", tuple(reader.problems)
    )


def write_yolo(dataset: Dataset, out: Path, *, copy_images: bool = True) -> Path:
    """Write `dataset` in the Ultralytics layout to the folder `out`; returns `out`.

    Writes `out/data.yaml` (`path: .`, `<subset>: images/<subset>`, `names: {index: name}` in the
    dataset's category order), `out/labels/<subset>/<file stem>.txt` (one `cls cx cy w h` line per
    object, normalised, 6 decimals; an empty file for an image without objects) and, with
    `copy_images`, `out/images/<subset>/<file_name>`. Subset None is written as `train`. The class
    index is the category's contiguous index in `dataset.categories`.

    Masks are not written: YOLO detection labels hold boxes only (polygons become their boxes).
    Crowd annotations are skipped with a logged warning (YOLO has no crowd regions).
    DatasetError for an image of unknown size (0), a non-finite box, two images with the same
    output name, or a target that is an input file of the dataset.
    """
    return write_yolo_dataset(dataset, Path(out), copy_images=copy_images)
