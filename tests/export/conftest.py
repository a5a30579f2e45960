"""Tiny random-weight detector artifacts for the export tests (built once per session)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from torch.nn.modules.batchnorm import _BatchNorm

from detforge.export import ExportReport, export_model
from detforge.models import DetectionParams, ModelSpec, build_detector, save_model

ArtifactFactory = Callable[..., Path]


def _make_artifact(path: Path, name: str = "fasterrcnn_mobilenet_v2_fpn", sized: bool = True) -> Path:
    """Save a random-weight `name` with 2 classes whose backbone BatchNorm statistics come from random images
    (so activations stay finite and scores vary) and score_thresh 0 (so there are detections)."""
    torch.manual_seed(0)
    if sized:
        detector, _ = build_detector(name, num_classes=2, weights="none", min_size=64, max_size=96)
    else:
        detector, _ = build_detector(name, num_classes=2, weights="none")
    backbone = detector.model.get_submodule("backbone")
    for module in backbone.modules():
        if isinstance(module, _BatchNorm):
            module.reset_running_stats()
            module.momentum = None
    backbone.train()
    with torch.no_grad():
        backbone(torch.rand(4, 3, detector.min_size, detector.min_size))
    classifier = getattr(getattr(detector.model, "head", None), "classification_head", None)
    logits = getattr(classifier, "cls_logits", None)
    if logits is not None:  # RetinaNet, FCOS: unnormalised FPN features saturate scores at 1.0 (exact ties)
        with torch.no_grad():
            logits.weight.mul_(0.01)
    predictor = getattr(getattr(detector.model, "roi_heads", None), "box_predictor", None)
    if predictor is not None and "resnet50" in name:  # R50 two-stage: scores ~1e-22 on degenerate boxes otherwise
        with torch.no_grad():
            predictor.cls_score.weight.mul_(0.01)
            predictor.bbox_pred.weight.mul_(0.01)
    detector.eval()
    detector.detection_params = DetectionParams(score_thresh=0.0, nms_thresh=0.5, detections_per_img=50)
    spec = ModelSpec(
        model_name=detector.name,
        num_classes=2,
        class_names=("cat", "dog"),
        category_ids=(3, 7),
        min_size=detector.min_size,
        max_size=detector.max_size,
        score_threshold=0.25,
    )
    return save_model(path, detector, spec)


@pytest.fixture(scope="session")
def artifact_factory(tmp_path_factory: pytest.TempPathFactory) -> ArtifactFactory:
    def make(name: str = "fasterrcnn_mobilenet_v2_fpn", sized: bool = True) -> Path:
        return _make_artifact(tmp_path_factory.mktemp("artifact") / f"{name}.pt", name, sized)

    return make


@pytest.fixture(scope="session")
def tiny_artifact(artifact_factory: ArtifactFactory) -> Path:
    """A Faster R-CNN MobileNetV2-FPN artifact, 2 classes (cat=3, dog=7), 64..96 px, calibrated threshold 0.25."""
    return artifact_factory()


@pytest.fixture(scope="session")
def tiny_onnx(tiny_artifact: Path, tmp_path_factory: pytest.TempPathFactory) -> ExportReport:
    """The ONNX export report of `tiny_artifact`."""
    return export_model(tiny_artifact, format="onnx", out=tmp_path_factory.mktemp("onnx"))
