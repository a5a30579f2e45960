"""The one-stage network: MobileNetV2 features (strides 8/16/32) -> light PAN -> shared GFL head.

Shapes: B images, input [B, 3, H, W] (normalised, H and W multiples of 32), C = neck width,
K classes (no background), R = reg_max; level l has H/s_l x W/s_l points, A points over all levels.
The head predicts per point K quality scores (logits of "class k here, times the IoU of the box") and,
for each of the 4 side distances (left, top, right, bottom), a distribution over 0..R in units of
the level's stride (Generalized Focal Loss, Li et al. 2020).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, cast

import torch
from torch import Tensor, nn
from torch.nn import functional as F
from torchvision.models import mobilenet_v2
from torchvision.ops.misc import Conv2dNormActivation

__all__ = [
    "PAN",
    "STRIDES",
    "HeadOutput",
    "MobileNetV2Features",
    "OneStageNet",
    "QualityHead",
    "SharedTower",
    "anchor_points",
    "level_sizes",
]

STRIDES = (8, 16, 32)
_STAGE_ENDS = (6, 13, 17)  # last MobileNetV2 `features` block at stride 8 (32 ch), 16 (96 ch), 32 (320 ch)
_STAGE_CHANNELS = (32, 96, 320)
_PRIOR = 0.01  # initial class probability (focal-loss practice: background dominates at the start)


def _conv(c_in: int, c_out: int, kernel: int = 1, stride: int = 1, groups: int = 1) -> Conv2dNormActivation:
    return Conv2dNormActivation(
        c_in, c_out, kernel, stride=stride, groups=groups, norm_layer=nn.BatchNorm2d, activation_layer=nn.ReLU6
    )


class DepthwiseSeparable(nn.Sequential):
    """3x3 depthwise conv (stride 1 or 2) + BN + ReLU6, then 1x1 pointwise conv + BN + ReLU6."""

    def __init__(self, c_in: int, c_out: int, stride: int = 1) -> None:
        super().__init__(_conv(c_in, c_in, 3, stride, groups=c_in), _conv(c_in, c_out))


class MobileNetV2Features(nn.Module):
    """torchvision's MobileNetV2 `features` blocks 0..17 as `body` (same keys as the ImageNet classifier's
    `features.0..17`); forward: [B, 3, H, W] -> ([B, 32, H/8, W/8], [B, 96, H/16, W/16], [B, 320, H/32, W/32])."""

    def __init__(self) -> None:
        super().__init__()
        features = mobilenet_v2(weights=None).features
        self.body = nn.Sequential(*list(features.children())[: _STAGE_ENDS[-1] + 1])
        self.out_channels = _STAGE_CHANNELS

    def forward(self, x: Tensor) -> list[Tensor]:
        outs: list[Tensor] = []
        for i, block in enumerate(self.body):
            x = block(x)
            if i in _STAGE_ENDS:
                outs.append(x)
        return outs


class PAN(nn.Module):
    """Path aggregation neck: 1x1 laterals to `width` channels, a top-down pass (nearest 2x upsampling, sum)
    and a bottom-up pass (stride-2 depthwise-separable conv, sum). [C3, C4, C5] -> 3 maps of `width` channels
    at the input strides."""

    def __init__(self, in_channels: tuple[int, ...], width: int) -> None:
        super().__init__()
        self.laterals = nn.ModuleList(_conv(c, width) for c in in_channels)
        self.downs = nn.ModuleList(DepthwiseSeparable(width, width, stride=2) for _ in in_channels[1:])
        self.smooth = nn.ModuleList(DepthwiseSeparable(width, width) for _ in in_channels)

    def forward(self, features: list[Tensor]) -> list[Tensor]:
        laterals = [lateral(f) for lateral, f in zip(self.laterals, features, strict=True)]
        top_down = [laterals[-1]]
        for lateral in laterals[-2::-1]:  # C4, C3: add the upsampled coarser map
            top_down.insert(0, lateral + F.interpolate(top_down[0], scale_factor=2.0, mode="nearest"))
        outs = [top_down[0]]
        for down, fine_to_coarse in zip(self.downs, top_down[1:], strict=True):
            outs.append(fine_to_coarse + down(outs[-1]))
        return [smooth(o) for smooth, o in zip(self.smooth, outs, strict=True)]


@dataclass(frozen=True)
class HeadOutput:
    """Raw head outputs over all levels, level after level, row-major within a level.
    cls: [B, A, K] quality logits; reg: [B, A, 4, R + 1] side-distance logits (left, top, right, bottom)."""

    cls: Tensor
    reg: Tensor


class SharedTower(nn.Module):
    """`depth` depthwise-separable conv blocks whose conv weights every level shares, with a BatchNorm per level
    (shared conv, per-level norm: one running mean and variance per level, so a level is normalised in
    evaluation as it was in training; a BatchNorm shared by levels learns a blend of their statistics).
    forward(x [B, C, h, w], level index) -> [B, C, h, w]."""

    def __init__(self, width: int, depth: int, levels: int) -> None:
        super().__init__()
        self.depthwise = nn.ModuleList(
            nn.Conv2d(width, width, 3, padding=1, groups=width, bias=False) for _ in range(depth)
        )
        self.pointwise = nn.ModuleList(nn.Conv2d(width, width, 1, bias=False) for _ in range(depth))
        self.norms = nn.ModuleList(
            nn.ModuleList(nn.BatchNorm2d(width) for _ in range(2 * depth)) for _ in range(levels)
        )

    def forward(self, x: Tensor, level: int) -> Tensor:
        norms = cast(nn.ModuleList, self.norms[level])
        for i, (depthwise, pointwise) in enumerate(zip(self.depthwise, self.pointwise, strict=True)):
            x = F.relu6(norms[2 * i](depthwise(x)))
            x = F.relu6(norms[2 * i + 1](pointwise(x)))
        return x


class QualityHead(nn.Module):
    """Shared across levels (a BatchNorm per level, see SharedTower): `depth` depthwise-separable convs, then
    1x1 convs to K class-quality logits (`classify`, the only layer whose shape depends on K) and 4 (R + 1)
    side-distance logits (`regress`)."""

    def __init__(self, width: int, num_classes: int, *, depth: int, reg_max: int, levels: int = len(STRIDES)) -> None:
        super().__init__()
        self.reg_max = reg_max
        self.tower = SharedTower(width, depth, levels)
        self.classify = nn.Conv2d(width, num_classes, 1)
        self.regress = nn.Conv2d(width, 4 * (reg_max + 1), 1)
        for conv, bias in ((self.classify, -math.log((1 - _PRIOR) / _PRIOR)), (self.regress, 0.0)):
            nn.init.normal_(conv.weight, std=0.01)
            nn.init.constant_(cast(Tensor, conv.bias), bias)

    def forward(self, features: list[Tensor]) -> HeadOutput:
        cls, reg = [], []
        for level, f in enumerate(features):
            shared = self.tower(f, level)
            cls.append(self.classify(shared).flatten(2).transpose(1, 2))  # [B, h*w, K]
            reg.append(self.regress(shared).flatten(2).transpose(1, 2))  # [B, h*w, 4(R+1)]
        regs = torch.cat(reg, dim=1)
        return HeadOutput(torch.cat(cls, dim=1), regs.unflatten(2, (4, self.reg_max + 1)))


def anchor_points(
    height: int | Tensor, width: int | Tensor, device: torch.device | None = None
) -> tuple[Tensor, Tensor]:
    """Point centres ([A, 2] float32 x, y in input pixels, (i + 0.5) * stride) and their strides ([A] float32)
    for an input of `height` x `width` (multiples of 32; ints, or 0-dim tensors in a traced graph), in the
    head's output order."""
    points, strides = [], []
    for s in STRIDES:
        rows: Any = height // s  # a traced graph passes 0-dim tensors: arange then follows the input's size
        columns: Any = width // s
        ys = (torch.arange(rows, device=device, dtype=torch.float32) + 0.5) * s
        xs = (torch.arange(columns, device=device, dtype=torch.float32) + 0.5) * s
        grid_y, grid_x = torch.meshgrid(ys, xs, indexing="ij")
        points.append(torch.stack((grid_x.flatten(), grid_y.flatten()), dim=1))
        strides.append(torch.full_like(grid_x.flatten(), float(s)))
    return torch.cat(points), torch.cat(strides)


