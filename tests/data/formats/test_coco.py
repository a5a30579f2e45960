"""COCO reader/writer: Datumaro's sample export, CVAT quirks, per-item problems, fatal errors, round trips."""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path
from typing import Any

import pytest

from detforge.data.formats.coco import read_coco, write_coco
from detforge.errors import DatasetError
from detforge.structures import RLE, Polygons

COMPRESSED = "]o05]100000000000000000W]3"
"""pycocotools' compressed RLE of a 50x100 mask with rows 5..9, columns 20..29 set."""


def snapshot(folder: Path) -> dict[str, str]:
    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.rglob("*")) if p.is_file()}


def coco_doc(
    images: list[Any] | None = None, annotations: list[Any] | None = None, categories: list[Any] | None = None
):
    return {
        "images": images if images is not None else [{"id": 1, "file_name": "a.jpg", "width": 100, "height": 50}],
        "annotations": annotations if annotations is not None else [],
        "categories": categories if categories is not None else [{"id": 1, "name": "cat"}, {"id": 2, "name": "dog"}],
    }


def ann(ann_id: int = 1, image_id: int = 1, category_id: int = 1, bbox: Any = (10, 20, 30, 40), **extra: Any):
    return {"id": ann_id, "image_id": image_id, "category_id": category_id, "bbox": list(bbox), **extra}


def write_json(path: Path, obj: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, indent=1))
    return path


# --- the Datumaro sample --------------------------------------------------------------------------------------


def test_reads_datumaro_sample_with_exact_values(fixtures_dir: Path) -> None:
    root = fixtures_dir / "formats" / "coco"
    ds = read_coco(root)
    assert ds.format == "coco" and ds.root == root
    assert [(c.id, c.name) for c in ds.categories] == [(1, "a"), (2, "b"), (4, "c")]
    images = {im.id: im for im in ds.images}
    assert set(images) == {5, 40}
    assert (images[5].subset, images[5].width, images[5].height) == ("train", 10, 5)
    assert (images[40].subset, images[40].width, images[40].height) == ("val", 5, 10)
    assert images[5].path == root / "images" / "train" / "a.jpg" and images[5].path.is_file()
    assert images[40].path == root / "images" / "val" / "b.jpg"
    anns = {(a.image_id, a.category_id): a for a in ds.annotations}
    train = anns[(5, 2)]
    assert train.bbox == (2.0, 2.0, 5.0, 3.0) and train.area == 3.0 and train.segmentation is None
    poly = anns[(40, 1)]
    assert poly.bbox == (0.0, 0.0, 1.0, 2.0)
    assert poly.segmentation == Polygons(((0.0, 0.0, 1.0, 0.0, 1.0, 2.0, 0.0, 2.0),))
    assert poly.attributes == (("x", "1"), ("y", "hello"))
    crowd = anns[(40, 2)]
    assert crowd.iscrowd and crowd.segmentation == RLE((0, 20, 30), (10, 5)) and crowd.area == 20.0
    assert crowd.bbox == (0.0, 0.0, 1.0, 9.0)
    # both files use annotation id 1: the val file's annotation ids were offset and that is said
    assert sorted(a.id for a in ds.annotations) == [1, 2, 3]
    assert (poly.id, crowd.id) == (2, 3)
    offsets = [p for p in ds.problems if p.code == "coco.ids_offset"]
    assert len(offsets) == 1 and offsets[0].severity == "info"
    assert offsets[0].location is not None and offsets[0].location.file.endswith("instances_val.json")
    assert "annotation ids" in offsets[0].message and "+1" in offsets[0].message


def test_single_json_file_in_annotations_folder(fixtures_dir: Path) -> None:
    root = fixtures_dir / "formats" / "coco"
    ds = read_coco(root / "annotations" / "instances_val.json")
    assert ds.root == root and ds.subsets == ("val",)
    assert ds.images[0].path == root / "images" / "val" / "b.jpg"
    assert ds.problems == ()


@pytest.mark.parametrize(
    ("name", "subset"),
    [
        ("instances_train.json", "train"),
        ("val.json", "val"),
        ("instances.json", None),
        ("instances_default.json", None),
    ],
)
def test_subset_from_file_name(tmp_path: Path, name: str, subset: str | None) -> None:
    ds = read_coco(write_json(tmp_path / name, coco_doc()))
    assert ds.images[0].subset == subset


