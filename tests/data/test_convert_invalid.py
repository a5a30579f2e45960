"""`data convert` names every item it leaves out and fails unless told to skip; `split --group` that
matches nothing or empties a split says so."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from PIL import Image

import detforge
from detforge.cli import main
from detforge.data.formats import load_dataset
from detforge.errors import ConfigError, DatasetError
from tiny_fixtures import write_tiny_coco

BAD_LINES = {  # file: line numbers of lines that cannot be written
    "a.txt": [2, 3, 4, 5, 6],
}


@pytest.fixture
def yolo(tmp_path: Path) -> Path:
    """A loose YOLO folder with 2 images, 2 good lines and 5 bad ones (3 a reader leaves out, 2 a writer must
    drop: zero size and outside the image)."""
    root = tmp_path / "yolo"
    (root / "images").mkdir(parents=True)
    (root / "labels").mkdir()
    for name in ("a", "b"):
        Image.new("RGB", (100, 80)).save(root / "images" / f"{name}.jpg")
    (root / "labels" / "a.txt").write_text(
        "0 0.5 0.5 0.2 0.2\nfoo 0.5 0.5 0.2 0.2\n0 0.5 0.5\n7 0.5 0.5 0.2 0.2\n0 0.5 0.5 0 0.2\n0 1.8 1.8 0.1 0.1\n",
        encoding="utf-8",
    )
    (root / "labels" / "b.txt").write_text("0 0.3 0.3 0.2 0.2\n", encoding="utf-8")
    (root / "classes.txt").write_text("x\n", encoding="utf-8")
    return root


def test_convert_with_bad_lines_names_each_and_exits_1(
    yolo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["data", "convert", str(yolo), str(tmp_path / "out"), "--to", "coco"]) == 1
    err = capsys.readouterr().err
    assert "5 invalid item(s)" in err and "Traceback" not in err
    for line in BAD_LINES["a.txt"]:
        assert f"a.txt:{line}:" in err, f"line {line} is not named"
    assert not (tmp_path / "out").exists(), "nothing is written"


def test_skip_invalid_writes_the_rest_and_logs_every_item_left_out(
    yolo: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING):
        detforge.convert(yolo, tmp_path / "out", to="coco", skip_invalid=True)
    logged = caplog.text
    for line in BAD_LINES["a.txt"]:
        assert f"a.txt:{line}:" in logged
    assert "left out 5 invalid item(s)" in logged
    assert len(load_dataset(tmp_path / "out").annotations) == 2
    with pytest.raises(DatasetError, match="skip-invalid"):
        detforge.split(yolo, out=tmp_path / "split")


@pytest.fixture(scope="module")
def coco(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_coco(tmp_path_factory.mktemp("coco") / "data", n_train=8, n_val=4)


def test_group_pattern_that_matches_nothing_is_an_error_or_a_warning(
    coco: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with pytest.raises(ConfigError, match=r"matches none of the 12 file names.*--allow-empty"):
        detforge.split(coco, out=tmp_path / "a", group=r"^scene_(\d+)_")
    assert not (tmp_path / "a").exists()
    with caplog.at_level(logging.WARNING):
        detforge.split(coco, out=tmp_path / "a", group=r"^scene_(\d+)_", allow_empty=True)
    assert "matches none" in caplog.text
    assert main(["data", "split", str(coco), "--out", str(tmp_path / "b"), "--group", "nomatch"]) == 1


def test_group_that_leaves_a_split_empty_is_an_error_or_a_warning(coco: Path, tmp_path: Path) -> None:
    # every file name is NNN.png: the pattern puts all 12 images into one group, so val and test stay empty
    with pytest.raises(ConfigError, match=r"'val' \(ratio 0.1\), 'test' \(ratio 0.1\) got no images"):
        detforge.split(coco, out=tmp_path / "a", group=r"\.png$")
    (out,) = detforge.split(coco, out=tmp_path / "a", group=r"\.png$", allow_empty=True)
    assert {im.subset for im in load_dataset(out).images} == {"train"}