def level_sizes(height: int, width: int) -> list[int]:
    """Points per level (strides 8, 16, 32) of an input of `height` x `width` (multiples of 32)."""
    return [(height // s) * (width // s) for s in STRIDES]


class OneStageNet(nn.Module):
    """backbone (`backbone.body`: MobileNetV2 features) -> neck (PAN, `width` channels) -> head.
    forward: normalised [B, 3, H, W], H and W multiples of 32 -> HeadOutput with A = sum over strides
    8, 16, 32 of (H / s) * (W / s)."""

    def __init__(self, num_classes: int, *, width: int, depth: int, reg_max: int = 7) -> None:
        super().__init__()
        if num_classes < 1 or width < 1 or depth < 0 or reg_max < 1:
            raise ValueError(
                f"OneStageNet: expected num_classes >= 1, width >= 1, depth >= 0, reg_max >= 1; "
                f"got {num_classes}, {width}, {depth}, {reg_max}"
            )
        self.num_classes = num_classes
        self.reg_max = reg_max
        self.backbone = MobileNetV2Features()
        self.neck = PAN(self.backbone.out_channels, width)
        self.head = QualityHead(width, num_classes, depth=depth, reg_max=reg_max)

    def forward(self, x: Tensor) -> HeadOutput:
        return self.head(self.neck(self.backbone(x)))


def gfl_mobilenet_v2_s(num_classes: int) -> OneStageNet:
    """The small width: 96-channel PAN, 2 head convs, reg_max 7."""
    return OneStageNet(num_classes, width=96, depth=2, reg_max=7)


def gfl_mobilenet_v2_m(num_classes: int) -> OneStageNet:
    """The medium width: 128-channel PAN, 4 head convs, reg_max 7."""
    return OneStageNet(num_classes, width=128, depth=4, reg_max=7)
