"""PR / F1 curves, confusion matrix and per-class table on hand-computed cases."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from detforge.evaluation.analysis import confusion_matrix, operating_points, per_class_table, pr_curves
from detforge.evaluation.metrics import CocoMetrics
from detforge.structures import Annotation, Categories, ImageRecord
from detforge.structures.detections import Detections

CATS = Categories.from_names(["a", "b"])  # ids 1, 2 -> labels 0, 1
IMAGES = [ImageRecord(1, "1.jpg", Path("1.jpg"), 800, 600)]


def _dets(rows: list[tuple[float, int, tuple[float, float, float, float]]]) -> dict[int, Detections]:
    return {
        1: Detections(
            torch.tensor([r[2] for r in rows], dtype=torch.float32).reshape(-1, 4),
            torch.tensor([r[1] for r in rows], dtype=torch.int64),
            torch.tensor([r[0] for r in rows], dtype=torch.float32),
            (600, 800),
        )
    }


def test_operating_points_use_the_end_of_each_score_tie() -> None:
    points = operating_points(np.array([0.9, 0.8, 0.8, 0.5]), np.array([True, True, False, False]), 4)
    assert points.thresholds.tolist() == [0.9, 0.8, 0.5]
    assert points.precision.tolist() == pytest.approx([1.0, 2 / 3, 0.5])
    assert points.recall.tolist() == pytest.approx([0.25, 0.5, 0.5])
    assert points.f1.tolist() == pytest.approx([0.4, 4 / 7, 0.5])
    assert points.best_f1() == pytest.approx((4 / 7, 0.8))


def test_pr_curves_per_class_and_pooled() -> None:
    anns = [Annotation(1, 1, 1, (0, 0, 100, 100)), Annotation(2, 1, 1, (200, 0, 300, 100))]
    anns.append(Annotation(3, 1, 2, (400, 0, 500, 100)))
    preds = _dets([
        (0.9, 0, (0, 0, 100, 100)),  # a: TP
        (0.6, 0, (600, 0, 700, 100)),  # a: FP
        (0.4, 0, (200, 0, 300, 100)),  # a: TP
        (0.7, 1, (400, 0, 500, 100)),  # b: TP
    ])  # fmt: skip
    pr = pr_curves(IMAGES, anns, CATS, preds)
    a, b = pr.classes
    assert (a.num_gt, a.num_pred, b.num_gt, b.num_pred) == (2, 3, 1, 1)
    assert a.points.precision.tolist() == pytest.approx([1.0, 0.5, 2 / 3])
    assert a.points.recall.tolist() == pytest.approx([0.5, 0.5, 1.0])
    assert a.ap50 == pytest.approx((51 + 50 * 2 / 3) / 101)
    assert (a.best_f1, a.best_threshold) == (pytest.approx(0.8), pytest.approx(0.4))
    assert (b.ap50, b.best_f1) == (pytest.approx(1.0), pytest.approx(1.0))
    precision, recall, f1 = a.at([0.95, 0.5, 0.0])
    assert np.isnan(precision[0]) and precision[1:].tolist() == pytest.approx([0.5, 2 / 3])
    assert recall.tolist() == pytest.approx([0.0, 0.5, 1.0]) and f1[0] == 0.0
    # pooled: .9 T, .7 T, .6 F, .4 T over 3 boxes -> F1 .5, .8, 2/3, 6/7
    assert pr.micro.num_gt == 3 and pr.micro.best_f1 == pytest.approx(6 / 7)
    assert pr.micro.best_threshold == pytest.approx(0.4)
    d: Any = pr.to_dict()
    assert len(d["classes"][0]["f1_at_confidence"]) == 101 and d["classes"][0]["precision_at_confidence"][-1] is None


def test_confusion_matrix_with_background_row_and_column() -> None:
    anns = [
        Annotation(1, 1, 1, (0, 0, 100, 100)),  # a, found
        Annotation(2, 1, 2, (200, 0, 300, 100)),  # b, detected as a
        Annotation(3, 1, 1, (400, 0, 500, 100)),  # a, missed (its detection is below the threshold)
        Annotation(4, 1, 2, (0, 300, 100, 400)),  # b, missed
        Annotation(5, 1, 1, (600, 300, 800, 600), iscrowd=True),  # crowd: never missed, matches silently
    ]
    preds = _dets([
        (0.9, 0, (0, 0, 100, 100)),
        (0.8, 0, (200, 0, 300, 100)),
        (0.7, 1, (600, 0, 700, 50)),  # b on nothing: background false positive
        (0.6, 0, (650, 350, 700, 400)),  # a inside the crowd region: not counted
        (0.2, 0, (400, 0, 500, 100)),  # below the threshold
    ])  # fmt: skip
    cm = confusion_matrix(IMAGES, anns, CATS, preds, score_threshold=0.5)
    assert cm.names == ("a", "b", "background")
    #                         pred a, pred b, missed
    assert cm.matrix.tolist() == [[1, 0, 1],  # gt a
                                  [1, 0, 1],  # gt b
                                  [0, 1, 0]]  # background  # fmt: skip
    assert cm.normalized()[0].tolist() == [0.5, 0.0, 0.5]
    assert confusion_matrix(IMAGES, anns, CATS, preds, score_threshold=0.1).matrix[0].tolist() == [2, 0, 0]


def test_a_correct_detection_is_not_stolen_by_a_better_overlapping_wrong_one() -> None:
    anns = [Annotation(1, 1, 1, (0, 0, 100, 100))]
    preds = _dets([(0.9, 1, (0, 0, 100, 95)), (0.8, 0, (0, 0, 100, 80))])
    cm = confusion_matrix(IMAGES, anns, CATS, preds, score_threshold=0.5)
    assert cm.matrix.tolist() == [[1, 0, 0], [0, 0, 0], [0, 1, 0]]


def test_per_class_table_rows() -> None:
    anns = [Annotation(1, 1, 1, (0, 0, 100, 100))]
    pr = pr_curves(IMAGES, anns, CATS, _dets([(0.9, 0, (0, 0, 100, 100)), (0.3, 1, (0, 0, 10, 10))]))
    metrics = CocoMetrics.from_stats([0.5] * 12, {"a": 0.7, "b": -1.0}, num_images=1, num_detections=2)
    table = per_class_table(metrics, pr)
    a, b = table.rows
    assert (a.name, a.num_gt, a.num_pred, a.ap, a.ap50, a.best_f1, a.best_threshold) == (
        "a",
        1,
        1,
        0.7,
        pytest.approx(1.0),
        pytest.approx(1.0),
        pytest.approx(0.9),
    )
    assert (b.num_gt, b.num_pred, b.ap, b.ap50, b.best_f1) == (0, 1, -1.0, -1.0, 0.0)
    text = table.to_text().splitlines()
    assert text[0].split() == ["class", "#GT", "#pred", "AP", "AP50", "F1", "thr"]
    assert text[1].split() == ["a", "1", "1", "0.700", "1.000", "1.000", "0.90"]
    rows: Any = table.to_dict()["rows"]
    assert rows[1]["best_threshold"] is None


def test_pr_curves_at_another_iou() -> None:
    anns = [Annotation(1, 1, 1, (0, 0, 100, 100))]
    preds = _dets([(0.9, 0, (0, 0, 100, 60))])  # IoU 0.6
    assert pr_curves(IMAGES, anns, CATS, preds).classes[0].ap50 == pytest.approx(1.0)
    strict = pr_curves(IMAGES, anns, CATS, preds, iou=0.75)
    assert strict.iou == 0.75 and strict.classes[0].tp.tolist() == [False]


@pytest.mark.parametrize("iou", [0.5, 0.3])
def test_vectorised_confusion_equals_the_image_by_image_loop(iou: float) -> None:
    # All images are paired in rounds at once; the counts must be the first implementation's exactly.
    from detforge.evaluation.analysis import confusion_from_matches
    from detforge.evaluation.matching import COCO_IOU_THRESHOLDS, match_detections
    from evaluation._reference import random_case, reference_confusion

    for seed in range(3):
        matches = match_detections(*random_case(seed), iou_thresholds=COCO_IOU_THRESHOLDS)
        for threshold in (0.0, 0.35, 0.8, 2.0):
            got = confusion_from_matches(matches, iou=iou, score_threshold=threshold).matrix
            assert np.array_equal(got, reference_confusion(matches, iou=iou, score_threshold=threshold))
