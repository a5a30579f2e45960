"""Prediction on images: the Predictor, image sources, tiling, flip TTA and output writers."""

from detforge.inference.predictor import PredictionResult, Predictor, SupportsPredict
from detforge.inference.sources import ImageSource, decode, iter_sources, load_image_bytes, load_image_file
from detforge.inference.tiling import TileConfig, predict_tiled, tile_windows
from detforge.inference.tta import flip_detections, merge_detections, predict_flip_tta
from detforge.inference.writers import (
    draw_detections,
    save_images,
    write_coco_results,
    write_csv,
    write_cvat,
    write_labelstudio,
    write_predictions,
    write_yolo,
)
from detforge.thresholds import DEFAULT_SCORE_THRESHOLD

__all__ = [
    "DEFAULT_SCORE_THRESHOLD",
    "ImageSource",
    "PredictionResult",
    "Predictor",
    "SupportsPredict",
    "TileConfig",
    "decode",
    "draw_detections",
    "flip_detections",
    "iter_sources",
    "load_image_bytes",
    "load_image_file",
    "merge_detections",
    "predict_flip_tta",
    "predict_tiled",
    "save_images",
    "tile_windows",
    "write_coco_results",
    "write_csv",
    "write_cvat",
    "write_labelstudio",
    "write_predictions",
    "write_yolo",
]
