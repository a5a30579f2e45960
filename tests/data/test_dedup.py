"""near_duplicates / perceptual_hash: resized and recompressed copies found, different images not, EXIF honoured."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from detforge.data import dedup
from detforge.data.dataset import Dataset
from detforge.data.dedup import DuplicatePair, near_duplicates, perceptual_hash
from detforge.errors import ConfigError, InvalidImage
from detforge.structures import Categories, ImageRecord


def scene(seed: int, size: tuple[int, int] = (240, 180)) -> Image.Image:
    """A photo-like picture: a gradient background with random coloured shapes (stable under resizing)."""
    rng = np.random.default_rng(seed)
    w, h = size
    ramp = np.linspace(0, 255, w, dtype=np.float64)[None, :] * np.ones((h, 1))
    base = np.stack([ramp, ramp[:, ::-1], np.full((h, w), rng.integers(0, 255))], axis=-1)
    im = Image.fromarray(base.astype(np.uint8))
    draw = ImageDraw.Draw(im)
    for _ in range(8):
        x0, y0 = int(rng.integers(0, w - 40)), int(rng.integers(0, h - 40))
        x1, y1 = x0 + int(rng.integers(20, 120)), y0 + int(rng.integers(20, 100))
        fill = tuple(int(v) for v in rng.integers(0, 255, 3))
        (draw.ellipse if rng.random() < 0.5 else draw.rectangle)((x0, y0, x1, y1), fill=fill)
    return im


def make_dataset(root: Path, entries: list[tuple[str, str | None]]) -> Dataset:
    """Images at root/file_name (ids 1..N) with the given subsets; no annotations."""
    images = tuple(ImageRecord(i + 1, fn, root / fn, 0, 0, subset) for i, (fn, subset) in enumerate(entries))
    return Dataset(images, (), Categories.from_names(["thing"]), root, "coco")


def test_resized_recompressed_copy_is_found_across_subsets_and_other_image_is_not(tmp_path: Path) -> None:
    original = scene(1)
    original.save(tmp_path / "orig.png")
    original.resize((120, 90), Image.Resampling.BILINEAR).save(tmp_path / "copy.jpg", quality=60)
    scene(2).save(tmp_path / "other.jpg", quality=90)
    ds = make_dataset(tmp_path, [("orig.png", "train"), ("copy.jpg", "val"), ("other.jpg", "val")])
    pairs = near_duplicates(ds)
    assert len(pairs) == 1
    pair = pairs[0]
    assert isinstance(pair, DuplicatePair)
    assert (pair.first.file_name, pair.second.file_name) == ("copy.jpg", "orig.png")
    assert (pair.first.subset, pair.second.subset) == ("val", "train")
    assert 0 <= pair.distance <= 6
    # The unrelated image is far from both.
    assert bin(perceptual_hash(tmp_path / "other.jpg") ^ perceptual_hash(tmp_path / "orig.png")).count("1") > 12


def test_same_subset_pairs_only_when_asked(tmp_path: Path) -> None:
    scene(3).save(tmp_path / "a.png")
    scene(3).save(tmp_path / "b.jpg", quality=75)
    ds = make_dataset(tmp_path, [("a.png", "train"), ("b.jpg", "train")])
    assert near_duplicates(ds) == []
    pairs = near_duplicates(ds, across_subsets_only=False)
    assert [(p.first.id, p.second.id) for p in pairs] == [(1, 2)]


def test_hash_is_taken_in_the_exif_displayed_frame(tmp_path: Path) -> None:
    upright = scene(4, (200, 120))
    upright.save(tmp_path / "upright.jpg", quality=90)
    # Stored rotated 90 degrees counter-clockwise; orientation 6 tells viewers to rotate it back.
    exif = Image.Exif()
    exif[0x0112] = 6
    upright.transpose(Image.Transpose.ROTATE_90).save(tmp_path / "tagged.jpg", quality=90, exif=exif.tobytes())
    upright.transpose(Image.Transpose.ROTATE_90).save(tmp_path / "untagged.jpg", quality=90)
    h = perceptual_hash(tmp_path / "upright.jpg")
    assert bin(h ^ perceptual_hash(tmp_path / "tagged.jpg")).count("1") <= 6
    assert bin(h ^ perceptual_hash(tmp_path / "untagged.jpg")).count("1") > 12


def test_unreadable_and_missing_images_are_skipped(tmp_path: Path) -> None:
    scene(5).save(tmp_path / "good.png")
    scene(5).save(tmp_path / "good_copy.jpg")
    (tmp_path / "page.jpg").write_text("<!DOCTYPE html><html><body>404</body></html>")
    ds = make_dataset(
        tmp_path, [("good.png", "train"), ("good_copy.jpg", "val"), ("page.jpg", "val"), ("gone.jpg", "test")]
    )
    pairs = near_duplicates(ds)
    assert [(p.first.file_name, p.second.file_name) for p in pairs] == [("good.png", "good_copy.jpg")]
    with pytest.raises(InvalidImage, match=r"page\.jpg"):
        perceptual_hash(tmp_path / "page.jpg")
    with pytest.raises(InvalidImage, match=r"gone\.jpg: file not found"):
        perceptual_hash(tmp_path / "gone.jpg")


def test_comparison_of_thousands_of_hashes_is_fast(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    n = 3000
    rng = np.random.default_rng(0)
    values = [int(v) for v in rng.integers(0, 2**63, n, dtype=np.int64)]
    values[2999] = values[10] ^ 0b101  # 2 bits from image 10, in another subset
    values[1500] = values[20] ^ 1  # 1 bit from image 20, same subset
    hashes = {tmp_path / f"{i:04d}.jpg": v for i, v in enumerate(values)}
    monkeypatch.setattr(dedup, "perceptual_hash", lambda path: hashes[path])
    ds = make_dataset(tmp_path, [(f"{i:04d}.jpg", "val" if i >= 2000 else "train") for i in range(n)])
    start = time.perf_counter()
    pairs = near_duplicates(ds, max_distance=3)
    elapsed = time.perf_counter() - start
    assert [(p.first.id, p.second.id, p.distance) for p in pairs] == [(11, 3000, 2)]
    assert elapsed < 5.0
    both = near_duplicates(ds, max_distance=3, across_subsets_only=False)
    assert [(p.first.id, p.second.id, p.distance) for p in both] == [(21, 1501, 1), (11, 3000, 2)]


@pytest.mark.parametrize("bad", [-1, 65, 2.5])
def test_max_distance_is_validated(tmp_path: Path, bad: float) -> None:
    with pytest.raises(ConfigError, match=f"max_distance must be an integer in 0..64, got {bad}"):
        near_duplicates(make_dataset(tmp_path, []), max_distance=bad)  # type: ignore[arg-type]
