"""`detforge.index` end to end on painted photos: statuses, the CSV and JSON index, sorting copies, resume,
an unreadable photo, an empty folder, and the photos left untouched."""

from __future__ import annotations

import csv
import hashlib
import json
import os
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

import detforge
from detforge.errors import ConfigError
from detforge.inference import Predictor
from detforge.reading import ReadSettings

# Objects: (x0, y0, x1, y1, code, label, value key); codes give detection scores code / 255.
PAGES = {
    # two numbers on one line, written right one first by score; a figure; "12/a" on the next line
    "a/page1.png": [(90, 10, 130, 30, 240, 0, 20), (10, 12, 50, 32, 200, 0, 10), (60, 60, 90, 90, 220, 1, 0),
                    (10, 80, 50, 100, 210, 0, 50)],
    "page2.png": [(20, 20, 60, 40, 230, 0, 30)],  # "7" read with 0.3 < 0.5: unsure
    "page3.png": [(20, 20, 60, 60, 230, 1, 0)],  # only a figure: nothing
    "page4.png": [],  # nothing at all
    "page5.png": [(20, 20, 60, 40, 230, 0, 40), (20, 60, 60, 80, 225, 0, 10)],  # "" then "3.14": unsure
    "sub/dup.png": [(10, 10, 50, 30, 230, 0, 10), (10, 60, 50, 80, 220, 0, 60)],  # "3.14" twice ("3. 14")
}  # fmt: skip


@pytest.fixture
def photos(tmp_path: Path, painter) -> Path:  # type: ignore[no-untyped-def]
    root = tmp_path / "photos"
    for name, objects in PAGES.items():
        painter(root / name, objects)
    (root / "broken.png").write_bytes(b"this is not an image")
    (root / "notes.txt").write_text("not a photo")
    return root


