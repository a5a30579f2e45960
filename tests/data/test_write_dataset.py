"""`detforge.write_dataset` owns its output folder like `data convert`: refused when someone else's, replaced
whole when its own, never merged."""

from __future__ import annotations

from pathlib import Path

import pytest

import detforge
from detforge.data.formats import load_dataset, write_dataset
from detforge.outdir import MARKER, OutputFolderError
from tiny_fixtures import write_tiny_coco


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_coco(tmp_path_factory.mktemp("src") / "data", n_train=6, n_val=3)


def _files(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()}


def test_writes_a_new_folder_that_reads_back_the_same(source: Path, tmp_path: Path) -> None:
    ds = load_dataset(source)
    out = write_dataset(ds, tmp_path / "yolo", "yolo")
    assert out == tmp_path / "yolo" and (out / MARKER).is_file()
    back = load_dataset(out)
    assert len(back) == len(ds) and len(back.annotations) == len(ds.annotations)
    assert back.categories.names == ds.categories.names


def test_refuses_a_folder_it_did_not_write_and_overwrite_replaces_it(source: Path, tmp_path: Path) -> None:
    ds = load_dataset(source)
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("keep me", encoding="utf-8")
    with pytest.raises(OutputFolderError, match=r"mine: the folder is not empty and was not written by detforge"):
        write_dataset(ds, out, "coco")
    assert _files(out) == {"notes.txt"}
    assert (out / "notes.txt").read_text(encoding="utf-8") == "keep me"
    write_dataset(ds, out, "coco", overwrite=True)
    assert not (out / "notes.txt").exists()
    assert len(load_dataset(out)) == len(ds)


def test_its_own_earlier_output_is_replaced_whole(source: Path, tmp_path: Path) -> None:
    ds = load_dataset(source)
    out = tmp_path / "coco"
    write_dataset(ds, out, "coco")
    assert (out / "annotations" / "instances_val.json").is_file()
    write_dataset(ds.subset("train"), out, "coco")  # a second write with fewer subsets
    assert not (out / "annotations" / "instances_val.json").exists(), "the earlier write's val subset survived"
    assert not (out / "images" / "val").exists()
    back = load_dataset(out)
    assert back.subsets == ("train",) and len(back) == len(ds.subset("train"))


def test_a_data_convert_output_is_its_own_kind_and_another_verbs_is_not(source: Path, tmp_path: Path) -> None:
    ds = load_dataset(source)
    converted = detforge.convert(source, tmp_path / "converted", to="yolo")
    write_dataset(ds.subset("val"), converted, "voc")  # the same kind of output: replaced
    assert load_dataset(converted).format == "voc" and len(load_dataset(converted)) == len(ds.subset("val"))
    shown = tmp_path / "gallery"
    detforge.show(source, out=shown, n=1)
    with pytest.raises(OutputFolderError, match="written by `detforge data show`"):
        write_dataset(ds, shown, "coco")


def test_never_replaces_the_folder_holding_the_datasets_images(source: Path) -> None:
    ds = load_dataset(source)
    before = _files(source)
    with pytest.raises(OutputFolderError, match="holds the input"):
        write_dataset(ds, source, "yolo", overwrite=True)
    assert _files(source) == before
