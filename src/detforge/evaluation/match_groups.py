"""Box IoU in numpy and COCO's greedy matching for many (image, class) groups at once.

`pair_iou` computes exactly what torchvision's `box_iou` computes (same float64 operations in the same
order), without importing torchvision. `greedy_match_groups` runs COCO's greedy assignment (see
`detforge.evaluation.matching`) for every group in lockstep: step r takes the r-th detection of every
group, so the Python loop runs once per detection rank, not once per detection.
"""

from __future__ import annotations

import numpy as np

__all__ = ["crowd_iou", "greedy_match_groups", "match_to_ground_truth", "pair_iou"]


def pair_iou(det: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """IoU of XYXY boxes broadcast against each other (det [..., 4], gt [..., 4], float64); NaN becomes 0."""
    area_d = (det[..., 2] - det[..., 0]) * (det[..., 3] - det[..., 1])
    area_g = (gt[..., 2] - gt[..., 0]) * (gt[..., 3] - gt[..., 1])
    w = np.minimum(det[..., 2], gt[..., 2]) - np.maximum(det[..., 0], gt[..., 0])
    h = np.minimum(det[..., 3], gt[..., 3]) - np.maximum(det[..., 1], gt[..., 1])
    inter = np.maximum(w, 0.0, out=w)  # np.maximum, not np.clip: the same values, several times faster
    inter *= np.maximum(h, 0.0, out=h)
    union = area_d + area_g
    union -= inter
    with np.errstate(divide="ignore", invalid="ignore"):
        iou = np.divide(inter, union, out=inter)
    iou[np.isnan(iou)] = 0.0
    return iou


def crowd_iou(det: np.ndarray, crowd: np.ndarray) -> np.ndarray:
    """COCO's score of a detection on a crowd region: intersection / detection area (0 for an empty box)."""
    w = np.maximum(np.minimum(det[..., 2], crowd[..., 2]) - np.maximum(det[..., 0], crowd[..., 0]), 0.0)
    h = np.maximum(np.minimum(det[..., 3], crowd[..., 3]) - np.maximum(det[..., 1], crowd[..., 1]), 0.0)
    area = np.maximum(det[..., 2] - det[..., 0], 0.0) * np.maximum(det[..., 3] - det[..., 1], 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.nan_to_num((w * h) / area, nan=0.0, posinf=0.0)


def _last_best(ok: np.ndarray, iou: np.ndarray) -> np.ndarray:
    """[A, T] column of the highest IoU among `ok` [A, T, G] (the last one among equal maxima, as COCO)."""
    cand = np.where(ok, iou[:, None, :], -1.0)[..., ::-1]
    return ok.shape[2] - 1 - cand.argmax(axis=2)


def greedy_match_groups(
    iou: np.ndarray,
    crowd: np.ndarray,
    valid: np.ndarray,
    group: np.ndarray,
    rank: np.ndarray,
    thresholds: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """COCO's greedy assignment for detections [N] of many groups, each against its own padded columns.

    iou [N, G]: the detection's IoU with its group's ground truth columns (non-crowd first); crowd [N, G]:
    the column is a crowd region; valid [N, G]: the column exists (padding is False); group [N]: group
    index 0..; rank [N]: the detection's place in its group by descending score (0, 1, ...).
    Returns (matched [T, N] column or -1, on_crowd [T, N] bool), as `greedy_match` per group.
    """
    num_t, (n, g) = len(thresholds), iou.shape
    matched = np.full((num_t, n), -1, dtype=np.int64)
    on_crowd = np.zeros((num_t, n), dtype=bool)
    if n == 0 or g == 0:
        return matched, on_crowd
    thr = np.minimum(np.asarray(thresholds, dtype=np.float64), 1 - 1e-10)
    reaches = np.where(valid, iou, -np.inf).max(axis=1) >= thr.min()  # rows that can match anything
    rows_all = np.flatnonzero(reaches)
    rows_all = rows_all[np.argsort(rank[rows_all], kind="stable")]
    bounds = np.searchsorted(rank[rows_all], np.arange(int(rank.max(initial=0)) + 2), side="left")
    used = np.zeros((int(group.max(initial=0)) + 1, num_t, g), dtype=bool)
    for r in range(len(bounds) - 1):
        rows = rows_all[bounds[r] : bounds[r + 1]]  # one detection per group at most
        if rows.size == 0:
            continue
        row_iou, grp = iou[rows], group[rows]
        reach = (row_iou[:, None, :] >= thr[None, :, None]) & valid[rows][:, None, :]  # [A, T, G]
        is_crowd = crowd[rows][:, None, :]
        ok = reach & ~is_crowd & ~used[grp]
        has = ok.any(axis=2)
        if has.any():
            best = _last_best(ok, row_iou)
            a, t = np.nonzero(has)
            matched[t, rows[a]] = best[a, t]
            used[grp[a], t, best[a, t]] = True
        ok = reach & is_crowd & ~has[:, :, None]
        on = ok.any(axis=2)
        if on.any():
            best = _last_best(ok, row_iou)
            a, t = np.nonzero(on)
            matched[t, rows[a]] = best[a, t]
            on_crowd[t, rows[a]] = True
    return matched, on_crowd


def match_to_ground_truth(
    det_boxes: np.ndarray,
    det_key: np.ndarray,
    group: np.ndarray,
    rank: np.ndarray,
    gt_key: np.ndarray,
    gt_boxes: np.ndarray,
    gt_crowd: np.ndarray,
    thresholds: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """COCO's greedy matching of every detection to the ground truth with the same key (image and class).

    det_boxes [N, 4] XYXY float64, det_key [N] (image index * K + class), group [N] (one id per key),
    rank [N] (place in the group by descending score); gt_key [G], gt_boxes [G, 4], gt_crowd [G].
    Returns (det_gt [T, N]: index into the ground truth arrays or -1, on_crowd [T, N]: the match is a crowd
    region). Groups are padded to the next power of two of their ground truth count, so padding at most
    doubles the work.
    """
    num_t, n = len(thresholds), len(det_key)
    det_gt = np.full((num_t, n), -1, dtype=np.int64)
    on_crowd = np.zeros((num_t, n), dtype=bool)
    if n == 0 or len(gt_key) == 0:
        return det_gt, on_crowd
    gorder = np.lexsort((gt_crowd, gt_key))  # by key, non-crowd first, then annotation order (as COCO)
    sorted_key = gt_key[gorder]
    start = np.searchsorted(sorted_key, det_key, side="left")
    size = np.searchsorted(sorted_key, det_key, side="right") - start
    width = np.where(size > 0, 2 ** np.ceil(np.log2(np.maximum(size, 1))).astype(np.int64), 0)
    for w in np.unique(width[width > 0]):
        rows = np.flatnonzero(width == w)
        cols = np.arange(w)
        valid = cols[None, :] < size[rows, None]
        gidx = gorder[np.minimum(start[rows, None] + cols[None, :], len(gorder) - 1)]  # [R, w]
        gb, db = gt_boxes[gidx], det_boxes[rows][:, None, :]
        crowd = gt_crowd[gidx] & valid
        iou = pair_iou(db, gb)
        if crowd.any():
            iou = np.where(crowd, crowd_iou(db, gb), iou)
        local = np.unique(group[rows], return_inverse=True)[1].reshape(-1)
        matched, crowd_hit = greedy_match_groups(iou, crowd, valid, local, rank[rows], thresholds)
        det_gt[:, rows] = np.where(matched >= 0, gidx[np.arange(len(rows))[None, :], np.maximum(matched, 0)], -1)
        on_crowd[:, rows] = crowd_hit
    return det_gt, on_crowd
