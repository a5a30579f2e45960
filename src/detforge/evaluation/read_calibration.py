"""Choosing the text-confidence threshold (`min_score`) of a reader: below it a read counts as unsure.

A pure function of reads already made: each read's confidence and whether it was exactly right. A read
is *trusted* when its score is >= the threshold; precision is the fraction of trusted reads that are
right, coverage the fraction of all reads that are trusted.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["ReadCalibration", "calibrate_read_threshold"]


@dataclass(frozen=True)
class ReadCalibration:
    """A text-confidence threshold and what it gives on the reads it was chosen on.

    threshold: trust reads with score >= threshold (in [0, 1]).
    precision: right reads among the trusted ones; coverage: trusted reads among all `n` reads.
    accuracy: right reads among all reads (whatever their score).
    reached_target: whether `precision >= target_precision`; when False the threshold is the one with the
      best precision (the lowest such), and `precision` says how far it falls short.
    """

    threshold: float
    precision: float
    coverage: float
    accuracy: float
    n: int
    target_precision: float
    reached_target: bool

    def to_dict(self) -> dict[str, float | int | bool]:
        return {
            "threshold": self.threshold,
            "precision": self.precision,
            "coverage": self.coverage,
            "accuracy": self.accuracy,
            "n": self.n,
            "target_precision": self.target_precision,
            "reached_target": self.reached_target,
        }


def calibrate_read_threshold(
    scores: Sequence[float] | np.ndarray, correct: Sequence[bool] | np.ndarray, target_precision: float
) -> ReadCalibration:
    """The lowest threshold whose trusted reads reach `target_precision` (so the most reads are trusted at
    that precision); when none reaches it, the threshold with the best precision (the lowest one among ties),
    with `reached_target=False`.

    `scores`: each read's confidence in [0, 1]; `correct`: whether that read was exactly right (same
    length). Candidate thresholds are the scores themselves. ValueError when there are no reads, the
    lengths differ, a score is not a finite number in [0, 1], or `target_precision` is not in (0, 1].
    """
    s = np.asarray(scores, dtype=np.float64).reshape(-1)
    ok = np.asarray(correct, dtype=bool).reshape(-1)
    if s.size == 0:
        raise ValueError("no reads to calibrate the text-confidence threshold on")
    if s.size != ok.size:
        raise ValueError(f"expected one correct flag per score, got {s.size} scores and {ok.size} flags")
    if not np.isfinite(s).all() or (s < 0).any() or (s > 1).any():
        raise ValueError("expected read scores that are finite numbers in [0, 1]")
    if not (isinstance(target_precision, int | float) and math.isfinite(target_precision)):
        raise ValueError(f"expected target_precision in (0, 1], got {target_precision!r}")
    if not 0.0 < target_precision <= 1.0:
        raise ValueError(f"expected target_precision in (0, 1], got {target_precision!r}")
    order = np.argsort(-s, kind="stable")
    s_sorted, ok_sorted = s[order], ok[order]
    # at threshold t = s_sorted[i], the trusted reads are every read with score >= t: the prefix up to the
    # last read of that score
    last = np.r_[np.nonzero(np.diff(s_sorted))[0], s.size - 1]  # last index of each distinct score
    trusted = last + 1
    right = np.cumsum(ok_sorted)[last]
    precision = right / trusted
    reached = precision >= target_precision - 1e-12
    # distinct scores run high -> low: the last candidate that qualifies is the lowest threshold
    candidates = reached if reached.any() else precision == precision.max()
    pick = int(np.nonzero(candidates)[0][-1])
    return ReadCalibration(
        threshold=float(s_sorted[last[pick]]),
        precision=float(precision[pick]),
        coverage=float(trusted[pick] / s.size),
        accuracy=float(ok.mean()),
        n=int(s.size),
        target_precision=float(target_precision),
        reached_target=bool(reached[pick]),
    )
