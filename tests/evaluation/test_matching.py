"""COCO-style greedy matching and the 101-point AP, on hand-computed cases."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from detforge.errors import DatasetError
from detforge.evaluation.matching import (
    COCO_IOU_THRESHOLDS,
    RECALL_THRESHOLDS,
    class_ap,
    iou_matrix,
    match_detections,
)
from detforge.structures import Annotation, Categories, ImageRecord
from detforge.structures.detections import Detections

CATS = Categories.from_names(["cat", "dog"])  # ids 1, 2 -> labels 0, 1


def _image(i: int) -> ImageRecord:
    return ImageRecord(i, f"{i}.jpg", Path(f"{i}.jpg"), 640, 480)


def _dets(rows: list[tuple[float, int, tuple[float, float, float, float]]]) -> Detections:
    """Detections from (score, label, xyxy) rows, in the given order."""
    return Detections(
        torch.tensor([r[2] for r in rows], dtype=torch.float32).reshape(-1, 4),
        torch.tensor([r[1] for r in rows], dtype=torch.int64),
        torch.tensor([r[0] for r in rows], dtype=torch.float32),
        (480, 640),
    )


def test_iou_matrix_values_and_crowd_uses_detection_area() -> None:
    det = np.array([[0, 0, 10, 10], [0, 0, 20, 10]], dtype=np.float64)
    gt = np.array([[0, 0, 10, 10], [5, 0, 15, 10], [0, 0, 100, 100]], dtype=np.float64)
    iou = iou_matrix(det, gt, np.array([False, False, True]))
    # det 0: identical box; half-overlapping box 50/150; inside the crowd region -> 100/100
    assert iou[0] == pytest.approx([1.0, 50 / 150, 1.0])
    # det 1 (area 200): 100/200; overlap 100 / (200 + 100 - 100); crowd: 200/200
    assert iou[1] == pytest.approx([0.5, 0.5, 1.0])


def test_greedy_matching_takes_scores_in_order_and_counts_duplicates() -> None:
    anns = [Annotation(1, 1, 1, (0, 0, 100, 100)), Annotation(2, 1, 1, (200, 0, 300, 100))]
    preds = {
        1: _dets([
            (0.9, 0, (0, 0, 100, 100)),  # exact on box 1 -> TP
            (0.8, 0, (0, 0, 100, 90)),  # box 1 again (IoU 0.9) -> duplicate, FP
            (0.7, 0, (200, 0, 300, 60)),  # box 2 with IoU 0.6 -> TP at 0.5, FP at 0.75
        ])
    }  # fmt: skip
    m = match_detections([_image(1)], anns, CATS, preds, iou_thresholds=(0.5, 0.75))
    assert m.det_scores.tolist() == pytest.approx([0.9, 0.8, 0.7])
    assert m.det_gt.tolist() == [[0, -1, 1], [0, -1, -1]]
    assert m.true_positives(0.5).tolist() == [True, False, True]
    assert m.false_positives(0.75).tolist() == [False, True, True]
    cat, dog = m.per_class(0.5)
    assert (cat.num_gt, dog.num_gt) == (2, 0)
    assert cat.tp.tolist() == [True, False, True]
    assert len(dog.scores) == 0 and dog.ap() == -1.0
    with pytest.raises(ValueError, match=r"IoU threshold 0.6 was not matched; available: \[0.5, 0.75\]"):
        m.true_positives(0.6)


def test_detection_takes_the_best_overlapping_free_box_and_classes_stay_apart() -> None:
    anns = [
        Annotation(1, 1, 1, (0, 0, 100, 100)),
        Annotation(2, 1, 1, (10, 0, 110, 100)),
        Annotation(3, 1, 2, (10, 0, 110, 100)),
    ]
    preds = {1: _dets([(0.9, 0, (10, 0, 110, 100)), (0.8, 0, (10, 0, 110, 100)), (0.7, 1, (500, 0, 600, 50))])}
    m = match_detections([_image(1)], anns, CATS, preds)
    # first cat detection takes the identical box (index 1), the second the remaining cat box (IoU 0.82);
    # the dog detection is far from the dog box.
    assert m.det_gt[0].tolist() == [1, 0, -1]
    assert m.num_gt().tolist() == [2, 1]
    assert m.num_pred().tolist() == [2, 1]


def test_crowd_regions_match_without_counting_and_can_match_many_times() -> None:
    anns = [Annotation(1, 1, 1, (0, 0, 300, 300), iscrowd=True), Annotation(2, 1, 1, (400, 400, 450, 450))]
    preds = {1: _dets([(0.9, 0, (0, 0, 50, 50)), (0.8, 0, (100, 100, 150, 150)), (0.7, 0, (400, 400, 450, 450))])}
    m = match_detections([_image(1)], anns, CATS, preds)
    assert m.det_ignored[0].tolist() == [True, True, False]
    assert m.true_positives().tolist() == [False, False, True]
    assert m.false_positives().tolist() == [False, False, False]
    (cat, _) = m.per_class()
    assert cat.num_gt == 1 and cat.tp.tolist() == [True] and cat.ap() == pytest.approx(1.0)


def test_non_crowd_box_is_preferred_to_a_crowd_region() -> None:
    anns = [Annotation(1, 1, 1, (0, 0, 100, 100), iscrowd=True), Annotation(2, 1, 1, (0, 0, 100, 80))]
    m = match_detections([_image(1)], anns, CATS, {1: _dets([(0.9, 0, (0, 0, 100, 100))])})
    assert m.det_gt[0].tolist() == [1] and not m.det_ignored[0, 0]


def test_at_most_max_dets_per_image_and_class_are_kept() -> None:
    rows = [(0.1 + 0.01 * i, 0, (float(i), 0.0, i + 10.0, 10.0)) for i in range(8)]
    m = match_detections([_image(1)], [], CATS, {1: _dets(rows)}, max_dets=5)
    assert m.det_scores.tolist() == pytest.approx([0.17, 0.16, 0.15, 0.14, 0.13])


def test_class_ap_is_cocos_101_point_interpolation() -> None:
    # TP, FP, TP with 2 boxes: recall .5 at precision 1, recall 1 at precision 2/3.
    expected = (51 * 1.0 + 50 * (2 / 3)) / 101
    assert class_ap(np.array([True, False, True]), 2) == pytest.approx(expected, abs=1e-12)
    assert class_ap(np.array([False, False]), 3) == 0.0
    assert class_ap(np.array([True]), 0) == -1.0
    assert len(RECALL_THRESHOLDS) == 101 and len(COCO_IOU_THRESHOLDS) == 10


def test_bad_inputs_name_the_id() -> None:
    with pytest.raises(DatasetError, match=r"image ids \[7\]"):
        match_detections([_image(1)], [], CATS, {7: _dets([])})
    with pytest.raises(DatasetError, match=r"label 5 is outside 0..1"):
        match_detections([_image(1)], [], CATS, {1: _dets([(0.5, 5, (0, 0, 1, 1))])})
    with pytest.raises(DatasetError, match=r"annotation 3 of image 1: category id 9"):
        match_detections([_image(1)], [Annotation(3, 1, 9, (0, 0, 1, 1))], CATS, {})
    with pytest.raises(DatasetError, match=r"annotation 4: image id 2 is not among"):
        match_detections([_image(1)], [Annotation(4, 2, 1, (0, 0, 1, 1))], CATS, {})


@pytest.mark.parametrize("max_dets", [100, 5])
def test_vectorised_matching_equals_the_image_by_image_loop(max_dets: int) -> None:
    # All images and classes are matched in lockstep; the result must be the first implementation's exactly.
    from evaluation._reference import random_case, reference_match

    for seed in range(3):
        case = random_case(seed)
        got = match_detections(*case, iou_thresholds=COCO_IOU_THRESHOLDS, max_dets=max_dets)
        want = reference_match(*case, iou_thresholds=COCO_IOU_THRESHOLDS, max_dets=max_dets)
        assert got.image_ids == want.image_ids
        for field in ("det_image", "det_labels", "det_scores", "det_boxes", "det_gt", "det_ignored",
                      "gt_image", "gt_labels", "gt_boxes", "gt_crowd", "gt_ids"):  # fmt: skip
            a, b = getattr(got, field), getattr(want, field)
            assert a.dtype == b.dtype and np.array_equal(a, b), field
        assert got.det_ignored.any() and (got.det_gt >= 0).any()
