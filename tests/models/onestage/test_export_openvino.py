"""The one-stage ONNX export run by OpenVINO: the same detections as PyTorch, and none when PyTorch has none.

OpenVINO had run the ONNX `If` that torchvision's `batched_nms` traces to (no boxes -> an empty constant) as
one garbage detection on every image with nothing above the score threshold.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from detforge.export import compare_detections, export_model
from detforge.export.parity import ParityTolerance
from detforge.models import save_model
from detforge.models.artifact import ModelSpec
from detforge.models.detector import DetectionParams


def _export(detector: Any, tmp_path: Path, name: str) -> Path:
    spec = ModelSpec("gfl_mobilenet_v2_s", 2, ("red", "green"), (1, 2), detector.min_size, detector.max_size)
    model_path = save_model(tmp_path / f"{name}.pt", detector, spec)
    tolerance = ParityTolerance(box_px=1e-3, score=1e-4)
    return export_model(model_path, format="onnx", out=tmp_path / f"{name}.onnx", tolerance=tolerance).path


def test_openvino_matches_pytorch_with_and_without_detections(overfitted: Any, tmp_path: Path) -> None:
    pytest.importorskip("onnxruntime")
    pytest.importorskip("openvino")
    from detforge.export import OpenVinoDetector

    detector = overfitted.detector.eval()
    images = [overfitted.images[0], torch.zeros(3, 80, 112)]
    with torch.inference_mode():
        reference = [detector.predict([image])[0] for image in images]
    openvino = OpenVinoDetector(_export(detector, tmp_path, "trained"), threads=1)
    diff = compare_detections(reference, [openvino.predict([image])[0] for image in images])
    assert diff.detections >= 2 and diff.count_mismatch == 0 and diff.max_box_diff_px <= 1e-3

    # a score threshold nothing reaches: every image has no detection, in PyTorch and in OpenVINO
    silent = detector.with_detection_params(DetectionParams(score_thresh=0.999999))
    with torch.inference_mode():
        assert all(len(silent.predict([image])[0]) == 0 for image in images)
    empty = OpenVinoDetector(_export(silent, tmp_path, "silent"), threads=1)
    assert [len(empty.predict([image])[0]) for image in images] == [0, 0]
