"""`detforge.predict(...)`: run a model on images and write results in the formats other tools read."""

from __future__ import annotations

import functools
import hashlib
import json
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from detforge.outdir import check_output_folder
from detforge.progress import scoped_by_progress, track
from detforge.ranges import FRACTION, OVERLAP, POSITIVE_INT, check_numbers
from detforge.structures.prediction_formats import (
    PREDICTION_FILES,
    PREDICTION_FORMATS,
    PredictionFormat,
    prediction_format,
)

if TYPE_CHECKING:
    from detforge.inference import PredictionResult

__all__ = ["PREDICTION_FORMATS", "predict"]


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
    engine: str = "local",
    ray_address: str | None = None,
    actors: int | None = None,
    shard_size: int = 100,
    progress: bool = True,
) -> list[PredictionResult]:
    """Predict on an image file, folder, glob or list; returns one PredictionResult per image.

    `model` is a model artifact (`model.pt`) or an exported `.onnx` / `.ts` file; `runtime` runs an .onnx
    file with "onnxruntime", "openvino" (CPU) or "auto" (OpenVINO on CPU when installed, else ONNX Runtime).

    Boxes are XYXY pixels of each image as displayed (EXIF applied). `score_threshold` overrides the
    model's calibrated threshold (0 keeps everything). With `out`, writes each of `format` (coco
    results JSON, yolo txt folder, csv, cvat XML or labelstudio JSON pre-annotations) and, with
    `save_images`, drawn images under `out/images/`. A bad image is reported, never fatal. `out` must be
    new, empty or an earlier `predict` output of the same job, which is resumed (`overwrite` clears any
    folder); this is checked before the model loads.
    `tile` (pixels) turns on tiled inference with `tile_overlap`; `tta` adds horizontal-flip TTA.
    `ids_from` (a dataset) makes the COCO results use that dataset's image and category ids, matched
    by image path, then by file name, so `detforge eval --detections` can score them against it.

    Reading: a model with stored read settings (trained on transcriptions) gives each box of a read class
    `text` and `text_score` (in every format but yolo, and on the drawn images); `read=True` reads with a
    model trained without them (every class, or `read_classes`), `read=False` turns reading off, and
    `read_pattern` (a regex the value must match) and `read_allow` (the characters a value may hold)
    override the stored settings.

    Resumable batches (with `out`; docs/batch.md): the images (a folder, glob, file, a `.txt` list of paths,
    or a list of these) are predicted in shards of `shard_size` images written to `out/shards/` as they
    finish, under `out/manifest.json`; a second call with the same `out` and the same job (model, source
    listing and the settings that change results) skips the shards already written, and the output files
    are assembled from the shards, so they are byte-identical to an uninterrupted run's (CVAT's `dumped`
    time aside). Another job in that folder is refused unless `overwrite`. `engine` "ray" runs the shards
    as a Ray Data pipeline (`pip install detforge[ray]`) on the cluster at `ray_address` (None: a local
    one) with `actors` model replicas (None: one per GPU, else one per 2 CPUs).

    `progress`: a bar on stderr (images/s, ETA) while predicting, when stderr is a terminal.
    """
    check_numbers(
        score_threshold=(FRACTION, score_threshold),
        tile=(POSITIVE_INT, tile),
        tile_overlap=(OVERLAP, tile_overlap),
        batch_size=(POSITIVE_INT, batch_size),
        shard_size=(POSITIVE_INT, shard_size),
        actors=(POSITIVE_INT, actors),
    )
    formats = [prediction_format(f) for f in ([format] if isinstance(format, str) else format)]
    inputs = [model, *([source] if isinstance(source, (str, Path)) else source)]
    from detforge.api import _predictor

    _predictor.refuse_training_checkpoint(model)  # before the output folder and torch
    if out is not None:
        check_output_folder(out, "predict", overwrite=overwrite, inputs=inputs)  # before torch and the model load
    from detforge.errors import ConfigError
    from detforge.inference import TileConfig

    if engine not in ("local", "ray"):
        raise ConfigError(f"engine {engine!r}: expected 'local' or 'ray'")
    if engine == "ray" and out is None:
        raise ConfigError("engine 'ray': needs an output folder (out / --out), where the workers write shards")
    settings: dict[str, Any] = {
        "score_threshold": score_threshold,
        "tile": TileConfig(size=tile, overlap=tile_overlap) if tile else None,
        "flip_tta": tta,
        "runtime": runtime,
        "read": read,
        "read_classes": read_classes,
        "read_pattern": read_pattern,
        "read_allow": read_allow,
    }
    from detforge.batch.job import BatchJob, RayOptions, run_job
    from detforge.batch.listing import list_images, listing_digest

    opener = functools.partial(_predictor.make_predictor, model, device=device, batch_size=batch_size, **settings)
    images = list_images(list(source) if isinstance(source, (list, tuple)) else source)
    if out is None:
        predictor = opener()
        return list(track(predictor.predict_many(images, on_error="report"), desc="predict", total=len(images)))
    fingerprint = _job_fingerprint(model, settings, listing_digest(images))
    ray = RayOptions(address=ray_address, actors=actors, gpus_per_actor=0.0 if device == "cpu" else None)
    outcome = run_job(
        BatchJob("predict", tuple(images), fingerprint, shard_size),
        out,
        opener,
        engine=engine,  # type: ignore[arg-type]
        ray=ray,
        overwrite=overwrite,
        inputs=inputs,
    )
    results = outcome.results
    class_names = outcome.manifest.class_names or ()
    category_ids: Sequence[int] | None = outcome.manifest.category_ids
    image_ids = None
    if ids_from is not None:
        image_ids, category_ids = _dataset_ids(ids_from, results, class_names)
    _write_outputs(results, outcome.folder, formats, class_names, category_ids, image_ids, save_images)
    return results


def _job_fingerprint(model: Any, settings: dict[str, Any], listing: str) -> str:
    """An id of what decides a job's results: the model file (path, size, modification time), the settings
    and the image listing."""
    path = Path(model).resolve()
    origin = [str(path), *((path.stat().st_size, path.stat().st_mtime_ns) if path.is_file() else ())]
    parts = [origin, {k: repr(v) for k, v in settings.items()}, listing]
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode("utf-8")).hexdigest()[:16]


def _write_outputs(
    results: Sequence[PredictionResult],
    folder: Path,
    formats: Sequence[PredictionFormat],
    class_names: Sequence[str],
    category_ids: Sequence[int] | None,
    image_ids: dict[str, int] | None,
    save_images: bool,
) -> None:
    """Write each of `formats` (and the drawn images) into `folder`, removing output files of formats not
    asked for this time, so the folder holds exactly this call's outputs beside the shards."""
    from detforge.inference import save_images as draw_images
    from detforge.inference import write_coco_results, write_predictions

    for fmt, name in [*PREDICTION_FILES.items(), ("images", "images")]:
        stale = folder / name
        if stale.is_dir():  # a folder of files (yolo, images) is rewritten whole: no stale or half-written file
            shutil.rmtree(stale)
        elif stale.exists() and fmt not in formats:
            stale.unlink()  # files are replaced atomically; only those of formats not asked for go
    for fmt in formats:
        target = folder / PREDICTION_FILES[fmt]
        if fmt == "coco":
            write_coco_results(results, target, category_ids=category_ids, image_ids=image_ids)
        else:
            write_predictions(results, target, fmt, class_names, category_ids=category_ids)
    if save_images:
        draw_images(results, folder / "images", class_names)


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
