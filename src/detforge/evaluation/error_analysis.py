"""Where AP50 is lost: each false positive and missed box sorted into one error type, in the spirit of TIDE.

Definitions (foreground threshold t_f = 0.5, background threshold t_b = 0.1; IoUs are with non-crowd
ground truth of the same image; detections that match a crowd region are neither right nor wrong and
are left out). Each false positive at t_f gets the first type that applies:

1. duplicate: IoU >= t_f with a ground truth box of its class, which a higher-scoring detection has
   already matched;
2. classification: IoU >= t_f with a box of another class (right place, wrong label);
3. localisation: t_b <= IoU < t_f with a box of its class (right label, poor box);
4. both: t_b <= IoU < t_f with a box of another class (poor box and wrong label);
5. background: IoU < t_b with every box (a detection of nothing).

missed: a ground truth box no true positive matched, and which is not the target (highest-IoU box)
of a classification or localisation error (those are charged to that error).

The AP50 gain of a type is AP50 after an oracle fixes every error of that type, minus AP50 as it is,
each type fixed alone from the original state. Fixes, in descending score order:
classification: the detection takes its target's class and becomes its true positive, unless the
target is already matched (then it is removed); localisation: likewise becomes its target's true
positive (box corrected), else removed; both, duplicate and background: the detection is removed;
missed: the missed boxes are removed from the ground truth. Two extra oracles: "false_positives"
removes every false positive; "false_negatives" removes every unmatched ground truth box. Classes
left with no ground truth after a fix are left out of the mean, as COCO leaves out classes without
ground truth. AP50 is COCO's 101-point AP at IoU 0.5 computed from the matching (see `matching`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING

import numpy as np

from detforge.evaluation.match_groups import pair_iou
from detforge.evaluation.matching import Matches, class_ap, match_detections
from detforge.structures import Annotation, Categories, ImageRecord

if TYPE_CHECKING:
    from detforge.structures.detections import Detections

__all__ = ["ERROR_TYPES", "FIX_NAMES", "ErrorBreakdown", "error_breakdown", "errors_from_matches"]

ERROR_TYPES: tuple[str, ...] = ("classification", "localisation", "both", "duplicate", "background", "missed")
"""The error types, in the order they are reported."""

FIX_NAMES: tuple[str, ...] = (*ERROR_TYPES, "false_positives", "false_negatives")
"""Oracle fixes whose AP50 gain is reported: one per error type, then all false positives / negatives."""

_CLS, _LOC, _BOTH, _DUP, _BKG = range(5)
_PAIRS_AT_ONCE = 1 << 16  # (false positive, box) pairs per block in `_classify`


@dataclass(frozen=True, eq=False)  # holds arrays: compared by identity
class ErrorBreakdown:
    """Counts per error type (`ERROR_TYPES`) and the AP50 gain of each oracle fix (`FIX_NAMES`).

    ap50: AP50 before any fix, in [0, 1] (-1 without ground truth); delta_ap50 values are AP50 points
    in [0, 1] (0.05 = five points). num_true_positives / num_false_positives / num_gt: at foreground_iou.
    detection_types: [M] int8 per detection of the matches (0..4 = the first five ERROR_TYPES, -1 = not
    a false positive); missed_gt: [G] bool per ground truth box of the matches.
    """

    counts: Mapping[str, int]
    delta_ap50: Mapping[str, float]
    ap50: float
    foreground_iou: float
    background_iou: float
    num_true_positives: int
    num_false_positives: int
    num_gt: int
    detection_types: np.ndarray
    missed_gt: np.ndarray

    def __post_init__(self) -> None:
        if set(self.counts) != set(ERROR_TYPES) or set(self.delta_ap50) != set(FIX_NAMES):
            raise ValueError(f"ErrorBreakdown: counts must have keys {ERROR_TYPES} and delta_ap50 keys {FIX_NAMES}")
        object.__setattr__(self, "counts", MappingProxyType(dict(self.counts)))
        object.__setattr__(self, "delta_ap50", MappingProxyType(dict(self.delta_ap50)))

    def to_dict(self) -> dict[str, object]:
        return {
            "counts": dict(self.counts),
            "delta_ap50": dict(self.delta_ap50),
            "ap50": self.ap50,
            "foreground_iou": self.foreground_iou,
            "background_iou": self.background_iou,
            "num_true_positives": self.num_true_positives,
            "num_false_positives": self.num_false_positives,
            "num_gt": self.num_gt,
        }


def _mean_ap(labels: np.ndarray, by_score: np.ndarray, tp: np.ndarray, keep: np.ndarray, num_gt: np.ndarray) -> float:
    """AP50 averaged over classes with ground truth; `by_score` orders the detections by descending score
    (stable), `keep` selects the counted ones."""
    order = by_score[keep[by_score]]
    labels_in_order = labels[order]
    aps = []
    for k in np.flatnonzero(num_gt > 0):
        aps.append(class_ap(tp[order[labels_in_order == k]], float(num_gt[k])))
    return float(np.mean(aps)) if aps else -1.0


def _best_of(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(highest value [R], column of the first highest [R]) of values [R, W]."""
    arg = values.argmax(axis=1)
    return values[np.arange(len(values)), arg], arg


