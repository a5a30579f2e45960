"""Dataset statistics: exact counts on a crafted dataset, JSON, terminal tables and the HTML report."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from PIL import Image

from detforge.data.dataset import Dataset
from detforge.data.stats import SizeBuckets, dataset_stats
from detforge.data.stats_report import PLOT_FILES, write_stats_report
from detforge.structures import Annotation, Categories, ImageRecord

NASTY = "<img src=x onerror=alert(1)>"


def _image(i: int, subset: str | None, w: int = 640, h: int = 480) -> ImageRecord:
    return ImageRecord(i, f"img{i}.jpg", Path(f"/nowhere/img{i}.jpg"), w, h, subset)


def _box(ann_id: int, image_id: int, cat: int, x: float, y: float, w: float, h: float) -> Annotation:
    return Annotation(ann_id, image_id, cat, (x, y, x + w, y + h))


@pytest.fixture
def crafted() -> Dataset:
    """7 images (2 empty, 2 of unknown size), 8 boxes (1 invalid), classes cat/dog/bird(unused)."""
    images = (
        _image(1, "train"),
        _image(2, "train"),
        _image(3, "train"),  # empty
        _image(4, "val"),
        _image(5, "val", 0, 0),  # empty, unknown size
        _image(6, "test", 0, 0),  # unknown size
        _image(7, "train", 1000, 500),
    )
    annotations = (
        _box(1, 1, 1, 0, 0, 10, 10),  # cat small (100)
        _box(2, 1, 1, 100, 100, 32, 32),  # cat medium (exactly 32^2)
        _box(3, 1, 2, 200, 200, 96, 96),  # dog large (exactly 96^2)
        _box(4, 2, 2, 0, 0, 31, 33),  # dog small (1023)
        _box(5, 2, 1, 300, 300, 100, 50),  # cat medium (5000)
        _box(6, 4, 1, 0, 0, 200, 100),  # cat large (20000)
        _box(7, 6, 2, 10, 10, 50, 50),  # dog medium, image of unknown size
        _box(8, 7, 2, 10, 10, 0, 40),  # dog, zero width: invalid
    )
    return Dataset(images, annotations, Categories.from_names(["cat", "dog", "bird"]), Path("/nowhere"), "test")


def test_totals_and_empty_and_unknown_size_images(crafted: Dataset) -> None:
    s = dataset_stats(crafted)
    assert (s.num_images, s.num_annotations, s.num_empty_images) == (7, 8, 2)
    assert s.num_unknown_size_images == 2
    assert s.num_invalid_boxes == 1


def test_instances_and_size_buckets_per_class(crafted: Dataset) -> None:
    s = dataset_stats(crafted)
    assert s.instances_per_class == {"cat": 4, "dog": 4, "bird": 0}
    by_name = {c.name: c for c in s.classes}
    assert by_name["cat"].sizes == SizeBuckets(small=1, medium=2, large=1)
    assert by_name["dog"].sizes == SizeBuckets(small=1, medium=1, large=1)  # the invalid box is left out
    assert by_name["bird"].sizes == SizeBuckets(0, 0, 0)
    assert (by_name["cat"].images, by_name["dog"].images, by_name["bird"].images) == (3, 4, 0)
    assert s.box_sizes == SizeBuckets(small=2, medium=3, large=2)


def test_per_subset_breakdown(crafted: Dataset) -> None:
    subsets = {x.name: x for x in dataset_stats(crafted).subsets}
    assert list(subsets) == ["train", "val", "test"]
    train, val, test = subsets["train"], subsets["val"], subsets["test"]
    assert (train.images, train.annotations, train.empty_images) == (4, 6, 1)
    assert train.instances_per_class == {"cat": 3, "dog": 3, "bird": 0}
    assert (val.images, val.annotations, val.empty_images) == (2, 1, 1)
    assert val.instances_per_class == {"cat": 1, "dog": 0, "bird": 0}
    assert (test.images, test.annotations, test.instances_per_class["dog"]) == (1, 1, 1)


def test_images_without_subset_get_their_own_row_only_when_mixed(crafted: Dataset) -> None:
    assert dataset_stats(crafted.with_subset(None)).subsets == ()
    mixed = Dataset((*crafted.images, _image(8, None)), crafted.annotations, crafted.categories, crafted.root, "test")
    last = dataset_stats(mixed).subsets[-1]
    assert (last.name, last.images, last.empty_images) == (None, 1, 1)


def test_boxes_per_image_distribution(crafted: Dataset) -> None:
    bpi = dataset_stats(crafted).boxes_per_image  # counts per image: 3, 2, 0, 1, 0, 1, 1
    assert (bpi.min, bpi.median, bpi.max) == (0, 1.0, 3)
    assert bpi.mean == pytest.approx(8 / 7)
    assert bpi.edges == (0, 1, 2, 3, 4)
    assert bpi.histogram == (2, 3, 1, 1)


def test_relative_sizes_skip_unknown_sizes_and_aspect_ratios_use_all_valid_boxes(crafted: Dataset) -> None:
    s = dataset_stats(crafted)
    assert s.relative_size.count == 6  # valid boxes on images of known size
    assert s.relative_size.max == pytest.approx(math.sqrt(200 * 100 / (640 * 480)))
    assert s.relative_size.min == pytest.approx(math.sqrt(100 / (640 * 480)))
    assert s.aspect_ratio.count == 7
    assert (s.aspect_ratio.min, s.aspect_ratio.max) == (pytest.approx(31 / 33), 2.0)
    assert s.aspect_ratio.p50 == 1.0


def test_image_sizes(crafted: Dataset) -> None:
    s = dataset_stats(crafted)
    assert s.num_distinct_image_sizes == 2
    assert [(x.width, x.height, x.count) for x in s.image_sizes] == [(640, 480, 4), (1000, 500, 1)]
    assert (s.image_width.min, s.image_width.max, s.image_height.p50) == (640, 1000, 480)


def test_json_is_plain_and_round_trips(crafted: Dataset) -> None:
    data = dataset_stats(crafted).to_json()
    text = json.dumps(data, allow_nan=False)
    back = json.loads(text)
    assert back["instances_per_class"] == {"cat": 4, "dog": 4, "bird": 0}
    assert back["classes"][0]["sizes"] == {"small": 1, "medium": 2, "large": 1, "total": 4}
    assert back["subsets"][0]["name"] == "train"
    assert back["boxes_per_image"]["histogram"] == [2, 3, 1, 1]


def test_empty_dataset_is_json_safe() -> None:
    empty = Dataset((), (), Categories.from_names(["a"]), Path("."), "test")
    data = dataset_stats(empty).to_json()
    json.dumps(data, allow_nan=False)
    assert data["relative_size"]["count"] == 0 and data["relative_size"]["mean"] is None
    assert data["num_images"] == 0


def test_table_lists_classes_in_aligned_columns(crafted: Dataset) -> None:
    text = dataset_stats(crafted).format_table()
    lines = text.splitlines()
    header = next(line for line in lines if line.startswith("class") and "train" in line)
    assert header.split() == ["class", "train", "val", "test", "total", "images"]
    rows = {line.split()[0]: line for line in lines[lines.index(header) + 2 :][:3]}
    assert set(rows) == {"cat", "dog", "bird"}
    assert rows["cat"].split() == ["cat", "3", "1", "0", "4", "3"]
    assert {len(r) for r in rows.values()} == {len(header)}  # right-aligned numbers end under their header
    size_header = next(line for line in lines if line.startswith("class") and "small" in line)
    assert size_header.split()[1:4] == ["small", "medium", "large"]
    assert "1000x500" in text


def test_table_keeps_control_characters_from_breaking_rows() -> None:
    ds = Dataset((_image(1, None),), (), Categories.from_names(["bad\nname"]), Path("."), "test")
    text = dataset_stats(ds).format_table()
    assert "bad\\nname" in text and "bad\nname" not in text


def test_report_writes_plots_and_escaped_html(crafted: Dataset, tmp_path: Path) -> None:
    ds = Dataset(
        crafted.images, crafted.annotations, Categories.from_names(["cat", "dog", NASTY]), crafted.root, "test"
    )
    out = write_stats_report(ds, dataset_stats(ds), tmp_path / "report")
    assert out == tmp_path / "report" / "index.html"
    for name in PLOT_FILES:
        with Image.open(tmp_path / "report" / name) as im:
            assert im.format == "PNG" and im.width > 100
    page = out.read_text(encoding="utf-8")
    assert NASTY not in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page
    for name in PLOT_FILES:
        assert f'src="{name}"' in page  # relative links
    assert json.loads((tmp_path / "report" / "stats.json").read_text())["instances_per_class"][NASTY] == 0
    assert not list((tmp_path / "report").glob(".*.tmp"))  # atomic writes leave no temp files


def test_report_on_an_empty_dataset(tmp_path: Path) -> None:
    empty = Dataset((), (), Categories(()), Path("."), "test")
    out = write_stats_report(empty, dataset_stats(empty), tmp_path)
    assert all((tmp_path / name).stat().st_size > 0 for name in PLOT_FILES)
    assert "Dataset statistics" in out.read_text()


# --- transcriptions -------------------------------------------------------------------------------


@pytest.fixture
def transcribed() -> Dataset:
    """number: 4 values ("12", full-width "１２", "3.14", "7"), 1 blank, 1 None, 1 ""; sign: 1 value; empty: none."""
    texts = [("12", 1), ("\uff11\uff12", 1), ("3.14", 1), (" 7 ", 1), ("  ", 1), (None, 1), ("", 1), ("+", 2)]
    annotations = tuple(
        Annotation(i + 1, 1, cat, (0.0, 0.0, 10.0, 10.0), text=text) for i, (text, cat) in enumerate(texts)
    )
    annotations += (Annotation(99, 1, 3, (0.0, 0.0, 10.0, 10.0)),)
    cats = Categories.from_names(["number", "sign", "empty"])
    return Dataset((_image(1, None),), annotations, cats, Path("/nowhere"), "test")


def test_text_counts_per_class_with_blank_and_empty_strings_told_apart(transcribed: Dataset) -> None:
    t = dataset_stats(transcribed).text
    rows = {c.name: (c.with_text, c.blank, c.without_text) for c in t.classes}
    assert rows == {"number": (4, 1, 2), "sign": (1, 0, 0), "empty": (0, 0, 1)}
    assert (t.num_with_text, t.num_blank, t.num_without_text) == (5, 1, 3)
    assert t.read_classes == ("number", "sign")
    assert t.has_text
    assert t.num_distinct_values == 4  # "12" and full-width "１２" are one value after NFKC


def test_characters_and_lengths_are_measured_on_normalised_values(transcribed: Dataset) -> None:
    t = dataset_stats(transcribed).text
    # values: "12", "12", "3.14", "7", "+"
    assert [(c.char, c.count) for c in t.characters] == [
        ("1", 3),
        ("2", 2),
        ("+", 1),
        (".", 1),
        ("3", 1),
        ("4", 1),
        ("7", 1),
    ]
    assert t.characters[0].name == "DIGIT ONE" and t.characters[3].name == "FULL STOP"
    assert t.charset == "+.12347"
    assert (t.lengths.min, t.lengths.median, t.lengths.max) == (1, 2.0, 4)
    assert t.lengths.histogram == (0, 2, 2, 0, 1)


def test_text_stats_in_json(transcribed: Dataset) -> None:
    data = json.loads(json.dumps(dataset_stats(transcribed).to_json(), allow_nan=False))["text"]
    assert data["classes"][0] == {"name": "number", "category_id": 1, "with_text": 4, "blank": 1, "without_text": 2}
    assert data["characters"][0] == {"char": "1", "count": 3, "name": "DIGIT ONE"}
    assert data["lengths"] == {"min": 1, "median": 2.0, "max": 4, "histogram": [0, 2, 2, 0, 1]}
    assert data["read_classes"] == ["number", "sign"] and data["charset"] == "+.12347"


def test_no_text_is_said_in_one_line_and_json_has_empty_lengths(crafted: Dataset) -> None:
    s = dataset_stats(crafted)
    assert s.text.num_with_text == 0 and s.text.num_without_text == 8 and not s.text.has_text
    assert s.text.read_classes == () and s.text.characters == ()
    assert s.format_table().rstrip().endswith("transcriptions: none (no box has text)")
    assert s.to_json()["text"]["lengths"] == {"min": None, "median": None, "max": None, "histogram": []}


def test_text_table(transcribed: Dataset) -> None:
    text = dataset_stats(transcribed).format_table()
    summary = "transcriptions: 5 boxes with text, 1 blank, 3 without; 4 distinct values; read classes: number, sign"
    assert summary + "\n" in text  # no attribute named: the dataset was built in memory
    lines = text.splitlines()
    header = next(line for line in lines if line.startswith("class") and "with text" in line)
    assert header.split() == ["class", "with", "text", "blank", "without", "text"]
    number = lines[lines.index(header) + 2]
    assert number.split() == ["number", "4", "1", "2"] and len(number) == len(header)
    assert "text length (characters): min 1, median 2, max 4" in text
    length_header = lines.index("length  values")
    assert [line.split() for line in lines[length_header + 2 : length_header + 6]] == [
        ["1", "2"],
        ["2", "2"],
        ["3", "0"],
        ["4", "1"],
    ]
    assert any(line.split() == ["'1'", "DIGIT", "ONE", "3"] for line in lines)
    assert "character (7 distinct)" in text


def test_report_has_an_escaped_transcriptions_section(tmp_path: Path) -> None:
    anns = (
        Annotation(1, 1, 1, (0.0, 0.0, 10.0, 10.0), text="<b>1</b>"),
        Annotation(2, 1, 1, (0.0, 0.0, 10.0, 10.0), text="22"),
    )
    ds = Dataset((_image(1, None),), anns, Categories.from_names([NASTY]), Path("/nowhere"), "test")
    page = write_stats_report(ds, dataset_stats(ds), tmp_path).read_text(encoding="utf-8")
    assert "<h2>Transcriptions</h2>" in page and "<b>" not in page and NASTY not in page
    assert "&#x27;&lt;&#x27; LESS-THAN SIGN" in page  # a character row, escaped
    assert "min 2, median 5, max 8" in page  # "22" and "<b>1</b>"
    assert 'style="width:100.0%"' in page  # the most frequent length / character has the full bar
    stats_json = json.loads((tmp_path / "stats.json").read_text(encoding="utf-8"))
    assert stats_json["text"]["num_with_text"] == 2
    empty = Dataset((_image(1, None),), (), Categories.from_names(["a"]), Path("/nowhere"), "test")
    assert "No box has text." in write_stats_report(empty, dataset_stats(empty), tmp_path / "e").read_text()
