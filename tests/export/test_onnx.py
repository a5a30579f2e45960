import json
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch

from detforge import __version__
from detforge.export import (
    ExportError,
    ExportReport,
    OnnxDetector,
    ParityTolerance,
    check_onnx_exportable,
    compare_detections,
    export_model,
    read_onnx_metadata,
    run_parity,
    synthetic_images,
)
from detforge.models import load_model


def test_export_writes_checked_onnx_with_metadata(tiny_onnx: ExportReport, tiny_artifact: Path) -> None:
    path = tiny_onnx.path
    assert path.suffix == ".onnx" and path.stem == tiny_artifact.stem and path.is_file()
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no half-checked file left behind
    assert tiny_onnx.size_bytes == path.stat().st_size > 1_000_000
    parity = tiny_onnx.parity
    assert parity.image_sizes == ((131, 94), (97, 129), (49, 121), (59, 43))  # parity_image_sizes(64, 96)
    assert parity.detections > 10
    assert parity.max_box_diff_px < 0.05 and parity.max_score_diff < 1e-3
    assert parity.count_mismatch == 0 and parity.label_mismatch == 0

    props = {p.key: p.value for p in onnx.load(str(path)).metadata_props}
    assert json.loads(props["detforge.class_names"]) == ["cat", "dog"]
    assert json.loads(props["detforge.category_ids"]) == [3, 7]
    assert json.loads(props["detforge.model_name"]) == "fasterrcnn_mobilenet_v2_fpn"
    assert json.loads(props["detforge.score_threshold"]) == 0.25
    assert json.loads(props["detforge.detforge_version"]) == __version__
    meta = read_onnx_metadata(path)
    assert (meta.min_size, meta.max_size, meta.detection_score_thresh, meta.has_masks) == (64, 96, 0.0, False)
    assert meta == tiny_onnx.metadata


def test_graph_input_and_outputs(tiny_onnx: ExportReport) -> None:
    graph = onnx.load(str(tiny_onnx.path)).graph
    (image,) = graph.input
    dims = image.type.tensor_type.shape.dim
    assert image.name == "image" and dims[0].dim_value == 3 and dims[1].dim_param and dims[2].dim_param
    assert [o.name for o in graph.output] == ["boxes", "labels", "scores"]


def test_dynamic_sizes_match_pytorch(tiny_onnx: ExportReport, tiny_artifact: Path) -> None:
    detector, _ = load_model(tiny_artifact)
    runtime = OnnxDetector(tiny_onnx.path, device="cpu")
    images = [torch.rand(3, 150, 40, generator=torch.Generator().manual_seed(5)), torch.rand(3, 33, 77)]
    ours = runtime.predict(images)
    theirs = [detector.predict([image])[0] for image in images]  # a batch would pad both to one size
    assert [d.image_size for d in ours] == [(150, 40), (33, 77)]
    assert all(int(d.labels.max()) <= 1 for d in ours if len(d))
    report = compare_detections(theirs, ours)
    assert report.count_mismatch == 0 and report.label_mismatch == 0
    assert report.max_box_diff_px < 0.05 and report.max_score_diff < 1e-3


def test_parity_failure_raises_and_leaves_no_file(
    tiny_artifact: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = OnnxDetector.run_graph

    def shifted(self: OnnxDetector, image: np.ndarray) -> list[np.ndarray]:
        boxes, labels, scores = real(self, image)
        return [boxes + 1.5, labels, scores]

    monkeypatch.setattr(OnnxDetector, "run_graph", shifted)
    out = tmp_path / "model.onnx"
    expected = r"model\.onnx.*parity.*boxes differ by up to 1\.50\d* px \(tolerance 0\.05\)"
    expected += r".*in float64 where PyTorch disagrees: boxes differ by up to 1\.50"  # off from exact arithmetic too
    with pytest.raises(ExportError, match=expected):
        export_model(tiny_artifact, format="onnx", out=out)
    assert list(tmp_path.iterdir()) == []


def test_parity_tolerance_is_respected(
    tiny_onnx: ExportReport, tiny_artifact: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = OnnxDetector.run_graph

    def noisy(self: OnnxDetector, image: np.ndarray) -> list[np.ndarray]:
        boxes, labels, scores = real(self, image)
        return [boxes - 0.5, labels, scores + 0.002]

    monkeypatch.setattr(OnnxDetector, "run_graph", noisy)
    detector, _ = load_model(tiny_artifact)
    images = synthetic_images(64, 96)
    report = run_parity(detector, OnnxDetector(tiny_onnx.path), images, tolerance=ParityTolerance(box_px=1, score=0.01))
    assert report.max_box_diff_px == pytest.approx(0.5, abs=0.01)
    assert report.max_score_diff == pytest.approx(0.002, abs=1e-4)
    with pytest.raises(ExportError, match=r"scores differ by up to 0\.002.*\(tolerance 0\.001\)"):
        run_parity(detector, OnnxDetector(tiny_onnx.path), images, tolerance=ParityTolerance(box_px=1))


def test_unsupported_family_format_and_opset_are_clear() -> None:
    with pytest.raises(ExportError, match=r"yolo11n: ONNX export of 'yolo' models is not supported; supported: Faster"):
        check_onnx_exportable("yolo11n", "yolo", 17)
    with pytest.raises(ExportError, match=r"opset: expected an integer in 11\.\.20, got 9"):
        check_onnx_exportable("fasterrcnn_resnet50_fpn", "fasterrcnn", 9)
    check_onnx_exportable("retinanet_resnet50_fpn", "retinanet", 17)


def test_bad_format_and_opset_fail_before_export(tiny_artifact: Path, tmp_path: Path) -> None:
    with pytest.raises(ExportError, match=r"format: expected one of \('onnx', 'torchscript'\), got 'tflite'"):
        export_model(tiny_artifact, format="tflite", out=tmp_path)  # type: ignore[arg-type]
    with pytest.raises(ExportError, match="opset"):
        export_model(tiny_artifact, format="onnx", out=tmp_path, opset=7)
    assert list(tmp_path.iterdir()) == []


def test_not_a_detforge_onnx(tmp_path: Path) -> None:
    from onnx import TensorProto, helper

    node = helper.make_node("Identity", ["x"], ["y"])
    graph = helper.make_graph(
        [node],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])],
    )
    path = tmp_path / "plain.onnx"
    onnx.save(helper.make_model(graph), str(path))
    with pytest.raises(ExportError, match=r"plain\.onnx: not a detforge export"):
        OnnxDetector(path)
    (tmp_path / "junk.onnx").write_bytes(b"not onnx")
    with pytest.raises(ExportError, match=r"junk\.onnx"):
        read_onnx_metadata(tmp_path / "junk.onnx")
