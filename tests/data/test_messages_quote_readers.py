"""YOLO, VOC, LabelMe and Label Studio problems quote the user's own values as written in their file (a YOLO
line, VOC `<xmin>`, LabelMe `points`, Label Studio percent values), with the file (and line), never
detforge's internal annotation/image ids or XYXY pixel numbers."""

from __future__ import annotations

import json
from pathlib import Path

from PIL import Image

from detforge.data.check import check_dataset
from detforge.data.formats import load_dataset


def _lines(root: Path, code: str) -> list[str]:
    report = check_dataset(load_dataset(root))
    return [line for line in report.format_text().splitlines() if f"({code})" in line]


def _no_internal_numbers(line: str) -> None:
    assert "[image" not in line and "annotation 1" not in line and "box (" not in line, line


def test_yolo_quotes_the_label_line_with_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "images" / "train").mkdir(parents=True)
    (tmp_path / "labels" / "train").mkdir(parents=True)
    Image.new("RGB", (40, 30)).save(tmp_path / "images" / "train" / "a.jpg")
    (tmp_path / "labels" / "train" / "a.txt").write_text("0 0.5 0.5 0.2 0.2\n0 0.5 0.5 -0.1 0.2\n0  0.9 0.5 4e-1 0.2\n")
    (tmp_path / "data.yaml").write_text("path: .\ntrain: images/train\nnames: {0: cat}\n")
    [degenerate] = _lines(tmp_path, "box.degenerate")
    assert degenerate.strip().endswith(
        'labels/train/a.txt:2: label "0 0.5 0.5 -0.1 0.2" of a.jpg has zero or negative size; dropped (box.degenerate)'
    ), degenerate
    [clipped] = _lines(tmp_path, "box.clipped")
    assert 'a.txt:3: label "0 0.9 0.5 4e-1 0.2" of a.jpg extends past' in clipped  # values as written: 4e-1
    [outside] = _lines(tmp_path, "yolo.coords_out_of_range")
    assert 'a.txt:2: line 2 "0 0.5 0.5 -0.1 0.2": normalised coordinate(s) -0.1 outside' in outside
    for line in (degenerate, clipped, outside):
        _no_internal_numbers(line)


def test_voc_quotes_the_bndbox_as_written(tmp_path: Path) -> None:
    (tmp_path / "Annotations").mkdir()
    (tmp_path / "JPEGImages").mkdir()
    Image.new("RGB", (40, 30)).save(tmp_path / "JPEGImages" / "2008_000007.jpg")
    (tmp_path / "Annotations" / "2008_000007.xml").write_text(
        "<annotation><filename>2008_000007.jpg</filename>\n"
        "<size><width>40</width><height>30</height><depth>3</depth></size>\n"
        "<object><name>cat</name><bndbox><xmin>10</xmin><ymin>10</ymin><xmax>5</xmax><ymax>30</ymax></bndbox></object>\n"
        "<object><name>cat</name><bndbox><xmin>30</xmin><ymin>5</ymin><xmax>50.5</xmax><ymax>15</ymax></bndbox>"
        "</object>\n</annotation>\n"
    )
    [degenerate] = _lines(tmp_path, "box.degenerate")
    assert "2008_000007.xml:3: object 'cat' <xmin>10</xmin> <ymin>10</ymin> <xmax>5</xmax> <ymax>30</ymax> has" in (
        degenerate
    )
    [clipped] = _lines(tmp_path, "box.clipped")
    assert "2008_000007.xml:4: object 'cat' <xmin>30</xmin> <ymin>5</ymin> <xmax>50.5</xmax> <ymax>15</ymax>" in (
        clipped
    )
    for line in (degenerate, clipped):
        _no_internal_numbers(line)
        assert "(9.0, 9.0" not in line and "(29.0" not in line  # detforge's 0-based XYXY


def test_labelme_quotes_the_shapes_points(tmp_path: Path) -> None:
    Image.new("RGB", (40, 30)).save(tmp_path / "a.jpg")
    shapes = [
        {"label": "cat", "points": [[10, 10], [10, 30]], "shape_type": "rectangle"},
        {"label": "cat", "points": [[30, 5], [50.5, 15]], "shape_type": "rectangle"},
    ]
    doc = {"shapes": shapes, "imagePath": "a.jpg", "imageWidth": 40, "imageHeight": 30}
    (tmp_path / "a.json").write_text(json.dumps(doc))
    [degenerate] = _lines(tmp_path, "box.degenerate")
    assert "a.json: shapes[0] (rectangle 'cat'): points [[10, 10], [10, 30]] has zero" in degenerate
    [clipped] = _lines(tmp_path, "box.clipped")
    assert "a.json: shapes[1] (rectangle 'cat'): points [[30, 5], [50.5, 15]] extends past" in clipped
    for line in (degenerate, clipped):
        _no_internal_numbers(line)


def test_labelstudio_quotes_the_percent_values(tmp_path: Path) -> None:
    Image.new("RGB", (40, 30)).save(tmp_path / "a.jpg")

    def region(ident: str, x: float, y: float, w: float, h: float) -> dict[str, object]:
        value = {"x": x, "y": y, "width": w, "height": h, "rectanglelabels": ["cat"]}
        return {"id": ident, "type": "rectanglelabels", "original_width": 40, "original_height": 30, "value": value}

    results = [region("r1", 10, 20, -5, 30), region("r2", 90, 10, 20.5, 30)]
    task = {"id": 17, "data": {"image": "/data/upload/1/a.jpg"}, "annotations": [{"id": 1, "result": results}]}
    (tmp_path / "tasks.json").write_text(json.dumps([task]))
    [degenerate] = _lines(tmp_path, "box.degenerate")
    assert 'tasks.json: task 17, rectangle "r1": x 10, y 20, width -5, height 30 (percent) has zero' in degenerate
    [clipped] = _lines(tmp_path, "box.clipped")
    assert 'task 17, rectangle "r2": x 90, y 10, width 20.5, height 30 (percent) extends past' in clipped
    for line in (degenerate, clipped):
        _no_internal_numbers(line)
        assert "(36.0" not in line and "(4.0" not in line  # detforge's pixels


def test_convert_names_left_out_items_as_written(tmp_path: Path) -> None:
    """The error that stops a conversion quotes the same user values."""
    import pytest

    from detforge.api import convert
    from detforge.errors import DatasetError

    src = tmp_path / "src"
    (src / "images" / "train").mkdir(parents=True)
    (src / "labels" / "train").mkdir(parents=True)
    Image.new("RGB", (40, 30)).save(src / "images" / "train" / "a.jpg")
    (src / "labels" / "train" / "a.txt").write_text("0 0.5 0.5 -0.1 0.2\n")
    (src / "data.yaml").write_text("path: .\ntrain: images/train\nnames: {0: cat}\n")
    with pytest.raises(DatasetError, match=r'a\.txt:1: label "0 0\.5 0\.5 -0\.1 0\.2" of a\.jpg has zero'):
        convert(src, tmp_path / "out", to="coco", progress=False)
