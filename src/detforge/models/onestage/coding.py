"""Box coding of the GFL head: a box is a point plus its distances to the 4 sides (left, top, right, bottom)."""

from __future__ import annotations

import torch
from torch import Tensor
from torch.nn import functional as F

__all__ = ["boxes_to_distances", "distances_to_boxes", "expected_distance"]


def expected_distance(reg: Tensor) -> Tensor:
    """The mean of each side's distribution: reg [..., 4, R + 1] logits over 0..R -> [..., 4] (units of stride)."""
    bins = torch.arange(reg.shape[-1], dtype=reg.dtype, device=reg.device)
    return (F.softmax(reg, dim=-1) * bins).sum(-1)


def distances_to_boxes(points: Tensor, distances: Tensor) -> Tensor:
    """points [..., 2] x, y px and distances [..., 4] px (left, top, right, bottom) -> boxes [..., 4] XYXY px."""
    return torch.cat((points - distances[..., :2], points + distances[..., 2:]), dim=-1)


def boxes_to_distances(points: Tensor, boxes: Tensor) -> Tensor:
    """points [..., 2] x, y px and boxes [..., 4] XYXY px -> distances [..., 4] px (left, top, right, bottom)."""
    return torch.cat((points - boxes[..., :2], boxes[..., 2:] - points), dim=-1)
