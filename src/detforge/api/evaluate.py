"""`detforge.evaluate(...)`: COCO metrics, analysis and report for a model or a detections file."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

from detforge.api.data import DataLike, _as_dataset
from detforge.data.dataset import Dataset
from detforge.errors import DatasetError

if TYPE_CHECKING:
    from detforge.evaluation import Calibration, EvaluationResult
    from detforge.inference import Predictor
    from detforge.structures.detections import Detections

__all__ = ["evaluate", "predict_dataset"]

log = logging.getLogger(__name__)


def _split_of(dataset: Dataset, split: str | None) -> Dataset:
    if split is None or not dataset.subsets:
        if split is not None:
            log.warning("the dataset has no subsets; evaluating all %d images", len(dataset))
        return dataset
    return dataset.subset(split)


def predict_dataset(predictor: Predictor, dataset: Dataset) -> dict[int, Detections]:
    """Run `predictor` on every image of `dataset`; labels are mapped to the dataset's class indices by name.

    Raises DatasetError when the model's classes are not the dataset's, or an image cannot be read.
    """
    import torch

    names = dataset.categories.names
    missing = [n for n in predictor.class_names if n not in names]
    if missing:
        raise DatasetError(
            f"the model predicts classes {missing} that the dataset at {dataset.root} does not have "
            f"(dataset classes: {list(names)})"
        )
    to_dataset = torch.tensor([names.index(n) for n in predictor.class_names], dtype=torch.int64)
    by_path = {im.path: im.id for im in dataset.images}
    predictions: dict[int, Detections] = {}
    for result in predictor.predict_many([im.path for im in dataset.images], on_error="report"):
        if result.detections is None or result.path is None:
            raise DatasetError(f"{result.source}: cannot predict on this image: {result.error}")
        dets = result.detections
        predictions[by_path[result.path]] = type(dets)(
            dets.boxes, to_dataset[dets.labels], dets.scores, dets.image_size, dets.masks
        )
    return predictions


def evaluate(
    model: str | Path | None,
    data: DataLike,
    *,
    split: str | None = "test",
    out: str | Path | None = None,
    detections: str | Path | None = None,
    score_threshold: float | None = None,
    bootstrap: int = 200,
    seed: int = 0,
    device: str = "auto",
    batch_size: int = 4,
    format: str | None = None,
    calibrate: bool = False,
    target_precision: float | None = None,
    runtime: str = "auto",
) -> EvaluationResult:
    """COCO AP/AR (COCO-exact), per-class table, PR/F1 curves, confusion matrix, error breakdown and
    bootstrap confidence intervals of `model` (a model artifact, or an exported .onnx/.ts file) on the
    `split` subset of `data`. `runtime` runs an .onnx model with "onnxruntime", "openvino" or "auto".

    With `detections` (a COCO results JSON from any source) no model is needed: pass `model=None`.
    With `out`, writes `out/report.html`, plots, worst-image gallery and `metrics.json`.
    `score_threshold` sets the operating point of the confusion matrix and gallery (default: the
    best-F1 threshold found here).
    `calibrate` stores a score threshold found on this split in the model artifact (use the validation
    split): the best-F1 one, or with `target_precision` the lowest reaching that precision. predict and
    serve then use it unless told otherwise.
    """
    from detforge.evaluation import evaluate_predictions, load_coco_results

    dataset = _split_of(_as_dataset(data, format), split)
    if (model is None) == (detections is None):
        raise DatasetError("evaluate: give either a model or detections=RESULTS.json, not both or neither")
    if detections is not None:
        predictions = load_coco_results(Path(detections), dataset.images, dataset.categories)
    else:
        from detforge.api._predictor import make_predictor

        assert model is not None
        predictor = make_predictor(model, device=device, runtime=runtime, batch_size=batch_size, score_threshold=0.0)
        predictions = predict_dataset(predictor, dataset)
    result = evaluate_predictions(
        dataset.images,
        dataset.annotations,
        dataset.categories,
        predictions,
        out_dir=out,
        score_threshold=score_threshold,
        bootstrap_n=bootstrap,
        seed=seed,
    )
    if calibrate:
        if model is None or Path(model).suffix.lower() != ".pt":
            raise DatasetError("calibrate needs a detforge model artifact (model.pt) to store the threshold in")
        store_threshold(Path(model), result, target_precision)
    return result


def store_threshold(model: Path, result: EvaluationResult, target_precision: float | None) -> float:
    """Calibrate on `result`'s PR curves and write the threshold into the artifact `model` (atomically)."""
    from detforge.evaluation import calibrate_threshold

    if target_precision is None:
        calibration = calibrate_threshold(result.pr, mode="f1")
    else:
        calibration = calibrate_threshold(result.pr, mode="precision", target_precision=target_precision)
    return write_score_threshold(model, calibration)


def write_score_threshold(model: Path, calibration: Calibration) -> float:
    """Store `calibration.threshold` as the score threshold of the artifact `model` (atomically)."""
    from dataclasses import replace

    from detforge.models.artifact import load_model, save_model

    detector, spec = load_model(model)
    save_model(model, detector, replace(spec, score_threshold=float(calibration.threshold)))
    log.info(
        "stored score threshold %.3f in %s (%s: precision %.3f, recall %.3f, F1 %.3f)",
        calibration.threshold,
        model,
        calibration.mode,
        calibration.precision,
        calibration.recall,
        calibration.f1,
    )
    return float(calibration.threshold)
