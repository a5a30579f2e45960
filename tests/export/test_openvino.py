"""The OpenVINO runtime: same detections as ONNX Runtime and PyTorch, float32, chosen by load_backend."""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

import pytest
import torch

from detforge.errors import ConfigError
from detforge.export import (
    ExportError,
    ExportReport,
    OnnxDetector,
    OpenVinoDetector,
    benchmark_model,
    compare_detections,
    load_backend,
)
from detforge.export import openvino as openvino_module
from detforge.models import load_model

pytest.importorskip("openvino")


def _images() -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(11)
    return [torch.rand(3, 150, 40, generator=g), torch.rand(3, 33, 77, generator=g), torch.rand(3, 64, 85, generator=g)]


def test_openvino_matches_pytorch_and_onnxruntime(tiny_onnx: ExportReport, tiny_artifact: Path) -> None:
    runtime = OpenVinoDetector(tiny_onnx.path, threads=1)
    assert (runtime.num_classes, runtime.class_names, runtime.score_threshold) == (2, ("cat", "dog"), 0.25)
    assert (runtime.min_size, runtime.max_size) == (64, 96)
    detector, _ = load_model(tiny_artifact)
    ours = runtime.predict(_images())
    assert [d.image_size for d in ours] == [(150, 40), (33, 77), (64, 85)]  # any size: dynamic shapes
    theirs = [detector.predict([image])[0] for image in _images()]
    onnxruntime = OnnxDetector(tiny_onnx.path, device="cpu").predict(_images())
    assert sum(len(d) for d in theirs) > 0
    for reference in (theirs, onnxruntime):
        report = compare_detections(reference, ours)
        assert report.count_mismatch == 0 and report.label_mismatch == 0
        assert report.max_box_diff_px < 0.05 and report.max_score_diff < 1e-3


def test_openvino_computes_in_float32(tiny_onnx: ExportReport) -> None:
    # OpenVINO's own default on CPUs with AVX-512 BF16 is bfloat16: 1.7x slower without AMX, scores off by 0.07
    runtime = OpenVinoDetector(tiny_onnx.path)
    assert runtime._compiled.get_property("INFERENCE_PRECISION_HINT").get_type_name() == "f32"


