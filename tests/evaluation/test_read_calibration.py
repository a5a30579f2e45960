"""calibrate_read_threshold on hand-made reads: the lowest threshold reaching the target precision, the best
precision when none does, and clear errors for bad input."""

from __future__ import annotations

import numpy as np
import pytest

from detforge.evaluation.read_calibration import ReadCalibration, calibrate_read_threshold


def test_lowest_threshold_reaching_the_target_trusts_the_most_reads() -> None:
    scores = [0.95, 0.9, 0.8, 0.7, 0.6, 0.5, 0.3, 0.2]
    correct = [True, True, True, False, True, True, False, True]
    cal = calibrate_read_threshold(scores, correct, 0.8)
    # at 0.5: 5 right of 6 (0.833 >= 0.8); at 0.3: 5 of 7 (0.714); at 0.2: 6 of 8 (0.75)
    assert cal == ReadCalibration(
        threshold=0.5, precision=5 / 6, coverage=6 / 8, accuracy=6 / 8, n=8, target_precision=0.8, reached_target=True
    )
    strict = calibrate_read_threshold(scores, correct, 1.0)
    assert (strict.threshold, strict.precision, strict.coverage) == (0.8, 1.0, 3 / 8)


def test_all_right_trusts_every_read() -> None:
    cal = calibrate_read_threshold(np.array([0.4, 0.9, 0.7]), np.array([True, True, True]), 0.98)
    assert (cal.threshold, cal.precision, cal.coverage, cal.accuracy) == (0.4, 1.0, 1.0, 1.0) and cal.reached_target


def test_tied_scores_are_trusted_or_not_together() -> None:
    # two reads at 0.8, one of them wrong: a threshold can only take both
    cal = calibrate_read_threshold([0.9, 0.8, 0.8, 0.1], [True, True, False, True], 0.9)
    assert (cal.threshold, cal.precision, cal.coverage) == (0.9, 1.0, 0.25)


def test_unreachable_target_takes_the_best_precision_and_says_so() -> None:
    scores = [0.9, 0.8, 0.7, 0.6, 0.5]
    correct = [False, True, True, False, True]
    cal = calibrate_read_threshold(scores, correct, 0.99)
    # precisions from the top: 0/1, 1/2, 2/3, 2/4, 3/5 -> best 2/3 at 0.7
    assert not cal.reached_target
    assert (cal.threshold, cal.precision, cal.coverage, cal.accuracy) == (0.7, 2 / 3, 3 / 5, 3 / 5)
    nothing_right = calibrate_read_threshold([0.9, 0.2], [False, False], 0.5)
    assert nothing_right.precision == 0.0 and nothing_right.threshold == 0.2 and not nothing_right.reached_target


def test_to_dict_is_json_ready() -> None:
    d = calibrate_read_threshold([0.5], [True], 0.98).to_dict()
    assert d == {
        "threshold": 0.5,
        "precision": 1.0,
        "coverage": 1.0,
        "accuracy": 1.0,
        "n": 1,
        "target_precision": 0.98,
        "reached_target": True,
    }
    assert ReadCalibration(**d) == calibrate_read_threshold([0.5], [True], 0.98)


@pytest.mark.parametrize(
    ("scores", "correct", "target", "message"),
    [
        ([], [], 0.9, "no reads"),
        ([0.5, 0.6], [True], 0.9, "2 scores and 1 flags"),
        ([1.5], [True], 0.9, r"finite numbers in \[0, 1\]"),
        ([float("nan")], [True], 0.9, r"finite numbers in \[0, 1\]"),
        ([0.5], [True], 0.0, r"target_precision in \(0, 1\]"),
        ([0.5], [True], 1.2, r"target_precision in \(0, 1\]"),
    ],
)
def test_bad_input_is_refused(scores: list[float], correct: list[bool], target: float, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        calibrate_read_threshold(scores, correct, target)
