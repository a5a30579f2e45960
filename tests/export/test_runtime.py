from pathlib import Path

import torch

from detforge.export import (
    ExportReport,
    OnnxDetector,
    TorchScriptDetector,
    compare_detections,
    export_model,
    load_backend,
)
from detforge.inference import Predictor, SupportsPredict
from detforge.models import Detector, load_model


def _images() -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(3)
    return [torch.randint(0, 256, (3, 70, 90), generator=g, dtype=torch.uint8) for _ in range(3)]


def test_onnx_detector_through_predictor_matches_eager(tiny_onnx: ExportReport, tiny_artifact: Path) -> None:
    runtime = OnnxDetector(tiny_onnx.path, device="cpu", threads=1)
    assert isinstance(runtime, SupportsPredict)
    assert (runtime.num_classes, runtime.class_names, runtime.score_threshold) == (2, ("cat", "dog"), 0.25)
    assert runtime.providers == ["CPUExecutionProvider"]
    exported = Predictor(runtime, class_names=runtime.class_names, device="cpu", score_threshold=0.1)
    eager = Predictor(tiny_artifact, device="cpu", score_threshold=0.1)
    assert exported.class_names == eager.class_names == ("cat", "dog")
    ours, theirs = exported.predict_tensors(_images()), eager.predict_tensors(_images())
    assert sum(len(d) for d in theirs) > 0
    assert all(float(d.scores.min()) >= 0.1 for d in ours if len(d))
    report = compare_detections(theirs, ours)
    assert report.count_mismatch == 0 and report.label_mismatch == 0
    assert report.max_box_diff_px < 0.05 and report.max_score_diff < 1e-3


def test_load_backend_picks_by_file(tiny_onnx: ExportReport, tiny_artifact: Path, tmp_path: Path) -> None:
    onnx_backend = load_backend(tiny_onnx.path, device="cpu", runtime="onnxruntime")
    assert onnx_backend.kind == "onnx" and isinstance(onnx_backend.model, OnnxDetector)
    eager_backend = load_backend(tiny_artifact, device="cpu")
    assert eager_backend.kind == "eager" and isinstance(eager_backend.model, Detector)
    assert eager_backend.metadata.category_ids == onnx_backend.metadata.category_ids == (3, 7)
    assert eager_backend.metadata.format == "artifact"
    predictor = onnx_backend.predictor()
    assert predictor.class_names == ("cat", "dog") and predictor.score_threshold == 0.25

    report = export_model(tiny_artifact, format="torchscript", out=tmp_path / "model.pt")
    assert report.parity.max_box_diff_px < 0.05 and report.parity.count_mismatch == 0
    ts_backend = load_backend(report.path, device="cpu")
    assert ts_backend.kind == "torchscript" and isinstance(ts_backend.model, TorchScriptDetector)
    assert ts_backend.metadata == report.metadata and report.metadata.format == "torchscript"
    detector, _ = load_model(tiny_artifact)
    image = _images()[0].float() / 255
    ours, theirs = ts_backend.model.predict([image]), detector.predict([image])
    assert torch.allclose(ours[0].boxes, theirs[0].boxes, atol=1e-3)
    assert torch.equal(ours[0].labels, theirs[0].labels)
