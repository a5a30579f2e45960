"""A shard line holds a prediction result exactly: boxes, scores, texts and instance masks come back equal
(masks were dropped before: `predict --out` of a Mask R-CNN model lost them from drawn images and results)."""

from __future__ import annotations

import json
import math

import torch

from detforge.batch.result_json import result_from_dict, result_to_dict
from detforge.inference.predictor import PredictionResult
from detforge.structures.detections import Detections


def _round_trip(result: PredictionResult) -> PredictionResult:
    return result_from_dict(json.loads(json.dumps(result_to_dict(result))))


def test_masks_texts_and_floats_survive_a_shard_line() -> None:
    masks = torch.zeros((2, 30, 40), dtype=torch.bool)
    masks[0, 3:9, 5:17] = True
    masks[1, 20:, 31:] = True
    masks[1, 0, 0] = True
    dets = Detections(
        torch.tensor([[5.125, 3.0, 17.0, 9.0], [31.0, 0.0, 40.0, 30.0]]),
        torch.tensor([1, 0]),
        torch.tensor([0.912345678, 0.1]),
        (30, 40),
        masks=masks,
    ).with_texts(["12", None], [0.75, math.nan])
    back = _round_trip(PredictionResult("a.png", (30, 40), dets))
    assert back.detections is not None and back.detections.masks is not None
    assert torch.equal(back.detections.masks, masks)
    assert torch.equal(back.detections.boxes, dets.boxes) and torch.equal(back.detections.scores, dets.scores)
    assert back.detections.texts == ("12", None) and math.isnan(float(back.detections.text_scores[1]))  # type: ignore[index]


def test_no_detections_and_errors() -> None:
    empty = Detections.empty((10, 12))
    with_masks = Detections(
        empty.boxes, empty.labels, empty.scores, (10, 12), masks=torch.zeros((0, 10, 12), dtype=torch.bool)
    )
    back = _round_trip(PredictionResult("b.png", (10, 12), with_masks))
    assert (
        back.detections is not None and back.detections.masks is not None and back.detections.masks.shape == (0, 10, 12)
    )
    plain = _round_trip(PredictionResult("c.png", (10, 12), empty))
    assert plain.detections is not None and plain.detections.masks is None and len(plain.detections) == 0
    failed = _round_trip(PredictionResult("d.png", None, None, "not a readable image"))
    assert failed.error == "not a readable image" and failed.detections is None