def test_folder_with_root_json_files_and_skipped_non_instances(tmp_path: Path) -> None:
    write_json(tmp_path / "train.json", coco_doc())
    assert read_coco(tmp_path).subsets == ("train",)
    ann_dir = tmp_path / "other"
    write_json(ann_dir / "annotations" / "instances_val.json", coco_doc())
    write_json(ann_dir / "annotations" / "captions_val.json", {"images": [], "annotations": [{"caption": "x"}]})
    ds = read_coco(ann_dir)
    assert ds.subsets == ("val",)
    skipped = [p for p in ds.problems if p.code == "coco.file_skipped"]
    assert len(skipped) == 1 and skipped[0].location and skipped[0].location.file.endswith("captions_val.json")


def test_image_path_candidates_in_order(tmp_path: Path) -> None:
    ann_file = write_json(
        tmp_path / "annotations" / "instances_train.json",
        coco_doc(images=[{"id": i, "file_name": f"{i}.jpg", "width": 4, "height": 4} for i in range(1, 7)]),
    )
    placed = {
        1: tmp_path / "images" / "train" / "1.jpg",
        2: tmp_path / "images" / "2.jpg",
        3: tmp_path / "train" / "3.jpg",
        4: tmp_path / "4.jpg",
        5: tmp_path / "annotations" / "5.jpg",
    }
    for path in placed.values():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x")
    (tmp_path / "images" / "1.jpg").write_bytes(b"later candidate, not chosen")
    ds = read_coco(ann_file)
    paths = {im.id: im.path for im in ds.images}
    assert {k: paths[k] for k in placed} == placed
    assert paths[6] == tmp_path / "images" / "train" / "6.jpg"  # missing: the first candidate


def test_image_ids_colliding_across_files_are_offset(tmp_path: Path) -> None:
    write_json(tmp_path / "annotations" / "instances_train.json", coco_doc(annotations=[ann(1)]))
    val = coco_doc(
        images=[{"id": 1, "file_name": "b.jpg", "width": 10, "height": 10}, {"id": 2, "file_name": "c.jpg"}],
        annotations=[ann(7, image_id=1), ann(8, image_id=2, category_id=2)],
    )
    write_json(tmp_path / "annotations" / "instances_val.json", val)
    ds = read_coco(tmp_path)
    assert [(im.id, im.file_name, im.subset) for im in ds.images] == [
        (1, "a.jpg", "train"), (2, "b.jpg", "val"), (3, "c.jpg", "val"),
    ]  # fmt: skip
    assert [(a.id, a.image_id) for a in ds.annotations] == [(1, 1), (7, 2), (8, 3)]
    assert [p.message for p in ds.problems if p.code == "coco.ids_offset"] == [
        "image ids of this file collide with those of an earlier file; they were offset by +1 "
        "(id N in this file is id N+1 in the dataset)"
    ]


@pytest.mark.parametrize(
    ("second", "words"),
    [
        ([{"id": 1, "name": "kitten"}], ["category id 1", "'cat'", "'kitten'"]),
        ([{"id": 5, "name": "cat"}], ["id 1", "id 5"]),
    ],
)
def test_categories_must_agree_across_files(tmp_path: Path, second: list[Any], words: list[str]) -> None:
    write_json(tmp_path / "annotations" / "instances_train.json", coco_doc())
    write_json(tmp_path / "annotations" / "instances_val.json", coco_doc(categories=second))
    with pytest.raises(DatasetError) as err:
        read_coco(tmp_path)
    for word in [*words, "instances_train.json", "instances_val.json"]:
        assert word in str(err.value)


def test_categories_keep_gaps_zero_and_file_order_sorted(tmp_path: Path) -> None:
    cats = [{"id": 7, "name": "z", "supercategory": "animal"}, {"id": 0, "name": "bg"}, {"id": 3, "name": "y"}]
    ds = read_coco(write_json(tmp_path / "x.json", coco_doc(categories=cats)))
    assert [(c.id, c.name, c.supercategory) for c in ds.categories] == [(0, "bg", ""), (3, "y", ""), (7, "z", "animal")]


# --- per-item problems ---------------------------------------------------------------------------------------


def problem_of(ds, code: str):  # type: ignore[no-untyped-def]
    found = [p for p in ds.problems if p.code == code]
    assert len(found) == 1, [str(p) for p in ds.problems]
    return found[0]


