"""Run exported models: the ONNX Runtime backend and `load_backend`, which opens any detforge model file
(ONNX files run by ONNX Runtime or, through export/openvino.py, OpenVINO).

Every backend satisfies `detforge.inference.SupportsPredict`, so `Predictor(backend.model, ...)` works
the same for an artifact, an ONNX file and a TorchScript file.
"""

from __future__ import annotations

import contextlib
import logging
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, get_args

import numpy as np
import torch

from detforge._version import __version__
from detforge.export.exported_graph import ExportedGraph
from detforge.export.metadata import ExportError, ExportMetadata
from detforge.export.torchscript import TorchScriptDetector
from detforge.inference.predictor import Predictor, SupportsPredict
from detforge.models.artifact import ModelSpec, load_model
from detforge.models.detector import Detector

__all__ = [
    "Backend",
    "BackendKind",
    "OnnxDetector",
    "OnnxRuntime",
    "artifact_metadata",
    "load_backend",
]

log = logging.getLogger(__name__)

BackendKind = Literal["eager", "onnx", "torchscript"]
Device = Literal["auto", "cpu", "cuda"]
OnnxRuntime = Literal["auto", "onnxruntime", "openvino"]
"""Which library runs an ONNX file (see `load_backend`)."""


def _onnxruntime() -> Any:
    try:
        import onnxruntime
    except ImportError as exc:
        raise ExportError(f"ONNX models need the onnxruntime package ({exc}); pip install 'detforge[deploy]'") from None
    return onnxruntime


class OnnxDetector(ExportedGraph):
    """A detforge ONNX export run by ONNX Runtime; `Predictor(OnnxDetector(path))` works.

    device: "auto" uses CUDAExecutionProvider when onnxruntime has it, "cuda" requires it, "cpu" never
    uses it. Sessions use every CPU core for intra-op work and all graph optimisations.
    ExportError naming the file when it is not a detforge ONNX export or cannot be loaded.
    """

    def __init__(self, path: str | Path, *, device: Device = "auto", threads: int | None = None) -> None:
        ort = _onnxruntime()
        self.path = Path(path)
        if not self.path.is_file():
            raise ExportError(f"{self.path}: no such ONNX file")
        available = ort.get_available_providers()
        if device == "cuda" and "CUDAExecutionProvider" not in available:
            raise ExportError(f"device 'cuda': onnxruntime has no CUDAExecutionProvider (it has {available})")
        if device not in ("auto", "cpu", "cuda"):
            raise ExportError(f"device: expected 'auto', 'cpu' or 'cuda', got {device!r}")
        use_cuda = device != "cpu" and "CUDAExecutionProvider" in available
        self.providers = (["CUDAExecutionProvider"] if use_cuda else []) + ["CPUExecutionProvider"]
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads if threads is not None else (os.cpu_count() or 1)
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        try:
            self.session = ort.InferenceSession(str(self.path), sess_options=options, providers=self.providers)
        except Exception as exc:  # onnxruntime raises its own untyped errors for corrupt models
            raise ExportError(f"{self.path}: ONNX Runtime cannot load it: {exc}") from None
        props = dict(self.session.get_modelmeta().custom_metadata_map)
        self._use_metadata(ExportMetadata.from_props(props, where=str(self.path)))
        self.input_name = self.session.get_inputs()[0].name

    def run_graph(self, image: np.ndarray) -> list[np.ndarray]:
        return list(self.session.run(None, {self.input_name: image}))

    def __repr__(self) -> str:
        return (
            f"OnnxDetector({str(self.path)!r}, model={self.metadata.model_name!r}, classes={self.num_classes}, "
            f"providers={self.providers})"
        )


def artifact_metadata(detector: Detector, spec: ModelSpec, format: str) -> ExportMetadata:
    """The ExportMetadata of an artifact's detector and spec, for an export in `format`."""
    params = detector.detection_params
    return ExportMetadata(
        model_name=spec.model_name,
        class_names=spec.class_names,
        category_ids=spec.category_ids,
        min_size=spec.min_size,
        max_size=spec.max_size,
        score_threshold=float(spec.score_threshold),
        score_threshold_calibrated=spec.score_threshold_calibrated,
        detection_score_thresh=params.score_thresh,
        nms_thresh=params.nms_thresh,
        detections_per_img=params.detections_per_img,
        has_masks=detector.has_masks,
        detforge_version=__version__,
        format=format,
        read=spec.read,
    )


