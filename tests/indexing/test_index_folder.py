"""Which --out folders `detforge index` takes: a new or empty one, its own index of the same photos (continued,
never wiped), and nothing else without --overwrite (a folder it did not write, or the index of other photos)."""

from __future__ import annotations

from pathlib import Path

import pytest

import detforge
from detforge.outdir import MARKER, OutputFolderError


@pytest.fixture
def photos(tmp_path: Path, painter) -> Path:  # type: ignore[no-untyped-def]
    root = tmp_path / "photos"
    painter(root / "a.png", [(20, 20, 60, 40, 230, 0, 10)])
    painter(root / "b.png", [(20, 20, 60, 40, 230, 0, 20)])
    return root


def test_a_folder_it_did_not_write_is_refused_unless_overwrite(tmp_path: Path, photos: Path, predictor_factory) -> None:  # type: ignore[no-untyped-def]
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "thesis.txt").write_text("do not delete")
    with pytest.raises(OutputFolderError, match=r"not written by detforge.*--overwrite"):
        detforge.index(predictor_factory(), photos, out=foreign, progress=False)
    assert (foreign / "thesis.txt").read_text() == "do not delete" and not (foreign / "index.csv").exists()
    summary = detforge.index(predictor_factory(), photos, out=foreign, overwrite=True, progress=False)
    assert summary.done_now == 2 and not (foreign / "thesis.txt").exists()


def test_its_own_index_is_continued_and_another_photo_folders_refused(  # type: ignore[no-untyped-def]
    tmp_path: Path, photos: Path, predictor_factory, painter
) -> None:
    out = tmp_path / "idx"
    detforge.index(predictor_factory(), photos, out=out, progress=False)
    assert (out / MARKER).is_file()
    painter(photos / "c.png", [(20, 20, 60, 40, 230, 0, 10)])
    again = detforge.index(predictor_factory(), photos, out=out, progress=False)
    assert (again.skipped, again.done_now) == (2, 1), "the same photo folder resumes, nothing is wiped"
    others = tmp_path / "other_photos"
    painter(others / "x.png", [])
    with pytest.raises(OutputFolderError, match=r"another photo folder.*--overwrite"):
        detforge.index(predictor_factory(), others, out=out, progress=False)
    fresh = detforge.index(predictor_factory(), others, out=out, overwrite=True, progress=False)
    assert fresh.photos == 1 and fresh.skipped == 0


def test_an_index_folder_from_before_markers_is_continued(tmp_path: Path, photos: Path, predictor_factory) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "idx"
    detforge.index(predictor_factory(), photos, out=out, progress=False)
    (out / MARKER).unlink()  # as an earlier detforge left it: records.jsonl and the index files
    again = detforge.index(predictor_factory(), photos, out=out, progress=False)
    assert again.skipped == 2 and again.done_now == 0