def test_duplicate_image_id_keeps_first(tmp_path: Path) -> None:
    images = [{"id": 1, "file_name": "a.jpg", "width": 5, "height": 5}, {"id": 1, "file_name": "b.jpg"}]
    path = write_json(tmp_path / "x.json", coco_doc(images=images))
    ds = read_coco(path)
    assert [im.file_name for im in ds.images] == ["a.jpg"]
    p = problem_of(ds, "coco.duplicate_image_id")
    assert p.severity == "error" and p.location and p.location.file == str(path) and p.image_id == 1
    assert "image id 1" in p.message and "'b.jpg'" in p.message


@pytest.mark.parametrize(
    ("bad", "code", "words"),
    [
        (ann(1), "coco.duplicate_annotation_id", ["annotation id 1"]),
        (ann(2, image_id=99), "coco.unknown_image", ["annotation 2", "'image_id' 99"]),
        (ann(2, category_id=3), "coco.unknown_category", ["annotation 2", "'category_id' 3"]),
        (ann(2, bbox=["1", "2", "3", "4"]), "coco.bad_bbox", ["annotation 2", "'bbox'"]),
        ({**ann(2), "bbox": None}, "coco.bad_bbox", ["annotation 2", "'bbox'", "None"]),
        (ann(2, bbox=[1, 2, 3]), "coco.bad_bbox", ["annotation 2", "'bbox'", "[1, 2, 3]"]),
        (ann(2, bbox=[True, 2, 3, 4]), "coco.bad_bbox", ["annotation 2"]),
        ({**ann(2), "id": "2"}, "coco.bad_value", ["annotations[1]", "'id'"]),
    ],
)
def test_bad_annotation_is_left_out_with_a_problem(
    tmp_path: Path, bad: dict[str, Any], code: str, words: list[str]
) -> None:
    path = write_json(tmp_path / "x.json", coco_doc(annotations=[ann(1), bad]))
    ds = read_coco(path)
    assert [a.id for a in ds.annotations] == [1]
    p = problem_of(ds, code)
    assert p.severity == "error" and p.location is not None and p.location.file == str(path)
    for word in words:
        assert word in p.message


@pytest.mark.parametrize("bbox", [[math.nan, 0, 5, 5], [-5, -5, 3, 3], [1, 1, 0, 0], [500, 500, 10, 10], [0, 0, -4, 2]])
def test_boxes_of_four_numbers_are_kept_whatever_their_value(tmp_path: Path, bbox: list[float]) -> None:
    path = tmp_path / "x.json"
    path.write_text(json.dumps(coco_doc(annotations=[ann(1, bbox=bbox)])))  # json writes NaN as NaN
    ds = read_coco(path)
    (a,) = ds.annotations
    x, y, w, h = bbox
    assert a.bbox == pytest.approx((x, y, x + w, y + h), nan_ok=True)
    assert ds.problems == ()


def test_repeated_category_is_a_warning(tmp_path: Path) -> None:
    cats = [{"id": 1, "name": "cat"}, {"id": 1, "name": "cat"}]
    path = write_json(tmp_path / "x.json", coco_doc(categories=cats))
    p = problem_of(read_coco(path), "coco.duplicate_category")
    assert p.severity == "warning" and p.location and p.location.file == str(path) and "category 1" in p.message


def test_optional_values_of_the_wrong_type_are_ignored_with_warnings(tmp_path: Path) -> None:
    bad = ann(1, area="big", iscrowd=2, attributes=[1], segmentation=[[1, 2, 3]])
    ds = read_coco(write_json(tmp_path / "x.json", coco_doc(annotations=[bad])))
    (a,) = ds.annotations
    assert (a.area, a.iscrowd, a.attributes, a.segmentation) == (None, False, (), None)
    messages = [p.message for p in ds.problems if p.code == "coco.bad_value"]
    assert len(messages) == 4 and all(m.startswith("annotation 1:") for m in messages)
    assert all(p.severity == "warning" for p in ds.problems)


# --- fatal errors --------------------------------------------------------------------------------------------


def test_invalid_json_names_file_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "x.json"
    path.write_text('{\n  "images": [\n    {"id": 1,, "file_name": "a.jpg"}\n  ]\n}\n')
    with pytest.raises(DatasetError) as err:
        read_coco(path)
    assert f"{path}:3:14" in str(err.value) and "line 3, column 14" in str(err.value)


