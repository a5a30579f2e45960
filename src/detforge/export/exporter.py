"""export_model: a detforge model artifact -> a checked ONNX or TorchScript file."""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, get_args

from torch import Tensor

from detforge.export.metadata import ExportError, ExportMetadata
from detforge.export.onnx import check_onnx_exportable, export_onnx
from detforge.export.parity import (
    Float64Reference,
    ParityReport,
    ParityTolerance,
    load_parity_images,
    run_parity,
    synthetic_images,
)
from detforge.export.runtime import OnnxDetector, artifact_metadata
from detforge.export.torchscript import TorchScriptDetector, export_torchscript
from detforge.inference.predictor import SupportsPredict
from detforge.models.artifact import load_model
from detforge.models.file_kind import export_target, export_target_problem
from detforge.models.zoo import MODELS
from detforge.outdir import OutputFolderError

__all__ = ["ExportFormat", "ExportReport", "export_model"]

log = logging.getLogger(__name__)

ExportFormat = Literal["onnx", "torchscript"]


@dataclass(frozen=True)
class ExportReport:
    """An export that passed its parity check: the file, its format and metadata, the parity numbers,
    the file size (bytes) and the time the export and check took (s)."""

    path: Path
    format: ExportFormat
    metadata: ExportMetadata
    parity: ParityReport
    size_bytes: int
    seconds: float


def export_model(
    model_path: str | Path,
    *,
    format: ExportFormat = "onnx",
    out: str | Path,
    opset: int = 17,
    parity_images: Sequence[str | Path | Tensor] | None = None,
    tolerance: ParityTolerance = ParityTolerance(),
    overwrite: bool = False,
) -> ExportReport:
    """Export the detforge model artifact at `model_path` to `out` (a file, or a folder that gets
    `<model stem>.onnx` / `.ts`) and check it against PyTorch.

    The exported graph takes one float32 [3, H, W] image in [0, 1] (any H, W) and returns boxes (XYXY px of
    that image), labels 0..K-1 and scores (and masks for Mask R-CNN) — see `detforge.export.torchscript`.
    ONNX (opset `opset`, 11..20) works for every zoo family: Faster R-CNN, Mask R-CNN, RetinaNet, FCOS,
    SSDlite; TorchScript too. Parity runs both models on `parity_images` (files or [3, H, W] tensors;
    default four synthetic images of odd portrait and landscape sizes that the model resizes down, up and by
    its max_size, see `parity.parity_image_sizes`) and must agree within `tolerance`, with PyTorch or, where
    float32 rounding alone moves PyTorch's boxes further, with its graph run in float64 (`parity.Float64Reference`).
    The file appears at `out` only once the check passed. An existing file there is replaced then (atomically)
    when it is an earlier detforge export, or any file with `overwrite`; otherwise OutputFolderError before
    anything is done (as for a folder, or the model file itself: see `file_kind.export_target_problem`).
    Raises ExportError (unsupported model, format or opset, exporter failure, parity numbers beyond
    tolerance) and CheckpointError (unreadable artifact).
    """
    if format not in get_args(ExportFormat):
        raise ExportError(f"format: expected one of {get_args(ExportFormat)}, got {format!r}")
    start = time.perf_counter()
    source = Path(model_path)
    target = export_target(source, out, format)
    problem = export_target_problem(target, source=source, overwrite=overwrite)
    if problem is not None:
        raise OutputFolderError(problem)
    detector, spec = load_model(source, device="cpu")
    info = MODELS[spec.model_name]
    if format == "onnx":
        check_onnx_exportable(spec.model_name, info.family, opset)
    target.parent.mkdir(parents=True, exist_ok=True)
    pending = target.with_name(f".{target.name}.checking{target.suffix}")
    metadata = artifact_metadata(detector, spec, format)
    images = load_parity_images(parity_images) if parity_images else synthetic_images(spec.min_size, spec.max_size)
    try:
        candidate: SupportsPredict
        if format == "onnx":
            export_onnx(detector, metadata, pending, opset=opset)
            candidate = OnnxDetector(pending, device="cpu")
        else:
            export_torchscript(detector, metadata, pending)
            candidate = TorchScriptDetector(pending, device="cpu")
        exact = Float64Reference(detector)  # built only when float32 PyTorch and the export disagree
        what = f"{target} ({spec.model_name})"
        parity = run_parity(detector, candidate, images, tolerance=tolerance, what=what, exact=exact)
        os.replace(pending, target)
    finally:
        with contextlib.suppress(FileNotFoundError):
            pending.unlink()
    seconds = time.perf_counter() - start
    log.info(
        "exported %s to %s in %.1f s: parity max box diff %.3g px, max score diff %.3g over %d detections",
        source,
        target,
        seconds,
        parity.max_box_diff_px,
        parity.max_score_diff,
        parity.detections,
    )
    return ExportReport(target, format, metadata, parity, target.stat().st_size, seconds)
