"""ONNX-friendly stand-ins for two torchvision detection parts, swapped in only while exporting.

1. Box decoding with zero boxes. torchvision's BoxCoder reshapes the regression output to `(boxes, -1)`;
   traced, that becomes a Reshape whose -1 ONNX Runtime cannot infer when there are no boxes, so an
   exported two-stage model failed on any image whose proposals were all filtered out (a blank photo;
   found with `detforge benchmark` on the trained demo model). The stand-in decodes without a Reshape.
2. Multi-level RoI pooling. torchvision's traced MultiScaleRoIAlign merges the per-level pooled features
   with ScatterElements over the whole [R, C, 7, 7] result; ONNX Runtime runs that op element by element
   on one thread, and it took 45% of Faster R-CNN MobileNetV3-FPN's time (228 of 500 ms at 800 px, 2
   threads). The stand-in computes the same RoIAlign per level and puts the rows back in order with one
   concatenation and one row Gather.
3. The resize (`detforge.export.exact_resize`): the size is computed in float64 as the eager model does; the
   traced float32 one floored a pixel short on many photo sizes.

All give the same numbers as the originals (the export parity check compares the graph with the eager model).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import Tensor, nn
from torchvision.models.detection._utils import BoxCoder
from torchvision.ops import MultiScaleRoIAlign, roi_align
from torchvision.ops.poolers import _convert_to_roi_format, _filter_input, _setup_scales

from detforge.export.exact_resize import exact_resize

__all__ = ["EmptySafeBoxCoder", "GatherMergedRoIAlign", "export_patches"]


class EmptySafeBoxCoder(BoxCoder):
    """BoxCoder (same weights and clip) whose `decode(rel_codes [R, 4K], boxes [R, 4] list)` -> [R, K, 4]
    XYXY pixels is traced without any Reshape, so the exported graph also works for R = 0."""

    def decode(self, rel_codes: Tensor, boxes: list[Tensor]) -> Tensor:
        reference = torch.cat(boxes, dim=0).to(rel_codes.dtype)
        widths = (reference[:, 2] - reference[:, 0])[:, None]
        heights = (reference[:, 3] - reference[:, 1])[:, None]
        centre_x = reference[:, 0, None] + 0.5 * widths
        centre_y = reference[:, 1, None] + 0.5 * heights
        wx, wy, ww, wh = self.weights
        dx, dy = rel_codes[:, 0::4] / wx, rel_codes[:, 1::4] / wy
        dw = torch.clamp(rel_codes[:, 2::4] / ww, max=self.bbox_xform_clip)
        dh = torch.clamp(rel_codes[:, 3::4] / wh, max=self.bbox_xform_clip)
        x, y = dx * widths + centre_x, dy * heights + centre_y
        half_w, half_h = 0.5 * torch.exp(dw) * widths, 0.5 * torch.exp(dh) * heights
        return torch.stack((x - half_w, y - half_h, x + half_w, y + half_h), dim=2)


class GatherMergedRoIAlign(MultiScaleRoIAlign):
    """MultiScaleRoIAlign (same settings and outputs) whose per-level results are merged by row gathering:
    `forward(features, boxes, image_shapes)` -> float [R, C, *output_size], R = total boxes, in box order."""

    def forward(self, x: dict[str, Tensor], boxes: list[Tensor], image_shapes: list[tuple[int, int]]) -> Tensor:
        features = _filter_input(x, self.featmap_names)
        if self.scales is None or self.map_levels is None:  # type: ignore[has-type]
            self.scales, self.map_levels = _setup_scales(
                features, image_shapes, self.canonical_scale, self.canonical_level
            )
        rois = _convert_to_roi_format(boxes)
        size, ratio = self.output_size, self.sampling_ratio
        if len(features) == 1:
            return roi_align(features[0], rois, output_size=size, spatial_scale=self.scales[0], sampling_ratio=ratio)
        levels = self.map_levels(boxes)
        pooled: list[Tensor] = []
        rows: list[Tensor] = []
        for level, (feature, scale) in enumerate(zip(features, self.scales, strict=True)):
            in_level = torch.where(levels == level)[0]
            pooled.append(
                roi_align(feature, rois[in_level], output_size=size, spatial_scale=scale, sampling_ratio=ratio)
            )
            rows.append(in_level)
        return torch.cat(pooled)[torch.argsort(torch.cat(rows))]


def _stand_in(module: object) -> object:
    """The export stand-in for `module` (sharing its state), or `module` itself when it has none."""
    kinds: dict[type, type] = {MultiScaleRoIAlign: GatherMergedRoIAlign, BoxCoder: EmptySafeBoxCoder}
    kind = kinds.get(type(module))
    if kind is None:
        return module
    stand_in: object = object.__new__(kind)
    stand_in.__dict__.update(module.__dict__)  # same settings and submodules; no copies of tensors
    return stand_in


@contextmanager
def export_patches(model: nn.Module) -> Iterator[None]:
    """Inside, the RoI heads of a torchvision two-stage detector `model` use the stand-ins above (box and
    mask RoI poolers, the box decoder) and its transform resizes exactly (`exact_resize`); the originals are
    back on exit. Other models are left alone."""
    heads = getattr(model, "roi_heads", None)
    names = [n for n in ("box_roi_pool", "mask_roi_pool", "box_coder") if getattr(heads, n, None) is not None]
    originals = {n: getattr(heads, n) for n in names}
    try:
        for name, part in originals.items():
            setattr(heads, name, _stand_in(part))
        with exact_resize(model):
            yield
    finally:
        for name, part in originals.items():
            setattr(heads, name, part)
