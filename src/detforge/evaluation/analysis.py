"""Precision-recall and F1 curves, the confusion matrix and the per-class table of an evaluation.

Scores are thresholds in the "keep detections with score >= threshold" sense; every curve point sits
at the end of a run of equal scores, so a point is a threshold someone can actually set.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from detforge.evaluation.confusion import confusion_counts
from detforge.evaluation.matching import (
    RECALL_THRESHOLDS,
    Matches,
    interpolated_precision,
    match_detections,
)
from detforge.evaluation.metrics import CocoMetrics
from detforge.structures import Annotation, Categories, ImageRecord

if TYPE_CHECKING:
    from detforge.structures.detections import Detections

__all__ = [
    "CONFIDENCE_GRID",
    "ClassPR",
    "ClassRow",
    "ClassTable",
    "ConfusionMatrix",
    "OperatingPoints",
    "PRCurves",
    "confusion_from_matches",
    "confusion_matrix",
    "operating_points",
    "per_class_table",
    "pr_curves",
    "pr_curves_from_matches",
]

CONFIDENCE_GRID: tuple[float, ...] = tuple(float(v) for v in np.linspace(0.0, 1.0, 101))
"""Score thresholds 0.00, 0.01, ..., 1.00 at which the JSON and plots sample the confidence curves."""


def _floats(values: np.ndarray) -> list[float | None]:
    """A JSON-safe list: NaN becomes None."""
    return [None if not math.isfinite(v) else float(v) for v in np.asarray(values, dtype=np.float64).tolist()]


@dataclass(frozen=True, eq=False)  # holds arrays: compared by identity
class OperatingPoints:
    """Precision, recall and F1 at every distinct score threshold, thresholds descending; all arrays [P].

    recall (and so F1's meaning) is NaN-free only when num_gt > 0; without ground truth recall is NaN
    and F1 is 0. tp / fp: true / false positives kept at each threshold.
    """

    thresholds: np.ndarray
    precision: np.ndarray
    recall: np.ndarray
    f1: np.ndarray
    tp: np.ndarray
    fp: np.ndarray
    num_gt: int

    def best_f1(self) -> tuple[float, float | None]:
        """(highest F1, its threshold) -- the highest threshold among ties; (0, None) without a true positive."""
        if len(self.f1) == 0 or not np.any(self.f1 > 0):
            return 0.0, None
        i = self.best_f1_index()
        return float(self.f1[i]), float(self.thresholds[i])

    def best_f1_index(self) -> int:
        """Index of the highest F1 (equal within 1e-12 counts as a tie: the first, highest threshold wins)."""
        return int(np.flatnonzero(self.f1 >= self.f1.max() - 1e-12)[0])


def operating_points(scores: np.ndarray, tp: np.ndarray, num_gt: int) -> OperatingPoints:
    """Operating points of detections with `scores` [N] and `tp` [N] bool (any order) against `num_gt` boxes."""
    order = np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable")
    s, t = np.asarray(scores, dtype=np.float64)[order], np.asarray(tp, dtype=bool)[order]
    last = np.flatnonzero(np.append(s[1:] != s[:-1], True)) if len(s) else np.zeros(0, dtype=np.int64)
    tps = np.cumsum(t, dtype=np.int32)[last].astype(np.float64)  # int32: several times faster than int64 on bools
    fps = (last + 1) - tps
    precision = tps / np.maximum(tps + fps, 1.0)
    recall = tps / num_gt if num_gt > 0 else np.full(len(last), np.nan)
    with np.errstate(invalid="ignore", divide="ignore"):
        f1 = np.where(precision + recall > 0, 2 * precision * recall / (precision + recall), 0.0)
    return OperatingPoints(s[last], precision, recall, np.nan_to_num(f1, nan=0.0), tps, fps, num_gt)


@dataclass(frozen=True, eq=False)  # holds arrays: compared by identity
class ClassPR:
    """One class's curves at the PR IoU threshold (crowd matches left out).

    scores [N] descending and tp [N] bool: its detections; points: `OperatingPoints`; ap50: COCO's
    101-point AP at IoU 0.5 (-1 without ground truth); interpolated_precision [101]: COCO's
    interpolated precision at `RECALL_THRESHOLDS` (-1 without ground truth).
    """

    name: str
    num_gt: int
    num_pred: int
    scores: np.ndarray
    tp: np.ndarray
    points: OperatingPoints
    ap50: float
    interpolated_precision: np.ndarray

    @property
    def best_f1(self) -> float:
        return self.points.best_f1()[0]

    @property
    def best_threshold(self) -> float | None:
        return self.points.best_f1()[1]

    def at(self, thresholds: Sequence[float]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(precision, recall, f1) each [len(thresholds)] when keeping scores >= each threshold.

        precision is NaN where nothing is kept; recall is NaN without ground truth; f1 is then 0.
        """
        kept = np.searchsorted(-self.scores, -np.asarray(thresholds, dtype=np.float64), side="right")
        tps = np.concatenate([[0.0], np.cumsum(self.tp, dtype=np.int32).astype(np.float64)])[kept]
        with np.errstate(invalid="ignore", divide="ignore"):
            precision = np.where(kept > 0, tps / np.maximum(kept, 1), np.nan)
            recall = tps / self.num_gt if self.num_gt > 0 else np.full(len(kept), np.nan)
            f1 = np.nan_to_num(2 * precision * recall / (precision + recall), nan=0.0)
        return precision, recall, f1

    def to_dict(self) -> dict[str, object]:
        p, r, f1 = self.at(CONFIDENCE_GRID)
        return {
            "name": self.name,
            "num_gt": self.num_gt,
            "num_pred": self.num_pred,
            "ap50": self.ap50,
            "best_f1": self.best_f1,
            "best_threshold": self.best_threshold,
            "interpolated_precision": _floats(self.interpolated_precision),
            "precision_at_confidence": _floats(p),
            "recall_at_confidence": _floats(r),
            "f1_at_confidence": _floats(f1),
        }


def _class_pr(name: str, scores: np.ndarray, tp: np.ndarray, num_gt: int, num_pred: int) -> ClassPR:
    interp = interpolated_precision(tp, num_gt)
    ap50 = float(interp.mean()) if num_gt > 0 else -1.0
    return ClassPR(name, num_gt, num_pred, scores, tp, operating_points(scores, tp, num_gt), ap50, interp)


@dataclass(frozen=True, eq=False)  # holds arrays: compared by identity
class PRCurves:
    """Per-class curves (categories order) at IoU `iou`, plus `micro`: all classes pooled as one."""

    iou: float
    classes: tuple[ClassPR, ...]
    micro: ClassPR

    def to_dict(self) -> dict[str, object]:
        return {
            "iou": self.iou,
            "recall_thresholds": list(RECALL_THRESHOLDS),
            "confidence_thresholds": list(CONFIDENCE_GRID),
            "classes": [c.to_dict() for c in self.classes],
            "all_classes": self.micro.to_dict(),
        }


def pr_curves_from_matches(matches: Matches, *, iou: float = 0.5) -> PRCurves:
    """PR and F1-versus-confidence curves per class from matches that include `iou`."""
    num_pred = matches.num_pred()
    per_class = matches.per_class(iou)
    classes = tuple(_class_pr(c.name, c.scores, c.tp, c.num_gt, int(num_pred[k])) for k, c in enumerate(per_class))
    scores = np.concatenate([c.scores for c in per_class]) if per_class else np.zeros(0)
    tp = np.concatenate([c.tp for c in per_class]) if per_class else np.zeros(0, dtype=bool)
    order = np.argsort(-scores, kind="stable")
    micro = _class_pr("all classes", scores[order], tp[order], sum(c.num_gt for c in per_class), int(num_pred.sum()))
    return PRCurves(iou, classes, micro)


def pr_curves(
    images: Sequence[ImageRecord],
    annotations: Sequence[Annotation],
    categories: Categories,
    predictions: Mapping[int, Detections],
    *,
    iou: float = 0.5,
) -> PRCurves:
    """Precision/recall and F1-versus-confidence curves per class at IoU `iou` (COCO matching)."""
    matches = match_detections(images, annotations, categories, predictions, iou_thresholds=(iou,))
    return pr_curves_from_matches(matches, iou=iou)


@dataclass(frozen=True, eq=False)  # holds arrays: compared by identity
class ConfusionMatrix:
    """Counts [K+1, K+1] int64: rows = ground truth class, last row = background (a false positive);
    columns = predicted class, last column = background (a missed box). names: K class names + "background".
    """

    names: tuple[str, ...]
    matrix: np.ndarray
    iou: float
    score_threshold: float

    def __post_init__(self) -> None:
        n = len(self.names)
        if self.matrix.shape != (n, n):
            raise ValueError(f"ConfusionMatrix.matrix: expected shape [{n}, {n}], got {list(self.matrix.shape)}")

    def normalized(self) -> np.ndarray:
        """Rows divided by their sums (share of each ground truth class going to each column); 0-sum rows stay 0."""
        sums = self.matrix.sum(axis=1, keepdims=True).astype(np.float64)
        return np.divide(self.matrix, sums, out=np.zeros(self.matrix.shape), where=sums > 0)

    def to_dict(self) -> dict[str, object]:
        return {
            "names": list(self.names),
            "matrix": self.matrix.tolist(),
            "iou": self.iou,
            "score_threshold": self.score_threshold,
        }


def confusion_from_matches(matches: Matches, *, iou: float = 0.5, score_threshold: float = 0.5) -> ConfusionMatrix:
    """Confusion matrix of the detections with score >= `score_threshold` (see `confusion_matrix`)."""
    out = confusion_counts(matches, iou=iou, score_threshold=score_threshold)
    return ConfusionMatrix((*matches.categories.names, "background"), out, iou, score_threshold)


def confusion_matrix(
    images: Sequence[ImageRecord],
    annotations: Sequence[Annotation],
    categories: Categories,
    predictions: Mapping[int, Detections],
    *,
    iou: float = 0.5,
    score_threshold: float = 0.5,
) -> ConfusionMatrix:
    """Where each ground truth box and each detection (score >= `score_threshold`) ends up, per image.

    First each class's detections are matched to its own boxes as COCO does (so a correct detection
    is never stolen by a better-overlapping wrong one; detections matching a crowd region are not
    counted); the remaining detections and non-crowd boxes are then paired one to one by descending
    IoU >= `iou`, whatever their classes (cell [gt class, predicted class]). Detections left over go to
    the background row, boxes left over to the background column; [background, background] is 0.
    """
    matches = match_detections(images, annotations, categories, predictions, iou_thresholds=(iou,))
    return confusion_from_matches(matches, iou=iou, score_threshold=score_threshold)


@dataclass(frozen=True)
class ClassRow:
    """One class: ground truth boxes, detections, COCO AP@[.50:.95] and AP50 (-1 = no ground truth),
    best F1 at IoU 0.5 and the score threshold giving it (None without detections)."""

    name: str
    num_gt: int
    num_pred: int
    ap: float
    ap50: float
    best_f1: float
    best_threshold: float | None

    def to_dict(self) -> dict[str, object]:
        return {
            "class": self.name,
            "num_gt": self.num_gt,
            "num_pred": self.num_pred,
            "ap": self.ap,
            "ap50": self.ap50,
            "best_f1": self.best_f1,
            "best_threshold": self.best_threshold,
        }


@dataclass(frozen=True)
class ClassTable:
    """The per-class table, one row per class in categories order."""

    rows: tuple[ClassRow, ...]

    def to_dict(self) -> dict[str, object]:
        return {"rows": [r.to_dict() for r in self.rows]}

    def to_text(self) -> str:
        """A fixed-width table for the terminal."""
        width = max([5, *(len(r.name) for r in self.rows)])
        lines = [f"{'class':<{width}}  {'#GT':>6}  {'#pred':>7}  {'AP':>6}  {'AP50':>6}  {'F1':>6}  {'thr':>5}"]
        for r in self.rows:
            ap = f"{r.ap:6.3f}" if r.ap >= 0 else f"{'-':>6}"
            ap50 = f"{r.ap50:6.3f}" if r.ap50 >= 0 else f"{'-':>6}"
            thr = f"{r.best_threshold:5.2f}" if r.best_threshold is not None else f"{'-':>5}"
            lines.append(f"{r.name:<{width}}  {r.num_gt:>6}  {r.num_pred:>7}  {ap}  {ap50}  {r.best_f1:6.3f}  {thr}")
        return "\n".join(lines)


def per_class_table(metrics: CocoMetrics, pr: PRCurves) -> ClassTable:
    """Rows for every class of `pr`: AP from `metrics.per_class_ap` (COCO, -1 if absent), the rest from `pr`."""
    rows = tuple(
        ClassRow(
            c.name,
            c.num_gt,
            c.num_pred,
            float(metrics.per_class_ap.get(c.name, -1.0)),
            c.ap50,
            c.best_f1,
            c.best_threshold,
        )
        for c in pr.classes
    )
    return ClassTable(rows)
