"""Roboflow's COCO export (`train/`, `valid/`, `test/`, each `_annotations.coco.json` + images) read at its top."""

from __future__ import annotations

import json
from pathlib import Path

from PIL import Image

from detforge.data.formats import load_dataset
from detforge.data.formats.detect import detect_format


def _roboflow(root: Path) -> Path:
    """A Roboflow-style export: category 0 is the workspace's super-class, ids restart at 0 in each subset."""
    for subset, names in (("train", ["a.jpg", "b.jpg"]), ("valid", ["c.jpg"]), ("test", ["d.jpg"])):
        folder = root / subset
        folder.mkdir(parents=True)
        images, anns = [], []
        for i, name in enumerate(names):
            Image.new("RGB", (32, 24)).save(folder / name)
            images.append({"id": i, "file_name": name, "width": 32, "height": 24})
            anns.append({"id": i, "image_id": i, "category_id": 1, "bbox": [2, 3, 10, 8], "area": 80, "iscrowd": 0})
        doc = {
            "info": {"description": "exported from roboflow.com"},
            "categories": [
                {"id": 0, "name": "things", "supercategory": "none"},
                {"id": 1, "name": "cat", "supercategory": "things"},
            ],
            "images": images,
            "annotations": anns,
        }
        (folder / "_annotations.coco.json").write_text(json.dumps(doc))
    (root / "README.roboflow.txt").write_text("exported via roboflow\n")
    return root


def test_roboflow_layout_is_recognised_at_its_top_folder(tmp_path: Path) -> None:
    root = _roboflow(tmp_path / "export")
    assert detect_format(root) == "coco"
    dataset = load_dataset(root)
    by_subset: dict[str | None, list[str]] = {}
    for im in dataset.images:
        by_subset.setdefault(im.subset, []).append(im.file_name)
    assert by_subset == {"train": ["a.jpg", "b.jpg"], "val": ["c.jpg"], "test": ["d.jpg"]}
    assert all(im.path.is_file() for im in dataset.images)
    assert {im.path.parent.name for im in dataset.images} == {"train", "valid", "test"}
    assert len(dataset.annotations) == 4


def test_one_roboflow_subset_file_or_folder_names_its_subset(tmp_path: Path) -> None:
    root = _roboflow(tmp_path / "export")
    for path in (root / "valid", root / "valid" / "_annotations.coco.json"):
        dataset = load_dataset(path)
        assert [(im.subset, im.file_name) for im in dataset.images] == [("val", "c.jpg")]
        assert dataset.images[0].path == root / "valid" / "c.jpg"


def test_roboflows_workspace_category_0_is_left_out_with_a_note(tmp_path: Path) -> None:
    dataset = load_dataset(_roboflow(tmp_path / "export"))
    assert [c.name for c in dataset.categories] == ["cat"]
    notes = [p for p in dataset.problems if p.code == "coco.roboflow_superclass"]
    assert len(notes) == 1 and "'things'" in notes[0].message and notes[0].severity == "info"
