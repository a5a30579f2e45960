"""From head outputs of one image to detections: score threshold, top-k, decode, per-class NMS.

Written with tensor operations only (no Python branches on data), so the same code runs eagerly and
traced into an ONNX or TorchScript graph with NMS inside. Per-class NMS is one `nms` over boxes shifted by
label x (image side + 1), not torchvision's `batched_nms`: that one is scripted while tracing and becomes an
ONNX `If` (no boxes -> an empty constant), which OpenVINO 2026.4 ran as one garbage detection (score
~-1e-30) on every image with nothing above the score threshold; ONNX Runtime was right.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor
from torchvision.ops import nms

from detforge.models.onestage.coding import distances_to_boxes, expected_distance

__all__ = ["RawDetections", "select_detections"]


@dataclass(frozen=True)
class RawDetections:
    """Detections of one image in its model-input frame: boxes [N, 4] XYXY px, scores [N], labels [N] int64
    (0..K-1), sorted by score, descending."""

    boxes: Tensor
    scores: Tensor
    labels: Tensor


def _at_most(values: Tensor, k: int) -> Tensor | int:
    """min(k, len(values)): a Python int eagerly, a graph value when traced (the length is dynamic)."""
    if torch.jit.is_tracing():
        return torch.clamp(torch._shape_as_tensor(values)[0], max=k)
    return min(k, int(values.shape[0]))


def select_detections(
    cls: Tensor,
    reg: Tensor,
    points: Tensor,
    strides: Tensor,
    input_size: tuple[int, int] | Tensor,
    *,
    score_thresh: float,
    nms_thresh: float,
    detections_per_img: int,
    pre_nms_top_k: int = 1000,
) -> RawDetections:
    """cls [A, K] quality logits, reg [A, 4, R + 1] side logits, points [A, 2] px, strides [A] of one image;
    input_size (height, width) of the resized image (boxes are clipped to it). Keeps scores > score_thresh,
    the `pre_nms_top_k` best (point, class) pairs, per-class NMS at IoU `nms_thresh`, then the
    `detections_per_img` best."""
    num_classes = cls.shape[1]
    scores = cls.sigmoid().flatten()  # [A * K], point-major
    top, index = scores.topk(_at_most(scores, pre_nms_top_k))  # type: ignore[arg-type]
    keep = top > score_thresh
    top, index = top[keep], index[keep]
    point = torch.div(index, num_classes, rounding_mode="floor")
    labels = index % num_classes
    distances = expected_distance(reg[point]) * strides[point][:, None]  # [N, 4] px
    boxes = distances_to_boxes(points[point], distances)
    size = torch.as_tensor(input_size, dtype=boxes.dtype, device=boxes.device)  # [2] height, width
    upper = torch.stack((size[1], size[0], size[1], size[0]))
    boxes = torch.minimum(boxes.clamp(min=0.0), upper)
    offsets = labels.to(boxes.dtype) * (upper.amax() + 1.0)  # classes never overlap: boxes lie in [0, side]
    kept = nms(boxes + offsets[:, None], top, nms_thresh)[:detections_per_img]
    return RawDetections(boxes[kept], top[kept], labels[kept])
