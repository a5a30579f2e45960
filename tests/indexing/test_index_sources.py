"""`detforge index` over a glob pattern or a text file of paths (issue 16): the same records as indexing
the folder, a listed file that is missing named as an error while the rest are indexed, resume, and
sorted copies named relative to the listed files' common folder."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

import detforge
from detforge.errors import ConfigError
from detforge.indexing import list_photos

PAGES = {
    "a/p1.png": [(10, 12, 50, 32, 200, 0, 10)],  # "3.14"
    "a/p2.png": [(20, 20, 60, 40, 230, 0, 20)],  # "3.15"
    "b/p3.png": [(20, 20, 60, 60, 230, 1, 0)],  # a figure only: nothing
}


@pytest.fixture
def photos(tmp_path: Path, painter) -> Path:  # type: ignore[no-untyped-def]
    root = tmp_path / "photos"
    for name, objects in PAGES.items():
        painter(root / name, objects)
    (root / "b" / "notes.txt").write_text("not a photo")
    return root


def _rows(index: Path) -> dict[str, tuple[str, str]]:
    rows = csv.DictReader((index / "index.csv").open(encoding="utf-8"))
    return {r["file"]: (r["status"], r["values"]) for r in rows}


def test_a_glob_indexes_what_it_matches(tmp_path: Path, photos: Path, predictor_factory) -> None:  # type: ignore[no-untyped-def]
    folder = detforge.index(predictor_factory(), photos, out=tmp_path / "by_folder", progress=False)
    matched = detforge.index(predictor_factory(), f"{photos}/**/*.png", out=tmp_path / "by_glob", progress=False)
    assert matched.photos == folder.photos == 3
    assert _rows(tmp_path / "by_glob") == _rows(tmp_path / "by_folder")
    only_a = detforge.index(predictor_factory(), f"{photos}/a/*.png", out=tmp_path / "only_a", progress=False)
    assert _rows(tmp_path / "only_a") == {"p1.png": ("read", "3.14"), "p2.png": ("read", "3.15")}
    assert only_a.counts["read"] == 2


def test_a_path_list_names_missing_files_and_indexes_the_rest(  # type: ignore[no-untyped-def]
    tmp_path: Path, photos: Path, predictor_factory
) -> None:
    todo = tmp_path / "todo.txt"
    todo.write_text(f"# pages to index\nphotos/a/p1.png\n\n{photos / 'b' / 'p3.png'}\nphotos/a/gone.png\n")
    sorted_dir = tmp_path / "sorted"
    summary = detforge.index(predictor_factory(), todo, out=tmp_path / "idx", sort_into=sorted_dir, progress=False)
    assert summary.photos == 3 and summary.counts == {"read": 1, "unsure": 0, "nothing": 1, "error": 1}
    assert [file for file, _ in summary.errors] == ["a/gone.png"] and "gone.png" in summary.errors[0][1]
    assert _rows(tmp_path / "idx") == {
        "a/gone.png": ("error", ""),
        "a/p1.png": ("read", "3.14"),
        "b/p3.png": ("nothing", ""),
    }
    copies = {p.relative_to(sorted_dir).as_posix() for p in sorted_dir.rglob("*.png")}
    assert copies == {"3.14/a/p1.png", "_nothing/b/p3.png"}  # relative to the listed files' common folder

    again = detforge.index(predictor_factory(), todo, out=tmp_path / "idx", progress=False)
    assert (again.skipped, again.done_now) == (2, 1)  # the missing file is retried, the others reused


def test_sources_that_list_nothing_say_so(tmp_path: Path, photos: Path, predictor_factory) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ConfigError, match=r"\*\.jpg: matches no image file"):
        detforge.index(predictor_factory(), f"{photos}/*.jpg", out=tmp_path / "idx", progress=False)
    empty = tmp_path / "empty.txt"
    empty.write_text("# nothing yet\n")
    with pytest.raises(ConfigError, match=r"empty.txt: lists no image path"):
        detforge.index(predictor_factory(), empty, out=tmp_path / "idx", progress=False)
    with pytest.raises(ConfigError, match=r"p3.png: not a folder, a glob pattern or a list of paths"):
        list_photos(photos / "b" / "p3.png")


def test_sorted_copies_are_left_out_of_a_glob(tmp_path: Path, photos: Path, predictor_factory) -> None:  # type: ignore[no-untyped-def]
    sorted_dir = photos / "sorted"
    pattern = f"{photos}/**/*.png"
    detforge.index(predictor_factory(), pattern, out=tmp_path / "idx", sort_into=sorted_dir, progress=False)
    again = detforge.index(predictor_factory(), pattern, out=tmp_path / "idx", sort_into=sorted_dir, progress=False)
    assert again.photos == 3 and again.skipped == 3  # the copies under sorted/ are not taken for photos