def _fingerprints(root: Path) -> dict[str, tuple[str, int, int]]:
    return {
        p.relative_to(root).as_posix(): (
            hashlib.sha256(p.read_bytes()).hexdigest(),
            p.stat().st_mtime_ns,
            p.stat().st_mode,
        )
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_index_lists_values_in_reading_order_with_statuses(tmp_path: Path, photos: Path, predictor_factory) -> None:  # type: ignore[no-untyped-def]
    summary = detforge.index(predictor_factory(), photos, out=tmp_path / "idx", progress=False)
    assert summary.photos == 7 and summary.done_now == 7 and summary.skipped == 0
    assert summary.counts == {"read": 2, "unsure": 2, "nothing": 2, "error": 1}
    assert [e[0] for e in summary.errors] == ["broken.png"] and "not a readable image" in summary.errors[0][1]

    rows = list(csv.DictReader((tmp_path / "idx" / "index.csv").open(encoding="utf-8")))
    by_file = {r["file"]: r for r in rows}
    assert [r["file"] for r in rows] == sorted(by_file)  # relative-path order
    assert by_file["a/page1.png"]["status"] == "read"
    assert by_file["a/page1.png"]["values"] == "3.14;3.15;12/a"  # reading order, not score order
    assert by_file["a/page1.png"]["text_scores"] == "0.9500;0.9000;0.9900"
    assert by_file["a/page1.png"]["boxes"].split(";")[0] == "10.0 12.0 50.0 32.0"
    assert (by_file["a/page1.png"]["width"], by_file["a/page1.png"]["height"]) == ("160", "120")
    assert (by_file["page2.png"]["status"], by_file["page2.png"]["values"]) == ("unsure", "7")
    assert (by_file["page3.png"]["status"], by_file["page3.png"]["values"]) == ("nothing", "")
    assert by_file["page4.png"]["status"] == "nothing"
    assert (by_file["page5.png"]["status"], by_file["page5.png"]["values"]) == ("unsure", ";3.14")
    assert (by_file["sub/dup.png"]["status"], by_file["sub/dup.png"]["values"]) == ("read", "3.14;3.14")
    assert by_file["broken.png"]["status"] == "error" and "not a readable image" in by_file["broken.png"]["error"]

    doc = json.loads((tmp_path / "idx" / "index.json").read_text(encoding="utf-8"))
    assert doc["version"] == 1 and doc["min_score"] == 0.5 and doc["counts"] == summary.counts
    images = {im["file"]: im for im in doc["images"]}
    page1 = images["a/page1.png"]
    assert page1["values"] == ["3.14", "3.15", "12/a"]
    assert [r["text_score"] for r in page1["reads"]] == [0.95, 0.9, 0.99]
    assert [r["score"] for r in page1["reads"]] == pytest.approx([200 / 255, 240 / 255, 210 / 255], abs=1e-4)
    assert page1["reads"][0]["box"] == [10.0, 12.0, 50.0, 32.0] and page1["reads"][0]["class"] == "number"
    assert [o["class"] for o in page1["others"]] == ["figure"] and "text" not in page1["others"][0]
    assert images["sub/dup.png"]["reads"][1]["text"] == "3. 14"  # raw text kept, value normalised
    assert images["broken.png"]["values"] == [] and images["broken.png"]["width"] is None
    assert "settings" not in page1


def test_sort_into_copies_by_value_and_leaves_the_photos_untouched(  # type: ignore[no-untyped-def]
    tmp_path: Path, photos: Path, predictor_factory
) -> None:
    before = _fingerprints(photos)
    sorted_dir = tmp_path / "sorted"
    summary = detforge.index(predictor_factory(), photos, out=tmp_path / "idx", sort_into=sorted_dir, progress=False)
    assert _fingerprints(photos) == before  # contents, modification times and modes
    copies = {p.relative_to(sorted_dir).as_posix() for p in sorted_dir.rglob("*.png")}
    assert copies == {
        "3.14/a/page1.png", "3.15/a/page1.png", "12_a/a/page1.png",  # a page with several values: each folder
        "3.14/sub/dup.png",  # the same value twice: one copy
        "_review/page2.png", "_review/page5.png",
        "_nothing/page3.png", "_nothing/page4.png",
    }  # fmt: skip
    original = photos / "a" / "page1.png"
    copy = sorted_dir / "3.15" / "a" / "page1.png"
    assert copy.read_bytes() == original.read_bytes() and copy.stat().st_mtime_ns == original.stat().st_mtime_ns
    assert (
        summary.sorted is not None and summary.sorted.copied == 8 and summary.sorted.folders == ("12_a", "3.14", "3.15")
    )
    assert not list(sorted_dir.rglob("*.tmp"))

    cvat = ET.parse(sorted_dir / "_review" / "annotations.xml").getroot()
    images = {im.get("name"): im for im in cvat.iter("image")}
    assert set(images) == {"page2.png", "page5.png"}
    texts = [a.text for a in images["page2.png"].iter("attribute") if a.get("name") == "text"]
    assert texts == ["7"]
    tasks = json.loads((sorted_dir / "_review" / "tasks.json").read_text(encoding="utf-8"))
    assert [t["data"]["image"] for t in tasks] == ["page2.png", "page5.png"]
    assert [r["value"]["text"] for r in tasks[0]["predictions"][0]["result"] if r["type"] == "textarea"] == [["7"]]

    leftover = sorted_dir / "_review" / ".page2.png.k1ll3d00.tmp"  # a copy a killed run left half done
    leftover.write_bytes(b"half a photo")
    again = detforge.index(predictor_factory(), photos, out=tmp_path / "idx", sort_into=sorted_dir, progress=False)
    assert again.sorted is not None and (again.sorted.copied, again.sorted.kept) == (0, 8)
    assert not leftover.exists()
    assert _fingerprints(photos) == before


def test_second_run_skips_done_photos_and_redoes_a_changed_one(  # type: ignore[no-untyped-def]
    tmp_path: Path, photos: Path, predictor_factory, detector_class, painter
) -> None:
    out = tmp_path / "idx"
    first = detector_class()
    detforge.index(predictor_factory(first), photos, out=out, progress=False)
    assert len(first.predicted) == 6  # the broken photo never reaches the model
    records = (out / "records.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(records) == 7

    second = detector_class()
    summary = detforge.index(predictor_factory(second), photos, out=out, progress=False)
    assert second.predicted == [] and summary.skipped == 6 and summary.done_now == 1  # only the error is retried
    assert summary.counts["read"] == 2

    painter(photos / "page2.png", [(20, 20, 60, 40, 230, 0, 20)])  # now reads "3.15" confidently
    os.utime(photos / "page2.png", ns=(1_000_000_000, 1_000_000_000))  # a distinct modification time
    third = detector_class()
    summary = detforge.index(predictor_factory(third), photos, out=out, progress=False)
    assert len(third.predicted) == 1 and summary.skipped == 5
    doc = json.loads((out / "index.json").read_text(encoding="utf-8"))
    assert {im["file"]: im["status"] for im in doc["images"]}["page2.png"] == "read"
    assert summary.counts == {"read": 3, "unsure": 1, "nothing": 2, "error": 1}


def test_a_killed_run_loses_at_most_what_was_in_flight(  # type: ignore[no-untyped-def]
    tmp_path: Path, photos: Path, predictor_factory, detector_class
) -> None:
    out = tmp_path / "idx"
    detforge.index(predictor_factory(), photos, out=out, progress=False)
    lines = (out / "records.jsonl").read_text(encoding="utf-8").splitlines(keepends=True)
    # as if killed while writing the fourth record: three whole lines and half of one
    (out / "records.jsonl").write_text("".join(lines[:3]) + lines[3][:40], encoding="utf-8")
    (out / "index.json").unlink()
    detector = detector_class()
    summary = detforge.index(predictor_factory(detector), photos, out=out, progress=False)
    # records kept: a/page1.png, broken.png (an error: retried), page2.png; the cut line (page3.png) is redone
    assert summary.skipped == 2 and len(detector.predicted) == 4
    assert json.loads((out / "index.json").read_text(encoding="utf-8"))["counts"]["read"] == 2
    assert all(json.loads(line) for line in (out / "records.jsonl").read_text(encoding="utf-8").splitlines()[4:])


def test_other_settings_redo_the_photos(tmp_path: Path, photos: Path, predictor_factory, detector_class) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "idx"
    detforge.index(predictor_factory(), photos, out=out, progress=False)
    detector = detector_class()
    both = ReadSettings(classes=("number", "figure"), min_score=0.5)
    reader = predictor_factory().reader
    predictor = Predictor(
        detector, class_names=("number", "figure"), device="cpu", score_threshold=0.2, reader=reader, read_settings=both
    )
    summary = detforge.index(predictor, photos, out=out, progress=False)
    assert len(detector.predicted) == 6 and summary.skipped == 0
    assert summary.counts["nothing"] == 1  # the figure page is now read (as an empty value: unsure)


def test_empty_folder_missing_folder_and_model_without_reading(
    tmp_path: Path, predictor_factory, detector_class
) -> None:  # type: ignore[no-untyped-def]
    empty = tmp_path / "empty"
    (empty / "sub").mkdir(parents=True)
    (empty / "readme.txt").write_text("no photos here")
    with pytest.raises(ConfigError, match=r"empty: no photos found \(looked for .*\.jpg"):
        detforge.index(predictor_factory(), empty, out=tmp_path / "idx", progress=False)
    with pytest.raises(ConfigError, match="not a folder"):
        detforge.index(predictor_factory(), tmp_path / "missing", out=tmp_path / "idx", progress=False)
    blind = Predictor(detector_class(), device="cpu")
    with pytest.raises(ConfigError, match=r"does not read text.*--read"):
        detforge.index(blind, empty, out=tmp_path / "idx", progress=False)
    with pytest.raises(ConfigError, match="batch_size cannot apply to a ready Predictor"):
        detforge.index(predictor_factory(), empty, out=tmp_path / "idx", batch_size=8)


def test_output_folders_may_not_overlap_the_photos(tmp_path: Path, photos: Path, predictor_factory) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ConfigError, match="overlaps the photo folder"):
        detforge.index(predictor_factory(), photos, out=tmp_path / "idx", sort_into=photos / "sorted")
    with pytest.raises(ConfigError, match="overlaps the photo folder"):
        detforge.index(predictor_factory(), photos, out=tmp_path / "idx", sort_into=tmp_path)
    with pytest.raises(ConfigError, match="is inside it"):
        detforge.index(predictor_factory(), photos, out=tmp_path)
    # an index folder inside the photo folder is allowed, and its files are not taken for photos
    summary = detforge.index(predictor_factory(), photos, out=photos / "index", progress=False)
    assert summary.photos == 7
