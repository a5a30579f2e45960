"""`detforge.export_model(...)` and `detforge.benchmark(...)`: deployable model files, checked, and their speed."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from detforge.progress import scoped_by_progress

if TYPE_CHECKING:
    from detforge.export import BenchmarkRow, ExportReport

__all__ = ["benchmark", "export_model"]


@scoped_by_progress
def export_model(
    model: str | Path,
    *,
    format: str = "onnx",
    out: str | Path | None = None,
    opset: int = 17,
    images: Sequence[str | Path] | None = None,
    progress: bool = True,
) -> ExportReport:
    """Export a model artifact to ONNX or TorchScript, with class names, input size and score threshold in
    the file's metadata. A parity check then runs the exported file and PyTorch on `images` (or synthetic
    ones) and fails loudly (ExportError, nothing written) when boxes or scores disagree. `progress`: a bar on
    stderr (when it is a terminal) during the parity check. A training checkpoint (`checkpoints/best.pt`)
    gets a CheckpointError naming the run's `model.pt`."""
    from detforge.api._predictor import refuse_training_checkpoint

    refuse_training_checkpoint(model)  # names the run's model.pt
    from detforge.export import export_model as run_export

    model = Path(model)
    target = Path(out) if out is not None else model.with_suffix(".onnx" if format == "onnx" else ".ts")
    return run_export(model, format=format, out=target, opset=opset, parity_images=images)  # type: ignore[arg-type]


@scoped_by_progress
def benchmark(
    model: str | Path,
    *,
    backends: Sequence[str] = ("eager", "onnx"),
    runs: int = 10,
    warmup: int = 2,
    image_size: tuple[int, int] | None = None,
    images: Sequence[str | Path] | None = None,
    progress: bool = True,
) -> list[BenchmarkRow]:
    """Latency (median/min/max ms per image) and throughput of each backend on this machine, on the same
    images (photo files `images`, else one synthetic image of `image_size`), with the largest box/score
    difference from eager PyTorch. `progress`: a bar per backend on stderr, when it is a terminal."""
    from detforge.api._predictor import refuse_training_checkpoint

    refuse_training_checkpoint(model)  # names the run's model.pt
    from detforge.export import benchmark_model

    chosen: Any = tuple(backends)  # validated by benchmark_model
    return benchmark_model(Path(model), backends=chosen, image_size=image_size, runs=runs, warmup=warmup, images=images)
