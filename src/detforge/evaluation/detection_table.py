"""Every detection of an evaluation as numpy columns, and the ground truth as COCO box columns.

The table is what evaluation works on: a results file is read straight into it (no torch), and a
model's per-image `Detections` are converted into it once (`DetectionTable.from_detections`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from detforge.errors import DatasetError
from detforge.evaluation.coco_boxes import BoxColumns
from detforge.structures import Annotation, Categories, ImageRecord
from detforge.structures.boxes import xyxy_to_xywh_array

if TYPE_CHECKING:
    from detforge.structures.detections import Detections

__all__ = ["DetectionTable", "detection_columns", "ground_truth_columns", "sorted_image_index"]


@dataclass(frozen=True, eq=False)  # holds arrays: compared by identity
class DetectionTable:
    """Detections of many images as columns, N rows: image_ids [N] int64 (dataset image ids), labels [N]
    int64 (class index 0..K-1), scores [N] float64, xywh [N, 4] float64 pixels (x, y, width, height), and
    when reading ran, texts (N entries: the value read, or None: not read) and text_scores [N] float64
    (NaN where not read). Rows are grouped by image, each image's rows by descending score (stable).
    boxes_xyxy [N, 4] float64: the XYXY boxes as the detector gave them (None: x + width, y + height).
    """

    image_ids: np.ndarray
    labels: np.ndarray
    scores: np.ndarray
    xywh: np.ndarray
    texts: tuple[str | None, ...] | None = None
    text_scores: np.ndarray | None = None
    boxes_xyxy: np.ndarray | None = None

    def __post_init__(self) -> None:
        n = len(self.image_ids)
        for name in ("labels", "scores"):
            if getattr(self, name).shape != (n,):
                raise ValueError(f"DetectionTable.{name}: expected shape [{n}], got {list(getattr(self, name).shape)}")
        if self.xywh.shape != (n, 4):
            raise ValueError(f"DetectionTable.xywh: expected shape [{n}, 4], got {list(self.xywh.shape)}")
        if (self.texts is None) != (self.text_scores is None):
            raise ValueError("DetectionTable.texts / text_scores: expected both or neither")
        if self.texts is not None and len(self.texts) != n:
            raise ValueError(f"DetectionTable.texts: expected {n} entries, got {len(self.texts)}")

    def __len__(self) -> int:
        return int(self.image_ids.shape[0])

    @property
    def has_text(self) -> bool:
        return self.texts is not None

    @property
    def xyxy(self) -> np.ndarray:
        """[N, 4] float64 XYXY pixels."""
        if self.boxes_xyxy is not None:
            return self.boxes_xyxy
        return np.concatenate([self.xywh[:, :2], self.xywh[:, :2] + self.xywh[:, 2:]], axis=1)

    @classmethod
    def from_detections(cls, predictions: Mapping[int, Detections]) -> DetectionTable:
        """All of `predictions` (image id -> Detections, XYXY float32 boxes) as one table, images by ascending id."""
        parts = [(i, predictions[i].cpu()) for i in sorted(predictions) if len(predictions[i])]
        if not parts:
            empty = np.zeros(0, dtype=np.int64)
            with_text = any(d.has_text for d in predictions.values())
            return cls(empty, empty.copy(), np.zeros(0), np.zeros((0, 4)), () if with_text else None,
                       np.zeros(0) if with_text else None)  # fmt: skip
        xyxy = np.concatenate([d.boxes.numpy() for _, d in parts]).astype(np.float64).reshape(-1, 4)
        scores = np.concatenate([d.scores.numpy() for _, d in parts]).astype(np.float64)
        image_ids = np.repeat(np.asarray([i for i, _ in parts], dtype=np.int64), [len(d) for _, d in parts])
        labels = np.concatenate([d.labels.numpy() for _, d in parts]).astype(np.int64)
        order = np.lexsort((-scores, image_ids))
        texts = text_scores = None
        if any(d.has_text for _, d in parts):
            all_texts = [t for _, d in parts for t in (d.texts if d.texts is not None else (None,) * len(d))]
            texts = tuple(all_texts[j] for j in order.tolist())
            text_scores = np.concatenate(
                [d.text_scores.numpy() if d.text_scores is not None else np.full(len(d), math.nan) for _, d in parts]
            ).astype(np.float64)[order]
        xywh = xyxy_to_xywh_array(xyxy)
        return cls(image_ids[order], labels[order], scores[order], xywh[order], texts, text_scores, xyxy[order])

    def to_detections(self, images: Sequence[ImageRecord]) -> dict[int, Detections]:
        """Detections per image of `images` (empty where the table has none; float32 XYXY boxes)."""
        import torch

        from detforge.structures.detections import Detections

        order = np.argsort(self.image_ids, kind="stable")
        ids = self.image_ids[order]
        boxes = torch.from_numpy(self.xyxy[order].astype(np.float32))
        labels = torch.from_numpy(self.labels[order])
        scores = torch.from_numpy(self.scores[order].astype(np.float32))
        out: dict[int, Detections] = {}
        for im in images:
            a, b = np.searchsorted(ids, [im.id, im.id + 1]).tolist()
            size = (im.height, im.width)
            det = Detections(boxes[a:b], labels[a:b], scores[a:b], size) if b > a else Detections.empty(size)
            if self.texts is not None and self.text_scores is not None:
                rows = order[a:b].tolist()
                det = det.with_texts([self.texts[j] for j in rows], self.text_scores[order[a:b]].tolist())
            out[im.id] = det
        return out


def sorted_image_index(images: Sequence[ImageRecord]) -> tuple[np.ndarray, dict[int, int]]:
    """(image ids ascending [I] int64, id -> index); DatasetError for a duplicate image id."""
    ids = np.asarray(sorted(im.id for im in images), dtype=np.int64)
    if len(ids) > 1 and (ids[1:] == ids[:-1]).any():
        dup = sorted(set(ids[1:][ids[1:] == ids[:-1]].tolist()))
        raise DatasetError(f"images: duplicate image ids {dup[:10]}; each evaluated image must have a unique id")
    return ids, {int(i): k for k, i in enumerate(ids.tolist())}


def _annotation_area(ann: Annotation, height: int, width: int) -> float:
    """COCO's ground truth area: the annotation's own, else its mask area (image size known), else its box area."""
    if ann.area is not None:
        return float(ann.area)
    if ann.segmentation is not None and width and height:
        from detforge.evaluation.coco_format import mask_area_of

        return mask_area_of(ann, height, width)
    return ann.box_area


def ground_truth_columns(
    images: Sequence[ImageRecord], annotations: Sequence[Annotation], categories: Categories
) -> BoxColumns:
    """The annotations as COCO box columns (image index into the ascending image ids, class index, XYWH,
    area, crowd); DatasetError for an annotation on an image not in `images` or of an unknown category."""
    _, index = sorted_image_index(images)
    sizes = {im.id: (im.height, im.width) for im in images}
    cat_index = {c.id: k for k, c in enumerate(categories)}
    image = np.empty(len(annotations), dtype=np.int64)
    label = np.empty(len(annotations), dtype=np.int64)
    area = np.empty(len(annotations), dtype=np.float64)
    for n, ann in enumerate(annotations):
        where = f"annotation {ann.id} of image {ann.image_id}" + (f" ({ann.source})" if ann.source else "")
        if ann.image_id not in index:
            raise DatasetError(f"{where}: image id {ann.image_id} is not among the evaluated images")
        if ann.category_id not in cat_index:
            raise DatasetError(f"{where}: category id {ann.category_id} not in {list(categories.ids)}")
        image[n], label[n] = index[ann.image_id], cat_index[ann.category_id]
        area[n] = _annotation_area(ann, *sizes[ann.image_id])
    xywh = xyxy_to_xywh_array(np.asarray([a.bbox for a in annotations], dtype=np.float64).reshape(-1, 4))
    crowd = np.asarray([a.iscrowd for a in annotations], dtype=bool).reshape(-1)
    return BoxColumns(image, label, xywh, area, crowd, np.zeros(len(annotations)))


def detection_columns(table: DetectionTable, images: Sequence[ImageRecord], num_classes: int) -> BoxColumns:
    """The table as COCO box columns (image index into the ascending image ids of `images`, area = width *
    height); DatasetError for a detection on an image not in `images` or with a label outside 0..K-1."""
    ids, _ = sorted_image_index(images)
    pos = np.minimum(np.searchsorted(ids, table.image_ids), max(len(ids) - 1, 0))
    unknown = np.flatnonzero(ids[pos] != table.image_ids) if len(ids) else np.arange(len(table))
    if unknown.size:
        bad = sorted(set(table.image_ids[unknown].tolist()))
        raise DatasetError(f"predictions for image ids {bad[:10]} that are not among the evaluated images")
    bad_label = np.flatnonzero((table.labels < 0) | (table.labels >= num_classes))
    if bad_label.size:
        i = int(bad_label[0])
        raise DatasetError(
            f"predictions for image {int(table.image_ids[i])}: label {int(table.labels[i])} is outside "
            f"0..{num_classes - 1}"
        )
    area = table.xywh[:, 2] * table.xywh[:, 3]
    return BoxColumns(pos, table.labels, table.xywh, area, np.zeros(len(table), dtype=bool), table.scores)
