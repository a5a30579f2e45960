"""COCO box evaluation in numpy: the numbers of pycocotools' `COCOeval` ("bbox"), for all detections at once.

The rules are pycocotools' (evaluate, accumulate, summarize), applied to columns of boxes instead of
per-image dicts:

- per image and class, detections in descending score order (stable), at most 100;
- for each area range (all, small < 32², medium, large > 96²) ground truth is "ignored" when it is a
  crowd region or its area lies outside the range; each detection takes, at each IoU threshold, the
  unmatched non-ignored box with the highest IoU >= threshold (the last one among equal IoUs), else the
  ignored box that does (a crowd region can be taken many times, another ignored box once); a detection
  on an ignored box, or unmatched with a box area outside the range, is neither a hit nor a miss;
- IoUs are computed from XYWH as pycocotools' C code does (a crowd region: intersection / detection area);
- precision is interpolated at 101 recall points per class, area range and max-detections (1, 10, 100),
  and the 12 numbers are means over the defined entries, in pycocotools' order of summation.

The matching runs in lockstep over every (image, class) group: step r takes the r-th detection of each
group that overlaps some ground truth at IoU >= 0.5, for every area range and threshold together.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["AREA_RANGES", "COCO_MAX_DETS", "BoxColumns", "coco_box_evaluation"]

AREA_RANGES: tuple[tuple[float, float], ...] = ((0.0, 1e5**2), (0.0, 32.0**2), (32.0**2, 96.0**2), (96.0**2, 1e5**2))
"""COCO's area ranges in square pixels: all, small, medium, large (bounds inclusive)."""
COCO_MAX_DETS: tuple[int, ...] = (1, 10, 100)
_IOU_THRS = np.linspace(0.5, 0.95, int(np.round((0.95 - 0.5) / 0.05)) + 1, endpoint=True)
_REC_THRS = np.linspace(0.0, 1.00, int(np.round((1.00 - 0.0) / 0.01)) + 1, endpoint=True)
_EPS = float(np.spacing(1))
_PAIRS_AT_ONCE = 1 << 16  # (detection, ground truth) pairs whose IoUs `_pairs` computes together


@dataclass(frozen=True, eq=False)  # holds arrays: compared by identity
class BoxColumns:
    """Boxes of one evaluation as columns: image [N] int64 (index 0..I-1 into the sorted image ids), label
    [N] int64 (class index 0..K-1), xywh [N, 4] float64 pixels, area [N] float64 (ground truth: the
    annotation's area; detections: width * height), crowd [N] bool (ground truth only; False for
    detections), score [N] float64 (detections only; zeros for ground truth)."""

    image: np.ndarray
    label: np.ndarray
    xywh: np.ndarray
    area: np.ndarray
    crowd: np.ndarray
    score: np.ndarray

    def __len__(self) -> int:
        return int(self.image.shape[0])


@dataclass(frozen=True, eq=False)  # holds arrays: compared by identity
class CocoBoxResult:
    """stats: the 12 numbers in pycocotools' order; per_class_ap [K]: AP@[.50:.95] (all areas, 100
    detections) per class index, -1 without ground truth.

    The matching behind them over the "all" area range, for analyses to reuse: kept [N'] the evaluated
    detections (indices into the detections; at most 100 per image and class) by image, class, then
    descending score (stable); matched [T, N'] the ground truth index each took at each of COCO's ten IoU
    thresholds (-1: none); ignored [T, N'] bool: neither a hit nor a miss (it took a crowd region or an
    ignored box, or it is unmatched with an area outside the range).
    """

    stats: tuple[float, ...]
    per_class_ap: tuple[float, ...]
    kept: np.ndarray
    matched: np.ndarray
    ignored: np.ndarray


def _pair_iou(d: np.ndarray, g: np.ndarray, crowd: np.ndarray) -> np.ndarray:
    """pycocotools' `bbIou` for pairs of XYWH boxes d [P, 4], g [P, 4] (crowd [P]: divide by the detection area)."""
    w = np.minimum(d[:, 2] + d[:, 0], g[:, 2] + g[:, 0]) - np.maximum(d[:, 0], g[:, 0])
    h = np.minimum(d[:, 3] + d[:, 1], g[:, 3] + g[:, 1]) - np.maximum(d[:, 1], g[:, 1])
    inter = w * h
    da = d[:, 2] * d[:, 3]
    union = np.where(crowd, da, da + g[:, 2] * g[:, 3] - inter)
    with np.errstate(divide="ignore", invalid="ignore"):
        iou = inter / union
    return np.where((w > 0) & (h > 0), iou, 0.0)


def _ranked(dets: BoxColumns, num_classes: int, max_det: int) -> tuple[np.ndarray, np.ndarray]:
    """(kept detection indices by image, class and descending score, their rank within (image, class))."""
    key = dets.image * num_classes + dets.label
    order = np.lexsort((-dets.score, key))
    key = key[order]
    new = np.concatenate(([True], key[1:] != key[:-1])) if len(key) else np.zeros(0, dtype=bool)
    rank = np.arange(len(key)) - np.flatnonzero(new)[np.cumsum(new, dtype=np.int32) - 1]
    keep = rank < max_det
    return order[keep], rank[keep]


