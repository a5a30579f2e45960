"""TIDE-style error breakdown: one hand-built image with one error of each type."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from detforge.evaluation.error_analysis import ERROR_TYPES, FIX_NAMES, error_breakdown
from detforge.structures import Annotation, Categories, ImageRecord
from detforge.structures.detections import Detections

CATS = Categories.from_names(["a", "b"])  # ids 1, 2 -> labels 0, 1
IMAGES = [ImageRecord(1, "1.jpg", Path("1.jpg"), 800, 800), ImageRecord(2, "2.jpg", Path("2.jpg"), 800, 800)]
A1, A2, A3 = (0, 0, 100, 100), (0, 200, 100, 300), (400, 0, 500, 100)
B1, B2 = (200, 0, 300, 100), (200, 200, 300, 300)
ANNS = [
    Annotation(1, 1, 1, A1),
    Annotation(2, 1, 1, A2),
    Annotation(3, 1, 1, A3),
    Annotation(4, 1, 2, B1),
    Annotation(5, 1, 2, B2),
]
# (score, label, box, what it is)
ROWS = [
    (0.95, 0, A1, "true positive"),
    (0.90, 0, (0, 0, 100, 90), "duplicate of A1 (IoU 0.9)"),
    (0.85, 0, B1, "classification: an 'a' exactly on B1"),
    (0.80, 1, (200, 200, 300, 240), "localisation: IoU 0.4 with B2"),
    (0.75, 1, (400, 0, 500, 30), "both: IoU 0.3 with A3, another class"),
    (0.70, 0, (600, 600, 650, 650), "background"),
    (0.60, 0, A2, "true positive"),
]
PREDS = {
    1: Detections(
        torch.tensor([r[2] for r in ROWS], dtype=torch.float32),
        torch.tensor([r[1] for r in ROWS]),
        torch.tensor([r[0] for r in ROWS], dtype=torch.float32),
        (800, 800),
    ),
    2: Detections(torch.tensor([[5.0, 5, 50, 50]]), torch.tensor([1]), torch.tensor([0.5]), (800, 800)),
}


def _ap101(tp: list[bool], num_gt: int) -> float:
    """Independent COCO 101-point AP of a score-sorted TP/FP list."""
    points, hits = [], 0
    for n, t in enumerate(tp, start=1):
        hits += t
        points.append((hits / num_gt, hits / n))
    total = 0.0
    for r in np.linspace(0, 1, 101):
        reachable = [p for rec, p in points if rec >= r]
        total += max(reachable) if reachable else 0.0
    return total / 101


T, F = True, False


def test_each_false_positive_gets_its_type_and_misses_are_counted() -> None:
    errors = error_breakdown(IMAGES, ANNS, CATS, PREDS)
    # image 2 has no ground truth: its detection is a background error too. A3 is the only miss: B1 and B2
    # are the targets of the classification and localisation errors, A1 and A2 are found.
    assert dict(errors.counts) == {
        "classification": 1, "localisation": 1, "both": 1, "duplicate": 1, "background": 2, "missed": 1,
    }  # fmt: skip
    assert (errors.num_true_positives, errors.num_false_positives, errors.num_gt) == (2, 6, 5)
    # matches are ordered by image, class, descending score: a .95 .90 .85 .70 .60, b .80 .75, image 2
    assert errors.detection_types.tolist() == [-1, 3, 0, 4, -1, 1, 2, 4]
    assert errors.missed_gt.tolist() == [False, False, True, False, False]
    as_dict: Any = errors.to_dict()
    assert set(as_dict["delta_ap50"]) == set(FIX_NAMES) and tuple(errors.counts) == ERROR_TYPES


def test_ap50_gain_of_each_oracle_fix() -> None:
    errors = error_breakdown(IMAGES, ANNS, CATS, PREDS)
    # class a (3 boxes): .95 T, .90 dup, .85 cls, .70 bkg, .60 T; class b (2 boxes): .80 loc, .75 both, .50 bkg.
    base_a, base_b = _ap101([T, F, F, F, T], 3), _ap101([F, F, F], 2)
    base = (base_a + base_b) / 2
    assert errors.ap50 == pytest.approx(base, abs=1e-12)
    expected = {
        # the 'a' on B1 becomes B1's true positive in class b
        "classification": (_ap101([T, F, F, T], 3) + _ap101([T, F, F, F], 2)) / 2,
        # the localisation error becomes B2's true positive
        "localisation": (base_a + _ap101([T, F, F], 2)) / 2,
        "both": (base_a + _ap101([F, F], 2)) / 2,
        "duplicate": (_ap101([T, F, F, T], 3) + base_b) / 2,
        "background": (_ap101([T, F, F, T], 3) + _ap101([F, F], 2)) / 2,
        "missed": (_ap101([T, F, F, F, T], 2) + base_b) / 2,
        "false_positives": (_ap101([T, T], 3) + 0.0) / 2,
        "false_negatives": _ap101([T, F, F, F, T], 2),  # class b has no matched box left: out of the mean
    }
    for name, value in expected.items():
        assert errors.delta_ap50[name] == pytest.approx(value - base, abs=1e-12), name
    assert errors.delta_ap50["classification"] > 0.2


def test_no_detections_means_only_misses() -> None:
    errors = error_breakdown(IMAGES, ANNS, CATS, {})
    assert dict(errors.counts) == dict.fromkeys(ERROR_TYPES, 0) | {"missed": 5}
    assert errors.ap50 == 0.0
    assert errors.delta_ap50["missed"] == 0.0  # every class loses all its boxes: nothing left to average


def test_thresholds_are_validated() -> None:
    with pytest.raises(ValueError, match="background_iou <= foreground_iou"):
        error_breakdown(IMAGES, ANNS, CATS, PREDS, foreground_iou=0.3, background_iou=0.5)


@pytest.mark.parametrize(("fg", "bg", "pairs_at_once"), [(0.5, 0.1, 1 << 16), (0.75, 0.0, 1 << 16), (0.5, 0.1, 7)])
def test_vectorised_error_types_equal_the_image_by_image_loop(
    fg: float, bg: float, pairs_at_once: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    from detforge.evaluation import error_analysis
    from detforge.evaluation.error_analysis import errors_from_matches
    from detforge.evaluation.matching import COCO_IOU_THRESHOLDS, match_detections
    from evaluation._reference import random_case, reference_error_types

    monkeypatch.setattr(error_analysis, "_PAIRS_AT_ONCE", pairs_at_once)  # 7: many small blocks, some partial
    for seed in range(3):
        matches = match_detections(*random_case(seed), iou_thresholds=COCO_IOU_THRESHOLDS)
        got = errors_from_matches(matches, foreground_iou=fg, background_iou=bg).detection_types
        want = reference_error_types(matches, fg, bg)
        assert np.array_equal(got, want) and len(np.unique(want)) >= 4
