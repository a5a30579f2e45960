"""The evaluation's first, one-image-at-a-time implementations, kept as references that the vectorised
ones must equal exactly: the bootstrap's weighted AP (one weighting at a time, every detection looked at),
the matching (a Python loop over images and classes) and the confusion matrix (a loop over images)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import torch

from detforge.evaluation.error_analysis import _BKG, _BOTH, _CLS, _DUP, _LOC
from detforge.evaluation.matching import RECALL_THRESHOLDS, Matches, greedy_match, iou_matrix
from detforge.structures import Annotation, Categories, ImageRecord
from detforge.structures.detections import Detections

_EPS = float(np.spacing(1))
_NUM_REC = len(RECALL_THRESHOLDS)


class ReferenceWeightedAP:
    """COCO AP (per class, per IoU threshold) of a fixed set of matches under per-image weights.

    Built once from `Matches` (which must hold COCO's ten IoU thresholds for `ap`; `ap50` needs 0.5);
    `__call__(weights)` with weights [I] (copies of each image, in `matches.image_ids` order) returns
    (ap, ap50): means over classes whose weighted ground truth count is > 0, -1 if there is none.
    """

    def __init__(self, matches: Matches) -> None:
        self._t50 = matches.threshold_index(0.5)
        k = matches.num_classes
        self._k = k
        # Sort detections by class, then descending score (stable: image order, then within-image order).
        order = np.lexsort((-matches.det_scores, matches.det_labels))
        labels, ignored = matches.det_labels[order], matches.det_ignored[:, order]
        tp = (matches.det_gt[:, order] >= 0) & ~ignored
        # A class's detections after its last true positive (at any threshold) only add points of lower
        # precision at the final recall, which never set an interpolated precision: leave them out.
        last = np.full(k, -1, dtype=np.int64)
        hits = np.flatnonzero(tp.any(axis=0))
        np.maximum.at(last, labels[hits], hits)
        keep = np.arange(len(labels)) <= last[labels]
        self._cls, self._img = labels[keep], matches.det_image[order][keep]
        self._tp = tp[:, keep].astype(np.float64)
        # Detections counted as true or false positives; None: all of them (no crowd region or odd box).
        self._counted = (~ignored[:, keep]).astype(np.float64) if ignored[:, keep].any() else None
        bounds = np.searchsorted(self._cls, np.arange(k + 1), side="left")
        self._starts, self._ends = bounds[:-1], bounds[1:]
        num_images = len(matches.image_ids)
        keep = ~matches.gt_crowd
        self._gt_counts = np.zeros((num_images, k), dtype=np.float64)
        np.add.at(self._gt_counts, (matches.gt_image[keep], matches.gt_labels[keep]), 1.0)
        self._offset = 2.0 * (k - self._cls)  # keeps running maxima inside each class segment
        num_t = tp.shape[0]
        # Query j of class c at threshold t asks for the first detection whose recall reaches RECALL_THRESHOLDS[j].
        self._row_key = (np.arange(num_t) * (k * (_NUM_REC + 1)))[:, None]
        queries = (np.arange(k)[:, None] * (_NUM_REC + 1) + np.arange(1, _NUM_REC + 1)[None, :]).ravel()
        self._queries = (self._row_key + queries[None, :]).ravel()
        self._query_end = np.tile(np.repeat(self._ends, _NUM_REC), num_t) + np.repeat(
            np.arange(num_t), k * _NUM_REC
        ) * len(self._cls)
        self._num_t = num_t

    def per_class(self, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(AP [T, K] with -1 for classes without weighted ground truth, weighted num_gt [K])."""
        num_t, k, m = self._num_t, self._k, len(self._cls)
        num_gt = np.asarray(weights, dtype=np.float64) @ self._gt_counts
        if m == 0:
            ap = np.where(num_gt > 0, 0.0, -1.0)
            return np.broadcast_to(ap, (num_t, k)).copy(), num_gt
        w = np.asarray(weights, dtype=np.float64)[self._img]
        tps = np.cumsum(self._tp * w, axis=1)  # [T, M]
        counted = np.cumsum(w)[None, :] if self._counted is None else np.cumsum(self._counted * w, axis=1)
        # Make the running sums start again at each class: subtract the sum before the class's first detection.
        first = self._starts > 0
        before = np.maximum(self._starts - 1, 0)
        tps -= np.where(first, tps[:, before], 0.0)[:, self._cls]
        counted = counted - np.where(first, counted[:, before], 0.0)[:, self._cls]
        gt_of_det = num_gt[self._cls]
        recall = np.divide(tps, gt_of_det, out=np.zeros_like(tps), where=gt_of_det > 0)
        precision = tps / (counted + _EPS)  # tps + fps, exactly: both are sums of integers
        interp = np.maximum.accumulate((precision + self._offset)[:, ::-1], axis=1)[:, ::-1] - self._offset
        # Number of recall thresholds <= recall: exact integer keys, increasing inside each class segment.
        reached = np.searchsorted(np.asarray(RECALL_THRESHOLDS), recall, side="right")
        keys = (reached + self._cls * (_NUM_REC + 1) + self._row_key).ravel()
        pos = np.searchsorted(keys, self._queries, side="left")
        valid = pos < self._query_end
        q = np.where(valid, interp.ravel()[np.minimum(pos, keys.size - 1)], 0.0)
        ap = q.reshape(num_t, k, _NUM_REC).mean(axis=2)
        return np.where(num_gt[None, :] > 0, ap, -1.0), num_gt

    def __call__(self, weights: np.ndarray) -> tuple[float, float]:
        ap, num_gt = self.per_class(weights)
        has = num_gt > 0
        if not has.any():
            return -1.0, -1.0
        return float(ap[:, has].mean()), float(ap[self._t50, has].mean())


def reference_match(
    images: Sequence[ImageRecord],
    annotations: Sequence[Annotation],
    categories: Categories,
    predictions: Mapping[int, Detections],
    *,
    iou_thresholds: Sequence[float] = (0.5,),
    max_dets: int = 100,
) -> Matches:
    """`match_detections` image by image and class by class with `greedy_match` (no input checks)."""
    image_ids = tuple(sorted(im.id for im in images))
    per_image: dict[int, list[Annotation]] = {i: [] for i in image_ids}
    cat_index = {c.id: k for k, c in enumerate(categories)}
    for ann in annotations:
        per_image[ann.image_id].append(ann)
    _max_area = 1e10
    thresholds = np.asarray(iou_thresholds, dtype=np.float64)
    num_t = len(thresholds)
    det_parts: list[tuple[np.ndarray, ...]] = []
    gt_parts: list[tuple[np.ndarray, ...]] = []
    gt_offset = 0
    for i, image_id in enumerate(image_ids):
        anns = per_image[image_id]
        g_boxes = np.asarray([a.bbox for a in anns], dtype=np.float64).reshape(-1, 4)
        g_labels = np.asarray([cat_index[a.category_id] for a in anns], dtype=np.int64)
        g_crowd = np.asarray([a.iscrowd for a in anns], dtype=bool)
        gt_parts.append((np.full(len(anns), i), g_labels, g_boxes, g_crowd, np.asarray([a.id for a in anns])))
        det = predictions.get(image_id)
        if det is not None and len(det):
            det = det.cpu()
            labels = det.labels.numpy().astype(np.int64)
            scores, boxes = det.scores.numpy().astype(np.float64), det.boxes.numpy().astype(np.float64)
            iou_all = iou_matrix(boxes, g_boxes, g_crowd)  # [D, G] once per image
            area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
            odd_area = (area < 0) | (area > _max_area)  # outside COCO's "all" area range
            for k in np.unique(labels):
                sel = np.flatnonzero(labels == k)
                sel = sel[np.argsort(-scores[sel], kind="stable")][:max_dets]
                gsel = np.flatnonzero(g_labels == k)
                gsel = gsel[np.argsort(g_crowd[gsel], kind="stable")]  # non-crowd first, as COCO
                matched, ignored = greedy_match(iou_all[np.ix_(sel, gsel)], g_crowd[gsel], thresholds)
                ignored |= (matched < 0) & odd_area[sel][None, :]
                det_gt = np.where(matched >= 0, gt_offset + gsel[np.maximum(matched, 0)], -1) if len(gsel) else matched
                det_parts.append((np.full(len(sel), i), np.full(len(sel), k), scores[sel], boxes[sel], det_gt, ignored))
        gt_offset += len(anns)

    def cat(parts: list[tuple[np.ndarray, ...]], j: int, empty: np.ndarray, axis: int = 0) -> np.ndarray:
        return np.concatenate([p[j] for p in parts], axis=axis) if parts else empty

    return Matches(
        categories=categories,
        image_ids=image_ids,
        iou_thresholds=tuple(float(t) for t in thresholds),
        det_image=cat(det_parts, 0, np.zeros(0)).astype(np.int64),
        det_labels=cat(det_parts, 1, np.zeros(0)).astype(np.int64),
        det_scores=cat(det_parts, 2, np.zeros(0)).astype(np.float64),
        det_boxes=cat(det_parts, 3, np.zeros((0, 4))).astype(np.float64),
        det_gt=cat(det_parts, 4, np.zeros((num_t, 0)), axis=1).astype(np.int64),
        det_ignored=cat(det_parts, 5, np.zeros((num_t, 0)), axis=1).astype(bool),
        gt_image=cat(gt_parts, 0, np.zeros(0)).astype(np.int64),
        gt_labels=cat(gt_parts, 1, np.zeros(0)).astype(np.int64),
        gt_boxes=cat(gt_parts, 2, np.zeros((0, 4))).astype(np.float64),
        gt_crowd=cat(gt_parts, 3, np.zeros(0)).astype(bool),
        gt_ids=cat(gt_parts, 4, np.zeros(0)).astype(np.int64),
    )


def _confusion_image(matches: Matches, dets: np.ndarray, gts: np.ndarray, iou: float, out: np.ndarray) -> None:
    """Add one image's pairs to `out`: same-class COCO matches first, then the rest by IoU, one to one."""
    k = matches.num_classes
    d_labels, g_labels = matches.det_labels[dets], matches.gt_labels[gts]
    g_crowd = matches.gt_crowd[gts]
    det_free = np.ones(len(dets), dtype=bool)
    gt_free = ~g_crowd
    for c in np.unique(d_labels):
        ds = np.flatnonzero(d_labels == c)
        ds = ds[np.argsort(-matches.det_scores[dets[ds]], kind="stable")]
        gs = np.flatnonzero(g_labels == c)
        gs = gs[np.argsort(g_crowd[gs], kind="stable")]
        if len(gs) == 0:
            continue
        m, on_crowd = greedy_match(
            iou_matrix(matches.det_boxes[dets[ds]], matches.gt_boxes[gts[gs]], g_crowd[gs]),
            g_crowd[gs],
            np.array([iou]),
        )
        hit = m[0] >= 0
        det_free[ds[hit]] = False
        real = hit & ~on_crowd[0]
        gt_free[gs[m[0][real]]] = False
        out[c, c] += int(real.sum())
    di, gi = np.flatnonzero(det_free), np.flatnonzero(gt_free)
    if len(di) and len(gi):
        ious = iou_matrix(matches.det_boxes[dets[di]], matches.gt_boxes[gts[gi]])
        pairs = np.argwhere(ious >= iou)
        pairs = pairs[np.argsort(-ious[pairs[:, 0], pairs[:, 1]], kind="stable")]
        for a, b in pairs:
            if det_free[di[a]] and gt_free[gi[b]]:
                det_free[di[a]], gt_free[gi[b]] = False, False
                out[g_labels[gi[b]], d_labels[di[a]]] += 1
    np.add.at(out, (k, d_labels[det_free]), 1)
    np.add.at(out, (g_labels[gt_free], k), 1)


def reference_confusion(matches: Matches, *, iou: float = 0.5, score_threshold: float = 0.5) -> np.ndarray:
    """Confusion matrix of the detections with score >= `score_threshold` (see `confusion_matrix`)."""
    k = matches.num_classes
    out = np.zeros((k + 1, k + 1), dtype=np.int64)
    kept = matches.det_scores >= score_threshold
    images = np.arange(len(matches.image_ids) + 1)
    det_bounds = np.searchsorted(matches.det_image, images)  # both arrays are sorted by image
    gt_bounds = np.searchsorted(matches.gt_image, images)
    for i in range(len(matches.image_ids)):
        d0, d1 = det_bounds[i], det_bounds[i + 1]
        dets = d0 + np.flatnonzero(kept[d0:d1])
        gts = np.arange(gt_bounds[i], gt_bounds[i + 1])
        if len(dets) or len(gts):
            _confusion_image(matches, dets, gts, iou, out)
    return out


def random_case(seed: int) -> tuple[list[ImageRecord], list[Annotation], Categories, dict[int, Detections]]:
    """Crowded random images: 0-40 boxes of 3 classes (some crowd regions, some degenerate), detections
    jittered from them or random, rounded scores (ties) and a few empty or negative-size boxes."""
    rng = np.random.default_rng(seed)
    cats = Categories.from_names(["a", "b", "c"], first_id=5)
    images: list[ImageRecord] = []
    anns: list[Annotation] = []
    preds: dict[int, Detections] = {}
    for image_id in range(3, 43):
        images.append(ImageRecord(image_id, f"{image_id}.jpg", Path(f"{image_id}.jpg"), 200, 150))
        n_gt = int(rng.choice([0, 1, 3, 9, 40]))
        xy = rng.uniform(0, 150, (n_gt, 2))
        gt = np.round(np.concatenate([xy, xy + rng.uniform(0, 50, (n_gt, 2))], 1), 0)
        for g in range(n_gt):
            anns.append(Annotation(len(anns) + 1, image_id, 5 + int(rng.integers(0, 3)), tuple(gt[g].tolist()),
                                   iscrowd=bool(rng.random() < 0.1)))  # fmt: skip
        n_det = int(rng.integers(0, 60))
        src = gt[rng.integers(0, n_gt, n_det)] if n_gt else rng.uniform(0, 150, (n_det, 4))
        boxes = src + np.round(rng.normal(0, 4, (n_det, 4)), 0)
        boxes[rng.random(n_det) < 0.05] = [10.0, 10.0, 10.0, 30.0]  # empty
        preds[image_id] = Detections(
            torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4),
            torch.tensor(rng.integers(0, 3, n_det), dtype=torch.int64),
            torch.tensor(np.round(rng.uniform(0, 1, n_det), 1), dtype=torch.float32),
            (150, 200),
        )
    return images, anns, cats, preds


