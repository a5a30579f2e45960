"""`detforge.evaluate(...)`: COCO metrics, analysis and report for a model or a detections file."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from detforge.api.data import DataLike, _as_dataset
from detforge.data.dataset import Dataset
from detforge.errors import ConfigError, DatasetError
from detforge.outdir import check_output_folder, output_folder
from detforge.progress import scoped_by_progress, track
from detforge.ranges import FRACTION, NON_NEGATIVE_INT, POSITIVE_INT, PRECISION, check_numbers
from detforge.thresholds import EVAL_SCORE_THRESHOLD

if TYPE_CHECKING:
    from detforge.evaluation import DetectionTable, EvaluationResult
    from detforge.inference import Predictor
    from detforge.structures.detections import Detections

__all__ = ["evaluate", "predict_dataset"]

log = logging.getLogger(__name__)


def _split_of(dataset: Dataset, split: str | None) -> Dataset:
    if split is None or not dataset.subsets:
        if split is not None:
            log.warning("the dataset has no subsets; evaluating all %d images", len(dataset))
        return dataset
    if split not in dataset.subsets:
        raise DatasetError(
            f"{dataset.root}: no subset {split!r} to evaluate; subsets: {', '.join(dataset.subsets)} (--split / split=)"
        )
    return dataset.subset(split)


def predict_dataset(predictor: Predictor, dataset: Dataset) -> dict[int, Detections]:
    """Run `predictor` on every image of `dataset`; labels are mapped to the dataset's class indices by name
    (texts read by the predictor, if any, stay with their boxes).

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
    results = predictor.predict_many([im.path for im in dataset.images], on_error="report")
    for result in track(results, desc="predict", total=len(dataset.images)):
        if result.detections is None or result.path is None:
            raise DatasetError(f"{result.source}: cannot predict on this image: {result.error}")
        dets = result.detections
        predictions[by_path[result.path]] = replace(dets, labels=to_dataset[dets.labels])  # texts kept
    return predictions


def _classes_read(predictor: Predictor, dataset: Dataset) -> tuple[str, ...] | None:
    """The classes `predictor` reads that have transcriptions in `dataset` (None: it reads none of them)."""
    if predictor.reader is None or predictor.read_settings is None:
        return None
    labelled = {dataset.categories.by_id(a.category_id).name for a in dataset.annotations if a.text}
    wanted = predictor.read_settings.classes or predictor.class_names
    return tuple(c for c in wanted if c in labelled) or None


