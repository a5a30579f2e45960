"""Post-processing on hand-made head outputs: decoding, threshold, NMS per class, cap, clipping."""

from __future__ import annotations

import pytest
import torch

from detforge.models.onestage.postprocess import select_detections

BIG = 50.0


def _sides(*strides_each_side: tuple[int, int, int, int]) -> torch.Tensor:
    """reg logits [A, 4, 8] putting all mass on the given bin of each side."""
    reg = torch.full((len(strides_each_side), 4, 8), -BIG)
    for a, bins in enumerate(strides_each_side):
        for side, b in enumerate(bins):
            reg[a, side, b] = BIG
    return reg


def _logit(p: float) -> float:
    return float(torch.logit(torch.tensor(p)))


def test_one_confident_point_decodes_to_its_box() -> None:
    points = torch.tensor([[20.0, 20.0], [60.0, 20.0]])
    strides = torch.tensor([8.0, 8.0])
    cls = torch.tensor([[_logit(0.01), _logit(0.9)], [_logit(0.02), _logit(0.03)]])  # [A=2, K=2]
    reg = _sides((1, 2, 3, 1), (1, 1, 1, 1))
    out = select_detections(
        cls, reg, points, strides, (100, 100), score_thresh=0.05, nms_thresh=0.5, detections_per_img=10
    )
    assert out.labels.tolist() == [1]
    assert out.scores.tolist() == pytest.approx([0.9])
    assert out.boxes.tolist() == [pytest.approx([12.0, 4.0, 44.0, 28.0])]  # 20 - 8, 20 - 16, 20 + 24, 20 + 8


def test_nms_is_per_class_and_the_cap_keeps_the_best() -> None:
    points = torch.tensor([[20.0, 20.0], [21.0, 20.0], [22.0, 20.0]])
    strides = torch.full((3,), 8.0)
    # p0 and p1 predict nearly the same box of class 0 (0.8 and 0.7); p2 the same box for class 1 (0.6)
    cls = torch.full((3, 2), _logit(0.001))
    cls[0, 0], cls[1, 0], cls[2, 1] = _logit(0.8), _logit(0.7), _logit(0.6)
    reg = _sides((2, 2, 2, 2), (2, 2, 2, 2), (2, 2, 2, 2))
    kwargs = {"score_thresh": 0.05, "nms_thresh": 0.5}
    out = select_detections(cls, reg, points, strides, (64, 64), detections_per_img=10, **kwargs)
    assert out.labels.tolist() == [0, 1] and out.scores.tolist() == pytest.approx([0.8, 0.6])
    capped = select_detections(cls, reg, points, strides, (64, 64), detections_per_img=1, **kwargs)
    assert capped.scores.tolist() == pytest.approx([0.8])
    loose = select_detections(
        cls, reg, points, strides, (64, 64), detections_per_img=10, score_thresh=0.05, nms_thresh=1.0
    )
    assert loose.scores.tolist() == pytest.approx([0.8, 0.7, 0.6])


def test_boxes_are_clipped_to_the_image_and_low_scores_dropped() -> None:
    points = torch.tensor([[4.0, 4.0], [28.0, 4.0]])
    cls = torch.tensor([[_logit(0.5)], [_logit(0.04)]])
    reg = _sides((7, 7, 1, 1), (1, 1, 1, 1))  # p0 reaches 56 px left and up
    out = select_detections(
        cls, reg, points, torch.full((2,), 8.0), (30, 40), score_thresh=0.05, nms_thresh=0.5, detections_per_img=5
    )
    assert out.boxes.tolist() == [pytest.approx([0.0, 0.0, 12.0, 12.0])]
    assert out.labels.tolist() == [0]