def test_calls_from_two_threads_each_get_their_own_image(tiny_onnx: ExportReport) -> None:
    runtime = OpenVinoDetector(tiny_onnx.path, threads=1, static_shapes=2)
    images = _images()
    for image in images + images:  # two of the three sizes get a fixed-size compilation, one does not
        runtime.predict([image])
    assert runtime.fixed_sizes == ((150, 40), (33, 77))
    expected = [runtime.predict([image])[0] for image in images]
    got: dict[int, list[object]] = {}

    def work(k: int) -> None:
        got[k] = [runtime.predict([images[(k + i) % 3]])[0] for i in range(6)]

    threads = [threading.Thread(target=work, args=(k,)) for k in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for k, results in got.items():
        for i, dets in enumerate(results):
            report = compare_detections([expected[(k + i) % 3]], [dets])  # type: ignore[list-item]
            assert report.count_mismatch == 0 and report.max_box_diff_px == 0.0


def test_a_size_seen_twice_gets_its_own_compilation_with_the_same_detections(tiny_onnx: ExportReport) -> None:
    images = _images()
    any_size = OpenVinoDetector(tiny_onnx.path, threads=1, static_shapes=0)
    reference = any_size.predict(images)
    assert OpenVinoDetector(tiny_onnx.path, threads=1).static_shapes == 0  # off unless asked for
    runtime = OpenVinoDetector(tiny_onnx.path, threads=1, static_shapes=2)
    first = runtime.predict(images)  # every size once: nothing compiled for a size yet
    assert runtime.fixed_sizes == ()
    second = runtime.predict(images[1:])  # (33, 77) and (64, 85) again: two sizes allowed
    assert runtime.fixed_sizes == ((33, 77), (64, 85))
    third = runtime.predict(images)  # (150, 40) again, but no slot is left: the any-size graph
    assert runtime.fixed_sizes == ((33, 77), (64, 85))
    assert sum(len(d) for d in reference) > 0
    for got in (first, [first[0], *second], third):
        report = compare_detections(reference, got)
        assert report.count_mismatch == 0 and report.label_mismatch == 0
        assert report.max_box_diff_px < 1e-3 and report.max_score_diff < 1e-5
    assert any_size.fixed_sizes == ()
    with pytest.raises(ExportError, match="static_shapes"):
        OpenVinoDetector(tiny_onnx.path, static_shapes=-1)


def test_a_size_that_cannot_be_compiled_falls_back_once(
    tiny_onnx: ExportReport, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    runtime = OpenVinoDetector(tiny_onnx.path, threads=1, static_shapes=1)
    image = _images()[0]
    calls: list[Any] = []

    def refuse(*args: Any, **kwargs: Any) -> None:
        calls.append(args)
        raise RuntimeError("no kernel for that size")

    monkeypatch.setattr(runtime._core, "compile_model", refuse)
    with caplog.at_level(logging.WARNING, logger="detforge.export.openvino"):
        results = [runtime.predict([image])[0] for _ in range(4)]
    assert len(calls) == 1 and runtime.fixed_sizes == ()  # tried once, then the any-size graph for good
    assert "cannot compile the graph for 40x150 images" in caplog.text
    assert all(compare_detections([results[0]], [r]).max_box_diff_px == 0.0 for r in results)


def test_load_backend_picks_the_runtime(
    tiny_onnx: ExportReport, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    assert isinstance(load_backend(tiny_onnx.path, device="cpu").model, OpenVinoDetector)  # installed: auto
    assert isinstance(load_backend(tiny_onnx.path, runtime="openvino").model, OpenVinoDetector)
    assert isinstance(load_backend(tiny_onnx.path, runtime="onnxruntime").model, OnnxDetector)
    with pytest.raises(ExportError, match=r"runtime: expected one of .*got 'tensorrt'"):
        load_backend(tiny_onnx.path, runtime="tensorrt")  # type: ignore[arg-type]
    with pytest.raises(ExportError, match="device: expected 'auto', 'cpu' or 'cuda', got 'gpu'"):
        load_backend(tiny_onnx.path, device="gpu")  # type: ignore[arg-type]  # was run on the CPU by OpenVINO
    with pytest.raises(ExportError, match="'openvino' runs on the CPU only"):
        load_backend(tiny_onnx.path, device="cuda", runtime="openvino")

    monkeypatch.setattr(openvino_module, "openvino_available", lambda: False)
    assert isinstance(load_backend(tiny_onnx.path, device="cpu").model, OnnxDetector)  # not installed: ORT
    monkeypatch.undo()

    def cannot_compile(self: OpenVinoDetector, path: Path, **kwargs: object) -> None:
        raise ExportError(f"{path}: OpenVINO cannot compile it: unsupported op")

    monkeypatch.setattr(OpenVinoDetector, "__init__", cannot_compile)
    with caplog.at_level(logging.WARNING, logger="detforge.export.runtime"):
        assert isinstance(load_backend(tiny_onnx.path, device="cpu").model, OnnxDetector)
    assert "cannot compile it: unsupported op; running it with ONNX Runtime instead" in caplog.text
    with pytest.raises(ExportError, match="unsupported op"):
        load_backend(tiny_onnx.path, runtime="openvino")  # asked for by name: no quiet fallback


def test_the_verbs_take_a_runtime(tiny_onnx: ExportReport, tiny_artifact: Path, tmp_path: Path) -> None:
    from PIL import Image

    from detforge.api import predict
    from detforge.cli import build_parser
    from detforge.serving import load_served_model

    image = tmp_path / "a.png"
    Image.new("RGB", (90, 70), (120, 30, 200)).save(image)
    for runtime in ("openvino", "onnxruntime"):
        (result,) = predict(tiny_onnx.path, image, runtime=runtime, score_threshold=0.0)
        assert result.ok
    args = build_parser().parse_args(["predict", str(tiny_onnx.path), str(image), "--runtime", "openvino"])
    assert args.runtime == "openvino" and args.handler(args) == 0
    served = load_served_model(tiny_onnx.path, runtime="openvino")
    assert isinstance(served.predictor.model, OpenVinoDetector)  # type: ignore[attr-defined]
    with pytest.raises(ConfigError, match=r"only an \.onnx model has a choice of runtime"):
        predict(tiny_artifact, image, runtime="openvino")
    with pytest.raises(ConfigError, match=r"only an \.onnx model has a choice of runtime"):
        load_served_model(tiny_artifact, runtime="openvino")


def test_benchmark_has_an_openvino_row(tiny_artifact: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from detforge.export import benchmark as benchmark_module

    exports: list[str] = []
    real = benchmark_module.export_model

    def counting(*args: Any, **kwargs: Any) -> Any:
        exports.append(kwargs["format"])
        return real(*args, **kwargs)

    monkeypatch.setattr(benchmark_module, "export_model", counting)
    backends = ("onnx", "openvino", "torchscript")
    rows = benchmark_model(tiny_artifact, backends=backends, runs=2, warmup=1, image_size=(60, 80))
    assert [r.backend for r in rows] == list(backends)
    assert exports == ["onnx", "torchscript"]  # ONNX Runtime and OpenVINO time the same export
    for row in rows:
        assert row.detections > 0 and row.max_box_diff_px < 0.05 and row.count_mismatch == 0
