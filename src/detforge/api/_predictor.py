"""One way for the API verbs to get a Predictor from a model file of any backend."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from detforge.inference import Predictor
    from detforge.reading import Reader

__all__ = ["make_predictor", "refuse_training_checkpoint"]


def refuse_training_checkpoint(model: str | Path) -> None:
    """CheckpointError when `model` is one of a training run's checkpoints (`checkpoints/best.pt`, `last.pt`:
    weights and training state without the model's description), naming the run's `model.pt` to use
    instead (or saying that the run has not written it yet). Reads only the file's zip index and pickle
    (`detforge.models.file_kind`, the check the CLI makes), without torch; anything else passes (the
    loaders judge it)."""
    from detforge.errors import CheckpointError
    from detforge.models.file_kind import file_kind, model_file_problem

    path = Path(model)
    if path.suffix.lower() in (".pt", ".pth") and path.is_file() and file_kind(path)[0] == "checkpoint":
        raise CheckpointError(model_file_problem(path) or str(path))


def make_predictor(
    model: str | Path,
    *,
    score_threshold: float | None = None,
    runtime: str = "auto",
    read: bool | None = None,
    read_classes: Sequence[str] | None = None,
    read_pattern: str | None = None,
    read_allow: str | None = None,
    reader: Reader | None = None,
    **kwargs: Any,
) -> Predictor:
    """A Predictor for a detforge model artifact, or for an exported `.onnx` / `.ts` file
    (`detforge.export.open_model.open_predictor`, which the service uses too; keywords as there).
    CheckpointError naming the run's model.pt for a training checkpoint (`refuse_training_checkpoint`),
    before torch is imported."""
    refuse_training_checkpoint(model)  # before torch is imported: a one-line answer, fast
    from detforge.export.open_model import open_predictor

    return open_predictor(
        model,
        score_threshold=score_threshold,
        runtime=runtime,
        read=read,
        read_classes=read_classes,
        read_pattern=read_pattern,
        read_allow=read_allow,
        reader=reader,
        **kwargs,
    )
