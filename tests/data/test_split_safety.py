"""`data split` / `convert` / `show` / `stats --out` own their output folders: no merging, no stale files."""

from __future__ import annotations

from pathlib import Path

import pytest

import detforge
from detforge.data.formats import load_dataset
from detforge.outdir import MARKER, OutputFolderError
from tiny_fixtures import write_tiny_coco


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_coco(tmp_path_factory.mktemp("src") / "data", n_train=16, n_val=8)


def _names_by_subset(folder: Path) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for im in load_dataset(folder).images:
        out.setdefault(str(im.subset), set()).add(Path(im.file_name).name)
    return out


def test_resplit_into_the_same_folder_replaces_the_earlier_split(source: Path, tmp_path: Path) -> None:
    out = tmp_path / "split"
    detforge.split(source, out=out, ratios=(0.5, 0.25, 0.25), seed=1)
    detforge.split(source, out=out, ratios=(0.8, 0.2), seed=2)
    subsets = _names_by_subset(out)
    assert set(subsets) == {"train", "val"}, "the earlier split's test subset survived"
    assert sum(len(v) for v in subsets.values()) == 24
    assert not subsets["train"] & subsets["val"]
    assert not (out / "images" / "test").exists()
    assert (out / MARKER).is_file()


def test_split_refuses_a_folder_it_did_not_write_and_overwrite_replaces_it(source: Path, tmp_path: Path) -> None:
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("keep me", encoding="utf-8")
    with pytest.raises(OutputFolderError, match=r"not written by detforge.*--overwrite"):
        detforge.split(source, out=out)
    assert (out / "notes.txt").read_text(encoding="utf-8") == "keep me"
    detforge.split(source, out=out, overwrite=True)
    assert not (out / "notes.txt").exists()
    assert sum(len(v) for v in _names_by_subset(out).values()) == 24


def test_each_verb_refuses_another_verbs_output(source: Path, tmp_path: Path) -> None:
    shown = tmp_path / "gallery"
    detforge.show(source, out=shown, n=2)
    assert (shown / MARKER).is_file()
    with pytest.raises(OutputFolderError, match="written by `detforge data show`"):
        detforge.convert(source, shown, to="yolo")
    with pytest.raises(OutputFolderError, match="written by `detforge data show`"):
        detforge.stats(source, out=shown)
    html = detforge.show(source, out=shown, n=3, seed=4)  # its own output: replaced
    assert html == shown / "index.html" and html.is_file()
    assert len(list((shown / "images").iterdir())) == 3


def test_convert_again_replaces_and_a_file_or_the_input_folder_is_refused(source: Path, tmp_path: Path) -> None:
    dst = tmp_path / "yolo"
    assert detforge.convert(source, dst, to="yolo") == dst
    (dst / "stale.txt").write_text("old", encoding="utf-8")
    detforge.convert(source, dst, to="yolo")
    assert not (dst / "stale.txt").exists()
    a_file = tmp_path / "file.txt"
    a_file.write_text("x", encoding="utf-8")
    with pytest.raises(OutputFolderError, match="is a file"):
        detforge.convert(source, a_file, to="coco")
    with pytest.raises(OutputFolderError, match="holds the input"):
        detforge.convert(source, source.parent, to="coco", overwrite=True)
    assert (source / "annotations" / "instances_train.json").is_file()


def test_a_failed_write_leaves_the_earlier_output_intact(
    source: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "split"
    detforge.split(source, out=out, seed=1)
    before = sorted(p.relative_to(out) for p in out.rglob("*"))

    def half_write(dataset: object, folder: Path, fmt: str) -> Path:
        (folder / "images").mkdir()
        (folder / "images" / "half.png").write_bytes(b"")
        raise OSError("disk full")

    monkeypatch.setattr("detforge.api.data.write_into", half_write)
    with pytest.raises(OSError, match="disk full"):
        detforge.split(source, out=out, seed=2)
    assert sorted(p.relative_to(out) for p in out.rglob("*")) == before
    assert [p.name for p in tmp_path.iterdir()] == ["split"]


def test_fewer_folds_and_a_second_stats_report_leave_nothing_stale(source: Path, tmp_path: Path) -> None:
    out = tmp_path / "folds"
    assert len(detforge.split(source, out=out, folds=3)) == 3
    assert detforge.split(source, out=out, folds=2) == [out / "fold_0", out / "fold_1"]
    assert sorted(p.name for p in out.iterdir()) == [MARKER, "fold_0", "fold_1"]
    stats = tmp_path / "stats"
    detforge.stats(source, out=stats)
    (stats / "old_plot.png").write_bytes(b"")
    detforge.stats(source, out=stats)
    assert (stats / "index.html").is_file() and not (stats / "old_plot.png").exists()


def test_show_of_a_loaded_dataset_refuses_a_foreign_folder_too(source: Path, tmp_path: Path) -> None:
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "holiday.jpg").write_bytes(b"")
    with pytest.raises(OutputFolderError, match="not written by detforge"):
        detforge.show(load_dataset(source), out=mine, n=1)
    assert [p.name for p in mine.iterdir()] == ["holiday.jpg"]