@pytest.mark.parametrize(
    ("doc", "words"),
    [
        ([], ["top level", "an array"]),
        ({"images": {}, "annotations": [], "categories": []}, ["'images'", "must be a list", "an object"]),
        ({"images": [], "annotations": "none", "categories": []}, ["'annotations'", "must be a list", "a string"]),
        ({"annotations": [], "categories": []}, ["missing required top-level key 'images'"]),
        (coco_doc(images=[{"id": 3, "width": 4}]), ["images[0] (id 3)", "'file_name'"]),
        (coco_doc(annotations=[{"id": 9, "image_id": 1}]), ["annotations[0] (id 9)", "'category_id'", "'bbox'"]),
        (coco_doc(annotations=["x"]), ["annotations[0] must be an object", "a string"]),
        (coco_doc(categories=[{"id": 1}]), ["categories[0] (id 1)", "'name'"]),
        (coco_doc(categories=[{"id": 1, "name": "a"}, {"id": 2, "name": "a"}]), ["'a'", "ids 1 and 2"]),
    ],
)
def test_structural_errors_are_fatal_and_named(tmp_path: Path, doc: Any, words: list[str]) -> None:
    path = write_json(tmp_path / "x.json", doc)
    with pytest.raises(DatasetError) as err:
        read_coco(path)
    assert str(path) in str(err.value)
    for word in words:
        assert word in str(err.value)


def test_missing_folder_content_is_fatal(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="no COCO annotation file"):
        read_coco(tmp_path)


# --- sizes, CVAT quirks, masks -------------------------------------------------------------------------------


def test_missing_sizes_come_from_oriented_header_else_zero(tmp_path: Path, image_factory) -> None:  # type: ignore[no-untyped-def]
    image_factory(tmp_path / "images" / "rot.jpg", 40, 20, exif_orientation=6)
    images = [
        {"id": 1, "file_name": "rot.jpg"},
        {"id": 2, "file_name": "gone.jpg"},
        {"id": 3, "file_name": "rot.jpg", "width": 7},
    ]
    ds = read_coco(write_json(tmp_path / "instances.json", coco_doc(images=images)))
    assert [(im.width, im.height) for im in ds.images] == [(20, 40), (0, 0), (7, 40)]


def test_cvat_coco_export_quirks(tmp_path: Path) -> None:
    doc = {
        "licenses": [{"name": "", "id": 0, "url": ""}],
        "info": {"contributor": "", "year": ""},
        **coco_doc(
            annotations=[
                ann(
                    1, segmentation=[], iscrowd=0, attributes={"occluded": False, "rotation": 0.0, "kind": "x", "n": 2}
                ),
                ann(2, segmentation={"counts": COMPRESSED, "size": [50, 100]}, iscrowd=1),
            ]
        ),
    }
    ds = read_coco(write_json(tmp_path / "annotations" / "instances_default.json", doc))
    first, second = ds.annotations
    assert first.segmentation is None and not first.iscrowd
    assert first.attributes == (("kind", "x"), ("n", "2"), ("occluded", "false"), ("rotation", "0.0"))
    assert second.segmentation == RLE(COMPRESSED, (50, 100)) and second.iscrowd
    assert ds.images[0].subset is None and ds.problems == ()


# --- writer --------------------------------------------------------------------------------------------------


def test_write_layout_and_content(fixtures_dir: Path, tmp_path: Path) -> None:
    ds = read_coco(fixtures_dir / "formats" / "coco")
    out = write_coco(ds, tmp_path / "out")
    assert out == tmp_path / "out"
    assert (out / "images" / "train" / "a.jpg").read_bytes() == ds.images[0].path.read_bytes()
    assert (out / "images" / "val" / "b.jpg").is_file()
    val = json.loads((out / "annotations" / "instances_val.json").read_text())
    assert "detforge" in val["info"]["description"]
    assert val["categories"] == [
        {"id": 1, "name": "a", "supercategory": ""}, {"id": 2, "name": "b", "supercategory": ""},
        {"id": 4, "name": "c", "supercategory": ""},
    ]  # fmt: skip
    assert val["images"] == [{"id": 40, "file_name": "b.jpg", "width": 5, "height": 10}]
    poly, crowd = val["annotations"]
    assert poly == {
        "id": 2, "image_id": 40, "category_id": 1, "bbox": [0.0, 0.0, 1.0, 2.0], "area": 2.0,
        "segmentation": [[0.0, 0.0, 1.0, 0.0, 1.0, 2.0, 0.0, 2.0]], "iscrowd": 0,
        "attributes": {"x": "1", "y": "hello"},
    }  # fmt: skip
    assert crowd["segmentation"] == {"counts": [0, 20, 30], "size": [10, 5]} and crowd["iscrowd"] == 1
    train = json.loads((out / "annotations" / "instances_train.json").read_text())
    assert train["annotations"][0]["segmentation"] == [] and train["annotations"][0]["bbox"] == [2.0, 2.0, 3.0, 1.0]


