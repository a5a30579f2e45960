"""Greedy COCO-style matching of detections to ground truth, and COCO's 101-point interpolated AP.

The matching is the one pycocotools' `COCOeval.evaluateImg` performs for bbox evaluation over the
"all" area range, so the APs computed from it equal COCO's (see `class_ap`):

- per image and class, detections are taken in descending score order (stable: ties keep the input
  order), at most `max_dets` of them (COCO: 100);
- each detection takes the still-unmatched, non-crowd ground truth box of its class with the highest
  IoU >= threshold (the last one among exact IoU ties, like COCO); failing that, the crowd region with
  the highest intersection-over-detection-area >= threshold, which "matches without counting": the
  detection is neither a true nor a false positive and the crowd region stays available;
- non-crowd ground truth counts towards `num_gt`; crowd regions never do;
- an unmatched detection whose box area (x1 - x0) * (y1 - y0) is negative or above 1e10 is ignored
  (outside COCO's "all" area range); COCO also ignores such ground truth, which is counted here.

IoUs are computed in float64 from XYXY pixel boxes; pycocotools computes them from XYWH, so an IoU that
lies within ~1e-15 of a threshold may round differently (AP differences only in such exact ties).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from detforge.errors import DatasetError
from detforge.evaluation.coco_boxes import CocoBoxResult
from detforge.evaluation.detection_table import DetectionTable
from detforge.evaluation.match_groups import crowd_iou, match_to_ground_truth, pair_iou
from detforge.structures import Annotation, Categories, ImageRecord

if TYPE_CHECKING:
    from detforge.structures.detections import Detections

__all__ = [
    "COCO_IOU_THRESHOLDS",
    "RECALL_THRESHOLDS",
    "ClassMatches",
    "Matches",
    "class_ap",
    "greedy_match",
    "interpolated_precision",
    "iou_matrix",
    "match_detections",
    "matches_from_coco",
]

COCO_IOU_THRESHOLDS: tuple[float, ...] = tuple(float(v) for v in np.linspace(0.5, 0.95, 10))
"""COCO's IoU thresholds 0.50, 0.55, ..., 0.95 (exactly as pycocotools builds them)."""

RECALL_THRESHOLDS: tuple[float, ...] = tuple(float(v) for v in np.linspace(0.0, 1.0, 101))
"""COCO's 101 recall points 0.00, 0.01, ..., 1.00 at which precision is interpolated."""

_EPS = float(np.spacing(1))  # pycocotools adds this to precision's denominator
_MAX_AREA = 1e10  # upper end of COCO's "all" area range (1e5 ** 2)


def iou_matrix(det_boxes: np.ndarray, gt_boxes: np.ndarray, gt_crowd: np.ndarray | None = None) -> np.ndarray:
    """IoU [D, G] float64 between XYXY pixel boxes [D, 4] and [G, 4].

    For a crowd column (`gt_crowd[g]` True) the value is intersection / detection area, as COCO scores
    crowd regions. Degenerate boxes give 0 (never NaN).
    """
    d = np.asarray(det_boxes, dtype=np.float64).reshape(-1, 4)
    g = np.asarray(gt_boxes, dtype=np.float64).reshape(-1, 4)
    iou = pair_iou(d[:, None, :], g[None, :, :])
    if gt_crowd is not None and len(g) and np.any(gt_crowd):
        cols = np.flatnonzero(gt_crowd)
        iou[:, cols] = crowd_iou(d[:, None, :], g[None, cols, :])
    return iou


