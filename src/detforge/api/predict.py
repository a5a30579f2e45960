"""`detforge.predict(...)`: run a model on images and write results in the formats other tools read."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from detforge.outdir import check_output_folder, output_folder
from detforge.progress import scoped_by_progress, track

if TYPE_CHECKING:
    from detforge.inference import PredictionResult

__all__ = ["PREDICTION_FORMATS", "predict"]

PREDICTION_FORMATS = ("coco", "yolo", "csv", "cvat", "labelstudio")
_DEFAULT_FILE = {
    "coco": "predictions.json",
    "yolo": "labels",
    "csv": "predictions.csv",
    "cvat": "annotations.xml",
    "labelstudio": "tasks.json",
}


@scoped_by_progress
def predict(
    model: str | Path,
    source: str | Path | Sequence[str | Path],
    *,
    out: str | Path | None = None,
    overwrite: bool = False,
    format: Sequence[str] | str = ("coco",),
    score_threshold: float | None = None,
    save_images: bool = False,
    tile: int | None = None,
    tile_overlap: float = 0.2,
    tta: bool = False,
    batch_size: int = 4,
    device: str = "auto",
    ids_from: str | Path | None = None,
    runtime: str = "auto",
    read: bool | None = None,
    read_classes: Sequence[str] | None = None,
    read_pattern: str | None = None,
    read_allow: str | None = None,
    progress: bool = True,
) -> list[PredictionResult]:
    """Predict on an image file, folder, glob or list; returns one PredictionResult per image.

    `model` is a model artifact (`model.pt`) or an exported `.onnx` / `.ts` file; `runtime` runs an .onnx
    file with "onnxruntime", "openvino" (CPU) or "auto" (OpenVINO on CPU when installed, else ONNX Runtime).

    Boxes are XYXY pixels of each image as displayed (EXIF applied). `score_threshold` overrides the
    model's calibrated threshold (0 keeps everything). With `out`, writes each of `format` (coco
    results JSON, yolo txt folder, csv, cvat XML or labelstudio JSON pre-annotations) and, with
    `save_images`, drawn images under `out/images/`. A bad image is reported, never fatal. `out` must be
    new, empty or an earlier `predict` output, which is replaced as a whole (`overwrite` replaces any
    folder); this is checked before the model loads.
    `tile` (pixels) turns on tiled inference with `tile_overlap`; `tta` adds horizontal-flip TTA.
    `ids_from` (a dataset) makes the COCO results use that dataset's image and category ids, matched
    by image path, then by file name, so `detforge eval --detections` can score them against it.

    Reading: a model with stored read settings (trained on transcriptions) gives each box of a read class
    `text` and `text_score` (in every format but yolo, and on the drawn images); `read=True` reads with a
    model trained without them (every class, or `read_classes`), `read=False` turns reading off, and
    `read_pattern` (a regex the value must match) and `read_allow` (the characters a value may hold)
    override the stored settings.

    `progress`: a bar on stderr while predicting, when stderr is a terminal.
    """
    inputs = [model, *([source] if isinstance(source, (str, Path)) else source)]
    if out is not None:
        check_output_folder(out, "predict", overwrite=overwrite, inputs=inputs)  # before torch and the model load
    from detforge.api._predictor import make_predictor
    from detforge.errors import ConfigError
    from detforge.inference import TileConfig, write_coco_results, write_predictions
    from detforge.inference import save_images as draw_images
    from detforge.inference.sources import iter_sources

    formats = [format] if isinstance(format, str) else list(format)
    for fmt in formats:
        if fmt not in PREDICTION_FORMATS:
            raise ConfigError(f"format {fmt!r}: expected one of {', '.join(PREDICTION_FORMATS)}")
    predictor = make_predictor(
        model,
        device=device,
        runtime=runtime,
        batch_size=batch_size,
        score_threshold=score_threshold,
        tile=TileConfig(size=tile, overlap=tile_overlap) if tile else None,
        flip_tta=tta,
        read=read,
        read_classes=read_classes,
        read_pattern=read_pattern,
        read_allow=read_allow,
    )
    sources = [str(s) for s in source] if isinstance(source, (list, tuple)) else str(source)
    items = list(iter_sources(sources))  # listed first, for the progress bar's total
    results = list(track(predictor.predict_many(items, on_error="report"), desc="predict", total=len(items)))
    if out is not None:
        category_ids: Sequence[int] | None = predictor.category_ids
        image_ids = None
        if ids_from is not None:
            image_ids, category_ids = _dataset_ids(ids_from, results, predictor.class_names)
        with output_folder(out, "predict", overwrite=overwrite, inputs=inputs) as folder:
            for fmt in formats:
                target = folder / _DEFAULT_FILE[fmt]
                if fmt == "coco":
                    write_coco_results(results, target, category_ids=category_ids, image_ids=image_ids)
                else:
                    write_predictions(results, target, fmt, predictor.class_names, category_ids=category_ids)  # type: ignore[arg-type]
            if save_images:
                draw_images(results, folder / "images", predictor.class_names)
    return results


def _dataset_ids(
    data: str | Path, results: Sequence[PredictionResult], class_names: Sequence[str]
) -> tuple[dict[str, int], list[int]]:
    """Image ids (by result source) and category ids (by label) of the dataset at `data`."""
    from detforge.data.formats import load_dataset
    from detforge.errors import DatasetError

    dataset = load_dataset(data)
    by_path = {im.path.resolve(): im.id for im in dataset.images}
    by_name: dict[str, list[int]] = {}
    for im in dataset.images:
        by_name.setdefault(Path(im.file_name).name, []).append(im.id)
    image_ids: dict[str, int] = {}
    for r in results:
        if r.detections is None:
            continue
        found = by_path.get(r.path.resolve()) if r.path is not None else None
        if found is None:
            candidates = by_name.get(Path(r.source).name, [])
            if len(candidates) != 1:
                why = "is not in" if not candidates else "matches several images of"
                raise DatasetError(f"{r.source}: {why} the dataset at {data} (ids_from)")
            found = candidates[0]
        image_ids[r.source] = found
    missing = [n for n in class_names if n not in dataset.categories.names]
    if missing:
        raise DatasetError(f"the model's classes {missing} are not classes of the dataset at {data} (ids_from)")
    return image_ids, [dataset.categories.by_name(n).id for n in class_names]
