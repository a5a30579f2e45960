"""The label gallery: random but reproducible picks, drawn images, grid, HTML, unreadable images."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from detforge.data import show
from detforge.data.dataset import Dataset
from detforge.data.show import pick_images, show_dataset
from detforge.errors import DatasetError
from detforge.structures import RLE, Annotation, Categories, ImageRecord, Polygons
from detforge.visualization import color_for
from detforge.visualization.draw import FILL_ALPHA

NASTY = "<img src=x onerror=alert(1)>"


def _dataset(root: Path, image_factory: Callable[..., Path], count: int = 6) -> Dataset:
    images = []
    annotations = []
    for i in range(count):
        path = image_factory(root / f"im{i}.png", 160, 120, seed=i)
        images.append(ImageRecord(i, f"im{i}.png", path, 160, 120, "train" if i < 4 else "val"))
        annotations.append(Annotation(i, i, 1 + i % 2, (10.0, 10.0, 80.0, 60.0)))
    cats = Categories.from_names(["cat", NASTY])
    return Dataset(tuple(images), tuple(annotations), cats, root, "test")


def _items(html_path: Path) -> int:
    return html_path.read_text(encoding="utf-8").count('<section class="item">')


def test_same_seed_same_gallery_other_seed_other_pick(tmp_path: Path, image_factory: Callable[..., Path]) -> None:
    ds = _dataset(tmp_path / "data", image_factory)
    a = show_dataset(ds, tmp_path / "a", n=3, seed=7)
    b = show_dataset(ds, tmp_path / "b", n=3, seed=7)
    assert a.read_text() == b.read_text()
    names_a = sorted(p.name for p in (tmp_path / "a" / "images").iterdir())
    assert names_a == sorted(p.name for p in (tmp_path / "b" / "images").iterdir())
    assert len(names_a) == 3
    assert (tmp_path / "a" / "gallery.png").read_bytes() == (tmp_path / "b" / "gallery.png").read_bytes()
    picks = {tuple(im.id for im in pick_images(ds, 3, seed)) for seed in range(6)}
    assert len(picks) > 1  # the seed matters


def test_n_larger_than_dataset_shows_every_image(tmp_path: Path, image_factory: Callable[..., Path]) -> None:
    ds = _dataset(tmp_path / "data", image_factory, count=5)
    html_path = show_dataset(ds, tmp_path / "out", n=50)
    assert html_path == tmp_path / "out" / "index.html"
    assert _items(html_path) == 5
    assert len(list((tmp_path / "out" / "images").glob("*.jpg"))) == 5
    with Image.open(tmp_path / "out" / "gallery.png") as grid:
        assert grid.format == "PNG"
        assert grid.width == 3 * (256 + 4) + 4  # 3 columns of 256 px tiles ...
        assert grid.width / 2 < grid.height < grid.width  # ... and 2 rows of captioned tiles
    page = html_path.read_text(encoding="utf-8")
    assert NASTY not in page and "&lt;img src=x onerror=alert(1)&gt; &times; 1" in page
    assert 'src="images/000_im0.jpg"' in page


def test_drawn_images_are_downscaled_and_boxes_drawn(tmp_path: Path, image_factory: Callable[..., Path]) -> None:
    big = image_factory(tmp_path / "data" / "wide.png", 1000, 400)
    Image.new("RGB", (1000, 400), (128, 128, 128)).save(big)
    ds = Dataset(
        (ImageRecord(1, "wide.png", big, 1000, 400),),
        (Annotation(1, 1, 5, (100.0, 100.0, 500.0, 300.0)),),
        Categories.from_names(["a", "b", "c"], first_id=3),
        tmp_path,
        "test",
    )
    show_dataset(ds, tmp_path / "out", max_side=200)
    (jpg,) = (tmp_path / "out" / "images").glob("*.jpg")
    with Image.open(jpg) as im:
        assert im.size == (200, 80)
        pixels = np.asarray(im.convert("RGB"), dtype=int)
    # box x0 = 100 * 0.2 = 20 px, class "c" is index 2 in the categories
    edge = pixels[40, 20]
    assert np.abs(edge - np.array(color_for(2))).max() < 40
    assert np.abs(pixels[40, 60] - 128).max() < 10  # the inside of the box is untouched


def test_exif_orientation_is_applied(tmp_path: Path, image_factory: Callable[..., Path]) -> None:
    path = image_factory(tmp_path / "data" / "rot.jpg", 120, 80, exif_orientation=6)
    ds = Dataset((ImageRecord(1, "rot.jpg", path, 80, 120),), (), Categories(()), tmp_path, "test")
    show_dataset(ds, tmp_path / "out")
    (jpg,) = (tmp_path / "out" / "images").glob("*.jpg")
    with Image.open(jpg) as im:
        assert im.size == (80, 120)
    assert "the image is" not in (tmp_path / "out" / "index.html").read_text()  # no size mismatch note


def test_unreadable_images_are_listed_not_fatal(tmp_path: Path, image_factory: Callable[..., Path]) -> None:
    good = image_factory(tmp_path / "data" / "good.png", 64, 48)
    broken = tmp_path / "data" / "broken.jpg"
    broken.write_bytes(b"this is not a jpeg")
    images = (
        ImageRecord(1, "good.png", good, 64, 48),
        ImageRecord(2, "broken.jpg", broken, 0, 0),
        ImageRecord(3, "gone <b>.jpg", tmp_path / "data" / "gone.jpg", 0, 0),
    )
    ds = Dataset(images, (Annotation(1, 3, 1, (0.0, 0.0, 5.0, 5.0)),), Categories.from_names(["x"]), tmp_path, "t")
    page = show_dataset(ds, tmp_path / "out", n=10).read_text(encoding="utf-8")
    assert _items(tmp_path / "out" / "index.html") == 3
    assert page.count('class="unreadable"') == 2
    assert "not a readable image" in page and "file not found" in page
    assert "gone &lt;b&gt;.jpg" in page and "gone <b>" not in page
    assert len(list((tmp_path / "out" / "images").glob("*.jpg"))) == 1
    assert (tmp_path / "out" / "gallery.png").exists()


def _mask_dataset(tmp_path: Path) -> Dataset:
    path = tmp_path / "grey.png"
    Image.new("RGB", (100, 80), (128, 128, 128)).save(path)
    runs: list[int] = [0]  # COCO column-major runs: columns 30-69, rows 20-59 are set
    bit = 0
    for col in range(100):
        pattern = [(0, 80)] if not 30 <= col < 70 else [(0, 20), (1, 40), (0, 20)]
        for value, length in pattern:
            if value == bit:
                runs[-1] += length
            else:
                runs.append(length)
                bit = value
    ann = Annotation(1, 1, 1, (30.0, 20.0, 70.0, 60.0), segmentation=RLE(tuple(runs), (80, 100)))
    tri = Annotation(2, 1, 1, (75.0, 5.0, 95.0, 25.0), segmentation=Polygons(((75.0, 5.0, 95.0, 5.0, 85.0, 25.0),)))
    return Dataset(
        (ImageRecord(1, "grey.png", path, 100, 80),), (ann, tri), Categories.from_names(["blob"]), tmp_path, "t"
    )


def test_rle_masks_are_decoded_and_filled(tmp_path: Path) -> None:
    pytest.importorskip("faster_coco_eval")
    show_dataset(_mask_dataset(tmp_path), tmp_path / "out")
    (jpg,) = (tmp_path / "out" / "images").glob("*.jpg")
    pixels = np.asarray(Image.open(jpg).convert("RGB"), dtype=float)
    tinted = pixels[40, 50]
    expected = 128 * (1 - FILL_ALPHA) + np.array(color_for(0)) * FILL_ALPHA
    assert np.abs(tinted - expected).max() < 12
    assert np.abs(pixels[70, 10] - 128).max() < 8  # outside every object


def test_without_a_mask_library_boxes_are_still_drawn(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(show, "mask_decoder", lambda: None)
    page = show_dataset(_mask_dataset(tmp_path), tmp_path / "out").read_text()
    assert "RLE masks not drawn" in page
    (jpg,) = (tmp_path / "out" / "images").glob("*.jpg")
    pixels = np.asarray(Image.open(jpg).convert("RGB"), dtype=float)
    assert np.abs(pixels[40, 50] - 128).max() < 8  # the mask is not filled ...
    assert np.abs(pixels[40, 30] - np.array(color_for(0))).max() < 40  # ... but its box is drawn


def test_subset_choice_and_unknown_subset(tmp_path: Path, image_factory: Callable[..., Path]) -> None:
    ds = _dataset(tmp_path / "data", image_factory)
    page = show_dataset(ds, tmp_path / "out", subset="val").read_text()
    assert _items(tmp_path / "out" / "index.html") == 2 and "subset: train" not in page
    with pytest.raises(DatasetError, match="'nope'"):
        show_dataset(ds, tmp_path / "out2", subset="nope")
    with pytest.raises(ValueError, match="n must be"):
        show_dataset(ds, tmp_path / "out3", n=0)
