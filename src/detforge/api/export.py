"""`detforge.export_model(...)` and `detforge.benchmark(...)`: deployable model files, checked, and their speed."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from detforge.export import BenchmarkRow, ExportReport

__all__ = ["benchmark", "export_model"]


def export_model(
    model: str | Path,
    *,
    format: str = "onnx",
    out: str | Path | None = None,
    opset: int = 17,
    images: Sequence[str | Path] | None = None,
) -> ExportReport:
    """Export a model artifact to ONNX or TorchScript, with class names, input size and score threshold in
    the file's metadata. A parity check then runs the exported file and PyTorch on `images` (or synthetic
    ones) and fails loudly (ExportError, nothing written) when boxes or scores disagree."""
    from detforge.export import export_model as run_export

    model = Path(model)
    target = Path(out) if out is not None else model.with_suffix(".onnx" if format == "onnx" else ".ts")
    return run_export(model, format=format, out=target, opset=opset, parity_images=images)  # type: ignore[arg-type]


def benchmark(
    model: str | Path,
    *,
    backends: Sequence[str] = ("eager", "onnx"),
    runs: int = 10,
    warmup: int = 2,
    image_size: tuple[int, int] | None = None,
    images: Sequence[str | Path] | None = None,
) -> list[BenchmarkRow]:
    """Latency (median/min/max ms per image) and throughput of each backend on this machine, on the same
    images (photo files `images`, else one synthetic image of `image_size`), with the largest box/score
    difference from eager PyTorch."""
    from detforge.export import benchmark_model

    chosen: Any = tuple(backends)  # validated by benchmark_model
    return benchmark_model(Path(model), backends=chosen, image_size=image_size, runs=runs, warmup=warmup, images=images)
