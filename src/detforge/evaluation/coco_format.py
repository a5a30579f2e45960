"""detforge structures -> the COCO dicts and arrays faster-coco-eval consumes (the one place XYXY -> XYWH).

Everything here is private to `detforge.evaluation`: ground truth is built in memory (no temporary
files) and detections are kept as arrays until evaluation, then turned into result dicts in one
vectorised pass (avoiding `COCO.loadRes`, whose per-detection Python loop dominated evaluation time).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from detforge.errors import DatasetError
from detforge.structures import RLE, Annotation, Categories, ImageRecord, Polygons
from detforge.structures.boxes import xyxy_to_xywh, xyxy_to_xywh_array

if TYPE_CHECKING:
    from detforge.structures.detections import Detections

__all__ = [
    "DetectionArrays",
    "IouType",
    "detection_arrays",
    "ground_truth_dict",
    "mask_area_of",
    "result_annotations",
]

IouType = Literal["bbox", "segm"]
CocoDict = dict[str, Any]


def _where(ann: Annotation) -> str:
    return f"annotation {ann.id} of image {ann.image_id}" + (f" ({ann.source})" if ann.source else "")


def _segmentation(ann: Annotation, height: int, width: int) -> Any:
    """COCO segmentation of an annotation: polygons as lists, RLE as a dict; the box as a polygon if none."""
    seg = ann.segmentation
    if isinstance(seg, Polygons):
        return [list(p) for p in seg.points]
    if isinstance(seg, RLE):
        if width and height and tuple(seg.size) != (height, width):
            raise DatasetError(
                f"{_where(ann)}: RLE mask size {tuple(seg.size)} (height, width) differs from the image's "
                f"{(height, width)}"
            )
        counts = list(seg.counts) if isinstance(seg.counts, tuple) else seg.counts
        return {"counts": counts, "size": list(seg.size)}
    x0, y0, x1, y1 = ann.bbox
    return [[x0, y0, x0, y1, x1, y1, x1, y0]]


def _mask_area(segmentation: Any, height: int, width: int) -> float:
    from faster_coco_eval.core import mask as mask_utils

    if isinstance(segmentation, list):
        rle = mask_utils.merge(mask_utils.frPyObjects(segmentation, height, width))
    elif isinstance(segmentation["counts"], list):
        rle = mask_utils.frPyObjects(segmentation, height, width)
    else:
        rle = segmentation
    return float(mask_utils.area(rle))


def mask_area_of(ann: Annotation, height: int, width: int) -> float:
    """The area in pixels of `ann`'s mask (polygons or RLE) on a `height` x `width` image."""
    return _mask_area(_segmentation(ann, height, width), height, width)


def ground_truth_dict(
    images: Sequence[ImageRecord], annotations: Sequence[Annotation], categories: Categories, iou_type: IouType
) -> CocoDict:
    """A COCO ground-truth dataset dict (images, annotations, categories) for faster-coco-eval.

    Boxes become XYWH. Annotation ids are renumbered 1..N (COCO uses ids as match markers, so 0 must not
    occur). `area` is the annotation's own area if it has one, else its mask area when it has a mask and
    the image size is known, else its box area. For "segm", an annotation without a mask is evaluated as
    its box; a polygon on an image of unknown size (0) raises DatasetError.
    """
    sizes = {im.id: (im.height, im.width) for im in images}
    image_dicts = [{"id": im.id, "width": im.width, "height": im.height} for im in images]
    category_dicts = [{"id": c.id, "name": c.name, "supercategory": c.supercategory} for c in categories]
    ann_dicts: list[CocoDict] = []
    for ann in annotations:
        if ann.image_id not in sizes:
            raise DatasetError(f"{_where(ann)}: image id {ann.image_id} is not among the evaluated images")
        if not categories.has_id(ann.category_id):
            raise DatasetError(f"{_where(ann)}: category id {ann.category_id} not in {list(categories.ids)}")
        height, width = sizes[ann.image_id]
        entry: CocoDict = {
            "id": len(ann_dicts) + 1,
            "image_id": ann.image_id,
            "category_id": ann.category_id,
            "bbox": list(xyxy_to_xywh([float(v) for v in ann.bbox])),
            "iscrowd": int(ann.iscrowd),
        }
        segmentation = _segmentation(ann, height, width) if (iou_type == "segm" or ann.segmentation) else None
        if iou_type == "segm":
            if isinstance(segmentation, list) and not (width and height):
                raise DatasetError(f"{_where(ann)}: polygon mask on an image of unknown size; cannot evaluate masks")
            entry["segmentation"] = segmentation
        if ann.area is not None:
            entry["area"] = float(ann.area)
        elif ann.segmentation is not None and width and height:
            entry["area"] = _mask_area(segmentation, height, width)
        else:
            entry["area"] = ann.box_area
        ann_dicts.append(entry)
    return {"images": image_dicts, "annotations": ann_dicts, "categories": category_dicts}


