"""Evaluation: COCO metrics (bbox and segm) of detections against ground truth."""

from detforge.evaluation.coco import CocoEvaluator
from detforge.evaluation.metrics import STAT_NAMES, CocoMetrics

__all__ = ["STAT_NAMES", "CocoEvaluator", "CocoMetrics"]
