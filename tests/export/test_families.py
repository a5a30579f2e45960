"""ONNX export + parity of the other zoo families (slow: ResNet-50 backbones; `pytest -m slow`)."""

from collections.abc import Callable
from pathlib import Path

import pytest

from detforge.export import ParityTolerance, export_model, read_onnx_metadata


@pytest.mark.slow
@pytest.mark.parametrize(
    ("name", "sized"),
    [
        ("retinanet_resnet50_fpn", True),
        ("fcos_resnet50_fpn", True),
        ("ssdlite320_mobilenet_v3_large", False),
        ("maskrcnn_resnet50_fpn", True),
    ],
)
def test_family_exports_with_parity(
    name: str, sized: bool, artifact_factory: Callable[..., Path], tmp_path: Path
) -> None:
    # random-weight RetinaNet has near-tied candidates at its detections-per-image cut: one may flip.
    # Random-weight Mask R-CNN R50 amplifies ONNX Runtime's float32 resampling (1e-4 per pixel, now that the
    # default parity images are really resized) to ~0.14 px, and its random mask probabilities sit near the
    # 0.5 threshold, and a 0.1 px box shift moves the pasted border of its few-pixel masks: 3.8% of pixels
    # differ with torch on 2 threads, 6.3% on 1 (earlier tests may pin torch to one thread); real backbones
    # stay below 1e-3 px.
    box_px, masks = (0.25, 0.10) if name.startswith("maskrcnn") else (0.05, 0.01)
    tolerance = ParityTolerance(count=1 if name.startswith("retinanet") else 0, box_px=box_px, masks=masks)
    report = export_model(artifact_factory(name, sized), format="onnx", out=tmp_path, tolerance=tolerance)
    assert report.parity.count_mismatch <= tolerance.count and report.parity.label_mismatch == 0
    assert report.parity.max_box_diff_px < box_px and report.parity.max_score_diff < 1e-3
    meta = read_onnx_metadata(report.path)
    assert meta.model_name == name and meta.has_masks == name.startswith("mask")
