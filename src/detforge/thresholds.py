"""The default detection score thresholds, in one place (a leaf: every stage may import it).

A detection's score is in [0, 1]. Two different thresholds apply to it:

- `DEFAULT_SCORE_THRESHOLD` is the operating point: the score from which a detection counts as found
  when a model has no calibrated threshold. A trained model's artifact holds it until
  `detforge eval --calibrate` (or `train.calibrate`) replaces it with the best-F1 threshold measured on
  validation data (and records that it did: `ModelSpec.score_threshold_calibrated`). `predict`, `serve`
  and `index` keep detections from the model's threshold up; the evaluation report draws its confusion
  matrix and worst-image gallery at it when none was calibrated.
- `EVAL_SCORE_THRESHOLD` is the floor of what a detector returns while it is measured: AP integrates
  precision over every score, so evaluation keeps detections far below any operating point, and drops
  only those too weak to change AP (the config key `eval.score_threshold`, the detector's post-processing
  `score_thresh` in evaluation, and the lowest box score whose text `eval` reads).
"""

from __future__ import annotations

__all__ = ["DEFAULT_SCORE_THRESHOLD", "EVAL_SCORE_THRESHOLD"]

DEFAULT_SCORE_THRESHOLD = 0.5
"""Operating score threshold of a model without a calibrated one (see the module docstring)."""

EVAL_SCORE_THRESHOLD = 0.05
"""Lowest score a detector returns while it is evaluated (see the module docstring)."""
