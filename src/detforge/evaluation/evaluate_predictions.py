"""One call that evaluates predictions completely: COCO metrics, curves, confusion, errors, intervals, report."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Union

from detforge.evaluation.analysis import (
    ClassTable,
    ConfusionMatrix,
    PRCurves,
    confusion_from_matches,
    per_class_table,
    pr_curves_from_matches,
)
from detforge.evaluation.bootstrap import BootstrapCI, bootstrap_from_matches
from detforge.evaluation.calibration import Calibration, CalibrationError, calibrate_threshold
from detforge.evaluation.coco_boxes import CocoBoxResult, coco_box_evaluation
from detforge.evaluation.detection_table import DetectionTable, detection_columns, ground_truth_columns
from detforge.evaluation.error_analysis import ErrorBreakdown, errors_from_matches
from detforge.evaluation.matching import matches_from_coco
from detforge.evaluation.metrics import CocoMetrics
from detforge.evaluation.text_metrics import ReadMetrics, read_metrics
from detforge.structures import Annotation, Categories, ImageRecord
from detforge.thresholds import DEFAULT_SCORE_THRESHOLD

if TYPE_CHECKING:
    from detforge.structures.detections import Detections

Predictions = Union["Mapping[int, Detections]", DetectionTable]
"""Detections to evaluate: image id -> Detections (labels 0..K-1, XYXY pixels), or one `DetectionTable`."""

__all__ = ["EvaluationResult", "coco_metrics", "evaluate_predictions"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class EvaluationResult:
    """Everything `evaluate_predictions` measured.

    metrics: COCO's numbers (pycocotools'); table: per class; pr: curves at IoU 0.5; confusion: at
    `score_threshold`; errors: TIDE-style breakdown; bootstrap: AP/AP50 intervals (None if not asked);
    calibration: best-F1 threshold (None without detections or ground truth); score_threshold: the one
    used for the confusion matrix and gallery; report: path of report.html (None without out_dir);
    read: read accuracy at `score_threshold` (None unless the ground truth has transcriptions and the
    detections carry texts).
    """

    metrics: CocoMetrics
    table: ClassTable
    pr: PRCurves
    confusion: ConfusionMatrix
    errors: ErrorBreakdown
    bootstrap: BootstrapCI | None
    calibration: Calibration | None
    score_threshold: float
    report: Path | None = None
    read: ReadMetrics | None = None

    def to_dict(self) -> dict[str, object]:
        """JSON-ready: every part's `to_dict()`, the threshold and the report path (as a string)."""
        return {
            "metrics": self.metrics.to_dict(),
            "per_class": self.table.to_dict()["rows"],
            "pr": self.pr.to_dict(),
            "confusion": self.confusion.to_dict(),
            "errors": self.errors.to_dict(),
            "bootstrap": self.bootstrap.to_dict() if self.bootstrap is not None else None,
            "calibration": self.calibration.to_dict() if self.calibration is not None else None,
            "score_threshold": self.score_threshold,
            "report": str(self.report) if self.report is not None else None,
            "read": self.read.to_dict() if self.read is not None else None,
        }


def coco_metrics(
    images: Sequence[ImageRecord],
    annotations: Sequence[Annotation],
    categories: Categories,
    predictions: Predictions,
) -> CocoMetrics:
    """COCO bbox metrics of `predictions` (image id -> Detections, or a table; images without detections
    count as such): pycocotools' numbers."""
    table = predictions if isinstance(predictions, DetectionTable) else DetectionTable.from_detections(predictions)
    return _coco_evaluation(images, annotations, categories, table)[0]


def _coco_evaluation(
    images: Sequence[ImageRecord], annotations: Sequence[Annotation], categories: Categories, table: DetectionTable
) -> tuple[CocoMetrics, CocoBoxResult]:
    """COCO's metrics of `table`, and the evaluation behind them (its matching is reused by the analyses)."""
    gts = ground_truth_columns(images, annotations, categories)
    result = coco_box_evaluation(gts, detection_columns(table, images, len(categories)), categories.ids)
    per_class = {c.name: ap for c, ap in zip(categories, result.per_class_ap, strict=True)}
    metrics = CocoMetrics.from_stats(result.stats, per_class, num_images=len(images), num_detections=len(table))
    return metrics, result


def evaluate_predictions(
    images: Sequence[ImageRecord],
    annotations: Sequence[Annotation],
    categories: Categories,
    predictions: Predictions,
    *,
    out_dir: str | Path | None = None,
    score_threshold: float | None = None,
    bootstrap_n: int = 200,
    seed: int = 0,
    worst_k: int = 12,
    read_floor: float = 0.0,
    read_classes: Sequence[str] | None = None,
) -> EvaluationResult:
    """Evaluate `predictions` (image id -> Detections, labels 0..K-1, XYXY pixels; or a `DetectionTable`)
    against the ground truth.

    Detections are matched once, by the COCO evaluation (pycocotools' rules, IoU 0.50:0.95, "all" area range),
    and every analysis (curves, calibration, confusion, errors, intervals) reuses that matching.
    `score_threshold` (None: the best-F1 threshold, else 0.5) sets the confusion matrix and gallery.
    `bootstrap_n` resamples give AP/AP50 intervals (0: none). With `out_dir`, writes the HTML report there.
    When the annotations have texts and the detections carry reading results (`Detections.texts`), also
    measures read accuracy at `score_threshold`, or at `read_floor` when higher (the score below which
    detections were not read), by `read_metrics` over `read_classes` (None: the classes with labelled texts
    that some detection was read in); the report then has a "Reading" section.
    """
    dets = predictions if isinstance(predictions, DetectionTable) else DetectionTable.from_detections(predictions)
    metrics, coco = _coco_evaluation(images, annotations, categories, dets)
    matches = matches_from_coco(images, annotations, categories, dets, coco)  # COCO's matching, not a second one
    pr = pr_curves_from_matches(matches)
    try:
        calibration: Calibration | None = calibrate_threshold(pr)
    except CalibrationError as e:
        logger.info("no score threshold calibrated: %s", e)
        calibration = None
    if score_threshold is None:
        score_threshold = calibration.threshold if calibration is not None else DEFAULT_SCORE_THRESHOLD
    confusion = confusion_from_matches(matches, score_threshold=score_threshold)
    errors = errors_from_matches(matches)
    bootstrap = bootstrap_from_matches(matches, n=bootstrap_n, seed=seed) if bootstrap_n > 0 else None
    table = per_class_table(metrics, pr)
    read_at = max(score_threshold, read_floor)
    per_image = predictions if not isinstance(predictions, DetectionTable) else None
    if per_image is None and dets.has_text:
        per_image = dets.to_detections(images)  # texts are measured per image
    read = None
    if per_image is not None:
        read = read_metrics(images, annotations, categories, per_image, score_threshold=read_at, classes=read_classes)
    report = None
    if out_dir is not None:
        from detforge.evaluation.report import write_eval_report

        per_image = per_image if per_image is not None else dets.to_detections(images)
        report = write_eval_report(
            out_dir, metrics=metrics, table=table, pr=pr, confusion=confusion, errors=errors, bootstrap=bootstrap,
            calibration=calibration, images=images, annotations=annotations, categories=categories,
            predictions=per_image, worst_k=worst_k, read=read,
        )  # fmt: skip
    return EvaluationResult(
        metrics, table, pr, confusion, errors, bootstrap, calibration, score_threshold, report, read
    )
