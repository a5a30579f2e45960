"""What the zoo knows about each model, as plain typed records (no torch import here).

`MODEL_ROWS` is the zoo's table (what `detforge models` prints: parameters and GFLOPs measured once and
stored, checked against the built models by tests/models/test_zoo.py) and `MODEL_NAMES` its names in
table order, so that name checks and `detforge models` stay fast; `zoo.MODELS` holds exactly these names
and takes each model's family, description and pretrained kinds from its row.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

__all__ = ["MODEL_NAMES", "MODEL_ROWS", "BackboneKind", "Family", "ModelInfo", "ModelRow", "PretrainedKind"]

Family = Literal["fasterrcnn", "retinanet", "fcos", "ssd", "maskrcnn", "gfl"]
PretrainedKind = Literal["coco", "imagenet"]
BackboneKind = Literal["resnet", "mobilenet", "ssdlite"]


@dataclass(frozen=True)
class ModelInfo:
    """One zoo entry: what the model is, which weights exist, and how torchvision builds it.

    `builder` is a torchvision-style builder called as `builder(weights=None, weights_backbone=None,
    num_classes=K+1, trainable_backbone_layers=..., **size_kwargs)`, or for the one-stage family ("gfl")
    `builder(K)` returning a `onestage.model.OneStageNet`. `coco_url`/`imagenet_url` are the
    official files of the whole detector (COCO, 91 classes) and of the backbone (ImageNet classifier).
    `frozen_bn`: torchvision swaps the backbone's BatchNorm for FrozenBatchNorm2d when it starts from
    weights; `coco_bn_eps` is the FrozenBatchNorm eps torchvision sets with the COCO weights.
    `trainable_layers` = (default when starting from weights, maximum) for `trainable_backbone_layers`.
    """

    name: str
    family: Family
    has_masks: bool
    default_min_size: int
    default_max_size: int
    pretrained: tuple[PretrainedKind, ...]
    description: str
    builder: Callable[..., Any] = field(repr=False, compare=False)
    backbone: BackboneKind = "resnet"
    coco_url: str | None = None
    imagenet_url: str | None = None
    frozen_bn: bool = True
    coco_bn_eps: float = 1e-5
    trainable_layers: tuple[int, int] = (3, 5)
    fixed_size: bool = False

    def __post_init__(self) -> None:
        if self.family not in get_args(Family):
            raise ValueError(f"ModelInfo.family: expected one of {get_args(Family)}, got {self.family!r}")
        if self.backbone not in get_args(BackboneKind):
            raise ValueError(f"ModelInfo.backbone: expected one of {get_args(BackboneKind)}, got {self.backbone!r}")
        if not 0 < self.default_min_size <= self.default_max_size:
            raise ValueError(
                f"ModelInfo {self.name}: expected 0 < default_min_size <= default_max_size, "
                f"got {self.default_min_size}, {self.default_max_size}"
            )
        expected = tuple(k for k, url in (("coco", self.coco_url), ("imagenet", self.imagenet_url)) if url)
        if self.pretrained != expected:
            raise ValueError(f"ModelInfo {self.name}: pretrained {self.pretrained} does not match the URLs {expected}")
        default, maximum = self.trainable_layers
        if not 0 <= default <= maximum:
            raise ValueError(f"ModelInfo {self.name}: expected 0 <= default <= max, got {self.trainable_layers}")
        if self.has_masks != (self.family == "maskrcnn"):
            raise ValueError(f"ModelInfo {self.name}: has_masks must be True exactly for the maskrcnn family")

    def url(self, kind: PretrainedKind) -> str:
        """The official weights URL of `kind`; ValueError when this model has none of that kind."""
        url = self.coco_url if kind == "coco" else self.imagenet_url
        if url is None:
            raise ValueError(f"{self.name} has no {kind} weights; available: {', '.join(self.pretrained) or 'none'}")
        return url


@dataclass(frozen=True)
class ModelRow:
    """One line of `detforge models`.

    params: trainable + frozen parameter count with COCO's 91 classes; gflops: floating point operations
    (multiply and add counted as 2) of one inference at the default size, in 1e9, or None when not counted;
    input_size: (height, width) of the random image used for the count. min_size / max_size: the default
    resize (px): the shorter side to min_size unless the longer would pass max_size; fixed_size: the model
    resizes every image to min_size x min_size instead. `zoo.MODELS` takes its sizes from here, so the
    automatic config and `data stats` know them without importing torch.
    """

    name: str
    family: Family
    params: int
    gflops: float | None
    input_size: tuple[int, int]
    pretrained: tuple[PretrainedKind, ...]
    has_masks: bool
    description: str
    min_size: int
    max_size: int
    fixed_size: bool = False

    def __post_init__(self) -> None:
        if not 0 < self.min_size <= self.max_size:
            raise ValueError(
                f"ModelRow {self.name}: expected 0 < min_size <= max_size, got {self.min_size}, {self.max_size}"
            )


MODEL_ROWS: dict[str, ModelRow] = {
    row.name: row
    for row in (
        ModelRow(
            "fasterrcnn_resnet50_fpn",
            "fasterrcnn",
            41_755_286,
            355.2,
            (800, 1067),
            ("coco", "imagenet"),
            False,
            "Faster R-CNN, ResNet-50 FPN (COCO box AP 37.0); the classic two-stage baseline",
            min_size=800,
            max_size=1333,
        ),
        ModelRow(
            "fasterrcnn_resnet50_fpn_v2",
            "fasterrcnn",
            43_712_278,
            669.8,
            (800, 1067),
            ("coco", "imagenet"),
            False,
            "Faster R-CNN, ResNet-50 FPN v2 recipe (COCO box AP 46.7); most accurate, slowest",
            min_size=800,
            max_size=1333,
        ),
        ModelRow(
            "fasterrcnn_mobilenet_v3_large_fpn",
            "fasterrcnn",
            19_386_354,
            40.9,
            (800, 1067),
            ("coco", "imagenet"),
            False,
            "Faster R-CNN, MobileNetV3-Large FPN (COCO box AP 32.8); fast on CPU",
            min_size=800,
            max_size=1333,
        ),
        ModelRow(
            "fasterrcnn_mobilenet_v3_large_320_fpn",
            "fasterrcnn",
            19_386_354,
            6.3,
            (320, 427),
            ("coco", "imagenet"),
            False,
            "Faster R-CNN, MobileNetV3-Large FPN at 320 px (COCO box AP 22.8); fastest two-stage model",
            min_size=320,
            max_size=640,
        ),
        ModelRow(
            "fasterrcnn_mobilenet_v2_fpn",
            "fasterrcnn",
            19_276_724,
            31.0,
            (512, 683),
            ("imagenet",),
            False,
            "Faster R-CNN, MobileNetV2 FPN; ImageNet backbone ships offline (the CPU demo model)",
            min_size=512,
            max_size=853,
        ),
        ModelRow(
            "retinanet_resnet50_fpn",
            "retinanet",
            34_014_999,
            412.0,
            (800, 1067),
            ("coco", "imagenet"),
            False,
            "RetinaNet, ResNet-50 FPN (COCO box AP 36.4); one-stage with focal loss",
            min_size=800,
            max_size=1333,
        ),
        ModelRow(
            "fcos_resnet50_fpn",
            "fcos",
            32_269_600,
            348.6,
            (800, 1067),
            ("coco", "imagenet"),
            False,
            "FCOS, ResNet-50 FPN (COCO box AP 39.2); anchor-free one-stage",
            min_size=800,
            max_size=1333,
        ),
        ModelRow(
            "ssdlite320_mobilenet_v3_large",
            "ssd",
            3_440_060,
            1.2,
            (320, 320),
            ("coco",),
            False,
            "SSDlite, MobileNetV3-Large at a fixed 320x320 (COCO box AP 21.3); lowest latency",
            min_size=320,
            max_size=320,
            fixed_size=True,
        ),
        ModelRow(
            "maskrcnn_resnet50_fpn",
            "maskrcnn",
            44_401_393,
            461.6,
            (800, 1067),
            ("coco", "imagenet"),
            True,
            "Mask R-CNN, ResNet-50 FPN (COCO box AP 37.9, mask AP 34.6); boxes and instance masks",
            min_size=800,
            max_size=1333,
        ),
        ModelRow(
            "gfl_mobilenet_v2_s",
            "gfl",
            1_910_362,
            3.2,
            (416, 555),
            ("imagenet",),
            False,
            "detforge one-stage (GFL head, ATSS), MobileNetV2 + 96-channel PAN; ImageNet backbone ships offline",
            min_size=416,
            max_size=704,
        ),
        ModelRow(
            "gfl_mobilenet_v2_m",
            "gfl",
            2_020_538,
            3.8,
            (416, 555),
            ("imagenet",),
            False,
            "detforge one-stage (GFL head, ATSS), MobileNetV2 + 128-channel PAN, deeper head",
            min_size=416,
            max_size=704,
        ),
    )
}
"""Every model detforge builds, in display order. params: 91 classes (90 and background; the gfl rows have
no background slot: 90), FrozenBatchNorm where torchvision uses it; gflops: measured once with
`zoo.count_gflops` (torch 2.14.1, torchvision 0.29.1, random weights, 91 classes, one random image of
`input_size` in eval mode). The RoI heads' share depends on how many proposals
and detections survive, so trained weights give somewhat different numbers. `detforge models
--measure-gflops` counts them again."""

MODEL_NAMES: tuple[str, ...] = tuple(MODEL_ROWS)
