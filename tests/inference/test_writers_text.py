"""Every prediction writer that can hold text carries the value read: COCO results, CSV, CVAT XML and Label
Studio pre-annotations (read back by detforge's own readers), and the drawn images."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from xml.etree import ElementTree

import numpy as np
import pytest
import torch
from PIL import Image

from detforge.inference.predictor import PredictionResult
from detforge.inference.writers import (
    CSV_COLUMNS,
    draw_detections,
    save_images,
    write_coco_results,
    write_csv,
    write_cvat,
    write_labelstudio,
)
from detforge.structures.detections import Detections
from detforge.visualization.draw import place_text, text_font_size

NAMES = ("number", "figure")


def _results(root: Path) -> list[PredictionResult]:
    """page.png: a number box read as "3.14" (0.87), a figure box not read, a number read as "" (nothing
    legible); plain.png: detections from a run without reading."""
    Image.new("RGB", (200, 100), (230, 230, 230)).save(root / "page.png")
    Image.new("RGB", (50, 40), (230, 230, 230)).save(root / "plain.png")
    dets = Detections(
        torch.tensor([[10, 10, 60, 40], [100, 20, 180, 90], [10, 60, 40, 90]], dtype=torch.float32),
        torch.tensor([0, 1, 0]),
        torch.tensor([0.95, 0.8, 0.6]),
        (100, 200),
    ).with_texts(["3.14", None, ""], [0.87, math.nan, 0.1])
    plain = Detections(
        torch.tensor([[1, 1, 20, 20]], dtype=torch.float32), torch.tensor([0]), torch.tensor([0.7]), (40, 50)
    )
    return [
        PredictionResult("page.png", (100, 200), dets, path=root / "page.png"),
        PredictionResult("plain.png", (40, 50), plain, path=root / "plain.png"),
    ]


def test_coco_results_and_csv_carry_text_and_text_score(tmp_path: Path) -> None:
    rows = json.loads(write_coco_results(_results(tmp_path), tmp_path / "r.json").read_text())
    assert [(r["image_id"], r.get("text"), r.get("text_score")) for r in rows] == [
        (1, "3.14", 0.87), (1, None, None), (1, "", 0.1), (2, None, None)
    ]  # fmt: skip
    assert "text" not in rows[1] and "text" not in rows[3]  # only the detections that were read

    with write_csv(_results(tmp_path), tmp_path / "r.csv", NAMES).open(newline="") as f:
        table = list(csv.DictReader(f))
    assert tuple(table[0]) == CSV_COLUMNS and CSV_COLUMNS[-2:] == ("text", "text_score")
    assert [(r["file"], r["class"], r["text"], r["text_score"]) for r in table] == [
        ("page.png", "number", "3.14", "0.8700"),
        ("page.png", "figure", "", ""),
        ("page.png", "number", "", "0.1000"),
        ("plain.png", "number", "", ""),
    ]


def test_cvat_xml_declares_a_text_attribute_and_reads_back(tmp_path: Path) -> None:
    path = write_cvat(_results(tmp_path), tmp_path / "annotations.xml", NAMES)
    root = ElementTree.parse(path).getroot()
    for label in root.iterfind("meta/task/labels/label"):
        attrs = {a.findtext("name"): a.findtext("input_type") for a in label.iterfind("attributes/attribute")}
        assert attrs == {"text": "text"}
    boxes = root.findall("image/box")
    texts = [[(a.get("name"), a.text or "") for a in box.iterfind("attribute")] for box in boxes]
    assert texts == [[("text", "3.14")], [], [("text", "")], []]

    from detforge.data.formats import load_dataset

    ds = load_dataset(path, format="cvat")
    assert [a.text for a in ds.annotations][:1] == ["3.14"]  # the reviewer's starting point
    assert ds.annotations[1].text is None

    plain = write_cvat(_results(tmp_path)[1:], tmp_path / "plain.xml", NAMES)
    assert "<input_type>text</input_type>" not in plain.read_text()  # no reading: no text attribute


def test_labelstudio_textarea_per_region(tmp_path: Path) -> None:
    path = write_labelstudio(_results(tmp_path), tmp_path / "tasks.json", NAMES)
    tasks = json.loads(path.read_text())
    result = tasks[0]["predictions"][0]["result"]
    assert [(r["id"], r["type"]) for r in result] == [
        ("r1", "rectanglelabels"), ("r1", "textarea"), ("r2", "rectanglelabels"), ("r3", "rectanglelabels"),
        ("r3", "textarea"),
    ]  # fmt: skip
    box, text = result[0], result[1]
    assert text["from_name"] == "transcription" and text["to_name"] == "image"
    assert text["value"]["text"] == ["3.14"] and text["score"] == pytest.approx(0.87)
    geometry = {k: v for k, v in box["value"].items() if k != "rectanglelabels"}
    assert {k: v for k, v in text["value"].items() if k != "text"} == geometry
    assert tasks[0]["predictions"][0]["score"] == pytest.approx((0.95 + 0.8 + 0.6) / 3)  # boxes only

    from detforge.data.formats import load_dataset

    ds = load_dataset(path, format="labelstudio")
    by_box = {tuple(round(v) for v in a.bbox): a.text for a in ds.annotations if a.image_id == 1}
    assert by_box[(10, 10, 60, 40)] == "3.14" and by_box[(100, 20, 180, 90)] is None


def test_drawn_images_show_the_value_beside_the_box(tmp_path: Path) -> None:
    results = _results(tmp_path)
    assert results[0].detections is not None
    base = Image.new("RGB", (200, 100), (230, 230, 230))
    with_text = np.asarray(draw_detections(base, results[0].detections, NAMES)).astype(int)
    without = np.asarray(draw_detections(base, results[0].detections.without_texts(), NAMES)).astype(int)
    changed = np.abs(with_text - without).sum(axis=2) > 0
    ys, xs = np.nonzero(changed)
    assert xs.min() >= 60 and ys.min() >= 10  # right of the "3.14" box, top-aligned with it
    assert (with_text[changed] < 60).all(axis=1).any()  # dark type
    assert changed[10:40, 60:120].sum() > 60  # a sizeable label, not a speck
    written = save_images(results, tmp_path / "drawn", NAMES)
    assert [p.name for p in written] == ["page.png", "plain.png"]
    assert (np.asarray(Image.open(written[0])).astype(int) == with_text).all()

    assert text_font_size(30, 200, 100) >= 1.5 * 10  # at least 1.5x the tag font (10 px here)
    assert place_text((10, 10, 60, 40), (30, 20), (200, 100), gap=2) == (62, 10, 92, 30)  # right
    assert place_text((150, 10, 195, 40), (30, 20), (200, 100), gap=2) == (118, 10, 148, 30)  # left
    assert place_text((5, 10, 195, 40), (30, 20), (200, 100), gap=2) == (5, 42, 35, 62)  # below
