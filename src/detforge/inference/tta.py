"""Test-time augmentation by horizontal flip, and merging several detection sets of one image.

A detector sees the image and its mirror; boxes found on the mirror are flipped back and both sets
are merged per class, by NMS (keep the best box of each overlapping group) or by weighted boxes
(average the group's coordinates weighted by score).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Literal, get_args

import torch
from torch import Tensor
from torchvision.ops import batched_nms, box_iou

from detforge.structures.detections import Detections

__all__ = ["MergeMethod", "flip_detections", "merge_detections", "predict_flip_tta"]

MergeMethod = Literal["nms", "weighted"]


def flip_detections(detections: Detections) -> Detections:
    """The detections mirrored left-right in their own frame: x -> W - x for boxes, masks flipped too."""
    width = detections.image_size[1]
    boxes = detections.boxes
    flipped = torch.stack((width - boxes[:, 2], boxes[:, 1], width - boxes[:, 0], boxes[:, 3]), dim=1)
    masks = None if detections.masks is None else torch.flip(detections.masks, dims=[2])
    return Detections(flipped.contiguous(), detections.labels, detections.scores, detections.image_size, masks)


def _weighted_boxes(boxes: Tensor, labels: Tensor, scores: Tensor, keep: Tensor, iou_threshold: float) -> Tensor:
    """For each kept box: the score-weighted mean of all same-class boxes overlapping it by IoU > iou_threshold
    and not claimed by a better kept box. [len(keep), 4]."""
    iou = box_iou(boxes[keep], boxes)  # [K, N]
    same = labels[keep][:, None] == labels[None, :]
    member = (iou > iou_threshold) & same
    claimed = torch.zeros(boxes.shape[0], dtype=torch.bool, device=boxes.device)
    out = boxes[keep].clone()
    for row, index in enumerate(keep.tolist()):
        group = member[row] & ~claimed
        group[index] = True
        claimed |= group
        weights = scores[group][:, None]
        out[row] = (boxes[group] * weights).sum(0) / weights.sum().clamp_min(1e-12)
    return out


def merge_detections(
    parts: Sequence[Detections],
    image_size: tuple[int, int],
    *,
    iou_threshold: float = 0.5,
    method: MergeMethod = "nms",
) -> Detections:
    """One set of detections from several sets in the same frame (`image_size` = (H, W)), sorted by score.

    Same-class boxes overlapping by IoU > `iou_threshold` are merged: "nms" keeps the highest-scoring
    box; "weighted" keeps its score and label but averages the group's coordinates weighted by score.
    Masks survive only when every part has them (the kept box's mask).
    """
    if method not in get_args(MergeMethod):
        raise ValueError(f"merge_detections: method must be one of {get_args(MergeMethod)}, got {method!r}")
    for i, part in enumerate(parts):
        if part.image_size != image_size:
            raise ValueError(f"merge_detections: parts[{i}] is in frame {part.image_size}, expected {image_size}")
    if not parts:
        return Detections.empty(image_size)
    boxes = torch.cat([p.boxes for p in parts]).float()
    labels = torch.cat([p.labels for p in parts])
    scores = torch.cat([p.scores for p in parts]).float()
    with_masks = all(p.masks is not None for p in parts)
    masks = torch.cat([p.masks for p in parts if p.masks is not None]) if with_masks else None
    if boxes.shape[0] == 0:
        return Detections(boxes, labels, scores, image_size, masks)
    keep = batched_nms(boxes, scores, labels, iou_threshold)  # sorted by score, descending
    kept_boxes = _weighted_boxes(boxes, labels, scores, keep, iou_threshold) if method == "weighted" else boxes[keep]
    return Detections(kept_boxes, labels[keep], scores[keep], image_size, None if masks is None else masks[keep])


def predict_flip_tta(
    predict: Callable[[list[Tensor]], list[Detections]],
    images: list[Tensor],
    *,
    iou_threshold: float = 0.5,
    method: MergeMethod = "nms",
) -> list[Detections]:
    """Predict each [3, H, W] image and its horizontal mirror in one call, un-flip the mirror's boxes and
    merge both sets per image (see `merge_detections`). Boxes are in each image's own frame."""
    if not images:
        return []
    mirrored = [torch.flip(image, dims=[2]) for image in images]
    outputs = predict([*images, *mirrored])
    n = len(images)
    merged = []
    if len(outputs) != 2 * n:
        raise ValueError(f"predict_flip_tta: the model returned {len(outputs)} results for {2 * n} images")
    for image, plain, flipped in zip(images, outputs[:n], outputs[n:], strict=True):
        size = (int(image.shape[1]), int(image.shape[2]))
        parts = [plain, flip_detections(flipped)]
        merged.append(merge_detections(parts, size, iou_threshold=iou_threshold, method=method))
    return merged
