"""Test doubles for the index command: pages painted with known objects, a detector that finds exactly
those, and a recogniser that reads a value from the pixels.

An object is a rectangle whose red channel is its code 1..255 (detection score = code / 255), green its
class label (0 "number", 1 "figure") and blue the key of its value in `VALUES` (what the reader reads)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import Tensor

from detforge.inference import Predictor
from detforge.reading import ReadSettings, TextRead
from detforge.structures.detections import Detections

CLASS_NAMES = ("number", "figure")
VALUES = {10: ("3.14", 0.95), 20: ("3.15", 0.9), 30: ("7", 0.3), 40: ("", 0.8), 50: ("12/a", 0.99), 60: ("3. 14", 0.9)}
Obj = tuple[int, int, int, int, int, int, int]  # x0, y0, x1, y1, code, label, value key


@dataclass
class PaintedDetector:
    """Finds every painted rectangle; counts the images it is asked to predict."""

    num_classes: int = 2
    predicted: list[tuple[int, int]] = field(default_factory=list)

    def predict(self, images: Sequence[Tensor]) -> list[Detections]:
        return [self._one(image) for image in images]

    def _one(self, image: Tensor) -> Detections:
        height, width = int(image.shape[1]), int(image.shape[2])
        self.predicted.append((height, width))
        pixels = (image * 255).round().to(torch.int64)
        red, green = pixels[0], pixels[1]
        boxes, labels, scores = [], [], []
        for code in sorted(set(red.unique().tolist()) - {0}, reverse=True):
            ys, xs = torch.nonzero(red == code, as_tuple=True)
            boxes.append([int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1])
            labels.append(int(green[ys[0], xs[0]]))
            scores.append(code / 255)
        if not boxes:
            return Detections.empty((height, width))
        return Detections(
            torch.tensor(boxes, dtype=torch.float32),
            torch.tensor(labels, dtype=torch.int64),
            torch.tensor(scores, dtype=torch.float32),
            (height, width),
        )


class PixelReader:
    """Reads the value whose key is the blue channel at the centre of each box; counts boxes read."""

    def __init__(self) -> None:
        self.boxes_read = 0

    def read(self, image: np.ndarray, boxes: np.ndarray) -> list[TextRead]:
        out = []
        for x0, y0, x1, y1 in boxes.tolist():
            key = int(image[int((y0 + y1) / 2), int((x0 + x1) / 2), 2])
            text, score = VALUES.get(key, ("", 0.0))
            out.append(TextRead(text, score))
        self.boxes_read += len(boxes)
        return out


def paint_page(path: Path, objects: Sequence[Obj], size: tuple[int, int] = (160, 120)) -> Path:
    """Write a PNG of `size` (width, height) with `objects` painted on black."""
    width, height = size
    arr = np.zeros((height, width, 3), dtype=np.uint8)
    for x0, y0, x1, y1, code, label, key in objects:
        arr[y0:y1, x0:x1] = (code, label, key)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path)
    return path


def make_predictor(detector: PaintedDetector | None = None, batch_size: int = 2) -> Predictor:
    """A Predictor of the painted detector reading boxes of class "number" (text confidence threshold 0.5)."""
    return Predictor(
        detector or PaintedDetector(),
        class_names=CLASS_NAMES,
        device="cpu",
        batch_size=batch_size,
        score_threshold=0.2,
        reader=PixelReader(),
        read_settings=ReadSettings(classes=("number",), min_score=0.5),
    )


@pytest.fixture
def painter():  # type: ignore[no-untyped-def]
    return paint_page


@pytest.fixture
def predictor_factory():  # type: ignore[no-untyped-def]
    return make_predictor


@pytest.fixture
def detector_class():  # type: ignore[no-untyped-def]
    return PaintedDetector
