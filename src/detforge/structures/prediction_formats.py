"""The formats `detforge predict` writes, and the file (or folder) each is written to in an output folder.

The one list of prediction format names: the CLI's `--format` choices, the api's check and the writers
all read it from here (importable without torch).
"""

from __future__ import annotations

from typing import Literal, get_args

from detforge.errors import ConfigError

__all__ = ["PREDICTION_FILES", "PREDICTION_FORMATS", "PredictionFormat", "prediction_format"]

PredictionFormat = Literal["coco", "yolo", "csv", "cvat", "labelstudio"]
"""COCO results JSON, YOLO txt folder, CSV, CVAT XML, Label Studio tasks JSON."""

PREDICTION_FORMATS: tuple[PredictionFormat, ...] = get_args(PredictionFormat)
"""Every prediction format name, in the order the CLI lists them."""

PREDICTION_FILES: dict[PredictionFormat, str] = {
    "coco": "predictions.json",
    "yolo": "labels",
    "csv": "predictions.csv",
    "cvat": "annotations.xml",
    "labelstudio": "tasks.json",
}
"""The name of each format's output inside a `predict --out` folder (a folder for "yolo")."""


def prediction_format(name: str) -> PredictionFormat:
    """`name` as a PredictionFormat; ConfigError naming the formats when it is none of them."""
    for fmt in PREDICTION_FORMATS:
        if name == fmt:
            return fmt
    raise ConfigError(f"format {name!r}: expected one of {', '.join(PREDICTION_FORMATS)}")
