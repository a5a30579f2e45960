"""Open any detforge model file as a Predictor: the one opener behind `detforge predict/eval/index` and the
service, so that a file runs on the same backend whichever command opens it.

A model file is a model artifact (`model.pt`, run eagerly by PyTorch), an ONNX export (`.onnx`, run by
ONNX Runtime or OpenVINO) or a TorchScript export (`.ts`); anything else (a training checkpoint, a plain
`torch.save` file, a renamed file) is refused by `models.file_kind.model_file_problem` before it is loaded.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, cast

from detforge.errors import CheckpointError, ConfigError
from detforge.export.runtime import Device, OnnxRuntime, load_backend
from detforge.inference.predictor import Predictor
from detforge.inference.read import configure_reading
from detforge.models.file_kind import model_file_problem
from detforge.reading import Reader

__all__ = ["EXPORTED_SUFFIXES", "open_predictor"]

EXPORTED_SUFFIXES = (".onnx", ".ts")
"""Suffixes of exported model files (run by an exported backend, not eager PyTorch)."""


def open_predictor(
    model: str | Path,
    *,
    device: str = "auto",
    runtime: str = "auto",
    score_threshold: float | None = None,
    read: bool | None = None,
    read_classes: Sequence[str] | None = None,
    read_pattern: str | None = None,
    read_allow: str | None = None,
    reader: Reader | None = None,
    read_threads: int | None = None,
    **kwargs: Any,
) -> Predictor:
    """A Predictor of the model file `model`, by what the file is:

    - `.onnx`: `load_backend` with `runtime` ("auto", "onnxruntime", "openvino"); class names, category
      ids, calibrated threshold and read settings from the file's metadata;
    - `.ts`: TorchScriptDetector, same metadata;
    - a model artifact (`model.pt`): its Detector, run by PyTorch (its spec gives the same).

    `score_threshold` None keeps the model's calibrated threshold. `device`: "auto", "cpu", "cuda" (and
    "cuda:N" for an artifact). Other keywords go to `Predictor` (batch_size, tile, flip_tta, ...).
    Reading is set up by `inference.read.configure_reading` (stored settings unless `read`, `read_classes`,
    `read_pattern`, `read_allow` override them; `reader` replaces the built-in recogniser, built with
    `runtime` and `read_threads` intra-op threads, None: every core).

    CheckpointError when `model` is not a file or not a model file (saying what it is and which files are
    models; for a training checkpoint, the run's model.pt), or from the artifact loader; ConfigError when
    `runtime` is not "auto" for a file other than .onnx; ExportError naming the file for an export that
    does not load.
    """
    path = Path(model)
    if not path.is_file():
        raise CheckpointError(
            f"model: {path} is not a file; expected a model artifact (model.pt) or an exported .onnx / .ts file"
        )
    problem = model_file_problem(path)
    if problem is not None:
        raise CheckpointError(problem)
    suffix = path.suffix.lower()
    if runtime != "auto" and suffix != ".onnx":
        raise ConfigError(f"runtime {runtime!r}: only an .onnx model has a choice of runtime; {path} is not one")
    predictor: Predictor
    if suffix in EXPORTED_SUFFIXES:
        backend = load_backend(path, device=cast(Device, device), runtime=cast(OnnxRuntime, runtime))
        if score_threshold is not None:
            kwargs["score_threshold"] = score_threshold
        predictor = backend.predictor(**kwargs)
        if len(backend.metadata.category_ids) == predictor.num_classes:  # as an artifact's spec gives them
            predictor.category_ids = tuple(backend.metadata.category_ids)
    else:
        predictor = Predictor(path, device=device, score_threshold=score_threshold, **kwargs)
    configure_reading(
        predictor,
        read=read,
        read_classes=read_classes,
        read_pattern=read_pattern,
        read_allow=read_allow,
        reader=reader,
        runtime=runtime,
        threads=read_threads,
    )
    return predictor