def _classify(
    matches: Matches, fp_idx: np.ndarray, gt_idx: np.ndarray, t_f: float, t_b: float
) -> tuple[np.ndarray, np.ndarray]:
    """(types [F], target ground truth index or -1 [F]) of the false positives `fp_idx` against the non-crowd
    ground truth `gt_idx` of their own images (both sorted by image), all images at once: false positives
    are taken together by the number of boxes in their image, each against all of those boxes."""
    types = np.full(len(fp_idx), _BKG, dtype=np.int8)
    target = np.full(len(fp_idx), -1, dtype=np.int64)
    if len(gt_idx) == 0 or len(fp_idx) == 0:
        return types, target
    d_img = matches.det_image[fp_idx]
    g_bounds = np.searchsorted(matches.gt_image[gt_idx], np.arange(len(matches.image_ids) + 1), side="left")
    per_fp = g_bounds[d_img + 1] - g_bounds[d_img]
    best_same, best_other = np.full(len(fp_idx), -1.0), np.full(len(fp_idx), -1.0)
    arg_same, arg_other = np.zeros(len(fp_idx), dtype=np.int64), np.zeros(len(fp_idx), dtype=np.int64)
    det_boxes, det_labels = matches.det_boxes[fp_idx], matches.det_labels[fp_idx]
    for width in np.unique(per_fp[per_fp > 0]).tolist():
        of_width = np.flatnonzero(per_fp == width)
        step = max(1, _PAIRS_AT_ONCE // width)  # blocks of pairs small enough to stay in cache
        for lo in range(0, len(of_width), step):
            rows = of_width[lo : lo + step]
            b = g_bounds[d_img[rows]][:, None] + np.arange(width)[None, :]  # [R, W] positions in gt_idx
            g = gt_idx[b]
            iou = pair_iou(det_boxes[rows][:, None, :], matches.gt_boxes[g])
            same = matches.gt_labels[g] == det_labels[rows][:, None]
            best_same[rows], col = _best_of(np.where(same, iou, -1.0))
            arg_same[rows] = b[np.arange(len(rows)), col]
            best_other[rows], col = _best_of(np.where(same, -1.0, iou))
            arg_other[rows] = b[np.arange(len(rows)), col]
    arg_same, arg_other = gt_idx[arg_same], gt_idx[arg_other]
    for code, cond, tgt in (
        (_BOTH, best_other >= t_b, arg_other),
        (_LOC, best_same >= t_b, arg_same),
        (_CLS, best_other >= t_f, arg_other),
        (_DUP, best_same >= t_f, arg_same),
    ):  # lowest precedence first: later rules overwrite
        cond &= per_fp > 0  # no ground truth in the image: background
        types[cond] = code
        target[cond] = tgt[cond]
    target[(types == _DUP) | (types == _BOTH)] = -1  # no ground truth is charged to these
    return types, target


def errors_from_matches(
    matches: Matches, *, foreground_iou: float = 0.5, background_iou: float = 0.1
) -> ErrorBreakdown:
    """The error breakdown of `matches` (which must include `foreground_iou` among its thresholds)."""
    if not 0.0 <= background_iou <= foreground_iou <= 1.0:
        raise ValueError(
            f"errors: expected 0 <= background_iou <= foreground_iou <= 1, got {background_iou}, {foreground_iou}"
        )
    t = matches.threshold_index(foreground_iou)
    det_gt, ignored = matches.det_gt[t], matches.det_ignored[t]
    tp, fp = (det_gt >= 0) & ~ignored, (det_gt < 0) & ~ignored
    types = np.full(len(det_gt), -1, dtype=np.int8)
    target = np.full(len(det_gt), -1, dtype=np.int64)
    real_gt = ~matches.gt_crowd
    fp_idx = np.flatnonzero(fp)  # both arrays are sorted by image
    types[fp_idx], target[fp_idx] = _classify(matches, fp_idx, np.flatnonzero(real_gt), foreground_iou, background_iou)
    matched_gt = np.zeros(len(real_gt), dtype=bool)
    matched_gt[det_gt[tp]] = True
    covered = np.zeros(len(real_gt), dtype=bool)
    covered[target[target >= 0]] = True
    missed = real_gt & ~matched_gt & ~covered
    counts = {name: int((types == code).sum()) for code, name in enumerate(ERROR_TYPES[:5])}
    counts["missed"] = int(missed.sum())

    labels, scores, keep = matches.det_labels, matches.det_scores, ~ignored
    num_gt = matches.num_gt()
    by_score = np.argsort(-scores, kind="stable")
    base = _mean_ap(labels, by_score, tp, keep, num_gt)

    def fix_targets(code: int) -> float:
        new_labels, new_tp, new_keep = labels.copy(), tp.copy(), keep.copy()
        # In score order, the first detection charged to a box not yet matched takes it; the others are removed.
        sel = by_score[types[by_score] == code]
        g = target[sel]
        first = np.zeros(len(g), dtype=bool)
        first[np.unique(g, return_index=True)[1]] = True
        fix = first & ~matched_gt[g]
        new_keep[sel[~fix]] = False
        new_tp[sel[fix]] = True
        new_labels[sel[fix]] = matches.gt_labels[g[fix]]
        return _mean_ap(new_labels, by_score, new_tp, new_keep, num_gt)

    def remove(code: int) -> float:
        return _mean_ap(labels, by_score, tp, keep & (types != code), num_gt)

    gt_labels_real = matches.gt_labels[real_gt]
    fixed = {
        "classification": fix_targets(_CLS),
        "localisation": fix_targets(_LOC),
        "both": remove(_BOTH),
        "duplicate": remove(_DUP),
        "background": remove(_BKG),
        "missed": _mean_ap(
            labels, by_score, tp, keep, num_gt - np.bincount(matches.gt_labels[missed], minlength=matches.num_classes)
        ),
        "false_positives": _mean_ap(labels, by_score, tp, keep & ~fp, num_gt),
        "false_negatives": _mean_ap(
            labels, by_score, tp, keep, np.bincount(matches.gt_labels[matched_gt], minlength=matches.num_classes)
        ),
    }
    delta = {name: (value - base if base >= 0 and value >= 0 else 0.0) for name, value in fixed.items()}
    return ErrorBreakdown(
        counts=counts,
        delta_ap50=delta,
        ap50=base,
        foreground_iou=foreground_iou,
        background_iou=background_iou,
        num_true_positives=int(tp.sum()),
        num_false_positives=int(fp.sum()),
        num_gt=len(gt_labels_real),
        detection_types=types,
        missed_gt=missed,
    )


def error_breakdown(
    images: Sequence[ImageRecord],
    annotations: Sequence[Annotation],
    categories: Categories,
    predictions: Mapping[int, Detections],
    *,
    foreground_iou: float = 0.5,
    background_iou: float = 0.1,
) -> ErrorBreakdown:
    """Count false positives and misses by type and measure each type's AP50 cost (definitions above)."""
    matches = match_detections(images, annotations, categories, predictions, iou_thresholds=(foreground_iou,))
    return errors_from_matches(matches, foreground_iou=foreground_iou, background_iou=background_iou)
