"""ATSS: adaptive training sample selection (Zhang et al. 2020), for the points of an anchor-free head.

Each point stands for a square "anchor" of side `anchor_scale * stride` centred on it. For every
ground-truth box, the `top_k` points of each level whose centres are nearest to the box centre are
candidates; the IoU threshold is the mean plus the standard deviation of the candidates' anchor IoUs,
and a candidate is positive when its IoU reaches the threshold and its centre lies inside the box.
A point positive for several boxes takes the one its anchor overlaps most.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor
from torchvision.ops import box_iou

__all__ = ["Assignment", "assign_atss"]

_INSIDE_EPS = 1e-2  # px: a centre must be at least this far inside the box


@dataclass(frozen=True)
class Assignment:
    """Per point (A points): gt_index [A] int64, the matched ground-truth box or -1 (background);
    labels [A] int64, its class (0..K-1) or -1; boxes [A, 4] float32 XYXY px of the matched box (zeros for
    background)."""

    gt_index: Tensor
    labels: Tensor
    boxes: Tensor

    @property
    def positive(self) -> Tensor:
        """[A] bool: points assigned to a box."""
        return self.gt_index >= 0


def assign_atss(
    points: Tensor,
    strides: Tensor,
    level_sizes: list[int],
    gt_boxes: Tensor,
    gt_labels: Tensor,
    *,
    top_k: int = 9,
    anchor_scale: float = 5.0,
) -> Assignment:
    """Assign the points ([A, 2] x, y px; strides [A]; level_sizes: points per level, summing to A, in order)
    to the ground truth (gt_boxes [G, 4] XYXY px, gt_labels [G] int64). See the module docstring."""
    num_points = points.shape[0]
    if sum(level_sizes) != num_points:
        raise ValueError(f"assign_atss: level_sizes sum to {sum(level_sizes)}, but there are {num_points} points")
    gt_index = torch.full((num_points,), -1, dtype=torch.int64, device=points.device)
    if gt_boxes.shape[0] == 0:
        return Assignment(gt_index, gt_index.clone(), points.new_zeros((num_points, 4)))
    half = (anchor_scale * strides / 2)[:, None]  # [A, 1]
    anchors = torch.cat((points - half, points + half), dim=1)  # [A, 4]
    ious = box_iou(anchors, gt_boxes)  # [A, G]
    gt_centres = (gt_boxes[:, :2] + gt_boxes[:, 2:]) / 2  # [G, 2]
    distances = torch.cdist(points, gt_centres)  # [A, G]

    candidates = []
    start = 0
    for size in level_sizes:
        k = min(top_k, size)
        if k > 0:
            nearest = distances[start : start + size].topk(k, dim=0, largest=False).indices  # [k, G]
            candidates.append(nearest + start)
        start += size
    candidate_index = torch.cat(candidates)  # [C, G], C = candidates per box
    candidate_iou = ious.gather(0, candidate_index)  # [C, G]
    threshold = candidate_iou.mean(0) + candidate_iou.std(0) if candidate_index.shape[0] > 1 else candidate_iou[0]

    candidate_points = points[candidate_index]  # [C, G, 2]
    inside = (
        torch.minimum(candidate_points - gt_boxes[None, :, :2], gt_boxes[None, :, 2:] - candidate_points).amin(dim=2)
        > _INSIDE_EPS
    )  # [C, G]
    chosen = (candidate_iou >= threshold[None, :]) & inside  # [C, G]

    # IoU of (point, box) where the box chose the point, -1 elsewhere; each point keeps its best box
    score = torch.full_like(ious, -1.0)
    columns = torch.arange(gt_boxes.shape[0], device=points.device).expand_as(candidate_index)
    score[candidate_index[chosen], columns[chosen]] = candidate_iou[chosen]
    best_iou, best_gt = score.max(dim=1)
    positive = best_iou >= 0
    gt_index = torch.where(positive, best_gt, gt_index)
    labels = torch.where(positive, gt_labels[best_gt], torch.full_like(gt_index, -1))
    boxes = torch.where(positive[:, None], gt_boxes[best_gt], torch.zeros_like(anchors))
    return Assignment(gt_index, labels, boxes)
