"""ONNX export of a Detector with torch's TorchScript-based exporter (`torch.onnx.export(..., dynamo=False)`).

Every zoo family exports and runs in ONNX Runtime: Faster R-CNN (all backbones), Mask R-CNN, RetinaNet,
FCOS and SSDlite (tests/export/test_families.py). The dynamo exporter (`dynamo=True`) is not used:
`torch.export` fails on these models' data-dependent shapes (proposal counts, NMS). The graph contract is
in `detforge.export.torchscript`.
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path
from typing import Any, cast

import torch

from detforge.export.graph_patches import export_patches
from detforge.export.metadata import ExportError, ExportMetadata
from detforge.export.torchscript import detection_graph
from detforge.fileio import atomic_write_bytes
from detforge.models.detector import Detector

__all__ = ["MAX_OPSET", "MIN_OPSET", "ONNX_FAMILIES", "check_onnx_exportable", "export_onnx", "read_onnx_metadata"]

ONNX_FAMILIES: dict[str, str] = {
    "fasterrcnn": "Faster R-CNN",
    "maskrcnn": "Mask R-CNN (masks as [N, 1, H, W] probabilities)",
    "retinanet": "RetinaNet",
    "fcos": "FCOS",
    "ssd": "SSDlite",
    "gfl": "detforge one-stage (GFL)",
}
"""Model families (`ModelInfo.family`) that export to ONNX and pass the parity check."""

MIN_OPSET = 11
"""torchvision's detection ops (RoIAlign, NMS, dynamic resize) need opset 11 or later."""
MAX_OPSET = 20
"""Highest opset torch's TorchScript-based exporter writes."""

_SAMPLE_SIZE = (3, 96, 128)


def _onnx() -> Any:
    try:
        import onnx
    except ImportError as exc:
        raise ExportError(f"ONNX export needs the onnx package ({exc}); pip install 'detforge[deploy]'") from None
    return onnx


def check_onnx_exportable(model_name: str, family: str, opset: int) -> None:
    """ExportError naming the model (and the families that work) or the opset when the export cannot work."""
    if family not in ONNX_FAMILIES:
        works = ", ".join(ONNX_FAMILIES.values())
        raise ExportError(f"{model_name}: ONNX export of {family!r} models is not supported; supported: {works}")
    if isinstance(opset, bool) or not isinstance(opset, int) or not MIN_OPSET <= opset <= MAX_OPSET:
        raise ExportError(f"opset: expected an integer in {MIN_OPSET}..{MAX_OPSET}, got {opset!r}")


def export_onnx(detector: Detector, metadata: ExportMetadata, out: Path, *, opset: int = 17) -> Path:
    """Write `detector` as ONNX to `out` atomically: input `image` float32 [3, H, W] (H, W dynamic), outputs
    `boxes`, `labels`, `scores` (and `masks`), `metadata` as JSON strings in `metadata_props`.
    ExportError naming the model and the exporter's message when the export fails."""
    onnx = _onnx()
    graph = detection_graph(detector)
    names = ["boxes", "labels", "scores"] + (["masks"] if detector.has_masks else [])
    axes: dict[str, dict[int, str]] = {"image": {1: "height", 2: "width"}}
    axes.update({name: {0: "detections"} for name in names})
    if detector.has_masks:
        axes["masks"] = {0: "detections", 2: "height", 3: "width"}
    buffer = io.BytesIO()
    sample = torch.rand(_SAMPLE_SIZE, generator=torch.Generator().manual_seed(0))
    try:
        with torch.no_grad(), warnings.catch_warnings(), export_patches(detector.model):
            warnings.simplefilter("ignore")  # tracer warnings about Python values; the graph is checked by parity
            torch.onnx.export(
                graph,
                (sample,),
                cast(Any, buffer),  # the TorchScript-based exporter writes to file objects too
                dynamo=False,
                opset_version=opset,
                input_names=["image"],
                output_names=names,
                dynamic_axes=axes,
                do_constant_folding=True,
            )
    except Exception as exc:  # the exporter raises many unrelated types
        raise ExportError(f"{metadata.model_name}: ONNX export (opset {opset}) failed: {exc}") from exc
    proto = onnx.load_from_string(buffer.getvalue())
    del proto.metadata_props[:]
    for key, value in metadata.to_props().items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    proto.producer_name = "detforge"
    proto.producer_version = metadata.detforge_version
    return atomic_write_bytes(out, proto.SerializeToString())


def read_onnx_metadata(path: str | Path) -> ExportMetadata:
    """The ExportMetadata of a detforge ONNX file (ExportError naming the file when it is not one)."""
    onnx = _onnx()
    try:
        proto = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # protobuf decode errors have no stable type
        raise ExportError(f"{path}: not an ONNX file ({type(exc).__name__}: {exc})") from None
    props = {p.key: p.value for p in proto.metadata_props}
    return ExportMetadata.from_props(props, where=str(path))
