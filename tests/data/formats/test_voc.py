"""Pascal VOC reader and writer: Datumaro's sample, every reading rule, and the VOC -> VOC round trip."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import pytest

from detforge.data.dataset import Dataset
from detforge.data.formats import load_dataset, write_dataset
from detforge.data.formats.voc import read_voc, write_voc
from detforge.errors import DatasetError
from detforge.structures import Annotation, Categories, ImageRecord, Polygons


def _obj(name: str, box: tuple[float, float, float, float], extra: str = "") -> str:
    x0, y0, x1, y1 = box
    return (
        f"  <object>\n    <name>{name}</name>\n{extra}    <bndbox>\n"
        f"      <xmin>{x0}</xmin>\n      <ymin>{y0}</ymin>\n      <xmax>{x1}</xmax>\n      <ymax>{y1}</ymax>\n"
        "    </bndbox>\n  </object>\n"
    )


def _xml(filename: str, objects: str, size: tuple[int, int] | None = (40, 30)) -> str:
    size_xml = f"  <size><width>{size[0]}</width><height>{size[1]}</height><depth>3</depth></size>\n" if size else ""
    return f"<annotation>\n  <filename>{filename}</filename>\n{size_xml}{objects}</annotation>\n"


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def _digests(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in root.rglob("*") if p.is_file()
    }


def test_datumaro_sample(fixtures_dir: Path) -> None:
    root = fixtures_dir / "formats" / "voc"
    before = _digests(root)
    ds = load_dataset(root)
    assert ds.format == "voc"
    assert ds.categories.names == ("cat", "person")
    assert ds.categories.ids == (1, 2)
    assert [(im.id, im.file_name, im.width, im.height, im.subset) for im in ds.images] == [
        (1, "2007_000001.jpg", 20, 10, "train"),
        (2, "2007_000002.jpg", 20, 10, "test"),
    ]
    assert ds.images[0].path == root / "JPEGImages" / "2007_000001.jpg"
    cat, person = ds.annotations
    assert (cat.image_id, cat.category_id, cat.bbox) == (1, 1, (0.0, 1.0, 3.0, 4.0))
    assert dict(cat.attributes) == {"difficult": "0", "pose": "Unspecified", "truncated": "1"}
    assert (person.image_id, person.category_id, person.bbox) == (1, 2, (3.0, 4.0, 6.0, 7.0))
    assert dict(person.attributes)["action.jumping"] == "0"
    assert dict(person.attributes)["action.phoning"] == "1"
    assert cat.source is not None and cat.source.line == 11
    assert ds.annotations_of(2) == ()
    assert [(p.severity, p.code, p.location.line if p.location else None) for p in ds.problems] == [
        ("info", "voc.part_ignored", 31),
        ("info", "image.no_annotation_file", None),
    ]
    assert "head" in ds.problems[0].message
    assert ds.problems[0].location is not None
    assert ds.problems[0].location.file.endswith("2007_000001.xml")
    assert _digests(root) == before


def test_coordinates_attributes_and_parts(tmp_path: Path, image_factory: Callable[..., Path]) -> None:
    image_factory(tmp_path / "JPEGImages" / "a.jpg", 40, 30)
    flags = "    <difficult>1</difficult>\n    <occluded>1</occluded>\n    <pose>Left</pose>\n"
    part = (
        "    <part><name>hand</name><bndbox><xmin>1</xmin><ymin>1</ymin><xmax>2</xmax><ymax>2</ymax></bndbox></part>\n"
    )
    attrs = "    <attributes><attribute><name>color</name><value>red</value></attribute></attributes>\n"
    _write(
        tmp_path / "Annotations" / "a.xml",
        _xml("a.jpg", _obj("dog", (5.5, 1, 20, 10), flags) + _obj("dog", (1, 2, 3, 4), part + attrs)),
    )
    ds = read_voc(tmp_path)
    first, second = ds.annotations
    assert first.bbox == (4.5, 0.0, 20.0, 10.0)
    assert dict(first.attributes) == {"difficult": "1", "occluded": "1", "pose": "Left"}
    assert not first.iscrowd
    assert second.attributes == (("color", "red"),)
    assert [(p.code, p.location.line if p.location else None) for p in ds.problems] == [("voc.part_ignored", 18)]


def test_missing_size_reads_oriented_image_header(tmp_path: Path, image_factory: Callable[..., Path]) -> None:
    image_factory(tmp_path / "JPEGImages" / "rot.jpg", 30, 20, exif_orientation=6)
    image_factory(tmp_path / "JPEGImages" / "declared.jpg", 30, 20)
    _write(tmp_path / "Annotations" / "rot.xml", _xml("rot.jpg", "", size=None))
    _write(tmp_path / "Annotations" / "declared.xml", _xml("declared.jpg", "", size=(300, 200)))
    ds = read_voc(tmp_path)
    sizes = {im.file_name: (im.width, im.height) for im in ds.images}
    assert sizes == {"rot.jpg": (20, 30), "declared.jpg": (300, 200)}


def test_invalid_objects_are_error_problems_with_lines(tmp_path: Path) -> None:
    bad_number = _obj("cat", (1, 2, 3, 4)).replace("<xmax>3</xmax>", "<xmax>three</xmax>")
    no_box = "  <object>\n    <name>cat</name>\n  </object>\n"
    no_name = "  <object>\n    <bndbox><xmin>1</xmin></bndbox>\n  </object>\n"
    _write(tmp_path / "Annotations" / "a.xml", _xml("a.jpg", _obj("cat", (1, 1, 5, 5)) + bad_number + no_box + no_name))
    ds = read_voc(tmp_path)
    assert len(ds.annotations) == 1
    found = [(p.severity, p.code, p.location.line if p.location else None) for p in ds.problems]
    assert found == [("error", "box.invalid", 13), ("error", "box.invalid", 22), ("error", "label.missing", 25)]
    assert "'three'" in ds.problems[0].message and "<xmax>" in ds.problems[0].message


def test_labelmap_orders_categories_and_flags_unknown_names(tmp_path: Path) -> None:
    _write(
        tmp_path / "labelmap.txt", "# label:color_rgb:parts:actions\nbackground:0,0,0::\nzebra:1,2,3::\ncat:4,5,6::\n"
    )
    _write(tmp_path / "Annotations" / "a.xml", _xml("a.jpg", _obj("cat", (1, 1, 5, 5)) + _obj("dog", (2, 2, 6, 6))))
    ds = read_voc(tmp_path)
    assert ds.categories.names == ("zebra", "cat")
    assert ds.categories.ids == (1, 2)
    assert [a.category_id for a in ds.annotations] == [2]
    (problem,) = ds.problems
    assert (problem.severity, problem.code, problem.image_id) == ("error", "label.unknown", 1)
    assert problem.location is not None and problem.location.line == 13
    assert problem.location.file == str(tmp_path / "Annotations" / "a.xml")
    assert "'dog'" in problem.message


def test_labels_txt_keeps_order_and_empty_classes(tmp_path: Path) -> None:
    _write(tmp_path / "labels.txt", "person\nbicycle\ncat\n")
    _write(tmp_path / "Annotations" / "a.xml", _xml("a.jpg", _obj("cat", (1, 1, 5, 5))))
    ds = read_voc(tmp_path)
    assert ds.categories.names == ("person", "bicycle", "cat")
    assert ds.annotations[0].category_id == 3


def test_without_label_file_categories_are_sorted_names(tmp_path: Path) -> None:
    _write(tmp_path / "Annotations" / "a.xml", _xml("a.jpg", _obj("zebra", (1, 1, 5, 5)) + _obj("ant", (1, 1, 2, 2))))
    ds = read_voc(tmp_path)
    assert ds.categories == Categories.from_names(["ant", "zebra"])
    assert [a.category_id for a in ds.annotations] == [2, 1]


def test_subsets_from_image_sets(tmp_path: Path, image_factory: Callable[..., Path]) -> None:
    for stem in ("a", "b", "c", "d"):
        _write(tmp_path / "Annotations" / f"{stem}.xml", _xml(f"{stem}.jpg", _obj("cat", (1, 1, 5, 5))))
    main = tmp_path / "ImageSets" / "Main"
    _write(main / "train.txt", "a\nc\n")
    _write(main / "val.txt", "b\n")
    _write(main / "trainval.txt", "a\nb\nc\n")
    _write(main / "test.txt", "\nc\n")
    _write(main / "cat_train.txt", "a  1\nc -1\n")
    _write(main / "cat_custom.txt", "b\n")  # "<class>_<subset>.txt" by name: not a subset
    ds = read_voc(tmp_path)
    assert {im.file_name: im.subset for im in ds.images} == {
        "a.jpg": "train",
        "b.jpg": "val",
        "c.jpg": "train",
        "d.jpg": None,
    }
    assert ds.subsets == ("train", "val")
    found = [(p.severity, p.code, p.location.file.rsplit("/", 1)[-1] if p.location else None) for p in ds.problems]
    assert found == [("info", "subset.trainval_skipped", "trainval.txt"), ("error", "subset.duplicate", "test.txt")]
    duplicate = ds.problems[1]
    assert duplicate.location is not None and duplicate.location.line == 1
    assert "train.txt" in duplicate.message and "kept in train" in duplicate.message


def test_image_path_resolution_and_folder_of_xml(tmp_path: Path, image_factory: Callable[..., Path]) -> None:
    voc = tmp_path / "voc"
    image_factory(voc / "JPEGImages" / "a.jpg", 8, 8)
    image_factory(voc / "Annotations" / "b.jpg", 8, 8)
    image_factory(voc / "c.jpg", 8, 8)
    for stem in ("a", "b", "c", "d"):
        _write(voc / "Annotations" / f"{stem}.xml", _xml(f"{stem}.jpg", ""))
    paths = {im.file_name: im.path for im in read_voc(voc).images}
    assert paths == {
        "a.jpg": voc / "JPEGImages" / "a.jpg",
        "b.jpg": voc / "Annotations" / "b.jpg",
        "c.jpg": voc / "c.jpg",
        "d.jpg": voc / "JPEGImages" / "d.jpg",  # missing: first candidate, `check` reports it
    }
    loose = tmp_path / "loose"
    image_factory(loose / "x.jpg", 8, 8)
    _write(loose / "x.xml", _xml("x.jpg", _obj("cat", (1, 1, 5, 5))))
    ds = read_voc(loose)
    assert [(im.file_name, im.path) for im in ds.images] == [("x.jpg", loose / "x.jpg")]
    single = read_voc(voc / "Annotations" / "a.xml")
    assert single.root == voc
    assert [im.file_name for im in single.images] == ["a.jpg"]


def test_not_voc_inputs(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="no VOC annotation files"):
        read_voc(tmp_path)
    _write(tmp_path / "notes.txt", "hello")
    with pytest.raises(DatasetError, match=r"expected a VOC \.xml file"):
        read_voc(tmp_path / "notes.txt")
    _write(tmp_path / "cvat.xml", "<annotations><image name='a.jpg'/></annotations>")
    _write(tmp_path / "a.xml", _xml("a.jpg", ""))
    ds = read_voc(tmp_path)
    assert [im.file_name for im in ds.images] == ["a.jpg"]
    assert [p.code for p in ds.problems] == ["voc.not_annotation"]


def _sample_dataset(tmp_path: Path, image_factory: Callable[..., Path]) -> Dataset:
    src = tmp_path / "src"
    images = (
        ImageRecord(1, "a.jpg", image_factory(src / "a.jpg", 40, 30), 40, 30, "train"),
        ImageRecord(2, "sub/b.png", image_factory(src / "sub" / "b.png", 50, 20, fmt="PNG"), 50, 20, "val"),
        ImageRecord(3, "c.jpg", image_factory(src / "c.jpg", 10, 10), 10, 10, None),
    )
    annotations = (
        Annotation(1, 1, 1, (0.0, 0.0, 10.0, 12.0), attributes=(("difficult", "1"), ("truncated", "0"))),
        Annotation(2, 1, 3, (4.25, 5.5, 30.333, 29.0), attributes=(("color", "red"), ("action.running", "1"))),
        Annotation(3, 2, 1, (1.0, 2.0, 3.0, 4.0), segmentation=Polygons(((1.0, 2.0, 3.0, 2.0, 3.0, 4.0),))),
        Annotation(4, 2, 3, (5.0, 5.0, 9.0, 9.0), iscrowd=True),
    )
    categories = Categories.from_names(["cat", "empty class", "dog"])
    return Dataset(images, annotations, categories, src, "coco")


def test_writer_layout_and_numbers(tmp_path: Path, image_factory: Callable[..., Path]) -> None:
    ds = _sample_dataset(tmp_path, image_factory)
    out = write_voc(ds, tmp_path / "out")
    assert out == tmp_path / "out"
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()) == [
        "Annotations/a.xml",
        "Annotations/c.xml",
        "Annotations/sub/b.xml",
        "ImageSets/Main/train.txt",
        "ImageSets/Main/val.txt",
        "JPEGImages/a.jpg",
        "JPEGImages/c.jpg",
        "JPEGImages/sub/b.png",
        "labels.txt",
    ]
    assert (out / "labels.txt").read_text() == "cat\nempty class\ndog\n"
    assert (out / "ImageSets" / "Main" / "val.txt").read_text() == "sub/b\n"
    assert (out / "JPEGImages" / "a.jpg").read_bytes() == (tmp_path / "src" / "a.jpg").read_bytes()
    text = (out / "Annotations" / "a.xml").read_text()
    assert text.startswith("<?xml")
    assert "<xmin>1</xmin>" in text and "<ymin>1</ymin>" in text and "<xmax>10</xmax>" in text
    assert "<xmin>5.25</xmin>" in text and "<ymin>6.5</ymin>" in text and "<xmax>30.33</xmax>" in text
    assert "<width>40</width>" in text and "<difficult>1</difficult>" in text
    assert "<running>1</running>" in text and "<name>color</name>" in text
    crowd = (out / "Annotations" / "sub" / "b.xml").read_text()
    assert crowd.count("<difficult>1</difficult>") == 1 and crowd.count("<difficult>0</difficult>") == 1


def test_round_trip_voc_to_voc(tmp_path: Path, image_factory: Callable[..., Path]) -> None:
    original = _sample_dataset(tmp_path, image_factory)
    first = read_voc(write_voc(original, tmp_path / "one"))
    before = _digests(tmp_path / "one")
    again = read_voc(write_voc(first, tmp_path / "two", copy_images=False))
    assert _digests(tmp_path / "one") == before
    for ds in (first, again):
        assert ds.categories.names == ("cat", "empty class", "dog")
        assert [(im.file_name, im.width, im.height, im.subset) for im in ds.images] == [
            ("a.jpg", 40, 30, "train"),
            ("c.jpg", 10, 10, None),
            ("sub/b.png", 50, 20, "val"),
        ]
        assert len(ds.annotations) == 4
    by_box = {ds_ann.bbox: ds_ann for ds_ann in again.annotations}
    for ann in original.annotations:
        match = min(by_box, key=lambda b: sum(abs(u - v) for u, v in zip(b, ann.bbox, strict=True)))
        assert max(abs(u - v) for u, v in zip(match, ann.bbox, strict=True)) <= 0.5
        name = original.categories.by_id(ann.category_id).name
        assert again.categories.by_id(by_box[match].category_id).name == name
    assert dict(first.annotations[0].attributes) == {"difficult": "1", "truncated": "0"}
    assert dict(again.annotations[1].attributes) == {"action.running": "1", "color": "red", "difficult": "0"}
    assert (tmp_path / "two" / "Annotations" / "a.xml").read_bytes() == (
        tmp_path / "one" / "Annotations" / "a.xml"
    ).read_bytes()


def test_writer_refuses_unsafe_targets(tmp_path: Path, image_factory: Callable[..., Path]) -> None:
    ds = _sample_dataset(tmp_path, image_factory)
    with pytest.raises(DatasetError, match="folder the dataset was read from"):
        write_voc(ds, tmp_path / "src")
    image_factory(tmp_path / "out" / "JPEGImages" / "a.jpg", 40, 30, seed=7)
    with pytest.raises(DatasetError, match="differs from"):
        write_voc(ds, tmp_path / "out")
    clash = Dataset(
        (ImageRecord(1, "x.jpg", tmp_path / "x.jpg", 5, 5), ImageRecord(2, "x.png", tmp_path / "x.png", 5, 5)),
        (),
        Categories.from_names(["a"]),
        tmp_path,
        "coco",
    )
    with pytest.raises(DatasetError, match=r"Annotations/x\.xml"):
        write_voc(clash, tmp_path / "clash", copy_images=False)
    assert not (tmp_path / "clash").exists()
    missing = Dataset((ImageRecord(1, "m.jpg", tmp_path / "m.jpg", 5, 5),), (), Categories(()), tmp_path, "coco")
    with pytest.raises(DatasetError, match="does not exist"):
        write_dataset(missing, tmp_path / "m", "voc")


def test_writer_leaves_no_temp_files_and_reads_unknown_size(tmp_path: Path, image_factory: Callable[..., Path]) -> None:
    path = image_factory(tmp_path / "src" / "u.jpg", 12, 9)
    ds = Dataset((ImageRecord(1, "u.jpg", path, 0, 0),), (), Categories.from_names(["a"]), tmp_path / "src", "coco")
    out = write_voc(ds, tmp_path / "out")
    assert not [p for p in out.rglob("*") if p.name.endswith(".tmp")]
    assert "<width>12</width>" in (out / "Annotations" / "u.xml").read_text()
    assert not (out / "ImageSets").exists()


def test_missing_filename_uses_the_item_id(tmp_path: Path, image_factory: Callable[..., Path]) -> None:
    image_factory(tmp_path / "JPEGImages" / "p.png", 8, 6, fmt="PNG")
    _write(tmp_path / "Annotations" / "p.xml", "<annotation>\n" + _obj("cat", (1, 1, 4, 4)) + "</annotation>\n")
    _write(tmp_path / "Annotations" / "q.xml", "<annotation>\n</annotation>\n")
    ds = read_voc(tmp_path)
    assert [(im.file_name, im.width, im.height) for im in ds.images] == [("p.png", 8, 6), ("q.jpg", 0, 0)]
    assert [(p.severity, p.code, p.location.line if p.location else None) for p in ds.problems] == [
        ("warning", "voc.no_filename", 1)
    ]
