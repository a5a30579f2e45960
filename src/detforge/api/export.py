"""`detforge.export_model(...)` and `detforge.benchmark(...)`: deployable model files, checked, and their speed."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from detforge.progress import scoped_by_progress
from detforge.ranges import NON_NEGATIVE_INT, POSITIVE_INT, check_numbers, int_range

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
    overwrite: bool = False,
    progress: bool = True,
) -> ExportReport:
    """Export a model artifact to ONNX or TorchScript, with class names, input size and score threshold in
    the file's metadata. A parity check then runs the exported file and PyTorch on `images` (or synthetic
    ones) and fails loudly (ExportError, nothing written) when boxes or scores disagree. `progress`: a bar on
    stderr (when it is a terminal) during the parity check. A training checkpoint (`checkpoints/best.pt`)
    gets a CheckpointError naming the run's `model.pt`.

    The file goes to `out` (a file, or a folder that gets `<model stem>.onnx|.ts`; default beside the model).
    An existing file there is replaced, atomically once the parity check passed, only when it is an
    earlier detforge export, or with `overwrite`; anything else is an OutputFolderError, raised before
    the model loads. The model file itself is never replaced."""
    from detforge.api._predictor import refuse_training_checkpoint
    from detforge.models.file_kind import export_target, export_target_problem
    from detforge.outdir import OutputFolderError

    check_numbers(opset=(int_range(11, 20), opset))
    refuse_training_checkpoint(model)  # names the run's model.pt
    target = export_target(model, out, format)
    problem = export_target_problem(target, source=model, overwrite=overwrite)
    if problem is not None:  # before torch and the model load: a one-line answer, fast
        raise OutputFolderError(problem)
    from detforge.export import export_model as run_export

    return run_export(
        Path(model),
        format=format,  # type: ignore[arg-type]
        out=target,
        opset=opset,
        parity_images=images,
        overwrite=overwrite,
    )


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
    images (photo files `images`, else one synthetic image of `image_size`, else synthetic images of odd
    portrait and landscape sizes, as the export's parity check uses), with the largest box/score difference
    from eager PyTorch; each row names the sizes timed (`image_sizes`). `progress`: a bar per backend on
    stderr, when it is a terminal."""
    from detforge.api._predictor import refuse_training_checkpoint

    check_numbers(runs=(POSITIVE_INT, runs), warmup=(NON_NEGATIVE_INT, warmup))
    refuse_training_checkpoint(model)  # names the run's model.pt
    from detforge.export import benchmark_model

    chosen: Any = tuple(backends)  # validated by benchmark_model
    return benchmark_model(Path(model), backends=chosen, image_size=image_size, runs=runs, warmup=warmup, images=images)
