"""Detectron2 model-zoo names map to zoo models; unknown names get the nearest suggestions."""

from __future__ import annotations

import pytest

from detforge.errors import ConfigError
from detforge.models import ALIASES, MODEL_NAMES, resolve_model_name
from detforge.models.aliases import SCHEDULE_EPOCHS, find_alias


@pytest.mark.parametrize(
    ("name", "model", "schedule"),
    [
        ("COCO-Detection/faster_rcnn_R_50_FPN_3x.yaml", "fasterrcnn_resnet50_fpn", "3x"),
        ("COCO-Detection/faster_rcnn_R_50_FPN_1x.yaml", "fasterrcnn_resnet50_fpn", "1x"),
        ("COCO-Detection/retinanet_R_50_FPN_1x.yaml", "retinanet_resnet50_fpn", "1x"),
        ("COCO-Detection/retinanet_R_50_FPN_3x.yaml", "retinanet_resnet50_fpn", "3x"),
        ("COCO-InstanceSegmentation/mask_rcnn_R_50_FPN_1x.yaml", "maskrcnn_resnet50_fpn", "1x"),
        ("COCO-InstanceSegmentation/mask_rcnn_R_50_FPN_3x.yaml", "maskrcnn_resnet50_fpn", "3x"),
        ("faster_rcnn_R_50_FPN_3x", "fasterrcnn_resnet50_fpn", "3x"),  # folder and suffix optional
        ("coco-detection/FASTER_RCNN_R_50_FPN_1X.YAML", "fasterrcnn_resnet50_fpn", "1x"),  # any case
    ],
)
def test_detectron2_names(name: str, model: str, schedule: str) -> None:
    resolved, note = resolve_model_name(name)
    assert resolved == model
    assert note is not None and f"schedule {schedule}" in note and f"{SCHEDULE_EPOCHS[schedule]:g} COCO epochs" in note
    alias = find_alias(name)
    assert alias is not None and alias.schedule == schedule and alias.note is None


def test_r101_maps_to_the_closest_model_with_a_note() -> None:
    resolved, note = resolve_model_name("COCO-Detection/faster_rcnn_R_101_FPN_3x.yaml")
    assert resolved == "fasterrcnn_resnet50_fpn_v2"
    assert note is not None and "ResNet-101 is not in torchvision" in note and "closest" in note


def test_zoo_names_pass_through_without_note() -> None:
    for name in MODEL_NAMES:
        assert resolve_model_name(name) == (name, None)
    assert resolve_model_name(" FCOS_ResNet50_FPN ") == ("fcos_resnet50_fpn", None)
    assert all(alias.model in MODEL_NAMES for alias in ALIASES.values())


def test_unknown_names_suggest_the_nearest() -> None:
    expected = r"unknown model 'fasterrcnn_resnet50'; did you mean 'fasterrcnn_resnet50_fpn'"
    with pytest.raises(ConfigError, match=expected):
        resolve_model_name("fasterrcnn_resnet50")
    with pytest.raises(ConfigError, match=r"did you mean 'COCO-Detection/faster_rcnn_R_50_FPN_(1|3)x\.yaml'"):
        resolve_model_name("faster_rcnn_R_50_FPN_2x")
    with pytest.raises(ConfigError, match="valid names: fasterrcnn_resnet50_fpn, ") as caught:
        resolve_model_name("yolov8n")
    assert "did you mean" not in str(caught.value)
