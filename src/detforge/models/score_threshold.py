"""Storing a calibrated score threshold in a model artifact (the threshold predict and serve then use)."""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

from detforge.models.artifact import load_model, save_model

__all__ = ["store_score_threshold"]

log = logging.getLogger(__name__)


def store_score_threshold(model: str | Path, threshold: float) -> float:
    """Write `threshold` (in [0, 1]) as the calibrated deployment score threshold of the artifact `model`
    (`ModelSpec.score_threshold_calibrated` becomes True), atomically;
    the weights and every other setting stay as they are. Returns the stored threshold.

    Raises what `load_model` raises for a file that is not a model artifact, and ValueError for a
    threshold outside [0, 1].
    """
    detector, spec = load_model(model)
    save_model(model, detector, replace(spec, score_threshold=float(threshold), score_threshold_calibrated=True))
    log.info("stored score threshold %.3f in %s", threshold, model)
    return float(threshold)
