"""COCO evaluation (bbox or segm) with pycocotools' exact numbers.

Boxes are evaluated in numpy over all detections at once (`coco_boxes`). Masks go through
faster-coco-eval: ground truth as an in-memory dict (no temporary files), detections as arrays per image
turned into result dicts in one pass (skipping `COCO.loadRes`), with the garbage collector paused.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from detforge.evaluation.coco_boxes import BoxColumns, coco_box_evaluation
from detforge.evaluation.coco_format import (
    DetectionArrays,
    IouType,
    detection_arrays,
    ground_truth_dict,
    result_annotations,
)
from detforge.evaluation.detection_table import ground_truth_columns, sorted_image_index
from detforge.evaluation.gc_pause import gc_paused
from detforge.evaluation.metrics import CocoMetrics
from detforge.structures import Annotation, Categories, ImageRecord

if TYPE_CHECKING:
    from detforge.structures.detections import Detections

__all__ = ["CocoEvaluator"]

logger = logging.getLogger(__name__)


def _quiet(*args: object, **kwargs: object) -> None:
    logger.debug(" ".join(str(a) for a in args))


class CocoEvaluator:
    """Evaluator protocol ``reset / process / evaluate`` for COCO metrics.

    Ground truth: `images` (the evaluation set), their `annotations` (boxes XYXY pixels; crowd ones are
    COCO "iscrowd" regions: matching one is neither a hit nor a miss) and `categories`.
    `process(image_ids, detections)` takes the model's `Detections` (labels 0..K-1, XYXY boxes in the
    image's frame; masks [N, H, W] for "segm") and maps labels to category ids and boxes to XYWH.
    `evaluate()` scores every image of `images`, as COCO does: an image that was never processed counts
    as an image with no detections (a warning says how many there were). No detections at all gives
    zeros (or -1 where COCO has no ground truth to average over), not an error.
    """

    def __init__(
        self,
        images: Sequence[ImageRecord],
        annotations: Sequence[Annotation],
        categories: Categories,
        *,
        iou_type: IouType = "bbox",
    ) -> None:
        if iou_type not in ("bbox", "segm"):
            raise ValueError(f"CocoEvaluator: iou_type must be 'bbox' or 'segm', got {iou_type!r}")
        ids = [im.id for im in images]
        if len(set(ids)) != len(ids):
            dup = sorted({i for i in ids if ids.count(i) > 1})
            raise ValueError(f"CocoEvaluator: duplicate image ids {dup[:10]}; each image must appear once")
        self.iou_type: IouType = iou_type
        self.categories = categories
        self._sizes = {im.id: (im.height, im.width) for im in images}
        self._image_ids, _ = sorted_image_index(images)
        self._ground_truth: Any = None
        self._gt_columns: BoxColumns | None = None
        if iou_type == "bbox":
            self._gt_columns = ground_truth_columns(images, annotations, categories)
        else:
            from faster_coco_eval.core.coco import COCO

            gt = ground_truth_dict(images, annotations, categories, iou_type)
            self._ground_truth = COCO(gt, print_function=_quiet)
        self._results: dict[int, DetectionArrays] = {}

    def reset(self) -> None:
        """Forget every processed detection (the ground truth stays)."""
        self._results = {}

    def process(self, image_ids: Sequence[int], detections: Sequence[Detections]) -> None:
        """Record the detections of some images; each image may be processed once between resets."""
        if len(image_ids) != len(detections):
            raise ValueError(f"CocoEvaluator.process: {len(image_ids)} image ids but {len(detections)} detections")
        for image_id, det in zip(image_ids, detections, strict=True):
            image_id = int(image_id)
            if image_id not in self._sizes:
                raise ValueError(f"CocoEvaluator.process: image id {image_id} is not in the evaluation set")
            if image_id in self._results:
                raise ValueError(f"CocoEvaluator.process: image id {image_id} was already processed since reset()")
            self._results[image_id] = detection_arrays(
                image_id, det, self.categories, self.iou_type, self._sizes[image_id]
            )

    def evaluate(self) -> CocoMetrics:
        """The COCO metrics of everything processed since the last reset (see the class docstring)."""
        unprocessed = len(self._sizes) - len(self._results)
        if unprocessed:
            logger.warning(
                "COCO evaluation: %d of %d images were never processed; they count as images without detections",
                unprocessed,
                len(self._sizes),
            )
        per_image = list(self._results.values())
        if self._gt_columns is not None:
            stats, per_class = self._evaluate_boxes(self._gt_columns, per_image)
            return CocoMetrics.from_stats(
                stats, per_class, num_images=len(self._sizes), num_detections=sum(len(d) for d in per_image)
            )
        from faster_coco_eval.core.coco import COCO
        from faster_coco_eval.core.faster_eval_api import COCOeval_faster

        with gc_paused():
            results = result_annotations(per_image, self.iou_type)
            detections = COCO(print_function=_quiet)
            detections.dataset = {
                "images": self._ground_truth.dataset["images"],
                "categories": self._ground_truth.dataset["categories"],
                "annotations": results,
            }
            detections.createIndex()
            coco_eval = COCOeval_faster(self._ground_truth, detections, self.iou_type, print_function=_quiet)
            coco_eval.evaluate()
            coco_eval.accumulate()
            coco_eval.summarize()
        return CocoMetrics.from_stats(
            [float(v) for v in coco_eval.stats[:12]],
            self._per_class_ap(coco_eval),
            num_images=len(self._sizes),
            num_detections=len(results),
        )

    def _evaluate_boxes(
        self, gts: BoxColumns, per_image: list[DetectionArrays]
    ) -> tuple[tuple[float, ...], dict[str, float]]:
        ids = np.asarray(self.categories.ids, dtype=np.int64)
        if per_image:
            image_ids = np.concatenate([np.full(len(d), d.image_id, dtype=np.int64) for d in per_image])
            category_ids = np.concatenate([d.category_ids for d in per_image])
            id_order = np.argsort(ids, kind="stable")
            labels = id_order[np.searchsorted(ids[id_order], category_ids)]
            xywh = np.concatenate([d.boxes_xywh for d in per_image]).reshape(-1, 4)
            dets = BoxColumns(
                np.searchsorted(self._image_ids, image_ids),
                labels.astype(np.int64),
                xywh,
                np.concatenate([d.areas for d in per_image]),
                np.zeros(len(image_ids), dtype=bool),
                np.concatenate([d.scores for d in per_image]),
            )
        else:
            none = np.zeros(0, dtype=np.int64)
            dets = BoxColumns(none, none, np.zeros((0, 4)), np.zeros(0), np.zeros(0, dtype=bool), np.zeros(0))
        result = coco_box_evaluation(gts, dets, self.categories.ids)
        return result.stats, {c.name: ap for c, ap in zip(self.categories, result.per_class_ap, strict=True)}

    def _per_class_ap(self, coco_eval: Any) -> dict[str, float]:
        # precision: [T iou thresholds, R recall thresholds, K categories, A area ranges, M max dets]
        precision = np.asarray(coco_eval.eval["precision"])
        column = {int(category_id): k for k, category_id in enumerate(coco_eval.params.catIds)}
        out: dict[str, float] = {}
        for category in self.categories:
            values = precision[:, :, column[category.id], 0, -1] if category.id in column else np.zeros(0)
            values = values[values > -1]
            out[category.name] = float(values.mean()) if values.size else -1.0
        return out
