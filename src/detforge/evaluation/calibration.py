"""Choosing the score threshold to deploy with: best F1, or the most recall at a target precision.

Both are computed over all classes together (micro average: every detection and every ground truth
box counts once, whatever its class) at the IoU of the curves (0.5 by default).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from detforge.errors import DetforgeError
from detforge.evaluation.analysis import OperatingPoints, PRCurves, operating_points, pr_curves_from_matches
from detforge.evaluation.matching import Matches

__all__ = ["Calibration", "CalibrationError", "CalibrationMode", "calibrate_threshold", "deployment_threshold"]

CalibrationMode = Literal["f1", "precision"]


class CalibrationError(DetforgeError, ValueError):
    """No threshold meets the request (no detections, no ground truth, or a precision never reached)."""


@dataclass(frozen=True)
class Calibration:
    """A score threshold (keep detections with score >= threshold) and what it gives over all classes.

    precision, recall, f1 in [0, 1]; mode: "f1" (best F1) or "precision" (lowest threshold whose
    precision >= target_precision, i.e. the most recall at that precision).
    """

    threshold: float
    precision: float
    recall: float
    f1: float
    mode: CalibrationMode
    target_precision: float | None = None

    def to_dict(self) -> dict[str, object]:
        return {
            "threshold": self.threshold,
            "precision": self.precision,
            "recall": self.recall,
            "f1": self.f1,
            "mode": self.mode,
            "target_precision": self.target_precision,
        }


def _pooled(source: PRCurves | Matches) -> OperatingPoints:
    if isinstance(source, Matches):
        source = pr_curves_from_matches(source)
    return operating_points(source.micro.scores, source.micro.tp, source.micro.num_gt)


def calibrate_threshold(
    pr: PRCurves | Matches, *, mode: CalibrationMode = "f1", target_precision: float = 0.9
) -> Calibration:
    """The threshold that maximises micro F1 (ties: the higher threshold), or the lowest one reaching
    `target_precision` (mode="precision"). `Matches` must include IoU 0.5, at which they are then scored.

    CalibrationError when there are no detections or no ground truth, or when no threshold reaches the
    target precision (the message gives the best precision reached and its threshold).
    """
    if mode not in ("f1", "precision"):
        raise CalibrationError(f"calibrate_threshold: mode must be 'f1' or 'precision', got {mode!r}")
    points = _pooled(pr)
    if len(points.thresholds) == 0:
        raise CalibrationError("calibrate_threshold: there are no detections to choose a threshold for")
    if points.num_gt <= 0:
        raise CalibrationError("calibrate_threshold: there is no ground truth, so recall and F1 are undefined")
    if mode == "f1":
        i = points.best_f1_index()
        target: float | None = None
    else:
        if not 0.0 < target_precision <= 1.0:
            raise CalibrationError(f"calibrate_threshold: target_precision must be in (0, 1], got {target_precision}")
        reached = np.flatnonzero(points.precision >= target_precision)
        if len(reached) == 0:
            best = int(np.argmax(points.precision))
            raise CalibrationError(
                f"calibrate_threshold: no score threshold reaches precision {target_precision:.3f}; the best "
                f"precision reached is {points.precision[best]:.3f} (at threshold {points.thresholds[best]:.4f})"
            )
        i = int(reached[-1])  # thresholds descend: the last one is the lowest, with the most recall
        target = target_precision
    return Calibration(
        float(points.thresholds[i]),
        float(points.precision[i]),
        float(points.recall[i]),
        float(points.f1[i]),
        mode,
        target,
    )


def deployment_threshold(pr: PRCurves | Matches, target_precision: float | None = None) -> Calibration:
    """The score threshold to deploy a model with: the best-F1 one, or with `target_precision` the lowest
    threshold reaching that precision (the most recall at it). CalibrationError as `calibrate_threshold`."""
    if target_precision is None:
        return calibrate_threshold(pr, mode="f1")
    return calibrate_threshold(pr, mode="precision", target_precision=target_precision)
