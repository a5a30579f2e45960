"""ATSS on hand-made points: which points become positive for which box."""

from __future__ import annotations

import torch

from detforge.models.onestage.assigner import assign_atss
from detforge.models.onestage.model import anchor_points, level_sizes


def _boxes(*rows: list[float]) -> torch.Tensor:
    return torch.tensor(rows, dtype=torch.float32)


def test_the_mean_plus_std_threshold_keeps_only_the_well_overlapping_point() -> None:
    # anchors of side 2.5 * 8 = 20: p0's anchor is the box itself (IoU 1), p1's and p2's touch it (IoU 0)
    points = _boxes([10, 10], [30, 10], [10, 30])
    strides = torch.full((3,), 8.0)
    result = assign_atss(points, strides, [3], _boxes([0, 0, 20, 20]), torch.tensor([4]), top_k=3, anchor_scale=2.5)
    # IoUs [1, 0, 0]: threshold 1/3 + std 0.577 = 0.91, so only p0
    assert result.gt_index.tolist() == [0, -1, -1]
    assert result.labels.tolist() == [4, -1, -1]
    assert result.boxes[0].tolist() == [0, 0, 20, 20] and not result.boxes[1:].any()


def test_equally_close_candidates_inside_the_box_all_become_positive() -> None:
    # one level of 4x4 points at stride 8; the box's centre (16, 16) is equally far from the 4 middle points,
    # whose 40 px anchors overlap it equally: std 0, so all 4 reach the threshold and lie inside
    grid = torch.arange(4, dtype=torch.float32) * 8 + 4
    points = torch.cartesian_prod(grid, grid)
    strides = torch.full((16,), 8.0)
    result = assign_atss(points, strides, [16], _boxes([8, 8, 24, 24]), torch.tensor([0]), top_k=4)
    positive = sorted(tuple(p) for p in points[result.positive].tolist())
    assert positive == [(12.0, 12.0), (12.0, 20.0), (20.0, 12.0), (20.0, 20.0)]


def test_a_point_chosen_by_two_boxes_takes_the_one_it_overlaps_most() -> None:
    points = _boxes([10, 10], [50, 10], [90, 10])
    strides = torch.full((3,), 8.0)
    # both boxes contain p0; its 20 px anchor is box 1 exactly (IoU 1) and half of box 0
    gt = _boxes([0, 0, 40, 20], [0, 0, 20, 20])
    result = assign_atss(points, strides, [3], gt, torch.tensor([0, 1]), top_k=1, anchor_scale=2.5)
    assert result.gt_index.tolist() == [1, -1, -1]
    assert result.labels.tolist() == [1, -1, -1]


def test_candidates_are_taken_per_level() -> None:
    # level 0: three points near the centre of the box (20 px anchors, IoU 400/576 each); levels 1 and 2:
    # one far point each (IoU 0). With top_k=1 per level only p0 of level 0 is a candidate: IoUs
    # [0.69, 0, 0], threshold 0.23 + 0.40 = 0.63, so p0 alone is positive; p1 and p2 are never candidates
    # (had the 3 nearest points been taken over all levels, all three would have been positive).
    points = _boxes([12, 12], [14, 12], [10, 12], [60, 60], [100, 100])
    strides = torch.tensor([8.0, 8.0, 8.0, 16.0, 32.0])
    result = assign_atss(
        points, strides, [3, 1, 1], _boxes([0, 0, 24, 24]), torch.tensor([2]), top_k=1, anchor_scale=2.5
    )
    assert result.gt_index.tolist() == [0, -1, -1, -1, -1]


def test_no_boxes_means_every_point_is_background() -> None:
    points, strides = anchor_points(64, 96)
    result = assign_atss(points, strides, level_sizes(64, 96), torch.zeros((0, 4)), torch.zeros(0, dtype=torch.long))
    assert points.shape == (8 * 12 + 4 * 6 + 2 * 3, 2)
    assert not result.positive.any() and (result.labels == -1).all()


def test_every_box_of_a_real_grid_gets_positives_inside_it() -> None:
    points, strides = anchor_points(128, 160)
    gt = _boxes([5, 7, 40, 30], [60, 20, 150, 120], [100, 90, 118, 126])
    result = assign_atss(points, strides, level_sizes(128, 160), gt, torch.tensor([0, 1, 0]))
    for g in range(3):
        mine = points[result.gt_index == g]
        assert len(mine) > 0, f"box {g} got no positive point"
        box = gt[g]
        inside = (mine[:, 0] > box[0]) & (mine[:, 0] < box[2]) & (mine[:, 1] > box[1]) & (mine[:, 1] < box[3])
        assert bool(inside.all())
