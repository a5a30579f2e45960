"""The analyses of `evaluate_predictions` reuse the COCO evaluation's matching instead of matching again."""

from __future__ import annotations

import numpy as np
import pytest

from detforge.evaluation import matching
from detforge.evaluation.analysis import confusion_from_matches, pr_curves_from_matches
from detforge.evaluation.bootstrap import bootstrap_from_matches
from detforge.evaluation.detection_table import DetectionTable
from detforge.evaluation.error_analysis import errors_from_matches
from detforge.evaluation.evaluate_predictions import _coco_evaluation, evaluate_predictions
from detforge.evaluation.matching import COCO_IOU_THRESHOLDS, match_detections, matches_from_coco
from evaluation._reference import random_case
from evaluation.test_bootstrap import _synthetic

_FIELDS = ("det_image", "det_labels", "det_scores", "det_boxes", "det_gt", "det_ignored",
           "gt_image", "gt_labels", "gt_boxes", "gt_crowd", "gt_ids")  # fmt: skip


@pytest.mark.parametrize("case", ["random-0", "random-1", "random-2", "random-3", "float-boxes", "float-crowd"])
def test_matches_from_coco_equal_match_detections(case: str) -> None:
    # Crowd regions, empty and negative-size boxes, score ties (random_case), and float boxes (_synthetic).
    kind, arg = case.split("-")
    data = random_case(int(arg)) if kind == "random" else _synthetic(80, seed=6, crowd=arg == "crowd")
    images, anns, cats, preds = data
    table = DetectionTable.from_detections(preds)
    want = match_detections(images, anns, cats, table, iou_thresholds=COCO_IOU_THRESHOLDS)
    got = matches_from_coco(images, anns, cats, table, _coco_evaluation(images, anns, cats, table)[1])
    assert (got.image_ids, got.iou_thresholds, got.categories) == (want.image_ids, want.iou_thresholds, want.categories)
    for name in _FIELDS:
        a, b = getattr(got, name), getattr(want, name)
        assert a.dtype == b.dtype and np.array_equal(a, b), name
    assert int((want.det_gt >= 0).sum()) > 0


def test_evaluate_predictions_matches_once(monkeypatch: pytest.MonkeyPatch) -> None:
    images, anns, cats, preds = random_case(5)
    matches = match_detections(images, anns, cats, preds, iou_thresholds=COCO_IOU_THRESHOLDS)
    pr = pr_curves_from_matches(matches)

    def no_second_matching(*args: object, **kwargs: object) -> None:
        raise AssertionError("evaluate_predictions matched the detections a second time")

    monkeypatch.setattr(matching, "match_to_ground_truth", no_second_matching)
    got = evaluate_predictions(images, anns, cats, preds, bootstrap_n=30, seed=2)
    assert got.pr.to_dict() == pr.to_dict()
    assert got.errors.to_dict() == errors_from_matches(matches).to_dict()
    assert got.bootstrap == bootstrap_from_matches(matches, n=30, seed=2)
    want_confusion = confusion_from_matches(matches, score_threshold=got.score_threshold)
    assert np.array_equal(got.confusion.matrix, want_confusion.matrix)
