"""Choosing a score threshold: best micro F1, or the most recall at a target precision."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from detforge.evaluation.analysis import pr_curves
from detforge.evaluation.calibration import CalibrationError, calibrate_threshold
from detforge.evaluation.matching import match_detections
from detforge.structures import Annotation, Categories, ImageRecord
from detforge.structures.detections import Detections

CATS = Categories.from_names(["a", "b"])
IMAGES = [ImageRecord(1, "1.jpg", Path("1.jpg"), 1000, 200)]
# four boxes: 3 of class a, 1 of class b
ANNS = [Annotation(i + 1, 1, 1 if i < 3 else 2, (100.0 * i, 0, 100.0 * i + 50, 50)) for i in range(4)]


def _preds(rows: list[tuple[float, int, int | None]]) -> dict[int, Detections]:
    """Rows of (score, label, index of the box hit or None for a false positive far away)."""
    boxes = [
        (100.0 * g, 0.0, 100.0 * g + 50, 50.0) if g is not None else (900.0, 100.0, 950.0, 150.0) for _, _, g in rows
    ]
    return {
        1: Detections(
            torch.tensor(boxes, dtype=torch.float32),
            torch.tensor([r[1] for r in rows]),
            torch.tensor([r[0] for r in rows], dtype=torch.float32),
            (200, 1000),
        )
    }


# pooled over classes: .95 T, .9 T, .8 F, .7 T, .6 F, .5 F, .4 T
PREDS = _preds([(0.95, 0, 0), (0.9, 1, 3), (0.8, 0, None), (0.7, 0, 1), (0.6, 1, None), (0.5, 0, None), (0.4, 0, 2)])


def test_best_f1_over_all_classes() -> None:
    cal = calibrate_threshold(pr_curves(IMAGES, ANNS, CATS, PREDS))
    # F1 at each threshold: .95: 2/5; .9: 2/3; .8: 4/7; .7: 3/4 (P 3/4, R 3/4); .6: 2/3; .5: 3/5; .4: 8/11
    assert (cal.mode, cal.threshold) == ("f1", pytest.approx(0.7))
    assert (cal.precision, cal.recall, cal.f1) == (pytest.approx(0.75), pytest.approx(0.75), pytest.approx(0.75))
    assert cal.to_dict()["target_precision"] is None


def test_lowest_threshold_reaching_the_target_precision() -> None:
    matches = match_detections(IMAGES, ANNS, CATS, PREDS)
    cal = calibrate_threshold(matches, mode="precision", target_precision=0.75)
    assert (cal.threshold, cal.precision, cal.recall) == (pytest.approx(0.7), 0.75, 0.75)
    cal = calibrate_threshold(matches, mode="precision", target_precision=1.0)
    assert (cal.threshold, cal.recall, cal.target_precision) == (pytest.approx(0.9), 0.5, 1.0)


def test_unreachable_precision_says_the_best_reached() -> None:
    preds = _preds([(0.9, 0, None), (0.8, 0, 0), (0.7, 0, None)])
    with pytest.raises(CalibrationError, match=r"reaches precision 0\.900; the best precision reached is 0\.500 "
                                               r"\(at threshold 0\.8000\)"):  # fmt: skip
        calibrate_threshold(pr_curves(IMAGES, ANNS, CATS, preds), mode="precision", target_precision=0.9)


def test_nothing_to_calibrate() -> None:
    with pytest.raises(CalibrationError, match="no detections"):
        calibrate_threshold(pr_curves(IMAGES, ANNS, CATS, {}))
    with pytest.raises(CalibrationError, match="no ground truth"):
        calibrate_threshold(pr_curves(IMAGES, [], CATS, PREDS))
    with pytest.raises(CalibrationError, match="mode must be"):
        calibrate_threshold(pr_curves(IMAGES, ANNS, CATS, PREDS), mode="recall")  # type: ignore[arg-type]


def test_f1_ties_pick_the_higher_threshold() -> None:
    # 3 boxes: .9 T (F1 1/2), .8 F (2/5), .7 T (P 2/3, R 2/3: 2/3), .6 F, .5 F, .4 T (P 1/2, R 1: 2/3 again)
    preds = _preds([(0.9, 0, 0), (0.8, 0, None), (0.7, 0, 1), (0.6, 0, None), (0.5, 0, None), (0.4, 0, 2)])
    cal = calibrate_threshold(pr_curves(IMAGES, ANNS[:3], CATS, preds))
    assert (cal.threshold, cal.f1) == (pytest.approx(0.7), pytest.approx(2 / 3))


def test_deployment_threshold_is_best_f1_or_the_target_precision_one() -> None:
    from detforge.evaluation import deployment_threshold

    pr = pr_curves(IMAGES, ANNS, CATS, PREDS)
    assert deployment_threshold(pr) == calibrate_threshold(pr, mode="f1")
    at_precision = deployment_threshold(pr, 1.0)
    assert (at_precision.mode, at_precision.threshold, at_precision.target_precision) == (
        "precision",
        pytest.approx(0.9),
        1.0,
    )
