"""The real recogniser (PP-OCRv6 small from the rapidocr wheel) behind the Predictor: a printed number in a
box of a read class is read, a box of another class is not. Skipped where the recogniser is not installed."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw
from torch import Tensor

from detforge.inference.predictor import Predictor
from detforge.reading import ReadSettings, build_reader
from detforge.structures.detections import Detections
from detforge.visualization.draw import load_font

pytest.importorskip("detforge.reading.ppocr")
pytest.importorskip("onnxruntime")


class FixedDetector:
    """Finds a "number" box around (36, 40)-(125, 85) and a "figure" box around (196, 100)-(245, 145)."""

    num_classes = 2

    def predict(self, images: Sequence[Tensor]) -> list[Detections]:
        boxes = torch.tensor([[36, 40, 125, 85], [196, 100, 245, 145]], dtype=torch.float32)
        size = (int(images[0].shape[1]), int(images[0].shape[2]))
        return [Detections(boxes, torch.tensor([0, 1]), torch.tensor([0.9, 0.8]), size) for _ in images]


def test_predictor_reads_a_printed_number_with_the_built_in_recogniser() -> None:
    image = Image.new("RGB", (320, 160), (255, 255, 255))
    draw = ImageDraw.Draw(image)
    draw.text((40, 40), "3.14", font=load_font(40), fill=(0, 0, 0))
    draw.text((200, 100), "27", font=load_font(40), fill=(0, 0, 0))
    settings = ReadSettings(classes=("number",), allow="0123456789.")
    try:
        reader = build_reader(settings, runtime="onnxruntime")
    except Exception as exc:  # the model file or the runtime is missing here
        pytest.skip(f"recogniser unavailable: {exc}")
    predictor = Predictor(FixedDetector(), device="cpu", class_names=("number", "figure"), reader=reader)
    assert predictor.read_settings is not None and predictor.read_settings.classes is None  # no spec: every class
    predictor.use_reader(reader, settings)
    dets = predictor(np.asarray(image))
    assert dets.labels.tolist() == [0, 1]
    assert dets.texts == ("3.14", None)  # "figure" is not a read class
    assert dets.text_scores is not None and float(dets.text_scores[0]) > 0.5
