"""Label Studio JSON export reader: percent boxes and polygons, annotation choice, image lookup."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from detforge.data.formats import load_dataset
from detforge.data.formats.labelstudio import read_labelstudio
from detforge.errors import DatasetError
from detforge.structures import Polygons


def _rect(
    label: str, x: float, y: float, w: float, h: float, size: tuple[int, int] = (200, 100), **value: Any
) -> dict[str, Any]:
    return {
        "id": f"r{label}{x}",
        "type": "rectanglelabels",
        "from_name": "label",
        "to_name": "image",
        "original_width": size[0],
        "original_height": size[1],
        "image_rotation": 0,
        "value": {"x": x, "y": y, "width": w, "height": h, "rotation": 0, "rectanglelabels": [label], **value},
    }


def _poly(label: str, points: list[list[float]], size: tuple[int, int] = (200, 100)) -> dict[str, Any]:
    return {
        "id": f"p{label}",
        "type": "polygonlabels",
        "original_width": size[0],
        "original_height": size[1],
        "value": {"points": points, "polygonlabels": [label]},
    }


def _task(task_id: int, image: str, *results: dict[str, Any], **extra: Any) -> dict[str, Any]:
    annotation = {"id": 100 + task_id, "was_cancelled": False, "result": list(results)}
    return {"id": task_id, "data": {"image": image}, "annotations": [annotation], "predictions": [], **extra}


def _export(path: Path, tasks: list[Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(tasks, indent=1))
    return path


def _digests(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in root.rglob("*") if p.is_file()
    }


def test_rectangles_and_polygons_in_pixels(tmp_path: Path, image_factory: Callable[..., Path]) -> None:
    image_factory(tmp_path / "images" / "photo.jpg", 200, 100)
    tasks = [
        _task(
            7,
            "/data/upload/3/1a2b3c4d-photo.jpg",
            _rect("dog", 10, 20, 25, 50),
            _poly("cat", [[10, 10], [60, 10], [35, 90]]),
        )
    ]
    export = _export(tmp_path / "export.json", tasks)
    before = _digests(tmp_path)
    ds = load_dataset(tmp_path, format="labelstudio")
    assert ds.format == "labelstudio"
    assert ds.categories.names == ("cat", "dog")
    assert [(im.id, im.file_name, im.path, im.width, im.height, im.subset) for im in ds.images] == [
        (7, "images/photo.jpg", tmp_path / "images" / "photo.jpg", 200, 100, None)
    ]
    dog, cat = ds.annotations
    assert (dog.image_id, dog.category_id, dog.bbox) == (7, 2, (20.0, 20.0, 70.0, 70.0))
    assert cat.category_id == 1
    assert cat.segmentation == Polygons(((20.0, 10.0, 120.0, 10.0, 70.0, 90.0),))
    assert cat.bbox == (20.0, 10.0, 120.0, 90.0)
    assert dog.source is not None and dog.source.file == str(export)
    assert ds.problems == ()
    assert _digests(tmp_path) == before


def test_image_lookup(tmp_path: Path, image_factory: Callable[..., Path]) -> None:
    image_factory(tmp_path / "media" / "upload" / "4" / "deadbeef-scan.png", 10, 10, fmt="PNG")
    image_factory(tmp_path / "plain.jpg", 10, 10)
    image_factory(tmp_path / "data" / "local.jpg", 12, 9)
    image_factory(tmp_path / "images" / "x y.jpg", 10, 10)
    tasks = [
        _task(1, "/data/upload/4/deadbeef-scan.png"),
        _task(2, "s3://bucket/folder/plain.jpg?X-Amz-Signature=abc"),
        _task(3, "data/local.jpg"),
        _task(4, "/data/local-files/?d=somewhere/x%20y.jpg"),
        _task(5, "http://host/data/upload/1/0badf00d-gone.jpg"),
    ]
    ds = read_labelstudio(_export(tmp_path / "project.json", tasks))
    assert [(im.id, im.file_name, im.path) for im in ds.images] == [
        (1, "media/upload/4/deadbeef-scan.png", tmp_path / "media" / "upload" / "4" / "deadbeef-scan.png"),
        (2, "plain.jpg", tmp_path / "plain.jpg"),
        (3, "data/local.jpg", tmp_path / "data" / "local.jpg"),
        (4, "images/x y.jpg", tmp_path / "images" / "x y.jpg"),
        (5, "gone.jpg", tmp_path / "gone.jpg"),
    ]
    assert [(im.width, im.height) for im in ds.images] == [(10, 10), (10, 10), (12, 9), (10, 10), (0, 0)]


def test_rotated_boxes_are_rejected(tmp_path: Path) -> None:
    export = _export(
        tmp_path / "e.json", [_task(3, "a.jpg", _rect("dog", 1, 1, 5, 5, rotation=30), _rect("ok", 1, 1, 5, 5))]
    )
    ds = read_labelstudio(export)
    assert [ds.categories.by_id(a.category_id).name for a in ds.annotations] == ["ok"]
    (problem,) = ds.problems
    assert (problem.severity, problem.code, problem.image_id) == ("error", "box.rotated", 3)
    assert problem.location is not None and problem.location.file == str(export)
    assert "task 3" in problem.message and "30" in problem.message


def test_annotation_choice_cancelled_and_predictions(tmp_path: Path) -> None:
    cancelled = {"id": 1, "was_cancelled": True, "result": [_rect("cancelled", 1, 1, 5, 5)]}
    second = {"id": 2, "was_cancelled": False, "result": [_rect("second", 1, 1, 5, 5)]}
    prediction = {"id": 9, "model_version": "v1", "result": [_rect("predicted", 1, 1, 5, 5)]}
    tasks = [
        _task(1, "a.jpg", _rect("first", 1, 1, 5, 5), predictions=[prediction]),
        {**_task(2, "b.jpg"), "annotations": [cancelled, second, {**second, "id": 3}]},
        {**_task(3, "c.jpg"), "annotations": [], "predictions": [prediction]},
        {**_task(4, "d.jpg"), "annotations": [cancelled]},
        _task(5, "e.jpg"),  # submitted with no regions: a real image without objects
    ]
    ds = read_labelstudio(_export(tmp_path / "e.json", tasks))
    assert [im.id for im in ds.images] == [1, 2, 3, 5]
    names = {a.image_id: ds.categories.by_id(a.category_id).name for a in ds.annotations}
    assert names == {1: "first", 2: "second", 3: "predicted"}
    assert ds.categories.names == ("first", "predicted", "second")
    assert [(p.severity, p.code, p.image_id) for p in ds.problems] == [
        ("info", "annotation.several", 2),
        ("info", "annotation.from_prediction", 3),
        ("warning", "task.unlabelled", 4),
    ]
    assert all(f"task {p.image_id}" in p.message for p in ds.problems)


def test_bad_tasks_and_results(tmp_path: Path) -> None:
    labels_only = {"id": "L", "type": "labels", "value": {"labels": ["side"]}}
    rect_plain = {
        "id": "L",
        "type": "rectangle",
        "original_width": 100,
        "original_height": 50,
        "value": {"x": 10, "y": 10, "width": 10, "height": 10},
    }
    tasks: list[Any] = [
        {"data": {"image": "a.jpg"}},
        _task(2, "b.jpg"),
        _task(2, "dup.jpg"),
        {"id": 3, "data": {"text": "hello"}, "annotations": []},
        _task(
            4,
            "c.jpg",
            _rect("x", "oops", 1, 1, 1),  # type: ignore[arg-type]
            {**_rect("", 1, 1, 1, 1)},
            {**_rect("y", 1, 1, 1, 1), "original_width": None, "original_height": None},
            _rect("two", 0, 0, 10, 10, rectanglelabels=["a", "b"]),
            {"id": "k", "type": "keypointlabels", "value": {"x": 1, "y": 1, "keypointlabels": ["k"]}},
            {"id": "c", "type": "choices", "value": {"choices": ["good"]}},
            _poly("bad", [[1, 1], [2, 2]]),
            labels_only,
            rect_plain,
        ),
        _task(5, "missing.jpg", {**_rect("z", 1, 1, 1, 1), "original_width": None, "original_height": None}),
    ]
    ds = read_labelstudio(_export(tmp_path / "e.json", tasks))
    assert [(im.id, im.width, im.height) for im in ds.images] == [(2, 0, 0), (4, 200, 100), (5, 0, 0)]
    assert [(ds.categories.by_id(a.category_id).name, a.bbox) for a in ds.annotations] == [
        ("y", (2.0, 1.0, 4.0, 2.0)),  # no original size on the result: the task's other results give it
        ("a", (0.0, 0.0, 20.0, 10.0)),
        ("b", (0.0, 0.0, 20.0, 10.0)),
        ("side", (10.0, 5.0, 20.0, 10.0)),
    ]
    assert [(p.severity, p.code) for p in ds.problems] == [
        ("error", "task.invalid"),
        ("error", "task.duplicate_id"),
        ("error", "task.no_image"),
        ("error", "box.invalid"),
        ("error", "label.missing"),
        ("warning", "label.multiple"),
        ("warning", "shape.unsupported"),
        ("error", "box.invalid"),
        ("error", "size.unknown"),
        ("info", "result.ignored"),
    ]
    assert "'choices'" in ds.problems[-1].message


def test_invalid_exports(tmp_path: Path) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text('[\n  {"id": 1,\n   "data": }\n]')
    with pytest.raises(DatasetError, match=r"broken\.json: invalid JSON at line 3, column 12"):
        read_labelstudio(broken)
    wrong = tmp_path / "wrong" / "x.json"
    wrong.parent.mkdir()
    wrong.write_text('{"images": []}')
    with pytest.raises(DatasetError, match="expected a list of Label Studio tasks"):
        read_labelstudio(wrong)
    with pytest.raises(DatasetError, match="no Label Studio JSON export"):
        read_labelstudio(wrong.parent)
