"""One list of prediction formats: the CLI's `--format` choices, the api's check and the writers agree."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest
import torch

from detforge.cli import build_parser
from detforge.errors import ConfigError
from detforge.inference.predictor import PredictionResult
from detforge.inference.writers import write_predictions
from detforge.structures.detections import Detections
from detforge.structures.prediction_formats import PREDICTION_FILES, PREDICTION_FORMATS, prediction_format


def _format_choices() -> tuple[str, ...]:
    parser = build_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    predict = commands.choices["predict"]
    action = next(a for a in predict._actions if "--format" in a.option_strings)
    assert action.choices is not None
    return tuple(action.choices)


def test_cli_choices_api_check_and_output_files_are_the_one_list() -> None:
    assert _format_choices() == PREDICTION_FORMATS == ("coco", "yolo", "csv", "cvat", "labelstudio")
    assert tuple(PREDICTION_FILES) == PREDICTION_FORMATS
    assert [prediction_format(name) for name in PREDICTION_FORMATS] == list(PREDICTION_FORMATS)
    with pytest.raises(ConfigError, match=r"format 'voc': expected one of coco, yolo, csv, cvat, labelstudio"):
        prediction_format("voc")


def test_every_format_has_a_writer(tmp_path: Path) -> None:
    boxes = torch.tensor([[2.0, 3.0, 12.0, 9.0]])
    dets = Detections(boxes, torch.tensor([0]), torch.tensor([0.8]), (20, 30))
    results = [PredictionResult("a.png", (20, 30), dets)]
    for fmt in PREDICTION_FORMATS:
        written = write_predictions(results, tmp_path / PREDICTION_FILES[fmt], fmt, ["digit"])
        assert written == tmp_path / PREDICTION_FILES[fmt] and written.exists(), fmt
    with pytest.raises(
        ValueError, match=r"format 'voc' is not one of \('coco', 'yolo', 'csv', 'cvat', 'labelstudio'\)"
    ):
        write_predictions(results, tmp_path / "x", "voc", ["digit"])  # type: ignore[arg-type]
