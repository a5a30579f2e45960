"""`detforge.evaluate(MODEL, ...)` reads with the model's stored settings (a stub recogniser stands in for
PP-OCR), skips low-score boxes, and `read=False` turns reading off."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import detforge
from detforge.models import DetectionParams, ModelSpec, build_detector, save_model
from detforge.reading import ReadSettings, TextRead
from detforge.thresholds import EVAL_SCORE_THRESHOLD


class StubReader:
    """Reads "12" in every box and remembers how many boxes it was given."""

    def __init__(self) -> None:
        self.boxes = 0

    def read(self, image: np.ndarray, boxes: np.ndarray) -> Sequence[TextRead]:
        assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3
        self.boxes += len(boxes)
        return [TextRead("12", 0.9) for _ in boxes]


def _artifact(path: Path) -> Path:
    torch.manual_seed(0)
    detector, _ = build_detector("fasterrcnn_mobilenet_v2_fpn", num_classes=1, weights="none", min_size=64, max_size=96)
    detector.eval()
    detector.detection_params = DetectionParams(score_thresh=0.0, nms_thresh=0.5, detections_per_img=20)
    spec = ModelSpec(
        model_name=detector.name,
        num_classes=1,
        class_names=("task",),
        category_ids=(1,),
        min_size=detector.min_size,
        max_size=detector.max_size,
        score_threshold=0.25,
        read=ReadSettings(classes=("task",)),
    )
    return save_model(path, detector, spec)


def _dataset(root: Path) -> Path:
    (root / "images").mkdir(parents=True)
    rng = np.random.default_rng(0)
    images, anns = [], []
    for i in (1, 2):
        Image.fromarray(rng.integers(0, 255, (64, 96, 3), dtype=np.uint8)).save(root / "images" / f"{i}.png")
        images.append({"id": i, "file_name": f"{i}.png", "width": 96, "height": 64})
        anns.append({"id": i, "image_id": i, "category_id": 1, "bbox": [10, 10, 40, 20], "area": 800, "iscrowd": 0,
                     "attributes": {"text": "12"}})  # fmt: skip
    coco = {"images": images, "annotations": anns, "categories": [{"id": 1, "name": "task"}]}
    (root / "annotations.json").write_text(json.dumps(coco), encoding="utf-8")
    return root


@pytest.fixture(scope="module")
def model_and_data(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("read_model")
    return _artifact(root / "model.pt"), _dataset(root / "data")


def test_eval_of_a_model_reads_with_its_stored_settings(
    model_and_data: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    import detforge.api._predictor as api_predictor

    stub, made = StubReader(), []
    monkeypatch.setattr("detforge.inference.read.build_reader", lambda *args, **kwargs: stub)
    real = api_predictor.make_predictor

    def spy(*args, **kwargs):  # type: ignore[no-untyped-def]
        made.append(real(*args, **kwargs))
        return made[-1]

    monkeypatch.setattr(api_predictor, "make_predictor", spy)
    model, data = model_and_data
    result = detforge.evaluate(model, data, split=None, bootstrap=0, score_threshold=0.1)
    assert made[0].read_min_box_score == 0.1  # boxes below the operating point are not read
    assert result.read is not None and result.read.classes == ("task",)
    assert 0 < stub.boxes <= 2 * 20
    if result.read.num_matched:
        assert result.read.exact_accuracy == 1.0 and result.read.cer == 0.0
    assert result.read.num_images == 2 and result.read.score_threshold == pytest.approx(0.1)
    strict = detforge.evaluate(model, data, split=None, bootstrap=0, score_threshold=0.999)
    assert strict.read is not None  # nothing scored high enough to be read: still measured, as nothing read
    assert (strict.read.num_labelled, strict.read.num_matched, strict.read.num_images_exact) == (2, 0, 0)
    assert math.isnan(strict.read.exact_accuracy) and strict.read.end_to_end_recall == 0.0
    off = detforge.evaluate(model, data, split=None, bootstrap=0, read=False)
    assert made[2].read_min_box_score == EVAL_SCORE_THRESHOLD and made[2].reader is None
    assert off.read is None
