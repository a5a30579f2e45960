"""check_dataset: every check code on a small crafted dataset, with its exact location; reports; no file changed."""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from detforge.data.check import CheckReport, check_dataset
from detforge.data.dataset import Dataset
from detforge.structures import Annotation, Categories, Category, ImageRecord, Location, Problem

ANN_FILE = "annotations/instances.json"


def image(
    root: Path, id: int, file_name: str, width: int = 64, height: int = 48, subset: str | None = None
) -> ImageRecord:
    return ImageRecord(id, file_name, root / file_name, width, height, subset, Location(ANN_FILE, id))


def box(
    id: int, image_id: int, bbox: tuple[float, float, float, float], category_id: int = 1, **kw: object
) -> Annotation:
    return Annotation(id, image_id, category_id, bbox, source=Location(ANN_FILE, 100 + id), **kw)  # type: ignore[arg-type]


def dataset(
    root: Path,
    images: list[ImageRecord],
    anns: list[Annotation],
    categories: Categories | None = None,
    *,
    fmt: str = "coco",
    problems: tuple[Problem, ...] = (),
) -> Dataset:
    cats = categories or Categories.from_names(["thing"])
    return Dataset(tuple(images), tuple(anns), cats, root, fmt, problems)


def only(report: CheckReport, code: str) -> Problem:
    found = [p for p in report.problems if p.code == code]
    assert len(found) == 1, f"expected one {code}, got {report.codes()}"
    return found[0]


def many_boxes(image_id: int, n: int, first_id: int, category_id: int = 1) -> list[Annotation]:
    return [box(first_id + i, image_id, (1.0, 1.0, 20.0, 20.0), category_id) for i in range(n)]


# --- images ---------------------------------------------------------------------------------------


