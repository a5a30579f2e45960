"""COCO results JSON <-> Detections: round trip and error messages."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from detforge.errors import DatasetError
from detforge.evaluation.results_io import load_coco_results, to_coco_results
from detforge.structures import Categories, Category, ImageRecord
from detforge.structures.detections import Detections

CATS = Categories((Category(3, "cat"), Category(7, "dog")))  # labels 0 -> id 3, 1 -> id 7
IMAGES = [ImageRecord(1, "1.jpg", Path("1.jpg"), 40, 30), ImageRecord(5, "5.jpg", Path("5.jpg"), 40, 30)]


def _write(tmp_path: Path, entries: object) -> Path:
    path = tmp_path / "results.json"
    path.write_text(json.dumps(entries), encoding="utf-8")
    return path


def test_round_trip_boxes_labels_scores(tmp_path: Path) -> None:
    preds = {
        1: Detections(
            torch.tensor([[1.5, 2.0, 11.5, 22.0], [0.0, 0.0, 40.0, 30.0]]),
            torch.tensor([1, 0]),
            torch.tensor([0.9, 0.25]),
            (30, 40),
        )
    }
    entries = to_coco_results(preds, CATS)
    assert entries[0] == {"image_id": 1, "category_id": 7, "bbox": [1.5, 2.0, 10.0, 20.0], "score": pytest.approx(0.9)}
    loaded = load_coco_results(_write(tmp_path, entries), IMAGES, CATS)
    assert set(loaded) == {1, 5} and len(loaded[5]) == 0 and loaded[5].image_size == (30, 40)
    assert torch.equal(loaded[1].boxes, preds[1].boxes)
    assert loaded[1].labels.tolist() == [1, 0] and torch.equal(loaded[1].scores, preds[1].scores)
    assert loaded[1].masks is None


def test_detections_are_sorted_by_score_and_masks_round_trip(tmp_path: Path) -> None:
    masks = torch.zeros((2, 30, 40), dtype=torch.bool)
    masks[0, 5:10, 2:8] = True
    masks[1, 20:30, 30:40] = True
    preds = {5: Detections(torch.tensor([[2.0, 5, 8, 10], [30, 20, 40, 30]]), torch.tensor([0, 1]),
                           torch.tensor([0.3, 0.8]), (30, 40), masks)}  # fmt: skip
    entries = to_coco_results(preds, CATS)
    assert isinstance(entries[0]["segmentation"]["counts"], str)
    loaded = load_coco_results(_write(tmp_path, entries), IMAGES, CATS)[5]
    assert loaded.scores.tolist() == pytest.approx([0.8, 0.3])
    assert loaded.masks is not None and torch.equal(loaded.masks, masks.flip(0))
    polygon = [{"image_id": 1, "category_id": 3, "bbox": [0, 0, 10, 10], "score": 0.5,
                "segmentation": [[0, 0, 10, 0, 10, 10, 0, 10]]}]  # fmt: skip
    poly_masks = load_coco_results(_write(tmp_path, polygon), IMAGES, CATS)[1].masks
    assert poly_masks is not None and 90 <= int(poly_masks.sum()) <= 121


GOOD = {"image_id": 1, "category_id": 3, "bbox": [0, 0, 5, 5], "score": 0.5}


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ({"image_id": 2}, r"results\.json\[1\]: 'image_id' 2 is not an image of the dataset"),
        ({"category_id": 4}, r"\[1\]: 'category_id' 4 is unknown; known ids: \[3, 7\]"),
        ({"bbox": [0, 0, 5]}, r"\[1\]: 'bbox' \[0, 0, 5\] is not \[x, y, width, height\]"),
        ({"bbox": [0, 0, -5, 5]}, r"\[1\]: 'bbox' \[0, 0, -5, 5\] is not"),
        ({"bbox": [0, 0, "5", 5]}, r"\[1\]: 'bbox'"),
        ({"score": None}, r"\[1\]: 'score' None is not a finite number"),
        ({"image_id": True}, r"\[1\]: 'image_id' True"),
    ],
)
def test_bad_entries_name_index_and_key(tmp_path: Path, bad: dict[str, object], message: str) -> None:
    with pytest.raises(DatasetError, match=message):
        load_coco_results(_write(tmp_path, [GOOD, GOOD | bad]), IMAGES, CATS)


def test_bad_files(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match=r"\[0\]: missing key 'score'"):
        load_coco_results(_write(tmp_path, [{k: v for k, v in GOOD.items() if k != "score"}]), IMAGES, CATS)
    with pytest.raises(DatasetError, match="expected a JSON list of detections, got dict"):
        load_coco_results(_write(tmp_path, {"annotations": []}), IMAGES, CATS)
    with pytest.raises(DatasetError, match=r"\[1\]: 'segmentation' must be given for every detection or for none"):
        load_coco_results(_write(tmp_path, [GOOD | {"segmentation": [[0, 0, 5, 0, 5, 5]]}, GOOD]), IMAGES, CATS)
    broken = tmp_path / "broken.json"
    broken.write_text('[\n{"image_id": 1,,}\n]', encoding="utf-8")
    with pytest.raises(DatasetError, match=r"broken\.json:2: not valid JSON"):
        load_coco_results(broken, IMAGES, CATS)
    with pytest.raises(DatasetError, match="cannot read the results file"):
        load_coco_results(tmp_path / "missing.json", IMAGES, CATS)


def test_texts_round_trip_and_results_without_texts_stay_without(tmp_path: Path) -> None:
    det = Detections(
        torch.tensor([[1.0, 2.0, 11.0, 12.0], [5.0, 5.0, 15.0, 15.0], [0.0, 0.0, 4.0, 4.0]]),
        torch.tensor([0, 1, 1]),
        torch.tensor([0.9, 0.6, 0.2]),
        (30, 40),
    ).with_texts(["3.14", None, ""], [0.75, float("nan"), 0.125])
    entries = to_coco_results({1: det}, CATS)
    assert [(e["text"], e["text_score"]) for e in entries] == [("3.14", 0.75), (None, None), ("", 0.125)]
    json.dumps(entries, allow_nan=False)  # NaN never reaches the file
    loaded = load_coco_results(_write(tmp_path, entries), IMAGES, CATS)
    assert loaded[1].texts == ("3.14", None, "")
    assert loaded[1].text_scores is not None
    assert loaded[1].text_scores[[0, 2]].tolist() == [0.75, 0.125] and loaded[1].text_scores[1].isnan()
    assert loaded[5].has_text and len(loaded[5]) == 0  # every image carries texts once any entry has one
    plain = load_coco_results(_write(tmp_path, to_coco_results({1: det.without_texts()}, CATS)), IMAGES, CATS)
    assert not plain[1].has_text and not plain[5].has_text
    assert "text" not in to_coco_results({1: det.without_texts()}, CATS)[0]


def test_an_entry_without_text_is_not_read_and_bad_texts_are_named(tmp_path: Path) -> None:
    entries = [
        {"image_id": 1, "category_id": 3, "bbox": [0, 0, 10, 10], "score": 0.9, "text": "12", "text_score": 0.5},
        {"image_id": 1, "category_id": 7, "bbox": [0, 0, 10, 10], "score": 0.8},
    ]
    loaded = load_coco_results(_write(tmp_path, entries), IMAGES, CATS)[1]
    assert loaded.texts == ("12", None)
    bad_text = [dict(entries[0], text=12)]
    with pytest.raises(DatasetError, match=r"results\.json\[0\]: 'text' 12 is not a string"):
        load_coco_results(_write(tmp_path, bad_text), IMAGES, CATS)
    bad_score = [entries[1], dict(entries[0], text_score=1.5)]
    with pytest.raises(DatasetError, match=r"results\.json\[1\]: 'text_score' 1\.5 is not a number in \[0, 1\]"):
        load_coco_results(_write(tmp_path, bad_score), IMAGES, CATS)


def test_an_integer_too_large_for_a_float_is_named_not_a_traceback() -> None:
    # It raised OverflowError from math.isfinite before.
    from detforge.evaluation.results_io import parse_coco_results

    entry = {"image_id": 1, "category_id": 3, "bbox": [1, 2, 3, 4], "score": 10**400}
    with pytest.raises(DatasetError, match=r"results\[0\]: 'score' .* is not a finite number"):
        parse_coco_results([entry], IMAGES, CATS)
    entry = {"image_id": 1, "category_id": 3, "bbox": [1, 2, 10**400, 4], "score": 0.5}
    with pytest.raises(DatasetError, match=r"results\[0\]: 'bbox'"):
        parse_coco_results([entry], IMAGES, CATS)


@pytest.mark.parametrize("texts", [False, True], ids=["plain", "with-texts"])
def test_column_parsing_equals_the_entry_by_entry_loop(monkeypatch: pytest.MonkeyPatch, texts: bool) -> None:
    # Valid files are parsed as columns (numpy); the result must be exactly what the checking loop builds.
    import random

    from detforge.evaluation import results_io

    rng = random.Random(0)
    images = [*IMAGES, ImageRecord(9, "9.jpg", Path("9.jpg"), 50, 20)]
    entries: list[dict[str, object]] = []
    for n in range(300):
        entry: dict[str, object] = {
            "image_id": rng.choice([1, 5]),
            "category_id": rng.choice([3, 7]),
            "bbox": [rng.choice([1, 2.5, 0.1 + n]), rng.uniform(0, 9), rng.choice([0, 3, 1e-3]), rng.uniform(0, 5)],
            "score": rng.choice([0.5, 1, 0.25, rng.random()]),  # ties keep the file's order
        }
        if texts and n % 3:
            entry["text"], entry["text_score"] = (f"v{n}", rng.random()) if n % 3 == 1 else (None, None)
        entries.append(entry)
    fast = results_io.parse_coco_results(entries, images, CATS)
    monkeypatch.setattr(results_io, "_parse_columns", lambda *args: None)
    slow = results_io.parse_coco_results(entries, images, CATS)
    assert list(fast) == list(slow) == [1, 5, 9]
    for image_id, a in fast.items():
        b = slow[image_id]
        for got, want in ((a.boxes, b.boxes), (a.labels, b.labels), (a.scores, b.scores)):
            assert got.dtype == want.dtype and torch.equal(got, want)
        assert a.image_size == b.image_size and a.texts == b.texts and a.masks is None and b.masks is None
        if texts:
            assert a.text_scores is not None and b.text_scores is not None
            assert torch.equal(a.text_scores.nan_to_num(-1.0), b.text_scores.nan_to_num(-1.0))
        else:
            assert a.text_scores is None and b.text_scores is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[{"image_id": 123456789012345678901234567890, "category_id": 3, "bbox": [1, 2, 3, 4], "score": 0.5}]',
         r"\[0\]: 'image_id' 123456789012345678901234567890 is not an image"),  # orjson makes a float of it
        ('[{"image_id": 1, "category_id": 3, "bbox": [1, 2, 3, 4], "score": NaN}]',
         r"\[0\]: 'score' nan is not a finite number"),  # orjson refuses NaN; json reads it
        ('[{"image_id": 1, "category_id": 3, "bbox": [1, 2, 3, 4], "score": 0.5, "text": "7",'
         ' "text_score": 123456789012345678901234567890}]',
         r"\[0\]: 'text_score' 123456789012345678901234567890 is not a number in \[0, 1\]"),
    ],
)  # fmt: skip
def test_read_results_errors_show_the_values_as_json_reads_them(tmp_path: Path, text: str, message: str) -> None:
    from detforge.evaluation.results_io import read_coco_results

    path = tmp_path / "results.json"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(DatasetError, match=message):
        read_coco_results(path, IMAGES, CATS)


def test_read_results_is_the_same_table_with_or_without_orjson(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from detforge.evaluation import results_io

    entries = [
        {"image_id": 5, "category_id": 7, "bbox": [0.1, 0.2, 10, 1e-3], "score": 0.30000000000000004},
        {
            "image_id": 1,
            "category_id": 3,
            "bbox": [1.5, 2.25, 3, 4],
            "score": 0.9,
            "text": "caf\u00e9",
            "text_score": 1,
        },
        {"image_id": 1, "category_id": 3, "bbox": [2**53 + 1, 0, 1, 1], "score": 0.9},
    ]
    path = _write(tmp_path, entries)
    fast = results_io.read_coco_results(path, IMAGES, CATS)
    monkeypatch.setattr(results_io, "_fast_json", lambda text: None)
    plain = results_io.read_coco_results(path, IMAGES, CATS)
    for name in ("image_ids", "labels", "scores", "xywh", "text_scores"):
        a, b = getattr(fast, name), getattr(plain, name)
        assert a.dtype == b.dtype and a.tobytes() == b.tobytes(), name
    assert fast.texts == plain.texts == ("caf\u00e9", None, None)
