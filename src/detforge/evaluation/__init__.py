"""Evaluation: COCO metrics (bbox and segm), analysis (PR, confusion, errors, bootstrap CIs),
score-threshold calibration, read accuracy and the HTML report."""

from detforge.evaluation.calibration import Calibration, CalibrationError, calibrate_threshold, deployment_threshold
from detforge.evaluation.coco import CocoEvaluator
from detforge.evaluation.detection_table import DetectionTable
from detforge.evaluation.evaluate_predictions import EvaluationResult, coco_metrics, evaluate_predictions
from detforge.evaluation.metrics import STAT_NAMES, CocoMetrics
from detforge.evaluation.report import write_eval_report
from detforge.evaluation.results_io import load_coco_results, read_coco_results, to_coco_results
from detforge.evaluation.text_metrics import Misread, MisreadExample, ReadMetrics, read_metrics

__all__ = [
    "STAT_NAMES",
    "Calibration",
    "CalibrationError",
    "CocoEvaluator",
    "CocoMetrics",
    "DetectionTable",
    "EvaluationResult",
    "Misread",
    "MisreadExample",
    "ReadMetrics",
    "calibrate_threshold",
    "coco_metrics",
    "deployment_threshold",
    "evaluate_predictions",
    "load_coco_results",
    "read_coco_results",
    "read_metrics",
    "to_coco_results",
    "write_eval_report",
]