def test_round_trip_keeps_everything_and_inputs_unchanged(fixtures_dir: Path, tmp_path: Path) -> None:
    root = fixtures_dir / "formats" / "coco"
    before = snapshot(root)
    ds = read_coco(root)
    back = read_coco(write_coco(ds, tmp_path / "out"))
    assert snapshot(root) == before
    assert back.categories == ds.categories
    assert [(im.id, im.file_name, im.subset, im.width, im.height) for im in back.images] == [
        (im.id, im.file_name, im.subset, im.width, im.height) for im in ds.images
    ]
    for a, b in zip(ds.annotations, back.annotations, strict=True):
        assert max(abs(x - y) for x, y in zip(a.bbox, b.bbox, strict=True)) < 0.5
        assert (a.id, a.category_id, a.segmentation, a.iscrowd, a.area, a.attributes) == (
            b.id, b.category_id, b.segmentation, b.iscrowd, b.area, b.attributes,
        )  # fmt: skip
    assert all(p.severity != "error" for p in back.problems)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # pycocotools vs numpy 2
def test_written_masks_decode_with_pycocotools(tmp_path: Path) -> None:
    pytest.importorskip("pycocotools")
    from pycocotools.coco import COCO

    anns = [
        ann(1, bbox=[10, 10, 20, 10], segmentation=[[10, 10, 30, 10, 30, 20, 10, 20]]),
        ann(2, bbox=[0, 0, 100, 1], segmentation={"counts": [0, 50, 4950], "size": [50, 100]}, iscrowd=1),
        ann(3, bbox=[20, 5, 10, 5], segmentation={"counts": COMPRESSED, "size": [50, 100]}),
    ]
    ds = read_coco(write_json(tmp_path / "in" / "instances.json", coco_doc(annotations=anns)))
    out = write_coco(ds, tmp_path / "out", copy_images=False)
    coco = COCO(str(out / "annotations" / "instances.json"))
    assert int(coco.annToMask(coco.anns[1]).sum()) == pytest.approx(200, abs=40)
    assert int(coco.annToMask(coco.anns[2]).sum()) == 50
    mask = coco.annToMask(coco.anns[3])
    assert mask.shape == (50, 100) and int(mask.sum()) == 50 and int(mask[5:10, 20:30].sum()) == 50
    assert not (out / "images").exists()


def test_copy_skips_identical_and_refuses_different_existing_files(tmp_path: Path, image_factory) -> None:  # type: ignore[no-untyped-def]
    image_factory(tmp_path / "in" / "images" / "a.jpg", 8, 8)
    ds = read_coco(write_json(tmp_path / "in" / "instances.json", coco_doc()))
    write_coco(ds, tmp_path / "out")
    write_coco(ds, tmp_path / "out")  # same bytes already there: fine
    write_coco(ds, tmp_path / "in")  # the images are the very same files: nothing copied
    assert (tmp_path / "in" / "annotations" / "instances.json").is_file()
    image_factory(tmp_path / "other" / "images" / "a.jpg", 8, 8, seed=3)
    with pytest.raises(DatasetError, match="refusing to overwrite"):
        write_coco(ds, tmp_path / "other")
    assert not (tmp_path / "other" / "annotations").exists()


def test_writer_refuses_to_overwrite_its_input_annotation_file(tmp_path: Path) -> None:
    path = write_json(tmp_path / "annotations" / "instances_train.json", coco_doc())
    before = path.read_bytes()
    ds = read_coco(tmp_path)
    with pytest.raises(DatasetError, match="input file"):
        write_coco(ds, tmp_path, copy_images=False)
    assert path.read_bytes() == before


def test_writer_fills_area_and_refuses_non_finite_boxes(tmp_path: Path) -> None:
    path = tmp_path / "x.json"
    path.write_text(json.dumps(coco_doc(annotations=[ann(1, bbox=[1, 2, 3, 4])])))
    out = write_coco(read_coco(path), tmp_path / "out", copy_images=False)
    written = json.loads((out / "annotations" / "instances_x.json").read_text())["annotations"][0]
    assert written["area"] == 12.0 and written["bbox"] == [1.0, 2.0, 3.0, 4.0] and "attributes" not in written
    path.write_text(json.dumps(coco_doc(annotations=[ann(5, bbox=[math.nan, 2, 3, 4])])))
    with pytest.raises(DatasetError, match="annotation 5 of image 1"):
        write_coco(read_coco(path), tmp_path / "out2", copy_images=False)
