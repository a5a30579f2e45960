"""One way for the API verbs to get a Predictor from a model file of any backend."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from detforge.errors import ConfigError

if TYPE_CHECKING:
    from detforge.inference import Predictor
    from detforge.reading import Reader

__all__ = ["EXPORTED_SUFFIXES", "make_predictor", "refuse_training_checkpoint"]

EXPORTED_SUFFIXES = (".onnx", ".ts")
"""Model files served by an exported backend (ONNX Runtime, TorchScript) instead of eager PyTorch."""


_CHECKPOINT_FORMATS = (b"detforge-train-checkpoint", b"detforge-best-weights")
"""The `format` values of a run's checkpoints (engine.checkpoint's last.pt, engine.callbacks' best.pt)."""


def refuse_training_checkpoint(model: str | Path) -> None:
    """CheckpointError when `model` is one of a training run's checkpoints (`checkpoints/best.pt`, `last.pt`:
    weights and training state without the model's description), naming the run's `model.pt` to use
    instead (or saying that the run has not written it yet). Reads only the file's zip index and pickle
    header, without torch; anything else passes (the loaders judge it)."""
    import zipfile

    from detforge.errors import CheckpointError

    path = Path(model)
    if path.suffix.lower() not in (".pt", ".pth") or not path.is_file() or not zipfile.is_zipfile(path):
        return
    try:
        with zipfile.ZipFile(path) as archive:
            pickled = next((n for n in archive.namelist() if n.endswith("/data.pkl") or n == "data.pkl"), None)
            head = archive.open(pickled).read(4096) if pickled is not None else b""
    except (OSError, zipfile.BadZipFile, RuntimeError):
        return
    if not any(kind in head for kind in _CHECKPOINT_FORMATS):
        return
    run = path.parent.parent if path.parent.name == "checkpoints" else path.parent
    artifact = run / "model.pt"
    if artifact.is_file():
        use = f"use the run's model file {artifact}"
    else:
        use = f"the run {run} has no model.pt yet: `detforge train` writes it when the run ends (resume with --resume)"
    raise CheckpointError(f"{path} is a training checkpoint (to resume training), not a model file; {use}")


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
    """A Predictor for a detforge model artifact, or for an exported `.onnx` / `.ts` file (run by ONNX
    Runtime or OpenVINO / TorchScript, with class names and calibrated threshold from the file's metadata).
    `score_threshold` None keeps the model's calibrated threshold; `runtime` picks the library for an .onnx
    file ("auto", "onnxruntime", "openvino"; see `load_backend`) and for the recogniser; other keywords go
    to `Predictor`. ConfigError for a runtime other than "auto" with a model that is not an .onnx file;
    CheckpointError naming the run's model.pt for a training checkpoint (`refuse_training_checkpoint`).

    Reading (text in the boxes): the model's stored settings (ModelSpec.read / ExportMetadata.read) apply
    by default; `read` True reads a model without them (every class, or `read_classes`), False never
    reads; `read_classes`, `read_pattern`, `read_allow` override the stored values (see
    `inference.read.resolve_read_settings`). The recogniser is `build_reader(settings, runtime=...)` unless
    a `reader` is given."""
    refuse_training_checkpoint(model)  # before torch is imported: a one-line answer, fast
    from detforge.inference import Predictor
    from detforge.inference.read import configure_reading

    path = Path(model)
    if runtime != "auto" and path.suffix.lower() != ".onnx":
        raise ConfigError(f"runtime {runtime!r}: only an .onnx model has a choice of runtime; {path} is not one")
    predictor: Predictor
    if path.suffix.lower() in EXPORTED_SUFFIXES:
        from detforge.export import load_backend

        device = kwargs.pop("device", "auto")
        if score_threshold is not None:
            kwargs["score_threshold"] = score_threshold
        predictor = load_backend(path, device=device, runtime=runtime).predictor(**kwargs)  # type: ignore[arg-type]
    else:
        predictor = Predictor(path, score_threshold=score_threshold, **kwargs)
    configure_reading(
        predictor,
        read=read,
        read_classes=read_classes,
        read_pattern=read_pattern,
        read_allow=read_allow,
        reader=reader,
        runtime=runtime,
    )
    return predictor
