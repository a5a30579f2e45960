"""A tiny one-stage model learns 4 generated images: COCO AP above 0.9 on them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from detforge.evaluation import CocoEvaluator
from detforge.structures import Annotation, Categories, ImageRecord


def test_a_tiny_model_overfits_four_images(overfitted: Any) -> None:
    categories = Categories.from_names(["red", "green"])
    records = [
        ImageRecord(t.image_id, f"{t.image_id}.png", Path(f"{t.image_id}.png"), 96, 96) for t in overfitted.targets
    ]
    boxes = [
        (t.image_id, box, label)
        for t in overfitted.targets
        for box, label in zip(t.boxes.tolist(), t.labels.tolist(), strict=True)
    ]
    annotations = [
        Annotation(i, image_id, categories.items[label].id, tuple(box))
        for i, (image_id, box, label) in enumerate(boxes)
    ]
    evaluator = CocoEvaluator(records, annotations, categories)
    evaluator.process([t.image_id for t in overfitted.targets], overfitted.detector.predict(overfitted.images))
    metrics = evaluator.evaluate()
    assert metrics.ap50 == 1.0, metrics
    assert metrics.ap > 0.9, metrics
