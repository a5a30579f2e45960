"""Detectron2 model-zoo names people already know, mapped to the detforge zoo (no torch import here).

A Detectron2 config name such as `COCO-Detection/faster_rcnn_R_50_FPN_3x.yaml` names an architecture
and a training schedule ("1x" = 90k iterations of 16 images, about 12 COCO epochs; "3x" = 270k, about
37 epochs). detforge maps the architecture to its closest zoo model and keeps the schedule as a hint;
the schedule itself is set in the training config.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Literal

from detforge.errors import ConfigError
from detforge.models.info import MODEL_NAMES

__all__ = ["ALIASES", "SCHEDULE_EPOCHS", "Alias", "find_alias", "resolve_model_name"]

Schedule = Literal["1x", "3x"]

SCHEDULE_EPOCHS: dict[str, float] = {"1x": 12.2, "3x": 36.6}
"""COCO epochs of a Detectron2 schedule (iterations x 16 images / 118,287 train images)."""

_R101 = "ResNet-101 is not in torchvision's detection zoo; using the ResNet-50 model"
_X101 = "ResNeXt-101 is not in torchvision's detection zoo; using the ResNet-50 model"
_CLOSEST_V2 = "; fasterrcnn_resnet50_fpn_v2 (46.7 box AP) is the closest in accuracy"
_C4_DC5 = "the C4/DC5 heads are not in torchvision; using the FPN model"


@dataclass(frozen=True)
class Alias:
    """A Detectron2 model-zoo config: the zoo model that stands in for it, its schedule and any caveat."""

    detectron2_name: str
    model: str
    schedule: Schedule
    note: str | None = None

    def __post_init__(self) -> None:
        if self.model not in MODEL_NAMES:
            raise ValueError(f"Alias {self.detectron2_name}: model {self.model!r} is not a zoo name")


def _entries() -> tuple[Alias, ...]:
    det, seg = "COCO-Detection/", "COCO-InstanceSegmentation/"
    r50, r50v2 = "fasterrcnn_resnet50_fpn", "fasterrcnn_resnet50_fpn_v2"
    retina, mask = "retinanet_resnet50_fpn", "maskrcnn_resnet50_fpn"
    return (
        Alias(det + "faster_rcnn_R_50_FPN_1x.yaml", r50, "1x"),
        Alias(det + "faster_rcnn_R_50_FPN_3x.yaml", r50, "3x"),
        Alias(det + "faster_rcnn_R_50_C4_1x.yaml", r50, "1x", _C4_DC5),
        Alias(det + "faster_rcnn_R_50_C4_3x.yaml", r50, "3x", _C4_DC5),
        Alias(det + "faster_rcnn_R_50_DC5_1x.yaml", r50, "1x", _C4_DC5),
        Alias(det + "faster_rcnn_R_50_DC5_3x.yaml", r50, "3x", _C4_DC5),
        Alias(det + "faster_rcnn_R_101_FPN_3x.yaml", r50v2, "3x", _R101 + _CLOSEST_V2),
        Alias(det + "faster_rcnn_R_101_C4_3x.yaml", r50v2, "3x", _R101 + _CLOSEST_V2),
        Alias(det + "faster_rcnn_R_101_DC5_3x.yaml", r50v2, "3x", _R101 + _CLOSEST_V2),
        Alias(det + "faster_rcnn_X_101_32x8d_FPN_3x.yaml", r50v2, "3x", _X101 + _CLOSEST_V2),
        Alias(det + "retinanet_R_50_FPN_1x.yaml", retina, "1x"),
        Alias(det + "retinanet_R_50_FPN_3x.yaml", retina, "3x"),
        Alias(det + "retinanet_R_101_FPN_3x.yaml", retina, "3x", _R101),
        Alias(det + "fcos_R_50_FPN_1x.py", "fcos_resnet50_fpn", "1x"),
        Alias(seg + "mask_rcnn_R_50_FPN_1x.yaml", mask, "1x"),
        Alias(seg + "mask_rcnn_R_50_FPN_3x.yaml", mask, "3x"),
        Alias(seg + "mask_rcnn_R_50_C4_1x.yaml", mask, "1x", _C4_DC5),
        Alias(seg + "mask_rcnn_R_50_C4_3x.yaml", mask, "3x", _C4_DC5),
        Alias(seg + "mask_rcnn_R_50_DC5_1x.yaml", mask, "1x", _C4_DC5),
        Alias(seg + "mask_rcnn_R_50_DC5_3x.yaml", mask, "3x", _C4_DC5),
        Alias(seg + "mask_rcnn_R_101_FPN_3x.yaml", mask, "3x", _R101),
        Alias(seg + "mask_rcnn_X_101_32x8d_FPN_3x.yaml", mask, "3x", _X101),
    )


ALIASES: dict[str, Alias] = {a.detectron2_name: a for a in _entries()}
"""Detectron2 config path (as in its model zoo) -> Alias."""


def _stem(name: str) -> str:
    """`COCO-Detection/faster_rcnn_R_50_FPN_3x.yaml` -> `faster_rcnn_r_50_fpn_3x` (folder, suffix and case dropped)."""
    stem = name.strip().replace("\\", "/").rsplit("/", 1)[-1]
    for suffix in (".yaml", ".yml", ".py"):
        if stem.lower().endswith(suffix):
            stem = stem[: -len(suffix)]
    return stem.lower()


_BY_STEM: dict[str, Alias] = {_stem(k): a for k, a in ALIASES.items()}


def find_alias(name: str) -> Alias | None:
    """The Alias for a Detectron2 name given with or without its folder and `.yaml`, any case; else None."""
    return ALIASES.get(name.strip()) or _BY_STEM.get(_stem(name))


def resolve_model_name(name: str) -> tuple[str, str | None]:
    """(zoo model name, note or None) for a zoo name or a Detectron2 model-zoo name.

    The note says which Detectron2 config was translated, its schedule and any architecture caveat.
    Raises ConfigError naming the value and the nearest valid names when `name` is neither.
    """
    if name in MODEL_NAMES:
        return name, None
    if name.strip().lower() in MODEL_NAMES:
        return name.strip().lower(), None
    alias = find_alias(name)
    if alias is not None:
        epochs = SCHEDULE_EPOCHS[alias.schedule]
        note = (
            f"Detectron2 model {alias.detectron2_name!r} -> {alias.model!r} "
            f"(schedule {alias.schedule}: about {epochs:g} COCO epochs; set the training length in the train config)"
        )
        if alias.note:
            note += f"; {alias.note}"
        return alias.model, note
    candidates = list(MODEL_NAMES) + list(ALIASES)
    near = difflib.get_close_matches(name, candidates, n=3, cutoff=0.5)
    stems = difflib.get_close_matches(_stem(name), list(_BY_STEM), n=3, cutoff=0.6)
    near += [_BY_STEM[s].detectron2_name for s in stems]
    near = list(dict.fromkeys(near))[:3]
    hint = f"; did you mean {' or '.join(repr(n) for n in near)}?" if near else ""
    raise ConfigError(
        f"model.name: unknown model {name!r}{hint} (valid names: {', '.join(MODEL_NAMES)}; see `detforge models`)"
    )