def greedy_match(iou: np.ndarray, crowd: np.ndarray, thresholds: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """COCO's greedy assignment of score-sorted detections (rows) to ground truth (columns), at each threshold.

    Returns (matched [T, D] int64 column or -1, on_crowd [T, D] bool: the match is a crowd region).
    """
    num_t, (num_d, num_g) = len(thresholds), iou.shape
    matched = np.full((num_t, num_d), -1, dtype=np.int64)
    on_crowd = np.zeros((num_t, num_d), dtype=bool)
    if num_g == 0 or num_d == 0:
        return matched, on_crowd
    thr = np.minimum(thresholds, 1 - 1e-10)[:, None]
    used = np.zeros((num_t, num_g), dtype=bool)
    rows = np.arange(num_t)
    lowest = float(thr.min())
    for d in range(num_d):
        row = iou[d]
        if row.max() < lowest:
            continue
        reach = row[None, :] >= thr  # [T, G]
        for want_crowd in (False, True):
            ok = reach & ~used & (crowd if want_crowd else ~crowd)[None, :]
            ok &= (matched[:, d] < 0)[:, None]
            has = ok.any(axis=1)
            if not has.any():
                continue
            cand = np.where(ok, row[None, :], -1.0)[:, ::-1]
            best = num_g - 1 - cand.argmax(axis=1)  # last column among equal maxima, as COCO
            matched[has, d] = best[has]
            on_crowd[has, d] = want_crowd
            if not want_crowd:
                used[rows[has], best[has]] = True
    return matched, on_crowd


@dataclass(frozen=True, eq=False)  # holds arrays: compared by identity
class ClassMatches:
    """One class's detections at one IoU threshold, in descending score order (ignored ones left out).

    scores: [N] float64; tp: [N] bool (True positive); num_gt: non-crowd ground truth boxes of the class.
    """

    name: str
    scores: np.ndarray
    tp: np.ndarray
    num_gt: int

    def ap(self) -> float:
        """COCO's 101-point interpolated AP; -1 when the class has no ground truth."""
        return class_ap(self.tp, self.num_gt)

    def to_dict(self) -> dict[str, object]:
        return {"name": self.name, "num_gt": self.num_gt, "scores": self.scores.tolist(), "tp": self.tp.tolist()}


def interpolated_precision(tp: np.ndarray, num_gt: float) -> np.ndarray:
    """COCO's interpolated precision [101] at `RECALL_THRESHOLDS` of detections [N] (True = true positive)
    in descending score order: the best precision at any recall >= each threshold, 0 where never reached.

    All -1 when `num_gt` is 0 (undefined, as COCO marks it).
    """
    if num_gt <= 0:
        return np.full(len(RECALL_THRESHOLDS), -1.0)
    tp = np.asarray(tp, dtype=bool)
    if tp.size == 0:
        return np.zeros(len(RECALL_THRESHOLDS))
    tps = np.cumsum(tp, dtype=np.int32).astype(np.float64)  # counting in int32 is several times faster
    fps = np.cumsum(~tp, dtype=np.int32).astype(np.float64)
    precision = np.maximum.accumulate((tps / (tps + fps + _EPS))[::-1])[::-1]
    idx = np.searchsorted(tps / num_gt, np.asarray(RECALL_THRESHOLDS), side="left")
    return np.where(idx < len(precision), precision[np.minimum(idx, len(precision) - 1)], 0.0)


def class_ap(tp: np.ndarray, num_gt: float) -> float:
    """COCO's 101-point interpolated AP of detections [N] (True = true positive) in descending score order.

    -1 when `num_gt` is 0 (COCO leaves such classes out of the mean); 0 without detections.
    """
    if num_gt <= 0:
        return -1.0
    return float(interpolated_precision(tp, num_gt).mean())


@dataclass(frozen=True, eq=False)  # holds arrays: compared by identity
class Matches:
    """Every detection of an evaluation matched to ground truth at one or more IoU thresholds.

    Detections (M, kept at most `max_dets` per image and class) are ordered by image (ascending id),
    class, then descending score. Arrays: det_image [M] int64 (index into `image_ids`), det_labels [M]
    int64 (0..K-1), det_scores [M] float64, det_boxes [M, 4] float64 XYXY pixels, det_gt [T, M] int64
    (index of the matched ground truth in gt_*, -1 if none), det_ignored [T, M] bool (neither a true
    nor a false positive: matched a crowd region, or unmatched with an area outside COCO's range).
    Ground truth (G, by image, then annotation order): gt_image [G], gt_labels [G], gt_boxes [G, 4],
    gt_crowd [G] bool, gt_ids [G] (annotation ids).
    """

    categories: Categories
    image_ids: tuple[int, ...]
    iou_thresholds: tuple[float, ...]
    det_image: np.ndarray
    det_labels: np.ndarray
    det_scores: np.ndarray
    det_boxes: np.ndarray
    det_gt: np.ndarray
    det_ignored: np.ndarray
    gt_image: np.ndarray
    gt_labels: np.ndarray
    gt_boxes: np.ndarray
    gt_crowd: np.ndarray
    gt_ids: np.ndarray

    @property
    def num_classes(self) -> int:
        return len(self.categories)

    def threshold_index(self, iou: float) -> int:
        """Index of `iou` in `iou_thresholds`; ValueError naming the available thresholds if absent."""
        for i, t in enumerate(self.iou_thresholds):
            if abs(t - iou) < 1e-9:
                return i
        raise ValueError(
            f"IoU threshold {iou} was not matched; available: {[round(t, 2) for t in self.iou_thresholds]}"
        )

    def true_positives(self, iou: float = 0.5) -> np.ndarray:
        """[M] bool: detection matched a non-crowd ground truth box at `iou`."""
        t = self.threshold_index(iou)
        return (self.det_gt[t] >= 0) & ~self.det_ignored[t]

    def false_positives(self, iou: float = 0.5) -> np.ndarray:
        """[M] bool: detection matched nothing at `iou` (and is not ignored)."""
        t = self.threshold_index(iou)
        return (self.det_gt[t] < 0) & ~self.det_ignored[t]

    def num_gt(self) -> np.ndarray:
        """[K] int64 non-crowd ground truth boxes per class."""
        return np.bincount(self.gt_labels[~self.gt_crowd], minlength=self.num_classes).astype(np.int64)

    def num_pred(self) -> np.ndarray:
        """[K] int64 detections per class (after the per-image `max_dets` cut)."""
        return np.bincount(self.det_labels, minlength=self.num_classes).astype(np.int64)

    def per_class(self, iou: float = 0.5) -> tuple[ClassMatches, ...]:
        """One `ClassMatches` per class (categories order) at `iou`."""
        t = self.threshold_index(iou)
        tp_all = (self.det_gt[t] >= 0) & ~self.det_ignored[t]
        num_gt = self.num_gt()
        out = []
        for k, name in enumerate(self.categories.names):
            sel = np.flatnonzero((self.det_labels == k) & ~self.det_ignored[t])
            sel = sel[np.argsort(-self.det_scores[sel], kind="stable")]
            out.append(ClassMatches(name, self.det_scores[sel], tp_all[sel], int(num_gt[k])))
        return tuple(out)

    def to_dict(self) -> dict[str, object]:
        """A summary: thresholds, and per class the GT count, detection count and true positives per threshold."""
        num_gt, num_pred = self.num_gt(), self.num_pred()
        tps = [(self.det_gt[t] >= 0) & ~self.det_ignored[t] for t in range(len(self.iou_thresholds))]
        return {
            "iou_thresholds": list(self.iou_thresholds),
            "num_images": len(self.image_ids),
            "classes": [
                {
                    "name": name,
                    "num_gt": int(num_gt[k]),
                    "num_pred": int(num_pred[k]),
                    "true_positives": [int(tp[self.det_labels == k].sum()) for tp in tps],
                }
                for k, name in enumerate(self.categories.names)
            ],
        }


def _ground_truth(
    images: Sequence[ImageRecord], annotations: Sequence[Annotation], categories: Categories
) -> tuple[tuple[int, ...], dict[int, list[Annotation]], dict[int, int]]:
    image_ids = tuple(sorted(im.id for im in images))
    if len(set(image_ids)) != len(image_ids):
        dup = sorted({i for i in image_ids if image_ids.count(i) > 1})
        raise DatasetError(f"images: duplicate image ids {dup[:10]}; each evaluated image must have a unique id")
    per_image: dict[int, list[Annotation]] = {i: [] for i in image_ids}
    index = {c.id: k for k, c in enumerate(categories)}
    for ann in annotations:
        if ann.image_id not in per_image:
            raise DatasetError(f"annotation {ann.id}: image id {ann.image_id} is not among the evaluated images")
        if ann.category_id not in index:
            raise DatasetError(
                f"annotation {ann.id} of image {ann.image_id}: category id {ann.category_id} "
                f"not in {list(categories.ids)}"
            )
        per_image[ann.image_id].append(ann)
    return image_ids, per_image, index


def _ground_truth_arrays(
    image_ids: tuple[int, ...], per_image: dict[int, list[Annotation]], cat_index: dict[int, int]
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(image index, class, XYXY box, crowd, annotation id) of every annotation, by image then annotation order."""
    anns = [a for image_id in image_ids for a in per_image[image_id]]
    counts = [len(per_image[image_id]) for image_id in image_ids]
    return (
        np.repeat(np.arange(len(image_ids), dtype=np.int64), counts),
        np.asarray([cat_index[a.category_id] for a in anns], dtype=np.int64),
        np.asarray([a.bbox for a in anns], dtype=np.float64).reshape(-1, 4),
        np.asarray([a.iscrowd for a in anns], dtype=bool),
        np.asarray([a.id for a in anns], dtype=np.int64),
    )


def _all_detections(
    image_ids: tuple[int, ...], table: DetectionTable, k: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(image index, label, score float64, XYXY box float64) of every detection, by image then detection order.

    DatasetError naming the image for a label outside 0..k-1."""
    order = np.argsort(table.image_ids, kind="stable")
    img = np.searchsorted(np.asarray(image_ids, dtype=np.int64), table.image_ids[order])
    labels = table.labels[order]
    bad = np.flatnonzero((labels < 0) | (labels >= k))
    if bad.size:
        raise DatasetError(
            f"predictions for image {image_ids[img[bad[0]]]}: label {int(labels[bad[0]])} is outside 0..{k - 1}"
        )
    return img.astype(np.int64), labels, table.scores[order], table.xyxy[order]


def match_detections(
    images: Sequence[ImageRecord],
    annotations: Sequence[Annotation],
    categories: Categories,
    predictions: Mapping[int, Detections] | DetectionTable,
    *,
    iou_thresholds: Sequence[float] = (0.5,),
    max_dets: int = 100,
) -> Matches:
    """Match `predictions` (image id -> Detections, labels 0..K-1; or a `DetectionTable`) to the ground
    truth at each IoU threshold.

    Images without an entry in `predictions` have no detections. DatasetError for a prediction or
    annotation on an image id not in `images`, an unknown category id or an out-of-range label.
    """
    image_ids, per_image, cat_index = _ground_truth(images, annotations, categories)
    given = set(predictions.image_ids.tolist()) if isinstance(predictions, DetectionTable) else set(predictions)
    unknown = sorted(given - set(per_image))
    if unknown:
        raise DatasetError(f"predictions for image ids {unknown[:10]} that are not among the evaluated images")
    thresholds = np.asarray(iou_thresholds, dtype=np.float64)
    gt = _ground_truth_arrays(image_ids, per_image, cat_index)
    table = predictions if isinstance(predictions, DetectionTable) else DetectionTable.from_detections(predictions)
    img, labels, scores, boxes = _all_detections(image_ids, table, len(categories))
    # By image, class, descending score (stable: ties keep the detections' order), at most max_dets per group.
    order = np.lexsort((-scores, labels, img))
    img, labels, scores, boxes = img[order], labels[order], scores[order], boxes[order]
    key = img * len(categories) + labels
    first = np.flatnonzero(np.concatenate(([True], key[1:] != key[:-1]))) if len(key) else np.zeros(0, np.int64)
    group = (
        np.cumsum(np.concatenate(([False], key[1:] != key[:-1])), dtype=np.int32).astype(np.int64)
        if len(key)
        else np.zeros(0, np.int64)
    )
    rank = np.arange(len(key)) - first[group]
    keep = rank < max_dets
    img, labels, scores, boxes, group, rank = (a[keep] for a in (img, labels, scores, boxes, group, rank))
    k = len(categories)
    det_gt, ignored = match_to_ground_truth(
        boxes, img * k + labels, group, rank, gt[0] * k + gt[1], gt[2], gt[3], thresholds
    )
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    ignored |= (det_gt < 0) & ((area < 0) | (area > _MAX_AREA))[None, :]  # outside COCO's "all" area range
    return Matches(
        categories=categories,
        image_ids=image_ids,
        iou_thresholds=tuple(float(t) for t in thresholds),
        det_image=img,
        det_labels=labels,
        det_scores=scores,
        det_boxes=boxes,
        det_gt=det_gt,
        det_ignored=ignored,
        gt_image=gt[0],
        gt_labels=gt[1],
        gt_boxes=gt[2],
        gt_crowd=gt[3],
        gt_ids=gt[4],
    )


def matches_from_coco(
    images: Sequence[ImageRecord],
    annotations: Sequence[Annotation],
    categories: Categories,
    table: DetectionTable,
    coco: CocoBoxResult,
) -> Matches:
    """The `Matches` at COCO's ten IoU thresholds that `coco` (the `coco_box_evaluation` of `table` against
    these annotations, `detection_columns` / `ground_truth_columns`) already made: no second matching.

    The same detections in the same order as `match_detections` gives, matched by pycocotools' rules over
    the "all" area range (IoUs from XYWH boxes as pycocotools computes them; a detection on a box whose
    annotated area lies outside that range is ignored, as COCO ignores it).
    """
    ids = np.asarray(sorted(im.id for im in images), dtype=np.int64)
    index = {c.id: k for k, c in enumerate(categories)}
    gt_image = np.searchsorted(ids, np.asarray([a.image_id for a in annotations], dtype=np.int64).reshape(-1))
    perm = np.argsort(gt_image, kind="stable")  # the ground truth of Matches: by image, then annotation order
    position = np.zeros(max(1, len(perm)), dtype=np.int64)
    position[perm] = np.arange(len(perm))
    det_gt = np.where(coco.matched >= 0, position[np.maximum(coco.matched, 0)], -1)
    kept = coco.kept
    return Matches(
        categories=categories,
        image_ids=tuple(ids.tolist()),
        iou_thresholds=COCO_IOU_THRESHOLDS,
        det_image=np.searchsorted(ids, table.image_ids[kept]).astype(np.int64),
        det_labels=table.labels[kept],
        det_scores=table.scores[kept],
        det_boxes=table.xyxy[kept],
        det_gt=det_gt,
        det_ignored=coco.ignored,
        gt_image=gt_image[perm].astype(np.int64),
        gt_labels=np.asarray([index[a.category_id] for a in annotations], dtype=np.int64).reshape(-1)[perm],
        gt_boxes=np.asarray([a.bbox for a in annotations], dtype=np.float64).reshape(-1, 4)[perm],
        gt_crowd=np.asarray([a.iscrowd for a in annotations], dtype=bool).reshape(-1)[perm],
        gt_ids=np.asarray([a.id for a in annotations], dtype=np.int64).reshape(-1)[perm],
    )
