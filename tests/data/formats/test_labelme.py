"""LabelMe reader: per-image JSON files, shapes, attributes, subsets, and its problems."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from detforge.data.formats import load_dataset
from detforge.data.formats.labelme import read_labelme
from detforge.errors import DatasetError
from detforge.structures import Polygons


def _shape(label: str, kind: str | None, points: list[Any], **extra: Any) -> dict[str, Any]:
    return {"label": label, "shape_type": kind, "points": points, "group_id": None, "flags": {}, **extra}


def _labelme(
    path: Path, image_path: str | None, shapes: list[Any], size: tuple[int, int] | None = (64, 48), **extra: Any
) -> Path:
    doc: dict[str, Any] = {
        "version": "5.4.1",
        "flags": {},
        "shapes": shapes,
        "imagePath": image_path,
        "imageData": None,
    }
    if size:
        doc["imageWidth"], doc["imageHeight"] = size
    doc.update(extra)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=2))
    return path


def _digests(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in root.rglob("*") if p.is_file()
    }


def test_rectangles_polygons_and_attributes(tmp_path: Path, image_factory: Callable[..., Path]) -> None:
    image_factory(tmp_path / "a.jpg", 64, 48)
    shapes = [
        _shape("zebra", "rectangle", [[30, 40], [10.5, 5]], group_id=3, flags={"crowded": True}, description=" big "),
        _shape("ant", "polygon", [[1, 1], [9, 2], [5, 8]]),
        _shape("ant", None, [[2, 2], [4, 2], [4, 4]]),  # LabelMe's null shape_type means polygon
    ]
    _labelme(tmp_path / "a.json", "a.jpg", shapes)
    before = _digests(tmp_path)
    ds = load_dataset(tmp_path, format="labelme")
    assert ds.format == "labelme"
    assert ds.categories.names == ("ant", "zebra")
    assert [(im.id, im.file_name, im.path, im.width, im.height, im.subset) for im in ds.images] == [
        (1, "a.jpg", tmp_path / "a.jpg", 64, 48, None)
    ]
    rect, poly, default_poly = ds.annotations
    assert (rect.category_id, rect.bbox, rect.segmentation) == (2, (10.5, 5.0, 30.0, 40.0), None)
    assert rect.attributes == (("description", "big"), ("flag.crowded", "true"), ("group_id", "3"))
    assert (poly.category_id, poly.bbox) == (1, (1.0, 1.0, 9.0, 8.0))
    assert poly.segmentation == Polygons(((1.0, 1.0, 9.0, 2.0, 5.0, 8.0),))
    assert poly.attributes == ()
    assert default_poly.segmentation is not None
    assert ds.problems == ()
    assert _digests(tmp_path) == before


def test_unsupported_and_invalid_shapes(tmp_path: Path) -> None:
    shapes: list[Any] = [
        _shape("c", "circle", [[5, 5], [8, 8]]),
        _shape("l", "line", [[0, 0], [3, 3]]),
        _shape("ls", "linestrip", [[0, 0], [3, 3], [4, 4]]),
        _shape("p", "point", [[1, 1]]),
        _shape("m", "mask", [[0, 0], [3, 3]]),
        _shape("", "rectangle", [[0, 0], [3, 3]]),
        _shape("r", "rectangle", [[0, 0]]),
        _shape("q", "polygon", [[0, 0], ["x", 1], [2, 2]]),
        "not a shape",
        _shape("ok", "rectangle", [[0, 0], [3, 3]]),
    ]
    json_path = _labelme(tmp_path / "a.json", "a.jpg", shapes)
    ds = read_labelme(json_path)
    assert [a.bbox for a in ds.annotations] == [(0.0, 0.0, 3.0, 3.0)]
    assert ds.categories.names == ("ok",)
    assert [(p.severity, p.code) for p in ds.problems] == [("warning", "shape.unsupported")] * 5 + [
        ("error", "label.missing"),
        ("error", "shape.invalid"),
        ("error", "shape.invalid"),
        ("error", "shape.invalid"),
    ]
    for i, kind in enumerate(["circle", "line", "linestrip", "point", "mask"]):
        assert f"shapes[{i}]" in ds.problems[i].message and repr(kind) in ds.problems[i].message
    assert all(p.location is not None and p.location.file == str(json_path) for p in ds.problems)
    assert all(p.image_id == 1 for p in ds.problems)


def test_subsets_from_split_folders_and_relative_image_paths(
    tmp_path: Path, image_factory: Callable[..., Path]
) -> None:
    image_factory(tmp_path / "train" / "a.jpg", 20, 10)
    image_factory(tmp_path / "images" / "b.jpg", 30, 16, exif_orientation=8)
    _labelme(tmp_path / "train" / "a.json", "a.jpg", [_shape("x", "rectangle", [[1, 1], [2, 2]])], size=(20, 10))
    _labelme(tmp_path / "val" / "deep" / "b.json", "..\\..\\images\\b.jpg", [], size=None)
    _labelme(tmp_path / "root.json", "c.jpg", [])
    ds = read_labelme(tmp_path)
    assert [(im.file_name, im.path, im.width, im.height, im.subset) for im in ds.images] == [
        ("c.jpg", tmp_path / "c.jpg", 64, 48, None),
        ("train/a.jpg", tmp_path / "train" / "a.jpg", 20, 10, "train"),
        ("images/b.jpg", tmp_path / "images" / "b.jpg", 16, 30, "val"),
    ]
    assert ds.subsets == ("train", "val")


def test_plain_folder_has_no_subsets_and_is_searched_recursively(tmp_path: Path) -> None:
    _labelme(tmp_path / "x" / "a.json", "a.jpg", [_shape("k", "rectangle", [[1, 1], [2, 2]])])
    _labelme(tmp_path / "y" / "b.json", "b.jpg", [])
    ds = read_labelme(tmp_path)
    assert [(im.file_name, im.subset) for im in ds.images] == [("x/a.jpg", None), ("y/b.jpg", None)]


def test_embedded_image_data_is_not_decoded(tmp_path: Path) -> None:
    _labelme(tmp_path / "a.json", "a.jpg", [], imageData="aGVsbG8=")
    _labelme(tmp_path / "b.json", "b.jpg", [])
    ds = read_labelme(tmp_path)
    assert [(p.severity, p.code, p.image_id) for p in ds.problems] == [("info", "image.embedded", 1)]
    assert "imageData" in ds.problems[0].message


def test_broken_and_foreign_json(tmp_path: Path) -> None:
    _labelme(tmp_path / "good.json", "good.jpg", [])
    (tmp_path / "broken.json").write_text('{\n  "shapes": [\n    oops\n}')
    (tmp_path / "coco.json").write_text(json.dumps({"images": [], "annotations": []}))
    ds = read_labelme(tmp_path)
    assert [im.file_name for im in ds.images] == ["good.jpg"]
    assert [(p.severity, p.code) for p in ds.problems] == [("error", "json.invalid"), ("info", "labelme.not_labelme")]
    broken = ds.problems[0]
    assert broken.location is not None and broken.location.line == 3 and "column 5" in broken.message
    with pytest.raises(DatasetError, match=r"broken\.json: invalid JSON at line 3, column 5"):
        read_labelme(tmp_path / "broken.json")
    with pytest.raises(DatasetError, match="not a LabelMe file"):
        read_labelme(tmp_path / "coco.json")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DatasetError, match="no LabelMe JSON files"):
        read_labelme(empty)