def test_image_file_problems(tmp_path: Path, image_factory: Callable[..., Path]) -> None:
    image_factory(tmp_path / "good.jpg", 64, 48)
    (tmp_path / "page.jpg").write_text("<!DOCTYPE html>\n<html><head><title>Not found</title></head></html>")
    (tmp_path / "doc.png").write_bytes(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj")
    (tmp_path / "empty.jpg").write_bytes(b"")
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 40)
    data = image_factory(tmp_path / "cut.jpg", 64, 48).read_bytes()
    (tmp_path / "cut.jpg").write_bytes(data[: len(data) * 2 // 3])
    data = image_factory(tmp_path / "cut.png", 64, 48).read_bytes()
    (tmp_path / "cut.png").write_bytes(data[:-200])
    image_factory(tmp_path / "wrong.jpg", 64, 48)
    image_factory(tmp_path / "nosize.jpg", 64, 48)
    names = ["good.jpg", "gone.jpg", "page.jpg", "doc.png", "empty.jpg", "cut.jpg", "cut.png", "wrong.jpg"]
    names += ["nosize.jpg", "broken.png"]
    images = [image(tmp_path, i + 1, n) for i, n in enumerate(names)]
    images[7] = image(tmp_path, 8, "wrong.jpg", 100, 100)
    images[8] = image(tmp_path, 9, "nosize.jpg", 0, 0)
    anns = [box(i + 1, i + 1, (2.0, 2.0, 30.0, 30.0)) for i in range(10)]
    report = check_dataset(dataset(tmp_path, images, anns), leakage=False)

    by_image = {p.image_id: p for p in report.problems if p.code.startswith("image.")}
    assert set(by_image) == {2, 3, 4, 5, 6, 7, 8, 9, 10}
    expected = {
        2: ("error", "image.missing", "file not found (listed in annotations/instances.json:2)"),
        3: ("error", "image.unreadable", "it looks like an HTML page"),
        4: ("error", "image.unreadable", "it looks like a PDF document"),
        5: ("error", "image.unreadable", "it looks like an empty file (0 bytes)"),
        6: ("error", "image.truncated", "no end-of-image marker (FFD9)"),
        7: ("error", "image.truncated", "PNG has no IEND chunk"),
        8: ("error", "image.size_mismatch", "declared size 100x100 but the file is 64x48 as displayed"),
        9: ("info", "image.size_unknown", "size not given (0x0); the file says 64x48"),
        10: ("error", "image.unreadable", "starts like a PNG image but cannot be read"),
    }
    for image_id, (severity, code, text) in expected.items():
        problem = by_image[image_id]
        assert (problem.severity, problem.code) == (severity, code)
        assert text in problem.message
        assert problem.location == Location(str(tmp_path / names[image_id - 1]))
    assert not report.ok
    assert report.num_errors == 8


@pytest.mark.parametrize("suffix", [".jpg", ".png"])
def test_exif_rotation_explains_size_difference(
    tmp_path: Path, image_factory: Callable[..., Path], suffix: str
) -> None:
    # Stored raw 40x20 with orientation 6: displayed 20x40. The annotation file says 40x20.
    path = image_factory(tmp_path / f"rot{suffix}", 40, 20, exif_orientation=6)
    report = check_dataset(dataset(tmp_path, [image(tmp_path, 1, path.name, 40, 20)], []), leakage=False)
    problem = only(report, "image.size_exif")
    assert problem.severity == "error"
    assert problem.location == Location(str(path))
    assert "declared size 40x20 is the raw, unrotated size" in problem.message
    assert "EXIF orientation 6 displays it as 20x40, which explains the difference" in problem.message
    assert "labels may have been drawn on the unrotated image" in problem.message
    # Declared in the displayed frame: nothing to say about the size.
    report = check_dataset(dataset(tmp_path, [image(tmp_path, 1, path.name, 20, 40)], []), leakage=False)
    assert not [p for p in report.problems if p.code.startswith("image.size")]


def test_size_mismatch_not_explained_by_exif(tmp_path: Path, image_factory: Callable[..., Path]) -> None:
    path = image_factory(tmp_path / "rot.jpg", 40, 20, exif_orientation=6)
    report = check_dataset(dataset(tmp_path, [image(tmp_path, 1, path.name, 50, 50)], []), leakage=False)
    problem = only(report, "image.size_mismatch")
    assert "declared size 50x50 but the file is 20x40 as displayed (EXIF orientation 6 does not explain it)" in (
        problem.message
    )


def test_reading_headers_of_hundreds_of_images_is_fast(tmp_path: Path) -> None:
    # Headers only: Pillow's own PNG EXIF lookup would decode each of these 150 PNGs (most of a second).
    ramp = np.tile(np.arange(1024, dtype=np.uint16)[None, :] % 256, (768, 1)).astype(np.uint8)
    rgb = Image.fromarray(np.stack([ramp, ramp[:, ::-1], ramp], axis=-1))
    rgb.save(tmp_path / "src.png")
    rgb.save(tmp_path / "src.jpg")
    images = []
    for i in range(300):
        name = f"{i:03d}.png" if i % 2 else f"{i:03d}.jpg"
        shutil.copyfile(tmp_path / f"src{Path(name).suffix}", tmp_path / name)
        images.append(image(tmp_path, i + 1, name, 1024, 768))
    ds = dataset(tmp_path, images, [])
    start = time.perf_counter()
    report = check_dataset(ds, leakage=False)
    elapsed = time.perf_counter() - start
    assert not [p for p in report.problems if p.code.startswith("image.") and p.code != "image.no_annotations"]
    assert elapsed < 1.0


# --- annotations and categories -----------------------------------------------------------------


def test_box_problems_reuse_sanitize_rules(tmp_path: Path, image_factory: Callable[..., Path]) -> None:
    image_factory(tmp_path / "a.jpg", 64, 48)
    anns = [
        box(1, 1, (float("nan"), 0.0, 10.0, 10.0)),
        box(2, 1, (10.0, 10.0, 10.0, 30.0)),
        box(3, 1, (50.0, 40.0, 80.0, 60.0)),
        box(4, 1, (70.0, 50.0, 90.0, 60.0)),
        box(5, 1, (5.0, 5.0, 40.0, 40.0), iscrowd=True),
        *many_boxes(1, 10, 10),
    ]
    report = check_dataset(dataset(tmp_path, [image(tmp_path, 1, "a.jpg")], anns), leakage=False)
    got = [(p.severity, p.code, p.annotation_id, p.location) for p in report.problems]
    assert got == [
        ("error", "box.not_finite", 1, Location(ANN_FILE, 101)),
        ("error", "box.degenerate", 2, Location(ANN_FILE, 102)),
        ("warning", "box.clipped", 3, Location(ANN_FILE, 103)),
        ("error", "box.outside_image", 4, Location(ANN_FILE, 104)),
        ("info", "box.crowd", None, None),
    ]
    assert "64x48 image; dropped" in report.problems[3].message
    assert "1 crowd annotations (iscrowd): ids 5" in report.problems[4].message


def test_box_checks_use_the_files_displayed_size(tmp_path: Path, image_factory: Callable[..., Path]) -> None:
    # Declared 0x0 (unknown): the header's 64x48 is used, so a box past x=64 is clipped.
    image_factory(tmp_path / "a.jpg", 64, 48)
    anns = [box(1, 1, (50.0, 10.0, 70.0, 20.0)), *many_boxes(1, 10, 10)]
    report = check_dataset(dataset(tmp_path, [image(tmp_path, 1, "a.jpg", 0, 0)], anns), leakage=False)
    assert report.codes() == ("image.size_unknown", "box.clipped")
    # Without reading images, an unknown size leaves boxes unchecked.
    assert check_dataset(dataset(tmp_path, [image(tmp_path, 1, "a.jpg", 0, 0)], anns), images=False).codes() == ()


def test_annotation_with_unknown_image_or_category(tmp_path: Path) -> None:
    anns = [box(1, 1, (1.0, 1.0, 5.0, 5.0), category_id=9), box(2, 7, (1.0, 1.0, 5.0, 5.0)), *many_boxes(1, 10, 10)]
    report = check_dataset(dataset(tmp_path, [image(tmp_path, 1, "a.jpg")], anns), images=False)
    assert [(p.code, p.annotation_id, p.location) for p in report.problems[:2]] == [
        ("annotation.unknown_category", 1, Location(ANN_FILE, 101)),
        ("annotation.unknown_image", 2, Location(ANN_FILE, 102)),
    ]
    assert "category id 9 is not one of [1]" in report.problems[0].message


def test_category_checks(tmp_path: Path) -> None:
    cats = Categories((Category(0, "zero"), Category(1, "common"), Category(3, "rare"), Category(4, "unused")))
    anns = many_boxes(1, 12, 1, category_id=1) + many_boxes(1, 10, 20, category_id=0) + many_boxes(1, 2, 40, 3)
    report = check_dataset(dataset(tmp_path, [image(tmp_path, 1, "a.jpg")], anns, cats), images=False)
    assert [(p.severity, p.code) for p in report.problems] == [
        ("info", "category.id_gap"),
        ("warning", "category.zero_id"),
        ("info", "category.rare"),
        ("warning", "category.empty"),
    ]
    gap, zero, rare, empty = report.problems
    assert "category ids 0..4 have gaps: 2 unused" in gap.message
    assert "category 0 ('zero')" in zero.message and "background" in zero.message
    assert "category 3 ('rare') has only 2 instances" in rare.message
    assert "category 4 ('unused') has no instances" in empty.message
    assert report.instances_per_class == {"zero": 10, "common": 12, "rare": 2, "unused": 0}
    assert report.ok  # warnings only
    assert not check_dataset(dataset(tmp_path, [image(tmp_path, 1, "a.jpg")], anns, cats), images=False, strict=True).ok
    # A 0 id is only a COCO concern.
    yolo = check_dataset(dataset(tmp_path, [image(tmp_path, 1, "a.jpg")], anns, cats, fmt="yolo"), images=False)
    assert "category.zero_id" not in yolo.codes()


def test_images_without_annotations_are_told_apart_from_missing_label_files(tmp_path: Path) -> None:
    images = [image(tmp_path, i, f"{i}.jpg") for i in range(1, 6)]
    reader = (
        Problem("info", "label_file.missing", "no label file", Location("labels/train/3.txt"), image_id=3),
        Problem("info", "label_file.missing", "no label file", Location(str(tmp_path / "4.jpg"))),
    )
    ds = dataset(tmp_path, images, many_boxes(1, 10, 1), fmt="yolo", problems=reader)
    report = check_dataset(ds, images=False)
    assert report.problems[:2] == reader  # reader problems first, unchanged
    summary = only(report, "label_file.missing_summary")
    assert summary.message.startswith("2 images have no label file: 3.jpg, 4.jpg")
    empty = only(report, "image.no_annotations")
    assert empty.message.startswith("2 of 5 images have no annotations (background images): 2.jpg, 5.jpg")


def test_strict_flags_normalised_looking_boxes(tmp_path: Path) -> None:
    images = [image(tmp_path, 1, "big.jpg", 640, 480), image(tmp_path, 2, "tiny.jpg", 8, 8)]
    anns = [box(1, 1, (0.1, 0.2, 0.5, 0.6)), box(2, 1, (0.0, 0.0, 1.0, 1.0)), box(3, 2, (0.1, 0.1, 0.9, 0.9))]
    cats = Categories.from_names(["thing"])
    assert "box.normalized" not in check_dataset(dataset(tmp_path, images, anns, cats), images=False).codes()
    report = check_dataset(dataset(tmp_path, images, anns, cats), images=False, strict=True)
    problem = only(report, "box.normalized")
    assert (problem.severity, problem.image_id, problem.location) == ("warning", 1, Location(ANN_FILE, 101))
    assert "all 2 boxes lie within [0, 1]" in problem.message
    assert not report.ok


# --- leakage, reports, read-only ------------------------------------------------------------------


def _scene(path: Path, seed: int, size: tuple[int, int] = (160, 120)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 255, (6, 8, 3), dtype=np.uint8)  # smooth blocks survive resizing
    Image.fromarray(small).resize(size, Image.Resampling.BILINEAR).save(path, quality=90)


def _leaky(tmp_path: Path) -> Dataset:
    _scene(tmp_path / "train_a.png", 1)
    _scene(tmp_path / "train_b.png", 2)
    with Image.open(tmp_path / "train_a.png") as im:
        im.resize((80, 60)).save(tmp_path / "val_a.jpg", quality=50)
    _scene(tmp_path / "val_c.jpg", 3)
    images = [
        image(tmp_path, 1, "train_a.png", 160, 120, "train"),
        image(tmp_path, 2, "train_b.png", 160, 120, "train"),
        image(tmp_path, 3, "val_a.jpg", 80, 60, "val"),
        image(tmp_path, 4, "val_c.jpg", 160, 120, "val"),
    ]
    anns = [b for i in range(1, 5) for b in many_boxes(i, 3, 10 * i)]
    return dataset(tmp_path, images, anns)


def test_leakage_between_train_and_val(tmp_path: Path) -> None:
    report = check_dataset(_leaky(tmp_path))
    problem = only(report, "leakage.near_duplicate")
    assert problem.severity == "warning"
    assert problem.location == Location(str(tmp_path / "train_a.png"))
    assert "train_a.png (subset train, image 1) and val_a.jpg (subset val, image 3)" in problem.message
    assert "leakage.near_duplicate" not in check_dataset(_leaky(tmp_path), leakage=False).codes()


def test_reports_json_and_text(tmp_path: Path, image_factory: Callable[..., Path]) -> None:
    image_factory(tmp_path / "a.jpg", 64, 48)
    images = [image(tmp_path, 1, "a.jpg"), image(tmp_path, 2, "gone.jpg")]
    anns = [box(1, 1, (50.0, 40.0, 80.0, 60.0)), *many_boxes(1, 10, 10)]
    report = check_dataset(dataset(tmp_path, images, anns), leakage=False)
    data = json.loads(json.dumps(report.to_json()))
    assert data["ok"] is False
    assert (data["num_images"], data["num_annotations"], data["num_errors"], data["num_warnings"]) == (2, 11, 1, 1)
    assert data["instances_per_class"] == {"thing": 11}
    assert [p["code"] for p in data["problems"]] == ["image.missing", "box.clipped", "image.no_annotations"]
    assert data["problems"][1] == {
        "severity": "warning",
        "code": "box.clipped",
        "file": ANN_FILE,
        "line": 101,
        "image_id": 1,
        "annotation_id": 1,
        "message": report.problems[1].message,
    }
    lines = report.format_text().splitlines()
    assert lines[0] == "Errors (1):"
    assert lines[1].startswith(f"  {tmp_path / 'gone.jpg'} [image 2]: image 2 (gone.jpg): file not found")
    assert lines[2] == "Warnings (1):"
    assert lines[3].startswith(f"  {ANN_FILE}:101 [image 1, annotation 1]: annotation 1: box")
    assert lines[4] == "Info (1):"
    assert lines[-2] == "Instances per class: thing 11"
    assert lines[-1] == "Summary: 2 images, 11 annotations, 1 classes; 1 errors, 1 warnings, 1 info -> FAILED"


def test_clean_dataset_is_ok(tmp_path: Path, image_factory: Callable[..., Path]) -> None:
    image_factory(tmp_path / "a.jpg", 64, 48)
    report = check_dataset(dataset(tmp_path, [image(tmp_path, 1, "a.jpg")], many_boxes(1, 10, 1)), strict=True)
    assert report.problems == ()
    assert report.ok
    assert report.format_text() == (
        "Instances per class: thing 10\n"
        "Summary: 1 images, 10 annotations, 1 classes; 0 errors, 0 warnings, 0 info -> OK"
    )


def test_check_never_modifies_files(tmp_path: Path, image_factory: Callable[..., Path]) -> None:
    ds = _leaky(tmp_path)
    image_factory(tmp_path / "rot.jpg", 40, 20, exif_orientation=6)
    data = image_factory(tmp_path / "cut.jpg", 64, 48).read_bytes()
    (tmp_path / "cut.jpg").write_bytes(data[:-500])
    extra = [image(tmp_path, 5, "rot.jpg", 40, 20, "val"), image(tmp_path, 6, "cut.jpg", 64, 48, "train")]
    ds = dataset(tmp_path, [*ds.images, *extra], [*ds.annotations, box(99, 5, (0.0, 0.0, 50.0, 50.0))])
    before = {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in sorted(tmp_path.iterdir())}
    report = check_dataset(ds, strict=True)
    assert {"image.size_exif", "image.truncated", "leakage.near_duplicate"} <= set(report.codes())
    after = {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in sorted(tmp_path.iterdir())}
    assert after == before


# --- through the format readers -------------------------------------------------------------------


def test_check_a_coco_dataset_read_by_load_dataset(tmp_path: Path, image_factory: Callable[..., Path]) -> None:
    from detforge.data.formats import load_dataset

    root = tmp_path / "coco"
    _scene(root / "images" / "train" / "a.jpg", 1)
    with Image.open(root / "images" / "train" / "a.jpg") as im:
        (root / "images" / "val").mkdir()
        im.resize((80, 60)).save(root / "images" / "val" / "a_small.jpg", quality=50)
    image_factory(root / "images" / "val" / "rot.jpg", 40, 20, exif_orientation=6)
    boxes = [[10, 10, 20, 20]] * 10 + [[150, 100, 30, 30]]  # XYWH; the last one extends past 160x120
    train = {
        "images": [{"id": 1, "file_name": "a.jpg", "width": 160, "height": 120}],
        "annotations": [
            {"id": i + 1, "image_id": 1, "category_id": 0, "bbox": b, "area": 1.0, "iscrowd": 0}
            for i, b in enumerate(boxes)
        ],
        "categories": [{"id": 0, "name": "thing"}],
    }
    val = {
        "images": [
            {"id": 2, "file_name": "a_small.jpg", "width": 80, "height": 60},
            {"id": 3, "file_name": "rot.jpg", "width": 40, "height": 20},
        ],
        "annotations": [],
        "categories": [{"id": 0, "name": "thing"}],
    }
    (root / "annotations").mkdir()
    (root / "annotations" / "instances_train.json").write_text(json.dumps(train))
    (root / "annotations" / "instances_val.json").write_text(json.dumps(val))
    ds = load_dataset(root)
    report = check_dataset(ds)
    assert set(report.codes()) >= {"image.size_exif", "box.clipped", "category.zero_id", "leakage.near_duplicate"}
    clipped = only(report, "box.clipped")
    assert clipped.annotation_id == 11 and clipped.location is not None
    assert clipped.location.file.endswith("instances_train.json")
    assert only(report, "image.size_exif").location == Location(str(root / "images" / "val" / "rot.jpg"))
    leak = only(report, "leakage.near_duplicate")
    assert "a.jpg (subset train" in leak.message and "a_small.jpg (subset val" in leak.message


def test_check_a_yolo_dataset_read_by_load_dataset(tmp_path: Path, image_factory: Callable[..., Path]) -> None:
    from detforge.data.formats import load_dataset

    root = tmp_path / "yolo"
    for name in ("a", "b", "c"):
        image_factory(root / "images" / "train" / f"{name}.jpg", 64, 48)
    (root / "labels" / "train").mkdir(parents=True)
    (root / "labels" / "train" / "a.txt").write_text("0 0.5 0.5 0.2 0.2\n" * 10)
    (root / "labels" / "train" / "b.txt").write_text("")  # empty: background image
    (root / "data.yaml").write_text("path: .\ntrain: images/train\nnames:\n  0: thing\n  1: other\n")
    report = check_dataset(load_dataset(root))
    assert only(report, "label_file.missing_summary").message.startswith("1 images have no label file: c.jpg")
    assert only(report, "image.no_annotations").message.startswith("1 of 3 images have no annotations")
    assert "b.jpg" in only(report, "image.no_annotations").message
    assert "category 1 ('other') has no instances" in only(report, "category.empty").message
    assert report.instances_per_class == {"thing": 10, "other": 0}
    assert report.num_errors == 0


def test_huge_category_id_gap_is_counted_without_building_the_range() -> None:
    from detforge.data.check_annotations import category_problems
    from detforge.data.dataset import Dataset
    from detforge.structures import Categories, Category

    cats = Categories((Category(1, "a"), Category(3, "b"), Category(10**15, "c")))
    ds = Dataset((), (), cats, Path("."), "coco")
    gap = next(p for p in category_problems(ds) if p.code == "category.id_gap")
    assert gap.message.startswith(f"category ids 1..{10**15} have gaps: 2, 4, 5")
    assert f"({10**15 - 3 - 5} more)" in gap.message


# --- transcriptions -------------------------------------------------------------------------------


def _texts(tmp_path: Path, texts: list[str | None], category_id: int = 1, first_id: int = 1) -> list[Annotation]:
    return [box(first_id + i, 1, (1.0, 1.0, 20.0, 20.0), category_id, text=t) for i, t in enumerate(texts)]


def test_blank_text_is_a_warning_per_box_naming_file_line_and_id(tmp_path: Path) -> None:
    anns = _texts(tmp_path, ["12", " \t", "7", ""]) + _texts(tmp_path, ["\u3000"], category_id=2, first_id=9)
    cats = Categories.from_names(["number", "other"])
    report = check_dataset(dataset(tmp_path, [image(tmp_path, 1, "a.jpg")], anns, cats), images=False)
    blank = [p for p in report.problems if p.code == "text.blank"]
    assert [(p.severity, p.annotation_id, p.image_id) for p in blank] == [("warning", 2, 1), ("warning", 9, 1)]
    assert blank[0].location == Location(ANN_FILE, 102)
    assert blank[0].message.startswith("annotation 2 on a.jpg ('number'): text ' \\t' is only whitespace")
    assert blank[1].location == Location(ANN_FILE, 109)  # an ideographic space is whitespace too, in any class
    assert f"{ANN_FILE}:102 [image 1, annotation 2]: annotation 2 on a.jpg" in report.format_text()
    assert not check_dataset(dataset(tmp_path, [image(tmp_path, 1, "a.jpg")], anns, cats), images=False, strict=True).ok


def test_read_class_with_boxes_lacking_text_is_one_info_listing_them(tmp_path: Path) -> None:
    anns = _texts(tmp_path, ["12", None, "3", ""])  # read class: 2 values, 2 without ("" counts as no text)
    anns += _texts(tmp_path, [None, None], category_id=2, first_id=20)  # not read: nothing to say
    cats = Categories.from_names(["number", "plain"])
    report = check_dataset(dataset(tmp_path, [image(tmp_path, 1, "a.jpg")], anns, cats), images=False)
    missing = only(report, "text.missing")
    assert missing.severity == "info"
    assert missing.message == (
        "category 1 ('number') is read (text on 2 of 4 boxes) but 2 boxes have no text: annotations "
        f"2 on a.jpg ({ANN_FILE}:102); 4 on a.jpg ({ANN_FILE}:104); add it where the value is legible"
    )
    assert (missing.location, missing.annotation_id) == (None, None)  # several boxes: listed in the message
    assert "text.blank" not in report.codes() and report.ok


def test_one_box_lacking_text_is_located_and_many_are_counted(tmp_path: Path) -> None:
    one = check_dataset(
        dataset(tmp_path, [image(tmp_path, 1, "a.jpg")], _texts(tmp_path, ["1", "2", None])), images=False
    )
    single = only(one, "text.missing")
    assert (single.location, single.image_id, single.annotation_id) == (Location(ANN_FILE, 103), 1, 3)
    assert "but 1 box has no text: annotation 3 on a.jpg" in single.message

    many = check_dataset(
        dataset(tmp_path, [image(tmp_path, 1, "a.jpg")], _texts(tmp_path, ["1"] + [None] * 6)), images=False
    )
    counted = only(many, "text.missing")
    assert "(text on 1 of 7 boxes) but 6 boxes have no text; add it" in counted.message
    assert "annotations" not in counted.message  # too many to list


def test_no_text_anywhere_means_no_text_problems(tmp_path: Path) -> None:
    report = check_dataset(dataset(tmp_path, [image(tmp_path, 1, "a.jpg")], many_boxes(1, 10, 1)), images=False)
    assert not [c for c in report.codes() if c.startswith("text.")]
    fully = _texts(tmp_path, [str(i) for i in range(10)])
    report = check_dataset(dataset(tmp_path, [image(tmp_path, 1, "a.jpg")], fully), images=False)
    assert not [c for c in report.codes() if c.startswith("text.")]


def test_text_checks_on_a_coco_file_with_text_attributes(tmp_path: Path) -> None:
    from detforge.data.formats import load_dataset
    from detforge.data.stats import dataset_stats

    texts: list[object] = ["12", "  ", None, "3"]
    coco = {
        "images": [{"id": 1, "file_name": "a.jpg", "width": 64, "height": 48}],
        "annotations": [
            {"id": i + 1, "image_id": 1, "category_id": 1, "bbox": [1, 1, 10, 10], "area": 100.0, "iscrowd": 0}
            | ({} if t is None else {"attributes": {"text": t}})
            for i, t in enumerate(texts)
        ],
        "categories": [{"id": 1, "name": "task_number"}],
    }
    (tmp_path / "annotations").mkdir()
    (tmp_path / "annotations" / "instances.json").write_text(json.dumps(coco, indent=1), encoding="utf-8")
    ds = load_dataset(tmp_path)
    report = check_dataset(ds, images=False)
    blank = only(report, "text.blank")
    assert blank.annotation_id == 2 and blank.location is not None
    assert blank.location.file.endswith("instances.json")
    missing = only(report, "text.missing")
    assert missing.annotation_id == 3 and "(text on 2 of 4 boxes) but 1 box has no text" in missing.message
    text = dataset_stats(ds).text
    assert (text.num_with_text, text.num_blank, text.num_without_text) == (2, 1, 1)
    assert text.attribute == "text" and text.charset == "123"
