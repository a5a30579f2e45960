"""engine.reading: ReadSettings from the `read` config, reading the labelled validation boxes in one call per
image, and the calibrated text threshold (with a fake reader of known scores)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from detforge.config import load_config
from detforge.data.dataset import Dataset
from detforge.engine.reading import (
    ReaderBroken,
    ReadOutcome,
    calibrate_reading,
    count_transcriptions,
    read_ground_truth,
    read_settings_from_config,
)
from detforge.engine.result import TrainResult
from detforge.errors import ConfigError
from detforge.evaluation.read_calibration import ReadCalibration
from detforge.reading import ReadSettings, TextRead
from detforge.structures import Annotation, Categories, ImageRecord


def test_settings_come_from_the_resolved_config_with_the_lexicon_inline(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    lexicon = tmp_path / "numbers.txt"
    lexicon.write_text("# book 1\n3.14\n3.15\n\nx.1\n", encoding="utf-8")
    read = load_config(
        None,
        [
            "read.enabled=true",
            "read.classes=[task_number]",
            "read.allow='0123456789.'",
            r"read.pattern='\d+\.\d+'",
            f"read.lexicon={lexicon}",
            "read.padding=0.25",
            "read.recognizer=tesseract",
        ],
    ).read
    with caplog.at_level(logging.WARNING):
        settings = read_settings_from_config(read)
    assert settings == ReadSettings(
        enabled=True,
        classes=("task_number",),
        allow="0123456789.",
        pattern=r"\d+\.\d+",
        lexicon=("3.14", "3.15", "x.1"),
        padding=0.25,
        min_score=0.5,
        min_score_calibrated=False,
        recognizer="tesseract",
    )
    assert "1 of 3 values use characters outside read.allow" in caplog.text and "'x.1'" in caplog.text
    fixed = read_settings_from_config(read.model_copy(update={"min_score": 0.8, "lexicon": None}))
    assert fixed is not None and fixed.min_score == 0.8 and not fixed.min_score_calibrated
    assert read_settings_from_config(load_config(None, ["read.enabled=false"]).read) is None
    assert read_settings_from_config(load_config(None).read) is None  # "auto" not resolved: off
    # unresolved automatic allow-list and pattern mean any character, any value
    forced = read_settings_from_config(load_config(None, ["read.enabled=true"]).read)
    assert forced is not None and forced.allow is None and forced.pattern is None and forced.padding == 0.05


def test_bad_lexicon_is_a_config_error_naming_the_file(tmp_path: Path) -> None:
    empty = tmp_path / "empty.txt"
    empty.write_text("# nothing\n\n", encoding="utf-8")
    for path, message in ((empty, "holds no values"), (tmp_path / "missing.txt", "is not a file")):
        read = load_config(None, ["read.enabled=true", f"read.lexicon={path}"]).read
        with pytest.raises(ConfigError, match=f"read.lexicon: {path}.*{message}"):
            read_settings_from_config(read)


def _val(tmp_path: Path) -> Dataset:
    """Three 40x40 images: #1 two numbers and a box of another class, #2 one number, a crowd box and a box
    with blank text, #3 a file that is not an image (one number)."""
    categories = Categories.from_names(["number", "figure"])
    for name in ("1.png", "2.png"):
        Image.fromarray(np.full((40, 40, 3), 200, np.uint8)).save(tmp_path / name)
    (tmp_path / "3.png").write_bytes(b"not an image")
    images = tuple(ImageRecord(i, f"{i}.png", tmp_path / f"{i}.png", 40, 40, "val") for i in (1, 2, 3))
    anns = (
        Annotation(1, 1, 1, (1.0, 1.0, 10.0, 10.0), text="1.1"),
        Annotation(2, 1, 1, (20.0, 20.0, 30.0, 30.0), text=" 1. 2"),
        Annotation(3, 1, 2, (0.0, 0.0, 5.0, 5.0), text="fig"),
        Annotation(4, 2, 1, (5.0, 5.0, 15.0, 15.0), text="2.1"),
        Annotation(5, 2, 1, (0.0, 0.0, 40.0, 40.0), iscrowd=True, text="2.2"),
        Annotation(6, 2, 1, (25.0, 25.0, 35.0, 35.0), text="   "),
        Annotation(7, 3, 1, (5.0, 5.0, 15.0, 15.0), text="3.1"),
    )
    return Dataset(images, anns, categories, tmp_path, "coco")


class TableReader:
    """Reads by the box's left edge: {x_min: TextRead}; records (image shape, boxes) of each call."""

    def __init__(self, table: dict[float, TextRead]) -> None:
        self.table = table
        self.calls: list[tuple[tuple[int, ...], np.ndarray]] = []

    def read(self, image: np.ndarray, boxes: np.ndarray) -> Sequence[TextRead]:
        self.calls.append((image.shape, boxes.copy()))
        return [self.table[float(box[0])] for box in boxes]