@dataclass(frozen=True)
class Backend:
    """A loaded model file: `model` (Detector, OnnxDetector or TorchScriptDetector), what it is (`kind`),
    and its metadata (classes, category ids, thresholds)."""

    kind: BackendKind
    model: SupportsPredict
    metadata: ExportMetadata
    path: Path

    def predictor(self, **kwargs: Any) -> Predictor:
        """A Predictor of this model with its class names, stored score threshold (`threshold_source`
        "calibrated" or "default", as the file's metadata says) and stored read settings (keywords as in
        `Predictor`, which override them; pass `reader` to read, see `inference.read`)."""
        kwargs.setdefault("class_names", self.metadata.class_names)
        kwargs.setdefault("read_settings", self.metadata.read)
        stored = kwargs.get("score_threshold") is None
        if stored:
            kwargs["score_threshold"] = self.metadata.score_threshold
        if self.kind != "eager":
            kwargs.setdefault("device", "cpu")  # the backend keeps its own device; inputs go in as CPU tensors
        predictor = Predictor(self.model, **kwargs)
        if stored:  # the file's threshold: calibrated on validation data, or the default (never "explicit")
            predictor.threshold_source = "calibrated" if self.metadata.score_threshold_calibrated else "default"
        return predictor


def _is_torchscript(path: Path) -> bool:
    try:
        with zipfile.ZipFile(path) as archive:
            return any(name.endswith("constants.pkl") or "/code/" in name for name in archive.namelist())
    except (zipfile.BadZipFile, OSError):
        return False


def _onnx_model(file: Path, device: Device, runtime: OnnxRuntime) -> ExportedGraph:
    if runtime not in get_args(OnnxRuntime):
        raise ExportError(f"runtime: expected one of {get_args(OnnxRuntime)}, got {runtime!r}")
    if device not in get_args(Device):
        raise ExportError(f"device: expected 'auto', 'cpu' or 'cuda', got {device!r}")
    if runtime == "onnxruntime" or device == "cuda":
        if runtime == "openvino":
            raise ExportError("runtime 'openvino' runs on the CPU only; use device 'cpu' or runtime 'onnxruntime'")
        return OnnxDetector(file, device=device)
    from detforge.export.openvino import OpenVinoDetector, openvino_available

    cuda_onnxruntime = False
    if runtime == "auto" and device == "auto":
        with contextlib.suppress(ExportError):  # no onnxruntime: OpenVINO may still run it
            cuda_onnxruntime = "CUDAExecutionProvider" in _onnxruntime().get_available_providers()
    if runtime == "openvino" or (not cuda_onnxruntime and openvino_available()):
        try:
            return OpenVinoDetector(file)
        except ExportError as exc:
            if runtime == "openvino":
                raise
            log.warning("%s; running it with ONNX Runtime instead", exc)
    return OnnxDetector(file, device=device)


def load_backend(path: str | Path, *, device: Device = "auto", runtime: OnnxRuntime = "auto") -> Backend:
    """Open a detforge model file by what it is: `.onnx` -> an ONNX backend, a TorchScript archive (`.ts`,
    `.pt`, ...) -> TorchScriptDetector, anything else -> the artifact's Detector (`load_model`).

    runtime (ONNX files only): "onnxruntime" (OnnxDetector), "openvino" (OpenVinoDetector, CPU only), or
    "auto": ONNX Runtime on a GPU it can use, else OpenVINO when installed (the faster on CPU), else ONNX
    Runtime. ExportError / CheckpointError naming the file when it is none of these."""
    file = Path(path)
    if not file.is_file():
        raise ExportError(f"{file}: no such model file")
    if file.suffix.lower() == ".onnx":
        onnx_model = _onnx_model(file, device, runtime)
        return Backend("onnx", onnx_model, onnx_model.metadata, file)
    torch_device = "cuda" if device != "cpu" and torch.cuda.is_available() else "cpu"
    if device == "cuda" and torch_device != "cuda":
        raise ExportError(f"device 'cuda' requested for {file} but CUDA is not available")
    if _is_torchscript(file):
        scripted = TorchScriptDetector(file, device=torch_device)
        return Backend("torchscript", scripted, scripted.metadata, file)
    detector, spec = load_model(file, device=torch_device)
    return Backend("eager", detector, artifact_metadata(detector, spec, "artifact"), file)
