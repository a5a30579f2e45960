"""Prediction writers: each output parses back (COCO via json, CVAT and Label Studio via detforge's readers)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from detforge.data.formats.cvat import read_cvat
from detforge.data.formats.labelstudio import read_labelstudio
from detforge.inference.predictor import PredictionResult
from detforge.inference.writers import (
    CSV_COLUMNS,
    output_path,
    save_images,
    write_coco_results,
    write_csv,
    write_cvat,
    write_labelstudio,
    write_predictions,
    write_yolo,
)
from detforge.structures.detections import Detections

NAMES = ("cat & dog", '<"quoted">', "bird")


def _dets(boxes: list[list[float]], labels: list[int], scores: list[float], size: tuple[int, int]) -> Detections:
    return Detections(
        torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4),
        torch.tensor(labels, dtype=torch.int64),
        torch.tensor(scores, dtype=torch.float32),
        size,
    )


def _results(root: Path) -> list[PredictionResult]:
    """Three images: two with detections (one box sticking out of the image, one empty after clipping), a
    failed one, and one without detections; the files exist under `root`."""
    for rel, (w, h) in {"a.png": (100, 50), "sub/b.png": (40, 80), "c.png": (20, 20)}.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (w, h), (90, 90, 90)).save(root / rel)
    a = _dets([[10, 5, 30, 25], [80, 30, 120, 60], [200, 0, 210, 10]], [0, 1, 2], [0.9, 0.75, 0.6], (50, 100))
    b = _dets([[4, 8, 20, 40]], [2], [0.5], (80, 40))
    return [
        PredictionResult("a.png", (50, 100), a, path=root / "a.png"),
        PredictionResult("broken.png", None, None, "broken.png: not a readable image", root / "broken.png"),
        PredictionResult("sub/b.png", (80, 40), b, path=root / "sub" / "b.png"),
        PredictionResult("c.png", (20, 20), Detections.empty((20, 20)), path=root / "c.png"),
    ]


def test_coco_results(tmp_path: Path) -> None:
    results = _results(tmp_path)
    rows = json.loads(write_coco_results(results, tmp_path / "out" / "coco.json").read_text())
    assert rows == [
        {"image_id": 1, "category_id": 1, "bbox": [10.0, 5.0, 20.0, 20.0], "score": 0.9},
        {"image_id": 1, "category_id": 2, "bbox": [80.0, 30.0, 20.0, 20.0], "score": 0.75},  # clipped to 100x50
        {"image_id": 3, "category_id": 3, "bbox": [4.0, 8.0, 16.0, 32.0], "score": 0.5},
    ]
    mapped = write_coco_results(
        results, tmp_path / "mapped.json", category_ids=[5, 6, 9], image_ids={"a.png": 42, "sub/b.png": 7, "c.png": 8}
    )
    assert [(r["image_id"], r["category_id"]) for r in json.loads(mapped.read_text())] == [(42, 5), (42, 6), (7, 9)]
    with pytest.raises(ValueError, match=r"no image id for 'sub/b\.png'"):
        write_coco_results(results, tmp_path / "x.json", image_ids={"a.png": 1, "c.png": 2})
    assert not [p for p in tmp_path.rglob("*.tmp")]


def test_yolo_txt_per_image(tmp_path: Path) -> None:
    out = write_yolo(_results(tmp_path), tmp_path / "labels")
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*.txt")) == ["a.txt", "c.txt", "sub/b.txt"]
    lines = (out / "a.txt").read_text().splitlines()
    assert lines == ["0 0.200000 0.300000 0.200000 0.400000 0.900000", "1 0.900000 0.800000 0.200000 0.400000 0.750000"]
    assert (out / "sub" / "b.txt").read_text() == "2 0.300000 0.300000 0.400000 0.400000 0.500000\n"
    assert (out / "c.txt").read_text() == ""  # an image with no detections has an empty label file


def test_output_paths_stay_inside_the_output_folder() -> None:
    assert str(output_path("sub/x.jpg", ".txt")) == "sub/x.txt"
    assert str(output_path("/abs/path/x.jpg", ".txt")) == "x.txt"
    assert str(output_path("../../etc/x.jpg", ".txt")) == "x.txt"
    assert str(output_path("<array 3>", ".txt")) == "array_3.txt"
    assert str(output_path("C:\\photos\\y.png", ".png")) == "y.png"


def test_csv(tmp_path: Path) -> None:
    path = write_csv(_results(tmp_path), tmp_path / "p.csv", NAMES)
    with path.open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert tuple(rows[0]) == CSV_COLUMNS
    assert [(r["file"], r["class"], r["score"]) for r in rows] == [
        ("a.png", "cat & dog", "0.9000"),
        ("a.png", '<"quoted">', "0.7500"),
        ("sub/b.png", "bird", "0.5000"),
    ]
    assert [rows[1][k] for k in ("x_min", "y_min", "x_max", "y_max", "width", "height")] == [
        "80.00", "30.00", "100.00", "50.00", "100", "50"
    ]  # fmt: skip


@pytest.mark.parametrize("score_attribute", [False, True])
def test_cvat_xml_reads_back(tmp_path: Path, score_attribute: bool) -> None:
    path = write_cvat(_results(tmp_path), tmp_path / "annotations.xml", NAMES, score_attribute=score_attribute)
    text = path.read_text()
    assert "cat &amp; dog" in text and "&lt;&quot;quoted&quot;&gt;" in text
    ds = read_cvat(path)
    assert ds.categories.names == NAMES
    sizes = [(im.file_name, im.width, im.height) for im in ds.images]
    assert sizes == [("a.png", 100, 50), ("sub/b.png", 40, 80), ("c.png", 20, 20)]
    assert ds.images[0].path == tmp_path / "a.png"
    boxes = [(a.image_id, ds.categories.by_id(a.category_id).name, a.bbox) for a in ds.annotations]
    assert boxes == [
        (1, "cat & dog", (10.0, 5.0, 30.0, 25.0)),
        (1, '<"quoted">', (80.0, 30.0, 100.0, 50.0)),
        (2, "bird", (4.0, 8.0, 20.0, 40.0)),
    ]
    scores = [dict(a.attributes).get("score") for a in ds.annotations]
    assert scores == (["0.9000", "0.7500", "0.5000"] if score_attribute else [None, None, None])
    assert not [p for p in ds.problems if p.severity == "error"]


def test_labelstudio_json_reads_back(tmp_path: Path) -> None:
    path = write_labelstudio(_results(tmp_path), tmp_path / "tasks.json", NAMES, model_version="v7")
    tasks = json.loads(path.read_text())
    assert [t["data"]["image"] for t in tasks] == ["a.png", "sub/b.png", "c.png"]
    first = tasks[0]["predictions"][0]
    assert first["model_version"] == "v7" and first["score"] == pytest.approx(0.825)
    region = first["result"][1]
    assert region["type"] == "rectanglelabels" and (region["original_width"], region["original_height"]) == (100, 50)
    assert region["value"] == {
        "x": 80.0, "y": 60.0, "width": 20.0, "height": 40.0, "rotation": 0, "rectanglelabels": ['<"quoted">']
    }  # fmt: skip
    assert region["score"] == pytest.approx(0.75)
    assert tasks[2]["predictions"][0]["result"] == [] and tasks[2]["predictions"][0]["score"] == 0.0
    ds = read_labelstudio(path)
    sizes = [(im.id, im.file_name, im.width, im.height) for im in ds.images]
    assert sizes == [(1, "a.png", 100, 50), (2, "sub/b.png", 40, 80), (3, "c.png", 20, 20)]
    found = sorted((a.image_id, ds.categories.by_id(a.category_id).name, a.bbox) for a in ds.annotations)
    assert [(i, n) for i, n, _ in found] == [(1, '<"quoted">'), (1, "cat & dog"), (2, "bird")]
    for (_, _, got), want in zip(found, [(80, 30, 100, 50), (10, 5, 30, 25), (4, 8, 20, 40)], strict=True):
        assert got == pytest.approx(want)
    out = write_labelstudio(_results(tmp_path), tmp_path / "t2.json", NAMES, image_prefix="/data/local-files/?d=")
    prefixed = json.loads(out.read_text())
    assert prefixed[0]["data"]["image"] == "/data/local-files/?d=a.png"


def test_save_images_draws_boxes(tmp_path: Path) -> None:
    results = _results(tmp_path)
    memory = PredictionResult("<array 1>", (20, 30), _dets([[2, 2, 20, 15]], [0], [0.8], (20, 30)))
    arr_image = Image.new("RGB", (30, 20), (90, 90, 90))
    written = save_images([*results, memory], tmp_path / "drawn", NAMES, images={"<array 1>": arr_image})
    rels = [p.relative_to(tmp_path / "drawn").as_posix() for p in written]
    assert rels == ["a.png", "sub/b.png", "c.png", "array_1.png"]
    drawn = np.asarray(Image.open(written[0]))
    assert drawn.shape == (50, 100, 3)
    assert not (drawn[5, 10:30] == 90).all()  # the top edge of the first box is drawn
    assert (drawn[40:, :5] == 90).all()  # far from every box: untouched
    assert (np.asarray(Image.open(written[2])) == 90).all()  # no detections: the image as it was


def test_write_predictions_dispatches_every_format(tmp_path: Path) -> None:
    results = _results(tmp_path)
    targets = (("coco", "r.json"), ("yolo", "yolo"), ("csv", "r.csv"), ("cvat", "r.xml"), ("labelstudio", "ls.json"))
    for fmt, name in targets:
        out = write_predictions(results, tmp_path / "all" / name, fmt, NAMES)  # type: ignore[arg-type]
        assert out.exists()
    with pytest.raises(ValueError, match="not one of"):
        write_predictions(results, tmp_path / "x", "voc", NAMES)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="label 2 has no class name"):
        write_csv(results, tmp_path / "short.csv", NAMES[:2])