@scoped_by_progress
def evaluate(
    model: str | Path | None,
    data: DataLike,
    *,
    split: str | None = "test",
    out: str | Path | None = None,
    overwrite: bool = False,
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
    read: bool | None = None,
    read_classes: Sequence[str] | None = None,
    read_pattern: str | None = None,
    read_allow: str | None = None,
    text_attribute: str | None = None,
    progress: bool = True,
) -> EvaluationResult:
    """COCO AP/AR (COCO-exact), per-class table, PR/F1 curves, confusion matrix, error breakdown and
    bootstrap confidence intervals of `model` (a model artifact, or an exported .onnx/.ts file) on the
    `split` subset of `data`. `runtime` runs an .onnx model with "onnxruntime", "openvino" or "auto".

    With `detections` (a COCO results JSON from any source) no model is needed: pass `model=None`.
    With `out`, writes `out/report.html`, plots, worst-image gallery and `metrics.json`; `out` must be new,
    empty or an earlier `eval` output, which is replaced as a whole (`overwrite` replaces any folder).
    `score_threshold` sets the operating point of the confusion matrix and gallery (default: the
    best-F1 threshold found here).
    `calibrate` stores a score threshold found on this split in the model artifact (use the validation
    split): the best-F1 one, or with `target_precision` the lowest reaching that precision. predict and
    serve then use it unless told otherwise.

    Reading: when the ground truth has transcriptions and the detections carry texts (a model that reads,
    or a results file with "text" keys), the result's `read` holds read accuracy (exact match, character
    error rate, end-to-end recall next to detection recall, per-page accuracy, misreads; see
    `evaluation.text_metrics`); `text_attribute` names the box attribute holding the transcription when the
    dataset's format leaves it ambiguous (as in `load_dataset`). A model reads with its stored settings
    (`read` None), or every class (`read` True), or not at all (`read` False); `read_classes`,
    `read_pattern`, `read_allow` override the stored settings as in `predict`, so their effect can be
    measured. Boxes scoring below `score_threshold` (or, without one, `EVAL_SCORE_THRESHOLD`) are not read.
    `progress`: a bar on stderr while the model predicts, when stderr is a terminal.
    """
    check_numbers(
        score_threshold=(FRACTION, score_threshold),
        bootstrap=(NON_NEGATIVE_INT, bootstrap),
        batch_size=(POSITIVE_INT, batch_size),
        target_precision=(PRECISION, target_precision),
    )
    inputs = [p for p in (model, detections) if p is not None] + ([] if isinstance(data, Dataset) else [data])
    if out is not None:
        check_output_folder(out, "eval", overwrite=overwrite, inputs=inputs)  # before torch and the model load
    from detforge.evaluation import evaluate_predictions, read_coco_results
    from detforge.evaluation.gc_pause import gc_paused

    with gc_paused():  # building many small objects: collections there find nothing to free
        dataset = _split_of(_as_dataset(data, format, text_attribute), split)
    if (model is None) == (detections is None):
        raise DatasetError("evaluate: give either a model or detections=RESULTS.json, not both or neither")
    read_floor, measured = 0.0, None
    if detections is not None:
        given = [k for k, v in (("read", read), ("read_classes", read_classes), ("read_pattern", read_pattern),
                                ("read_allow", read_allow)) if v is not None]  # fmt: skip
        if given:
            raise ConfigError(f"{', '.join(given)} apply to a model; a detections file is scored as it is")
        with gc_paused():
            predictions: DetectionTable | dict[int, Detections] = read_coco_results(
                Path(detections), dataset.images, dataset.categories
            )
    else:
        from detforge.api._predictor import make_predictor

        assert model is not None
        predictor = make_predictor(
            model, device=device, runtime=runtime, batch_size=batch_size, score_threshold=0.0,
            read=read, read_classes=read_classes, read_pattern=read_pattern, read_allow=read_allow,
        )  # fmt: skip
        read_floor = score_threshold if score_threshold is not None else EVAL_SCORE_THRESHOLD
        predictor.read_min_box_score = read_floor
        predictions = predict_dataset(predictor, dataset)
        measured = _classes_read(predictor, dataset)
    writing = output_folder(out, "eval", overwrite=overwrite, inputs=inputs) if out is not None else nullcontext()
    with writing as folder:
        result = evaluate_predictions(
            dataset.images,
            dataset.annotations,
            dataset.categories,
            predictions,
            out_dir=folder,
            score_threshold=score_threshold,
            bootstrap_n=bootstrap,
            seed=seed,
            read_floor=read_floor,
            read_classes=measured,
        )
    if folder is not None and result.report is not None:
        result = replace(result, report=Path(out) / result.report.relative_to(folder))  # type: ignore[arg-type]
    if calibrate:
        if model is None or Path(model).suffix.lower() != ".pt":
            raise DatasetError("calibrate needs a detforge model artifact (model.pt) to store the threshold in")
        from detforge.evaluation import deployment_threshold
        from detforge.models.score_threshold import store_score_threshold

        found = deployment_threshold(result.pr, target_precision)
        log.info(
            "score threshold %.3f on this split (%s: precision %.3f, recall %.3f, F1 %.3f)",
            found.threshold, found.mode, found.precision, found.recall, found.f1,
        )  # fmt: skip
        store_score_threshold(Path(model), found.threshold)
    return result
