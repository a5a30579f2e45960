"""The indexing core fed PredictionResults directly: statuses, values in reading order on a tilted page,
a recogniser that failed, folder names for values, the record file."""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path

import pytest
import torch

from detforge.errors import ConfigError
from detforge.indexing import FileKey, IndexSettings, PageRecord, RecordLog, folder_name, page_record
from detforge.inference.predictor import PredictionResult
from detforge.reading import ReadSettings
from detforge.structures.detections import Detections

SETTINGS = IndexSettings(("number", "figure"), ReadSettings(classes=("number",), min_score=0.6), "fp1")
KEY = FileKey("p.jpg", 123, 456)


def _result(rows: list[tuple[list[float], int, float, str | None, float]], size: tuple[int, int] = (400, 600)):  # type: ignore[no-untyped-def]
    dets = Detections(
        torch.tensor([r[0] for r in rows], dtype=torch.float32).reshape(-1, 4),
        torch.tensor([r[1] for r in rows], dtype=torch.int64),
        torch.tensor([r[2] for r in rows], dtype=torch.float32),
        size,
    ).with_texts([r[3] for r in rows], [math.nan if r[3] is None else r[4] for r in rows])
    return PredictionResult("p.jpg", size, dets)


def test_statuses() -> None:
    read = page_record(_result([([10, 10, 50, 30], 0, 0.9, "3.14", 0.8)]), KEY, SETTINGS)
    assert (read.status, read.value_strings, read.settings) == ("read", ["3.14"], "fp1")
    low = page_record(_result([([10, 10, 50, 30], 0, 0.9, "3.14", 0.59)]), KEY, SETTINGS)
    assert low.status == "unsure"
    blank = page_record(_result([([10, 10, 50, 30], 0, 0.9, " ", 0.99)]), KEY, SETTINGS)
    assert (blank.status, blank.value_strings) == ("unsure", [""])
    figure_only = page_record(_result([([10, 10, 50, 30], 1, 0.9, None, 0.0)]), KEY, SETTINGS)
    assert (figure_only.status, figure_only.values, len(figure_only.others)) == ("nothing", (), 1)
    nothing = page_record(PredictionResult("p.jpg", (40, 60), Detections.empty((40, 60))), KEY, SETTINGS)
    assert nothing.status == "nothing" and nothing.image_size == (40, 60)
    error = page_record(PredictionResult("p.jpg", None, None, "p.jpg: cannot decode image"), KEY, SETTINGS)
    assert (error.status, error.error, error.image_size) == ("error", "p.jpg: cannot decode image", None)


def test_a_number_box_the_recogniser_failed_on_is_an_unsure_empty_value() -> None:
    record = page_record(_result([([10, 10, 50, 30], 0, 0.9, None, 0.0)]), KEY, SETTINGS)
    assert record.status == "unsure" and record.values[0].text == "" and record.values[0].text_score == 0.0


def test_values_follow_reading_order_on_a_tilted_page_and_are_normalised() -> None:
    # two lines of two values photographed tilted by about 12 degrees (lines go down to the right)
    rows = [
        ([230, 70, 290, 100], 0, 0.95, "2", 0.9),  # line 1, right (its top is below line 2's left box top)
        ([20, 110, 80, 140], 0, 0.90, "3", 0.9),  # line 2, left
        ([20, 30, 80, 60], 0, 0.80, "1", 0.9),  # line 1, left
        ([230, 150, 290, 180], 0, 0.85, "4", 0.9),  # line 2, right
        ([120, 300, 200, 330], 1, 0.99, None, 0.0),  # a figure: not a value
    ]
    record = page_record(_result(rows), KEY, SETTINGS)
    assert record.value_strings == ["1", "2", "3", "4"]
    assert 8.0 < record.skew_degrees < 14.0
    spaced = page_record(_result([([20, 30, 80, 60], 0, 0.9, "３. 14", 0.9)]), KEY, SETTINGS)
    assert spaced.value_strings == ["3.14"] and spaced.values[0].text == "３. 14"


def test_boxes_are_clipped_and_empty_ones_dropped() -> None:
    rows = [([-10, 5, 30, 25], 0, 0.9, "5", 0.9), ([700, 5, 720, 25], 0, 0.9, "6", 0.9)]
    record = page_record(_result(rows), KEY, SETTINGS)
    assert [b.box for b in record.values] == [(0.0, 5.0, 30.0, 25.0)]


def test_settings_name_unknown_read_classes() -> None:
    with pytest.raises(ConfigError, match=r"\['page'\] are not classes"):
        IndexSettings(("number",), ReadSettings(classes=("page",)))


@pytest.mark.parametrize(
    ("value", "name"),
    [
        ("3.14", "3.14"),
        ("3. 14", "3.14"),
        ("１２", "12"),
        ("12/a", "12_a"),
        ("a\\b:c*d?", "a_b_c_d_"),
        ("..", "value._"),
        ("_review", "value_review"),
        (".hidden", "value.hidden"),
        ("CON", "CON_"),
        ("", "value_empty"),
    ],
)
def test_folder_names_are_safe(value: str, name: str) -> None:
    assert folder_name(value) == name


def test_long_values_keep_distinct_folder_names() -> None:
    a, b = "9" * 300 + "a", "9" * 300 + "b"
    assert folder_name(a) != folder_name(b)
    assert len(folder_name(a).encode()) <= 120 and folder_name(a).startswith("999")


def test_record_log_round_trip_and_a_cut_line(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    record = page_record(_result([([10, 10, 50, 30], 0, 0.9, "3.14", 0.8)]), KEY, SETTINGS)
    path = tmp_path / "records.jsonl"
    with RecordLog(path) as log:
        log.append([record])
    assert RecordLog(path).load() == {"p.jpg": record}
    assert PageRecord.from_dict(json.loads(path.read_text(encoding="utf-8"))) == record
    with path.open("a", encoding="utf-8") as f:
        f.write('{"file": "q.jpg", "size"')  # a kill mid-line
    with caplog.at_level(logging.WARNING):
        assert list(RecordLog(path).load()) == ["p.jpg"]
    assert "records.jsonl:2: unreadable record skipped" in caplog.text
    newer = PageRecord(FileKey("p.jpg", 124, 457), "nothing", image_size=(10, 10))
    with RecordLog(path) as log:  # the cut line is ended first, so the new record is whole
        log.append([newer])
    assert RecordLog(path).load() == {"p.jpg": newer}  # the last record of a file wins
