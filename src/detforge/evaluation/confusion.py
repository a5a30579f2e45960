"""The confusion matrix's counts, computed for all images at once (numpy; see `analysis.confusion_matrix`).

Per image: each class's detections are first matched to its own boxes as COCO does (`match_to_ground_truth`);
the detections and non-crowd boxes left free are then paired one to one by descending IoU >= `iou`, whatever
their classes. That greedy pairing is done in rounds over every image together: a candidate pair that comes
first (IoU descending, then detection, then box) among the undecided pairs of both its detection and its box
is the one the one-pair-at-a-time greedy would take; pairs sharing a taken detection or box are dropped.
"""

from __future__ import annotations

import numpy as np

from detforge.evaluation.match_groups import match_to_ground_truth, pair_iou
from detforge.evaluation.matching import Matches

__all__ = ["confusion_counts"]


def _first_of(keys: np.ndarray) -> np.ndarray:
    """[N] bool: the entry is the first with its key (entries in priority order)."""
    first = np.zeros(len(keys), dtype=bool)
    first[np.unique(keys, return_index=True)[1]] = True
    return first


def _pair_greedily(det: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """Indices of the pairs (det [P], gt [P], in priority order) a one-to-one greedy pass accepts."""
    taken: list[np.ndarray] = []
    alive = np.arange(len(det))
    while alive.size:
        d, g = det[alive], gt[alive]
        take = alive[_first_of(d) & _first_of(g)]
        taken.append(take)
        alive = alive[~(np.isin(d, det[take]) | np.isin(g, gt[take]))]
    return np.sort(np.concatenate(taken)) if taken else np.zeros(0, dtype=np.int64)


def _free_pairs(
    matches: Matches, det_free: np.ndarray, gt_free: np.ndarray, iou: float
) -> tuple[np.ndarray, np.ndarray]:
    """(detection, ground truth) index pairs of one image with IoU >= `iou`, in greedy priority order."""
    di, gi = np.flatnonzero(det_free), np.flatnonzero(gt_free)
    if di.size == 0 or gi.size == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    num_images = len(matches.image_ids)
    d_img, g_img = matches.det_image[di], matches.gt_image[gi]
    g_bounds = np.searchsorted(g_img, np.arange(num_images + 1), side="left")
    per_det = g_bounds[d_img + 1] - g_bounds[d_img]  # free boxes in each free detection's image
    a = np.repeat(np.arange(len(di)), per_det)
    offset = np.arange(len(a)) - np.repeat(np.cumsum(per_det) - per_det, per_det)
    b = g_bounds[d_img][a] + offset
    ious = pair_iou(matches.det_boxes[di[a]], matches.gt_boxes[gi[b]])
    ok = ious >= iou
    a, b, ious = a[ok], b[ok], ious[ok]
    order = np.lexsort((b, a, -ious, d_img[a]))  # per image: IoU descending, ties by detection then box
    return di[a[order]], gi[b[order]]


def confusion_counts(matches: Matches, *, iou: float, score_threshold: float) -> np.ndarray:
    """[K+1, K+1] int64 counts (rows: ground truth class, then background; columns: predicted class, then
    background) of the detections scoring >= `score_threshold`; the rules are in the module docstring."""
    k = matches.num_classes
    out = np.zeros((k + 1, k + 1), dtype=np.int64)
    kept = np.flatnonzero(matches.det_scores >= score_threshold)
    labels, img = matches.det_labels[kept], matches.det_image[kept]
    key = img * k + labels
    if len(kept):
        # Matches are ordered by image, class, descending score: the kept ones of a group come first.
        new_group = np.concatenate(([True], key[1:] != key[:-1]))
        group = np.cumsum(new_group, dtype=np.int32).astype(np.int64) - 1
        rank = np.arange(len(kept)) - np.flatnonzero(new_group)[group]
        det_gt, on_crowd = match_to_ground_truth(
            matches.det_boxes[kept], key, group, rank, matches.gt_image * k + matches.gt_labels,
            matches.gt_boxes, matches.gt_crowd, np.array([iou]),
        )  # fmt: skip
        hit, real = det_gt[0] >= 0, (det_gt[0] >= 0) & ~on_crowd[0]
        np.add.at(out, (labels[real], labels[real]), 1)
    else:
        hit = real = np.zeros(0, dtype=bool)
        det_gt = np.zeros((1, 0), dtype=np.int64)
    det_free = np.zeros(len(matches.det_scores), dtype=bool)
    det_free[kept[~hit]] = True
    gt_free = ~matches.gt_crowd.copy()
    gt_free[det_gt[0][real]] = False
    d, g = _free_pairs(matches, det_free, gt_free, iou)
    take = _pair_greedily(d, g)
    d, g = d[take], g[take]
    np.add.at(out, (matches.gt_labels[g], matches.det_labels[d]), 1)
    det_free[d], gt_free[g] = False, False
    np.add.at(out, (np.full(int(det_free.sum()), k), matches.det_labels[det_free]), 1)
    np.add.at(out, (matches.gt_labels[gt_free], k), 1)
    return out
