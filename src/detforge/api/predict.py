"""`detforge.predict(...)`: run a model on images and write results in the formats other tools read."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

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


def predict(
    model: str | Path,
    source: str | Path | Sequence[str | Path],
    *,
    out: str | Path | None = None,
    format: Sequence[str] | str = ("coco",),
    score_threshold: float | None = None,
    save_images: bool = False,
    tile: int | None = None,
    tile_overlap: float = 0.2,
    tta: bool = False,
    batch_size: int = 4,
    device: str = "auto",
) -> list[PredictionResult]:
    """Predict on an image file, folder, glob or list; returns one PredictionResult per image.

    Boxes are XYXY pixels of each image as displayed (EXIF applied). `score_threshold` overrides the
    model's calibrated threshold (0 keeps everything). With `out`, writes each of `format` (coco
    results JSON, yolo txt folder, csv, cvat XML or labelstudio JSON pre-annotations) and, with
    `save_images`, drawn images under `out/images/`. A bad image is reported, never fatal.
    `tile` (pixels) turns on tiled inference with `tile_overlap`; `tta` adds horizontal-flip TTA.
    """
    from detforge.errors import ConfigError
    from detforge.inference import Predictor, TileConfig, write_predictions
    from detforge.inference import save_images as draw_images

    formats = [format] if isinstance(format, str) else list(format)
    for fmt in formats:
        if fmt not in PREDICTION_FORMATS:
            raise ConfigError(f"format {fmt!r}: expected one of {', '.join(PREDICTION_FORMATS)}")
    predictor = Predictor(
        model,
        device=device,
        batch_size=batch_size,
        score_threshold=score_threshold,
        tile=TileConfig(size=tile, overlap=tile_overlap) if tile else None,
        flip_tta=tta,
    )
    sources = [str(s) for s in source] if isinstance(source, (list, tuple)) else str(source)
    results = list(predictor.predict_many(sources, on_error="report"))
    if out is not None:
        out = Path(out)
        for fmt in formats:
            write_predictions(
                results,
                out / _DEFAULT_FILE[fmt],
                fmt,  # type: ignore[arg-type]
                predictor.class_names,
                category_ids=predictor.category_ids,
            )
        if save_images:
            draw_images(results, out / "images", predictor.class_names)
    return results