@dataclass(frozen=True)
class DetectionArrays:
    """One image's detections, ready for COCO: category ids [N] int64, scores [N] float64, XYWH boxes
    [N, 4] float64 (for "bbox"), or mask RLEs with their areas and XYWH boxes (for "segm")."""

    image_id: int
    category_ids: np.ndarray
    scores: np.ndarray
    boxes_xywh: np.ndarray
    areas: np.ndarray
    rles: tuple[dict[str, Any], ...] | None = None

    def __len__(self) -> int:
        return int(self.scores.shape[0])


def detection_arrays(
    image_id: int, detections: Detections, categories: Categories, iou_type: IouType, image_size: tuple[int, int]
) -> DetectionArrays:
    """Convert one image's `Detections` (labels 0..K-1, XYXY boxes, optional masks) to `DetectionArrays`.

    `image_size` is the ground truth's (height, width), (0, 0) if unknown; masks must have that size.
    """
    det = detections.cpu()
    if image_size != (0, 0) and tuple(det.image_size) != image_size:
        raise ValueError(
            f"image {image_id}: detections are for a {tuple(det.image_size)} (height, width) image but the image is "
            f"{image_size}; boxes must be in the original image's frame"
        )
    labels = det.labels.numpy()
    if labels.size and (labels.min() < 0 or labels.max() >= len(categories)):
        bad = int(labels[(labels < 0) | (labels >= len(categories))][0])
        raise ValueError(f"image {image_id}: detection label {bad} is outside 0..{len(categories) - 1}")
    category_ids = np.asarray(categories.ids, dtype=np.int64)[labels]
    scores = det.scores.numpy().astype(np.float64)
    if iou_type == "bbox":
        xywh = xyxy_to_xywh_array(det.boxes.numpy().astype(np.float64))
        return DetectionArrays(image_id, category_ids, scores, xywh, xywh[:, 2] * xywh[:, 3])
    if det.masks is None:
        raise ValueError(f"image {image_id}: segm evaluation needs Detections.masks, got None")
    from faster_coco_eval.core import mask as mask_utils

    masks = det.masks.numpy().astype(np.uint8, copy=False)
    if tuple(masks.shape[1:]) != tuple(det.image_size):
        raise ValueError(
            f"image {image_id}: detection masks are {tuple(masks.shape[1:])} (height, width); "
            f"expected the image's {tuple(det.image_size)}"
        )
    rles: list[dict[str, Any]] = []
    if len(masks):
        rles = list(mask_utils.encode(np.asfortranarray(masks.transpose(1, 2, 0))))
    areas = np.asarray(mask_utils.area(rles), dtype=np.float64) if rles else np.zeros(0)
    boxes = np.asarray(mask_utils.toBbox(rles), dtype=np.float64).reshape(-1, 4) if rles else np.zeros((0, 4))
    return DetectionArrays(image_id, category_ids, scores, boxes, areas, tuple(rles))


def result_annotations(per_image: Sequence[DetectionArrays], iou_type: IouType) -> list[CocoDict]:
    """All detections as COCO result dicts, ids 1..N, as `COCO.loadRes` would make them (bbox results:
    area = box area; segm results: area and box from the mask)."""
    if not per_image or sum(len(d) for d in per_image) == 0:
        return []
    image_ids = np.concatenate([np.full(len(d), d.image_id, dtype=np.int64) for d in per_image]).tolist()
    category_ids = np.concatenate([d.category_ids for d in per_image]).tolist()
    scores = np.concatenate([d.scores for d in per_image]).tolist()
    boxes = np.concatenate([d.boxes_xywh for d in per_image]).tolist()
    areas = np.concatenate([d.areas for d in per_image]).tolist()
    results = [
        {"id": i, "image_id": im, "category_id": c, "score": s, "bbox": b, "area": a, "iscrowd": 0}
        for i, (im, c, s, b, a) in enumerate(zip(image_ids, category_ids, scores, boxes, areas, strict=True), start=1)
    ]
    if iou_type == "segm":
        rles = [rle for d in per_image for rle in (d.rles or ())]
        for entry, rle in zip(results, rles, strict=True):
            entry["segmentation"] = rle
    return results
