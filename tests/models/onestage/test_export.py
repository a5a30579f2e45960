"""The one-stage family exports to ONNX (NMS in the graph) and TorchScript and passes the parity check."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from detforge.export import export_model
from detforge.export.parity import ParityTolerance
from detforge.models import save_model
from detforge.models.artifact import ModelSpec


@pytest.mark.parametrize("fmt", ["onnx", "torchscript"])
def test_export_of_a_trained_model_matches_pytorch(overfitted: Any, tmp_path: Path, fmt: str) -> None:
    if fmt == "onnx":
        pytest.importorskip("onnxruntime")
    detector = overfitted.detector
    spec = ModelSpec("gfl_mobilenet_v2_s", 2, ("red", "green"), (1, 2), detector.min_size, detector.max_size)
    model_path = save_model(tmp_path / "model.pt", detector, spec)
    # the training images at other sizes and aspect ratios: the graph resizes and pads them itself
    images = [
        overfitted.images[0],
        overfitted.images[1][:, :70, :],
        torch.nn.functional.interpolate(overfitted.images[2][None], size=(131, 77), mode="bilinear")[0],
    ]
    tolerance = ParityTolerance(box_px=1e-3, score=1e-4)
    report = export_model(
        model_path, format=fmt, out=tmp_path / f"model.{fmt}", parity_images=images, tolerance=tolerance
    )
    assert report.parity.detections >= 6  # the boxes it learned, at least
    assert report.parity.max_box_diff_px <= 1e-3 and report.parity.count_mismatch == 0
