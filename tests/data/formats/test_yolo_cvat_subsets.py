"""CVAT's YOLO 1.1 export: whatever images the export holds but `obj.data` does not lead to are named."""

from __future__ import annotations

from pathlib import Path

from PIL import Image

from detforge.data.formats import load_dataset


def _export(root: Path, subsets: dict[str, int], obj_data_subsets: list[str], lists: bool = True) -> Path:
    """A CVAT YOLO 1.1 export (as datumaro writes it) with `subsets` {name: images}; obj.data names only
    `obj_data_subsets`."""
    root.mkdir(parents=True)
    (root / "obj.names").write_text("cat\n", encoding="utf-8")
    for subset, count in subsets.items():
        folder = root / f"obj_{subset}_data"
        folder.mkdir()
        names = []
        for i in range(count):
            Image.new("RGB", (20, 10)).save(folder / f"{subset}_{i}.jpg")
            (folder / f"{subset}_{i}.txt").write_text("0 0.5 0.5 0.2 0.2\n", encoding="utf-8")
            names.append(f"data/obj_{subset}_data/{subset}_{i}.jpg")
        if lists:
            (root / f"{subset}.txt").write_text("\n".join(names) + "\n", encoding="utf-8")
    lines = ["classes = 1", *(f"{s} = data/{s}.txt" for s in obj_data_subsets), "names = data/obj.names"]
    (root / "obj.data").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return root


def _codes(ds: object) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for p in ds.problems:  # type: ignore[attr-defined]
        out.setdefault(p.code, []).append(str(p))
    return out


def test_subset_folder_and_list_not_named_in_obj_data_are_reported(tmp_path: Path) -> None:
    root = _export(tmp_path / "cvat", {"train": 3, "val": 2, "test": 2}, ["train", "valid"])
    ds = load_dataset(root)
    assert len(ds.images) == 3
    codes = _codes(ds)
    unread = " ".join(codes["yolo.images_not_read"])
    assert "obj_val_data" in unread and "obj_test_data" in unread and "2 image(s)" in unread
    assert "test = data/test.txt" in unread
    lists = " ".join(codes["yolo.list_not_read"])
    assert "val.txt" in lists and "test.txt" in lists and "train.txt" not in lists


def test_images_in_a_read_folder_but_missing_from_its_list_are_reported(tmp_path: Path) -> None:
    root = _export(tmp_path / "cvat", {"train": 4}, ["train"])
    (root / "train.txt").write_text("data/obj_train_data/train_0.jpg\n", encoding="utf-8")
    ds = load_dataset(root)
    assert len(ds.images) == 1
    (message,) = _codes(ds)["yolo.images_not_read"]
    assert "3 image(s)" in message and "train_1.jpg" in message


def test_a_complete_export_reports_nothing_unread(tmp_path: Path) -> None:
    root = _export(tmp_path / "cvat", {"train": 2, "val": 1}, ["train", "val"])
    ds = load_dataset(root)
    assert len(ds.images) == 3
    assert not {"yolo.images_not_read", "yolo.list_not_read"} & set(_codes(ds))
