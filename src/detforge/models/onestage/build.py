"""build_one_stage: a zoo row of the one-stage family -> a OneStageDetector without weights loaded."""

from __future__ import annotations

from collections.abc import Callable

from detforge.errors import ConfigError
from detforge.models.info import ModelInfo
from detforge.models.onestage.detector import OneStageDetector
from detforge.models.onestage.model import OneStageNet
from detforge.models.torchvision_graphs import BackboneSetup, apply_backbone_setup

__all__ = ["build_one_stage"]


def build_one_stage(
    info: ModelInfo, *, num_classes: int, setup: BackboneSetup, min_size: int | None, max_size: int | None
) -> OneStageDetector:
    """The detector of `info` (its `builder(num_classes)` makes the network) for K = `num_classes` classes,
    resizing to `min_size`..`max_size` (None = the row's default). With `setup.pretrained` the MobileNetV2
    backbone gets torchvision's fine-tuning set-up (FrozenBatchNorm2d, early stages frozen); the neck and
    head always train. ConfigError for sizes that do not fit."""
    low = info.default_min_size if min_size is None else min_size
    high = info.default_max_size if max_size is None else max_size
    if high < low:
        raise ConfigError(f"model.max_size: {info.name} needs max_size >= min_size, got {high} < {low}")
    builder: Callable[[int], OneStageNet] = info.builder
    net = builder(num_classes)
    apply_backbone_setup(net.backbone.body, info, setup)
    return OneStageDetector(net, name=info.name, num_classes=num_classes, setup=setup, min_size=low, max_size=high)