READS = {1.0: TextRead("1.1", 0.9), 20.0: TextRead("1.7", 0.8), 5.0: TextRead("2.1", 0.6)}


def test_labelled_boxes_of_read_classes_are_read_once_per_image(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    val = _val(tmp_path)
    reader = TableReader(READS)
    settings = ReadSettings(classes=("number",))
    assert count_transcriptions(val, settings) == 5  # blank text left out, crowd counted as a transcription
    with caplog.at_level(logging.WARNING):
        reads = read_ground_truth(reader, val, settings)
    assert [shape for shape, _ in reader.calls] == [(40, 40, 3), (40, 40, 3)]  # image 3 could not be decoded
    assert reader.calls[0][1].dtype == np.float32
    np.testing.assert_array_equal(reader.calls[0][1], [[1, 1, 10, 10], [20, 20, 30, 30]])
    np.testing.assert_array_equal(reader.calls[1][1], [[5, 5, 15, 15]])  # not the crowd, not the blank text
    assert reads.truths == ("1.1", "1.2", "2.1") and reads.values == ("1.1", "1.7", "2.1")
    assert reads.correct.tolist() == [True, False, True] and reads.scores.tolist() == [0.9, 0.8, 0.6]
    assert reads.skipped == ("3.png",) and "skipped 3.png" in caplog.text


def test_a_reader_breaking_its_contract_is_named(tmp_path: Path) -> None:
    class Short:
        def read(self, image: np.ndarray, boxes: np.ndarray) -> Sequence[TextRead]:
            return []

    with pytest.raises(ReaderBroken, match=r"Short.read returned 0 results \(\) for 2 boxes"):
        read_ground_truth(Short(), _val(tmp_path), ReadSettings(classes=("number",)))


def test_calibration_sets_min_score_or_only_measures(tmp_path: Path) -> None:
    val = _val(tmp_path)
    settings = ReadSettings(classes=("number",), allow="0123456789.")
    calibrated, cal, note = calibrate_reading(
        settings, val, TableReader(READS), target_precision=0.98, calibrate_min_score=True
    )
    assert calibrated == ReadSettings(
        classes=("number",), allow="0123456789.", min_score=0.9, min_score_calibrated=True
    )
    assert cal is not None and (cal.n, cal.accuracy, cal.coverage) == (3, 2 / 3, 1 / 3) and note == ""
    fixed, measured, note = calibrate_reading(
        settings.override(min_score=0.3), val, TableReader(READS), target_precision=0.98, calibrate_min_score=False
    )
    assert fixed.min_score == 0.3 and not fixed.min_score_calibrated
    assert measured is not None and measured.accuracy == 2 / 3 and note == ""
    missed, cal, note = calibrate_reading(
        settings, val, TableReader({**READS, 1.0: TextRead("7.7", 0.9)}), target_precision=0.98,
        calibrate_min_score=True,
    )  # fmt: skip
    assert missed.min_score == 0.6 and missed.min_score_calibrated and cal is not None and not cal.reached_target
    assert "no text threshold reaches precision 0.98" in note and "chose the best, 0.600 (precision 0.333)" in note


def test_without_validation_texts_the_default_stays_uncalibrated(tmp_path: Path) -> None:
    val = _val(tmp_path)
    reader = TableReader(READS)
    kept, cal, note = calibrate_reading(
        ReadSettings(classes=("figure",)), val.select([2]), reader, target_precision=0.9,
        calibrate_min_score=True,
    )  # fmt: skip
    assert kept == ReadSettings(classes=("figure",)) and cal is None and reader.calls == []
    assert "no validation box of a read class has a transcription" in note


def test_outcome_round_trips_through_result_json(tmp_path: Path) -> None:
    cal = ReadCalibration(0.41, 1.0, 0.97, 0.972, 36, 0.98, True)
    outcome = ReadOutcome(ReadSettings(classes=("task_number",), min_score=0.41, min_score_calibrated=True), 168, cal)
    assert outcome.summary() == (
        "read accuracy on 36 validation boxes 0.972 (35/36 exact); text threshold 0.410 (calibrated): "
        "precision 1.000 on 97% of reads (target 0.98)"
    )
    assert ReadOutcome.from_json(outcome.to_json()) == outcome
    result = TrainResult(
        tmp_path, tmp_path / "last.pt", None, tmp_path / "model.pt", "ap", None, None, 5, "max_iter", None, outcome
    )
    assert TrainResult.from_json(result.to_json()) == result
    plain = replace(result, read=None)
    old = plain.to_json()
    del old["read"]  # a result.json written before reading existed
    assert TrainResult.from_json(old) == plain
    bare = ReadOutcome(ReadSettings(), 0, None, "no validation subset: text threshold not calibrated")
    assert bare.summary() == (
        "reading: text threshold 0.500 (not calibrated); no validation subset: text threshold not calibrated"
    )
