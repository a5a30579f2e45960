"""Export trained detectors (ONNX, TorchScript) with a parity check, run the exports, and benchmark backends.

`onnx` and `onnxruntime` (the `deploy` extra) are imported only when an ONNX file is written or run, and
`openvino` (the `openvino` extra) only when OpenVINO runs one.
"""

from detforge.export.benchmark import BenchmarkBackend, BenchmarkRow, benchmark_model, benchmark_table
from detforge.export.exported_graph import ExportedGraph
from detforge.export.exporter import ExportFormat, ExportReport, export_model
from detforge.export.metadata import METADATA_KEYS, ExportError, ExportMetadata
from detforge.export.onnx import ONNX_FAMILIES, check_onnx_exportable, export_onnx, read_onnx_metadata
from detforge.export.openvino import OpenVinoDetector
from detforge.export.parity import (
    ParityReport,
    ParityTolerance,
    compare_detections,
    load_parity_images,
    run_parity,
    synthetic_image,
    synthetic_images,
)
from detforge.export.runtime import (
    Backend,
    BackendKind,
    OnnxDetector,
    OnnxRuntime,
    artifact_metadata,
    load_backend,
)
from detforge.export.torchscript import TorchScriptDetector, export_torchscript, graph_detections

__all__ = [
    "METADATA_KEYS",
    "ONNX_FAMILIES",
    "Backend",
    "BackendKind",
    "BenchmarkBackend",
    "BenchmarkRow",
    "ExportError",
    "ExportFormat",
    "ExportMetadata",
    "ExportReport",
    "ExportedGraph",
    "OnnxDetector",
    "OnnxRuntime",
    "OpenVinoDetector",
    "ParityReport",
    "ParityTolerance",
    "TorchScriptDetector",
    "artifact_metadata",
    "benchmark_model",
    "benchmark_table",
    "check_onnx_exportable",
    "compare_detections",
    "export_model",
    "export_onnx",
    "export_torchscript",
    "graph_detections",
    "load_backend",
    "load_parity_images",
    "read_onnx_metadata",
    "run_parity",
    "synthetic_image",
    "synthetic_images",
]