def _classify_image(
    matches: Matches, fp_idx: np.ndarray, gt_idx: np.ndarray, t_f: float, t_b: float
) -> tuple[np.ndarray, np.ndarray]:
    """(types [F], target ground truth index or -1 [F]) of one image's false positives."""
    types = np.full(len(fp_idx), _BKG, dtype=np.int8)
    target = np.full(len(fp_idx), -1, dtype=np.int64)
    if len(gt_idx) == 0:
        return types, target
    iou = iou_matrix(matches.det_boxes[fp_idx], matches.gt_boxes[gt_idx])
    same = matches.gt_labels[gt_idx][None, :] == matches.det_labels[fp_idx][:, None]
    iou_same, iou_other = np.where(same, iou, -1.0), np.where(same, -1.0, iou)
    best_same, best_other = iou_same.max(axis=1), iou_other.max(axis=1)
    arg_same, arg_other = gt_idx[iou_same.argmax(axis=1)], gt_idx[iou_other.argmax(axis=1)]
    for code, cond, tgt in (
        (_BOTH, best_other >= t_b, arg_other),
        (_LOC, best_same >= t_b, arg_same),
        (_CLS, best_other >= t_f, arg_other),
        (_DUP, best_same >= t_f, arg_same),
    ):  # lowest precedence first: later rules overwrite
        types[cond] = code
        target[cond] = tgt[cond]
    target[(types == _DUP) | (types == _BOTH)] = -1  # no ground truth is charged to these
    return types, target


def reference_error_types(matches: Matches, foreground_iou: float, background_iou: float) -> np.ndarray:
    """[M] error type codes (-1: not a false positive) of `errors_from_matches`, image by image."""
    t = matches.threshold_index(foreground_iou)
    fp = (matches.det_gt[t] < 0) & ~matches.det_ignored[t]
    types = np.full(len(fp), -1, dtype=np.int8)
    images = np.arange(len(matches.image_ids) + 1)
    det_bounds, gt_bounds = np.searchsorted(matches.det_image, images), np.searchsorted(matches.gt_image, images)
    for i in np.unique(matches.det_image[fp]):
        fp_idx = det_bounds[i] + np.flatnonzero(fp[det_bounds[i] : det_bounds[i + 1]])
        gt_idx = gt_bounds[i] + np.flatnonzero(~matches.gt_crowd[gt_bounds[i] : gt_bounds[i + 1]])
        types[fp_idx] = _classify_image(matches, fp_idx, gt_idx, foreground_iou, background_iou)[0]
    return types
