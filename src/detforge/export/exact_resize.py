"""The resize of an exported torchvision detector, computed exactly as the eager model computes it.

Eager torchvision resizes an image of H x W by `scale = min(min_size / min(H, W), max_size / max(H, W))` in
Python (float64) and takes `floor(H * scale)` x `floor(W * scale)` pixels. Traced for ONNX the same scale and
product are float32 (torch's `interpolate` under tracing) and scripted the scale is float32 too; on many
image sizes the product then lands just below the integer and floors one pixel short (941 x 1319 with
min_size 512: 511 rows instead of 512). The whole image is then resampled at other positions and padded
differently: scores differed by up to 0.08 and boxes by whole objects on phone-photo sizes, while the
parity check's synthetic images (already `min_size` on their short side, so scale 1) passed.

`ExactResizeTransform` computes the size in float64 in the graph too (ONNX: Cast, Div, Min, Mul, Floor in
double; TorchScript: Python floats) and resizes to that size, so the exported graph sees the same pixels as
the eager model on every image size and aspect ratio.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Optional

import torch
from torch import Tensor, nn
from torchvision.models.detection.transform import GeneralizedRCNNTransform

__all__ = ["ExactResizeTransform", "exact_resize", "resized_size"]


def resized_size(height: int, width: int, min_size: int, max_size: int) -> tuple[int, int]:
    """(height, width) that eager torchvision's GeneralizedRCNNTransform (eval, no fixed size) resizes a
    `height` x `width` image to: float64 scale, floored sizes."""
    scale = min(min_size / min(height, width), max_size / max(height, width))
    return math.floor(height * scale), math.floor(width * scale)


class ExactResizeTransform(GeneralizedRCNNTransform):
    """GeneralizedRCNNTransform (same settings) whose eval-mode resize without `fixed_size` computes the
    output size in float64 also when traced or scripted; everything else is torchvision's."""

    def resize(
        self,
        image: Tensor,
        target: Optional[dict[str, Tensor]] = None,  # noqa: UP045 (TorchScript reads this annotation)
    ) -> tuple[Tensor, Optional[dict[str, Tensor]]]:  # noqa: UP045
        if self.training or target is not None or self.fixed_size is not None:
            raise RuntimeError("ExactResizeTransform resizes images for inference only (eval, no targets)")
        min_size, max_size = float(self.min_size[-1]), float(self.max_size)
        if torch.jit.is_scripting():
            height, width = int(image.shape[-2]), int(image.shape[-1])
            scale = min(min_size / float(min(height, width)), max_size / float(max(height, width)))
            size = [math.floor(float(height) * scale), math.floor(float(width) * scale)]
            resized = nn.functional.interpolate(image[None], size=size, mode="bilinear", align_corners=False)
        else:
            shape = torch._shape_as_tensor(image)[-2:].to(torch.float64)  # traced as the graph's Shape op
            # 1-D tensors throughout: the exporter casts 0-dim operands of a Div to float32
            limits = torch.tensor([min_size, max_size], dtype=torch.float64)
            extremes = torch.cat([shape.amin(dim=0, keepdim=True), shape.amax(dim=0, keepdim=True)])
            factor = (limits / extremes).amin(dim=0, keepdim=True)  # a true Div, as Python's /
            sizes = torch.floor(shape * factor).to(torch.int64)
            traced: Any = [sizes[0], sizes[1]]  # tensors: the graph computes them per image
            resized = nn.functional.interpolate(image[None], size=traced, mode="bilinear", align_corners=False)
        return resized[0], target


@contextmanager
def exact_resize(model: nn.Module) -> Iterator[None]:
    """Inside, `model.transform` (a torchvision GeneralizedRCNNTransform) is an ExactResizeTransform sharing
    its settings; the original is back on exit. Models without one, or with a fixed input size (SSDlite),
    are left alone."""
    original = getattr(model, "transform", None)
    exact = isinstance(original, GeneralizedRCNNTransform) and type(original) is GeneralizedRCNNTransform
    if not isinstance(original, GeneralizedRCNNTransform) or not exact or original.fixed_size is not None:
        yield
        return
    stand_in: ExactResizeTransform = object.__new__(ExactResizeTransform)
    stand_in.__dict__.update(original.__dict__)  # same settings and buffers; no copies
    try:
        setattr(model, "transform", stand_in)  # noqa: B010
        yield
    finally:
        setattr(model, "transform", original)  # noqa: B010