def _pairs(dets: BoxColumns, gts: BoxColumns, num_classes: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(detection, ground truth, IoU) of every pair of the same image and class with IoU >= 0.5."""
    dkey = dets.image * num_classes + dets.label
    gkey = gts.image * num_classes + gts.label
    gorder = np.argsort(gkey, kind="stable")
    sorted_key = gkey[gorder]
    start = np.searchsorted(sorted_key, dkey, side="left")
    size = np.searchsorted(sorted_key, dkey, side="right") - start
    d_of = np.repeat(np.arange(len(dkey)), size)
    within = np.arange(len(d_of)) - np.repeat(np.cumsum(size) - size, size)
    g_of = gorder[start[d_of] + within]
    iou = np.empty(len(d_of))
    for lo in range(0, len(d_of), _PAIRS_AT_ONCE):  # blocks of a few MB: in cache, no fresh pages for each
        d, g = d_of[lo : lo + _PAIRS_AT_ONCE], g_of[lo : lo + _PAIRS_AT_ONCE]
        iou[lo : lo + len(d)] = _pair_iou(dets.xywh[d], gts.xywh[g], gts.crowd[g])
    ok = iou >= min(float(_IOU_THRS.min()), 1 - 1e-10)
    return d_of[ok], g_of[ok], iou[ok]


def _match(
    dets: BoxColumns, rank: np.ndarray, gts: BoxColumns, gt_ignored: np.ndarray, num_classes: int
) -> tuple[np.ndarray, np.ndarray]:
    """COCO's greedy matching at every area range and IoU threshold (module docstring).

    Returns (matched [A, T, N] ground truth index or -1, on_ignored [A, T, N] bool)."""
    num_a, num_t, n = gt_ignored.shape[0], len(_IOU_THRS), len(dets)
    matched = np.full((num_a, num_t, n), -1, dtype=np.int32)
    on_ignored = np.zeros((num_a, num_t, n), dtype=bool)
    d_of, g_of, iou = _pairs(dets, gts, num_classes)
    if len(d_of) == 0:
        return matched, on_ignored
    # By step (rank), detection, then IoU and ground truth order: the last eligible pair of the best tier wins.
    order = np.lexsort((g_of, iou, d_of, rank[d_of]))
    d_of, g_of, iou = d_of[order], g_of[order], iou[order]
    bounds = np.searchsorted(rank[d_of], np.arange(int(rank.max()) + 2), side="left")
    thr = np.minimum(_IOU_THRS, 1 - 1e-10)
    used = np.zeros((num_a, num_t, len(gts)), dtype=bool)
    tier = (~gt_ignored).astype(np.int32) + 1  # 2: counted box, 1: ignored box
    for r in range(len(bounds) - 1):
        lo, hi = bounds[r], bounds[r + 1]
        if lo == hi:
            continue
        pd, pg, p_iou = d_of[lo:hi], g_of[lo:hi], iou[lo:hi]
        free = ~used[:, :, pg] | gts.crowd[pg]  # [A, T, P]
        value = (free & (p_iou[None, None, :] >= thr[None, :, None])) * tier[:, None, pg]
        # int32 codes while they fit: half the memory of int64, so the step's arrays stay small and in cache
        dtype = np.int32 if 3 * (hi - lo) < 2**31 else np.int64
        code = value.astype(dtype, copy=False) * dtype(hi - lo) + np.arange(hi - lo, dtype=dtype)
        starts = np.flatnonzero(np.concatenate(([True], pd[1:] != pd[:-1])))
        best = np.maximum.reduceat(code, starts, axis=2)  # [A, T, S]
        a, t, s = np.nonzero(best >= (hi - lo))
        pair = best[a, t, s] % (hi - lo)
        g, d = pg[pair], pd[pair]
        matched[a, t, d] = g
        on_ignored[a, t, d] = gt_ignored[a, g]
        used[a, t, g] = True
    return matched, on_ignored


def _outside(area: np.ndarray) -> np.ndarray:
    """[A, N] bool: the area lies outside each of COCO's area ranges."""
    return np.stack([(area < lo) | (area > hi) for lo, hi in AREA_RANGES])


def _accumulate(
    dets: BoxColumns,
    rank: np.ndarray,
    matched: np.ndarray,
    ignored: np.ndarray,
    num_gt: np.ndarray,
    class_order: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """pycocotools' precision [T, R, K, A, M] and recall [T, K, A, M] (-1 where a class has no counted
    ground truth in an area range), K in `class_order` (class indices by ascending category id)."""
    num_a, num_t = matched.shape[:2]
    num_k, num_m, num_r = len(class_order), len(COCO_MAX_DETS), len(_REC_THRS)
    precision = -np.ones((num_t, num_r, num_k, num_a, num_m))
    recall = -np.ones((num_t, num_k, num_a, num_m))
    # By class, descending score; ties by image, then place in the image (as pycocotools concatenates them).
    order = np.lexsort((rank, dets.image, -dets.score, dets.label))
    bounds = np.searchsorted(dets.label[order], np.arange(num_k + 1), side="left")
    # Gathered in C order (the cumulative sums run along rows); bool, not the int32 matches: 4x less to move.
    counted_all = ~ignored[:, :, order]  # a true or a false positive
    tp_flags = (matched >= 0)[:, :, order]
    tp_flags &= counted_all
    largest = int(np.diff(bounds).max(initial=0))
    running = np.empty((num_a, num_t, largest), dtype=np.int32)  # reused by every class: no fresh pages per class
    rank = rank[order]
    for kk, k in enumerate(class_order.tolist()):
        lo, hi = int(bounds[k]), int(bounds[k + 1])
        for m, max_det in enumerate(COCO_MAX_DETS):
            if max_det >= COCO_MAX_DETS[-1]:
                tp_sel, counted_sel = tp_flags[:, :, lo:hi], counted_all[:, :, lo:hi]
            else:
                sel = lo + np.flatnonzero(rank[lo:hi] < max_det)
                tp_sel, counted_sel = tp_flags[:, :, sel], counted_all[:, :, sel]
            # Only true positives set interpolated precision (a false positive has a lower precision than the
            # true positive before it at the same recall), so precision is computed at those alone.
            counted = np.cumsum(counted_sel, axis=2, dtype=np.int32, out=running[:, :, : counted_sel.shape[2]])
            for a in range(num_a):
                npig = int(num_gt[a, k])
                if npig == 0:
                    continue
                for t in range(num_t):
                    at = np.flatnonzero(tp_sel[a, t])
                    recall[t, kk, a, m] = len(at) / npig
                    if len(at) == 0:
                        precision[t, :, kk, a, m] = 0.0
                        continue
                    tp_sum = np.arange(1, len(at) + 1, dtype=np.float64)
                    pr = tp_sum / (counted[a, t, at].astype(np.float64) + _EPS)  # fp + tp + eps, as pycocotools
                    env = np.maximum.accumulate(pr[::-1])[::-1]
                    inds = np.searchsorted(tp_sum / npig, _REC_THRS, side="left")
                    precision[t, :, kk, a, m] = np.where(inds < len(at), env[np.minimum(inds, len(at) - 1)], 0.0)
    return precision, recall


def _summarize(precision: np.ndarray, recall: np.ndarray) -> tuple[float, ...]:
    """pycocotools' `summarize` for boxes: the 12 means, -1 where nothing is defined."""

    def mean(values: np.ndarray) -> float:
        defined = values[values > -1]
        return float(np.mean(defined)) if len(defined) else -1.0

    def ap(area: int = 0, iou: float | None = None) -> float:
        s = precision if iou is None else precision[np.where(iou == _IOU_THRS)[0]]
        return mean(s[:, :, :, [area], [len(COCO_MAX_DETS) - 1]])

    def ar(area: int = 0, max_det: int = 2) -> float:
        return mean(recall[:, :, [area], [max_det]])

    return (ap(), ap(iou=0.5), ap(iou=0.75), ap(1), ap(2), ap(3), ar(max_det=0), ar(max_det=1), ar(), ar(1), ar(2),
            ar(3))  # fmt: skip


def coco_box_evaluation(gts: BoxColumns, dets: BoxColumns, category_ids: tuple[int, ...]) -> CocoBoxResult:
    """pycocotools' bbox evaluation of `dets` against `gts` (class i has category id `category_ids[i]`):
    the 12 summary numbers and the per-class AP."""
    num_k = len(category_ids)
    keep, rank = _ranked(dets, num_k, COCO_MAX_DETS[-1])
    kept = BoxColumns(*(getattr(dets, f)[keep] for f in ("image", "label", "xywh", "area", "crowd", "score")))
    gt_ignored = gts.crowd[None, :] | _outside(gts.area)  # [A, G]
    matched, on_ignored = _match(kept, rank, gts, gt_ignored, num_k)
    ignored = on_ignored | ((matched < 0) & _outside(kept.area)[:, None, :])
    num_gt = np.zeros((len(AREA_RANGES), num_k), dtype=np.int64)
    for a in range(len(AREA_RANGES)):
        num_gt[a] = np.bincount(gts.label[~gt_ignored[a]], minlength=num_k)
    class_order = np.argsort(np.asarray(category_ids, dtype=np.int64), kind="stable")
    precision, recall = _accumulate(kept, rank, matched, ignored, num_gt, class_order)
    per_class = [-1.0] * num_k
    for kk, k in enumerate(class_order.tolist()):
        values = precision[:, :, kk, 0, -1]
        values = values[values > -1]
        per_class[k] = float(values.mean()) if values.size else -1.0
    return CocoBoxResult(_summarize(precision, recall), tuple(per_class), keep, matched[0], ignored[0])
