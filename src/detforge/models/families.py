"""make_detector: a zoo entry -> the Detector of its family, with freshly initialised weights.

The one place that knows which Detector implementation serves which family: torchvision's models
(`TorchvisionDetector`, K+1 classes with background inside the module) and detforge's one-stage family
(`onestage.OneStageDetector`, K classes). Everything else goes through the `Detector` interface.
"""

from __future__ import annotations

from detforge.models.detector import Detector
from detforge.models.info import ModelInfo
from detforge.models.onestage.build import build_one_stage
from detforge.models.torchvision_detector import TorchvisionDetector
from detforge.models.torchvision_graphs import BackboneSetup, build_module

__all__ = ["ONE_STAGE_FAMILIES", "make_detector"]

ONE_STAGE_FAMILIES = ("gfl",)
"""Families built by `detforge.models.onestage`; every other family is a torchvision detection model."""


def make_detector(
    info: ModelInfo,
    *,
    num_classes: int,
    setup: BackboneSetup,
    min_size: int | None = None,
    max_size: int | None = None,
) -> Detector:
    """The Detector of `info` for K = `num_classes` classes (labels 0..K-1, no background), resizing to
    `min_size`..`max_size` (None = the model's default), its backbone set up per `setup`; no weights loaded.
    Raises ConfigError for sizes or trainable layers the model does not support."""
    if info.family in ONE_STAGE_FAMILIES:
        return build_one_stage(info, num_classes=num_classes, setup=setup, min_size=min_size, max_size=max_size)
    module = build_module(info, num_classes=num_classes + 1, setup=setup, min_size=min_size, max_size=max_size)
    return TorchvisionDetector(module, name=info.name, num_classes=num_classes, has_masks=info.has_masks, setup=setup)
