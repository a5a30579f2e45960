"""Training losses of the one-stage family (Generalized Focal Loss, Li et al. 2020) and their assembly.

- Quality focal loss: per point and class, binary cross-entropy of the sigmoid score against a soft
  target (the IoU of the predicted box with its assigned box for the assigned class, 0 elsewhere),
  scaled by |score - target| ** beta.
- Distribution focal loss: per side, cross-entropy towards the two bins around the true distance,
  weighted by closeness (a distance of 2.3 strides: 0.7 on bin 2, 0.3 on bin 3).
- GIoU loss of the decoded boxes (torchvision's `generalized_box_iou_loss`).
Box losses are weighted per positive point by its predicted quality (detached) and averaged over that
weight; the quality focal loss is averaged over the positive count. Under data parallelism both
normalisers are the mean over the processes, so every process's gradients are scaled alike.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor
from torch import distributed as dist
from torch.nn import functional as F
from torchvision.ops import generalized_box_iou_loss

from detforge.models.onestage.assigner import Assignment, assign_atss
from detforge.models.onestage.coding import boxes_to_distances, distances_to_boxes, expected_distance
from detforge.models.onestage.model import HeadOutput

__all__ = ["LossWeights", "distribution_focal_loss", "one_stage_losses", "paired_iou", "quality_focal_loss"]


@dataclass(frozen=True)
class LossWeights:
    """Multipliers of the three terms (GFL's defaults) and QFL's beta."""

    quality: float = 1.0
    distribution: float = 0.25
    giou: float = 2.0
    beta: float = 2.0


def quality_focal_loss(logits: Tensor, labels: Tensor, quality: Tensor, *, beta: float = 2.0) -> Tensor:
    """Summed QFL of logits [N, K] against labels [N] (0..K-1, or -1 for background) and quality [N] in [0, 1]
    (the target score of the labelled class). Returns a scalar."""
    target = torch.zeros_like(logits)
    positive = labels >= 0
    target[positive, labels[positive]] = quality[positive].to(logits.dtype)
    bce = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
    return (bce * (logits.sigmoid() - target).abs().pow(beta)).sum()


def distribution_focal_loss(logits: Tensor, target: Tensor) -> Tensor:
    """Per-row DFL: logits [N, R + 1] over the bins 0..R, target [N] distances in [0, R) -> [N]."""
    left = target.floor().long()
    right = left + 1
    weight_left = right.to(target.dtype) - target
    weight_right = target - left.to(target.dtype)
    return (
        F.cross_entropy(logits, left, reduction="none") * weight_left
        + F.cross_entropy(logits, right, reduction="none") * weight_right
    )


def one_stage_losses(
    output: HeadOutput,
    points: Tensor,
    strides: Tensor,
    level_sizes: list[int],
    gt_boxes: list[Tensor],
    gt_labels: list[Tensor],
    weights: LossWeights = LossWeights(),
) -> dict[str, Tensor]:
    """The three loss terms of a batch: output (cls [B, A, K], reg [B, A, 4, R + 1]) for points [A, 2] px with
    strides [A] (level_sizes points per level); per image gt_boxes [G_i, 4] XYXY px of the padded input and
    gt_labels [G_i]. Returns {"loss_quality", "loss_distribution", "loss_giou"} scalars."""
    batch, _, num_classes = output.cls.shape
    reg_max = output.reg.shape[-1] - 1
    assignments: list[Assignment] = [
        assign_atss(points, strides, level_sizes, boxes, labels)
        for boxes, labels in zip(gt_boxes, gt_labels, strict=True)
    ]
    positive = torch.stack([a.positive for a in assignments])  # [B, A]
    labels = torch.stack([a.labels for a in assignments])  # [B, A]
    target_boxes = torch.stack([a.boxes for a in assignments])[positive]  # [P, 4]

    reg = output.reg[positive]  # [P, 4, R + 1]
    pos_points = points.expand(batch, -1, -1)[positive]  # [P, 2]
    pos_strides = strides.expand(batch, -1)[positive][:, None]  # [P, 1]
    pred_boxes = distances_to_boxes(pos_points, expected_distance(reg.float()) * pos_strides)  # [P, 4]
    quality = torch.zeros_like(labels, dtype=torch.float32)
    if pred_boxes.shape[0]:
        quality[positive] = paired_iou(pred_boxes.detach(), target_boxes)

    box_weight = output.cls[positive].detach().float().sigmoid().amax(dim=1)  # [P]
    num_positive, weight_sum = _mean_over_processes(float(positive.sum()), box_weight.sum())
    num_positive = max(num_positive, 1.0)
    weight_sum = weight_sum.clamp(min=1e-6)
    cls = output.cls.reshape(-1, num_classes).float()
    loss_quality = quality_focal_loss(cls, labels.reshape(-1), quality.reshape(-1), beta=weights.beta) / num_positive
    if pred_boxes.shape[0] == 0:
        zero = output.reg.sum() * 0.0
        return {"loss_quality": loss_quality * weights.quality, "loss_distribution": zero, "loss_giou": zero}

    giou = generalized_box_iou_loss(pred_boxes, target_boxes, reduction="none")
    loss_giou = (giou * box_weight).sum() / weight_sum
    distances = boxes_to_distances(pos_points, target_boxes) / pos_strides  # [P, 4] in strides
    distances = distances.clamp(min=0.0, max=reg_max - 0.01)
    dfl = distribution_focal_loss(reg.reshape(-1, reg_max + 1).float(), distances.reshape(-1))  # [4P]
    loss_distribution = (dfl.reshape(-1, 4).mean(dim=1) * box_weight).sum() / weight_sum
    return {
        "loss_quality": loss_quality * weights.quality,
        "loss_distribution": loss_distribution * weights.distribution,
        "loss_giou": loss_giou * weights.giou,
    }


def paired_iou(a: Tensor, b: Tensor) -> Tensor:
    """IoU of a[i] with b[i] for XYXY boxes a, b [P, 4] -> [P] in [0, 1] (memory O(P), not O(P²))."""
    top_left = torch.maximum(a[:, :2], b[:, :2])
    bottom_right = torch.minimum(a[:, 2:], b[:, 2:])
    inter = (bottom_right - top_left).clamp(min=0.0).prod(dim=1)
    area_a = (a[:, 2:] - a[:, :2]).clamp(min=0.0).prod(dim=1)
    area_b = (b[:, 2:] - b[:, :2]).clamp(min=0.0).prod(dim=1)
    union = area_a + area_b - inter
    return torch.where(union > 0, inter / union.clamp(min=1e-12), torch.zeros_like(inter)).clamp(0.0, 1.0)


def _mean_over_processes(count: float, weight_sum: Tensor) -> tuple[float, Tensor]:
    """(count, weight_sum) averaged over the data-parallel processes (unchanged in a single process). Every
    process calls this once per batch, whether or not it has positives, so the collective never hangs."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return count, weight_sum
    both = torch.stack([torch.tensor(count, device=weight_sum.device, dtype=torch.float32), weight_sum.float()])
    dist.all_reduce(both)
    both /= dist.get_world_size()
    return float(both[0]), both[1]
