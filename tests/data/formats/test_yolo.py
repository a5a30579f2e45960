"""YOLO reader/writer: Datumaro's CVAT and loose samples, Ultralytics yaml rules, line problems, round trips."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest
import yaml

from detforge.data.formats.coco import read_coco
from detforge.data.formats.yolo import read_yolo, write_yolo
from detforge.errors import DatasetError
from detforge.structures import Polygons

NAMES = [f"label_{i}" for i in range(10)]
FIXTURE_BOXES = [(2, (0.0, 2.0, 4.0, 4.0)), (4, (3.0, 3.0, 5.0, 6.0))]
"""The two objects of every Datumaro sample label file, on a 15x10 image: (class, XYXY pixels)."""


def snapshot(folder: Path) -> dict[str, str]:
    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.rglob("*")) if p.is_file()}


def boxes_of(ds, image_id: int) -> list[tuple[int, tuple[float, ...]]]:  # type: ignore[no-untyped-def]
    return [(a.category_id, tuple(round(v, 3) for v in a.bbox)) for a in ds.annotations_of(image_id)]


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


@pytest.fixture
def ultra(tmp_path: Path, image_factory: Callable[..., Path]) -> Path:
    """An Ultralytics dataset: images/{train,val}/ + labels/, a val list file, names as a dict."""
    root = tmp_path / "ds"
    image_factory(root / "images" / "train" / "b.jpg", 100, 50)
    image_factory(root / "images" / "train" / "a.png", 40, 20, fmt="PNG")
    image_factory(root / "images" / "val" / "c.jpg", 20, 20)
    write(root / "labels" / "train" / "b.txt", "0 0.5 0.5 0.2 0.4\n1 0.25 0.25 0.1 0.1\n")
    write(root / "labels" / "train" / "a.txt", "")
    write(root / "val.txt", "./images/val/c.jpg\n")
    write(root / "labels" / "val" / "c.txt", "1 0.5 0.5 1 1\n")
    write(root / "data.yaml", "path: .\ntrain: images/train\nval: val.txt\nnames:\n  0: cat\n  1: dog\n")
    return root


# --- the Datumaro samples ------------------------------------------------------------------------------------


@pytest.mark.parametrize("entry", ["", "obj.data", "obj.names"])
def test_reads_cvat_yolo_sample(fixtures_dir: Path, entry: str) -> None:
    root = fixtures_dir / "formats" / "yolo_cvat"
    ds = read_yolo(root / entry if entry else root)
    assert ds.format == "yolo" and ds.root == root
    assert list(ds.categories.names) == NAMES and list(ds.categories.ids) == list(range(10))
    (im,) = ds.images
    assert (im.id, im.file_name, im.subset, im.width, im.height) == (1, "1.jpg", "train", 15, 10)
    assert im.path == root / "obj_train_data" / "1.jpg"
    assert boxes_of(ds, 1) == FIXTURE_BOXES
    assert [a.id for a in ds.annotations] == [1, 2] and ds.problems == ()


def test_reads_loose_sample(fixtures_dir: Path) -> None:
    root = fixtures_dir / "formats" / "yolo_loose"
    ds = read_yolo(root)
    assert list(ds.categories.names) == NAMES
    assert [(im.id, im.subset, im.file_name) for im in ds.images] == [(1, "train", "1.jpg"), (2, "val", "1.jpg")]
    assert boxes_of(ds, 1) == FIXTURE_BOXES and boxes_of(ds, 2) == FIXTURE_BOXES
    assert [a.id for a in ds.annotations] == [1, 2, 3, 4] and ds.problems == ()


# --- Ultralytics layout --------------------------------------------------------------------------------------


def test_ultralytics_folder_list_and_dict_names(ultra: Path) -> None:
    ds = read_yolo(ultra)
    assert [(c.id, c.name) for c in ds.categories] == [(0, "cat"), (1, "dog")]
    assert [(im.id, im.subset, im.file_name, im.width, im.height) for im in ds.images] == [
        (1, "train", "a.png", 40, 20),
        (2, "train", "b.jpg", 100, 50),
        (3, "val", "c.jpg", 20, 20),
    ]
    assert boxes_of(ds, 1) == []  # empty label file: no objects, no problem
    assert boxes_of(ds, 2) == [(0, (40.0, 15.0, 60.0, 35.0)), (1, (20.0, 10.0, 30.0, 15.0))]
    assert boxes_of(ds, 3) == [(1, (0.0, 0.0, 20.0, 20.0))]
    assert ds.problems == ()
    assert read_yolo(ultra / "data.yaml").images == ds.images


def test_label_path_replaces_the_last_images_component(tmp_path: Path, image_factory: Callable[..., Path]) -> None:
    root = tmp_path / "images" / "project"  # an outer 'images' folder must not be the one replaced
    image_factory(root / "images" / "train" / "images" / "x.jpg", 10, 10)
    write(root / "images" / "train" / "labels" / "x.txt", "0 0.5 0.5 0.2 0.2\n")
    write(root / "data.yaml", "train: images/train\nnames: [thing]\n")
    ds = read_yolo(root)
    assert ds.images[0].file_name == "x.jpg" and len(ds.annotations) == 1


def test_absolute_missing_path_falls_back_to_yaml_folder(ultra: Path) -> None:
    text = (ultra / "data.yaml").read_text().replace("path: .", "path: /nonexistent/datasets/ds")
    yaml_path = write(ultra / "data.yaml", text)
    ds = read_yolo(yaml_path)
    assert len(ds.images) == 3
    (p,) = [p for p in ds.problems if p.code == "yolo.path_fallback"]
    assert p.severity == "info" and "/nonexistent/datasets/ds" in p.message and p.location
    assert p.location.file == str(yaml_path)


def test_list_of_folders_relative_path_and_names_list(tmp_path: Path, image_factory: Callable[..., Path]) -> None:
    data = tmp_path / "data"
    image_factory(data / "a" / "images" / "1.jpg", 10, 10)
    image_factory(data / "b" / "images" / "2.jpg", 10, 10)
    write(data / "b" / "labels" / "2.txt", "1 0.5 0.5 0.5 0.5\n")
    write(tmp_path / "cfg" / "my.yaml", "path: ../data\ntest: [a/images, b/images]\nnc: 2\nnames: [x, y]\n")
    ds = read_yolo(tmp_path / "cfg" / "my.yaml")
    assert ds.root == data
    assert [(im.subset, im.file_name) for im in ds.images] == [("test", "a/images/1.jpg"), ("test", "b/images/2.jpg")]
    assert boxes_of(ds, 2) == [(1, (2.5, 2.5, 7.5, 7.5))]
    missing = [p for p in ds.problems if p.code == "label_file.missing"]
    assert len(missing) == 1 and missing[0].severity == "info" and missing[0].image_id == 1
    assert missing[0].location and missing[0].location.file == str(data / "a" / "labels" / "1.txt")


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("train: images\nnc: 3\nnames: [a, b]\n", ["'nc' is 3", "2 entries"]),
        ("train: images\n", ["missing 'names'"]),
        ("train: images\nnames: 5\n", ["'names' must be a list or a mapping"]),
        ("train: images\nnames: [a, a]\n", ["duplicate category names ['a']"]),
        ("train: images\nnames: [a\n", ["data.yaml:", "invalid YAML"]),
        ("- just\n- a list\n", ["expected a mapping"]),
        ("train: nowhere\nnames: [a]\n", ["no images found"]),
    ],
)
def test_yaml_errors_are_fatal_and_named(tmp_path: Path, image_factory, text: str, words: list[str]) -> None:  # type: ignore[no-untyped-def]
    image_factory(tmp_path / "images" / "1.jpg", 4, 4)
    path = write(tmp_path / "data.yaml", text)
    with pytest.raises(DatasetError) as err:
        read_yolo(path)
    assert str(path) in str(err.value)
    for word in words:
        assert word in str(err.value)


def test_written_labels_follow_the_readers_rule_for_nested_images_folders(tmp_path: Path, image_factory) -> None:  # type: ignore[no-untyped-def]
    data = tmp_path / "data"
    image_factory(data / "a" / "images" / "1.jpg", 10, 10)
    image_factory(data / "b" / "images" / "1.jpg", 10, 10)
    write(data / "a" / "labels" / "1.txt", "0 0.5 0.5 0.5 0.5\n")
    write(data / "b" / "labels" / "1.txt", "1 0.5 0.5 0.2 0.2\n")
    write(data / "data.yaml", "train: [a/images, b/images]\nnames: [x, y]\n")
    ds = read_yolo(data)
    out = write_yolo(ds, tmp_path / "out")
    assert (out / "images" / "train" / "a" / "labels" / "1.txt").is_file()
    back = read_yolo(out)
    assert [boxes_of(back, i) for i in (1, 2)] == [boxes_of(ds, i) for i in (1, 2)] != [[], []]
    assert back.problems == ()


def test_duplicates_in_a_list_and_generated_names(ultra: Path) -> None:
    write(ultra / "val.txt", "./images/val/c.jpg\nimages/val/c.jpg\n")
    write(ultra / "data.yaml", "train: images/train\nval: val.txt\nnc: 2\n")
    ds = read_yolo(ultra)
    assert list(ds.categories.names) == ["class0", "class1"] and ds.subset("val").images[0].file_name == "c.jpg"
    assert len(ds.subset("val")) == 1
    assert [(p.severity, p.code) for p in ds.problems] == [
        ("info", "yolo.names_generated"),
        ("warning", "yolo.duplicate_image"),
    ]


def test_cvat_missing_list_falls_back_to_its_folder(fixtures_dir: Path) -> None:
    root = fixtures_dir / "formats" / "yolo_cvat"
    (root / "train.txt").unlink()
    ds = read_yolo(root)
    assert [im.file_name for im in ds.images] == ["1.jpg"] and boxes_of(ds, 1) == FIXTURE_BOXES
    (p,) = ds.problems
    assert (p.severity, p.code, p.location) == ("info", "yolo.list_missing", replace(p.location, line=2))


def test_undecodable_label_file_is_an_error_problem(tmp_path: Path, image_factory: Callable[..., Path]) -> None:
    image_factory(tmp_path / "images" / "x.jpg", 10, 10)
    (tmp_path / "labels").mkdir()
    (tmp_path / "labels" / "x.txt").write_bytes(b"0 0.5 \xff\xfe 0.5\n")
    write(tmp_path / "obj.names", "a\n")
    ds = read_yolo(tmp_path)
    assert ds.images[0].subset is None and ds.annotations == ()
    (p,) = ds.problems
    assert (p.severity, p.code) == ("error", "yolo.label_unreadable")
    assert p.location and p.location.file == str(tmp_path / "labels" / "x.txt")


def test_missing_subset_entry_is_an_error_problem(ultra: Path) -> None:
    write(ultra / "data.yaml", "train: images/train\nval: images/nope\nnames: [cat, dog]\n")
    ds = read_yolo(ultra)
    assert ds.subsets == ("train",)
    (p,) = [p for p in ds.problems if p.code == "yolo.subset_missing"]
    assert p.severity == "error" and "'val: images/nope'" in p.message


# --- images: EXIF, unreadable, missing -----------------------------------------------------------------------


def test_exif_rotated_image_size_is_the_displayed_one(tmp_path: Path, image_factory: Callable[..., Path]) -> None:
    image_factory(tmp_path / "images" / "train" / "r.jpg", 40, 20, exif_orientation=6)
    write(tmp_path / "labels" / "train" / "r.txt", "0 0.5 0.5 0.5 0.5\n")
    write(tmp_path / "classes.txt", "thing\n")
    ds = read_yolo(tmp_path)
    assert (ds.images[0].width, ds.images[0].height) == (20, 40)
    assert ds.annotations[0].bbox == (5.0, 10.0, 15.0, 30.0)


def test_unreadable_or_missing_image_keeps_record_and_drops_labels(tmp_path: Path) -> None:
    write(tmp_path / "images" / "train" / "bad.jpg", "not a jpeg")
    write(tmp_path / "labels" / "train" / "bad.txt", "0 0.5 0.5 0.5 0.5\n\n0 0.1 0.1 0.1 0.1\n")
    write(tmp_path / "obj.names", "thing\n")
    ds = read_yolo(tmp_path)
    assert [(im.width, im.height) for im in ds.images] == [(0, 0)] and ds.annotations == ()
    (p,) = ds.problems
    assert (p.severity, p.code, p.image_id) == ("error", "yolo.no_image_size", 1)
    assert p.location and p.location.file == str(tmp_path / "labels" / "train" / "bad.txt")
    assert "cannot convert normalised boxes without the image size" in p.message and "2 label line(s)" in p.message


def test_image_listed_but_missing(ultra: Path) -> None:
    write(ultra / "val.txt", "./images/val/c.jpg\n./images/val/gone.jpg\n")
    write(ultra / "labels" / "val" / "gone.txt", "0 0.5 0.5 0.5 0.5\n")
    ds = read_yolo(ultra)
    gone = next(im for im in ds.images if im.file_name == "gone.jpg")
    assert (gone.width, gone.height, boxes_of(ds, gone.id)) == (0, 0, [])
    assert [p.code for p in ds.problems] == ["yolo.no_image_size"]


# --- label lines ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "code", "words"),
    [
        ("0 0.5 0.5 0.5", "yolo.wrong_value_count", ["got 4"]),
        ("0 0.1 0.1 0.2 0.2 0.3", "yolo.wrong_value_count", ["got 6"]),
        ("0 0.5 abc 0.5 0.5", "yolo.non_numeric", ["value 3", "'abc'"]),
        ("0 0.5 nan 0.5 0.5", "yolo.non_numeric", ["'nan'"]),
        ("1.5 0.5 0.5 0.5 0.5", "yolo.class_not_integer", ["'1.5'"]),
        ("cat 0.5 0.5 0.5 0.5", "yolo.class_not_integer", ["'cat'"]),
        ("2 0.5 0.5 0.5 0.5", "yolo.class_out_of_range", ["class id 2", "0..1"]),
        ("-1 0.5 0.5 0.5 0.5", "yolo.class_out_of_range", ["class id -1"]),
    ],
)
def test_bad_line_is_left_out_with_file_and_line(
    tmp_path: Path, image_factory: Callable[..., Path], line: str, code: str, words: list[str]
) -> None:
    image_factory(tmp_path / "images" / "train" / "x.jpg", 10, 10)
    label = write(tmp_path / "labels" / "train" / "x.txt", f"0 0.5 0.5 0.2 0.2\n\n{line}\n1.0 0.5 0.5 0.4 0.4\n")
    write(tmp_path / "obj.names", "a\nb\n")
    ds = read_yolo(tmp_path)
    assert [(a.category_id, a.source.line if a.source else None) for a in ds.annotations] == [(0, 1), (1, 4)]
    (p,) = ds.problems
    assert (p.severity, p.code, p.image_id) == ("error", code, 1)
    assert p.location is not None and (p.location.file, p.location.line) == (str(label), 3)
    assert p.message.startswith(f'line 3 "{line}":')  # the line as written
    for word in words:
        assert word in p.message


def test_out_of_range_coordinates_are_kept_with_a_warning(tmp_path: Path, image_factory: Callable[..., Path]) -> None:
    image_factory(tmp_path / "images" / "train" / "x.jpg", 10, 10)
    label = write(tmp_path / "labels" / "train" / "x.txt", "0 1.2 0.5 0.4 0.4\n0 1.0005 0.5 0.2 0.2\n")
    write(tmp_path / "obj.names", "a\n")
    ds = read_yolo(tmp_path)
    assert boxes_of(ds, 1) == [(0, (10.0, 3.0, 14.0, 7.0)), (0, (9.005, 4.0, 11.005, 6.0))]
    (p,) = ds.problems  # 1.0005 is within the tolerance
    assert (p.severity, p.code, p.location) == ("warning", "yolo.coords_out_of_range", replace(p.location, line=1))
    assert p.location is not None and p.location.file == str(label) and "1.2" in p.message


def test_polygon_lines_become_polygons_and_boxes(tmp_path: Path, image_factory: Callable[..., Path]) -> None:
    image_factory(tmp_path / "images" / "train" / "x.jpg", 100, 50)
    write(tmp_path / "labels" / "train" / "x.txt", "0 0.1 0.2 0.5 0.2 0.3 0.8\n")
    write(tmp_path / "obj.names", "a\n")
    (a,) = read_yolo(tmp_path).annotations
    assert a.segmentation == Polygons(((10.0, 10.0, 50.0, 10.0, 30.0, 40.0),))
    assert a.bbox == pytest.approx((10.0, 10.0, 50.0, 40.0))


def test_no_layout_is_fatal_with_what_was_looked_for(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match=r"looked for data\.yaml"):
        read_yolo(tmp_path)
    (tmp_path / "images").mkdir()
    with pytest.raises(DatasetError, match=r"obj\.names or classes\.txt"):
        read_yolo(tmp_path)


def test_obj_data_classes_must_match_names(fixtures_dir: Path) -> None:
    root = fixtures_dir / "formats" / "yolo_cvat"
    write(root / "obj.data", "classes = 3\ntrain = data/train.txt\nnames = data/obj.names\n")
    with pytest.raises(DatasetError, match=r"obj\.data:1: 'classes = 3' but data/obj\.names has 10 names"):
        read_yolo(root)


# --- writer --------------------------------------------------------------------------------------------------


def test_write_layout_and_content(ultra: Path, tmp_path: Path) -> None:
    ds = read_yolo(ultra)
    out = write_yolo(ds, tmp_path / "out")
    assert yaml.safe_load((out / "data.yaml").read_text()) == {
        "path": ".",
        "train": "images/train",
        "val": "images/val",
        "names": {0: "cat", 1: "dog"},
    }
    assert (out / "labels" / "train" / "b.txt").read_text() == (
        "0 0.500000 0.500000 0.200000 0.400000\n1 0.250000 0.250000 0.100000 0.100000\n"
    )
    assert (out / "labels" / "train" / "a.txt").read_text() == ""
    assert (out / "images" / "val" / "c.jpg").read_bytes() == (ultra / "images" / "val" / "c.jpg").read_bytes()


def test_coco_to_yolo_contiguous_indices_skips_crowd(fixtures_dir: Path, tmp_path: Path, caplog) -> None:  # type: ignore[no-untyped-def]
    coco = read_coco(fixtures_dir / "formats" / "coco")
    with caplog.at_level(logging.WARNING):
        out = write_yolo(coco, tmp_path / "out")
    assert "1 crowd annotation(s) skipped" in caplog.text
    back = read_yolo(out)
    assert list(back.categories.names) == ["a", "b", "c"]  # ids 1, 2, 4 -> indices 0, 1, 2
    assert (out / "labels" / "train" / "a.txt").read_text() == "1 0.350000 0.500000 0.300000 0.200000\n"
    assert (out / "labels" / "val" / "b.txt").read_text() == "0 0.100000 0.100000 0.200000 0.200000\n"
    assert boxes_of(back, 1) == [(1, (2.0, 2.0, 5.0, 3.0))]


def test_subset_none_is_written_as_train_and_unknown_size_is_refused(ultra: Path, tmp_path: Path) -> None:
    ds = read_yolo(ultra).with_subset(None)
    out = write_yolo(ds, tmp_path / "out", copy_images=False)
    assert yaml.safe_load((out / "data.yaml").read_text())["train"] == "images/train"
    assert sorted(p.name for p in (out / "labels" / "train").iterdir()) == ["a.txt", "b.txt", "c.txt"]
    unknown = replace(ds, images=(replace(ds.images[0], width=0), *ds.images[1:]))
    with pytest.raises(DatasetError, match=r"image 1 \(.*a\.png\): size unknown"):
        write_yolo(unknown, tmp_path / "out2")
    assert not (tmp_path / "out2").exists()


def test_other_subset_names_survive_a_round_trip(ultra: Path, tmp_path: Path) -> None:
    ds = read_yolo(ultra).with_subset("valid")
    out = write_yolo(ds, tmp_path / "out")
    assert yaml.safe_load((out / "data.yaml").read_text())["valid"] == "images/valid"
    back = read_yolo(out)
    assert back.subsets == ("valid",) and len(back.annotations) == len(ds.annotations) == 3


def test_writer_never_overwrites_input_labels(ultra: Path) -> None:
    before = snapshot(ultra)
    with pytest.raises(DatasetError, match="input file"):
        write_yolo(read_yolo(ultra), ultra)
    assert snapshot(ultra) == before


@pytest.mark.parametrize("sample", ["yolo_loose", "yolo_cvat"])
def test_round_trip_keeps_boxes_names_and_inputs(fixtures_dir: Path, tmp_path: Path, sample: str) -> None:
    root = fixtures_dir / "formats" / sample
    before = snapshot(root)
    ds = read_yolo(root)
    back = read_yolo(write_yolo(ds, tmp_path / "out"))
    assert snapshot(root) == before
    assert back.categories == ds.categories and back.problems == ()
    assert [(im.subset, im.file_name, im.width, im.height) for im in back.images] == [
        (im.subset, im.file_name, im.width, im.height) for im in ds.images
    ]
    for a, b in zip(ds.annotations, back.annotations, strict=True):
        assert a.category_id == b.category_id and a.image_id == b.image_id
        assert max(abs(x - y) for x, y in zip(a.bbox, b.bbox, strict=True)) < 0.5
