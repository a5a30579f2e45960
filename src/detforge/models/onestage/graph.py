"""The one-stage family's deployment graph: one image in, detections out, NMS inside.

Every size is computed from the input's shape with tensor operations, so a traced graph (ONNX,
TorchScript) takes any H and W and does exactly what `OneStageDetector.predict` does: the same
resize (float64 scale, floored sizes), normalisation, padding to multiples of 32 and post-processing.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from detforge.models.detector import DetectionParams
from detforge.models.onestage.model import OneStageNet, anchor_points
from detforge.models.onestage.postprocess import select_detections
from detforge.models.onestage.preprocess import SIZE_MULTIPLE, normalise

__all__ = ["OneStageGraph"]


class OneStageGraph(nn.Module):
    """forward(image float32 [3, H, W] in [0, 1]) -> (boxes [N, 4] XYXY px of the image, labels int64 [N]
    in 0..K-1, scores [N]), sorted by score."""

    def __init__(self, net: OneStageNet, min_size: int, max_size: int, params: DetectionParams) -> None:
        super().__init__()
        self.net = net
        self.min_size, self.max_size = min_size, max_size
        self.params = params

    def forward(self, image: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        shape = torch._shape_as_tensor(image)[-2:].to(torch.float64)  # [2] height, width
        limits = torch.tensor([float(self.min_size), float(self.max_size)], dtype=torch.float64)
        extremes = torch.cat([shape.amin(dim=0, keepdim=True), shape.amax(dim=0, keepdim=True)])
        factor = (limits / extremes).amin(dim=0, keepdim=True)
        sizes = torch.floor(shape * factor).clamp(min=1).to(torch.int64)  # [2] resized height, width
        size: list[Tensor] = [sizes[0], sizes[1]]
        resized = F.interpolate(image[None], size=size, mode="bilinear", align_corners=False)  # type: ignore[arg-type]
        padded_sizes = torch.div(sizes + (SIZE_MULTIPLE - 1), SIZE_MULTIPLE, rounding_mode="floor") * SIZE_MULTIPLE
        pad = padded_sizes - sizes
        x = F.pad(normalise(resized), [0, pad[1], 0, pad[0]])  # type: ignore[list-item]
        output = self.net(x)
        points, strides = anchor_points(padded_sizes[0], padded_sizes[1], device=x.device)
        raw = select_detections(
            output.cls[0],
            output.reg[0],
            points,
            strides,
            sizes,
            score_thresh=self.params.score_thresh,
            nms_thresh=self.params.nms_thresh,
            detections_per_img=self.params.detections_per_img,
        )
        back = (shape / sizes.to(torch.float64)).to(raw.boxes.dtype)  # [2] original / resized, per axis
        scale = torch.stack((back[1], back[0], back[1], back[0]))
        return raw.boxes * scale, raw.labels, raw.scores
