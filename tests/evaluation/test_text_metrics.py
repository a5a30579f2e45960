"""Read accuracy: every metric's exact value on a hand-made case, and the edges of its definitions."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from detforge.errors import DatasetError
from detforge.evaluation.text_metrics import edit_distance, has_read_data, read_metrics
from detforge.structures import Annotation, Categories, ImageRecord
from detforge.structures.detections import Detections

CATS = Categories.from_names(["task", "other"])  # ids 1, 2 -> labels 0, 1
TASK, OTHER = 1, 2


def _dets(rows: list[tuple[float, int, tuple[float, float, float, float], str | None, float]]) -> Detections:
    det = Detections(
        torch.tensor([r[2] for r in rows], dtype=torch.float32).reshape(-1, 4),
        torch.tensor([r[1] for r in rows], dtype=torch.int64),
        torch.tensor([r[0] for r in rows], dtype=torch.float32),
        (100, 200),
    )
    return det.with_texts([r[3] for r in rows], [r[4] for r in rows])


A, B = (10.0, 10.0, 60.0, 40.0), (100.0, 10.0, 150.0, 40.0)
FAR = (120.0, 60.0, 170.0, 90.0)


def _case() -> tuple[list[ImageRecord], list[Annotation], dict[int, Detections]]:
    images = [ImageRecord(i, f"p{i}.png", Path(f"p{i}.png"), 200, 100) for i in range(1, 8)]
    anns = [
        Annotation(1, 1, TASK, A, text="3.14"),
        Annotation(2, 1, TASK, B, text="3.15"),
        Annotation(3, 2, TASK, A, text="12"),
        Annotation(4, 3, TASK, A, text="5"),
        Annotation(5, 3, OTHER, B),  # another class, no text: not a read class
        Annotation(6, 4, TASK, A, text="7"),
        Annotation(7, 5, TASK, A),  # a read-class box without a label: page 5's truth is unknown
        Annotation(8, 7, TASK, B, text="3.15"),
    ]
    nan = math.nan
    preds = {
        1: _dets([(0.9, 0, A, "3.14", 0.99), (0.8, 0, B, "3.16", 0.7)]),
        2: _dets([(0.95, 0, A, " 1 2", 0.9), (0.3, 0, FAR, "99", 0.8)]),  # spaces normalised; 0.3 < threshold
        3: _dets([(0.9, 0, (35.0, 10.0, 85.0, 40.0), "5", 0.9), (0.9, 1, B, None, nan)]),  # IoU 1/3: missed
        4: _dets([(0.7, 0, A, "1", 0.4)]),
        5: _dets([(0.9, 0, A, "9", 0.9)]),
        7: _dets([(0.9, 0, B, "3.16", 0.6), (0.6, 0, B, "3.15", 0.9)]),  # the duplicate is not matched
    }
    return images, anns, preds


def test_every_metric_on_a_hand_made_case() -> None:
    images, anns, preds = _case()
    read = read_metrics(images, anns, CATS, preds, score_threshold=0.5)
    assert read is not None
    assert read.classes == ("task",)
    assert (read.num_labelled, read.num_matched, read.num_exact) == (6, 5, 2)
    assert (read.num_chars, read.num_edits) == (4 + 4 + 2 + 1 + 4, 0 + 1 + 0 + 1 + 1)
    assert read.exact_accuracy == pytest.approx(2 / 5)
    assert read.cer == pytest.approx(3 / 15)
    assert read.end_to_end_recall == pytest.approx(2 / 6)
    assert read.detection_recall == pytest.approx(5 / 6)
    # pages: 1 (3.16 for 3.15) wrong, 2 right (the low-score read is below the threshold), 3 right (its value
    # was read, though the box is misplaced), 4 wrong, 5 left out (unlabelled box), 6 right (nothing, nothing),
    # 7 wrong (a duplicate adds a value)
    assert (read.num_images, read.num_images_exact) == (6, 3)
    assert read.page_accuracy == pytest.approx(0.5)
    assert read.num_misread == 3
    assert [(m.truth, m.read, m.count) for m in read.misreads] == [("3.15", "3.16", 2), ("7", "1", 1)]
    assert [(e.image_id, e.box) for e in read.misreads[0].examples] == [(1, B), (7, B)]
    assert read.misreads[1].examples[0].text_score == pytest.approx(0.4)
    data = json.loads(read.to_json())
    assert data["exact_accuracy"] == pytest.approx(0.4) and data["page_accuracy"] == pytest.approx(0.5)
    assert data["misreads"][0] == {
        "truth": "3.15",
        "read": "3.16",
        "count": 2,
        "examples": [
            {"image_id": 1, "box": list(B), "text_score": pytest.approx(0.7)},
            {"image_id": 7, "box": list(B), "text_score": pytest.approx(0.6)},
        ],
    }
    assert "read: 0.400 exact on 5 matched boxes, CER 0.200" in read.summary()
    assert "end to end 0.333 (detection recall 0.833)" in read.summary()


def test_threshold_top_k_examples_and_explicit_classes() -> None:
    images, anns, preds = _case()
    low = read_metrics(images, anns, CATS, preds, score_threshold=0.0, top_k=1, examples=1)
    assert low is not None
    assert low.num_images_exact == 2  # page 2 now has the extra value "99"
    assert [(m.truth, m.read, m.count, len(m.examples)) for m in low.misreads] == [("3.15", "3.16", 2, 1)]
    assert low.num_misread == 3
    high = read_metrics(images, anns, CATS, preds, score_threshold=0.75)
    assert high is not None
    assert (high.num_matched, high.num_exact) == (4, 2)  # image 4's read (score 0.7) is dropped
    both = read_metrics(images, anns, CATS, preds, score_threshold=0.5, classes=["task", "other"])
    assert both is not None and both.classes == ("task", "other")
    assert both.num_images == 5  # page 3 now has an "other" box without text: its truth is unknown
    with pytest.raises(DatasetError, match="'nope'"):
        read_metrics(images, anns, CATS, preds, classes=["nope"])


def test_a_box_not_read_counts_as_an_empty_read() -> None:
    images = [ImageRecord(1, "a.png", Path("a.png"), 200, 100)]
    anns = [Annotation(1, 1, TASK, A, text="42"), Annotation(2, 1, TASK, B, text="7")]
    preds = {1: _dets([(0.9, 0, A, None, math.nan), (0.9, 0, B, "7", 0.9)])}
    read = read_metrics(images, anns, CATS, preds)
    assert read is not None
    assert (read.num_matched, read.num_exact, read.num_edits, read.num_chars) == (2, 1, 2, 3)
    assert [(m.truth, m.read) for m in read.misreads] == [("42", "")]
    assert read.misreads[0].examples[0].text_score is None
    assert read.num_images_exact == 0


def test_crowd_regions_absorb_detections_without_counting() -> None:
    images = [ImageRecord(1, "a.png", Path("a.png"), 200, 100)]
    anns = [Annotation(1, 1, TASK, A, text="1"), Annotation(2, 1, TASK, B, iscrowd=True, text="2")]
    preds = {1: _dets([(0.9, 0, A, "1", 0.9), (0.9, 0, B, "2", 0.9)])}
    read = read_metrics(images, anns, CATS, preds)
    assert read is not None
    assert (read.num_labelled, read.num_matched, read.num_exact) == (1, 1, 1)


def test_nothing_to_measure_and_bad_ids() -> None:
    images, anns, preds = _case()
    plain = {i: d.without_texts() for i, d in preds.items()}
    assert not has_read_data(anns, plain)
    assert read_metrics(images, anns, CATS, plain) is None
    no_text = [Annotation(a.id, a.image_id, a.category_id, a.bbox) for a in anns]
    assert read_metrics(images, no_text, CATS, preds) is None
    blank = [Annotation(1, 1, TASK, A, text="  ")]  # whitespace only is no label
    assert read_metrics(images, blank, CATS, preds) is None
    with pytest.raises(DatasetError, match="image ids \\[99\\]"):
        read_metrics(images, anns, CATS, {**preds, 99: preds[1]})


@pytest.mark.parametrize(
    ("a", "b", "d"),
    [("kitten", "sitting", 3), ("", "abc", 3), ("abc", "", 3), ("3.14", "3.14", 0), ("flaw", "lawn", 2),
     ("12", "21", 2), ("3.14", "3.l4", 1)],
)  # fmt: skip
def test_edit_distance(a: str, b: str, d: int) -> None:
    assert edit_distance(a, b) == d
    assert edit_distance(b, a) == d
