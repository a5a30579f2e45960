"""The same box is written with the same numbers by `detforge predict` and by a dataset write (COCO, YOLO,
Label Studio): both go through detforge.structures.boxes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from detforge.data.dataset import Dataset
from detforge.data.formats.coco import write_coco
from detforge.data.formats.labelstudio import write_labelstudio as write_labelstudio_dataset
from detforge.data.formats.yolo import write_yolo as write_yolo_dataset
from detforge.inference.predictor import PredictionResult
from detforge.inference.writers import write_coco_results, write_labelstudio, write_yolo
from detforge.structures import Annotation, Categories, Category, ImageRecord
from detforge.structures.boxes import coco_bbox, percent_xywh, xyxy_to_xywh, xyxy_to_xywh_array, yolo_cxcywh
from detforge.structures.detections import Detections

WIDTH, HEIGHT = 640, 480
# Corners at 2 decimals whose differences are not exact in binary (0.3 - 0.1), a width whose corners round
# apart (0.004 -> 0.0, 0.016 -> 0.02, but the width 0.012 -> 0.01), and a box with more decimals.
COCO_BOXES = [
    (0.1, 0.2, 0.3, 0.7),
    (10.1, 20.2, 30.3, 40.4),
    (0.004, 0.004, 0.016, 0.016),
    (12.345678, 100.5, 300.25, 479.99),
]
# Corners exact in float32 (the predictor's dtype), for the 6-decimal YOLO and Label Studio values.
EXACT_BOXES = [(0.25, 0.5, 100.75, 60.0), (320.0, 240.0, 639.5, 479.25), (1.0, 2.0, 3.0, 4.0)]


def _prediction(boxes: list[tuple[float, float, float, float]]) -> list[PredictionResult]:
    n = len(boxes)
    dets = Detections(
        torch.tensor(boxes, dtype=torch.float32),
        torch.zeros(n, dtype=torch.int64),
        torch.linspace(0.9, 0.5, n),
        (HEIGHT, WIDTH),
    )
    return [PredictionResult("page.jpg", (HEIGHT, WIDTH), dets)]


def _dataset(tmp_path: Path, boxes: list[tuple[float, float, float, float]]) -> Dataset:
    image = ImageRecord(1, "page.jpg", tmp_path / "page.jpg", WIDTH, HEIGHT, subset="test")
    annotations = tuple(Annotation(i + 1, 1, 1, box) for i, box in enumerate(boxes))
    return Dataset((image,), annotations, Categories((Category(1, "number"),)), tmp_path, "coco")


def test_coco_bbox_of_predictions_and_of_a_dataset_write_agree(tmp_path: Path) -> None:
    predicted = json.loads(write_coco_results(_prediction(COCO_BOXES), tmp_path / "predictions.json").read_text())
    out = write_coco(_dataset(tmp_path, COCO_BOXES), tmp_path / "coco", copy_images=False)
    written = json.loads((out / "annotations" / "instances_test.json").read_text())["annotations"]
    assert len(predicted) == len(written) == len(COCO_BOXES)
    for box, pred, ann in zip(COCO_BOXES, predicted, written, strict=True):
        # predictions keep 2 decimals, datasets 6: the same box agrees at 2 decimals, width from x1 - x0
        assert pred["bbox"] == [round(v, 2) for v in ann["bbox"]], box
        assert ann["bbox"] == coco_bbox(box, 6)
    assert predicted[0]["bbox"] == [0.1, 0.2, 0.2, 0.5]  # not 0.19999999999999998
    assert predicted[2]["bbox"] == [0.0, 0.0, 0.01, 0.01]  # the exact width 0.012, not 0.02 - 0.0


def test_yolo_lines_of_predictions_and_of_a_dataset_write_agree(tmp_path: Path) -> None:
    write_yolo(_prediction(EXACT_BOXES), tmp_path / "labels")
    predicted = (tmp_path / "labels" / "page.txt").read_text().splitlines()
    out = write_yolo_dataset(_dataset(tmp_path, EXACT_BOXES), tmp_path / "yolo", copy_images=False)
    written = (out / "labels" / "test" / "page.txt").read_text().splitlines()
    assert [line.split()[:5] for line in predicted] == [line.split() for line in written]
    assert written[0] == "0 " + " ".join(f"{v:.6f}" for v in yolo_cxcywh(EXACT_BOXES[0], WIDTH, HEIGHT))


def test_labelstudio_rectangles_of_predictions_and_of_a_dataset_write_agree(tmp_path: Path) -> None:
    tasks = json.loads(write_labelstudio(_prediction(EXACT_BOXES), tmp_path / "tasks.json", ["number"]).read_text())
    predicted = [r["value"] for r in tasks[0]["predictions"][0]["result"]]
    out = write_labelstudio_dataset(_dataset(tmp_path, EXACT_BOXES), tmp_path / "ls", copy_images=False)
    written = [r["value"] for r in json.loads((out / "tasks.json").read_text())[0]["annotations"][0]["result"]]
    keys = ("x", "y", "width", "height")
    for pred, ann in zip(predicted, written, strict=True):
        assert [ann[k] for k in keys] == [round(pred[k], 6) for k in keys]


@pytest.mark.parametrize("box", [(1.5, 2.0, 11.5, 7.0), (0.0, 0.0, 640.0, 480.0)])
def test_conversions_are_the_documented_formulas(box: tuple[float, float, float, float]) -> None:
    x0, y0, x1, y1 = box
    assert xyxy_to_xywh(box) == (x0, y0, x1 - x0, y1 - y0)
    cx, cy, w, h = yolo_cxcywh(box, WIDTH, HEIGHT)
    assert (cx * WIDTH, cy * HEIGHT, w * WIDTH, h * HEIGHT) == pytest.approx(
        ((x0 + x1) / 2, (y0 + y1) / 2, x1 - x0, y1 - y0)
    )
    px, py, pw, ph = percent_xywh(box, WIDTH, HEIGHT)
    assert (px * WIDTH / 100, py * HEIGHT / 100, pw * WIDTH / 100, ph * HEIGHT / 100) == pytest.approx(
        (x0, y0, x1 - x0, y1 - y0)
    )


def test_the_array_conversion_is_the_row_conversion() -> None:
    boxes = np.array(COCO_BOXES + EXACT_BOXES, dtype=np.float64)
    assert xyxy_to_xywh_array(boxes).tolist() == [list(xyxy_to_xywh(b)) for b in boxes.tolist()]
