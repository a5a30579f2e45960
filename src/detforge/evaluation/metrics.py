"""The COCO summary metrics of one evaluation, as one validated value."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields

__all__ = ["STAT_NAMES", "CocoMetrics"]

STAT_NAMES: tuple[str, ...] = (
    "ap",
    "ap50",
    "ap75",
    "ap_small",
    "ap_medium",
    "ap_large",
    "ar1",
    "ar10",
    "ar100",
    "ar_small",
    "ar_medium",
    "ar_large",
)
"""The 12 COCO summary numbers, in the order pycocotools' `COCOeval.stats` gives them."""


def _check_value(name: str, value: float) -> None:
    if not isinstance(value, (int, float)) or math.isnan(value) or not (value == -1.0 or 0.0 <= value <= 1.0):
        raise ValueError(f"CocoMetrics.{name}: expected a number in [0, 1] or -1 (no data), got {value!r}")


@dataclass(frozen=True)
class CocoMetrics:
    """COCO detection metrics (bbox or segm), exactly as pycocotools computes them.

    ap: AP at IoU 0.50:0.95 (the COCO "mAP"); ap50 / ap75: at IoU 0.50 / 0.75; ap_small / ap_medium /
    ap_large: AP for objects of area < 32², 32²..96², > 96² pixels; ar1 / ar10 / ar100: recall with at
    most 1 / 10 / 100 detections per image; ar_small / ar_medium / ar_large: AR@100 by object size.
    All are in [0, 1], or -1 where COCO has no data to average (e.g. ap_small when the ground truth has
    no small objects): -1 means "undefined", never "bad".
    per_class_ap: AP@[0.50:0.95] by class name (dataset order), -1 for a class without ground truth.
    num_images: images evaluated; num_detections: detections evaluated.
    """

    ap: float
    ap50: float
    ap75: float
    ap_small: float
    ap_medium: float
    ap_large: float
    ar1: float
    ar10: float
    ar100: float
    ar_small: float
    ar_medium: float
    ar_large: float
    per_class_ap: dict[str, float] = field(default_factory=dict)
    num_images: int = 0
    num_detections: int = 0

    def __post_init__(self) -> None:
        for name in STAT_NAMES:
            _check_value(name, getattr(self, name))
        for name, value in self.per_class_ap.items():
            _check_value(f"per_class_ap[{name!r}]", value)
        if self.num_images < 0 or self.num_detections < 0:
            raise ValueError(
                f"CocoMetrics: num_images and num_detections must be >= 0, got {self.num_images}, {self.num_detections}"
            )
        object.__setattr__(self, "per_class_ap", {str(k): float(v) for k, v in self.per_class_ap.items()})

    @classmethod
    def from_stats(
        cls, stats: Sequence[float], per_class_ap: Mapping[str, float], *, num_images: int, num_detections: int
    ) -> CocoMetrics:
        """Build from the 12 numbers in COCO's order (`STAT_NAMES`)."""
        if len(stats) != len(STAT_NAMES):
            raise ValueError(f"CocoMetrics.from_stats: expected {len(STAT_NAMES)} numbers, got {len(stats)}")
        values = {name: float(v) for name, v in zip(STAT_NAMES, stats, strict=True)}
        return cls(**values, per_class_ap=dict(per_class_ap), num_images=num_images, num_detections=num_detections)

    @property
    def stats(self) -> tuple[float, ...]:
        """The 12 numbers in COCO's order (same as pycocotools' `COCOeval.stats`)."""
        return tuple(getattr(self, name) for name in STAT_NAMES)

    def to_dict(self) -> dict[str, object]:
        """A JSON-ready dict: the 12 named numbers, per_class_ap, num_images, num_detections."""
        out: dict[str, object] = {f.name: getattr(self, f.name) for f in fields(self)}
        out["per_class_ap"] = dict(self.per_class_ap)
        return out
